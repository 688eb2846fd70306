'use strict';
// Shared pieces of the benchmarks: timing, a promise wrapper over bare sqlite3, realistic messages, fast bulk fill,
// and the printed table. Nothing here judges a number: the benchmarks print figures, they never fail on them.
const fs = require('fs');
const os = require('os');
const path = require('path');
const sqlite3 = require('sqlite3');

const { QueueStore, DEFAULT_POLICY } = require('../dist/lib/queue/store.js');
const { encodeMessage, payloadBytes } = require('../dist/lib/message/codec.js');

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Temp folders on the real disk (os.tmpdir() is not tmpfs here), all removed by cleanup(). */
const tempDirs = [];
function tempDir(label) {
  const base = process.env.BENCH_TMPDIR || os.tmpdir();
  const d = fs.mkdtempSync(path.join(base, `uplink-bench-${label}-`));
  tempDirs.push(d);
  return d;
}
function removeTempDirs() {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/**
 * Runs `op` one call at a time (awaited) until `seconds` have passed or `maxOps` calls were made, whichever first.
 * With `parallel` > 1, that many loops run at once and share the same limits.
 */
async function measure(op, { seconds, maxOps, parallel = 1 }) {
  let ops = 0;
  const t0 = now();
  const end = t0 + seconds * 1000;
  const loop = async () => {
    while (ops < maxOps && now() < end) {
      ops++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: parallel }, loop));
  const sec = (now() - t0) / 1000;
  return { ops, sec, rate: ops / sec };
}

// ---- bare sqlite3 ---------------------------------------------------------------------------------------------

class Bare {
  static open(file) {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(new Bare(db))));
    });
  }
  constructor(db) {
    this.db = db;
  }
  run(sql, params = []) {
    return new Promise((resolve, reject) =>
      this.db.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      }),
    );
  }
  get(sql, params = []) {
    return new Promise((resolve, reject) => this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row))));
  }
  all(sql, params = []) {
    return new Promise((resolve, reject) => this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows))));
  }
  exec(sql) {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }
  close() {
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
  /** The pragmas QueueStore uses. */
  async durable(synchronous = 'FULL') {
    await this.exec('PRAGMA busy_timeout = 5000');
    const r = await this.get('PRAGMA journal_mode = WAL');
    if (r.journal_mode !== 'wal') throw new Error('no WAL');
    await this.exec(`PRAGMA synchronous = ${synchronous}`);
    return this;
  }
}

/**
 * WAL frames (pages) a write adds, averaged over `n` calls: what a commit costs the disk, free of timing noise.
 * Needs a fresh database (its WAL below the 1000-page auto-checkpoint) so the WAL only grows.
 */
async function walPagesPer(file, n, op) {
  const frames = () => {
    try {
      const st = fs.statSync(`${file}-wal`);
      return Math.max(0, (st.size - 32) / (4096 + 24));
    } catch {
      return 0;
    }
  };
  const before = frames();
  for (let i = 0; i < n; i++) await op(i);
  return (frames() - before) / n;
}

// ---- messages -------------------------------------------------------------------------------------------------

/** A sensor reading as a flow would queue it: about 300 bytes once encoded. */
function makeMessage(i) {
  const t = new Date(Date.UTC(2025, 10, 26, 6, 0, 0) + i * 1000);
  return {
    topic: 'greenhouse-3/climate',
    payload: {
      seq: i,
      at: t.toISOString(),
      temperature: 21.5 + (i % 37) / 10,
      humidity: 48 + (i % 23),
      co2: 612 + (i % 101),
      lux: 10450 + (i % 997),
      battery: 3.71,
      rssi: -67 - (i % 9),
      device: 'esp32-c3-0a1b2c',
    },
    uplink: { key: `climate/2025/11/26/greenhouse-3-${String(i).padStart(9, '0')}.json`, contentType: 'application/json' },
  };
}

/**
 * What the offline-queue node hands QueueStore.enqueue for makeMessage(i).
 * @param {number} i
 * @returns {import('../dist/lib/queue/store.js').NewItem}
 */
function makeItem(i) {
  const m = makeMessage(i);
  return { kind: 'inline', bytes: payloadBytes(m.payload), msg: encodeMessage(m) };
}

/**
 * Creates the database with QueueStore's own schema (or opens the one there), then adds `n` pending items in one
 * transaction with SQL generated inside SQLite (synchronous and journal off): a million rows take seconds instead of
 * minutes. The schema's triggers keep `counts` and `totals` right. With `bytes`, the items say they are that large
 * (the message stays a small reading), and go in the large lane from the default policy's size on, as
 * QueueStore.enqueue would put them.
 * @param {string} file
 * @param {number} n
 * @param {{ priority?: number, bytes?: number }} [options]
 */
async function bulkFill(file, n, { priority = 5, bytes } = {}) {
  const store = await QueueStore.open(file, {}, { createFolder: true, recoverLeases: true, owner: 'bulkFill' });
  await store.close();
  if (n <= 0) return;
  const sample = makeItem(0);
  const size = bytes ?? sample.bytes;
  const lane = size >= DEFAULT_POLICY.largeItemBytes ? 1 : 0;
  const template = sample.msg.replace(/000000000/, '#########');
  if (template === sample.msg) throw new Error('message template has no slot for the sequence number');
  const db = await Bare.open(file);
  try {
    await db.get('PRAGMA journal_mode = DELETE');
    await db.exec('PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;');
    const start = Date.now() - n; // one millisecond apart, oldest first
    const before = (await db.get("SELECT n FROM counts WHERE state = 'pending'")).n;
    await db.exec('BEGIN');
    await db.run(
      `WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?)
       INSERT INTO items (state, priority, created_at, due_at, kind, file, bytes, msg, lane)
       SELECT 'pending', ?, ? + x, ? + x, 'inline', NULL, ?, replace(?, '#########', substr('000000000' || x, -9, 9)), ? FROM seq`,
      [n, priority, start, start, size, template, lane],
    );
    await db.exec('COMMIT');
    await db.get('PRAGMA journal_mode = WAL');
    const c = await db.get("SELECT n FROM counts WHERE state = 'pending'");
    if (c.n !== before + n) throw new Error(`bulk fill: counts say ${c.n} pending, expected ${before + n}`);
  } finally {
    await db.close();
  }
}

// ---- output ---------------------------------------------------------------------------------------------------

function fmtNum(x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 100) digits = 0;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtRatio(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return '-';
  return r >= 10 ? `${r.toFixed(0)}x` : r >= 1 ? `${r.toFixed(2)}x` : `${r.toFixed(3)}x`.replace(/^0/, '0');
}

/** A plain-text table: columns padded to their widest cell, numbers right-aligned. */
function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c ?? '')));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const right = headers.map((_, i) => rows.every((r) => /^[-\d.,x %<>=~+]*$/.test(String(r[i] ?? ''))));
  const line = (r) => r.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/**
 * What run.js hands each benchmark: the rows it prints, whether to run short, when the time budget ends, a logger, and
 * a register of child processes (killed at exit; the returned function forgets one).
 * @typedef {{ rows: any[], quick: boolean, deadline: number, log: (line: string) => void,
 *   registerChild: (child: import('child_process').ChildProcess) => () => void }} BenchContext
 */

/** @typedef {[id: string, name: string, run: (ctx: BenchContext) => Promise<void>]} Figure one printed figure */

module.exports = {
  QueueStore,
  DEFAULT_POLICY,
  Bare,
  now,
  sleep,
  median,
  tempDir,
  removeTempDirs,
  measure,
  walPagesPer,
  makeMessage,
  makeItem,
  bulkFill,
  fmtNum,
  fmtRatio,
  table,
};
