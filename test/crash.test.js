'use strict';
// The promise "a crash at any instant loses nothing that was acknowledged", checked the blunt way: a child process works
// the queue as fast as it can and is SIGKILLed at a random instant, over and over, on the same database. After every
// kill the database must be intact, hold every row the child was told was stored (once), and its trigger-maintained
// counts must still match the rows.
// Set UPLINK_CRASH_TIMINGS=1 to print how long the runs and checks took.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const sqlite3 = require('sqlite3');
const { QueueStore, ITEM_STATES } = require('../dist/lib/queue/store.js');
const { decodeMessage } = require('../dist/lib/message/codec.js');

const CHILD = path.join(__dirname, 'fixtures', 'crash-child.js');
const ITERATIONS = 57;
/** Every EARLY_EVERY-th run is killed at a random instant after spawn, ready or not (during open and lease recovery). */
const EARLY_EVERY = 8; // 57 runs: 50 killed after ready, 7 early
const READY_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const randInt = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Minimal promise wrapper over a raw sqlite3 connection: the checks must not trust the code under test. */
function openRaw(file) {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (err) => (err ? reject(err) : resolve(db)));
  });
}
const all = (db, sql, params = []) => new Promise((res, rej) => db.all(sql, params, (e, rows) => (e ? rej(e) : res(rows))));
const closeRaw = (db) => new Promise((res, rej) => db.close((e) => (e ? rej(e) : res())));

/** state -> {n, bytes} from the rows themselves, with every state present. */
async function realCounts(db) {
  const out = {};
  for (const s of ITEM_STATES) out[s] = { n: 0, bytes: 0 };
  for (const r of await all(db, 'SELECT state, COUNT(*) AS n, SUM(bytes) AS bytes FROM items GROUP BY state')) {
    out[r.state] = { n: r.n, bytes: r.bytes };
  }
  return out;
}

async function tableCounts(db) {
  const out = {};
  for (const r of await all(db, 'SELECT state, n, bytes FROM counts WHERE state <> \'enqueued\'')) out[r.state] = { n: r.n, bytes: r.bytes };
  return out;
}

describe('crash safety: the queue survives kill -9 at any instant', function () {
  let dir;
  let dbFile;
  const timings = [];
  let summary;
  /** How long a child takes from "go" to READY. */
  const readyMs = [];
  /** Children not yet reaped, so that after() can kill whatever an aborted run left. */
  const live = new Set();

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-crash-'));
    dbFile = path.join(dir, 'queue.db');
  });

  after(async function () {
    const leftovers = [...live];
    for (const proc of leftovers) proc.kill('SIGKILL');
    await Promise.all(
      leftovers.map((proc) =>
        withTimeout(new Promise((r) => proc.once('close', r)), EXIT_TIMEOUT_MS, `leftover child ${proc.pid} to exit`).catch(() => undefined),
      ),
    );
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a child that loads its modules and waits for "go" before it opens the database. */
  function prepare(run) {
    const proc = spawn(process.execPath, [CHILD, dbFile, String(run)], { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(proc);
    const c = { run, proc, out: '', err: '' };
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => (c.out += d));
    proc.stderr.on('data', (d) => (c.err += d));
    proc.stdin.on('error', () => undefined); // EPIPE if it died before "go"
    c.closed = new Promise((resolve) =>
      proc.once('close', (code, signal) => {
        live.delete(proc);
        resolve({ code, signal });
      }),
    );
    return c;
  }

  /** Lets a prepared child run, kills it, and resolves with the complete lines it printed. */
  async function goAndKill(c, early) {
    const { run, proc } = c;
    proc.stdin.write('go\n');
    const started = Date.now();
    let delay;
    if (early) {
      // Anywhere from the first statement to just past the moment the store is open (lease recovery included).
      const typical = readyMs.length ? readyMs.reduce((a, b) => a + b, 0) / readyMs.length : 30;
      delay = randInt(0, Math.round(typical * 1.3));
      await sleep(delay);
    } else {
      const ready = new Promise((resolve, reject) => {
        const onData = () => {
          if (c.out.includes('READY\n')) {
            proc.stdout.off('data', onData);
            resolve();
          }
        };
        proc.stdout.on('data', onData);
        onData();
        c.closed.then(({ code, signal }) =>
          reject(new Error(`run ${run}: the child exited (code ${code}, signal ${signal}) before it was ready: ${c.err}`)),
        );
      });
      await withTimeout(ready, READY_TIMEOUT_MS, `run ${run} to open the queue`);
      readyMs.push(Date.now() - started);
      delay = randInt(20, 250);
      await sleep(delay);
    }
    const aliveAtKill = proc.exitCode === null && proc.signalCode === null;
    proc.kill('SIGKILL');
    const { code, signal } = await withTimeout(c.closed, EXIT_TIMEOUT_MS, `run ${run} to die`);
    assert.ok(
      aliveAtKill && signal === 'SIGKILL',
      `run ${run}: the child should have been running until killed, but it exited with code ${code}, signal ${signal}: ${c.err}`,
    );
    const lines = c.out.split('\n');
    lines.pop(); // the part after the last newline is incomplete (or empty)
    return { lines, ms: Date.now() - started, delay };
  }

  it(`keeps every committed row, once, with consistent counts, over ${ITERATIONS} kills on one database`, async function () {
    this.timeout(180_000);
    const tried = new Set(); // T: enqueue started
    const committed = new Set(); // E: enqueue resolved
    const ackTried = new Set(); // K
    const acked = new Set(); // A
    const deadTried = new Set(); // X
    const dead = new Set(); // D
    let readyRuns = 0;

    let next = prepare(0);
    for (let run = 0; run < ITERATIONS; run++) {
      const early = run % EARLY_EVERY === EARLY_EVERY - 1;
      const { lines, ms, delay } = await goAndKill(next, early);
      // The next child starts up while this run's database is checked; it waits for "go" before touching it.
      next = run + 1 < ITERATIONS ? prepare(run + 1) : undefined;
      for (const line of lines) {
        const [tag, key] = line.split(' ');
        if (tag === 'READY') readyRuns++;
        else if (tag === 'T') tried.add(key);
        else if (tag === 'E') committed.add(key);
        else if (tag === 'K') ackTried.add(key);
        else if (tag === 'A') acked.add(key);
        else if (tag === 'X') deadTried.add(key);
        else if (tag === 'D') dead.add(key);
        else assert.fail(`run ${run}: unexpected line from the child: ${JSON.stringify(line)}`);
      }
      const checkStart = Date.now();
      const where = `run ${run} (${early ? 'early kill' : 'killed'} ${delay} ms ${early ? 'after go' : 'after ready'})`;

      // 1. The database as the crash left it (no recovery yet): structurally sound, counts agree with the rows.
      // This connection stays open through the recovery below and is used for the row checks after it.
      const db = await openRaw(dbFile);
      try {
        const check = await all(db, 'PRAGMA integrity_check');
        assert.deepStrictEqual(check, [{ integrity_check: 'ok' }], `${where}: integrity_check`);
        assert.deepStrictEqual(await tableCounts(db), await realCounts(db), `${where}: counts table vs rows, before recovery`);

        // 2. What the next Node-RED start does: open with lease recovery. It must not have found anything to move aside.
        const store = await QueueStore.open(dbFile, {}, { recoverLeases: true, owner: 'crash test' });
        let stats;
        try {
          assert.strictEqual(store.movedAside, undefined, `${where}: the database was judged corrupt and moved aside`);
          stats = await store.stats();
        } finally {
          await store.close();
        }
        assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.includes('corrupt')), [], `${where}: corrupt copies`);
        assert.ok(!fs.existsSync(dbFile + '.lock'), `${where}: the recovering store left its lock behind`);

        // 3. The rows after recovery.
        const real = await realCounts(db);
        assert.deepStrictEqual(stats.counts, real, `${where}: stats().counts vs SELECT state, COUNT(*), SUM(bytes)`);
        assert.deepStrictEqual(await tableCounts(db), real, `${where}: counts table vs rows, after recovery`);
        assert.strictEqual(real.leased.n, 0, `${where}: rows left leased after recovery`);

        const rows = await all(db, 'SELECT id, state, bytes, msg, lease_until FROM items ORDER BY id');
        const total = await all(db, "SELECT n FROM counts WHERE state = 'enqueued'");
        assert.strictEqual(total[0].n, rows.length, `${where}: totals.enqueued vs rows (nothing is ever deleted here)`);

        const byKey = new Map();
        for (const row of rows) {
          let msg;
          try {
            msg = decodeMessage(row.msg);
          } catch (e) {
            assert.fail(`${where}: row ${row.id} does not decode (${e.message}): ${row.msg.slice(0, 200)}`);
          }
          const key = msg.key;
          assert.ok(typeof key === 'string' && tried.has(key), `${where}: row ${row.id} has a key nobody enqueued: ${key}`);
          assert.ok(!byKey.has(key), `${where}: key ${key} is stored twice (rows ${byKey.get(key)?.id} and ${row.id})`);
          assert.ok(Buffer.isBuffer(msg.buf) && msg.buf.toString() === key, `${where}: row ${row.id} lost its Buffer`);
          assert.ok(msg.at instanceof Date && !Number.isNaN(msg.at.getTime()), `${where}: row ${row.id} lost its Date`);
          assert.strictEqual(row.bytes, Buffer.byteLength(/** @type {string} */ (msg.payload)), `${where}: row ${row.id} bytes vs its payload`);
          assert.strictEqual(row.lease_until, null, `${where}: row ${row.id} (${row.state}) still has a lease_until`);
          if (row.state === 'done') assert.ok(ackTried.has(key), `${where}: ${key} is done but was never acked`);
          if (row.state === 'dead') assert.ok(deadTried.has(key), `${where}: ${key} is dead but was never nacked as permanent`);
          byKey.set(key, row);
        }
        for (const key of committed) {
          assert.ok(byKey.has(key), `${where}: ${key} was reported stored (E) but its row is missing`);
        }
        for (const key of acked) {
          assert.strictEqual(byKey.get(key)?.state, 'done', `${where}: ${key} was reported acked (A) but is not done`);
        }
        for (const key of dead) {
          assert.strictEqual(byKey.get(key)?.state, 'dead', `${where}: ${key} was reported dead (D) but is not dead`);
        }
      } finally {
        await closeRaw(db);
      }
      timings.push({ run, early, ms, checkMs: Date.now() - checkStart });
    }

    // The runs must really have exercised the paths above, or the checks prove nothing.
    const normalRuns = ITERATIONS - Math.floor(ITERATIONS / EARLY_EVERY);
    assert.ok(normalRuns >= 50, 'at least 50 kills after ready');
    assert.ok(readyRuns >= normalRuns, `only ${readyRuns} runs got ready`);
    // (Low bars: an idle 2-core machine does ~2000 enqueues, 1500 acks and 100 dead letters here.)
    assert.ok(committed.size >= 200, `only ${committed.size} enqueues were reported committed`);
    assert.ok(acked.size >= 50, `only ${acked.size} acks were reported`);
    assert.ok(dead.size >= 2, `only ${dead.size} permanent nacks were reported`);
    assert.ok(tried.size > committed.size || acked.size < ackTried.size, 'no kill ever landed inside an operation');
    summary = {
      readyMs: Math.round(readyMs.reduce((a, b) => a + b, 0) / readyMs.length),
      tried: tried.size,
      committed: committed.size,
      acked: acked.size,
      dead: dead.size,
      readyRuns,
    };
  });

  after(function () {
    if (timings.length && process.env.UPLINK_CRASH_TIMINGS) {
      const slowest = timings.reduce((a, b) => (b.ms + b.checkMs > a.ms + a.checkMs ? b : a));
      const avg = (k) => Math.round(timings.reduce((s, t) => s + t[k], 0) / timings.length);
      process.stdout.write(
        `      slowest run ${JSON.stringify(slowest)}; average run ${avg('ms')} ms, check ${avg('checkMs')} ms; ${JSON.stringify(summary)}\n`,
      );
    }
  });
});
