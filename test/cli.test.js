'use strict';
// The uplink-queue command, run as a user would run it: a separate process on the database a running queue node
// ("Node-RED", here a QueueStore opened with lease recovery in this process) has open at the same time.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');
const sqlite3 = require('sqlite3');
const { QueueStore, ITEM_STATES } = require('../dist/lib/queue/store.js');
const { encodeMessage } = require('../dist/lib/message/codec.js');

const CLI = path.join(__dirname, '..', 'dist', 'bin', 'uplink-queue.js');

/** Runs the CLI; resolves with its exit code and output whatever the code (a hung CLI is killed after 20 s). */
function cli(...args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : `${err.code}/${err.signal}`) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON a `--json` command printed; a clear failure when it printed something else. */
function json(r) {
  assert.strictEqual(r.code, 0, `exit code (stderr: ${r.stderr})`);
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    assert.fail(`--json output is not JSON (${e.message}): ${r.stdout}`);
  }
}

/** state -> {n, bytes} read from the rows with a connection of our own, every state present. */
function realCounts(file) {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.all('SELECT state, COUNT(*) AS n, SUM(bytes) AS bytes FROM items GROUP BY state', (e, rows) => {
        db.close();
        if (e) return reject(e);
        const out = {};
        for (const s of ITEM_STATES) out[s] = { n: 0, bytes: 0 };
        for (const r of rows) out[r.state] = { n: r.n, bytes: r.bytes };
        resolve(out);
      });
    });
  });
}

const byId = (rows) => new Map(rows.map((r) => [r.id, r]));

describe('uplink-queue (the command-line tool)', function () {
  this.timeout(30_000);

  let dir;
  let dbFile;
  /** The running queue node's store. */
  let store;
  /** Ids and files of the prepared items. */
  let dead;
  let deadFiles;
  let inFlight;
  let pending;
  let pendingFile;

  /**
   * A queue as a running node leaves it: 3 pending items (10 + 20 + 30 bytes, the last one a file), 1 in flight
   * (7 bytes, leased by "Node-RED"), and 3 dead letters (files of 100, 200, 300 bytes, each with its own last error).
   */
  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-cli-'));
    dbFile = path.join(dir, 'queue.db');
    store = await QueueStore.open(dbFile, {}, { recoverLeases: true, owner: 'Node-RED' });
    const msg = (n) => encodeMessage({ topic: `item ${n}`, payload: n });

    deadFiles = [];
    const deadIds = [];
    for (let i = 1; i <= 3; i++) {
      const file = path.join(dir, `capture-${i}.jpg`);
      fs.writeFileSync(file, Buffer.alloc(i * 100, i));
      deadFiles.push(file);
      deadIds.push((await store.enqueue({ kind: 'file', file, bytes: i * 100, priority: 1, msg: msg(`dead-${i}`) })).id);
    }
    inFlight = (await store.enqueue({ kind: 'inline', bytes: 7, priority: 2, msg: msg('in-flight') })).id;
    pendingFile = path.join(dir, 'capture-pending.jpg');
    fs.writeFileSync(pendingFile, Buffer.alloc(30));
    pending = [
      (await store.enqueue({ kind: 'inline', bytes: 10, msg: msg('p1') })).id,
      (await store.enqueue({ kind: 'inline', bytes: 20, msg: msg('p2') })).id,
      (await store.enqueue({ kind: 'file', file: pendingFile, bytes: 30, msg: msg('p3') })).id,
    ];

    const first = await store.lease(3);
    assert.deepStrictEqual(first.map((r) => r.id), deadIds, 'the priority-1 items are leased first');
    for (const [i, item] of first.entries()) {
      const r = await store.nack(item.id, item.attempts, { code: 'HTTP_403', message: `forbidden: capture-${i + 1}.jpg`, permanent: true });
      assert.strictEqual(r.status, 'dead');
    }
    const second = await store.lease(1);
    assert.deepStrictEqual(second.map((r) => r.id), [inFlight]);
    dead = deadIds;

    const c = (await store.stats()).counts;
    assert.deepStrictEqual(
      [c.pending, c.leased, c.dead, c.waiting, c.done],
      [{ n: 3, bytes: 60 }, { n: 1, bytes: 7 }, { n: 3, bytes: 600 }, { n: 0, bytes: 0 }, { n: 0, bytes: 0 }],
      'the prepared queue',
    );
  });

  afterEach(async function () {
    if (store) await store.close();
    store = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('stats', function () {
    it('prints counts by state, bytes and delivery state', async function () {
      const r = await cli('stats', dbFile);
      assert.strictEqual(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      const line = (label) => lines.find((l) => l.startsWith(label));
      assert.strictEqual(line('database'), `database     ${dbFile}`);
      assert.strictEqual(line('delivery'), 'delivery     running');
      assert.strictEqual(line('pending'), 'pending      3 (0 backing off), 60 B');
      assert.strictEqual(line('in flight'), 'in flight    1');
      assert.strictEqual(line('failed'), 'failed       3 (+0 expired)');
      assert.match(line('oldest'), /^oldest {7}\d+ s$/);
      assert.strictEqual(line('uploaded'), 'uploaded     0 since the database was created (0 dropped when full)');
    });

    it('--json gives the same numbers, machine-readable', async function () {
      await store.ack(inFlight); // one upload done, so totals are not all zero
      const s = json(await cli('stats', dbFile, '--json'));
      assert.strictEqual(s.file, dbFile);
      assert.strictEqual(s.paused, false);
      assert.deepStrictEqual(s.counts.pending, { n: 3, bytes: 60 });
      assert.deepStrictEqual(s.counts.leased, { n: 0, bytes: 0 });
      assert.deepStrictEqual(s.counts.done, { n: 1, bytes: 7 });
      assert.deepStrictEqual(s.counts.dead, { n: 3, bytes: 600 });
      assert.deepStrictEqual(s.counts.expired, { n: 0, bytes: 0 });
      assert.strictEqual(s.totals.enqueued, 7);
      assert.strictEqual(s.totals.done, 1);
      assert.strictEqual(s.totals.dead, 3);
      assert.strictEqual(typeof s.oldestQueuedAt, 'number');
      assert.ok(Math.abs(s.oldestQueuedAt - Date.now()) < 60_000, `oldestQueuedAt ${s.oldestQueuedAt}`);
      assert.deepStrictEqual(s.counts, await realCounts(dbFile), 'counts vs the rows');
    });
  });

  describe('list', function () {
    it('--state dead shows the dead letters with their last error', async function () {
      const r = await cli('list', dbFile, '--state', 'dead');
      assert.strictEqual(r.code, 0, r.stderr);
      for (const [i, id] of dead.entries()) {
        const at = r.stdout.split('\n').findIndex((l) => new RegExp(`^\\s*${id}\\s+dead\\s`).test(l));
        assert.ok(at >= 0, `item ${id} is listed:\n${r.stdout}`);
        const [row, error] = r.stdout.split('\n').slice(at, at + 2);
        assert.ok(row.includes(deadFiles[i]), `item ${id} shows its file: ${row}`);
        assert.ok(row.includes(`${(i + 1) * 100} B`), `item ${id} shows its size: ${row}`);
        assert.strictEqual(error.trim(), `last error: HTTP_403: forbidden: capture-${i + 1}.jpg`);
      }
      for (const id of [inFlight, ...pending]) {
        assert.ok(!new RegExp(`^\\s*${id}\\s`, 'm').test(r.stdout), `item ${id} is not dead and is not listed:\n${r.stdout}`);
      }
    });

    it('--json --state dead,leased --limit 3 gives rows with their state and error', async function () {
      const rows = json(await cli('list', dbFile, '--json', '--state', 'dead,leased', '--limit', '3'));
      assert.deepStrictEqual(rows.map((r) => [r.id, r.state]), [...dead.map((id) => [id, 'dead'])]);
      assert.deepStrictEqual(rows.map((r) => r.lastError), [1, 2, 3].map((i) => `HTTP_403: forbidden: capture-${i}.jpg`));
      const all = json(await cli('list', dbFile, '--json', '--state', 'dead,leased'));
      assert.deepStrictEqual(all.map((r) => [r.id, r.state]), [...dead.map((id) => [id, 'dead']), [inFlight, 'leased']]);
    });

    it('says so when there is nothing to list', async function () {
      const r = await cli('list', dbFile, '--state', 'expired');
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(r.stdout.trim(), '(no items)');
    });

    it('rejects an unknown state with exit code 2', async function () {
      const r = await cli('list', dbFile, '--state', 'deadd');
      assert.strictEqual(r.code, 2);
      assert.match(r.stderr, /unknown state deadd/);
    });
  });

  describe('retry-failed', function () {
    it('--id N queues only that item again, with a fresh set of attempts', async function () {
      const r = await cli('retry-failed', dbFile, '--id', String(dead[1]));
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(r.stdout.trim(), '1 items queued again');
      const rows = byId(await store.list());
      assert.strictEqual(rows.get(dead[1]).state, 'pending');
      assert.strictEqual(rows.get(dead[1]).attempts, 0);
      assert.strictEqual(rows.get(dead[0]).state, 'dead');
      assert.strictEqual(rows.get(dead[2]).state, 'dead');
      const c = (await store.stats()).counts;
      assert.deepStrictEqual([c.pending, c.dead], [{ n: 4, bytes: 260 }, { n: 2, bytes: 400 }]);
      assert.deepStrictEqual(c, await realCounts(dbFile));
      // And the running node really delivers it: it is the highest-priority ready item.
      const next = await store.lease(2);
      assert.deepStrictEqual(next.map((i) => i.id), [dead[1]]);
    });

    it('without --id queues every failed item again', async function () {
      const r = json(await cli('retry-failed', dbFile, '--json'));
      assert.deepStrictEqual(r, { retried: 3 });
      const rows = byId(await store.list());
      for (const id of dead) assert.strictEqual(rows.get(id).state, 'pending', `item ${id}`);
      assert.strictEqual(rows.get(inFlight).state, 'leased', 'the in-flight item is not touched');
      const c = (await store.stats()).counts;
      assert.deepStrictEqual([c.pending, c.dead], [{ n: 6, bytes: 660 }, { n: 0, bytes: 0 }]);
      assert.deepStrictEqual(c, await realCounts(dbFile));
      const again = await cli('retry-failed', dbFile);
      assert.strictEqual(again.stdout.trim(), '0 items queued again');
    });
  });

  describe('purge-failed', function () {
    it('deletes the dead rows but keeps their files', async function () {
      const r = await cli('purge-failed', dbFile);
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(r.stdout.trim(), '3 items purged (their files are kept)');
      const rows = byId(await store.list());
      assert.deepStrictEqual([...rows.keys()].sort((a, b) => a - b), [inFlight, ...pending]);
      for (const f of deadFiles) assert.ok(fs.existsSync(f), `${f} is kept`);
      const c = (await store.stats()).counts;
      assert.deepStrictEqual([c.pending, c.leased, c.dead], [{ n: 3, bytes: 60 }, { n: 1, bytes: 7 }, { n: 0, bytes: 0 }]);
      assert.deepStrictEqual(c, await realCounts(dbFile));
    });

    it('--delete-files deletes the dead items\' files too, and only theirs', async function () {
      const one = json(await cli('purge-failed', dbFile, '--id', String(dead[0]), '--delete-files', '--json'));
      assert.deepStrictEqual(one, { purged: 1, filesDeleted: 1 });
      assert.ok(!fs.existsSync(deadFiles[0]), 'the purged item\'s file is deleted');
      assert.ok(fs.existsSync(deadFiles[1]) && fs.existsSync(deadFiles[2]), 'the other dead items keep their files');

      const rest = await cli('purge-failed', dbFile, '--delete-files');
      assert.strictEqual(rest.code, 0, rest.stderr);
      assert.strictEqual(rest.stdout.trim(), '2 items purged, 2 files deleted');
      for (const f of deadFiles) assert.ok(!fs.existsSync(f), `${f} is deleted`);
      assert.ok(fs.existsSync(pendingFile), 'a pending item\'s file is never deleted');
      assert.strictEqual((await store.stats()).counts.dead.n, 0);
      assert.deepStrictEqual((await store.list()).map((r) => r.id), [inFlight, ...pending]);
    });
  });

  describe('pause and resume', function () {
    it('set the "paused" meta value the running node follows', async function () {
      const before = await store.dataVersion();
      const p = await cli('pause', dbFile);
      assert.strictEqual(p.code, 0, p.stderr);
      assert.strictEqual(p.stdout.trim(), 'delivery paused');
      assert.strictEqual(await store.getMeta('paused'), 'true');
      assert.notStrictEqual(await store.dataVersion(), before, 'the node can see that another process changed the database');
      assert.strictEqual(json(await cli('stats', dbFile, '--json')).paused, true);
      assert.match((await cli('stats', dbFile)).stdout, /^delivery {5}paused$/m);

      const r = await cli('resume', dbFile, '--json');
      assert.deepStrictEqual(json(r), { paused: false });
      assert.strictEqual(await store.getMeta('paused'), 'false');
      assert.match((await cli('stats', dbFile)).stdout, /^delivery {5}running$/m);
    });
  });

  describe('errors', function () {
    it('a missing database exits 1 with a clear message and creates nothing', async function () {
      const missing = path.join(dir, 'nope', 'queue.db');
      const r = await cli('stats', missing);
      assert.strictEqual(r.code, 1);
      assert.strictEqual(r.stdout, '');
      assert.strictEqual(r.stderr.trim(), `uplink-queue: ${missing} does not exist`);
      assert.ok(!fs.existsSync(path.dirname(missing)), 'the CLI created nothing');

      const missingFile = path.join(dir, 'other.db');
      const r2 = await cli('retry-failed', missingFile);
      assert.strictEqual(r2.code, 1);
      assert.match(r2.stderr, /does not exist/);
      assert.ok(!fs.existsSync(missingFile), 'the CLI did not create an empty database');
    });

    it('a file that is not a queue database exits 1 and is left exactly as it was', async function () {
      const flows = path.join(dir, 'flows.json');
      fs.writeFileSync(flows, '[{"id":"a","type":"tab"}]');
      const before = fs.readdirSync(dir).sort();
      const r = await cli('stats', flows);
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /flows\.json is not an Uplink queue database/);
      assert.strictEqual(fs.readFileSync(flows, 'utf8'), '[{"id":"a","type":"tab"}]');
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), before, 'nothing moved aside, nothing created');
    });

    it('an unknown command exits 2 with the usage', async function () {
      const r = await cli('frobnicate', dbFile);
      assert.strictEqual(r.code, 2);
      assert.match(r.stderr, /unknown command "frobnicate"/);
      assert.match(r.stderr, /usage: uplink-queue <command> <database>/);
      assert.match(r.stderr, /retry-failed/);
      assert.strictEqual((await store.stats()).counts.dead.n, 3, 'nothing changed');
    });

    it('no command exits 2 with the usage; --help exits 0', async function () {
      const none = await cli();
      assert.strictEqual(none.code, 2);
      assert.match(none.stdout + none.stderr, /usage: uplink-queue/);
      const help = await cli('--help');
      assert.strictEqual(help.code, 0);
      assert.match(help.stdout, /usage: uplink-queue/);
    });
  });

  describe('beside a running queue node', function () {
    it('leaves the node\'s leases and lock alone', async function () {
      const lock = dbFile + '.lock';
      assert.strictEqual(fs.readFileSync(lock, 'utf8').split(' ')[0], String(process.pid), 'the node holds the lock');
      const [leased] = await store.list({ states: ['leased'] });
      assert.strictEqual(leased.id, inFlight);

      for (const args of [['stats'], ['stats', '--json'], ['list'], ['retry-failed', '--id', String(dead[0])], ['pause'], ['resume']]) {
        const r = await cli(args[0], dbFile, ...args.slice(1));
        assert.strictEqual(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        const [still] = await store.list({ states: ['leased'] });
        assert.deepStrictEqual(still, leased, `after \`uplink-queue ${args.join(' ')}\` the in-flight item is still leased as it was`);
        assert.strictEqual(fs.readFileSync(lock, 'utf8').split(' ')[0], String(process.pid), `after ${args.join(' ')} the node still holds the lock`);
      }
      // The node's ack for it still lands.
      assert.strictEqual((await store.ack(inFlight)).status, 'acked');
    });

    it('works while the node is busy writing', async function () {
      let stop = false;
      let written = 0;
      const writer = (async () => {
        while (!stop) {
          await store.enqueue({ kind: 'inline', bytes: 1, msg: encodeMessage({ payload: 'x' }) });
          written++;
        }
      })();
      try {
        const results = await Promise.all([cli('retry-failed', dbFile, '--json'), cli('stats', dbFile, '--json')]);
        assert.deepStrictEqual(json(results[0]), { retried: 3 });
        assert.ok(json(results[1]).counts.pending.n >= 3);
      } finally {
        stop = true;
        await writer;
      }
      assert.ok(written > 0, 'the node kept writing');
      const c = (await store.stats()).counts;
      assert.strictEqual(c.pending.n, 3 + 3 + written);
      assert.strictEqual(c.dead.n, 0);
      assert.deepStrictEqual(c, await realCounts(dbFile));
    });
  });
});
