import fs from 'fs';
import path from 'path';
import type sqlite3 from 'sqlite3';
import { BudgetUsage, periodsOf } from './budget';

// What each target has sent, per calendar day and month, kept in SQLite so that a restart does not hand out the
// day's allowance again. Bytes are added in memory as they go out and written every few seconds (and at close): a
// crash forgets at most those few seconds' bytes, and an idle device writes nothing.

const SCHEMA = `
CREATE TABLE IF NOT EXISTS budget_usage (
  target TEXT NOT NULL,
  period TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (target, period)
) WITHOUT ROWID;`;

/** Periods kept: about a year of days and months. */
const KEEP_PERIODS = 400;

export class BudgetLedger {
  private readonly kept = new Map<string, number>();
  private readonly unwritten = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly db: sqlite3.Database,
    readonly file: string,
    private readonly flushMs: number,
  ) {}

  static async open(file: string, options: { flushMs?: number } = {}): Promise<BudgetLedger> {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    // Loaded here: an uploader without a budget never loads the native binding.
    const driver = require('sqlite3') as typeof sqlite3;
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const d = new driver.Database(file, driver.OPEN_READWRITE | driver.OPEN_CREATE, (e) => (e ? reject(e) : resolve(d)));
    });
    const ledger = new BudgetLedger(db, file, options.flushMs ?? 5000);
    try {
      await ledger.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;' + SCHEMA);
      const rows = await new Promise<{ target: string; period: string; bytes: number }[]>((resolve, reject) =>
        db.all('SELECT target, period, bytes FROM budget_usage', (e, r: { target: string; period: string; bytes: number }[]) => (e ? reject(e) : resolve(r))),
      );
      for (const r of rows) ledger.kept.set(key(r.target, r.period), r.bytes);
    } catch (e) {
      await new Promise<void>((resolve) => db.close(() => resolve()));
      throw e;
    }
    return ledger;
  }

  /** Bytes that went out to `target` at `at`. */
  add(target: string, bytes: number, at: number = Date.now()): void {
    if (bytes <= 0 || this.closed) return;
    const p = periodsOf(at, this.zones.get(target) ?? '');
    for (const period of [`d:${p.day}`, `m:${p.month}`]) {
      const k = key(target, period);
      this.kept.set(k, (this.kept.get(k) ?? 0) + bytes);
      this.unwritten.set(k, (this.unwritten.get(k) ?? 0) + bytes);
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch(() => undefined);
    }, this.flushMs);
  }

  private readonly zones = new Map<string, string>();

  /** The calendar a target's budget follows (its days and months are counted in this zone from now on). */
  setTimeZone(target: string, timeZone: string): void {
    this.zones.set(target, timeZone);
  }

  usage(target: string, at: number = Date.now()): BudgetUsage {
    const p = periodsOf(at, this.zones.get(target) ?? '');
    return {
      day: { period: p.day, bytes: this.kept.get(key(target, `d:${p.day}`)) ?? 0 },
      month: { period: p.month, bytes: this.kept.get(key(target, `m:${p.month}`)) ?? 0 },
    };
  }

  /** Writes what was added since the last write, in one transaction. */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      if (this.unwritten.size === 0) return;
      const batch = [...this.unwritten];
      this.unwritten.clear();
      const sql = batch
        .map(([k, n]) => {
          const [target, period] = JSON.parse(k) as [string, string];
          return `INSERT INTO budget_usage (target, period, bytes) VALUES (${quote(target)}, ${quote(period)}, ${Math.round(n)})
            ON CONFLICT(target, period) DO UPDATE SET bytes = bytes + excluded.bytes;`;
        })
        .join('\n');
      try {
        await this.exec(`BEGIN; ${sql} DELETE FROM budget_usage WHERE period NOT IN (SELECT period FROM budget_usage GROUP BY period ORDER BY period DESC LIMIT ${KEEP_PERIODS}); COMMIT;`);
      } catch (e) {
        await this.exec('ROLLBACK').catch(() => undefined);
        // Counted again at the next write: nothing is forgotten because one write failed.
        for (const [k, n] of batch) this.unwritten.set(k, (this.unwritten.get(k) ?? 0) + n);
        throw e;
      }
    });
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush().catch(() => undefined);
    this.closed = true;
    await new Promise<void>((resolve) => this.db.close(() => resolve()));
  }

  private exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (e) => (e ? reject(e) : resolve())));
  }
}

const key = (target: string, period: string): string => JSON.stringify([target, period]);
const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;
