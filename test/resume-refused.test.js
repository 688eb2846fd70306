'use strict';
// Stores and key policies that refuse what resuming and cleaning up need: ListParts (plain s3rver answers 405, an
// upload-only IAM policy 403 AccessDenied, other stores 501 NotImplemented) and AbortMultipartUpload. An upload goes
// on from the parts recorded in its resume state and lets the completion judge them; a refused abort is said once and
// never asked again.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { CreateMultipartUploadCommand } = require('@aws-sdk/client-s3');
const { S3Backend, parseS3Settings } = require('../dist/lib/upload/backends/s3');
const { UploadTarget } = require('../dist/lib/upload/target');
const { Uploader } = require('../dist/lib/upload/uploader');
const { OfflineQueue } = require('../dist/lib/queue/engine');
const { DEFAULT_POLICY } = require('../dist/lib/queue/store');
const { S3Server } = require('./support/s3-server');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

const MB = 1024 * 1024;
const PART = 5 * MB;

function writeFile(dir, name, bytes, seed = 1) {
  const file = path.join(dir, name);
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) buf.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  fs.writeFileSync(file, buf);
  return { file, buf };
}

function target(s3) {
  const settings = parseS3Settings({ ...s3.config(), timeout: 10, multipartMB: 5, partMB: 5 }, s3.credentials);
  return new UploadTarget((bw) => new S3Backend(settings, bw), { concurrency: settings.concurrency, bytesPerSecond: 0, timeoutMs: settings.timeoutMs });
}

/** Waits until bytes of an aborted request still in the socket buffers have reached the server (bounded). */
async function settled(s3) {
  let last = -1;
  for (let i = 0; i < 50 && s3.bytesReceived !== last; i++) {
    last = s3.bytesReceived;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A resume handle in memory, as a queue row would keep it; `stopAfterParts` aborts the attempt once that many are saved. */
function memoryResumeHandle() {
  const h = {
    state: undefined,
    stopAfterParts: undefined,
    stop: undefined,
    load: async () => h.state,
    save: async (state) => {
      h.state = JSON.parse(JSON.stringify(state));
      if (h.stopAfterParts !== undefined && state.parts.length >= h.stopAfterParts) h.stop.abort();
    },
    clear: async () => {
      h.state = undefined;
    },
  };
  return h;
}

/** First attempt of an item: stopped once `parts` parts are confirmed and recorded (the link drops). */
async function interrupted(t, item, resume, parts) {
  resume.stop = new AbortController();
  resume.stopAfterParts = parts;
  await assert.rejects(t.backend.upload({ ...item, signal: resume.stop.signal, resume }), (/** @type {import('../dist/lib/upload/types').UploadError} */ e) => e.errorClass === 'retryable');
  resume.stopAfterParts = undefined;
  assert.strictEqual(resume.state.parts.length, parts);
}

const LIST_PARTS_REFUSALS = [
  { label: 'plain s3rver, 405 MethodNotAllowed', plain: true, answer: /HTTP 405 MethodNotAllowed/ },
  { label: 'a key without s3:ListMultipartUploadParts, 403 AccessDenied', refuse: 'AccessDenied', answer: /HTTP 403 AccessDenied/ },
  { label: '405 MethodNotAllowed', refuse: 'MethodNotAllowed', answer: /HTTP 405 MethodNotAllowed/ },
  { label: '501 NotImplemented', refuse: 'NotImplemented', answer: /HTTP 501 NotImplemented/ },
];

describe('a resumed S3 upload when the store refuses ListParts', function () {
  this.timeout(60000);
  let plain;
  let extended;
  let dir;
  before(async function () {
    plain = await new S3Server({ multipartExtensions: false }).start();
    extended = await new S3Server().start();
  });
  after(async function () {
    await plain.destroy();
    await extended.destroy();
  });
  beforeEach(function () {
    dir = tmpDir('resume-refused');
    extended.refuse = {};
  });
  afterEach(function () {
    rmrf(dir);
  });

  for (const c of LIST_PARTS_REFUSALS) {
    it(`continues from the parts recorded as confirmed (${c.label}), byte-identical, and says so once`, async function () {
      const s3 = c.plain ? plain : extended;
      if (c.refuse) s3.refuse.listParts = c.refuse;
      const t = target(s3);
      const { file, buf } = writeFile(dir, 'clip.mp4', 23 * MB + 4321, 3);
      const key = `v/${c.refuse ?? 'plain'}.mp4`;
      const resume = memoryResumeHandle();
      const item = { key, file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {} };
      const before = s3.bytesReceived;
      await interrupted(t, item, resume, 2);
      await settled(s3);
      const mid = s3.bytesReceived;
      const listed = s3.calls.listParts;

      const warnings = [];
      const r = await t.backend.upload({ ...item, signal: new AbortController().signal, resume, onWarning: (w) => warnings.push(w) });
      assert.strictEqual(r.bytes, buf.length);
      assert.strictEqual(s3.calls.listParts, listed + 1, 'the store was asked, and refused');
      assert.strictEqual(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0], /refused to list the parts/);
      assert.match(warnings[0], c.answer);
      assert.match(warnings[0], /continuing from the 2 of 5 parts recorded as confirmed/);
      const again = s3.bytesReceived - mid;
      assert.ok(again <= buf.length - 2 * PART, `the recorded parts were not sent again (${again} of ${buf.length})`);
      assert.ok(s3.bytesReceived - before <= 1.6 * buf.length, `${s3.bytesReceived - before} bytes in all for ${buf.length}`);
      assert.ok((await s3.get(key)).body.equals(buf), 'byte-identical');
      assert.strictEqual(resume.state, undefined, 'the state is forgotten once complete');
      assert.deepStrictEqual(s3.openUploads(), [], 'no multipart upload left open');
      await t.close();
    });
  }

  it('says a refused ListParts once for an upload, however many attempts continue it', async function () {
    const s3 = plain;
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'flaky.mp4', 21 * MB, 4);
    const resume = memoryResumeHandle();
    const item = { key: 'v/flaky.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {} };
    const warnings = [];
    const onWarning = (w) => warnings.push(w);
    await interrupted(t, item, resume, 1);
    // The second attempt loses the link too, after one more part; the third completes.
    resume.stop = new AbortController();
    resume.stopAfterParts = 2;
    await assert.rejects(t.backend.upload({ ...item, signal: resume.stop.signal, resume, onWarning }));
    resume.stopAfterParts = undefined;
    await t.backend.upload({ ...item, signal: new AbortController().signal, resume, onWarning });
    assert.ok((await s3.get('v/flaky.mp4')).body.equals(buf), 'byte-identical');
    assert.strictEqual(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /continuing from the 1 of 5 parts/);
    await t.close();
  });

  it('starts again, once, when the store lacks a part it was continued from (InvalidPart), and aborts the old upload', async function () {
    const s3 = extended;
    s3.refuse.listParts = 'AccessDenied';
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'lost.mp4', 16 * MB, 5);
    const resume = memoryResumeHandle();
    const item = { key: 'v/lost.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {} };
    await interrupted(t, item, resume, 2);
    await settled(s3);
    const old = resume.state.uploadId;
    // The store lost part 1 (its record says it holds it); only the completion can tell.
    const partsDir = path.join(s3.directory, 'uplink', '._S3rver_uploads', old);
    const lost = resume.state.parts[0].n;
    fs.rmSync(path.join(partsDir, String(lost)));
    fs.rmSync(path.join(partsDir, `${lost}.md5`));

    const warnings = [];
    await t.backend.upload({ ...item, signal: new AbortController().signal, resume, onWarning: (w) => warnings.push(w) });
    assert.ok((await s3.get('v/lost.mp4')).body.equals(buf), 'byte-identical');
    assert.strictEqual(warnings.length, 2, warnings.join('\n'));
    assert.match(warnings[0], /continuing from the 2 of 4 parts/);
    assert.match(warnings[1], /InvalidPart\): starting it again/);
    assert.ok(s3.multipart.aborted.includes(old), 'the old upload was aborted');
    assert.deepStrictEqual(s3.openUploads(), []);
    assert.strictEqual(resume.state, undefined);
    await t.close();
  });

  it('starts again when the store no longer has the upload it was continued from (NoSuchUpload on a part)', async function () {
    const s3 = extended;
    s3.refuse.listParts = 'NotImplemented';
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'gone.mp4', 16 * MB, 6);
    const resume = memoryResumeHandle();
    const item = { key: 'v/gone.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {} };
    await interrupted(t, item, resume, 1);
    await settled(s3);
    // A lifecycle rule aborted it meanwhile.
    await t.backend.abandon(resume.state);
    const warnings = [];
    await t.backend.upload({ ...item, signal: new AbortController().signal, resume, onWarning: (w) => warnings.push(w) });
    assert.ok((await s3.get('v/gone.mp4')).body.equals(buf), 'byte-identical');
    assert.match(warnings[warnings.length - 1], /no longer has the multipart upload of v\/gone\.mp4 \(NoSuchUpload\): starting it again/);
    assert.strictEqual(resume.state, undefined);
    await t.close();
  });

  it('an upload the store completed before the attempt died (every part recorded) counts as done, nothing sent again', async function () {
    const s3 = plain;
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'done.mp4', 11 * MB, 7);
    const resume = memoryResumeHandle();
    // The attempt completes the upload, then dies before it can forget the state.
    /** @type {any} */
    let kept;
    resume.clear = async () => {
      kept = resume.state;
    };
    const item = { key: 'v/done.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {} };
    await t.backend.upload({ ...item, signal: new AbortController().signal, resume });
    assert.strictEqual(kept.parts.length, 3);
    resume.clear = async () => {
      resume.state = undefined;
    };
    const mid = s3.bytesReceived;
    const warnings = [];
    const r = await t.backend.upload({ ...item, signal: new AbortController().signal, resume, onWarning: (w) => warnings.push(w) });
    assert.strictEqual(r.bytes, buf.length);
    assert.strictEqual(s3.bytesReceived, mid, 'nothing sent again');
    assert.strictEqual(warnings.length, 1);
    assert.match(warnings[0], /already stored whole/);
    assert.strictEqual(resume.state, undefined);
    await t.close();
  });
});

const ABORT_REFUSALS = [
  { label: 'plain s3rver, 405 MethodNotAllowed', plain: true, answer: /HTTP 405 MethodNotAllowed/ },
  { label: 'a key without s3:AbortMultipartUpload, 403 AccessDenied', refuse: 'AccessDenied', answer: /HTTP 403 AccessDenied/ },
  { label: '501 NotImplemented', refuse: 'NotImplemented', answer: /HTTP 501 NotImplemented/ },
];

describe('an abort of an abandoned S3 upload that the store refuses', function () {
  this.timeout(60000);
  let plain;
  let extended;
  let dir;
  before(async function () {
    plain = await new S3Server({ multipartExtensions: false }).start();
    extended = await new S3Server().start();
  });
  after(async function () {
    await plain.destroy();
    await extended.destroy();
  });
  beforeEach(function () {
    dir = tmpDir('abort-refused');
    extended.refuse = {};
  });
  afterEach(function () {
    rmrf(dir);
  });

  for (const c of ABORT_REFUSALS) {
    it(`is forgotten and said once, never asked again (${c.label})`, async function () {
      const s3 = c.plain ? plain : extended;
      if (c.refuse) s3.refuse.abort = c.refuse;
      const delivered = [];
      const events = { deliver: (m) => delivered.push(m), stats() {}, status() {}, warn() {}, log() {} };
      const q = await OfflineQueue.start(
        { dbFile: path.join(dir, 'q.db'), createFolder: true, synchronous: 'FULL', concurrency: 1, maxInlineBytes: MB, statsIntervalMs: 50, startOnline: true, policy: DEFAULT_POLICY },
        events,
        'test',
      );
      const t = target(s3);
      let clock = 1_000_000;
      const u = new Uploader(t, 'v/{name}', () => clock);
      u.findQueue = (token) => (token === q.token ? q.itemProgress() : undefined);
      const warnings = [];
      u.onWarning = (w) => warnings.push(w);
      const scope = t.backend.resumeScope();
      try {
        // An item with a half multipart upload on the store leaves the queue (here: acknowledged by someone else).
        const created = await s3.s3().send(new CreateMultipartUploadCommand({ Bucket: 'uplink', Key: 'v/left.mp4' }));
        await q.handle({ payload: 'left' });
        await waitFor(() => delivered.length === 1, { timeout: 5000, what: 'delivery' });
        const id = delivered[0].uplink.item.id;
        const state = { kind: 's3-multipart', bucket: 'uplink', key: 'v/left.mp4', uploadId: created.UploadId, bytes: 20 * MB, mtimeMs: 1, partSize: PART, parts: [] };
        await q.store.saveUploadState(id, scope, JSON.stringify(state), 0);
        await q.handle({ ...delivered[0], uplink: { ...delivered[0].uplink, ack: true } });
        await waitFor(async () => (await q.store.abandonedUploads(scope)).length === 1, { timeout: 5000, what: 'the upload to be abandoned' });

        // The next upload through the target sweeps it: the store refuses the abort.
        const aborts = s3.calls.abort;
        const send = async (name) => {
          const f = writeFile(dir, name, 1000, 2).file;
          await q.handle({ uplink: { file: f } });
          await waitFor(() => delivered.some((m) => m.uplink.file === f), { timeout: 5000, what: `delivery of ${name}` });
          const out = await u.upload(delivered.find((m) => m.uplink.file === f), new AbortController().signal);
          assert.ok(out.ok, out.error && out.error.message);
          await q.handle(out.msg);
        };
        await send('one.jpg');
        await waitFor(async () => (await q.store.abandonedUploads(scope)).length === 0, { timeout: 5000, what: 'the refused upload to be forgotten' });
        assert.strictEqual(s3.calls.abort, aborts + 1, 'asked once');
        await waitFor(() => warnings.length > 0, { timeout: 5000, what: 'the warning' });
        assert.strictEqual(warnings.length, 1, warnings.join('\n'));
        assert.match(warnings[0], /refused to abort the multipart upload of v\/left\.mp4/);
        assert.match(warnings[0], c.answer);
        assert.match(warnings[0], /forgotten, not tried again/);

        // A minute later, the next sweep has nothing to ask and nothing to say.
        clock += 61_000;
        await send('two.jpg');
        await new Promise((r) => setTimeout(r, 300));
        assert.strictEqual(s3.calls.abort, aborts + 1, 'never asked again');
        assert.strictEqual(warnings.length, 1);
        assert.strictEqual(s3.openUploads().length >= 1, true, 'the half upload stays on the store');
      } finally {
        await q.close();
        await t.close();
      }
    });
  }
});
