'use strict';
const assert = require('assert');
const http = require('http');
const path = require('path');
const helper = require('node-red-node-test-helper');
const connectivityNode = require('../dist/nodes/connectivity/connectivity.js');
const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
const s3ConfigNode = require('../dist/nodes/s3-config/s3-config.js');
const folderConfigNode = require('../dist/nodes/folder-config/folder-config.js');
const { S3Server } = require('./support/s3-server');
const fs = require('fs');
const { listenLocal } = require('./support/net');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

/** An upload target on 127.0.0.1 that can be stopped and started again on the same port. */
class Target {
  constructor() {
    this.requests = 0;
    this.status = 204;
    this.sockets = new Set();
  }
  async start(port = 0) {
    this.server = http.createServer((req, res) => {
      this.requests++;
      res.writeHead(this.status);
      res.end();
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.port = await listenLocal(this.server, port);
    return this;
  }
  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
  get url() {
    return `http://127.0.0.1:${this.port}/bucket`;
  }
}

function collect(node) {
  const got = [];
  node.on('input', (msg) => got.push(msg));
  return got;
}

const FAST = { timeout: 0.3, interval: 0.3, offlineMin: 0.05, offlineMax: 0.2, failures: 2 };

describe('connectivity node', function () {
  let target;
  let dir;
  beforeEach(async function () {
    dir = tmpDir();
    target = await new Target().start();
    await new Promise((resolve) => helper.startServer(resolve));
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((resolve) => helper.stopServer(resolve));
    if (target.server.listening) await target.stop();
    rmrf(dir);
  });

  async function load(config = {}, extra = [], nodes = []) {
    const flow = [
      { id: 'c', type: 'uplink-connectivity', probeType: 'http', url: target.url, ...FAST, wires: config.gate ? [['on'], ['off'], ['state']] : [['state']], ...config },
      { id: 'state', type: 'helper' },
      { id: 'on', type: 'helper' },
      { id: 'off', type: 'helper' },
      { id: 'k', type: 'catch', scope: null, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
      ...extra,
    ];
    await helper.load([connectivityNode, catchNode, ...nodes], flow);
    return {
      c: helper.getNode('c'),
      state: collect(helper.getNode('state')),
      on: collect(helper.getNode('on')),
      off: collect(helper.getNode('off')),
      caught: collect(helper.getNode('caught')),
    };
  }

  it('says online, then offline after two failed probes, then online again when the target returns', async function () {
    const n = await load();
    await waitFor(() => n.state.length === 1, { what: 'first state' });
    assert.strictEqual(n.state[0].topic, 'connectivity');
    assert.strictEqual(n.state[0].payload.online, true);
    assert.strictEqual(n.state[0].payload.reason, 'HTTP 204');
    assert.strictEqual(typeof n.state[0].payload.latency, 'number');
    assert.strictEqual(n.state[0].payload.target, `HEAD http://127.0.0.1:${target.port}/bucket`);

    const port = target.port;
    await target.stop();
    n.c.receive({ topic: 'probe' });
    await waitFor(() => n.state.length === 2, { what: 'offline' });
    assert.strictEqual(n.state[1].payload.online, false);
    assert.strictEqual(n.state[1].payload.reason, 'connection refused');

    await target.start(port);
    await waitFor(() => n.state.length === 3, { what: 'online again' });
    assert.strictEqual(n.state[2].payload.online, true);
    await new Promise((r) => setTimeout(r, 300));
    assert.strictEqual(n.state.length, 3, 'one message per change, not per probe');
  });

  it('treats a 503 from the target as offline', async function () {
    target.status = 503;
    const n = await load();
    await waitFor(() => n.state.length === 1);
    assert.strictEqual(n.state[0].payload.online, false);
    assert.strictEqual(n.state[0].payload.reason, 'HTTP 503 Service Unavailable');
  });

  it('gates messages: output 1 while online, output 2 while offline', async function () {
    const n = await load({ gate: true });
    await waitFor(() => n.state.length === 1 && n.state[0].payload.online === true);
    n.c.receive({ payload: 'a' });
    await waitFor(() => n.on.length === 1);
    await target.stop();
    n.c.receive({ topic: 'probe' });
    await waitFor(() => n.state.length === 2 && n.state[1].payload.online === false);
    n.c.receive({ payload: 'b' });
    await waitFor(() => n.off.length === 1);
    assert.deepStrictEqual([n.on.map((m) => m.payload), n.off.map((m) => m.payload)], [['a'], ['b']]);
  });

  it('probes at once when an upload fails with a network error, and not for a permanent failure', async function () {
    const n = await load({ interval: 3600 });
    await waitFor(() => n.state.length === 1);
    const before = target.requests;
    n.c.receive({ uplink: { ack: false, item: { id: 1 }, error: { class: 'permanent', message: '403 Access Denied' } } });
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(target.requests, before, 'a permanent failure says nothing about the link');
    n.c.receive({ uplink: { ack: false, item: { id: 2 }, error: { class: 'retryable', message: 'ECONNRESET' } } });
    await waitFor(() => target.requests === before + 1, { what: 'an immediate probe' });
  });

  it('sends its history and uptime on request and over the admin API', async function () {
    const n = await load();
    await waitFor(() => n.state.length === 1);
    await target.stop();
    await waitFor(() => n.state.length === 2);
    n.c.receive({ topic: 'history' });
    await waitFor(() => n.state.length === 3);
    const h = n.state[2];
    assert.strictEqual(h.topic, 'connectivity/history');
    assert.deepStrictEqual(h.payload.history.map((e) => e.online), [true, false]);
    assert.strictEqual(h.payload.history[1].reason, 'connection refused');
    assert.ok(h.payload.uptime.probes >= 3);
    const res = await helper.request().get('/uplink/connectivity/c/history').expect(200);
    assert.deepStrictEqual(res.body.history.map((e) => e.online), [true, false]);
    await helper.request().get('/uplink/connectivity/nope/history').expect(404);
  });

  it('rejects a broken configuration at deploy with a clear error', async function () {
    const n = await load({ probeType: 'tcp', host: '127.0.0.1', port: '70000' });
    n.c.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /Port must be a number from 1 to 65535 \(got "70000"\)/);
    const logged = helper.log().args.map((a) => a[0]).filter((e) => e.level === 20 && e.id === 'c');
    assert.ok(logged.some((e) => /configuration error/.test(e.msg)));
  });

  it('rejects a URL that is not one', async function () {
    const n = await load({ url: 'ftp//nowhere' });
    n.c.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /URL "ftp\/\/nowhere" is not a valid URL/);
  });

  it('stops probing when the flow is stopped', async function () {
    await load();
    await waitFor(() => target.requests >= 2, { what: 'a couple of probes' });
    await helper.unload();
    const after = target.requests;
    await new Promise((r) => setTimeout(r, 1000));
    assert.strictEqual(target.requests, after, 'no probe after close');
  });

  it('by default probes the endpoint of the chosen upload target: an S3 store', async function () {
    const s3 = await new S3Server({ buckets: ['probe-me'] }).start();
    try {
      const n = await load({ probeType: 'target', targetType: 's3', s3: 'cfg', url: undefined }, [{ id: 'cfg', type: 'uplink-s3-config', ...s3.config() }], [s3ConfigNode]);
      await waitFor(() => n.state.length === 1, { what: 'first state' });
      assert.strictEqual(n.state[0].payload.online, true);
      assert.strictEqual(n.state[0].payload.target, `HEAD http://127.0.0.1:${s3.port}/probe-me`);
      await s3.stop();
      n.c.receive({ topic: 'probe' });
      await waitFor(() => n.state.length === 2, { what: 'offline' });
      assert.deepStrictEqual([n.state[1].payload.online, n.state[1].payload.reason], [false, 'connection refused']);
    } finally {
      await s3.destroy();
    }
  });

  it('probes a folder target by whether the folder is there (a mounted share)', async function () {
    const share = path.join(dir, 'share');
    fs.mkdirSync(share);
    const n = await load({ probeType: 'target', targetType: 'folder', folder: 'f', url: undefined }, [{ id: 'f', type: 'uplink-folder-config', folder: share }], [folderConfigNode]);
    await waitFor(() => n.state.length === 1);
    assert.deepStrictEqual([n.state[0].payload.online, n.state[0].payload.reason], [true, 'folder present']);
    fs.rmSync(share, { recursive: true });
    n.c.receive({ topic: 'probe' });
    await waitFor(() => n.state.length === 2);
    assert.deepStrictEqual([n.state[1].payload.online, n.state[1].payload.reason], [false, 'folder not there (not mounted?)']);
  });

  it('says which target is missing when none is chosen', async function () {
    const n = await load({ probeType: 'target', targetType: 's3', s3: '' });
    n.c.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1);
    assert.match(n.caught[0].error.message, /choose the s3 target whose endpoint to probe/);
  });

  it('pauses a real offline queue while the target is down and lets it drain, losing nothing, when it returns', async function () {
    const extra = [
      {
        id: 'q',
        type: 'uplink-offline-queue',
        db: path.join(dir, 'q.db'),
        concurrency: 2,
        startOffline: true,
        statsInterval: 0.1,
        wires: [['delivered'], [], ['stats']],
      },
      { id: 'delivered', type: 'helper' },
      { id: 'stats', type: 'helper' },
    ];
    const n = await load({ wires: [['state', 'q']] }, extra, [queueNode]);
    const q = helper.getNode('q');
    await q.ready;
    const delivered = collect(helper.getNode('delivered'));
    const stats = collect(helper.getNode('stats'));
    // The "uploader" acks every delivery.
    helper.getNode('delivered').on('input', (msg) => q.receive({ ...msg, uplink: { ...msg.uplink, ack: true } }));
    await waitFor(() => n.state.length === 1 && n.state[0].payload.online);

    const port = target.port;
    await target.stop();
    n.c.receive({ topic: 'probe' });
    await waitFor(() => n.state.length === 2, { what: 'offline' });
    const heldBefore = delivered.length;
    for (let i = 0; i < 10; i++) q.receive({ payload: `reading ${i}` });
    await waitFor(() => stats.length && stats[stats.length - 1].payload.pending === 10, { what: '10 pending' });
    assert.strictEqual(stats[stats.length - 1].payload.online, false);
    assert.strictEqual(delivered.length, heldBefore, 'nothing goes out while offline');

    await target.start(port);
    await waitFor(() => stats.length && stats[stats.length - 1].payload.uploaded === 10, { what: 'all 10 uploaded', timeout: 10000 });
    const payloads = delivered.map((m) => m.payload).sort();
    assert.deepStrictEqual(payloads, Array.from({ length: 10 }, (_, i) => `reading ${i}`).sort(), 'each item exactly once');
  });
});
