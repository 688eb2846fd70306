'use strict';
// Nodes whose settings are still blank (a shipped flow imported before the user has set a bucket, a camera or a
// project; an unresolved ${NAME}) wait: a yellow status that names what to set, nothing sent, no request made, and
// one line in the log, never a line per trigger. Nothing captured meanwhile is queued, so nothing is uploaded later.
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const helper = require('node-red-node-test-helper');
const captureNode = require('../dist/nodes/capture/capture.js');
const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
const connectivityNode = require('../dist/nodes/connectivity/connectivity.js');
const uploaderNode = require('../dist/nodes/uploader/uploader.js');
const recorderNode = require('../dist/nodes/recorder/recorder.js');
const s3ConfigNode = require('../dist/nodes/s3-config/s3-config.js');
const supabaseConfigNode = require('../dist/nodes/supabase-config/supabase-config.js');
const folderConfigNode = require('../dist/nodes/folder-config/folder-config.js');
const { parseS3Settings } = require('../dist/lib/upload/backends/s3');
const { parseSupabaseSettings } = require('../dist/lib/upload/backends/supabase/settings');
const { parseFolderSettings } = require('../dist/lib/upload/backends/folder');
const { parseFfmpegSettings } = require('../dist/lib/media/ffmpeg-input');
const { parseConnectivityConfig } = require('../dist/lib/connectivity/config');
const { NotConfiguredError, text } = require('../dist/lib/util/settings');
const runtimeEvents = require('@node-red/util').events;
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

const WARN = 30;
/** What the nodes wrote to the log at warn level or above, as [level, node id, text]. */
const logged = () =>
  helper
    .log()
    .args.map((a) => a[0])
    .filter((m) => m && m.level <= WARN && m.id)
    .map((m) => [m.level, m.id, String(m.msg)]);

function trackStatus(node) {
  const orig = node.status.bind(node);
  node.status = (s) => {
    node.lastStatus = s;
    return orig(s);
  };
  return node;
}

const notConfigured = (what) => (e) => e instanceof NotConfiguredError && e.message === `not configured: set the ${what}`;

describe('settings not given yet', function () {
  describe('parsers', function () {
    it('read an unresolved ${NAME} as blank', function () {
      assert.strictEqual(text('${UPLINK_S3_BUCKET}'), '');
      assert.strictEqual(text('  ${UPLINK_S3_BUCKET} '), '');
      assert.strictEqual(text('${UPLINK_S3_BUCKET}-backup'), '${UPLINK_S3_BUCKET}-backup', 'only a whole ${NAME} is an unresolved variable');
      assert.strictEqual(text('my-bucket'), 'my-bucket');
    });

    it('call blank required settings "not configured", naming each, and wrong ones errors', function () {
      assert.throws(() => parseS3Settings({ bucket: '${UPLINK_S3_BUCKET}', endpoint: '${UPLINK_S3_ENDPOINT}', region: '${UPLINK_S3_REGION}' }, {}), notConfigured('bucket'));
      assert.throws(() => parseSupabaseSettings({ url: '', bucket: 'captures' }, {}), notConfigured('project URL and API key'));
      assert.throws(() => parseFolderSettings({ folder: '${UPLINK_DEMO_OUTBOX}' }, '/home/pi/.node-red'), notConfigured('folder'));
      assert.throws(() => parseFfmpegSettings({ input: '' }, {}), notConfigured('camera input'));
      // A wrong value is an error, and then the blank ones are listed with it.
      assert.throws(
        () => parseS3Settings({ bucket: '', timeout: 'soon' }, {}),
        (/** @type {Error} */ e) => !(e instanceof NotConfiguredError) && /Timeout must be a number/.test(e.message) && /Bucket is required/.test(e.message),
      );
    });

    it('put a relative folder target inside the user folder, and keep it there', function () {
      assert.deepStrictEqual(parseFolderSettings({ folder: 'uplink/outbox' }, '/home/pi/.node-red'), {
        folder: '/home/pi/.node-red/uplink/outbox',
        create: true,
        timeoutMs: 60000,
      });
      assert.strictEqual(parseFolderSettings({ folder: '/mnt/nas' }, '/home/pi/.node-red').create, false);
      assert.throws(() => parseFolderSettings({ folder: '../outbox' }, '/home/pi/.node-red'), /inside the Node-RED user folder/);
      assert.throws(() => parseFolderSettings({ folder: 'outbox' }), /absolute path/);
    });

    it('resolve a probe URL that is a path against this Node-RED', function () {
      const c = parseConnectivityConfig({ url: '/uplink-demo/target' }, { localBase: 'http://127.0.0.1:1880/api' });
      assert.strictEqual(/** @type {any} */ (c.probe).url, 'http://127.0.0.1:1880/api/uplink-demo/target');
      assert.throws(() => parseConnectivityConfig({ url: '/uplink-demo/target' }, {}), /serves no HTTP nodes/);
    });
  });

  describe('nodes', function () {
    let dir;
    let server;
    let requests;
    beforeEach(function (done) {
      dir = tmpDir();
      requests = [];
      server = http.createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        res.end();
      });
      server.listen(0, '127.0.0.1', () => helper.startServer(done));
    });
    afterEach(async function () {
      await helper.unload();
      await new Promise((r) => helper.stopServer(r));
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
      rmrf(dir);
    });

    it('a pipeline whose bucket is blank captures, queues nothing, probes nothing and says so once', async function () {
      const endpoint = `http://127.0.0.1:${server.address().port}`;
      const flow = [
        { id: 's3', type: 'uplink-s3-config', name: 'bucket', endpoint, bucket: '${UPLINK_S3_BUCKET}', region: '${UPLINK_S3_REGION}', forcePathStyle: true },
        { id: 'cap', type: 'uplink-capture', camera: 'cam', source: 'auto', url: '${UPLINK_CAMERA_URL}', folder: path.join(dir, 'images'), minFreeMB: 0, wires: [['q', 'captured']] },
        { id: 'q', type: 'uplink-offline-queue', db: path.join(dir, 'q.db'), startOffline: true, statsInterval: 0.1, wires: [['up'], ['rejected'], []] },
        { id: 'conn', type: 'uplink-connectivity', probeType: 'target', targetType: 's3', s3: 's3', interval: 0.2, offlineMin: 0.05, offlineMax: 0.1, wires: [['q', 'state']] },
        { id: 'up', type: 'uplink-uploader', backend: 's3', s3: 's3', wires: [['sent'], ['sent']] },
        { id: 'captured', type: 'helper' },
        { id: 'state', type: 'helper' },
        { id: 'rejected', type: 'helper' },
        { id: 'sent', type: 'helper' },
      ];
      // Every node's status, as the editor gets it (the connectivity node and the uploader set theirs at deploy).
      const statuses = [];
      const onStatus = (e) => statuses.push(e);
      runtimeEvents.on('node-status', onStatus);
      try {
        await helper.load([s3ConfigNode, captureNode, queueNode, connectivityNode, uploaderNode], flow);
      } finally {
        runtimeEvents.off('node-status', onStatus);
      }
      const [cap, q] = ['cap', 'q'].map((id) => trackStatus(helper.getNode(id)));
      const got = (id) => {
        const list = [];
        helper.getNode(id).on('input', (m) => list.push(m));
        return list;
      };
      const [captured, state, rejected, sent] = ['captured', 'state', 'rejected', 'sent'].map(got);
      const last = (id) => statuses.filter((e) => e.id === id).pop()?.status;
      const queue = await q.ready;

      await waitFor(() => state.length === 1, { what: 'the connectivity node to tell the queue' });
      assert.deepStrictEqual(
        { ...state[0].payload, since: undefined },
        { online: false, configured: false, reason: 'not configured: set the bucket', since: undefined },
      );
      for (let i = 0; i < 3; i++) {
        cap.receive({ payload: `trigger ${i}` });
        await waitFor(() => captured.length === i + 1, { what: `capture ${i + 1}` });
      }
      const stats = await waitFor(async () => {
        const s = await queue.stats();
        return s.notQueued === 3 && s;
      }, { what: 'three captures not queued' });
      assert.strictEqual(stats.pending, 0);
      assert.strictEqual(stats.totals.enqueued, 0, 'nothing was stored for the target');
      assert.deepStrictEqual([rejected.length, sent.length], [0, 0], 'nothing sent on');
      assert.strictEqual(cap.lastStatus.fill, 'green', 'the captures themselves work: the test pattern');
      await waitFor(() => q.lastStatus?.text === 'not configured: set the bucket · 3 not queued', { what: 'the queue status' });
      for (const id of ['q', 'conn', 'up']) assert.deepStrictEqual([last(id).fill, last(id).shape], ['yellow', 'ring'], `${id} status`);
      assert.strictEqual(last('conn').text, 'not configured: set the bucket');
      assert.strictEqual(last('up').text, 'not configured: set the bucket');
      helper.getNode('conn').receive({ topic: 'probe' });
      await new Promise((r) => setTimeout(r, 300)); // a probe, were one made, would have reached the server by now
      assert.deepStrictEqual(requests, [], 'no request reached the endpoint');
      assert.deepStrictEqual(logged(), [[WARN, 's3', 'not configured: set the bucket: the nodes using this target wait until it is']]);
      // A later deploy that restarts only the queue: the connectivity node tells it again.
      runtimeEvents.emit('flows:started', { config: { flows: [] }, type: 'nodes', diff: {} });
      await waitFor(() => state.length === 2, { what: 'the state told again after a deploy' });
      assert.strictEqual(state[1].payload.configured, false);
    });

    it('a capture whose camera is blank sends nothing on a trigger and logs one line, not one per trigger', async function () {
      const flow = [
        { id: 'cap', type: 'uplink-capture', camera: 'gate', source: 'ffmpeg', input: '', mode: 'clip', folder: dir, wires: [['out']] },
        { id: 'out', type: 'helper' },
      ];
      await helper.load([captureNode], flow);
      const cap = helper.getNode('cap');
      const out = [];
      helper.getNode('out').on('input', (m) => out.push(m));
      for (let i = 0; i < 3; i++) cap.receive({ payload: 1 });
      await new Promise((r) => setTimeout(r, 200));
      assert.deepStrictEqual(out, []);
      assert.deepStrictEqual(logged(), [[WARN, 'cap', 'not configured: set the camera input']]);
    });

    it('a recorder whose camera is blank starts no ffmpeg and ignores "start"', async function () {
      const flow = [{ id: 'rec', type: 'uplink-recorder', camera: 'gate', input: '${UPLINK_RECORDER_INPUT}', folder: path.join(dir, 'rec'), wires: [['seg'], ['ev']] }, { id: 'seg', type: 'helper' }, { id: 'ev', type: 'helper' }];
      await helper.load([recorderNode], flow);
      const rec = helper.getNode('rec');
      const events = [];
      helper.getNode('ev').on('input', (m) => events.push(m));
      rec.receive({ topic: 'start' });
      await new Promise((r) => setTimeout(r, 200));
      assert.strictEqual(rec.recorder, undefined, 'no recorder runs');
      assert.deepStrictEqual(events, []);
      assert.ok(!fs.existsSync(path.join(dir, 'rec')), 'no folder made');
      assert.deepStrictEqual(logged(), [[WARN, 'rec', 'not configured: set the camera input']]);
    });

    it('a Supabase target left blank keeps its uploader waiting: an item that reaches it anyway is not sent', async function () {
      const flow = [
        { id: 'sb', type: 'uplink-supabase-config', url: '', bucket: 'captures', table: '' },
        { id: 'up', type: 'uplink-uploader', backend: 'supabase', supabase: 'sb', wires: [['ok'], ['failed']] },
        { id: 'ok', type: 'helper' },
        { id: 'failed', type: 'helper' },
      ];
      await helper.load([supabaseConfigNode, uploaderNode], flow);
      const up = helper.getNode('up');
      const out = [];
      for (const id of ['ok', 'failed']) helper.getNode(id).on('input', (m) => out.push(m));
      up.receive({ payload: 'a reading', uplink: { item: { id: 1, attempt: 1 } } });
      await new Promise((r) => setTimeout(r, 200));
      assert.deepStrictEqual(out, []);
      assert.deepStrictEqual(logged(), [[WARN, 'sb', 'not configured: set the project URL and API key: the nodes using this target wait until it is']]);
    });

    it('a folder target given as a relative path writes inside the user folder, made at deploy', async function () {
      helper.settings({ userDir: dir });
      const flow = [
        { id: 'out', type: 'uplink-folder-config', folder: 'uplink/outbox' },
        { id: 'up', type: 'uplink-uploader', backend: 'folder', folder: 'out', keyTemplate: '{date}/{time}_{id}.{ext}', wires: [['ok'], ['failed']] },
        { id: 'ok', type: 'helper' },
        { id: 'failed', type: 'helper' },
      ];
      try {
        await helper.load([folderConfigNode, uploaderNode], flow);
        assert.ok(fs.statSync(path.join(dir, 'uplink', 'outbox')).isDirectory(), 'made at deploy');
        const ok = [];
        helper.getNode('ok').on('input', (m) => ok.push(m));
        helper.getNode('up').receive({ payload: { t: 21.5 }, uplink: { item: { id: 4, attempt: 1, queuedAt: '2026-03-04T05:06:07.000Z' } } });
        await waitFor(() => ok.length === 1, { what: 'the upload' });
        assert.strictEqual(fs.readFileSync(path.join(dir, 'uplink', 'outbox', '2026-03-04', '05-06-07_4.json'), 'utf8'), '{"t":21.5}');
      } finally {
        helper.settings({});
      }
    });
  });
});
