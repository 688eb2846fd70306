'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const captureNode = require('../dist/nodes/capture/capture.js');
const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
const { TestPatternSource } = require('../dist/lib/capture/sources/test-pattern');
const { listenLocal } = require('./support/net');
const { CaptureJournal, CAPTURE_STATE_DIR } = require('../dist/lib/capture/journal');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

describe('capture node', function () {
  let dir;
  beforeEach(function (done) {
    dir = tmpDir();
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    rmrf(dir);
  });

  async function load(config = {}, extra = [], nodes = [], creds) {
    const flow = [
      { id: 'cap', type: 'uplink-capture', camera: 'gate', source: 'test-pattern', patternWidth: 160, patternHeight: 90, folder: path.join(dir, 'images'), minFreeMB: 0, wires: [['out']], ...config },
      { id: 'out', type: 'helper' },
      { id: 'k', type: 'catch', scope: null, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
      ...extra,
    ];
    await helper.load([captureNode, catchNode, ...nodes], flow, creds);
    const got = { out: [], caught: [] };
    helper.getNode('out').on('input', (m) => got.out.push(m));
    helper.getNode('caught').on('input', (m) => got.caught.push(m));
    return { cap: helper.getNode('cap'), ...got };
  }

  it('captures the test pattern to disk on any trigger and describes the file, keeping the trigger message', async function () {
    const n = await load();
    n.cap.receive({ payload: Date.now(), topic: 'schedule', session: 'S-7' });
    await waitFor(() => n.out.length === 1);
    const m = n.out[0];
    assert.strictEqual(m.payload, m.uplink.file);
    assert.ok(fs.existsSync(m.uplink.file));
    assert.strictEqual(fs.statSync(m.uplink.file).size, m.uplink.bytes);
    assert.deepStrictEqual([m.uplink.width, m.uplink.height, m.uplink.contentType, m.uplink.camera], [160, 90, 'image/png', 'gate']);
    assert.match(m.uplink.key, /^gate\/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(\.\d{3})?_160_90\.png$/);
    assert.strictEqual(m.topic, 'schedule');
    assert.strictEqual(m.session, 'S-7');
  });

  it('captures on a GPIO rising edge only, once per press of a bouncing button', async function () {
    const n = await load({ minInterval: 0.5 });
    n.cap.receive({ topic: 'gpio/17', payload: 0 });
    for (let i = 0; i < 5; i++) n.cap.receive({ topic: 'gpio/17', payload: i % 2 });
    await waitFor(() => n.out.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.strictEqual(n.out.length, 1, 'one capture for one bouncing press');
  });

  it('skips triggers during a capture, or keeps a few when asked', async function () {
    const slowCamera = require('http').createServer((req, res) => {
      setTimeout(async () => {
        const png = await new TestPatternSource({ width: 32, height: 32, camera: 'x' }).grab(new AbortController().signal, 1e7);
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(png);
      }, 200);
    });
    const url = `http://127.0.0.1:${await listenLocal(slowCamera)}/snap`;
    try {
      const n = await load({ source: 'http', url, auth: 'none' });
      for (let i = 0; i < 4; i++) n.cap.receive({ payload: i });
      await waitFor(() => n.out.length === 1);
      await new Promise((r) => setTimeout(r, 400));
      assert.strictEqual(n.out.length, 1, 'the three overlapping triggers were skipped');
      await helper.unload();
      const q = await load({ source: 'http', url, auth: 'none', overlap: 'queue', maxQueued: 2 });
      for (let i = 0; i < 4; i++) q.cap.receive({ payload: i });
      await waitFor(() => q.out.length === 3, { what: 'the first capture and two kept triggers' });
      await new Promise((r) => setTimeout(r, 400));
      assert.strictEqual(q.out.length, 3, 'the fourth trigger did not fit the queue');
      assert.deepStrictEqual(q.out.map((m) => m.payload === m.uplink.file), [true, true, true]);
      assert.strictEqual(new Set(q.out.map((m) => m.uplink.file)).size, 3, 'three files');
    } finally {
      slowCamera.close();
    }
  });

  it('takes the image from msg.payload, and refuses what is not an image with a clear error', async function () {
    const n = await load({ source: 'message', includeBuffer: true });
    const png = await new TestPatternSource({ width: 48, height: 24, camera: 'x' }).grab(new AbortController().signal, 1e7);
    n.cap.receive({ payload: png });
    await waitFor(() => n.out.length === 1);
    assert.ok(Buffer.isBuffer(n.out[0].payload) && n.out[0].payload.equals(png), 'the image in the payload, as asked');
    assert.ok(fs.readFileSync(n.out[0].uplink.file).equals(png));
    n.cap.receive({ payload: 'hello' });
    await waitFor(() => n.caught.length === 1);
    n.cap.receive({ payload: Buffer.from('{"error":"nope"}') });
    await waitFor(() => n.caught.length === 2);
    assert.match(n.caught[0].error.message, /msg.payload must be the image as a Buffer/);
    assert.match(n.caught[1].error.message, /not a JPEG or PNG image .*JSON/);
  });

  it('stops capturing instead of filling the disk', async function () {
    const n = await load({ minFreeMB: 1024 * 1024 });
    n.cap.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /capture failed: only .* free on the disk of .*not capturing/);
    assert.ok(!fs.existsSync(path.join(dir, 'images', 'gate')), 'nothing written');
  });

  it('keeps a hostile camera name inside the images folder', async function () {
    const n = await load({ camera: '../../../etc/cron.d' });
    n.cap.receive({ payload: 1 });
    await waitFor(() => n.out.length === 1);
    assert.ok(n.out[0].uplink.file.startsWith(path.join(dir, 'images') + path.sep), n.out[0].uplink.file);
  });

  it('reports a camera that refuses the login, and tries again on the next trigger', async function () {
    let attempts = 0;
    const camera = require('http').createServer((req, res) => {
      attempts++;
      res.writeHead(401, { 'www-authenticate': 'Basic realm="cam"' });
      res.end();
    });
    const port = await listenLocal(camera);
    try {
      const n = await load({ source: 'http', url: `http://127.0.0.1:${port}/snap`, auth: 'basic' }, [], [], { cap: { username: 'admin', password: 'hunter2-secret' } });
      n.cap.receive({ payload: 1 });
      await waitFor(() => n.caught.length === 1);
      assert.match(n.caught[0].error.message, /refused the user name or password/);
      assert.ok(!n.caught[0].error.message.includes('hunter2-secret'));
      n.cap.receive({ payload: 2 });
      await waitFor(() => n.caught.length === 2);
      assert.ok(attempts >= 2, 'the next trigger tried again');
    } finally {
      camera.close();
    }
  });

  it('reports a configuration error at deploy', async function () {
    const n = await load({ source: 'ffmpeg', input: '', nameTemplate: '{camera}/{bogus}' });
    n.cap.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /not capturing: configuration error: .*unknown placeholder \{bogus\}/);
  });

  it('feeds a real offline queue: every capture the node reports is queued exactly once', async function () {
    const extra = [
      { id: 'q', type: 'uplink-offline-queue', db: path.join(dir, 'q.db'), startOffline: true, statsInterval: 0.1, wires: [[], [], ['stats']] },
      { id: 'stats', type: 'helper' },
    ];
    const n = await load({ wires: [['out', 'q']] }, extra, [queueNode]);
    const q = helper.getNode('q');
    await q.ready;
    const stats = [];
    helper.getNode('stats').on('input', (m) => stats.push(m.payload));
    for (let i = 0; i < 5; i++) {
      n.cap.receive({ payload: 100 + i });
      await waitFor(() => n.out.length === i + 1, { what: `capture ${i + 1}` });
    }
    await waitFor(() => stats.length && stats[stats.length - 1].pending === 5, { what: '5 queued' });
    const items = await q.queue.store.list({ states: ['pending'] });
    assert.deepStrictEqual(items.map((i) => i.file).sort(), n.out.map((m) => m.uplink.file).sort());
  });

  describe('its journal', function () {
    const journalFile = () => path.join(dir, 'images', CAPTURE_STATE_DIR, 'cap.journal');
    const records = () => fs.readFileSync(journalFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const queueNodes = () => [
      { id: 'q', type: 'uplink-offline-queue', db: path.join(dir, 'q.db'), startOffline: true, wires: [[], [], []] },
    ];

    it('hears from the queue which captures it committed, and after a restart sends again once what it did not', async function () {
      let n = await load({ wires: [['out', 'q']] }, queueNodes(), [queueNode]);
      await helper.getNode('q').ready;
      n.cap.receive({ payload: 1, topic: 'first' });
      await waitFor(() => n.out.length === 1);
      n.cap.receive({ payload: 2, topic: 'second' });
      await waitFor(() => n.out.length === 2);
      const entries = n.out.map((m) => m.uplink.journal.entry);
      assert.deepStrictEqual(n.out.map((m) => m.uplink.journal.owner), ['cap', 'cap']);
      await waitFor(() => fs.existsSync(journalFile()) && records().filter((r) => r.t === 'queued').length === 2, { what: 'both committed' });
      assert.deepStrictEqual(records().filter((r) => r.t === 'queued').map((r) => r.id), entries);
      assert.ok(records().some((r) => r.t === 'acked-by-queue'));
      await helper.unload();

      // What a capture killed between its link and the queue's commit leaves: its file, and its journal entry.
      const j = await CaptureJournal.open(path.join(dir, 'images'), 'cap', { warn() {}, log() {} });
      const png = await new TestPatternSource({ width: 40, height: 30, camera: 'gate' }).grab(new AbortController().signal, 1e7);
      const temp = path.join(dir, 'images', 'gate', '.killed.png.1.part');
      fs.writeFileSync(temp, png);
      const facts = { bytes: png.length, sha256: require('crypto').createHash('sha256').update(png).digest('hex'), width: 40, height: 30, contentType: 'image/png', camera: 'gate', capturedAt: '2026-03-01T09:00:00.000Z' };
      const ref = await j.written(temp, path.join(dir, 'images', 'gate', 'killed.png'), facts, { msg: { topic: 'third', session: 'S-9' }, metadata: { court: '4' } });
      fs.linkSync(temp, path.join(dir, 'images', 'gate', 'killed.png'));
      await j.close();

      n = await load({ wires: [['out', 'q']], metadata: [{ name: 'court', value: '1' }] }, queueNodes(), [queueNode]);
      const q = helper.getNode('q');
      await q.ready;
      await waitFor(() => n.out.length === 1, { what: 'the capture sent again' });
      const m = n.out[0];
      assert.strictEqual(m.uplink.file, path.join(dir, 'images', 'gate', 'killed.png'));
      assert.strictEqual(m.payload, m.uplink.file);
      assert.deepStrictEqual([m.uplink.key, m.uplink.sha256, m.uplink.recovered, m.uplink.journal], ['gate/killed.png', facts.sha256, true, ref]);
      assert.deepStrictEqual([m.topic, m.session, m.uplink.metadata], ['third', 'S-9', { court: '4' }], 'the trigger and metadata of the capture, not of the node now');
      await waitFor(async () => (await q.queue.store.list({ states: ['pending'] })).length === 3, { what: 'three items queued' });
      const files = (await q.queue.store.list({ states: ['pending'] })).map((i) => i.file);
      assert.strictEqual(new Set(files).size, 3, 'each file queued once');
      await waitFor(() => records().some((r) => r.t === 'queued' && r.id === ref.entry), { what: 'the queue to confirm it' });
    });

    it('sends nothing again for a node wired to no queue, and leaves no journal behind', async function () {
      let n = await load();
      n.cap.receive({ payload: 1 });
      await waitFor(() => n.out.length === 1);
      assert.ok(fs.existsSync(journalFile()), 'journalled until some queue confirms it');
      await helper.unload();
      n = await load();
      await waitFor(() => !fs.existsSync(journalFile()), { what: 'the journal compacted away' });
      n.cap.receive({ payload: 2 });
      await waitFor(() => n.out.length === 1);
      assert.strictEqual(n.out[0].uplink.recovered, undefined, 'the one message is the new capture');
    });
  });
});
