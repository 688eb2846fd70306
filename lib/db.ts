import sqlite3 from 'sqlite3';

export type SqlValue = string | number | bigint | Buffer | null;
export type Row = Record<string, unknown>;

/** The statements a unit of work may run; it always runs alone on the connection. */
export interface Tx {
  run(sql: string, params?: SqlValue[]): Promise<{ changes: number; lastID: number }>;
  get<T = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  all<T = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

interface Work {
  fn: (tx: Tx) => Promise<unknown>;
  write: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * One SQLite connection whose work runs strictly one unit at a time.
 *
 * Writes that arrive while another batch is being committed are grouped into the next transaction (each in its own
 * savepoint, so one failing unit does not undo its neighbours) and all of them are answered after that one COMMIT:
 * many concurrent producers share one fsync instead of paying one each, and nobody is told "stored" before the
 * commit that stores it.
 */
export class Database {
  private queue: Work[] = [];
  private running = false;
  private closed = false;

  private constructor(private readonly db: sqlite3.Database, readonly file: string) {}

  static open(file: string, mode = sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE): Promise<Database> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, mode, (err) => {
        if (err) reject(err);
        else resolve(new Database(db, file));
      });
    });
  }

  /** Runs fn inside a write transaction; resolves after its COMMIT. */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.submit(fn, true);
  }

  /** Runs fn alone on the connection, outside any write transaction of its own. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.submit(fn, false);
  }

  exec(sql: string): Promise<void> {
    return this.read((tx) => tx.exec(sql));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.read(async () => undefined).then(
      () =>
        new Promise<void>((resolve, reject) => {
          this.closed = true;
          this.db.close((err) => (err ? reject(err) : resolve()));
        }),
    );
  }

  private submit<T>(fn: (tx: Tx) => Promise<T>, write: boolean): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`the queue database ${this.file} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, write, resolve: resolve as (v: unknown) => void, reject });
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

  private async runBatch(batch: Work[]): Promise<void> {
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      await this.tx.exec('BEGIN IMMEDIATE');
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    try {
      if (batch.length === 1) {
        // A lone unit needs no savepoint: its failure rolls the whole transaction back.
        try {
          results.push({ ok: true, value: await batch[0].fn(this.tx) });
        } catch (e) {
          await this.tx.exec('ROLLBACK');
          batch[0].reject(e);
          return;
        }
      } else {
        for (const w of batch) {
          await this.tx.exec('SAVEPOINT unit');
          try {
            results.push({ ok: true, value: await w.fn(this.tx) });
            await this.tx.exec('RELEASE unit');
          } catch (e) {
            await this.tx.exec('ROLLBACK TO unit');
            await this.tx.exec('RELEASE unit');
            results.push({ ok: false, value: e });
          }
        }
      }
      await this.tx.exec('COMMIT');
    } catch (e) {
      // COMMIT (or a savepoint statement) failed: disk full, I/O error. Nothing of this batch is stored.
      await this.tx.exec('ROLLBACK').catch(() => undefined);
      for (const w of batch) w.reject(e);
      return;
    }
    batch.forEach((w, i) => (results[i].ok ? w.resolve(results[i].value) : w.reject(results[i].value)));
  }

  private readonly tx: Tx = {
    run: (sql, params = []) =>
      new Promise((resolve, reject) => {
        this.db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
          if (err) reject(err);
          else resolve({ changes: this.changes, lastID: this.lastID });
        });
      }),
    get: <T>(sql: string, params: SqlValue[] = []) =>
      new Promise<T | undefined>((resolve, reject) => {
        this.db.get(sql, params, (err: Error | null, row: T) => (err ? reject(err) : resolve(row)));
      }),
    all: <T>(sql: string, params: SqlValue[] = []) =>
      new Promise<T[]>((resolve, reject) => {
        this.db.all(sql, params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
      }),
    exec: (sql) =>
      new Promise<void>((resolve, reject) => {
        this.db.exec(sql, (err) => (err ? reject(err) : resolve()));
      }),
  };
}

export const OPEN_READWRITE = sqlite3.OPEN_READWRITE;
