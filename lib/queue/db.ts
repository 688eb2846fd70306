import sqlite3 from 'sqlite3';

export type SqlValue = string | number | bigint | Buffer | null;
export type Row = Record<string, unknown>;

/**
 * The statements a unit of work may run; it always runs alone on the connection. run, get and all keep their
 * statement prepared for the next call with the same text (preparing the lease statement costs more than running
 * it); run is for statements that return no rows, exec for one-off SQL (several statements, schema changes).
 */
export interface Tx {
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number; lastID: number }>;
  get<T = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  all<T = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

/** Prepared statements kept per connection: every statement text the queue runs, with room for the ack's variants. */
const MAX_PREPARED = 64;
/**
 * With checkpoints taken aside (see checkpointAside): one each time the WAL has grown by about SQLite's own 1000
 * pages, counted as commits times the pages a commit wrote on average since the last checkpoint (which tells how
 * many pages it found). The connection's own automatic checkpoint stays, at 8000 pages, only for a WAL the other
 * connection could not keep small (a burst of large inline items).
 */
const CHECKPOINT_PAGES = 1000;
const FALLBACK_AUTOCHECKPOINT_PAGES = 8000;


/** What the connection has done since it was opened: for benchmarks and tests, which count round trips per item. */
export interface DbCounters {
  /** Statements sent to SQLite (each one a round trip to its thread), BEGIN and COMMIT included. */
  statements: number;
  /** Write transactions committed (an explicit BEGIN … COMMIT, or one statement committing itself). */
  commits: number;
}

interface Work {
  fn: (tx: Tx) => Promise<unknown>;
  write: boolean;
  /** Must be on disk when answered (synchronous FULL); otherwise a power cut may undo it, a crash may not. */
  durable: boolean;
  /** Runs exactly one statement: alone, it needs no BEGIN/COMMIT of its own (SQLite commits a lone statement itself). */
  single: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * One SQLite connection whose work runs strictly one unit at a time.
 *
 * Writes that arrive while another batch is being committed are grouped into the next transaction (a failing unit is
 * retried alone, so it does not undo its neighbours) and all of them are answered after that one COMMIT:
 * many concurrent producers share one fsync instead of paying one each, and nobody is told "stored" before the
 * commit that stores it.
 */
export class Database {
  private queue: Work[] = [];
  private running = false;
  private closed = false;
  /** The synchronous mode durable writes get ('FULL' or 'NORMAL'); other writes always run under NORMAL. */
  private durableMode: 'FULL' | 'NORMAL' = 'FULL';
  private mode: 'FULL' | 'NORMAL' | undefined;
  private readonly counts: DbCounters = { statements: 0, commits: 0 };
  /** By SQL text, least recently used first. */
  private readonly prepared = new Map<string, sqlite3.Statement>();
  /** Whether checkpoints are taken aside (see checkpointAside), and the connection that takes them, once opened. */
  private aside = false;
  private checkpointer?: sqlite3.Database;
  private checkpointing?: Promise<void>;
  private commitsSinceCheckpoint = 0;
  /** WAL pages a commit writes, on average (a queue's commits write a few: an enqueue 4, an ack and lease 6 to 9). */
  private pagesPerCommit = 4;

  private constructor(private readonly db: sqlite3.Database, readonly file: string) {}

  static open(file: string, mode = sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE): Promise<Database> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, mode, (err) => {
        if (err) reject(err);
        else resolve(new Database(db, file));
      });
    });
  }

  /**
   * Runs fn inside a write transaction; resolves after its COMMIT. A durable write is fsynced before it is answered
   * (under the FULL mode). A write that is not durable skips that fsync: a process crash still cannot undo it (the WAL
   * is in the OS's cache), only a power cut can, and the next durable commit makes it permanent as well.
   */
  write<T>(fn: (tx: Tx) => Promise<T>, durable = true, single = false): Promise<T> {
    return this.submit(fn, true, durable, single);
  }

  /** FULL: durable writes are fsynced at commit. NORMAL: nothing is fsynced at commit (faster on slow SD cards). */
  async setDurability(mode: 'FULL' | 'NORMAL'): Promise<void> {
    this.durableMode = mode;
    await this.read((tx) => this.useMode(tx, mode));
  }

  private async useMode(tx: Tx, mode: 'FULL' | 'NORMAL'): Promise<void> {
    if (this.mode === mode) return;
    await tx.run(`PRAGMA synchronous = ${mode}`);
    this.mode = mode;
  }

  /**
   * Moves WAL checkpoints off this connection, onto a second one of their own. A checkpoint copies the WAL into the
   * database file and fsyncs both: on an SD card that can take a second, and every write queued behind it (a
   * capture's enqueue, the acks) would wait that long. From a connection of their own they run beside the writes
   * (SQLite lets one checkpoint run while a writer appends to the WAL), on another thread of the pool. A checkpoint
   * is as crash-safe from one connection as from another; a failed one is tried again after the next commits. The
   * second connection opens at the first checkpoint (a queue that hardly writes never needs it); if it cannot be
   * opened, this connection checkpoints by itself again, as SQLite does by default.
   */
  async checkpointAside(): Promise<void> {
    if (this.aside) return;
    await this.exec(`PRAGMA wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    this.aside = true;
  }

  private committed(): void {
    if (!this.aside || this.checkpointing || ++this.commitsSinceCheckpoint * this.pagesPerCommit < CHECKPOINT_PAGES) return;
    const commits = this.commitsSinceCheckpoint;
    this.commitsSinceCheckpoint = 0;
    this.checkpointing = this.checkpoint(commits).finally(() => {
      this.checkpointing = undefined;
    });
  }

  private async checkpoint(commits: number): Promise<void> {
    if (this.closed) return;
    if (!this.checkpointer) {
      try {
        this.checkpointer = await this.openCheckpointer();
      } catch {
        this.aside = false;
        await this.exec('PRAGMA wal_autocheckpoint = 1000').catch(() => undefined);
        return;
      }
    }
    const other = this.checkpointer;
    // PASSIVE: copies what no reader still needs, never waits for anyone, never blocks a writer. It answers how many
    // pages the WAL holds: those written since the last checkpoint, which emptied it.
    const log = await new Promise<number>((resolve) =>
      other.get('PRAGMA wal_checkpoint(PASSIVE)', (err: Error | null, row?: { log?: number }) => resolve(err ? 0 : Number(row?.log ?? 0))),
    );
    if (log > 0) this.pagesPerCommit = Math.max(1, Math.min(CHECKPOINT_PAGES, log / commits));
  }

  private async openCheckpointer(): Promise<sqlite3.Database> {
    const other = await new Promise<sqlite3.Database>((resolve, reject) => {
      const db = new sqlite3.Database(this.file, sqlite3.OPEN_READWRITE, (err) => (err ? reject(err) : resolve(db)));
    });
    try {
      await new Promise<void>((resolve, reject) =>
        other.exec(`PRAGMA busy_timeout = 5000; PRAGMA synchronous = ${this.durableMode}`, (err) => (err ? reject(err) : resolve())),
      );
      return other;
    } catch (e) {
      await new Promise<void>((resolve) => other.close(() => resolve()));
      throw e;
    }
  }

  /** Runs fn alone on the connection, outside any write transaction of its own. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.submit(fn, false, false, false);
  }

  exec(sql: string): Promise<void> {
    return this.read((tx) => tx.exec(sql));
  }

  /** A copy of the counters: subtract two of them to see what a piece of work cost. */
  get counters(): DbCounters {
    return { ...this.counts };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.read(async () => undefined).then(async () => {
      this.closed = true;
      await this.checkpointing;
      const other = this.checkpointer;
      this.checkpointer = undefined;
      if (other) await new Promise<void>((resolve) => other.close(() => resolve()));
      // SQLite refuses to close a connection that still has prepared statements.
      const statements = [...this.prepared.values()];
      this.prepared.clear();
      await Promise.all(statements.map((st) => new Promise<void>((resolve) => st.finalize(() => resolve()))));
      await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
    });
  }

  /**
   * The prepared statement for `sql`, prepared now if it is not kept yet. Preparing runs on SQLite's thread before
   * the first use, which waits for it; when it fails, that use is never answered, so the failure goes to `reject`.
   */
  private statement(sql: string, reject: (err: Error) => void): sqlite3.Statement {
    const kept = this.prepared.get(sql);
    if (kept) {
      this.prepared.delete(sql);
      this.prepared.set(sql, kept);
      return kept;
    }
    const st = this.db.prepare(sql, (err: Error | null) => {
      if (!err) return;
      if (this.prepared.get(sql) === st) this.prepared.delete(sql);
      reject(err);
    });
    if (this.prepared.size >= MAX_PREPARED) {
      const [oldest, old] = this.prepared.entries().next().value as [string, sqlite3.Statement];
      this.prepared.delete(oldest);
      old.finalize();
    }
    this.prepared.set(sql, st);
    return st;
  }

  /** A statement that failed is prepared afresh next time. */
  private forget(sql: string, st: sqlite3.Statement): void {
    if (this.prepared.get(sql) !== st) return;
    this.prepared.delete(sql);
    st.finalize();
  }

  private submit<T>(fn: (tx: Tx) => Promise<T>, write: boolean, durable: boolean, single: boolean): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`the queue database ${this.file} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, write, durable, single, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0];
        if (!head.write) {
          this.queue.shift();
          await this.runOne(head);
          continue;
        }
        let n = 0;
        while (n < this.queue.length && this.queue[n].write) n++;
        const batch = this.queue.splice(0, n);
        await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async runOne(w: Work): Promise<void> {
    try {
      w.resolve(await w.fn(this.tx));
    } catch (e) {
      w.reject(e);
    }
  }

  /**
   * Runs a group of writes in one transaction. Units normally succeed, so they run back to back with no savepoints
   * (each savepoint is two more round trips to SQLite's thread); when one fails, the transaction is rolled back and
   * every unit of the group runs again on its own, so the failure stays that unit's.
   */
  private async runBatch(batch: Work[]): Promise<void> {
    if ((await this.attempt(batch)) === 'retry-singly') {
      for (const w of batch) await this.attempt([w]);
    }
  }

  private async attempt(batch: Work[]): Promise<'done' | 'retry-singly'> {
    if (batch.length === 1 && batch[0].single) {
      // One statement on its own is its own transaction: a third of the round trips of BEGIN, statement, COMMIT.
      const w = batch[0];
      try {
        await this.useMode(this.tx, w.durable ? this.durableMode : 'NORMAL');
        const value = await w.fn(this.tx);
        this.counts.commits++;
        this.committed();
        w.resolve(value);
      } catch (e) {
        w.reject(e);
      }
      return 'done';
    }
    try {
      await this.useMode(this.tx, batch.some((w) => w.durable) ? this.durableMode : 'NORMAL');
      await this.tx.run('BEGIN IMMEDIATE');
    } catch (e) {
      for (const w of batch) w.reject(e);
      return 'done';
    }
    const values: unknown[] = [];
    for (const w of batch) {
      try {
        values.push(await w.fn(this.tx));
      } catch (e) {
        await this.tx.run('ROLLBACK').catch(() => undefined);
        if (batch.length > 1) return 'retry-singly';
        w.reject(e);
        return 'done';
      }
    }
    try {
      await this.tx.run('COMMIT');
      this.counts.commits++;
      this.committed();
    } catch (e) {
      // Disk full, I/O error: nothing of this group is stored.
      await this.tx.run('ROLLBACK').catch(() => undefined);
      for (const w of batch) w.reject(e);
      return 'done';
    }
    batch.forEach((w, i) => w.resolve(values[i]));
    return 'done';
  }

  private readonly tx: Tx = {
    run: (sql, params = []) =>
      new Promise((resolve, reject) => {
        this.counts.statements++;
        const st = this.statement(sql, reject);
        const forget = () => this.forget(sql, st);
        st.run(params, function (this: sqlite3.RunResult, err: Error | null) {
          if (err) {
            forget();
            reject(err);
          } else {
            resolve({ changes: this.changes, lastID: this.lastID });
          }
        });
      }),
    // A cached statement must run to its end, or it would keep its read snapshot: get reads the rows as all does.
    get: <T>(sql: string, params: SqlValue[] = []) => this.tx.all<T>(sql, params).then((rows) => rows[0]),
    all: <T>(sql: string, params: SqlValue[] = []) =>
      new Promise<T[]>((resolve, reject) => {
        this.counts.statements++;
        const st = this.statement(sql, reject);
        st.all(params, (err: Error | null, rows: T[]) => {
          if (err) {
            this.forget(sql, st);
            reject(err);
          } else {
            resolve(rows);
          }
        });
      }),
    exec: (sql) =>
      new Promise<void>((resolve, reject) => {
        this.counts.statements++;
        this.db.exec(sql, (err) => (err ? reject(err) : resolve()));
      }),
  };
}

export const OPEN_READWRITE = sqlite3.OPEN_READWRITE;
