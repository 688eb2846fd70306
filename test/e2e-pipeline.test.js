'use strict';
// The shipped capture-to-cloud flow in a real `node-red` process, against a camera and an S3-protocol store on
// 127.0.0.1: captures arrive; the store goes away and the queue grows while captures go on; Node-RED is killed with
// SIGKILL during the outage and started again; the store returns. At the end every image the camera served and the
// capture node put on disk is in the bucket exactly once, byte-identical, the one the kill interrupted included.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { numberedJpeg } = require('./support/camera-server');
const { until } = require('./support/http-client');

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

/** Every file below `dir`, leaving out hidden ones (temp files, the capture's journal folder). */
function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('the shipped capture-to-cloud flow in a real Node-RED, through an outage and a kill -9', function () {
  this.timeout(150000);
  let camera;
  let s3;
  let userDir;
  const reds = [];
  const served = new Map();
  let cameraDown = false;

  before(async function () {
    let n = 0;
    camera = http.createServer((req, res) => {
      if (cameraDown) {
        res.writeHead(500);
        res.end('camera offline');
        return;
      }
      const jpeg = numberedJpeg(++n);
      served.set(sha(jpeg), jpeg);
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      res.end(jpeg);
    });
    await new Promise((r) => camera.listen(0, '127.0.0.1', r));
    s3 = await new S3Server({ buckets: ['pipeline'] }).start();
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-e2e-pipeline-'));
  });

  after(async function () {
    for (const r of reds) await r.stop().catch(() => undefined);
    await s3.destroy();
    camera.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  const env = () => ({
    UPLINK_CAMERA_URL: `http://127.0.0.1:${camera.address().port}/snapshot.jpg`,
    UPLINK_CAPTURE_INTERVAL_S: '1',
    UPLINK_S3_ENDPOINT: s3.endpoint,
    UPLINK_S3_BUCKET: 'pipeline',
    UPLINK_S3_REGION: 'us-east-1',
    UPLINK_S3_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  });

  async function stats(red) {
    const res = await fetch(`${red.url}/uplink/queue/c2c-queue/stats`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return { ok: false, value: res.status };
    return { ok: true, value: await res.json() };
  }

  it('delivers every acknowledged capture exactly once, byte-identical', async function () {
    const flows = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'examples', 'capture-to-cloud.json'), 'utf8'));
    const first = await startNodeRed({ userDir, flows, env: env() });
    reds.push(first);

    await until('three objects in the bucket', async () => {
      const objects = await s3.list();
      return { ok: objects.length >= 3, value: objects.length };
    });

    // The store goes away; captures go on and the queue grows.
    const port = s3.port;
    await s3.stop();
    const during = await until('items piling up in the queue', async () => {
      const s = await stats(first);
      return { ok: s.ok && s.value.pending >= 3, value: s.value };
    });
    assert.strictEqual(during.online, false, 'the connectivity node took the queue offline');

    // kill -9 in the middle of the outage, then start again on the same user folder.
    await first.kill('SIGKILL');
    const second = await startNodeRed({ userDir, env: env() });
    reds.push(second);
    await until('captures going on after the restart', async () => {
      const s = await stats(second);
      return { ok: s.ok && s.value.totals.enqueued > during.totals.enqueued + 2, value: s.value };
    });

    // The store returns; then the camera stops answering, so the set of captures is final.
    await s3.start(port);
    await until('the queue online again', async () => {
      const s = await stats(second);
      return { ok: s.ok && s.value.online, value: s.value };
    });
    cameraDown = true;
    const drained = await until('the queue drained', async () => {
      const s = await stats(second);
      return { ok: s.ok && s.value.pending === 0 && s.value.inFlight === 0, value: s.value };
    }, 60000);
    assert.strictEqual(drained.failed, 0, 'no item failed');

    const files = walk(path.join(userDir, 'uplink', 'images'));
    assert.ok(files.length >= 8, `captures before, during and after the outage (${files.length})`);
    const objects = await s3.list();
    const keys = new Set(objects.map((o) => o.key));
    assert.strictEqual(keys.size, objects.length, 'no key twice');
    const keyOf = (file) => path.relative(path.join(userDir, 'uplink', 'images'), file).split(path.sep).join('/');
    // A capture killed after its file was on disk but before the queue had it is sent again by its journal at the
    // restart: no capture on disk is left out.
    const unsent = files.filter((f) => !keys.has(keyOf(f)));
    assert.deepStrictEqual(unsent.map(keyOf), [], 'captures on disk but never uploaded');
    assert.strictEqual(objects.length, files.length - unsent.length, 'every object is a capture on disk');
    for (const file of files.filter((f) => keys.has(keyOf(f)))) {
      const key = keyOf(file);
      const local = fs.readFileSync(file);
      assert.ok(served.has(sha(local)), `${key} is an image the camera served`);
      const stored = await s3.get(key);
      assert.ok(stored.body.equals(local), `${key} is byte-identical in the bucket`);
      assert.strictEqual(stored.contentType, 'image/jpeg');
    }
  });
});
