'use strict';
// Continuous recording end to end, in a real `node-red` process: a recorder on a real RTSP camera (GStreamer's, with
// digest login) feeds a real offline queue and uploader into a real S3-protocol server. The camera dies and comes
// back, then Node-RED itself is killed with SIGKILL mid-segment and restarted. In the end every segment on disk is in
// the bucket exactly once, byte for byte, and the gap is counted.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const rtsp = require('./support/rtsp-server');
const { call, until, deploy } = require('./support/http-client');

const USER = 'viewer';
const PASSWORD = 'rec-pass-31';

function flows(s3, cameraUrl, folder) {
  return [
    { id: 'tab', type: 'tab', label: 'record' },
    { id: 'cfg', type: 'uplink-s3-config', name: 'bucket', ...s3.config(), concurrency: 2, timeout: 10, credentials: s3.credentials },
    { id: 'cmd', type: 'http in', z: 'tab', url: '/rec', method: 'post', wires: [['rec', 'ok']] },
    { id: 'ok', type: 'http response', z: 'tab', statusCode: '200', wires: [] },
    {
      id: 'rec', type: 'uplink-recorder', z: 'tab', camera: 'gate', input: cameraUrl, kind: 'rtsp', rtspTransport: 'tcp', timeout: 5,
      ffmpegPath: 'ffmpeg', segmentSeconds: 2, video: 'copy', audio: 'none', folder, keyTemplate: '{camera}/{name}', budget: 0, keepFreeMB: 0,
      autoStart: true, credentials: { username: USER, password: PASSWORD }, wires: [['q'], ['events']],
    },
    { id: 'events', type: 'debug', z: 'tab', active: true, tosidebar: false, console: true, complete: 'true', targetType: 'full', wires: [] },
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', db: 'uplink/rec.db', concurrency: 2, backoffBase: 0.2, backoffCap: 1, statsInterval: 0.2, wires: [['up'], [], []] },
    { id: 'up', type: 'uplink-uploader', z: 'tab', backend: 's3', s3: 'cfg', keyTemplate: 'unused/{id}.{ext}', wires: [['q', 'rec'], ['q']] },
  ];
}

/** Closed segments in the recordings folder (not the recorder's state folder). */
function segmentsOnDisk(folder) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.mp4')) out.push(full);
    }
  };
  walk(folder);
  return out.sort();
}

describe('continuous recording through queue and uploader, across a camera outage and a SIGKILL of Node-RED', function () {
  this.timeout(180000);
  let s3;
  let camera;
  let dir;
  const reds = [];

  before(async function () {
    if (!rtsp.available()) {
      console.log(`      skipped: ${rtsp.unavailableReason()}`);
      this.skip();
    }
    s3 = await new S3Server({ buckets: ['rec-bucket'] }).start();
    camera = await rtsp.startRtspServer({ user: USER, password: PASSWORD });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-e2e-rec-'));
  });
  after(async function () {
    for (const r of reds) await r.stop().catch(() => undefined);
    if (camera) await camera.close();
    if (s3) await s3.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const stats = async (red) => (await call(`${red.url}/uplink/queue/q/stats`)).body;

  it('puts every closed segment in the bucket once, byte-identical, and counts the gap', async function () {
    const folder = path.join(dir, 'recordings');
    const userDir = path.join(dir, 'user');
    fs.mkdirSync(userDir);
    const red = await startNodeRed({ userDir, flows: [] });
    reds.push(red);
    await deploy(red, flows(s3, camera.url, folder));
    await until('three segments uploaded', async () => {
      const s = await stats(red);
      return { ok: s.uploaded >= 3, value: s };
    }, 60000);

    // The camera dies and comes back: the recorder reconnects and records on.
    await camera.kill('SIGKILL');
    await until('the recorder to notice', async () => ({ ok: /reconnecting/.test(red.logs()), value: red.logs().slice(-300) }), 30000);
    await camera.restart();
    const before = (await stats(red)).uploaded;
    await until('recording to resume', async () => {
      const s = await stats(red);
      return { ok: s.uploaded >= before + 2, value: s };
    }, 60000);
    assert.match(red.logs(), /topic['"]?:\s*['"]gap['"]/, 'a gap event was sent');

    // Node-RED is killed in the middle of a segment; ffmpeg dies with it.
    const beforeKill = (await stats(red)).uploaded;
    await red.kill('SIGKILL');
    const again = await startNodeRed({ userDir });
    reds.push(again);
    const afterRestart = await until('recording after the restart', async () => {
      const s = await stats(again);
      return { ok: s.uploaded >= beforeKill + 2, value: s };
    }, 60000);
    assert.ok(afterRestart.uploaded >= beforeKill + 2);

    // Stop recording (the segment being written is finished and sent), then let the queue drain.
    assert.strictEqual((await call(`${again.url}/rec`, { method: 'POST', text: 'stop' })).status, 200);
    await until('the queue to drain', async () => {
      const s = await stats(again);
      return { ok: s.pending === 0 && s.inFlight === 0 && /topic['"]?:\s*['"]stopped['"]/.test(again.logs()), value: s };
    }, 60000);
    await again.stop();

    const files = segmentsOnDisk(folder);
    const objects = await s3.list('rec-bucket');
    assert.ok(files.length >= 7, `${files.length} segments on disk`);
    assert.strictEqual(objects.length, files.length, `every segment on disk is one object (${objects.length} objects, ${files.length} files)`);
    const keys = new Set(objects.map((o) => o.key));
    assert.strictEqual(keys.size, objects.length, 'no key twice');
    for (const f of files) {
      const key = `gate/${path.relative(folder, f).split(path.sep).join('/')}`;
      assert.ok(keys.has(key), `${key} is in the bucket`);
      const got = await s3.get(key, 'rec-bucket');
      assert.ok(got.body.equals(fs.readFileSync(f)), `${key} is byte-identical`);
      assert.strictEqual(got.contentType, 'video/mp4');
    }
    const all = red.logs() + again.logs();
    assert.ok(!all.includes(PASSWORD), 'the camera password is in no log');
  });
});
