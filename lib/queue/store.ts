import path from 'path';
import { Database, DbCounters, Tx, SqlValue } from './db';
import { BackoffPolicy, backoffDelay } from '../util/backoff';
import { fmtBytes, fmtDuration } from '../util/format';
import { lockDatabase, openDatabase, prepareFolder, QueueStoreError } from './open';
import { OwnerLock } from '../util/owner-lock';
import { applyPolicyIndexes, ITEM_STATES, ItemState } from './schema';

export { ITEM_STATES } from './schema';
export type { ItemState } from './schema';
export { QueueStoreError } from './open';

const QUEUED = "('pending','waiting','leased')";
const FAILED = "('dead','expired')";

export interface QueuePolicy {
  defaultPriority: number;
  /** 0 = retry forever. */
  maxAttempts: number;
  backoff: BackoffPolicy;
  leaseMs: number;
  /** Items older than this are set aside as expired; 0 = never. */
  ttlMs: number;
  /** Limits over queued (pending, waiting, leased) items; 0 = none. */
  maxItems: number;
  maxBytes: number;
  whenFull: 'reject' | 'drop-oldest';
  /** Acknowledged rows are kept this long for history (and for 'delete-after-days', until their file goes). */
  keepDoneMs: number;
  fileRetention: 'keep' | 'delete-on-ack' | 'delete-after-days';
  keepFilesMs: number;
  /**
   * Items of at least this many bytes (videos) go out in a lane of their own, `largeConcurrency` at a time, beside the
   * `concurrency` lane of smaller ones: a still is never stuck behind a long upload. 0 = one lane for all.
   */
  largeItemBytes: number;
  largeConcurrency: number;
}

export const DEFAULT_POLICY: QueuePolicy = {
  defaultPriority: 5,
  maxAttempts: 10,
  backoff: { baseMs: 2000, capMs: 5 * 60_000 },
  leaseMs: 5 * 60_000,
  ttlMs: 0,
  maxItems: 0,
  maxBytes: 0,
  whenFull: 'reject',
  keepDoneMs: 24 * 3600_000,
  fileRetention: 'keep',
  keepFilesMs: 7 * 24 * 3600_000,
  largeItemBytes: 16 * 1024 * 1024,
  largeConcurrency: 1,
};

export interface OpenOptions {
  synchronous?: 'FULL' | 'NORMAL';
  /** Create the database's folder when missing (only for the default location: a missing mount point is an error). */
  createFolder?: boolean;
  /** Release leases left by a crashed process. Only the process that delivers may do this, never the CLI. */
  recoverLeases?: boolean;
  /** Who holds the file, for the error a second user of the same file gets. */
  owner?: string;
  now?: () => number;
  random?: () => number;
}

export interface NewItem {
  kind: 'file' | 'inline';
  file?: string;
  bytes: number;
  priority?: number;
  /** The message, encoded by message-codec. */
  msg: string;
}

export interface ItemRow {
  id: number;
  state: ItemState;
  priority: number;
  createdAt: number;
  dueAt: number;
  leaseUntil: number | null;
  attempts: number;
  kind: 'file' | 'inline';
  file: string | null;
  bytes: number;
  lastError: string | null;
  doneAt: number | null;
}

export interface LeasedItem extends ItemRow {
  msg: string;
  /** 0: the lane of small items, 1: of large ones (see QueuePolicy.largeItemBytes). */
  lane: number;
}

export interface DroppedItem {
  id: number;
  priority: number;
  bytes: number;
  file: string | null;
}

export interface StateCount {
  n: number;
  bytes: number;
}

export interface StoreStats {
  counts: Record<ItemState, StateCount>;
  /** Transitions into each state since the database was created ('pending' counts retries and releases, not enqueues; 'enqueued' counts those). */
  totals: Record<ItemState | 'enqueued', number>;
  oldestQueuedAt: number | null;
}

export interface NackInfo {
  message: string;
  code?: string;
  permanent?: boolean;
  retryAfterMs?: number;
  /** The failure happened while the link was known to be down: it does not use up an attempt. */
  offline?: boolean;
  /** Not tried at all (a byte budget holds it): it waits `retryAfterMs` and uses up no attempt. */
  held?: boolean;
}

export type AckResult = { status: 'acked'; item: ItemRow } | { status: 'already-done' } | { status: 'unknown' };
export type NackResult =
  | { status: 'retry'; item: ItemRow; delayMs: number }
  | { status: 'dead'; item: ItemRow }
  | { status: 'requeued'; item: ItemRow }
  | { status: 'stale' | 'already-done' | 'unknown' };

export class QueueFullError extends Error {
  readonly code = 'QUEUE_FULL';
}

/** How long items in flight at a redeploy wait for the answer of the nodes that had them. */
const REDEPLOY_GRACE_MS = 30_000;

const ROW_COLUMNS =
  'id, state, priority, created_at AS createdAt, due_at AS dueAt, lease_until AS leaseUntil, attempts, kind, file, ' +
  'bytes, last_error AS lastError, done_at AS doneAt';

/** The lease's two lanes: up to ?3 small items and ?4 large ones in flight, each lane in priority order from its own range of the ready index. */
const NEXT_IN_LANES = `SELECT id FROM (SELECT id FROM items WHERE state = 'pending' AND lane = 0 AND id NOT IN acked ORDER BY priority, id
                                      LIMIT (SELECT MAX(0, ?3 - (n - big)) FROM busy))
                       UNION ALL
                       SELECT id FROM (SELECT id FROM items WHERE state = 'pending' AND lane = 1 AND id NOT IN acked ORDER BY priority, id
                                       LIMIT (SELECT MAX(0, ?4 - big) FROM busy))`;
/** The room in each lane is read inside the statement, from the few items in flight (leaving out those acked by it). */
const BUSY = "busy AS (SELECT COUNT(*) AS n, COALESCE(SUM(lane), 0) AS big FROM items WHERE state = 'leased' AND id NOT IN acked)";

/**
 * The statements every delivered item runs, as SQL text, so that a test can check with EXPLAIN QUERY PLAN that each
 * one reads an index range, never the whole queue: their cost must not grow with the queue's length.
 */
export const HOT_SQL = {
  enqueue: `INSERT INTO items (id, state, priority, created_at, due_at, kind, file, bytes, msg, lane)
    VALUES ((SELECT MAX(n, IFNULL((SELECT MAX(id) FROM items), 0)) + 1 FROM counts WHERE state = 'enqueued'), 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
  /** Items whose backoff has run out become ready. */
  promote: "UPDATE items SET state = 'pending' WHERE state = 'waiting' AND due_at <= ?",
  /** Leases the next items of both lanes (?2 the lease's end, ?3 and ?4 the lanes' sizes); it acks nothing (acked is empty). */
  lease: `WITH acked(id) AS (SELECT NULL WHERE 0), ${BUSY}
    UPDATE items SET state = 'leased', attempts = attempts + 1, lease_until = ?2
    WHERE id IN (${NEXT_IN_LANES})
    RETURNING ${ROW_COLUMNS}, lane, msg`,
  /** Marks the items of the JSON array ?5 uploaded (?1 now). */
  ack: `WITH acked(id) AS (SELECT value FROM json_each(?5))
    UPDATE items SET state = 'done', done_at = ?1, lease_until = NULL WHERE id IN acked AND state <> 'done' RETURNING ${ROW_COLUMNS}`,
  /**
   * Both at once: marks the items of ?5 uploaded and leases the next ones into the slots that frees (parameters as
   * for lease and ack). One statement commits itself: one round trip to SQLite per batch of acks instead of four.
   */
  ackAndLease: `WITH acked(id) AS (SELECT value FROM json_each(?5)), ${BUSY}
    UPDATE items SET
      state = CASE WHEN id IN acked THEN 'done' ELSE 'leased' END,
      done_at = CASE WHEN id IN acked THEN ?1 ELSE done_at END,
      lease_until = CASE WHEN id IN acked THEN NULL ELSE ?2 END,
      attempts = CASE WHEN id IN acked THEN attempts ELSE attempts + 1 END
    WHERE state <> 'done' AND id IN (SELECT id FROM acked UNION ALL ${NEXT_IN_LANES})
    RETURNING ${ROW_COLUMNS}, lane, CASE WHEN state = 'leased' THEN msg END AS msg`,
  known: 'SELECT id FROM items WHERE id IN (SELECT value FROM json_each(?))',
  nackRead: `SELECT ${ROW_COLUMNS} FROM items WHERE id = ?`,
  nackRetry: "UPDATE items SET state = 'waiting', due_at = ?, not_before = ?, lease_until = NULL, last_error = ?, last_error_at = ? WHERE id = ?",
  statsCounts: 'SELECT state, n, bytes, entered FROM counts',
  oldestQueued: "SELECT MIN(created_at) AS t FROM items WHERE state IN ('pending','waiting')",
  oldestLeased: "SELECT MIN(created_at) AS t FROM items WHERE state = 'leased'",
  nextDue: "SELECT MIN(due_at) AS t FROM items WHERE state = 'waiting'",
  /** When the delivery loop must next wake: the earliest end of a backoff (w) or of a lease (l). */
  nextWake:
    "SELECT (SELECT MIN(due_at) FROM items WHERE state = 'waiting') AS w, (SELECT MIN(lease_until) FROM items WHERE state = 'leased') AS l",
};

/** Files in use by a store of this process, so that two queue nodes cannot share one database by mistake. */
const openFiles = new Map<string, string>();
/**
 * Files a store of this process closed while it still had items in flight: a redeploy of the queue node alone, while
 * the nodes downstream keep working on those items. Their leases stay valid for the next store on the file.
 */
const handedOver = new Map<string, string>();

/**
 * The durable queue: every rule about what an item may become lives here, each as one SQLite transaction.
 * It never holds items in memory; the delivery loop asks it for the next few.
 */
export class QueueStore {
  private lock?: OwnerLock;
  private closed = false;

  private constructor(
    private readonly db: Database,
    readonly file: string,
    public policy: QueuePolicy,
    private readonly now: () => number,
    private readonly random: () => number,
    /** Where a corrupt database was moved before this fresh one was started. */
    readonly movedAside: string | undefined,
    readonly salvaged: number,
  ) {}

  static async open(file: string, policy: Partial<QueuePolicy> = {}, options: OpenOptions = {}): Promise<QueueStore> {
    const full = path.resolve(file);
    const key = prepareFolder(full, options.createFolder);
    const owner = options.owner ?? 'another queue';
    const holder = openFiles.get(key);
    if (holder !== undefined) {
      throw new QueueStoreError(`the queue database ${full} is already used by ${holder}; give each queue its own file`, 'DB_IN_USE');
    }
    openFiles.set(key, owner);
    let lock: OwnerLock | undefined;
    try {
      lock = options.recoverLeases ? lockDatabase(full) : undefined;
      const now = options.now ?? Date.now;
      const merged: QueuePolicy = { ...DEFAULT_POLICY, ...policy };
      const { db, movedAside, salvaged } = await openDatabase(full, options.recoverLeases === true, options.synchronous ?? 'FULL', now);
      const store = new QueueStore(db, full, merged, now, options.random ?? Math.random, movedAside, salvaged);
      store.lock = lock;
      store.ownerKey = key;
      await store.placeInLanes(options.recoverLeases === true);
      if (options.recoverLeases) {
        await db.checkpointAside();
        await applyPolicyIndexes(db, merged.whenFull);
        // After a crash or a restart nobody is working on the leased items; after a redeploy in this process the
        // nodes downstream may still be, and will answer (or the lease runs out).
        // The token in the file proves no other process has owned it since this one let go.
        const token = await store.getMeta('handover');
        const mine = handedOver.get(key);
        handedOver.delete(key);
        if (token !== undefined) await db.write((tx) => tx.run("DELETE FROM meta WHERE key = 'handover'"));
        if (mine === undefined || token !== mine) await store.releaseAllLeases();
        else await store.shortenLeases(REDEPLOY_GRACE_MS);
      }
      return store;
    } catch (e) {
      openFiles.delete(key);
      lock?.release();
      if (e instanceof QueueStoreError) throw e;
      const err = e as NodeJS.ErrnoException;
      throw new QueueStoreError(`cannot open the queue database ${full}: ${err.message}`, err.code ?? 'DB_OPEN');
    }
  }

  private ownerKey = '';
  /** The size from which an item is in the large lane, as the rows' lanes were computed (see placeInLanes). */
  private laneBytes = 0;

  /**
   * An item's lane is fixed when it is stored, so the lease reads each lane from an index. When the size that makes an
   * item large is not the one the rows were placed with (it changed between deploys, or the database was written by
   * schema 2, or salvaged), the owner places every item that may still be delivered again, once, at open: one pass
   * over the table, paid only on such a change. Anyone else (the CLI) keeps the lanes the owner chose.
   */
  private async placeInLanes(owner: boolean): Promise<void> {
    const placed = await this.getMeta('lane_bytes');
    const wanted = Math.max(0, this.policy.largeItemBytes);
    if (!owner) {
      this.laneBytes = placed !== undefined ? Number(placed) : wanted;
      return;
    }
    this.laneBytes = wanted;
    if (placed === String(wanted)) return;
    await this.db.write(async (tx) => {
      await tx.run(
        `UPDATE items SET lane = (?1 > 0 AND bytes >= ?1) WHERE state NOT IN ('done','dropped') AND lane IS NOT (?1 > 0 AND bytes >= ?1)`,
        [wanted],
      );
      await tx.run("INSERT INTO meta (key, value) VALUES ('lane_bytes', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [String(wanted)]);
    });
  }

  private laneOf(bytes: number): number {
    return this.laneBytes > 0 && bytes >= this.laneBytes ? 1 : 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.lock) {
        const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
        await this.setMeta('handover', token);
        handedOver.set(this.ownerKey, token);
      }
      await this.db.close();
    } finally {
      openFiles.delete(this.ownerKey);
      this.lock?.release();
    }
  }

  /** Stores one item. Resolves only once the row is committed (and so on disk, with synchronous FULL). */
  async enqueue(item: NewItem): Promise<{ id: number; dropped: DroppedItem[] }> {
    const priority = item.priority ?? this.policy.defaultPriority;
    const limited = this.policy.maxItems > 0 || this.policy.maxBytes > 0;
    return this.db.write(async (tx) => {
      const dropped = limited ? await this.makeRoom(tx, priority, item.bytes) : [];
      const now = this.now();
      const r = await tx.run(HOT_SQL.enqueue, [priority, now, now, item.kind, item.file ?? null, item.bytes, item.msg, this.laneOf(item.bytes)]);
      return { id: r.lastID, dropped };
    }, true, !limited);
  }

  private async makeRoom(tx: Tx, priority: number, bytes: number): Promise<DroppedItem[]> {
    const { maxItems, maxBytes, whenFull } = this.policy;
    if (maxItems <= 0 && maxBytes <= 0) return [];
    if (maxBytes > 0 && bytes > maxBytes) {
      throw new QueueFullError(`the item (${fmtBytes(bytes)}) is larger than the whole queue may hold (${fmtBytes(maxBytes)})`);
    }
    const dropped: DroppedItem[] = [];
    for (;;) {
      const q = (await tx.get<{ n: number; bytes: number }>(
        `SELECT SUM(n) AS n, SUM(bytes) AS bytes FROM counts WHERE state IN ${QUEUED}`,
      ))!;
      const itemsFull = maxItems > 0 && q.n + 1 > maxItems;
      const bytesFull = maxBytes > 0 && q.bytes + bytes > maxBytes;
      if (!itemsFull && !bytesFull) return dropped;
      const what = itemsFull ? `${q.n} items, limit ${maxItems}` : `${fmtBytes(q.bytes)}, limit ${fmtBytes(maxBytes)}`;
      if (whenFull === 'reject') throw new QueueFullError(`the queue is full (${what}); the new item was not queued`);
      const victim = await tx.get<DroppedItem>(
        "SELECT id, priority, bytes, file FROM items WHERE state IN ('pending','waiting') ORDER BY priority DESC, id ASC LIMIT 1",
      );
      if (!victim) throw new QueueFullError(`the queue is full (${what}) and every queued item is in flight; the new item was not queued`);
      if (victim.priority < priority) {
        throw new QueueFullError(`the queue is full (${what}) and the new item has the lowest priority (${priority}); it was not queued`);
      }
      await tx.run("UPDATE items SET state = 'dropped', done_at = ?, last_error = ? WHERE id = ?", [
        this.now(),
        'dropped to make room: the queue was full',
        victim.id,
      ]);
      dropped.push(victim);
    }
  }

  /**
   * Leases the next items in priority order, oldest first, so that at most `concurrency` are in flight. Items whose
   * backoff has run out become ready first.
   */
  async lease(concurrency: number): Promise<LeasedItem[]> {
    // Delivery bookkeeping need not be fsynced: if a power cut undoes a lease, an ack or a nack, the item is simply
    // delivered again under the same key (delivery is at-least-once); items themselves are always written durably.
    if (this.nextDueAt > this.now()) return this.db.write((tx) => this.leaseIn(tx, concurrency), false, true);
    try {
      return await this.db.write(async (tx) => {
        await tx.run(HOT_SQL.promote, [this.now()]);
        this.nextDueAt = (await tx.get<{ t: number | null }>(HOT_SQL.nextDue))?.t ?? Infinity;
        return this.leaseIn(tx, concurrency);
      }, false);
    } catch (e) {
      this.nextDueAt = -Infinity; // the promotion may not have happened
      throw e;
    }
  }

  /**
   * When the earliest backoff of a waiting item runs out (-Infinity: not known, Infinity: none is waiting). Only this
   * store puts items into backoff (nack), so it knows without asking; the lease promotes waiting items only once one
   * may be due, instead of asking SQLite on every lease.
   */
  private nextDueAt = -Infinity;

  /** Leases ready items up to `concurrency` in flight, in one statement (the room is read inside it). */
  private async leaseIn(tx: Tx, concurrency: number): Promise<LeasedItem[]> {
    const now = this.now();
    const rows = await tx.all<LeasedItem>(HOT_SQL.lease, [null, now + this.policy.leaseMs, concurrency, this.policy.largeConcurrency]);
    return rows.sort(byPriority);
  }

  /**
   * Gives back leases of items that were never delivered (taken ahead of their turn, see OfflineQueue): ready again,
   * and the lease took no attempt from them. Each item is given as [id, attempt]; one whose lease ran out and was
   * taken again since is left alone.
   */
  async releaseLeases(items: [id: number, attempt: number][]): Promise<number> {
    if (items.length === 0) return 0;
    return this.db.write(
      async (tx) =>
        (
          await tx.run(
            `UPDATE items SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_until = NULL
             WHERE state = 'leased' AND id IN (SELECT value ->> 0 FROM json_each(?1))
               AND attempts = (SELECT value ->> 1 FROM json_each(?1) WHERE value ->> 0 = items.id)`,
            [JSON.stringify(items)],
          )
        ).changes,
      false,
      true,
    );
  }

  /** The items in flight (leased), with their lanes and attempts: what a queue starting on this file must count as taken. */
  async leasedItems(): Promise<{ id: number; lane: number; attempts: number }[]> {
    return this.db.read((tx) => tx.all<{ id: number; lane: number; attempts: number }>("SELECT id, lane, attempts FROM items WHERE state = 'leased'"));
  }

  /**
   * Keeps a long upload's lease alive while it makes progress, so the item is not delivered a second time beside it.
   * Only the attempt in flight may do so; false when that attempt is no longer the item's (its lease ran out).
   */
  async extendLease(id: number, attempt: number): Promise<boolean> {
    const r = await this.db.write(
      (tx) => tx.run("UPDATE items SET lease_until = ? WHERE id = ? AND state = 'leased' AND attempts = ?", [this.now() + this.policy.leaseMs, id, attempt]),
      false,
    );
    return r.changes > 0;
  }

  // ---- upload progress of large items ----------------------------------------------------------------------

  async getUploadState(id: number, target: string): Promise<{ state: string; confirmed: number } | undefined> {
    return this.db.read((tx) => tx.get<{ state: string; confirmed: number }>('SELECT state, confirmed FROM uploads WHERE item_id = ? AND target = ?', [id, target]));
  }

  /**
   * Records what the store has confirmed of an item's upload. When the item has already left the queue (purged while
   * it was uploading), the state goes straight to the abandoned ones, so the store's half upload is still cleaned up.
   */
  async saveUploadState(id: number, target: string, state: string, confirmed: number): Promise<void> {
    await this.db.write(async (tx) => {
      const now = this.now();
      const r = await tx.run(
        `INSERT INTO uploads (item_id, target, state, confirmed, updated_at)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM items WHERE id = ?1 AND state NOT IN ('done','dropped'))
         ON CONFLICT (item_id, target) DO UPDATE SET state = excluded.state, confirmed = excluded.confirmed, updated_at = excluded.updated_at`,
        [id, target, state, confirmed, now],
      );
      if (r.changes === 0) await tx.run('INSERT INTO abandoned_uploads (target, state, at) VALUES (?, ?, ?)', [target, state, now]);
    }, false);
  }

  async clearUploadState(id: number, target: string): Promise<void> {
    await this.db.write((tx) => tx.run('DELETE FROM uploads WHERE item_id = ? AND target = ?', [id, target]), false);
  }

  /** Upload states left by items that went away, oldest first, for one target. */
  async abandonedUploads(target: string, limit = 20): Promise<{ id: number; state: string; at: number }[]> {
    return this.db.read((tx) => tx.all<{ id: number; state: string; at: number }>('SELECT id, state, at FROM abandoned_uploads WHERE target = ? ORDER BY id LIMIT ?', [target, limit]));
  }

  async forgetAbandoned(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.write((tx) => tx.run(`DELETE FROM abandoned_uploads WHERE id IN (${ids.map(() => '?').join(',')})`, ids), false);
  }

  /**
   * Marks an item uploaded. With `leaseUpTo`, the freed slot is filled in the same transaction: one commit (one fsync)
   * per item instead of two, which is most of the queue's cost per upload.
   */
  async ack(id: number, leaseUpTo = 0): Promise<AckResult & { leased: LeasedItem[] }> {
    const r = await this.ackMany([id], leaseUpTo);
    return { ...r.results[0], leased: r.leased };
  }

  /**
   * Marks items uploaded, and with `leaseUpTo` fills the freed slots, all in one statement: many uploads finishing
   * together cost one commit and one round trip to SQLite, not one per item and more per lease. (Items waiting out a
   * backoff are left to the delivery loop, which promotes them when the first one is due.)
   */
  async ackMany(ids: number[], leaseUpTo = 0): Promise<{ results: AckResult[]; leased: LeasedItem[] }> {
    const now = this.now();
    const json = JSON.stringify(ids.filter((i) => Number.isSafeInteger(i)));
    const rows = await this.db.write(
      (tx) =>
        leaseUpTo > 0
          ? tx.all<LeasedItem>(HOT_SQL.ackAndLease, [now, now + this.policy.leaseMs, leaseUpTo, this.policy.largeConcurrency, json])
          : tx.all<LeasedItem>(HOT_SQL.ack, [now, null, null, null, json]),
      false,
      true,
    );
    const byId = new Map<number, ItemRow>();
    const leased: LeasedItem[] = [];
    for (const r of rows) {
      if (r.state === 'leased') {
        leased.push(r);
      } else {
        const { msg: _msg, lane: _lane, ...row } = r;
        byId.set(r.id, row);
      }
    }
    const done = new Set(byId.keys());
    const missing = ids.filter((i) => !byId.has(i));
    const known = new Set(
      missing.length ? (await this.db.read((tx) => tx.all<{ id: number }>(HOT_SQL.known, [JSON.stringify(missing.filter((i) => Number.isSafeInteger(i)))]))).map((r) => r.id) : [],
    );
    const results: AckResult[] = ids.map((i) => {
      const item = byId.get(i);
      if (item) {
        byId.delete(i); // a second ack of the same id in one batch is a duplicate
        return { status: 'acked' as const, item };
      }
      return { status: known.has(i) || done.has(i) ? ('already-done' as const) : ('unknown' as const) };
    });
    return { results, leased: leased.sort(byPriority) };
  }

  /**
   * Records a failed attempt. `attempt` is the attempt number the nack answers: a nack for an attempt that is no
   * longer in flight (its lease expired and the item went out again) is stale and changes nothing.
   */
  async nack(id: number, attempt: number | undefined, info: NackInfo): Promise<NackResult> {
    return this.db.write(async (tx) => {
      const item = await tx.get<ItemRow>(HOT_SQL.nackRead, [id]);
      if (!item) return { status: 'unknown' as const };
      if (item.state === 'done') return { status: 'already-done' as const };
      if (item.state !== 'leased' || (attempt !== undefined && attempt !== item.attempts)) return { status: 'stale' as const };
      const now = this.now();
      const error = info.code ? `${info.code}: ${info.message}` : info.message;
      if (info.offline) {
        await tx.run(
          "UPDATE items SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_until = NULL, last_error = ?, last_error_at = ? WHERE id = ?",
          [error, now, id],
        );
        return { status: 'requeued' as const, item: { ...item, state: 'pending' as const, attempts: Math.max(item.attempts - 1, 0), lastError: error } };
      }
      if (info.held) {
        const wait = Math.max(1000, info.retryAfterMs ?? 60_000);
        // A budget's hold lasts to its end (not_before); one for an unmetered link may end early (wakeWaiting).
        const firm = info.code !== 'UNMETERED_WAIT';
        await tx.run(
          "UPDATE items SET state = 'waiting', attempts = MAX(attempts - 1, 0), due_at = ?, not_before = ?, lease_until = NULL, last_error = ?, last_error_at = ? WHERE id = ?",
          [now + wait, firm ? now + wait : now, error, now, id],
        );
        this.nextDueAt = Math.min(this.nextDueAt, now + wait);
        return { status: 'retry' as const, delayMs: wait, item: { ...item, state: 'waiting' as const, attempts: Math.max(item.attempts - 1, 0), dueAt: now + wait, lastError: error } };
      }
      const max = this.policy.maxAttempts;
      if (info.permanent || (max > 0 && item.attempts >= max)) {
        const why = info.permanent ? error : `gave up after ${item.attempts} attempts: ${error}`;
        await tx.run("UPDATE items SET state = 'dead', lease_until = NULL, last_error = ?, last_error_at = ? WHERE id = ?", [why, now, id]);
        return { status: 'dead' as const, item: { ...item, state: 'dead' as const, lastError: why } };
      }
      const retryAfter = info.retryAfterMs ?? 0;
      const delayMs = Math.max(backoffDelay(this.policy.backoff, item.attempts, this.random), retryAfter);
      await tx.run(HOT_SQL.nackRetry, [now + delayMs, now + retryAfter, error, now, id]);
      this.nextDueAt = Math.min(this.nextDueAt, now + delayMs);
      return { status: 'retry' as const, delayMs, item: { ...item, state: 'waiting' as const, dueAt: now + delayMs, lastError: error } };
    }, false);
  }

  /** Items whose lease ran out without an answer go out again (or to the dead letters when out of attempts). */
  async expireLeases(): Promise<{ redelivered: number; dead: number }> {
    return this.db.write(async (tx) => {
      const now = this.now();
      const max = this.policy.maxAttempts;
      const msg = `no ack or nack within the lease (${Math.round(this.policy.leaseMs / 1000)} s)`;
      let dead = 0;
      if (max > 0) {
        dead = (
          await tx.run(
            "UPDATE items SET state = 'dead', lease_until = NULL, last_error = ?, last_error_at = ? WHERE state = 'leased' AND lease_until <= ? AND attempts >= ?",
            [`gave up after ${max} attempts: ${msg}`, now, now, max],
          )
        ).changes;
      }
      const redelivered = (
        await tx.run(
          "UPDATE items SET state = 'pending', lease_until = NULL, last_error = ?, last_error_at = ? WHERE state = 'leased' AND lease_until <= ?",
          [msg, now, now],
        )
      ).changes;
      return { redelivered, dead };
    }, false);
  }

  /**
   * Leased items whose worker is gone go back to ready. The interrupted attempt still counts: an item that crashes
   * Node-RED every time it is sent must end among the failed items, not crash it forever.
   */
  async releaseAllLeases(): Promise<number> {
    return this.db.write(async (tx) => {
      const r = await tx.run(
        "UPDATE items SET state = 'pending', lease_until = NULL, last_error = 'interrupted: the process stopped while the item was in flight', last_error_at = ? WHERE state = 'leased'",
        [this.now()],
      );
      return r.changes;
    }, false);
  }

  /**
   * After a redeploy, an item in flight is answered by the nodes that were working on it if they still run (only the
   * queue was redeployed), or never (they were redeployed too and dropped it). Its lease is cut to a short grace, so
   * the second case costs seconds rather than a whole lease.
   */
  async shortenLeases(graceMs: number): Promise<number> {
    return this.db.write(async (tx) => {
      const until = this.now() + Math.min(graceMs, this.policy.leaseMs);
      return (await tx.run("UPDATE items SET lease_until = ? WHERE state = 'leased' AND lease_until > ?", [until, until])).changes;
    }, false);
  }

  /** When the link comes back, items that were backing off because of it go out at once (a server's Retry-After still holds). */
  async wakeWaiting(): Promise<number> {
    return this.db.write(async (tx) => {
      const now = this.now();
      const r = await tx.run("UPDATE items SET due_at = MAX(?, not_before) WHERE state = 'waiting' AND due_at > ?", [now, now]);
      if (r.changes > 0) this.nextDueAt = -Infinity;
      return r.changes;
    }, false);
  }

  /** Sets aside queued items older than the TTL. Returns them so their loss of relevance can be reported. */
  async expireOld(): Promise<ItemRow[]> {
    const ttl = this.policy.ttlMs;
    if (ttl <= 0) return [];
    return this.db.write(async (tx) => {
      const now = this.now();
      return tx.all<ItemRow>(
        `UPDATE items SET state = 'expired', last_error = ?, last_error_at = ?
         WHERE state IN ('pending','waiting') AND created_at <= ? RETURNING ${ROW_COLUMNS}`,
        [`expired: not uploaded within ${fmtDuration(ttl)} of being queued`, now, now - ttl],
      );
    });
  }

  /**
   * Forgets acknowledged and dropped rows past their retention. Returns the files the retention policy says to
   * delete; rows are removed first, so a crash can leave a file behind but never a row pointing at a deleted file.
   */
  async pruneFinished(): Promise<string[]> {
    const { keepDoneMs, fileRetention, keepFilesMs } = this.policy;
    return this.db.write(async (tx) => {
      const now = this.now();
      const files: string[] = [];
      if (fileRetention === 'delete-after-days') {
        // The state IN (...) repeats the index's own condition, without which SQLite will not use it.
        const rows = await tx.all<{ file: string }>(
          "DELETE FROM items WHERE state IN ('done','dropped') AND state = 'done' AND done_at <= ? AND file IS NOT NULL RETURNING file",
          [now - keepFilesMs],
        );
        files.push(...rows.map((r) => r.file));
        await tx.run("DELETE FROM items WHERE state IN ('done','dropped') AND done_at <= ? AND (state = 'dropped' OR file IS NULL)", [
          now - keepDoneMs,
        ]);
      } else {
        await tx.run("DELETE FROM items WHERE state IN ('done','dropped') AND done_at <= ?", [now - keepDoneMs]);
      }
      return files;
    });
  }

  /** Dead and expired items (all, or the given ids) go back to ready with a fresh set of attempts. */
  async retryFailed(ids?: number[]): Promise<number> {
    return this.db.write(async (tx) => {
      const now = this.now();
      const [where, params] = idFilter(ids);
      const r = await tx.run(
        `UPDATE items SET state = 'pending', attempts = 0, due_at = ?, not_before = 0 WHERE state IN ${FAILED}${where}`,
        [now, ...params],
      );
      return r.changes;
    });
  }

  /** Deletes dead and expired rows (all, or the given ids); returns their files, which the caller may delete. */
  async purgeFailed(ids?: number[]): Promise<{ count: number; files: string[] }> {
    return this.db.write(async (tx) => {
      const [where, params] = idFilter(ids);
      const rows = await tx.all<{ file: string | null }>(`DELETE FROM items WHERE state IN ${FAILED}${where} RETURNING file`, params);
      return { count: rows.length, files: rows.flatMap((r) => (r.file ? [r.file] : [])) };
    });
  }

  async stats(): Promise<StoreStats> {
    return this.db.read(async (tx) => {
      const counts = {} as Record<ItemState, StateCount>;
      for (const s of ITEM_STATES) counts[s] = { n: 0, bytes: 0 };
      const totals = { enqueued: 0 } as Record<ItemState | 'enqueued', number>;
      for (const s of ITEM_STATES) totals[s] = 0;
      for (const r of await tx.all<{ state: ItemState | 'enqueued'; n: number; bytes: number; entered: number }>(HOT_SQL.statsCounts)) {
        if (r.state === 'enqueued') {
          totals.enqueued = r.n;
        } else {
          counts[r.state] = { n: r.n, bytes: r.bytes };
          totals[r.state] = r.entered;
        }
      }
      const oldest = await tx.get<{ t: number | null }>(HOT_SQL.oldestQueued);
      const oldestLeased = await tx.get<{ t: number | null }>(HOT_SQL.oldestLeased);
      const candidates = [oldest?.t, oldestLeased?.t].filter((t): t is number => typeof t === 'number');
      return { counts, totals, oldestQueuedAt: candidates.length ? Math.min(...candidates) : null };
    });
  }

  async list(opts: { states?: ItemState[]; limit?: number; afterId?: number } = {}): Promise<ItemRow[]> {
    const states = (opts.states ?? ITEM_STATES).filter((s) => ITEM_STATES.includes(s));
    if (states.length === 0) return [];
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 10_000));
    return this.db.read((tx) =>
      tx.all<ItemRow>(
        `SELECT ${ROW_COLUMNS} FROM items WHERE state IN (${states.map(() => '?').join(',')}) AND id > ? ORDER BY id LIMIT ?`,
        [...states, opts.afterId ?? 0, limit],
      ),
    );
  }

  /** The earliest instant at which a backoff or a lease runs out, if any: the delivery loop sleeps until then. */
  async nextWakeAt(): Promise<number | null> {
    const r = await this.db.read((tx) => tx.get<{ w: number | null; l: number | null }>(HOT_SQL.nextWake));
    const ts = [r?.w, r?.l].filter((t): t is number => typeof t === 'number');
    return ts.length ? Math.min(...ts) : null;
  }

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.db.read((tx) => tx.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]));
    return r?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.db.write((tx) => tx.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value]));
  }

  /**
   * Moves by `deltaMs` the times this run wrote with a clock that has since jumped: those in [from, to] (creation,
   * acknowledgement), and every due time, earliest next attempt and lease end from `from` on. Returns the items moved.
   */
  async shiftClock(from: number, to: number, deltaMs: number): Promise<number> {
    return this.db.write(async (tx) => {
      const r = await tx.run('UPDATE items SET created_at = created_at + ?3 WHERE created_at BETWEEN ?1 AND ?2', [from, to, deltaMs]);
      await tx.run("UPDATE items SET done_at = done_at + ?3 WHERE state = 'done' AND done_at BETWEEN ?1 AND ?2", [from, to, deltaMs]);
      await tx.run("UPDATE items SET due_at = due_at + ?2 WHERE state <> 'done' AND due_at >= ?1", [from, deltaMs]);
      await tx.run("UPDATE items SET not_before = not_before + ?2 WHERE state <> 'done' AND not_before >= ?1", [from, deltaMs]);
      await tx.run("UPDATE items SET lease_until = lease_until + ?2 WHERE state = 'leased' AND lease_until >= ?1", [from, deltaMs]);
      this.nextDueAt = -Infinity;
      return r.changes;
    });
  }

  /** Statements and commits this store's connection has run so far (round trips per item, for benchmarks and tests). */
  get dbCounters(): DbCounters {
    return this.db.counters;
  }

  /** Changes whenever another connection (the CLI) commits to this database. */
  async dataVersion(): Promise<number> {
    const r = await this.db.read((tx) => tx.get<{ data_version: number }>('PRAGMA data_version'));
    return r?.data_version ?? 0;
  }
}

function byPriority(a: ItemRow, b: ItemRow): number {
  return a.priority - b.priority || a.id - b.id;
}

function idFilter(ids?: number[]): [string, SqlValue[]] {
  if (!ids) return ['', []];
  const clean = ids.filter((i) => Number.isInteger(i) && i > 0);
  if (clean.length === 0) return [' AND 0', []];
  return [` AND id IN (${clean.map(() => '?').join(',')})`, clean];
}
