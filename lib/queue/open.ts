import fs from 'fs';
import path from 'path';
import { acquireOwnerLock, OwnerLock, OwnerLockError } from '../util/owner-lock';
import { Database, SqlValue, OPEN_READWRITE } from './db';
import { SCHEMA_VERSION, schemaVersion, upgradeSchema } from './schema';

/** Databases up to this size (40 MB) get a full structural check at open; larger ones would delay every deploy. */
const QUICK_CHECK_MAX_PAGES = 10_000;

/** Why a queue database cannot be opened: DB_FOLDER, DB_IN_USE, DB_OPEN, DB_MISSING, DB_NOT_QUEUE, DB_VERSION. */
export class QueueStoreError extends Error {
  constructor(message: string, readonly code: string, readonly movedTo?: string) {
    super(message);
  }
}

export interface OpenedDatabase {
  db: Database;
  /** Where a corrupt database was moved before a fresh one was started. */
  movedAside?: string;
  /** Queued rows copied out of that corrupt database. */
  salvaged: number;
}

/**
 * Makes sure the database's folder is there and writable (creating it only when told: a missing mount point is an
 * error). Returns the file's path with the folder's symlinks resolved, which names it the same for every opener.
 */
export function prepareFolder(full: string, createFolder: boolean | undefined): string {
  const folder = path.dirname(full);
  if (!fs.existsSync(folder)) {
    if (createFolder) {
      try {
        fs.mkdirSync(folder, { recursive: true });
      } catch (e) {
        throw new QueueStoreError(`cannot create the queue folder ${folder}: ${(e as Error).message}`, 'DB_FOLDER');
      }
    } else {
      throw new QueueStoreError(
        `the queue folder ${folder} does not exist (is the disk mounted?); create it or choose another database path`,
        'DB_FOLDER',
      );
    }
  }
  try {
    fs.accessSync(folder, fs.constants.W_OK);
  } catch {
    throw new QueueStoreError(`the queue folder ${folder} is not writable by this process`, 'DB_FOLDER');
  }
  try {
    return path.join(fs.realpathSync(folder), path.basename(full));
  } catch {
    return full;
  }
}

/** One delivering process per database, across processes too. */
export function lockDatabase(full: string): OwnerLock {
  try {
    return acquireOwnerLock(`${full}.lock`, `the queue database ${full}`);
  } catch (e) {
    if (e instanceof OwnerLockError) throw new QueueStoreError(e.message, 'DB_IN_USE');
    throw e;
  }
}

/**
 * Opens the database for its owner, the delivering process: creates or upgrades it, and when it is corrupt moves it
 * aside and starts a fresh one with whatever queued rows can still be read. Anyone else (the CLI) gets the file as it
 * is: never created, repaired or moved; a wrong path is an error, not a new queue.
 */
export async function openDatabase(full: string, owner: boolean, synchronous: 'FULL' | 'NORMAL', now: () => number): Promise<OpenedDatabase> {
  if (!owner) return { db: await openExisting(full, synchronous), salvaged: 0 };
  try {
    return { db: await openAndPrepare(full, synchronous), salvaged: 0 };
  } catch (e) {
    if (!isCorruption(e)) throw e;
    const movedAside = moveAside(full, now());
    const db = await openAndPrepare(full, synchronous);
    const salvaged = await salvage(movedAside, db).catch(() => 0);
    return { db, movedAside, salvaged };
  }
}

async function openAndPrepare(file: string, synchronous: 'FULL' | 'NORMAL'): Promise<Database> {
  const db = await Database.open(file);
  try {
    await db.exec('PRAGMA busy_timeout = 5000');
    const mode = await db.read((tx) => tx.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL'));
    if (mode?.journal_mode !== 'wal') throw new QueueStoreError(`the queue database ${file} cannot use WAL journaling`, 'DB_OPEN');
    await db.setDurability(synchronous);
    const version = await schemaVersion(db);
    if (version > SCHEMA_VERSION) {
      throw new QueueStoreError(`the queue database ${file} was written by a newer version of Uplink (schema ${version})`, 'DB_VERSION');
    }
    // Small databases get a full structural check: a power cut on an SD card is the usual way they break.
    const pages = (await db.read((tx) => tx.get<{ page_count: number }>('PRAGMA page_count')))?.page_count ?? 0;
    if (pages > 0 && pages < QUICK_CHECK_MAX_PAGES) {
      const check = await db.read((tx) => tx.get<{ quick_check: string }>('PRAGMA quick_check(1)'));
      if (check?.quick_check !== 'ok') {
        const e = new Error(`database disk image is malformed (${check?.quick_check})`) as NodeJS.ErrnoException;
        e.code = 'SQLITE_CORRUPT';
        throw e;
      }
    }
    await db.write((tx) => upgradeSchema(tx));
    return db;
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}

async function openExisting(file: string, synchronous: 'FULL' | 'NORMAL'): Promise<Database> {
  if (!fs.existsSync(file)) throw new QueueStoreError(`${file} does not exist`, 'DB_MISSING');
  let db: Database;
  try {
    db = await Database.open(file, OPEN_READWRITE);
  } catch (e) {
    throw new QueueStoreError(`cannot open ${file}: ${(e as Error).message}`, 'DB_OPEN');
  }
  try {
    await db.exec('PRAGMA busy_timeout = 5000');
    await db.setDurability(synchronous);
    const tables = await db.read((tx) => tx.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('items','counts','meta')"));
    const version = await schemaVersion(db);
    if (tables.length !== 3 || version === 0) throw new QueueStoreError(`${file} is not an Uplink queue database`, 'DB_NOT_QUEUE');
    if (version > SCHEMA_VERSION) {
      throw new QueueStoreError(`${file} was written by a newer version of Uplink (schema ${version})`, 'DB_VERSION');
    }
    return db;
  } catch (e) {
    await db.close().catch(() => undefined);
    if (e instanceof QueueStoreError) throw e;
    if (isCorruption(e)) throw new QueueStoreError(`${file} is not an Uplink queue database, or it is damaged (${(e as Error).message})`, 'DB_NOT_QUEUE');
    throw e;
  }
}

function isCorruption(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB';
}

function moveAside(file: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  const target = `${file}.corrupt-${stamp}`;
  fs.renameSync(file, target);
  for (const suffix of ['-wal', '-shm']) {
    if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, target + suffix);
  }
  return target;
}

/**
 * Copies whatever queued rows can still be read out of a corrupt database into the fresh one. Rows are read in
 * batches by rowid; a batch that hits a damaged page is read again row by row, so only the rows on that page are lost.
 */
async function salvage(corruptFile: string, into: Database): Promise<number> {
  let old: Database;
  try {
    // Read-write: a WAL database cannot be opened read-only without its -shm file. It is our own moved-aside copy.
    old = await Database.open(corruptFile);
  } catch {
    return 0;
  }
  const cols = 'state, priority, created_at, due_at, attempts, kind, file, bytes, msg, last_error, id';
  const read = (sql: string, params: SqlValue[]) => old.read((tx) => tx.all<Record<string, SqlValue>>(sql, params));
  let copied = 0;
  try {
    const lastId = await read("SELECT n AS seq FROM counts WHERE state = 'enqueued'", [])
      .then((r) => Number(r[0]?.seq ?? 0))
      .catch(() => read('SELECT MAX(id) AS seq FROM items', []).then((r) => Number(r[0]?.seq ?? 0)))
      .catch(() => 0);
    const BATCH = 500;
    for (let after = 0; after < lastId; after += BATCH) {
      let rows: Record<string, SqlValue>[] = [];
      try {
        rows = await read(`SELECT ${cols} FROM items NOT INDEXED WHERE id > ? AND id <= ?`, [after, after + BATCH]);
      } catch {
        for (let id = after + 1; id <= after + BATCH; id++) {
          rows.push(...(await read(`SELECT ${cols} FROM items NOT INDEXED WHERE id = ?`, [id]).catch(() => [])));
        }
      }
      const queued = rows.filter((r) => ['pending', 'waiting', 'leased', 'dead', 'expired'].includes(String(r.state)));
      if (queued.length === 0) continue;
      await into.write(async (tx) => {
        for (const r of queued) {
          const state = r.state === 'leased' || r.state === 'waiting' ? 'pending' : r.state;
          await tx.run(
            'INSERT INTO items (state, priority, created_at, due_at, attempts, kind, file, bytes, msg, last_error) VALUES (?,?,?,?,?,?,?,?,?,?)',
            [state, r.priority, r.created_at, r.due_at, r.attempts, r.kind, r.file, r.bytes, r.msg, r.last_error],
          );
        }
      });
      copied += queued.length;
    }
  } finally {
    await old.close().catch(() => undefined);
  }
  return copied;
}
