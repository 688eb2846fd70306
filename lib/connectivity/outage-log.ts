import fs from 'fs';
import path from 'path';
import type sqlite3 from 'sqlite3';

// The outage log: every change between online and offline a connectivity node saw, kept in SQLite so that outages
// can be looked at later (after a restart, from a shell). One row per change, written when it happens: a device that
// stays online writes nothing. Bounded by age and by count.

export interface OutageEntry {
  /** The connectivity node's name (or id when unnamed). */
  monitor: string;
  /** What it probes, as shown in its status (no login: probe URLs cannot hold one). */
  target: string;
  at: number;
  online: boolean;
  reason: string;
  /** How long the state before this one lasted, ms (null for the first verdict after a start). */
  previousMs: number | null;
}

export interface Outage {
  monitor: string;
  target: string;
  start: number;
  /** Null while it lasts. */
  end: number | null;
  durationMs: number;
  reason: string;
}

export interface OutageSummary {
  outages: Outage[];
  /** The longest first. */
  longest: Outage[];
  /** Offline time per calendar day (this machine's time zone), oldest day first. */
  perDay: { day: string; offlineS: number; outages: number }[];
  totalOfflineS: number;
}

export interface OutageLogLimits {
  maxAgeDays: number;
  maxRows: number;
}

export const DEFAULT_OUTAGE_LIMITS: OutageLogLimits = { maxAgeDays: 90, maxRows: 10_000 };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS connectivity_log (
  id INTEGER PRIMARY KEY,
  monitor TEXT NOT NULL,
  target TEXT NOT NULL,
  at INTEGER NOT NULL,
  online INTEGER NOT NULL,
  reason TEXT NOT NULL,
  previous_ms INTEGER
);
CREATE INDEX IF NOT EXISTS connectivity_log_at ON connectivity_log (monitor, at);`;

type Row = { monitor: string; target: string; at: number; online: number; reason: string; previous_ms: number | null };

export class OutageLog {
  private writes = 0;

  private constructor(
    private readonly db: sqlite3.Database,
    readonly file: string,
    private readonly limits: OutageLogLimits,
  ) {}

  /** Opens (or creates) the log. `readOnly` for looking only (the CLI): nothing is created or changed. */
  static async open(file: string, options: { readOnly?: boolean; limits?: Partial<OutageLogLimits> } = {}): Promise<OutageLog> {
    const limits = { ...DEFAULT_OUTAGE_LIMITS, ...options.limits };
    if (!options.readOnly) await fs.promises.mkdir(path.dirname(file), { recursive: true });
    // Loaded here, not with the module: a flow whose connectivity nodes keep no log never loads the native binding.
    const driver = require('sqlite3') as typeof sqlite3;
    const db = await new Promise<sqlite3.Database>((resolve, reject) => {
      const mode = options.readOnly ? driver.OPEN_READONLY : driver.OPEN_READWRITE | driver.OPEN_CREATE;
      const d = new driver.Database(file, mode, (e) => (e ? reject(e) : resolve(d)));
    });
    const log = new OutageLog(db, file, limits);
    try {
      await log.exec('PRAGMA busy_timeout = 5000');
      if (!options.readOnly) {
        // WAL and NORMAL: a row survives a crash of Node-RED once written; a power cut may take the last few.
        await log.exec('PRAGMA journal_mode = WAL');
        await log.exec('PRAGMA synchronous = NORMAL');
        await log.exec(SCHEMA);
      }
    } catch (e) {
      await log.close();
      throw e;
    }
    return log;
  }

  /** Keeps one change; now and then trims what is past the limits. */
  async record(e: OutageEntry): Promise<void> {
    await this.run('INSERT INTO connectivity_log (monitor, target, at, online, reason, previous_ms) VALUES (?, ?, ?, ?, ?, ?)', [
      e.monitor,
      e.target,
      Math.round(e.at),
      e.online ? 1 : 0,
      e.reason.slice(0, 300),
      e.previousMs === null ? null : Math.round(e.previousMs),
    ]);
    if (this.writes++ % 50 === 0) await this.trim(e.at);
  }

  /** Drops rows older than the age limit and the oldest beyond the count limit. */
  async trim(now: number = Date.now()): Promise<void> {
    await this.run('DELETE FROM connectivity_log WHERE at < ?', [now - this.limits.maxAgeDays * 86_400_000]);
    await this.run('DELETE FROM connectivity_log WHERE id <= (SELECT id FROM connectivity_log ORDER BY id DESC LIMIT 1 OFFSET ?)', [this.limits.maxRows]);
  }

  /** Changes, newest first. */
  async entries(options: { monitor?: string; limit?: number; since?: number } = {}): Promise<OutageEntry[]> {
    const rows = await this.all(
      `SELECT monitor, target, at, online, reason, previous_ms FROM connectivity_log
       WHERE (?1 IS NULL OR monitor = ?1) AND at >= ?2 ORDER BY at DESC, id DESC LIMIT ?3`,
      [options.monitor ?? null, options.since ?? 0, Math.max(1, Math.min(options.limit ?? 500, 100_000))],
    );
    return rows.map(toEntry);
  }

  /** Outages (offline spans) from the log, the longest ones, and offline time per day. */
  async summary(options: { monitor?: string; days?: number; now?: number; top?: number } = {}): Promise<OutageSummary> {
    const now = options.now ?? Date.now();
    const since = now - (options.days ?? 30) * 86_400_000;
    // One change before the window too, so an outage that began before it is cut at its edge, not lost.
    const rows = await this.all(
      `SELECT monitor, target, at, online, reason, previous_ms FROM connectivity_log
       WHERE (?1 IS NULL OR monitor = ?1) AND at >= (SELECT IFNULL(MAX(at), 0) FROM connectivity_log WHERE (?1 IS NULL OR monitor = ?1) AND at < ?2)
       ORDER BY monitor, at, id`,
      [options.monitor ?? null, since],
    );
    return summarize(rows.map(toEntry), since, now, options.top ?? 10);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.db.close(() => resolve()));
  }

  private exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (e) => (e ? reject(e) : resolve())));
  }

  private run(sql: string, params: unknown[]): Promise<void> {
    return new Promise((resolve, reject) => this.db.run(sql, params, (e) => (e ? reject(e) : resolve())));
  }

  private all(sql: string, params: unknown[]): Promise<Row[]> {
    return new Promise((resolve, reject) => this.db.all<Row>(sql, params, (e, rows) => (e ? reject(e) : resolve(rows))));
  }
}

function toEntry(r: Row): OutageEntry {
  return { monitor: r.monitor, target: r.target, at: r.at, online: r.online === 1, reason: r.reason, previousMs: r.previous_ms };
}

/**
 * Offline spans from a list of changes (oldest first, any number of monitors): each runs from a change to offline to
 * the next change of the same monitor, or to `now` while it lasts; cut to [since, now].
 */
export function summarize(entries: OutageEntry[], since: number, now: number, top = 10): OutageSummary {
  const outages: Outage[] = [];
  const open = new Map<string, OutageEntry>();
  const sorted = [...entries].sort((a, b) => a.at - b.at);
  for (const e of sorted) {
    const began = open.get(e.monitor);
    if (began && e.online) {
      outages.push(span(began, e.at));
      open.delete(e.monitor);
    } else if (!began && !e.online) {
      open.set(e.monitor, e);
    }
  }
  for (const began of open.values()) outages.push({ ...span(began, now), end: null });
  const cut = outages
    .map((o) => ({ ...o, start: Math.max(o.start, since), durationMs: Math.max(0, Math.min(o.end ?? now, now) - Math.max(o.start, since)) }))
    .filter((o) => o.durationMs > 0 || o.end === null)
    .sort((a, b) => a.start - b.start);
  const days = new Map<string, { offlineS: number; outages: number }>();
  for (const o of cut) {
    let t = o.start;
    const end = o.end ?? now;
    let first = true;
    for (let i = 0; t < end && i < 10_000; i++) {
      const d = new Date(t);
      const next = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime();
      const upTo = Math.min(next, end);
      const key = dayKey(d);
      const cur = days.get(key) ?? { offlineS: 0, outages: 0 };
      cur.offlineS += (upTo - t) / 1000;
      if (first) cur.outages++;
      first = false;
      days.set(key, cur);
      t = upTo;
    }
  }
  const perDay = [...days.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([day, v]) => ({ day, offlineS: Math.round(v.offlineS), outages: v.outages }));
  return {
    outages: cut,
    longest: [...cut].sort((a, b) => b.durationMs - a.durationMs).slice(0, top),
    perDay,
    totalOfflineS: Math.round(cut.reduce((s, o) => s + o.durationMs, 0) / 1000),
  };
}

function span(began: OutageEntry, end: number): Outage {
  return { monitor: began.monitor, target: began.target, start: began.at, end, durationMs: end - began.at, reason: began.reason };
}

function dayKey(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}
