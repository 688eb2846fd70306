'use strict';
// The capture node in clip mode, in a real Node-RED (node-red-node-test-helper), recording with real ffmpeg from a real
// RTSP server (GStreamer) that wants Digest auth.
const assert = require('assert');
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const captureNode = require('../dist/nodes/capture/capture.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
const { CAPTURE_STATE_DIR } = require('../dist/lib/capture/journal');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { available, unavailableReason, startRtspServer } = require('./support/rtsp-server');
const { alive } = require('./support/procs');

helper.init(require.resolve('node-red'));

const FFMPEG = '/usr/bin/ffmpeg';
const USER = 'coach';
const PASSWORD = 'pa:ss@word';

/** The files below `dir`, leaving out the capture journal's state folder. */
function filesBelow(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { encoding: 'utf8', recursive: true }).filter((f) => f.split(path.sep)[0] !== CAPTURE_STATE_DIR && fs.statSync(path.join(dir, f)).isFile());
}

describe('capture node: clips', function () {
  this.timeout(60000);
  let server;
  let dir;

  before(async function () {
    if (spawnSync(FFMPEG, ['-version'], { stdio: 'ignore' }).status !== 0) {
      console.log(`      skipped: ${FFMPEG} is not installed`);
      this.skip();
    }
    if (!available()) {
      console.log(`      skipped: ${unavailableReason()}`);
      this.skip();
    }
    server = await startRtspServer({ user: USER, password: PASSWORD });
  });

  after(async () => {
    if (server) await server.close();
  });

  beforeEach(function (done) {
    dir = tmpDir('uplink-clip-node-');
    helper.startServer(done);
  });

  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    rmrf(dir);
  });

  async function load(config = {}, creds = { cap: { username: USER, password: PASSWORD } }) {
    const flow = [
      {
        id: 'cap',
        type: 'uplink-capture',
        camera: 'court-3',
        source: 'ffmpeg',
        mode: 'clip',
        input: server.url,
        ffmpegPath: FFMPEG,
        clipLength: 10,
        clipMax: 30,
        timeout: 5,
        folder: path.join(dir, 'clips'),
        minFreeMB: 0,
        wires: [['out']],
        ...config,
      },
      { id: 'out', type: 'helper' },
      { id: 'k', type: 'catch', scope: null, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ];
    await helper.load([captureNode, catchNode], flow, creds);
    const got = { out: [], caught: [], statuses: [], warnings: [] };
    helper.getNode('out').on('input', (m) => got.out.push(m));
    helper.getNode('caught').on('input', (m) => got.caught.push(m));
    const cap = helper.getNode('cap');
    const status = cap.status.bind(cap);
    cap.status = (s) => {
      got.statuses.push(s);
      return status(s);
    };
    const warn = cap.warn.bind(cap);
    cap.warn = (w) => {
      got.warnings.push(String(w));
      return warn(w);
    };
    return { cap, ...got };
  }

  it('records a clip on a trigger, as long as msg.duration asks, with the metadata of the node and of the message', async function () {
    const n = await load({
      metadata: [
        { name: 'session', value: 'S-12' },
        { name: 'arena', value: 'North' },
        { name: 'court', value: '2' },
      ],
    });
    n.cap.receive({ payload: 1, topic: 'serve', duration: 2, metadata: { court: '3', player: 'P-9', key: 'not/the/key' } });
    await waitFor(() => n.out.length === 1 || n.caught.length > 0, { timeout: 30000, what: 'the clip' });
    assert.deepStrictEqual(n.caught.map((m) => m.error.message), []);
    const m = n.out[0];
    const u = m.uplink;
    assert.strictEqual(m.payload, u.file);
    assert.strictEqual(m.topic, 'serve');
    const data = fs.readFileSync(u.file);
    assert.strictEqual(data.length, u.bytes);
    assert.strictEqual(crypto.createHash('sha256').update(data).digest('hex'), u.sha256);
    assert.deepStrictEqual([u.contentType, u.codec, u.width, u.height, u.camera, u.requestedS, u.partial], ['video/mp4', 'h264', 640, 360, 'court-3', 2, false]);
    assert.ok(Math.abs(u.durationS - 2) <= 1, `duration ${u.durationS}`);
    assert.match(u.key, /^court-3\/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(\.\d{3})?_640_360\.mp4$/);
    assert.ok(!Number.isNaN(Date.parse(u.capturedAt)));
    // The uploader maps msg.uplink into `fields`: fields.metadata.session, and the flat copies as fields.session.
    assert.deepStrictEqual(u.metadata, { session: 'S-12', arena: 'North', court: '3', player: 'P-9', key: 'not/the/key' });
    assert.deepStrictEqual([u.session, u.arena, u.court, u.player], ['S-12', 'North', '3', 'P-9']);
    const last = n.statuses[n.statuses.length - 1];
    assert.strictEqual(last.fill, 'green', JSON.stringify(last));
    assert.deepStrictEqual(filesBelow(path.join(dir, 'clips')), [u.key]);
  });

  it('keeps a clip cut short by the camera going away, marked partial, with a yellow status saying so', async function () {
    const n = await load();
    n.cap.receive({ payload: 1, duration: 10 });
    const folder = path.join(dir, 'clips');
    await waitFor(() => filesBelow(folder).some((f) => f.includes('.part') && fs.statSync(path.join(folder, f)).size > 50000), { what: 'ffmpeg to write video', timeout: 20000 });
    await server.kill();
    try {
      await waitFor(() => n.out.length === 1 || n.caught.length > 0, { timeout: 30000, what: 'the partial clip' });
      assert.deepStrictEqual(n.caught.map((m) => m.error.message), []);
      const u = n.out[0].uplink;
      assert.strictEqual(u.partial, true);
      assert.ok(u.durationS > 0 && u.durationS < 9, `duration ${u.durationS}`);
      assert.ok(fs.existsSync(u.file));
      const last = n.statuses[n.statuses.length - 1];
      assert.strictEqual(last.fill, 'yellow');
      assert.match(last.text, /^partial clip \d+\.\d s of 10 s: camera stopped sending/);
      assert.match(n.warnings.join('\n'), /partial clip/);
    } finally {
      await server.restart();
    }
  });

  it('reports a refused login to Catch nodes with a red status, leaving no file', async function () {
    const n = await load({}, { cap: { username: USER, password: 'wrong-one' } });
    n.cap.receive({ payload: 1, duration: 2 });
    await waitFor(() => n.caught.length === 1, { timeout: 30000, what: 'the error' });
    assert.match(n.caught[0].error.message, /clip failed: rtsp:\/\/127\.0\.0\.1:\d+\/cam refused the user name or password \(401 Unauthorized\): check the user name and password$/);
    assert.ok(!n.caught[0].error.message.includes('wrong-one'));
    assert.strictEqual(n.statuses[n.statuses.length - 1].fill, 'red');
    assert.deepStrictEqual(n.out, []);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'clips')), []);
  });

  it('stops ffmpeg when the flow stops mid-recording, leaving no process and no unfinished file', async function () {
    const n = await load();
    n.cap.receive({ payload: 1, duration: 20 });
    const source = n.cap.clipRecorder.source;
    const [pid] = await waitFor(() => source.runningPids.length && source.runningPids, { what: 'ffmpeg to start' });
    assert.ok(alive(pid));
    await helper.unload();
    assert.strictEqual(alive(pid), false, 'ffmpeg outlived its node');
    assert.deepStrictEqual(source.runningPids, []);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'clips')), []);
    assert.deepStrictEqual(n.caught, [], 'stopping the flow is not an error');
  });

  it('skips a trigger that comes while a clip records', async function () {
    const n = await load();
    n.cap.receive({ payload: 1, duration: 2 });
    await waitFor(() => n.cap.clipRecorder.source.runningPids.length > 0, { what: 'ffmpeg to start' });
    n.cap.receive({ payload: 2, duration: 2 });
    assert.match(n.statuses[n.statuses.length - 1].text, /skipped: still recording/);
    await waitFor(() => n.out.length === 1 || n.caught.length > 0, { timeout: 30000, what: 'the clip' });
    assert.strictEqual(n.out[0].payload, n.out[0].uplink.file);
    assert.strictEqual(n.out.length, 1);
  });

  it('refuses a length outside the limits, and bad msg.metadata, before starting ffmpeg', async function () {
    const n = await load();
    n.cap.receive({ payload: 1, duration: 31 });
    await waitFor(() => n.caught.length === 1, { what: 'the error' });
    assert.match(n.caught[0].error.message, /msg\.duration must be a number of seconds from 1 to 30/);
    n.cap.receive({ payload: 1, duration: 2, metadata: 'S-12' });
    await waitFor(() => n.caught.length === 2, { what: 'the error' });
    assert.match(n.caught[1].error.message, /msg\.metadata must be an object/);
    assert.deepStrictEqual(n.out, []);
    assert.deepStrictEqual(n.statuses.filter((st) => /recording/.test(st.text)), [], 'ffmpeg was started');
  });

  it('refuses clip mode without the ffmpeg source at deploy', async function () {
    const n = await load({ source: 'test-pattern' });
    n.cap.receive({ payload: 1 });
    await waitFor(() => n.caught.length === 1, { what: 'the error' });
    assert.match(n.caught[0].error.message, /configuration error: Clip mode records with ffmpeg: choose the ffmpeg source/);
  });
});
