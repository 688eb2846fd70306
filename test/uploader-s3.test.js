'use strict';
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const helper = require('node-red-node-test-helper');
const { S3Backend, parseS3Settings } = require('../dist/lib/upload/backends/s3');
const { UploadTarget } = require('../dist/lib/upload/target');
const { Uploader } = require('../dist/lib/upload/uploader');
const { renderKey, validateKeyTemplate, sanitizeKey, templateFor } = require('../dist/lib/message/object-key');
const { FolderBackend } = require('../dist/lib/upload/backends/folder');
const uploaderNode = require('../dist/nodes/uploader/uploader.js');
const s3ConfigNode = require('../dist/nodes/s3-config/s3-config.js');
const folderConfigNode = require('../dist/nodes/folder-config/folder-config.js');
const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
const { S3Server } = require('./support/s3-server');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

function writeFile(dir, name, bytes, seed = 1) {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) buf[i] = (i * 31 + seed * 7) & 0xff;
  fs.writeFileSync(file, buf);
  return { file, buf };
}

function target(s3, extra = {}, creds = s3.credentials) {
  const settings = parseS3Settings({ ...s3.config(), timeout: 5, ...extra }, creds);
  return new UploadTarget((bw) => new S3Backend(settings, bw), { concurrency: settings.concurrency, bytesPerSecond: 0, timeoutMs: settings.timeoutMs });
}

const never = new AbortController().signal;

/**
 * What Uploader.upload answers, its message typed the way the queue and the user's flow read it.
 * @typedef {import('../dist/lib/upload/uploader').UploadOutcome & { msg: { uplink: { ack: boolean,
 *   upload?: import('../dist/lib/message/uplink').UploadDoneInfo, error?: import('../dist/lib/message/uplink').UploadFailureInfo } } }} Sent
 */

describe('object keys', function () {
  it('render from capture facts, in UTC, the same on every call', function () {
    const f = { camera: 'gate', capturedAt: '2026-03-04T05:06:07.000Z', width: 640, height: 480, id: 12, ext: 'jpg' };
    assert.strictEqual(renderKey('{camera}/{date}_{time}_{width}_{height}.{ext}', f), 'gate/2026-03-04_05-06-07_640_480.jpg');
    assert.strictEqual(renderKey('{year}/{month}/{day}/{id}.{ext}', f), '2026/03/04/12.jpg');
    assert.strictEqual(renderKey('{camera}/{date}_{time}.{ext}', { ...f, capturedAt: '2026-03-04T05:06:07.250Z' }), 'gate/2026-03-04_05-06-07.250.jpg');
  });

  it('never let a value add or climb a folder level, or carry control characters', function () {
    const k = renderKey('{camera}/{name}', { camera: '../../etc', name: 'x/../../a\u0000b\nc.jpg', id: 1 });
    assert.strictEqual(k, '.._.._etc/a_b_c.jpg');
    assert.ok(!k.split('/').some((s) => s === '..' || s === '.' || s === ''), k);
    assert.ok(!/[\u0000-\u001f]/.test(k));
    assert.strictEqual(k.split('/').length, 2, 'a value cannot add a level');
    assert.strictEqual(sanitizeKey('/../a//./b/..'), '_/a/b/_');
  });

  it('drop a placeholder that has no value with its separator, never printing "unknown" where a sound key remains', function () {
    const at = '2026-03-04T05:06:07.000Z';
    assert.strictEqual(renderKey('{camera}/{date}_{time}_{width}_{height}.{ext}', { capturedAt: at, camera: 'gate', ext: 'mp4' }), 'gate/2026-03-04_05-06-07.mp4');
    assert.strictEqual(renderKey('{camera}/{date}_{time}_{width}_{height}.{ext}', { capturedAt: at, width: 640, height: 480, ext: 'jpg' }), '2026-03-04_05-06-07_640_480.jpg');
    assert.strictEqual(renderKey('{year}/{camera}/{time}-{id}.{ext}', { capturedAt: at, ext: 'json' }), '2026/05-06-07.json');
    // Dropping {id} would leave a file called ".jpg": it reads "noid" instead.
    assert.strictEqual(renderKey('{year}/{month}/{day}/{id}.{ext}', { capturedAt: at, ext: 'jpg' }), '2026/03/04/noid.jpg');
    assert.strictEqual(renderKey('{camera}.{ext}', { capturedAt: at, ext: 'jpg' }), 'unknown.jpg');
  });

  it('keep the name of an item that is not a capture when the template is made of capture facts', function () {
    const capture = '{camera}/{date}_{time}_{width}_{height}.{ext}';
    const file = { capturedAt: '2026-03-04T05:06:07.250Z', id: 7, name: 'report-2026.csv', ext: 'csv' };
    assert.strictEqual(templateFor(capture, file), '{date}/{time}_{name}');
    assert.strictEqual(renderKey(templateFor(capture, file), file), '2026-03-04/05-06-07.250_report-2026.csv');
    const reading = { capturedAt: '2026-03-04T05:06:07.250Z', id: 7, ext: 'json' };
    assert.strictEqual(renderKey(templateFor(capture, reading), reading), '2026-03-04/05-06-07.250_7.json');
    // A capture, or a template the user made for other items, is rendered as it is.
    assert.strictEqual(templateFor(capture, { ...file, camera: 'gate' }), capture);
    assert.strictEqual(templateFor('readings/{date}/{time}_{id}.{ext}', file), 'readings/{date}/{time}_{id}.{ext}');
    assert.strictEqual(templateFor('{camera}/{name}', file), '{camera}/{name}');
  });

  it('store a file queued by reference (msg.filename) under its own name and extension', async function () {
    const dir = tmpDir();
    try {
      const file = path.join(dir, 'readings 2026.csv');
      fs.writeFileSync(file, 'a,b\n1,2\n');
      const u = new Uploader(/** @type {any} */ ({ backend: {}, limits: {} }), '{camera}/{date}_{time}_{width}_{height}.{ext}');
      const item = await u.toItem({ filename: file, uplink: { item: { id: 3, queuedAt: '2026-03-04T05:06:07.000Z' } } }, never);
      assert.strictEqual(item.key, '2026-03-04/05-06-07_readings_2026.csv');
      assert.strictEqual(item.contentType, 'text/csv');
      assert.ok(!item.key.includes('unknown'), item.key);
    } finally {
      rmrf(dir);
    }
  });

  it('reject templates that cannot make a safe, distinct key, at deploy', function () {
    assert.throws(() => validateKeyTemplate('{camera}/{nope}.jpg'), /unknown placeholder \{nope\}/);
    assert.throws(() => validateKeyTemplate('{camera}/latest.jpg'), /every item would get the same key/);
    assert.throws(() => validateKeyTemplate('{camera}/{id}}'), /unmatched/);
    assert.throws(() => validateKeyTemplate('   '), /empty/);
    validateKeyTemplate('{camera}/{date}_{time}_{width}_{height}.{ext}');
  });
});

describe('S3 uploads against a real S3-protocol server', function () {
  let s3;
  let dir;
  before(async function () {
    s3 = await new S3Server({ buckets: ['uplink', 'other'] }).start();
  });
  after(async function () {
    await s3.destroy();
  });
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  it('puts a file with its content type and metadata; the bytes read back are identical', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'cam/img.jpg', 100 * 1024);
    const sha = crypto.createHash('sha256').update(buf).digest('hex');
    const u = new Uploader(t, '{camera}/{date}_{time}_{width}_{height}.{ext}');
    const out = /** @type {Sent} */ (await u.upload({ payload: file, uplink: { file, camera: 'gate', capturedAt: '2026-05-01T10:00:00.000Z', width: 640, height: 480, sha256: sha, item: { id: 3, attempt: 1 } } }, never));
    assert.ok(out.ok, out.error && out.error.message);
    assert.strictEqual(out.msg.uplink.ack, true);
    assert.strictEqual(out.msg.uplink.upload.key, 'gate/2026-05-01_10-00-00_640_480.jpg');
    assert.strictEqual(out.msg.uplink.upload.bytes, buf.length);
    assert.match(out.msg.uplink.upload.url, /^http:\/\/127\.0\.0\.1:\d+\/uplink\/gate\/2026-05-01_10-00-00_640_480\.jpg$/);
    const got = await s3.get(out.msg.uplink.upload.key);
    assert.ok(got.body.equals(buf), 'bytes identical');
    assert.strictEqual(got.contentType, 'image/jpeg');
    assert.strictEqual(got.metadata.camera, 'gate');
    assert.strictEqual(got.metadata.sha256, sha);
    assert.strictEqual(got.metadata['item-id'], '3');
    await t.close();
  });

  it('uploads inline JSON data under a key fixed by its queue item', async function () {
    const t = target(s3);
    const u = new Uploader(t, 'metrics/{date}/{id}.{ext}');
    const msg = { payload: { bpm: 71 }, uplink: { item: { id: 44, attempt: 1, queuedAt: '2026-05-01T10:00:00.000Z' } } };
    const a = /** @type {Sent} */ (await u.upload(msg, never));
    const b = /** @type {Sent} */ (await u.upload({ ...msg, uplink: { item: { id: 44, attempt: 2, queuedAt: '2026-05-01T10:00:00.000Z' } } }, never));
    assert.strictEqual(a.msg.uplink.upload.key, 'metrics/2026-05-01/44.json');
    assert.strictEqual(b.msg.uplink.upload.key, a.msg.uplink.upload.key, 'a retry writes the same key');
    const got = await s3.get('metrics/2026-05-01/44.json');
    assert.deepStrictEqual(JSON.parse(got.body), { bpm: 71 });
    assert.strictEqual(got.contentType, 'application/json');
    await t.close();
  });

  it('streams a large file in multipart, with progress, and the object is byte-identical', async function () {
    this.timeout(60000);
    const t = target(s3, { multipartMB: 5, partMB: 5 });
    const { file, buf } = writeFile(dir, 'video/clip.mp4', 12 * 1024 * 1024 + 123, 5);
    const u = new Uploader(t, 'video/{name}');
    const out = await u.upload({ uplink: { file } }, never);
    assert.ok(out.ok, out.error && out.error.message);
    const got = await s3.get('video/clip.mp4');
    assert.strictEqual(got.body.length, buf.length);
    assert.ok(got.body.equals(buf), 'bytes identical');
    assert.strictEqual(got.contentType, 'video/mp4');
    await t.close();
  });

  it('classifies a missing bucket and an unknown access key as permanent', async function () {
    const { file } = writeFile(dir, 'a.jpg', 1000);
    const noBucket = target(s3, { bucket: 'no-such-bucket' });
    const r1 = /** @type {Sent} */ (await new Uploader(noBucket, '{name}').upload({ uplink: { file } }, never));
    assert.strictEqual(r1.ok, false);
    assert.strictEqual(r1.msg.uplink.error.class, 'permanent');
    assert.strictEqual(r1.msg.uplink.error.code, 'NoSuchBucket');
    assert.match(r1.msg.uplink.error.message, /bucket does not exist/);
    const badKey = target(s3, {}, { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'very-secret-value' });
    const r2 = /** @type {Sent} */ (await new Uploader(badKey, '{name}').upload({ uplink: { file } }, never));
    assert.strictEqual(r2.msg.uplink.error.class, 'permanent');
    assert.strictEqual(r2.msg.uplink.error.code, 'InvalidAccessKeyId');
    assert.strictEqual(r2.msg.uplink.error.status, 403);
    assert.ok(!JSON.stringify(r2.msg).includes('very-secret-value'), 'the secret appears nowhere');
    await noBucket.close();
    await badKey.close();
  });

  it('classifies a file deleted before upload, and a payload that is not a file, as permanent', async function () {
    const t = target(s3);
    const u = new Uploader(t, '{name}');
    const gone = /** @type {Sent} */ (await u.upload({ uplink: { file: path.join(dir, 'gone.jpg') } }, never));
    assert.deepStrictEqual([gone.msg.uplink.error.class, gone.msg.uplink.error.code], ['permanent', 'FILE_GONE']);
    const folder = /** @type {Sent} */ (await u.upload({ filename: dir }, never));
    assert.deepStrictEqual([folder.msg.uplink.error.class, folder.msg.uplink.error.code], ['permanent', 'NOT_A_FILE']);
    const nothing = /** @type {Sent} */ (await u.upload({ topic: 'x' }, never));
    assert.strictEqual(nothing.msg.uplink.error.code, 'NO_CONTENT');
    await t.close();
  });

  it('puts a small file whole, and refuses one whose size changed since it was looked at (permanent FILE_CHANGED)', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'still.jpg', 100 * 1024 + 7, 3);
    const item = (key, bytes) => ({ key, file, bytes, contentType: 'image/jpeg', metadata: {}, fields: {}, signal: never });
    const r = await t.backend.upload(item('same.jpg', buf.length));
    assert.strictEqual(r.bytes, buf.length);
    assert.ok((await s3.get('same.jpg')).body.equals(buf), 'bytes identical');
    // Looked at smaller than it is (it grew) and larger than it is (it shrank): nothing is stored under either key.
    for (const [key, bytes] of [['grew.jpg', buf.length - 1], ['shrank.jpg', buf.length + 1]]) {
      await assert.rejects(t.backend.upload(item(key, bytes)), (/** @type {any} */ e) => e.code === 'FILE_CHANGED' && e.errorClass === 'permanent');
      await assert.rejects(s3.get(key));
    }
    await t.close();
  });

  it('classifies an unreachable server as retryable', async function () {
    const other = await new S3Server().start();
    const t = target(other);
    await other.stop();
    const { file } = writeFile(dir, 'a.jpg', 1000);
    const r = /** @type {Sent} */ (await new Uploader(t, '{name}').upload({ uplink: { file } }, never));
    assert.deepStrictEqual([r.msg.uplink.error.class, r.msg.uplink.error.code], ['retryable', 'ECONNREFUSED']);
    await t.close();
    await other.destroy();
  });

  it('times out an upload the store stops answering (retryable TIMEOUT); a flow that stops aborts it (ABORTED)', async function () {
    this.timeout(20000);
    // A store that takes every request and never answers.
    const held = new Set();
    const silent = http.createServer((req, res) => {
      held.add(res);
      req.resume();
    });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', () => resolve(undefined)));
    const endpoint = `http://127.0.0.1:${/** @type {import('net').AddressInfo} */ (silent.address()).port}`;
    const quick = target(s3, { endpoint, timeout: 1 });
    // Its timer (60 s) outlasts the test's own limit: only the flow's stop can end this one in time.
    const patient = target(s3, { endpoint, timeout: 60 });
    try {
      const { file } = writeFile(dir, 'hang.jpg', 10 * 1024);
      const timedOut = /** @type {Sent} */ (await new Uploader(quick, '{name}').upload({ uplink: { file } }, never));
      assert.deepStrictEqual([timedOut.msg.uplink.error.class, timedOut.msg.uplink.error.code], ['retryable', 'TIMEOUT']);
      const u = new Uploader(patient, '{name}');
      const closing = new AbortController();
      setTimeout(() => closing.abort(), 200);
      const aborted = /** @type {Sent} */ (await u.upload({ uplink: { file } }, closing.signal));
      assert.deepStrictEqual([aborted.msg.uplink.error.class, aborted.msg.uplink.error.code], ['retryable', 'ABORTED']);
      assert.strictEqual(u.active, 0);
    } finally {
      await quick.close();
      await patient.close();
      for (const res of held) res.destroy();
      await new Promise((resolve) => silent.close(() => resolve(undefined)));
    }
  });

  it('validates the S3 settings once, listing every problem', function () {
    assert.throws(
      () => parseS3Settings({ endpoint: 'ftp://x', bucket: 'A_B', region: 'Mars 1', sse: 'rot13' }, { accessKeyId: 'only-half' }),
      (/** @type {Error} */ e) =>
        /Endpoint must start with http/.test(e.message) &&
        /Bucket "A_B" is not a valid bucket name/.test(e.message) &&
        /Region "Mars 1"/.test(e.message) &&
        /both the access key and the secret, or neither/.test(e.message) &&
        /Server-side encryption/.test(e.message),
    );
  });

  it('copies to a folder through a temp name, never outside it', async function () {
    const out = path.join(dir, 'nas');
    fs.mkdirSync(out);
    const t = new UploadTarget((bw) => new FolderBackend({ folder: out, timeoutMs: 5000 }, bw), { concurrency: 2, bytesPerSecond: 0, timeoutMs: 5000 });
    const { file, buf } = writeFile(dir, 'x.jpg', 5000);
    const r = await new Uploader(t, '{camera}/{name}').upload({ uplink: { file, camera: '../../escape' } }, never);
    assert.ok(r.ok, r.error && r.error.message);
    const written = path.join(out, '.._.._escape', 'x.jpg');
    assert.ok(fs.readFileSync(written).equals(buf));
    assert.deepStrictEqual(fs.readdirSync(path.dirname(written)), ['x.jpg'], 'no temp file left');
    fs.rmSync(out, { recursive: true });
    const r2 = /** @type {Sent} */ (await new Uploader(t, '{name}').upload({ uplink: { file } }, never));
    assert.deepStrictEqual([r2.msg.uplink.error.class, r2.msg.uplink.error.code], ['retryable', 'FOLDER_MISSING']);
  });

  describe('in Node-RED, wired into a real offline queue', function () {
    beforeEach(function (done) {
      helper.startServer(done);
    });
    afterEach(async function () {
      await helper.unload();
      await new Promise((r) => helper.stopServer(r));
    });

    function flow(extra = {}) {
      return [
        { id: 'cfg', type: 'uplink-s3-config', ...s3.config(), concurrency: 4, timeout: 3 },
        { id: 'q', type: 'uplink-offline-queue', db: path.join(dir, 'q.db'), concurrency: 4, backoffBase: 0.1, backoffCap: 0.3, statsInterval: 0.1, wires: [['up'], [], ['stats']] },
        { id: 'up', type: 'uplink-uploader', backend: 's3', s3: 'cfg', keyTemplate: '{camera}/{id}_{name}', wires: [['q', 'ok'], ['q', 'bad']], ...extra },
        { id: 'ok', type: 'helper' },
        { id: 'bad', type: 'helper' },
        { id: 'stats', type: 'helper' },
        { id: 'k', type: 'catch', scope: null, wires: [['caught']] },
        { id: 'caught', type: 'helper' },
      ];
    }

    async function load(extra) {
      await helper.load([s3ConfigNode, queueNode, uploaderNode, catchNode], flow(extra), { cfg: s3.credentials });
      const q = helper.getNode('q');
      await q.ready;
      const got = { ok: [], bad: [], stats: [], caught: [] };
      for (const k of Object.keys(got)) helper.getNode(k).on('input', (m) => got[k].push(m));
      return { q, got };
    }

    it('uploads every queued file exactly once, through an outage of the store', async function () {
      this.timeout(60000);
      const bucket = await new S3Server({ buckets: ['loop'] }).start();
      const saved = s3;
      s3 = bucket;
      try {
        const { q, got } = await load();
        const files = [];
        for (let i = 0; i < 12; i++) files.push(writeFile(dir, `img/${i}.jpg`, 2000 + i, i));
        for (const f of files.slice(0, 6)) q.receive({ uplink: { file: f.file, camera: 'cam' } });
        await waitFor(() => got.ok.length === 6, { what: 'first six', timeout: 20000 });
        const port = bucket.port;
        await bucket.stop();
        for (const f of files.slice(6)) q.receive({ uplink: { file: f.file, camera: 'cam' } });
        await waitFor(() => got.bad.length >= 6, { what: 'failures while the store is down', timeout: 20000 });
        assert.ok(got.bad.every((m) => m.uplink.error.class === 'retryable'), 'outage failures are retryable');
        await bucket.start(port);
        await waitFor(() => got.stats.length && got.stats[got.stats.length - 1].payload.uploaded === 12, { what: 'all 12 uploaded', timeout: 30000 });
        const objects = await bucket.list();
        assert.strictEqual(objects.length, 12, 'exactly once');
        for (const f of files) {
          const o = objects.find((x) => x.key.endsWith(`_${path.basename(f.file)}`));
          assert.ok(o, `${f.file} stored`);
          assert.ok((await bucket.get(o.key)).body.equals(f.buf), 'byte-identical');
        }
        assert.strictEqual(got.caught.length, 0, 'retryable failures do not alarm Catch nodes');
      } finally {
        s3 = saved;
        await bucket.destroy();
      }
    });

    it('sends a permanent failure to the failed items and to Catch', async function () {
      const { q, got } = await load();
      const { file } = writeFile(dir, 'soon-gone.jpg', 100);
      q.receive({ topic: 'pause' });
      q.receive({ uplink: { file, camera: 'cam' } });
      await waitFor(() => got.stats.length && got.stats[got.stats.length - 1].payload.pending === 1);
      fs.rmSync(file);
      q.receive({ topic: 'resume' });
      await waitFor(() => got.stats.length && got.stats[got.stats.length - 1].payload.failed === 1, { what: 'a dead letter' });
      assert.strictEqual(got.bad.length, 1);
      assert.deepStrictEqual([got.bad[0].uplink.error.class, got.bad[0].uplink.error.code], ['permanent', 'FILE_GONE']);
      assert.strictEqual(got.caught.length, 1);
      assert.match(got.caught[0].error.message, /upload failed: the file .*soon-gone\.jpg is gone/);
      const [dead] = await q.queue.listFailed();
      assert.match(dead.lastError, /FILE_GONE: the file .*soon-gone\.jpg is gone/);
    });

    it('keeps the S3 secret out of the flow and the messages', async function () {
      const { q, got } = await load();
      const { file } = writeFile(dir, 'k.jpg', 100);
      q.receive({ uplink: { file, camera: 'cam' } });
      await waitFor(() => got.ok.length === 1);
      const cfg = helper.getNode('cfg');
      assert.strictEqual(cfg.credentials.secretAccessKey, 'S3RVER');
      assert.ok(!JSON.stringify(flow()).includes('S3RVER'), 'not in the flow JSON');
      assert.ok(!JSON.stringify(got.ok[0]).includes('S3RVER'), 'not in the output');
    });

    it('rejects a key template that cannot make a safe key at deploy', async function () {
      await helper.load([s3ConfigNode, queueNode, uploaderNode, catchNode], flow({ keyTemplate: '{camera}/latest.jpg' }), { cfg: s3.credentials });
      const caught = [];
      helper.getNode('caught').on('input', (m) => caught.push(m));
      helper.getNode('up').receive({ payload: 'x' });
      await waitFor(() => caught.length === 1);
      assert.match(caught[0].error.message, /key template: .*every item would get the same key/);
    });

    it('reports a config node that is not usable', async function () {
      const f = flow();
      f[0].bucket = 'Bad_Bucket';
      await helper.load([s3ConfigNode, queueNode, uploaderNode, catchNode], f, { cfg: s3.credentials });
      const caught = [];
      helper.getNode('caught').on('input', (m) => caught.push(m));
      helper.getNode('up').receive({ payload: 'x' });
      await waitFor(() => caught.length === 1);
      assert.match(caught[0].error.message, /not usable: Bucket "Bad_Bucket" is not a valid bucket name/);
    });
  });
});

describe('folder target in Node-RED', function () {
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

  it('copies queued files into the folder', async function () {
    const nas = path.join(dir, 'nas');
    fs.mkdirSync(nas);
    await helper.load(
      [folderConfigNode, uploaderNode],
      [
        { id: 'f', type: 'uplink-folder-config', folder: nas },
        { id: 'up', type: 'uplink-uploader', backend: 'folder', folder: 'f', keyTemplate: '{camera}/{name}', wires: [['ok'], ['bad']] },
        { id: 'ok', type: 'helper' },
        { id: 'bad', type: 'helper' },
      ],
    );
    const ok = [];
    helper.getNode('ok').on('input', (m) => ok.push(m));
    const { file, buf } = writeFile(dir, 'a.png', 321);
    helper.getNode('up').receive({ uplink: { file, camera: 'door' } });
    await waitFor(() => ok.length === 1);
    assert.ok(fs.readFileSync(path.join(nas, 'door', 'a.png')).equals(buf));
  });
});
