'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

/** Collects what reaches a helper node. */
function collect(node) {
  const got = [];
  node.on('input', (msg) => got.push(msg));
  return got;
}

function lastStatus(node) {
  return node.__lastStatus;
}

function trackStatus(node) {
  const orig = node.status.bind(node);
  node.status = (s) => {
    node.__lastStatus = s;
    return orig(s);
  };
}

describe('offline-queue node', function () {
  let dir;
  beforeEach(function (done) {
    dir = tmpDir();
    helper.startServer(done);
  });
  afterEach(function (done) {
    helper.unload().then(() => {
      rmrf(dir);
      helper.stopServer(done);
    });
  });

  /**
   * q: the queue; out: its item output; rej: its rejected output; stats: its stats output; caught: Catch node output.
   * `ackBack` wires a function-free loop: the test itself answers by sending to the queue.
   */
  async function load(config = {}, extra = []) {
    const flow = [
      {
        id: 'q',
        type: 'uplink-offline-queue',
        name: 'Q',
        db: path.join(dir, 'queue.db'),
        concurrency: 2,
        backoffBase: 0.1,
        backoffCap: 0.2,
        statsInterval: 0.1,
        wires: [['out'], ['rej'], ['stats']],
        ...config,
      },
      { id: 'out', type: 'helper' },
      { id: 'rej', type: 'helper' },
      { id: 'stats', type: 'helper' },
      { id: 'c', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
      ...extra,
    ];
    await helper.load([queueNode, catchNode], flow);
    const q = helper.getNode('q');
    const nodes = {
      q,
      out: collect(helper.getNode('out')),
      rej: collect(helper.getNode('rej')),
      stats: collect(helper.getNode('stats')),
      caught: collect(helper.getNode('caught')),
    };
    if (q) await q.ready;
    return nodes;
  }

  const lastStats = (n) => (n.stats.length ? n.stats[n.stats.length - 1].payload : undefined);

  it('stores an inline payload and delivers it with its item id and the original message', async function () {
    const n = await load();
    n.q.receive({ payload: { bpm: 72 }, topic: 'ecg/metrics', session: 'S1', priority: 3 });
    await waitFor(() => n.out.length === 1, { what: 'delivery' });
    const msg = n.out[0];
    assert.deepStrictEqual(msg.payload, { bpm: 72 });
    assert.strictEqual(msg.topic, 'ecg/metrics');
    assert.strictEqual(msg.session, 'S1');
    assert.strictEqual(msg.uplink.item.id, 1);
    assert.strictEqual(msg.uplink.item.attempt, 1);
    assert.strictEqual(msg.uplink.item.priority, 3);
  });

  it('queues a file by reference and counts it uploaded after the ack', async function () {
    const n = await load();
    const file = path.join(dir, 'cam1_0001.jpg');
    fs.writeFileSync(file, Buffer.alloc(2048, 7));
    n.q.receive({ payload: fs.readFileSync(file), uplink: { file, camera: 'cam1' } });
    await waitFor(() => n.out.length === 1, { what: 'delivery' });
    const msg = n.out[0];
    assert.strictEqual(msg.uplink.file, file);
    assert.strictEqual(msg.uplink.camera, 'cam1');
    assert.strictEqual(msg.payload, file, 'the image bytes are not stored twice: the payload is the path');
    n.q.receive({ ...msg, uplink: { ...msg.uplink, ack: true } });
    await waitFor(() => lastStats(n) && lastStats(n).uploaded === 1, { what: 'uploaded count' });
    assert.strictEqual(lastStats(n).pending, 0);
    assert.strictEqual(lastStats(n).inFlight, 0);
    assert.ok(fs.existsSync(file), 'the file is kept unless deletion was asked for');
  });

  it('accepts msg.filename, and reports a missing file without queueing it', async function () {
    const n = await load();
    n.q.receive({ filename: path.join(dir, 'nope.jpg') });
    await waitFor(() => n.caught.length === 1, { what: 'Catch' });
    assert.match(n.caught[0].error.message, /nope\.jpg does not exist; nothing was queued/);
    assert.strictEqual(n.rej.length, 1);
    assert.strictEqual(n.out.length, 0);
  });

  it('keeps at most `concurrency` items in flight', async function () {
    const n = await load({ concurrency: 2 });
    for (let i = 0; i < 5; i++) n.q.receive({ payload: i });
    await waitFor(() => lastStats(n) && lastStats(n).pending + lastStats(n).inFlight === 5, { what: '5 items' });
    await waitFor(() => n.out.length === 2, { what: 'two deliveries' });
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(n.out.length, 2, 'no third item before an answer');
    n.q.receive({ topic: 'ack', uplink: { item: n.out[0].uplink.item } });
    await waitFor(() => n.out.length === 3, { what: 'the next item after an ack' });
    assert.deepStrictEqual(n.out.map((m) => m.payload), [0, 1, 2]);
  });

  it('answers acks that arrive one by one while earlier ones are being written, and refills every freed slot in order', async function () {
    const n = await load({ concurrency: 8 });
    for (let i = 0; i < 40; i++) n.q.receive({ payload: i });
    await waitFor(() => n.out.length === 8, { what: 'eight deliveries' });
    // A slow card: every write of acks takes a while, so most acks arrive while one is being written.
    const store = n.q.queue.store;
    const ackMany = store.ackMany.bind(store);
    const batches = [];
    let writing = 0;
    let overlapped = 0;
    store.ackMany = async (ids, leaseUpTo) => {
      batches.push(ids.length);
      if (++writing > 1) overlapped++;
      try {
        await new Promise((r) => setTimeout(r, 20));
        return await ackMany(ids, leaseUpTo);
      } finally {
        writing--;
      }
    };
    // Each delivered item is answered in a turn of its own, as uploads finishing one after another would be.
    let answered = 0;
    await new Promise((resolve) => {
      const next = () => {
        if (answered === 40) return resolve();
        if (answered < n.out.length) {
          const msg = n.out[answered++];
          n.q.receive({ ...msg, uplink: { ...msg.uplink, ack: true } });
        }
        setImmediate(next);
      };
      next();
    });
    await waitFor(() => lastStats(n) && lastStats(n).uploaded === 40, { what: '40 uploaded' });
    assert.deepStrictEqual(n.out.map((m) => m.payload), Array.from({ length: 40 }, (_, i) => i));
    assert.deepStrictEqual([lastStats(n).pending, lastStats(n).inFlight], [0, 0]);
    assert.strictEqual(n.caught.length, 0);
    assert.strictEqual(batches.reduce((a, b) => a + b, 0), 40);
    assert.strictEqual(overlapped, 0, `acks that arrive during a write wait for it and go in the next one (${batches.join(', ')})`);
    assert.ok(batches.some((b) => b > 2), `acks that arrived during a write went together (${batches.join(', ')})`);
  });

  it('hands the next item out as soon as an ack frees its slot, before that ack is written', async function () {
    const n = await load({ concurrency: 1 });
    for (let i = 0; i < 4; i++) n.q.receive({ payload: i });
    await waitFor(() => n.out.length === 1 && lastStats(n) && lastStats(n).pending === 3, { what: 'one delivery' });
    const store = n.q.queue.store;
    const ackMany = store.ackMany.bind(store);
    /** @type {() => void} */
    let release = () => undefined;
    const gate = new Promise((r) => (release = () => r(undefined)));
    let written = 0;
    store.ackMany = async (ids, leaseUpTo) => {
      await gate;
      const r = await ackMany(ids, leaseUpTo);
      written += ids.length;
      return r;
    };
    n.q.receive({ ...n.out[0], uplink: { ...n.out[0].uplink, ack: true } });
    await waitFor(() => n.out.length === 2, { what: 'the next item' });
    assert.strictEqual(written, 0, 'the next item went out while the ack was still unwritten');
    assert.strictEqual(n.out[1].payload, 1);
    assert.strictEqual(n.out.length, 2, 'one slot, one item');
    release();
    await waitFor(() => lastStats(n) && lastStats(n).uploaded === 1, { what: 'the ack written' });
    assert.strictEqual(written, 1);
    assert.strictEqual(lastStats(n).inFlight, 1);
    assert.strictEqual(lastStats(n).pending, 2, 'items taken ahead still count as pending');
  });

  it('gives back the items it took ahead when it goes offline or pauses: none loses an attempt', async function () {
    const n = await load({ concurrency: 1 });
    for (let i = 0; i < 4; i++) n.q.receive({ payload: i });
    await waitFor(() => n.out.length === 1 && lastStats(n) && lastStats(n).pending === 3, { what: 'one delivery' });
    const leased = async () => (await n.q.queue.store.list({ states: ['leased'] })).map((r) => r.id);
    assert.ok((await leased()).length > 1, 'items were taken ahead');
    n.q.receive({ topic: 'connectivity', payload: { online: false } });
    await waitFor(async () => (await leased()).length === 1, { what: 'the items ahead given back' });
    assert.deepStrictEqual(await leased(), [n.out[0].uplink.item.id], 'the item in flight keeps its lease');
    n.q.receive({ ...n.out[0], uplink: { ...n.out[0].uplink, ack: true } });
    await waitFor(() => lastStats(n) && lastStats(n).uploaded === 1, { what: 'the ack' });
    n.q.receive({ topic: 'connectivity', payload: { online: true } });
    await waitFor(() => n.out.length === 2, { what: 'delivery when online again' });
    n.q.receive({ topic: 'pause' });
    await waitFor(async () => (await leased()).length === 1, { what: 'the items ahead given back on pause' });
    n.q.receive({ ...n.out[1], uplink: { ...n.out[1].uplink, ack: true } });
    n.q.receive({ topic: 'resume' });
    await waitFor(() => n.out.length === 3, { what: 'delivery after resume' });
    n.q.receive({ ...n.out[2], uplink: { ...n.out[2].uplink, ack: true } });
    await waitFor(() => n.out.length === 4, { what: 'the last item' });
    assert.deepStrictEqual(n.out.map((m) => m.payload), [0, 1, 2, 3]);
    assert.deepStrictEqual(n.out.map((m) => m.uplink.item.attempt), [1, 1, 1, 1]);
    assert.strictEqual(n.caught.length, 0);
  });

  it('notices, every time, that another process made failed items ready again', async function () {
    const n = await load({ concurrency: 1 });
    n.q.receive({ payload: 'a' });
    const sqlite3 = require('sqlite3');
    const other = await new Promise((resolve, reject) => {
      const db = new sqlite3.Database(path.join(dir, 'queue.db'), (err) => (err ? reject(err) : resolve(db)));
    });
    try {
      const retryFailed = () =>
        new Promise((resolve, reject) =>
          other.run("UPDATE items SET state = 'pending', attempts = 0 WHERE state = 'dead'", (err) => (err ? reject(err) : resolve(undefined))),
        );
      for (let round = 1; round <= 3; round++) {
        await waitFor(() => n.out.length === round, { what: `delivery ${round}` });
        const msg = n.out[round - 1];
        n.q.receive({ topic: 'nack', uplink: { item: msg.uplink.item, error: { message: 'bad', permanent: true } } });
        await waitFor(() => lastStats(n) && lastStats(n).failed === 1, { what: `failed ${round}` });
        // The queue's own commits (many while it works) must not stop it from seeing this one.
        await retryFailed();
      }
      await waitFor(() => n.out.length === 4, { what: 'the last delivery' });
      assert.ok(n.out.every((m) => m.payload === 'a'));
    } finally {
      await new Promise((resolve) => other.close(() => resolve(undefined)));
    }
  });

  it('retries a nacked item after its backoff and sends a permanent failure to the failed items', async function () {
    const n = await load({ concurrency: 1 });
    n.q.receive({ payload: 'a' });
    await waitFor(() => n.out.length === 1);
    n.q.receive({ ...n.out[0], uplink: { ...n.out[0].uplink, ack: false, error: { class: 'retryable', message: 'HTTP 503' } } });
    await waitFor(() => n.out.length === 2, { what: 'redelivery after backoff' });
    assert.strictEqual(n.out[1].uplink.item.attempt, 2);
    n.q.receive({ ...n.out[1], uplink: { ...n.out[1].uplink, ack: false, error: { class: 'permanent', code: 403, message: 'Access Denied' } } });
    await waitFor(() => lastStats(n) && lastStats(n).failed === 1, { what: 'failed count' });
    assert.strictEqual(n.out.length, 2);
    const failed = await n.q.queue.listFailed();
    assert.strictEqual(failed[0].lastError, '403: Access Denied');

    n.q.receive({ topic: 'retry-failed' });
    await waitFor(() => n.out.length === 3, { what: 'delivery after retry-failed' });
    assert.strictEqual(n.out[2].uplink.item.attempt, 1);
  });

  it('purges failed items on command', async function () {
    const n = await load({ concurrency: 1 });
    n.q.receive({ payload: 'x' });
    await waitFor(() => n.out.length === 1);
    n.q.receive({ topic: 'nack', uplink: { item: n.out[0].uplink.item, error: { message: 'bad', permanent: true } } });
    await waitFor(() => lastStats(n) && lastStats(n).failed === 1);
    n.q.receive({ topic: 'purge-failed' });
    await waitFor(() => lastStats(n) && lastStats(n).failed === 0, { what: 'purge' });
  });

  it('holds items while offline and drains them when connectivity returns', async function () {
    const n = await load({ startOffline: true });
    for (let i = 0; i < 3; i++) n.q.receive({ payload: i });
    await waitFor(() => lastStats(n) && lastStats(n).pending === 3);
    assert.strictEqual(n.out.length, 0);
    trackStatus(n.q);
    n.q.receive({ topic: 'connectivity', payload: { online: true } });
    await waitFor(() => n.out.length === 2, { what: 'delivery when online' });
    n.q.receive({ topic: 'connectivity', payload: { online: false } });
    n.q.receive({ topic: 'ack', uplink: { item: n.out[0].uplink.item } });
    await waitFor(() => lastStats(n) && lastStats(n).uploaded === 1 && !lastStats(n).online);
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(n.out.length, 2, 'nothing new goes out while offline');
    await waitFor(() => lastStatus(n.q) && /^offline/.test(lastStatus(n.q).text), { what: 'offline status' });
    assert.strictEqual(lastStatus(n.q).fill, 'yellow');
  });

  it('does not use up attempts for failures while offline', async function () {
    const n = await load({ concurrency: 1, maxAttempts: 1 });
    n.q.receive({ payload: 'x' });
    await waitFor(() => n.out.length === 1);
    n.q.receive({ topic: 'connectivity', payload: { online: false } });
    n.q.receive({ topic: 'nack', uplink: { item: n.out[0].uplink.item, error: { message: 'ECONNREFUSED' } } });
    await waitFor(() => lastStats(n) && lastStats(n).pending === 1 && lastStats(n).inFlight === 0);
    assert.strictEqual(lastStats(n).failed, 0);
    n.q.receive({ topic: 'connectivity', payload: { online: true } });
    await waitFor(() => n.out.length === 2);
    assert.strictEqual(n.out[1].uplink.item.attempt, 1);
  });

  it('pauses and resumes delivery, and the pause survives a restart', async function () {
    const n = await load();
    n.q.receive({ topic: 'pause' });
    n.q.receive({ payload: 'held' });
    await waitFor(() => lastStats(n) && lastStats(n).paused && lastStats(n).pending === 1);
    await helper.unload();
    const m = await load();
    await waitFor(() => lastStats(m) && lastStats(m).pending === 1);
    assert.strictEqual(lastStats(m).paused, true);
    assert.strictEqual(m.out.length, 0);
    m.q.receive({ topic: 'resume' });
    await waitFor(() => m.out.length === 1);
    assert.strictEqual(m.out[0].payload, 'held');
  });

  it('brings pending items back after a redeploy, and an item in flight stays leased for its answer', async function () {
    const n = await load({ concurrency: 1 });
    for (let i = 0; i < 3; i++) n.q.receive({ payload: `item-${i}` });
    await waitFor(() => n.out.length === 1 && lastStats(n) && lastStats(n).pending === 2);
    const inFlight = n.out[0];
    await helper.unload();
    const m = await load({ concurrency: 5 });
    await waitFor(() => m.out.length === 2, { what: 'the two pending items after the redeploy' });
    assert.deepStrictEqual(m.out.map((x) => x.payload), ['item-1', 'item-2']);
    await waitFor(() => lastStats(m) && lastStats(m).inFlight === 3);
    // The node downstream finishes the item it got before the redeploy: its ack reaches the new queue node.
    m.q.receive({ ...inFlight, uplink: { ...inFlight.uplink, ack: true } });
    await waitFor(() => lastStats(m) && lastStats(m).uploaded === 1 && lastStats(m).inFlight === 2, { what: 'the old delivery acked' });
    assert.ok(m.out.every((x) => x.payload !== 'item-0'), 'the item in flight was not sent twice');
  });

  it('redelivers an item whose lease expired', async function () {
    const n = await load({ lease: 1, concurrency: 1 });
    n.q.receive({ payload: 'slow' });
    await waitFor(() => n.out.length === 1);
    await waitFor(() => n.out.length === 2, { timeout: 5000, what: 'redelivery after the lease' });
    assert.strictEqual(n.out[1].uplink.item.id, n.out[0].uplink.item.id);
    assert.strictEqual(n.out[1].uplink.item.attempt, 2);
  });

  it('rejects an item when full: output 2 and a clear error to Catch', async function () {
    const n = await load({ maxItems: 1, startOffline: true });
    n.q.receive({ payload: 'first' });
    n.q.receive({ payload: 'second' });
    await waitFor(() => n.caught.length === 1 && n.rej.length === 1);
    assert.match(n.caught[0].error.message, /the queue is full \(1 items, limit 1\)/);
    assert.strictEqual(n.rej[0].payload, 'second');
    assert.match(n.rej[0].error.message, /full/);
  });

  it('refuses a payload over the inline limit', async function () {
    const n = await load({ maxInlineKB: 1 });
    n.q.receive({ payload: Buffer.alloc(2048) });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /payload is 2\.0 KB, over the inline limit of 1\.0 KB/);
    assert.strictEqual(n.rej.length, 1);
  });

  it('gives clear errors for an unknown command, an empty message and an ack for an unknown id', async function () {
    const n = await load();
    n.q.receive({ topic: 'pasue' });
    n.q.receive({ payload: '' });
    n.q.receive({ topic: 'ack', uplink: { item: { id: 4242 } } });
    await waitFor(() => n.caught.length === 3);
    const messages = n.caught.map((m) => m.error.message).sort();
    assert.match(messages[0], /ack for item 4242, which is not in the queue/);
    assert.match(messages[1], /"pasue" is not a command/);
    assert.match(messages[2], /nothing to queue/);
    assert.strictEqual(n.out.length, 0);
  });

  it('sends stats on request on output 3', async function () {
    const n = await load({ statsInterval: 60 });
    await waitFor(() => n.stats.length >= 1);
    const before = n.stats.length;
    n.q.receive({ topic: 'stats' });
    await waitFor(() => n.stats.length === before + 1);
    const s = n.stats[n.stats.length - 1];
    assert.strictEqual(s.topic, 'stats');
    for (const k of ['online', 'paused', 'pending', 'inFlight', 'failed', 'uploaded', 'queuedBytes', 'throughput']) {
      assert.ok(k in s.payload, `stats has ${k}`);
    }
  });

  it('shows pending, in flight and failed in its status', async function () {
    const n = await load({ concurrency: 1 });
    trackStatus(n.q);
    n.q.receive({ payload: 1 });
    n.q.receive({ payload: 2 });
    await waitFor(() => lastStatus(n.q) && lastStatus(n.q).text === 'online · 1 pending · 1 in flight', { what: 'status' });
    assert.deepStrictEqual({ fill: lastStatus(n.q).fill, shape: lastStatus(n.q).shape }, { fill: 'green', shape: 'dot' });
  });

  it('refuses a second queue node on the same database file, and the first keeps working', async function () {
    const n = await load({}, [
      { id: 'q2', type: 'uplink-offline-queue', name: 'Q2', db: path.join(dir, 'queue.db'), wires: [[], [], []] },
    ]);
    const q2 = helper.getNode('q2');
    trackStatus(q2);
    await q2.ready;
    q2.receive({ payload: 'to the broken twin' });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /not running/);
    n.q.receive({ payload: 'ok' });
    await waitFor(() => n.out.length === 1);
    const logged = helper.log().args.map((a) => a[0]).filter((e) => e.level === 20 && e.id === 'q2');
    assert.ok(logged.some((e) => /already used by queue node "Q"/.test(e.msg)), 'the error names the node holding the file');
  });

  it('shows a configuration error at deploy and keeps Node-RED running', async function () {
    const n = await load({ concurrency: 0, backoffBase: 10, backoffCap: 1 });
    n.q.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /Concurrency must be a whole number from 1 to 64/);
    const logged = helper.log().args.map((a) => a[0]).filter((e) => e.level === 20 && e.id === 'q');
    assert.ok(logged.some((e) => /Backoff cap \(1 s\) must not be below the backoff base \(10 s\)/.test(e.msg)));
  });

  it('hands items back on output 2 with the reason while its database cannot be opened', async function () {
    const n = await load({ db: path.join(dir, 'not-mounted', 'q.db') });
    n.q.receive({ payload: 'reading' });
    n.q.receive({ topic: 'pause' });
    await waitFor(() => n.caught.length === 2);
    assert.match(n.caught[0].error.message, /not running: the queue database could not be opened/);
    assert.strictEqual(n.rej.length, 1, 'only the item, not the command, is handed back');
    assert.strictEqual(n.rej[0].payload, 'reading');
    assert.match(n.rej[0].error.message, /not running/);
    const logged = helper.log().args.map((a) => a[0]).filter((e) => e.level === 20 && e.id === 'q');
    assert.ok(logged.some((e) => /not-mounted does not exist \(is the disk mounted\?\)/.test(e.msg)), 'the deploy error says why');
  });

  it('moves a corrupt database aside and says where', async function () {
    fs.writeFileSync(path.join(dir, 'queue.db'), 'this is not a database'.repeat(500));
    const n = await load();
    const logged = helper.log().args.map((a) => a[0]).filter((e) => e.level === 20 && e.id === 'q');
    assert.ok(logged.some((e) => /moved to .*queue\.db\.corrupt-/.test(e.msg)), 'error says where the old file went');
    n.q.receive({ payload: 'still works' });
    await waitFor(() => n.out.length === 1);
  });

  it('deletes a file after its ack only when asked, and only inside the given folder', async function () {
    const images = path.join(dir, 'images');
    fs.mkdirSync(images);
    const inside = path.join(images, 'a.jpg');
    const outside = path.join(dir, 'b.jpg');
    fs.writeFileSync(inside, 'x');
    fs.writeFileSync(outside, 'y');
    const n = await load({ fileRetention: 'delete-on-ack', deleteFolder: images });
    n.q.receive({ filename: inside });
    n.q.receive({ filename: outside });
    await waitFor(() => n.out.length === 2);
    for (const m of n.out) n.q.receive({ topic: 'ack', uplink: { item: m.uplink.item } });
    await waitFor(() => lastStats(n) && lastStats(n).uploaded === 2);
    await waitFor(() => !fs.existsSync(inside), { what: 'deletion of the uploaded file' });
    assert.ok(fs.existsSync(outside), 'a file outside the folder is never deleted');
  });

  describe('admin endpoints', function () {
    it('serve stats and failed items, and run commands', async function () {
      const n = await load({ concurrency: 1 });
      n.q.receive({ payload: 'x' });
      await waitFor(() => n.out.length === 1);
      n.q.receive({ topic: 'nack', uplink: { item: n.out[0].uplink.item, error: { message: 'HTTP 400 bad request', permanent: true } } });
      await waitFor(() => lastStats(n) && lastStats(n).failed === 1);
      const stats = await helper.request().get('/uplink/queue/q/stats').expect(200);
      assert.strictEqual(stats.body.failed, 1);
      const failed = await helper.request().get('/uplink/queue/q/failed').expect(200);
      assert.strictEqual(failed.body[0].lastError, 'HTTP 400 bad request');
      const r = await helper.request().post('/uplink/queue/q/retry-failed').send({}).expect(200);
      assert.strictEqual(r.body.result, '1 failed items queued again');
      await waitFor(() => n.out.length === 2);
      await helper.request().post('/uplink/queue/q/explode').send({}).expect(400);
      await helper.request().get('/uplink/queue/nope/stats').expect(404);
    });
  });
});
