'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const sqlite3 = require('sqlite3');
const { QueueStore, QueueFullError, HOT_SQL } = require('../dist/lib/queue/store');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

function clock(start = 1_700_000_000_000) {
  const c = { t: start, now: () => c.t, advance: (ms) => (c.t += ms) };
  return c;
}

/** @typedef {import('../dist/lib/queue/store').NewItem} NewItem */
/** @typedef {Extract<import('../dist/lib/queue/store').NackResult, { status: 'retry' }>} RetryResult */

/** @type {(extra?: Partial<NewItem>) => NewItem} */
const item = (extra = {}) => ({ kind: 'inline', bytes: 10, msg: JSON.stringify({ payload: 'x' }), ...extra });

function countRows(file) {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY);
    db.all('SELECT state, COUNT(*) AS n, SUM(bytes) AS bytes FROM items GROUP BY state', (err, rows) => {
      db.close();
      if (err) reject(err);
      else resolve(Object.fromEntries(rows.map((r) => [r.state, r])));
    });
  });
}

describe('QueueStore', function () {
  let dir;
  let store;
  let c;
  const open = (policy = {}, opts = {}) =>
    QueueStore.open(path.join(dir, 'q.db'), policy, { recoverLeases: true, now: c.now, random: () => 1, ...opts });

  beforeEach(() => {
    dir = tmpDir();
    c = clock();
  });
  afterEach(async () => {
    if (store) await store.close();
    store = undefined;
    rmrf(dir);
  });

  it('delivers in priority order, then oldest first', async function () {
    store = await open();
    const a = await store.enqueue(item({ priority: 5 }));
    const b = await store.enqueue(item({ priority: 1 }));
    const d = await store.enqueue(item({ priority: 5 }));
    const e = await store.enqueue(item({ priority: 1 }));
    const leased = await store.lease(10);
    assert.deepStrictEqual(leased.map((r) => r.id), [b.id, e.id, a.id, d.id]);
    assert.ok(leased.every((r) => r.attempts === 1 && r.state === 'leased'));
  });

  it('never has more than `concurrency` items in flight', async function () {
    store = await open();
    for (let i = 0; i < 5; i++) await store.enqueue(item());
    assert.strictEqual((await store.lease(2)).length, 2);
    assert.strictEqual((await store.lease(2)).length, 0);
    const [first] = await store.list({ states: ['leased'] });
    await store.ack(first.id);
    assert.strictEqual((await store.lease(2)).length, 1);
  });

  it('acks an item once; a second ack is recognised, an unknown id is reported', async function () {
    store = await open();
    const { id } = await store.enqueue(item());
    await store.lease(1);
    assert.strictEqual((await store.ack(id)).status, 'acked');
    assert.strictEqual((await store.ack(id)).status, 'already-done');
    assert.strictEqual((await store.ack(9999)).status, 'unknown');
    const s = await store.stats();
    assert.strictEqual(s.counts.done.n, 1);
    assert.strictEqual(s.totals.done, 1);
  });

  it('backs off exponentially on nack, capped, and honours Retry-After', async function () {
    store = await open({ backoff: { baseMs: 1000, capMs: 5000 }, maxAttempts: 0 });
    const { id } = await store.enqueue(item());
    const delays = [];
    for (let i = 0; i < 5; i++) {
      const [l] = await store.lease(1);
      assert.strictEqual(l.id, id);
      const r = await store.nack(id, l.attempts, { message: 'HTTP 503' });
      assert.strictEqual(r.status, 'retry');
      delays.push(r.delayMs);
      assert.strictEqual((await store.lease(1)).length, 0, 'not delivered before its backoff runs out');
      c.advance(r.delayMs);
    }
    // random() = 1: the jitter's upper bound, so the ceiling itself is visible.
    assert.deepStrictEqual(delays, [1000, 2000, 4000, 5000, 5000]);
    const [l] = await store.lease(1);
    const r = await store.nack(id, l.attempts, { message: '429', retryAfterMs: 60_000 });
    assert.strictEqual(/** @type {RetryResult} */ (r).delayMs, 60_000);
  });

  it('draws full jitter between 0 and the ceiling', async function () {
    store = await open({ backoff: { baseMs: 1000, capMs: 60_000 } }, { random: () => 0.25 });
    const { id } = await store.enqueue(item());
    const [l] = await store.lease(1);
    const r = await store.nack(id, l.attempts, { message: 'x' });
    assert.strictEqual(/** @type {RetryResult} */ (r).delayMs, 250);
  });

  it('moves an item to the dead letters on a permanent nack, keeping the error', async function () {
    store = await open();
    const { id } = await store.enqueue(item());
    const [l] = await store.lease(1);
    const r = await store.nack(id, l.attempts, { message: 'Access Denied', code: '403', permanent: true });
    assert.strictEqual(r.status, 'dead');
    const [dead] = await store.list({ states: ['dead'] });
    assert.strictEqual(dead.id, id);
    assert.strictEqual(dead.lastError, '403: Access Denied');
  });

  it('gives up after maxAttempts', async function () {
    store = await open({ maxAttempts: 3, backoff: { baseMs: 10, capMs: 10 } });
    const { id } = await store.enqueue(item());
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      c.advance(100);
      const [l] = await store.lease(1);
      statuses.push((await store.nack(id, l.attempts, { message: 'timeout' })).status);
    }
    assert.deepStrictEqual(statuses, ['retry', 'retry', 'dead']);
    const [dead] = await store.list({ states: ['dead'] });
    assert.match(dead.lastError, /gave up after 3 attempts: timeout/);
  });

  it('does not count a failure while offline as an attempt', async function () {
    store = await open({ maxAttempts: 1 });
    const { id } = await store.enqueue(item());
    const [l] = await store.lease(1);
    const r = await store.nack(id, l.attempts, { message: 'ECONNREFUSED', offline: true });
    assert.strictEqual(r.status, 'requeued');
    const [again] = await store.lease(1);
    assert.strictEqual(again.attempts, 1, 'the offline failure was not counted');
  });

  it('ignores a nack for an attempt that is no longer in flight', async function () {
    store = await open({ leaseMs: 1000 });
    const { id } = await store.enqueue(item());
    await store.lease(1);
    c.advance(1001);
    assert.deepStrictEqual(await store.expireLeases(), { redelivered: 1, dead: 0 });
    const [second] = await store.lease(1);
    assert.strictEqual(second.attempts, 2);
    assert.strictEqual((await store.nack(id, 1, { message: 'late answer to attempt 1' })).status, 'stale');
    assert.strictEqual((await store.list({ states: ['leased'] }))[0].id, id);
  });

  it('gives back leases of items never delivered without using an attempt, but not a lease taken again since', async function () {
    store = await open({ leaseMs: 1000 });
    const a = await store.enqueue(item());
    const b = await store.enqueue(item());
    const [la, lb] = await store.lease(2);
    assert.deepStrictEqual([la.id, lb.id], [a.id, b.id]);
    c.advance(1001);
    await store.expireLeases();
    const [again] = await store.lease(1);
    assert.deepStrictEqual([again.id, again.attempts], [a.id, 2]);
    // b's lease is given back; a's is not: attempt 1 of a is over, attempt 2 is someone else's.
    assert.strictEqual(await store.releaseLeases([[a.id, 1], [b.id, 1]]), 0, 'b is no longer leased either (its lease ran out)');
    const [lb2] = await store.lease(2);
    assert.deepStrictEqual([lb2.id, lb2.attempts], [b.id, 2]);
    assert.strictEqual(await store.releaseLeases([[a.id, 1], [b.id, 2]]), 1);
    const rows = Object.fromEntries((await store.list()).map((r) => [r.id, r]));
    assert.deepStrictEqual([rows[a.id].state, rows[a.id].attempts], ['leased', 2]);
    assert.deepStrictEqual([rows[b.id].state, rows[b.id].attempts, rows[b.id].leaseUntil], ['pending', 1, null]);
    assert.deepStrictEqual(
      (await store.leasedItems()).map((r) => [r.id, r.attempts]),
      [[a.id, 2]],
    );
  });

  it('copies the WAL into the database file from a connection of its own, about every 1000 pages', async function () {
    const file = path.join(dir, 'q.db');
    store = await open();
    // The writing connection would checkpoint only past 8000 pages: what goes into the database file below was put
    // there by the other one.
    const auto = await store['db'].read((tx) => tx.get('PRAGMA wal_autocheckpoint'));
    assert.strictEqual(auto.wal_autocheckpoint, 8000);
    const before = fs.statSync(file).size;
    // About 4 WAL pages each: 400 enqueues write some 1600 pages.
    for (let i = 0; i < 400; i++) await store.enqueue(item());
    await waitFor(() => fs.statSync(file).size > before, { what: 'the database file to receive the WAL' });
    const rows = await countRows(file);
    assert.strictEqual(rows.pending.n, 400);
  });

  it('redelivers an item whose lease expired', async function () {
    store = await open({ leaseMs: 5000 });
    const { id } = await store.enqueue(item());
    await store.lease(1);
    c.advance(4999);
    assert.deepStrictEqual(await store.expireLeases(), { redelivered: 0, dead: 0 });
    c.advance(2);
    assert.deepStrictEqual(await store.expireLeases(), { redelivered: 1, dead: 0 });
    const [again] = await store.lease(1);
    assert.strictEqual(again.id, id);
    assert.match(again.lastError, /no ack or nack within the lease/);
  });

  it('releases leases left by a crashed process when reopened, counting the interrupted attempt', async function () {
    const file = path.join(dir, 'q.db');
    // Another process leases two items and dies without closing anything.
    const script = `
      const { QueueStore } = require(${JSON.stringify(path.resolve(__dirname, '../dist/lib/queue/store'))});
      (async () => {
        const s = await QueueStore.open(${JSON.stringify(file)}, {}, { recoverLeases: true });
        await s.enqueue({ kind: 'inline', bytes: 1, msg: '{}' });
        await s.enqueue({ kind: 'inline', bytes: 1, msg: '{}' });
        await s.lease(2);
        process.kill(process.pid, 'SIGKILL');
      })();`;
    const r = require('child_process').spawnSync(process.execPath, ['-e', script], { timeout: 20000 });
    assert.strictEqual(r.signal, 'SIGKILL', String(r.stderr));
    store = await open();
    const s = await store.stats();
    assert.strictEqual(s.counts.leased.n, 0);
    assert.strictEqual(s.counts.pending.n, 2);
    const again = await store.lease(5);
    assert.deepStrictEqual(again.map((x) => x.attempts), [2, 2]);
    assert.match(again[0].lastError, /interrupted/);
  });

  it('keeps leases when this process closes and reopens the database (a redeploy), but not after another owner', async function () {
    store = await open();
    await store.enqueue(item());
    await store.lease(1);
    await store.close();
    store = await open();
    assert.strictEqual((await store.stats()).counts.leased.n, 1, 'the lease survives a redeploy');
    // ...but only for a short grace (30 s), in case the nodes that had the item were redeployed too.
    c.advance(30_001);
    assert.deepStrictEqual(await store.expireLeases(), { redelivered: 1, dead: 0 });
    await store.lease(1);
    await store.close();
    // Someone else owned the file in between (here: its handover token is gone, as any other owner removes it).
    const sqlite = new sqlite3.Database(path.join(dir, 'q.db'));
    await new Promise((resolve, reject) => sqlite.exec("DELETE FROM meta WHERE key = 'handover'", (e) => (e ? reject(e) : sqlite.close(resolve))));
    store = await open();
    assert.strictEqual((await store.stats()).counts.leased.n, 0, 'released: the handover no longer holds');
  });

  it('rejects a new item when full under the reject policy', async function () {
    store = await open({ maxItems: 2 });
    await store.enqueue(item());
    await store.enqueue(item());
    await assert.rejects(store.enqueue(item()), (e) => e instanceof QueueFullError && /2 items, limit 2/.test(e.message));
    assert.strictEqual((await store.stats()).counts.pending.n, 2);
  });

  it('limits bytes, and refuses an item larger than the whole queue', async function () {
    store = await open({ maxBytes: 100 });
    await store.enqueue(item({ bytes: 60 }));
    await assert.rejects(store.enqueue(item({ bytes: 50 })), /the queue is full/);
    await assert.rejects(store.enqueue(item({ bytes: 101 })), /larger than the whole queue/);
    await store.enqueue(item({ bytes: 40 }));
  });

  it('drops the oldest lowest-priority item when full under drop-oldest, and keeps its row', async function () {
    store = await open({ maxItems: 3, whenFull: 'drop-oldest' });
    const a = await store.enqueue(item({ priority: 1 }));
    const b = await store.enqueue(item({ priority: 9 }));
    const d = await store.enqueue(item({ priority: 9 }));
    const r = await store.enqueue(item({ priority: 5 }));
    assert.deepStrictEqual(r.dropped.map((x) => x.id), [b.id]);
    const dropped = await store.list({ states: ['dropped'] });
    assert.deepStrictEqual(dropped.map((x) => x.id), [b.id]);
    const pending = (await store.list({ states: ['pending'] })).map((x) => x.id);
    assert.deepStrictEqual(pending, [a.id, d.id, r.id]);
    assert.strictEqual((await store.stats()).totals.dropped, 1);
  });

  it('does not drop a more important item for a less important one', async function () {
    store = await open({ maxItems: 1, whenFull: 'drop-oldest' });
    await store.enqueue(item({ priority: 1 }));
    await assert.rejects(store.enqueue(item({ priority: 7 })), /lowest priority/);
  });

  it('sets aside items older than the TTL instead of deleting them', async function () {
    store = await open({ ttlMs: 3600_000 });
    const old = await store.enqueue(item());
    c.advance(1800_000);
    const young = await store.enqueue(item());
    c.advance(1800_001);
    const expired = await store.expireOld();
    assert.deepStrictEqual(expired.map((x) => x.id), [old.id]);
    assert.deepStrictEqual((await store.list({ states: ['pending'] })).map((x) => x.id), [young.id]);
    assert.strictEqual(await store.retryFailed(), 1, 'an expired item can be sent again');
  });

  it('retries and purges failed items, all or by id', async function () {
    store = await open();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await store.enqueue(item({ file: `/data/f${i}.jpg`, kind: 'file' }))).id);
    for (const l of await store.lease(3)) await store.nack(l.id, l.attempts, { message: 'bad', permanent: true });
    assert.strictEqual(await store.retryFailed([ids[1]]), 1);
    assert.deepStrictEqual((await store.list({ states: ['pending'] })).map((x) => x.id), [ids[1]]);
    const purged = await store.purgeFailed([ids[0]]);
    assert.deepStrictEqual(purged, { count: 1, files: ['/data/f0.jpg'] });
    assert.deepStrictEqual((await store.list({ states: ['dead'] })).map((x) => x.id), [ids[2]]);
    const [again] = await store.lease(1);
    assert.strictEqual(again.attempts, 1, 'a retried item starts with fresh attempts');
  });

  it('wakes items backing off when the link returns, but keeps a Retry-After', async function () {
    store = await open({ backoff: { baseMs: 60_000, capMs: 60_000 } });
    const a = await store.enqueue(item());
    const b = await store.enqueue(item());
    const [la, lb] = await store.lease(2);
    await store.nack(la.id, la.attempts, { message: 'ECONNRESET' });
    await store.nack(lb.id, lb.attempts, { message: '429', retryAfterMs: 30_000 });
    assert.strictEqual(await store.wakeWaiting(), 2);
    const now = await store.lease(2);
    assert.deepStrictEqual(now.map((x) => x.id), [a.id]);
    c.advance(30_000);
    assert.deepStrictEqual((await store.lease(2)).map((x) => x.id), [b.id]);
  });

  it('prunes acknowledged rows after the history period and returns files due for deletion', async function () {
    store = await open({ keepDoneMs: 1000, fileRetention: 'delete-after-days', keepFilesMs: 5000 });
    await store.enqueue(item({ kind: 'file', file: '/d/a.jpg' }));
    await store.enqueue(item());
    for (const l of await store.lease(2)) await store.ack(l.id);
    c.advance(1001);
    assert.deepStrictEqual(await store.pruneFinished(), []);
    assert.strictEqual((await store.stats()).counts.done.n, 1, 'the inline row went, the file row waits for its file');
    c.advance(5000);
    assert.deepStrictEqual(await store.pruneFinished(), ['/d/a.jpg']);
    assert.strictEqual((await store.stats()).counts.done.n, 0);
  });

  it('keeps the counts table equal to the rows through every transition', async function () {
    store = await open({ maxItems: 4, whenFull: 'drop-oldest', leaseMs: 10 });
    for (let i = 0; i < 6; i++) await store.enqueue(item({ bytes: i + 1 }));
    const leased = await store.lease(3);
    await store.ack(leased[0].id);
    await store.nack(leased[1].id, 1, { message: 'x', permanent: true });
    c.advance(20);
    await store.expireLeases();
    await store.purgeFailed();
    const real = await countRows(path.join(dir, 'q.db'));
    const { counts } = await store.stats();
    for (const [state, { n, bytes }] of Object.entries(counts)) {
      assert.strictEqual(n, real[state] ? real[state].n : 0, `count of ${state}`);
      assert.strictEqual(bytes, real[state] ? real[state].bytes : 0, `bytes of ${state}`);
    }
  });

  it('runs every per-item statement on an index range, so its cost does not grow with the queue', async function () {
    store = await open({ largeItemBytes: 1024 });
    for (let i = 0; i < 20; i++) await store.enqueue(item({ bytes: i % 5 === 0 ? 4096 : 10 }));
    await store.close();
    store = undefined;
    // With statistics that describe a big queue, as SQLite's planner would see one after ANALYZE.
    const db = new sqlite3.Database(path.join(dir, 'q.db'));
    const all = (q, p = []) => new Promise((resolve, reject) => db.all(q, p, (e, rows) => (e ? reject(e) : resolve(rows))));
    try {
      await all('ANALYZE');
      await all("UPDATE sqlite_stat1 SET stat = '1000000' WHERE tbl = 'items' AND idx IS NULL");
      await all('ANALYZE sqlite_schema');
      for (const [name, sql] of Object.entries(HOT_SQL)) {
        const plan = (await all(`EXPLAIN QUERY PLAN ${sql}`)).map((r) => r.detail);
        // The only scan allowed over items is the one of the items in flight (a few), which the lease counts.
        const scans = plan.filter((d) => /^SCAN items\b/.test(d) && !/USING (COVERING )?INDEX items_leased$/.test(d));
        assert.deepStrictEqual(scans, [], `${name} reads the whole table or an index of it:\n  ${plan.join('\n  ')}`);
        assert.ok(!plan.some((d) => /TEMP B-TREE/.test(d)), `${name} sorts the queue:\n  ${plan.join('\n  ')}`);
        if (name === 'lease' || name === 'ackAndLease') {
          const lanes = plan.filter((d) => d === 'SEARCH items USING COVERING INDEX items_ready_by_lane (lane=?)');
          assert.strictEqual(lanes.length, 2, `each lane is one range of the ready index:\n  ${plan.join('\n  ')}`);
        }
      }
    } finally {
      await new Promise((resolve) => db.close(resolve));
    }
  });

  it('acks a batch and fills the freed slots in one statement; a lease asks about backoffs only once one may be due', async function () {
    store = await open({ backoff: { baseMs: 1000, capMs: 1000 } });
    for (let i = 0; i < 6; i++) await store.enqueue(item());
    const cost = async (fn) => {
      const before = store.dbCounters;
      const value = await fn();
      const after = store.dbCounters;
      return { value, statements: after.statements - before.statements, commits: after.commits - before.commits };
    };
    // The first lease does not know yet whether anything waits out a backoff: it looks, once.
    const first = await cost(() => store.lease(2));
    assert.strictEqual(first.value.length, 2);
    assert.strictEqual((await cost(() => store.lease(3))).statements, 1, 'nothing is waiting: one statement');
    const acked = await cost(() => store.ackMany(first.value.map((r) => r.id), 3));
    assert.deepStrictEqual(acked.value.results.map((r) => r.status), ['acked', 'acked']);
    assert.strictEqual(acked.value.leased.length, 2, 'the two freed slots are filled');
    assert.deepStrictEqual([acked.statements, acked.commits], [1, 1]);
    // A nack puts an item into backoff: leases before it is due stay one statement, the first one after promotes it.
    const [l] = await store.list({ states: ['leased'], limit: 1 });
    await store.nack(l.id, l.attempts, { message: 'HTTP 503' });
    assert.strictEqual((await cost(() => store.lease(3))).statements, 1);
    c.advance(1000);
    const due = await cost(() => store.lease(4));
    assert.deepStrictEqual(due.value.map((r) => r.id), [l.id]);
    assert.ok(due.statements > 1);
    assert.strictEqual((await cost(() => store.lease(4))).statements, 1);
  });

  it('commits concurrent enqueues together, each one stored exactly once', async function () {
    store = await open();
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => store.enqueue(item({ msg: JSON.stringify({ payload: i }) }))));
    assert.strictEqual(new Set(ids.map((r) => r.id)).size, 50);
    assert.strictEqual((await store.stats()).counts.pending.n, 50);
  });

  it('keeps its neighbours when one write of a group fails', async function () {
    store = await open({ maxItems: 3 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => store.enqueue(item())));
    assert.deepStrictEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    assert.strictEqual((await store.stats()).counts.pending.n, 3);
  });

  describe('opening', function () {
    it('refuses a second user of the same database in this process', async function () {
      store = await open({}, { owner: 'queue node "A"' });
      await assert.rejects(open({}, { owner: 'B' }), /already used by queue node "A"/);
    });

    it('says when the folder is missing, instead of creating it on the wrong disk', async function () {
      await assert.rejects(
        QueueStore.open(path.join(dir, 'not-mounted', 'q.db'), {}, {}),
        /folder .*not-mounted does not exist \(is the disk mounted\?\)/,
      );
      store = await QueueStore.open(path.join(dir, 'created', 'q.db'), {}, { createFolder: true, recoverLeases: true });
    });

    it('says when the folder is not writable', async function () {
      if (process.getuid && process.getuid() === 0) {
        // root writes anywhere: a read-only folder is made by mounting, which a test cannot do here.
        const ro = path.join(dir, 'ro');
        fs.mkdirSync(ro);
        fs.chmodSync(ro, 0o500);
        console.log('      (running as root: permission bits do not stop root; checking the error path with a file in place of the folder)');
        fs.writeFileSync(path.join(dir, 'file'), 'x');
        await assert.rejects(QueueStore.open(path.join(dir, 'file', 'q.db'), {}, {}), /not writable|does not exist|cannot open/);
        return;
      }
      const ro = path.join(dir, 'ro');
      fs.mkdirSync(ro);
      fs.chmodSync(ro, 0o500);
      await assert.rejects(QueueStore.open(path.join(ro, 'q.db'), {}, {}), /not writable/);
    });

    it('takes over a lock left by a power cut even when its pid now belongs to another process', async function () {
      const file = path.join(dir, 'q.db');
      store = await open();
      await store.close();
      fs.writeFileSync(file + '.lock', '1 12345'); // pid 1 is alive, but it did not start at tick 12345
      store = await open();
      assert.strictEqual(fs.readFileSync(file + '.lock', 'utf8').split(' ')[0], String(process.pid));
    });

    it('leaves no lock behind when opening fails', async function () {
      const file = path.join(dir, 'q.db');
      store = await open();
      await store.close();
      store = undefined;
      const sqlite = new sqlite3.Database(file);
      await new Promise((resolve, reject) => sqlite.exec('PRAGMA user_version = 99', (e) => (e ? reject(e) : sqlite.close(resolve))));
      await assert.rejects(open(), /newer version of Uplink/);
      assert.ok(!fs.existsSync(file + '.lock'), 'no lock left');
    });

    it('when not the owner, refuses a file that is not a queue database and changes nothing', async function () {
      const file = path.join(dir, 'flows.json');
      fs.writeFileSync(file, '[{"id":"a","type":"tab"}]');
      await assert.rejects(QueueStore.open(file, {}, {}), /flows\.json is not an Uplink queue database/);
      assert.strictEqual(fs.readFileSync(file, 'utf8'), '[{"id":"a","type":"tab"}]');
      assert.deepStrictEqual(fs.readdirSync(dir), ['flows.json']);
      await assert.rejects(QueueStore.open(path.join(dir, 'missing.db'), {}, {}), /missing\.db does not exist/);
    });

    it('moves a corrupt database aside, starts a fresh one and says where the old one went', async function () {
      const file = path.join(dir, 'q.db');
      fs.writeFileSync(file, Buffer.alloc(8192, 0x41));
      store = await open();
      assert.ok(store.movedAside, 'movedAside is set');
      assert.match(path.basename(store.movedAside), /^q\.db\.corrupt-\d{4}-\d\d-\d\dT/);
      assert.ok(fs.existsSync(store.movedAside), 'the damaged file is kept for inspection');
      const { id } = await store.enqueue(item());
      assert.ok(id > 0);
    });

    it('recovers readable items from a database damaged past its first pages', async function () {
      const file = path.join(dir, 'q.db');
      store = await open();
      for (let i = 0; i < 400; i++) await store.enqueue(item({ msg: JSON.stringify({ payload: 'p'.repeat(200) + i }) }));
      await store.close();
      store = undefined;
      // Damage a page near the end of the file (an index or the last data page), as a torn write would.
      const buf = fs.readFileSync(file);
      const pageSize = buf.readUInt16BE(16);
      const pages = buf.length / pageSize;
      buf.fill(0xff, (pages - 2) * pageSize + 8, (pages - 1) * pageSize);
      fs.writeFileSync(file, buf);
      store = await open();
      assert.ok(store.movedAside, 'the damage was detected');
      assert.ok(store.salvaged > 0, `some items were recovered (${store.salvaged})`);
      assert.strictEqual((await store.stats()).counts.pending.n, store.salvaged);
    });
  });
});
