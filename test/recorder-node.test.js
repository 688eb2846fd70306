'use strict';
const assert = require('assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const recorderNode = require('../dist/nodes/recorder/recorder.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
const { STATE_DIR } = require('../dist/lib/recorder/store');
const rtsp = require('./support/rtsp-server');
const { startNodeRed } = require('./support/node-red-process');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { alive } = require('./support/procs');

helper.init(require.resolve('node-red'));

const USER = 'admin';
const PASSWORD = 'Hunter2-s3cret!';

/** Keeps every status and warning a node shows, in order. */
function track(node) {
  const seen = { statuses: [], warnings: [] };
  const status = node.status.bind(node);
  node.status = (s) => {
    seen.statuses.push(s);
    return status(s);
  };
  const warn = node.warn.bind(node);
  node.warn = (w) => {
    seen.warnings.push(String(w));
    return warn(w);
  };
  return seen;
}

function journal(folder) {
  const file = path.join(folder, STATE_DIR, 'journal');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** What the uploader's output 1 sends for a stored file. */
function uploadedResult(m) {
  return { payload: m.payload, uplink: { ...m.uplink, ack: true, upload: { backend: 'folder', key: m.uplink.key, bytes: m.uplink.bytes, durationMs: 5 } } };
}

describe('recorder node', function () {
  this.timeout(60000);
  let dir;
  let server;
  beforeEach(function (done) {
    dir = tmpDir('uplink-recnode-');
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    if (server) await server.close();
    server = undefined;
    rmrf(dir);
  });

  async function load(config = {}, creds) {
    const flow = [
      { id: 'rec', type: 'uplink-recorder', camera: 'gate', segmentSeconds: 1, folder: path.join(dir, 'rec'), keepFreeMB: 0, wires: [['out'], ['events']], ...config },
      { id: 'out', type: 'helper' },
      { id: 'events', type: 'helper' },
      { id: 'k', type: 'catch', scope: null, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ];
    await helper.load([recorderNode, catchNode], flow, creds ? { rec: creds } : undefined);
    const rec = helper.getNode('rec');
    const got = { out: [], events: [], caught: [], rec, ...track(rec) };
    helper.getNode('out').on('input', (m) => got.out.push(m));
    helper.getNode('events').on('input', (m) => got.events.push(m));
    helper.getNode('caught').on('input', (m) => got.caught.push(m));
    return got;
  }

  const lastStatus = (n) => n.statuses[n.statuses.length - 1] || {};

  function needRtsp(ctx) {
    if (!rtsp.available()) {
      console.log(`      skipped: ${rtsp.unavailableReason()}`);
      ctx.skip();
    }
  }

  it('records an RTSP camera with a digest login; each closed segment leaves once; the password shows nowhere', async function () {
    needRtsp(this);
    server = await rtsp.startRtspServer({ user: USER, password: PASSWORD });
    const n = await load({ input: server.url, metadata: [{ name: 'site', value: 'barn' }] }, { username: USER, password: PASSWORD });
    await waitFor(() => n.out.length >= 3, { timeout: 30000, what: 'three segments' });
    assert.match(lastStatus(n).text, /^recording · \d+ segments · last \d+\.\d s$/);
    assert.strictEqual(lastStatus(n).fill, 'green');
    for (const m of n.out) {
      const u = m.uplink;
      assert.deepStrictEqual([u.contentType, u.codec, u.width, u.height, u.camera, u.requestedS, u.site], ['video/mp4', 'h264', 640, 360, 'gate', 1, 'barn']);
      // Read from the segment's MP4 header: what ffprobe says of the camera's stream as copied.
      const probed = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', u.file]).toString()).streams[0];
      assert.deepStrictEqual([u.codec, u.width, u.height], [probed.codec_name, probed.width, probed.height]);
      assert.ok(u.durationS > 0 && fs.statSync(u.file).size === u.bytes);
      assert.strictEqual(m.payload, u.file);
      assert.strictEqual(m.topic, 'gate');
    }
    assert.strictEqual(new Set(n.out.map((m) => m.uplink.file)).size, n.out.length);
    assert.deepStrictEqual(n.out.map((m) => m.uplink.recorder.segment), n.out.map((_, i) => i + 1));

    // The uploader's result wired back marks the segment uploaded.
    n.rec.receive(uploadedResult(n.out[0]));
    await waitFor(() => journal(path.join(dir, 'rec')).some((r) => r.t === 'uploaded'), { what: 'the upload to be journalled' });
    n.rec.receive({ topic: 'status' });
    await waitFor(() => n.events.some((e) => e.topic === 'stats'), { what: 'stats' });
    const stats = n.events.find((e) => e.topic === 'stats').payload;
    assert.strictEqual(stats.disk.uploaded, 1);
    assert.strictEqual(stats.state, 'recording');

    const everything = JSON.stringify([n.out, n.events, n.statuses, n.warnings, n.rec.input, helper.getNode('rec')._config || {}, journal(path.join(dir, 'rec'))]);
    assert.ok(!everything.includes(PASSWORD) && !everything.includes(encodeURIComponent(PASSWORD)), 'the password is in a message, status, warning or the journal');
  });

  it('keeps recording through a camera restart: reconnects with backoff, counts the gap, sends every closed segment once', async function () {
    needRtsp(this);
    server = await rtsp.startRtspServer();
    const n = await load({ input: server.url, segmentSeconds: 1 });
    await waitFor(() => n.out.length >= 2, { timeout: 30000, what: 'two segments' });
    await server.kill();
    await waitFor(() => /^reconnecting in \d+ s: connection refused$/.test(lastStatus(n).text || ''), { timeout: 20000, what: 'a refused reconnect' });
    assert.deepStrictEqual([lastStatus(n).fill, lastStatus(n).shape], ['yellow', 'ring']);
    const before = n.out.length;
    await server.restart();
    await waitFor(() => n.out.length >= before + 2, { timeout: 30000, what: 'recording to resume' });
    assert.strictEqual(lastStatus(n).fill, 'green');
    assert.match(lastStatus(n).text, / · 1 gap$/);

    const files = n.out.map((m) => m.uplink.file);
    assert.strictEqual(new Set(files).size, files.length, 'no segment twice');
    const gaps = n.out.filter((m) => m.uplink.recorder.gapBeforeS !== undefined);
    assert.strictEqual(gaps.length, 1, 'one gap');
    assert.strictEqual(gaps[0], n.out[before], 'on the first segment after the restart');
    assert.ok(gaps[0].uplink.recorder.gapBeforeS > 0);
    assert.notStrictEqual(gaps[0].uplink.recorder.run, n.out[0].uplink.recorder.run);
    const all = fs.readdirSync(path.join(dir, 'rec')).filter((f) => f.endsWith('.mp4'));
    assert.strictEqual(all.length, files.length, 'every closed segment on disk was sent');

    assert.ok(n.events.some((e) => e.topic === 'reconnecting' && /connection refused|stream ended/.test(e.payload.reason)));
    n.rec.receive({ payload: 'status' });
    await waitFor(() => n.events.some((e) => e.topic === 'stats'), { what: 'stats' });
    const stats = n.events.find((e) => e.topic === 'stats').payload;
    assert.strictEqual(stats.gaps.count, 1);
    assert.strictEqual(stats.gaps.totalS, gaps[0].uplink.recorder.gapBeforeS);
    assert.ok(stats.reconnects >= 2, 'the stream end, then at least one refused attempt');
  });

  it('says "401 Unauthorized" for a wrong password and retries with growing waits', async function () {
    needRtsp(this);
    server = await rtsp.startRtspServer({ user: USER, password: PASSWORD });
    const wrong = 'not-the-password-42';
    const n = await load({ input: server.url }, { username: USER, password: wrong });
    await waitFor(() => n.statuses.some((s) => s.text === 'reconnecting in 2 s: 401 Unauthorized'), { timeout: 20000, what: 'the second refused login' });
    const texts = n.statuses.map((s) => s.text).filter((t) => /^reconnecting/.test(t));
    assert.deepStrictEqual(texts.slice(0, 2), ['reconnecting in 1 s: 401 Unauthorized', 'reconnecting in 2 s: 401 Unauthorized']);
    assert.strictEqual(n.out.length, 0);
    assert.strictEqual(n.warnings.filter((w) => /401 Unauthorized/.test(w)).length, 1, 'warned once, not on every attempt');
    const everything = JSON.stringify([n.statuses, n.warnings, n.events]);
    assert.ok(!everything.includes(wrong));
  });

  it('stops ffmpeg when the flow stops mid-segment, and the next deploy sends the segment it finished', async function () {
    needRtsp(this);
    server = await rtsp.startRtspServer();
    const n = await load({ input: server.url, segmentSeconds: 2 });
    await waitFor(() => n.out.length >= 1, { timeout: 30000, what: 'a segment' });
    const pid = n.rec.recorder.pid;
    assert.ok(pid && alive(pid));
    await helper.unload();
    assert.ok(!alive(pid), 'ffmpeg is gone once the node has closed');

    const again = await load({ input: server.url, segmentSeconds: 2 });
    await waitFor(() => again.out.length >= 1, { timeout: 30000, what: 'the leftover segment' });
    const left = again.out[0].uplink;
    assert.strictEqual(left.recorder.recovered, true);
    assert.strictEqual(left.recorder.run, n.out[0].uplink.recorder.run, 'from the run that was stopped');
    assert.strictEqual(left.recorder.segment, n.out[n.out.length - 1].uplink.recorder.segment + 1);
    assert.ok(!n.out.some((m) => m.uplink.file === left.file));
  });

  it('obeys stop, start and status', async function () {
    const n = await load({ input: 'lavfi:testsrc=size=160x120:rate=10' });
    await waitFor(() => n.out.length >= 1, { timeout: 20000, what: 'a segment' });
    const pid = n.rec.recorder.pid;
    n.rec.receive({ topic: 'stop' });
    await waitFor(() => /^stopped · \d+ segments$/.test(lastStatus(n).text), { what: 'stopped' });
    assert.ok(!alive(pid));
    const stopped = n.out.length;
    n.rec.receive({ payload: 'status' });
    await waitFor(() => n.events.some((e) => e.topic === 'stats'), { what: 'stats' });
    assert.strictEqual(n.events.find((e) => e.topic === 'stats').payload.state, 'stopped');
    n.rec.receive({ payload: 'record please' });
    await waitFor(() => n.caught.length === 1, { what: 'the refused message' });
    assert.match(n.caught[0].error.message, /the recorder takes "start", "stop" or "status"/);
    n.rec.receive({ payload: 'start' });
    await waitFor(() => n.out.length > stopped, { timeout: 20000, what: 'recording again' });
    assert.ok(n.events.some((e) => e.topic === 'stopped') && n.events.filter((e) => e.topic === 'started').length === 2);
  });

  it('pauses at its disk budget with a red status, and resumes when the uploader reports uploads', async function () {
    const n = await load({ input: 'lavfi:testsrc=size=160x120:rate=10', budget: 0.07, budgetUnit: 'MB' });
    await waitFor(() => /^disk budget reached: \d+ segments not uploaded$/.test(lastStatus(n).text || ''), { timeout: 30000, what: 'the budget pause' });
    assert.deepStrictEqual([lastStatus(n).fill, lastStatus(n).shape], ['red', 'ring']);
    assert.match(n.warnings.join('\n'), /disk budget reached/);
    await waitFor(() => n.rec.recorder.pid === undefined, { what: 'ffmpeg to stop' });
    const paused = n.out.slice();
    assert.ok(paused.every((m) => fs.existsSync(m.uplink.file)), 'nothing unsent deleted');
    for (const m of paused) n.rec.receive(uploadedResult(m));
    await waitFor(() => n.events.some((e) => e.topic === 'resumed'), { timeout: 20000, what: 'resume' });
    await waitFor(() => lastStatus(n).fill === 'green' && n.out.length > paused.length + 1, { timeout: 20000, what: 'recording again' });
    await waitFor(() => !fs.existsSync(paused[0].uplink.file), { timeout: 20000, what: 'the oldest uploaded segment to be deleted' });
  });

  it('reports a configuration error at deploy, and never records', async function () {
    const n = await load({ input: 'rtsp://admin:secret@cam/x', nameTemplate: '{camera}.mp4' });
    n.rec.receive({ topic: 'start' });
    await waitFor(() => n.caught.length === 1, { what: 'the error' });
    assert.match(n.caught[0].error.message, /not recording: configuration error: File name/);
    assert.ok(!n.caught[0].error.message.includes('secret'));
    assert.ok(!fs.existsSync(path.join(dir, 'rec')));
  });

  it('in a real Node-RED: keeps the login in its credentials, and ffmpeg dies with a SIGKILLed Node-RED', async function () {
    needRtsp(this);
    this.timeout(90000);
    server = await rtsp.startRtspServer({ user: USER, password: PASSWORD });
    const userDir = path.join(dir, 'node-red');
    fs.mkdirSync(userDir);
    const flows = [
      { id: 'tab', type: 'tab', label: 'rec' },
      { id: 'rec', z: 'tab', type: 'uplink-recorder', camera: 'gate', input: server.url, segmentSeconds: 2, folder: 'recordings', keepFreeMB: 0, wires: [[], []] },
    ];
    let red = await startNodeRed({ userDir, flows: [] });
    try {
      const res = await fetch(`${red.url}/flows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
        body: JSON.stringify(flows.map((f) => (f.id === 'rec' ? { ...f, credentials: { username: USER, password: PASSWORD } } : f))),
      });
      assert.ok(res.status === 200 || res.status === 204, `${res.status} ${await res.text()}`);
      const folder = path.join(userDir, 'recordings');
      await waitFor(() => journal(folder).filter((r) => r.t === 'sent').length >= 1, { timeout: 30000, what: 'a segment recorded with the stored login' });
      const flowFile = fs.readdirSync(userDir).filter((f) => /^flows.*\.json$/.test(f));
      for (const f of flowFile) assert.ok(!fs.readFileSync(path.join(userDir, f), 'utf8').includes(PASSWORD), `${f} holds the password`);
      assert.ok(!red.logs().includes(PASSWORD));

      const ffmpeg = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(red.pid)]).toString().split('\n').map((l) => l.trim().split(/\s+/)).find((p) => p[1] === 'ffmpeg');
      assert.ok(ffmpeg, 'ffmpeg is a child of Node-RED');
      const ffmpegPid = Number(ffmpeg[0]);
      await red.kill('SIGKILL');
      await waitFor(() => !alive(ffmpegPid), { what: 'ffmpeg to die with Node-RED' });
      const sent = new Set(journal(folder).filter((r) => r.t === 'sent').map((r) => r.id));
      const leftover = fs.readdirSync(path.join(folder, STATE_DIR)).filter((f) => /-\d{6}\.mp4$/.test(f)).map((f) => f.slice(0, -4));
      assert.ok(leftover.length >= 1, 'the segment being written is left');

      red = await startNodeRed({ userDir });
      // The leftover is handed on (marked partial) or, if it held no video yet, set aside; nothing sent before is sent again.
      await waitFor(() => leftover.every((id) => journal(folder).some((r) => (r.t === 'closed' || r.t === 'quarantined') && r.id === id)), { timeout: 30000, what: 'the leftover to be handled' });
      const closedAgain = journal(folder).filter((r) => r.t === 'closed' && sent.has(r.id));
      assert.strictEqual(closedAgain.length, sent.size, 'segments sent before are not closed (or sent) again');
      await waitFor(() => journal(folder).filter((r) => r.t === 'sent').length > sent.size, { timeout: 30000, what: 'recording to go on after the restart' });
    } finally {
      await red.stop();
    }
  });
});
