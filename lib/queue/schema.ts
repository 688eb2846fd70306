import { Database, Tx } from './db';

/**
 * pending: ready to deliver · waiting: in backoff until due_at · leased: delivered, waiting for ack/nack
 * done: acknowledged · dead: permanent failure or out of attempts · expired: older than the TTL · dropped: pushed out
 * by the drop-oldest limit policy. Rows in dead/expired/dropped keep their file and their last error.
 */
export type ItemState = 'pending' | 'waiting' | 'leased' | 'done' | 'dead' | 'expired' | 'dropped';
export const ITEM_STATES: ItemState[] = ['pending', 'waiting', 'leased', 'done', 'dead', 'expired', 'dropped'];

/**
 * 2: upload progress of large items (uploads) and what is left of items that went away (abandoned_uploads).
 * 3: each item's lane (0: small, 1: large) is a column, and ready items are indexed by lane, priority and id, so that
 * leasing the next item of either lane costs the same at a thousand items as at a million.
 */
export const SCHEMA_VERSION = 3;
/** Only needed, and only paid for on every enqueue, under the drop-oldest limit policy. */
const DROPPABLE_INDEX = "CREATE INDEX IF NOT EXISTS items_droppable ON items(priority DESC, id) WHERE state IN ('pending','waiting')";
const SCHEMA = `
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  priority INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  kind TEXT NOT NULL,
  file TEXT,
  bytes INTEGER NOT NULL,
  msg TEXT NOT NULL,
  last_error TEXT,
  last_error_at INTEGER,
  done_at INTEGER,
  lane INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_ready_by_lane ON items(lane, priority, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS items_age ON items(created_at) WHERE state IN ('pending','waiting');
CREATE INDEX IF NOT EXISTS items_waiting ON items(due_at) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS items_leased ON items(lease_until) WHERE state = 'leased';
CREATE INDEX IF NOT EXISTS items_done ON items(done_at) WHERE state IN ('done','dropped');
CREATE INDEX IF NOT EXISTS items_failed ON items(id) WHERE state IN ('dead','expired');
-- One small page holds every counter, so keeping them costs one page write per commit. Per state: items now in it
-- (n, bytes) and transitions into it ever (entered). The row 'enqueued' counts inserts: it is also the last item id
-- handed out, so ids are never reused (a late ack can never hit a newer item) without AUTOINCREMENT's extra page.
CREATE TABLE IF NOT EXISTS counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL, bytes INTEGER NOT NULL, entered INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS items_counted_ins AFTER INSERT ON items BEGIN
  UPDATE counts SET n = n + 1, bytes = bytes + NEW.bytes, entered = entered + 1 WHERE state = NEW.state;
  UPDATE counts SET n = n + 1 WHERE state = 'enqueued';
END;
CREATE TRIGGER IF NOT EXISTS items_counted_upd AFTER UPDATE OF state ON items WHEN OLD.state <> NEW.state BEGIN
  UPDATE counts SET n = n - 1, bytes = bytes - OLD.bytes WHERE state = OLD.state;
  UPDATE counts SET n = n + 1, bytes = bytes + NEW.bytes, entered = entered + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER IF NOT EXISTS items_counted_del AFTER DELETE ON items BEGIN
  UPDATE counts SET n = n - 1, bytes = bytes - OLD.bytes WHERE state = OLD.state;
END;
-- What a store has confirmed of a large item's upload (an S3 UploadId and its parts, a TUS URL), per target, so an
-- upload continues after a crash instead of starting again. An item that leaves the queue for good (uploaded,
-- dropped, purged) leaves its state behind in abandoned_uploads, for the uploader to clean up on the store (abort
-- the multipart upload) the next time it runs.
CREATE TABLE IF NOT EXISTS uploads (
  item_id INTEGER NOT NULL,
  target TEXT NOT NULL,
  state TEXT NOT NULL,
  confirmed INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (item_id, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS abandoned_uploads (id INTEGER PRIMARY KEY, target TEXT NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS uploads_left_del AFTER DELETE ON items BEGIN
  INSERT INTO abandoned_uploads (target, state, at) SELECT target, state, updated_at FROM uploads WHERE item_id = OLD.id;
  DELETE FROM uploads WHERE item_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS uploads_left_upd AFTER UPDATE OF state ON items WHEN NEW.state IN ('done','dropped') BEGIN
  INSERT INTO abandoned_uploads (target, state, at) SELECT target, state, updated_at FROM uploads WHERE item_id = NEW.id;
  DELETE FROM uploads WHERE item_id = NEW.id;
END;
`;

/** The schema version a database was written with (0: a new, empty file). */
export async function schemaVersion(db: Database): Promise<number> {
  return (await db.read((tx) => tx.get<{ user_version: number }>('PRAGMA user_version')))?.user_version ?? 0;
}

/**
 * Brings a database of an older schema (or a new, empty one) to this one. Every step is idempotent (IF NOT EXISTS,
 * INSERT OR IGNORE, a column added only when missing), so a version 1 or 2 database gains what it lacks and keeps
 * its rows. Rows of a version 2 database start in lane 0: the store puts them in their lanes when it opens (see
 * QueueStore.open), as it does whenever the size that makes an item large changes.
 */
export async function upgradeSchema(tx: Tx): Promise<void> {
  const columns = await tx.all<{ name: string }>("SELECT name FROM pragma_table_info('items')");
  if (columns.length > 0 && !columns.some((c) => c.name === 'lane')) {
    // Adding a column with a constant default rewrites no row: instant at a million items.
    await tx.exec('ALTER TABLE items ADD COLUMN lane INTEGER NOT NULL DEFAULT 0');
  }
  // Version 2's index of ready items, without the lane, which the lease no longer uses.
  await tx.exec('DROP INDEX IF EXISTS items_ready');
  await tx.exec(SCHEMA);
  for (const s of [...ITEM_STATES, 'enqueued']) {
    await tx.run('INSERT OR IGNORE INTO counts (state, n, bytes, entered) VALUES (?, 0, 0, 0)', [s]);
  }
  await tx.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
}

/** Creates or drops the indexes that only a limit policy needs. Only the delivering process may: the CLI must not change them under it. */
export async function applyPolicyIndexes(db: Database, whenFull: 'reject' | 'drop-oldest'): Promise<void> {
  await db.exec(whenFull === 'drop-oldest' ? DROPPABLE_INDEX : 'DROP INDEX IF EXISTS items_droppable');
}
