'use strict';
// Large uploads that continue instead of starting again: S3 multipart progress kept through a resume handle (here the
// queue's own SQLite row), checked against the store with ListParts; the queue's lanes for large items; half uploads
// of purged items aborted on the store.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { S3Backend, parseS3Settings } = require('../dist/lib/upload/backends/s3');
const { UploadTarget } = require('../dist/lib/upload/target');
const { Uploader } = require('../dist/lib/upload/uploader');
const { QueueStore } = require('../dist/lib/queue/store');
const { OfflineQueue } = require('../dist/lib/queue/engine');
const { encodeMessage } = require('../dist/lib/message/codec');
const { S3Server } = require('./support/s3-server');
const { startTarget } = require('./support/http-target');
const { HttpBackend } = require('../dist/lib/upload/backends/http');
const { parseHttpSettings } = require('../dist/lib/upload/backends/http-settings');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

const MB = 1024 * 1024;

/**
 * Runs SQL on a queue file with a connection of its own; answers the rows of a SELECT on items (`items`), the names
 * of a SELECT on sqlite_master (`indexes`) and PRAGMA user_version (`version`).
 */
function sql(file, text) {
  const sqlite3 = require('sqlite3');
  const out = {};
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, async (e) => {
      if (e) return reject(e);
      const all = (q) => new Promise((res, rej) => db.all(q, (err, rows) => (err ? rej(err) : res(rows))));
      try {
        for (const q of text.split(';').map((x) => x.trim()).filter(Boolean)) {
          const rows = await all(q);
          if (/^SELECT .* FROM items/i.test(q)) out.items = rows;
          else if (/sqlite_master/i.test(q)) out.indexes = rows.map((r) => r.name);
          else if (/^PRAGMA user_version$/i.test(q)) out.version = rows[0].user_version;
        }
        db.close((err) => (err ? reject(err) : resolve(out)));
      } catch (err) {
        db.close(() => reject(err));
      }
    });
  });
}

function writeFile(dir, name, bytes, seed = 1) {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) buf.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  fs.writeFileSync(file, buf);
  return { file, buf };
}

/** Waits until bytes of an aborted request still in the socket buffers have reached the server (bounded). */
async function settled(s3) {
  let last = -1;
  for (let i = 0; i < 50 && s3.bytesReceived !== last; i++) {
    last = s3.bytesReceived;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function target(s3, extra = {}) {
  const settings = parseS3Settings({ ...s3.config(), timeout: 10, multipartMB: 5, partMB: 5, ...extra }, s3.credentials);
  return new UploadTarget((bw) => new S3Backend(settings, bw), { concurrency: settings.concurrency, bytesPerSecond: 0, timeoutMs: settings.timeoutMs });
}

/**
 * A resume handle in memory: what an upload saves is there for its next attempt, as a queue row would be.
 * @returns {import('../dist/lib/upload/types').ResumeHandle & { state: Record<string, any> | undefined }}
 */
function memoryResumeHandle() {
  const h = {
    state: undefined,
    load: async () => h.state,
    save: async (state) => {
      h.state = state;
    },
    clear: async () => {
      h.state = undefined;
    },
  };
  return h;
}

/** The collector, whether or not node was started with --expose-gc. */
function forceGc() {
  if (typeof global.gc === 'function') return global.gc;
  require('v8').setFlagsFromString('--expose_gc');
  return require('vm').runInNewContext('gc');
}

describe('resumable S3 multipart uploads', function () {
  this.timeout(60000);
  let s3;
  let dir;
  before(async function () {
    s3 = await new S3Server().start();
  });
  after(async function () {
    await s3.destroy();
  });
  beforeEach(function () {
    dir = tmpDir('resume');
  });
  afterEach(function () {
    rmrf(dir);
  });

  it('continues an interrupted upload from the parts the store confirmed, and the object is byte-identical', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'clip.mp4', 23 * MB + 4321, 3);
    const resume = memoryResumeHandle();
    const before = s3.bytesReceived;
    // First attempt: stopped after the second part is confirmed (the link drops).
    const stop = new AbortController();
    const item = { key: 'v/clip.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {}, signal: stop.signal, resume };
    let saves = 0;
    const save = resume.save;
    resume.save = async (state, confirmed) => {
      await save(state, confirmed);
      if (++saves === 3) stop.abort(); // creation + two parts
    };
    await assert.rejects(t.backend.upload(item), (/** @type {import('../dist/lib/upload/types').UploadError} */ e) => e.errorClass === 'retryable');
    assert.strictEqual(resume.state.kind, 's3-multipart');
    assert.ok(resume.state.parts.length >= 2, `parts recorded: ${resume.state.parts.length}`);
    const firstSent = s3.bytesReceived - before;
    assert.strictEqual(s3.openUploads().length, 1, 'the multipart upload is left open for the next attempt');

    // Second attempt: asks the store (ListParts), sends only the rest.
    resume.save = save;
    await settled(s3);
    const mid = s3.bytesReceived;
    const progress = [];
    const r = await t.backend.upload({ ...item, signal: new AbortController().signal, onProgress: (n) => progress.push(n) });
    const secondSent = s3.bytesReceived - mid;
    assert.ok(secondSent < buf.length, `second attempt sent ${secondSent} of ${buf.length}`);
    assert.ok(secondSent <= buf.length - 2 * 5 * MB, `confirmed parts were not sent again (${secondSent})`);
    assert.ok(firstSent + secondSent < 2 * buf.length);
    assert.ok(progress[0] >= 2 * 5 * MB, 'progress starts from what the store confirmed');
    assert.strictEqual(progress[progress.length - 1], buf.length);
    assert.strictEqual(resume.state, undefined, 'the state is forgotten once complete');
    assert.strictEqual(r.bytes, buf.length);
    const got = await s3.get('v/clip.mp4');
    assert.ok(got.body.equals(buf), 'byte-identical');
    assert.strictEqual(s3.openUploads().length, 0);
    await t.close();
  });

  it('starts again when the store no longer has the upload, and counts an upload completed before a crash as done', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'a.mp4', 11 * MB, 9);
    const resume = memoryResumeHandle();
    const stop = new AbortController();
    const item = { key: 'v/a.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {}, signal: stop.signal, resume };
    const save = resume.save;
    resume.save = async (state, confirmed) => {
      await save(state, confirmed);
      if (/** @type {unknown[]} */ (state.parts).length === 1) stop.abort();
    };
    await assert.rejects(t.backend.upload(item));
    resume.save = save;
    // The store forgot it (a lifecycle rule aborted it): the next attempt starts a new upload and succeeds.
    await t.backend.abandon(resume.state);
    const old = resume.state.uploadId;
    await t.backend.upload({ ...item, signal: new AbortController().signal });
    assert.ok((await s3.get('v/a.mp4')).body.equals(buf));
    assert.ok(s3.multipart.completed.length > 0 && !s3.multipart.completed.includes(old));

    // Completed, then the process died before it could forget the state: the next attempt finds the object.
    resume.state = { kind: 's3-multipart', bucket: 'uplink', key: 'v/a.mp4', uploadId: old, bytes: buf.length, mtimeMs: fs.statSync(file).mtimeMs, partSize: 5 * MB, parts: [] };
    const mid = s3.bytesReceived;
    const r = await t.backend.upload({ ...item, signal: new AbortController().signal });
    assert.strictEqual(r.bytes, buf.length);
    assert.strictEqual(s3.bytesReceived, mid, 'nothing sent again');
    await t.close();
  });

  it('does not continue an upload of a file that changed since', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'b.mp4', 11 * MB, 1);
    const resume = memoryResumeHandle();
    const stop = new AbortController();
    const item = { key: 'v/b.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {}, signal: stop.signal, resume };
    const save = resume.save;
    resume.save = async (state, confirmed) => {
      await save(state, confirmed);
      if (/** @type {unknown[]} */ (state.parts).length === 1) stop.abort();
    };
    await assert.rejects(t.backend.upload(item));
    resume.save = save;
    const oldId = resume.state.uploadId;
    const { buf: buf2 } = writeFile(dir, 'b.mp4', 11 * MB, 2); // same size, other bytes, new mtime
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await t.backend.upload({ ...item, signal: new AbortController().signal });
    assert.ok((await s3.get('v/b.mp4')).body.equals(buf2), 'the new content, not a mix');
    assert.ok(s3.multipart.aborted.includes(oldId), 'the stale upload was aborted');
    await t.close();
  });

  it('holds a few parts in memory, never the file (64 MB in 5 MB parts)', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'big.mp4', 64 * MB, 8);
    const gc = forceGc();
    gc();
    const before = process.memoryUsage();
    let peak = 0;
    let next = 0;
    let samples = 0;
    // Sampled every 4 MB sent, after a collection: what the upload holds, not what the collector has not reached.
    const sample = (sent) => {
      if (sent < next) return;
      next += 4 * MB;
      samples++;
      gc();
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers + m.heapUsed - before.arrayBuffers - before.heapUsed);
    };
    const item = { key: 'v/big.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {}, signal: new AbortController().signal, onProgress: sample };
    await t.backend.upload(item);
    assert.ok(samples >= 12, `${samples} samples`);
    assert.ok(peak < 24 * MB, `buffers and heap held grew by ${(peak / MB).toFixed(1)} MB for a ${buf.length / MB} MB file`);
    assert.strictEqual((await s3.list()).find((o) => o.key === 'v/big.mp4').size, buf.length);
    await t.close();
  });

  it('without a place to keep progress, a failed multipart upload is aborted, not left on the store', async function () {
    const t = target(s3);
    const { file, buf } = writeFile(dir, 'c.mp4', 11 * MB, 4);
    const stop = new AbortController();
    let n = 0;
    const item = {
      key: 'v/c.mp4', file, bytes: buf.length, contentType: 'video/mp4', metadata: {}, fields: {}, signal: stop.signal,
      onProgress: (sent) => {
        if (sent > 6 * MB && n++ === 0) stop.abort();
      },
    };
    await assert.rejects(t.backend.upload(item));
    await waitFor(() => s3.openUploads().length === 0, { timeout: 5000, what: 'the upload to be aborted' });
    await t.close();
  });
});

describe('the queue keeps upload progress and lanes for large items', function () {
  this.timeout(60000);
  let dir;
  beforeEach(function () {
    dir = tmpDir('resume-q');
  });
  afterEach(function () {
    rmrf(dir);
  });

  /** @type {(bytes: number, priority?: number) => import('../dist/lib/queue/store').NewItem} */
  const item = (bytes, priority = 5) => ({ kind: 'inline', bytes, priority, msg: encodeMessage({ payload: 'x' }) });

  it('keeps state per item and target, and hands it to the abandoned list when the item goes away', async function () {
    const store = await QueueStore.open(path.join(dir, 'q.db'), {}, { recoverLeases: true });
    const a = (await store.enqueue(item(10))).id;
    const b = (await store.enqueue(item(10))).id;
    await store.saveUploadState(a, 's3 x', '{"uploadId":"A"}', 5);
    await store.saveUploadState(b, 's3 x', '{"uploadId":"B"}', 7);
    assert.deepStrictEqual(await store.getUploadState(a, 's3 x'), { state: '{"uploadId":"A"}', confirmed: 5 });
    assert.strictEqual(await store.getUploadState(a, 's3 y'), undefined, 'another target does not see it');
    // a: uploaded (acked) without clearing -> abandoned; b: failed, then purged -> abandoned.
    await store.lease(10);
    await store.ack(a);
    await store.nack(b, undefined, { message: 'no', permanent: true });
    assert.ok(await store.getUploadState(b, 's3 x'), 'a failed item keeps its progress (it may be retried)');
    await store.purgeFailed();
    const left = await store.abandonedUploads('s3 x');
    assert.deepStrictEqual(left.map((l) => JSON.parse(l.state).uploadId).sort(), ['A', 'B']);
    assert.deepStrictEqual(await store.abandonedUploads('s3 y'), []);
    // Saving for an item that is gone goes straight to the abandoned list.
    await store.saveUploadState(a, 's3 x', '{"uploadId":"late"}', 9);
    assert.strictEqual((await store.abandonedUploads('s3 x')).length, 3);
    await store.forgetAbandoned(left.map((l) => l.id));
    assert.strictEqual((await store.abandonedUploads('s3 x')).length, 1);
    await store.close();
  });

  it('survives a restart, and a database of the first schema version gains the tables', async function () {
    const file = path.join(dir, 'q.db');
    let store = await QueueStore.open(file, {}, { recoverLeases: true });
    const id = (await store.enqueue(item(10))).id;
    await store.saveUploadState(id, 't', '{"n":1}', 3);
    await store.close();
    store = await QueueStore.open(file, {}, { recoverLeases: true });
    assert.deepStrictEqual(await store.getUploadState(id, 't'), { state: '{"n":1}', confirmed: 3 });
    await store.close();

    // Back to what version 1 wrote: no upload tables or triggers.
    const sqlite3 = require('sqlite3');
    await new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, (e) => {
        if (e) return reject(e);
        db.exec(
          'DROP TRIGGER uploads_left_del; DROP TRIGGER uploads_left_upd; DROP TABLE uploads; DROP TABLE abandoned_uploads; PRAGMA user_version = 1;',
          (err) => db.close(() => (err ? reject(err) : resolve())),
        );
      });
    });
    store = await QueueStore.open(file, {}, { recoverLeases: true });
    await store.saveUploadState(id, 't', '{"n":2}', 4);
    assert.deepStrictEqual(await store.getUploadState(id, 't'), { state: '{"n":2}', confirmed: 4 });
    await store.purgeFailed(); // nothing failed: the item stays
    await store.lease(1);
    await store.ack(id);
    assert.strictEqual((await store.abandonedUploads('t')).length, 1, 'the triggers are back');
    await store.close();
  });

  it('a database of schema version 2 keeps its rows and puts them in their lanes, once', async function () {
    const file = path.join(dir, 'q.db');
    const policy = { largeItemBytes: 16 * MB, largeConcurrency: 1 };
    let store = await QueueStore.open(file, policy, { recoverLeases: true });
    const video = (await store.enqueue(item(300 * MB, 1))).id;
    const stills = [];
    for (let i = 0; i < 3; i++) stills.push((await store.enqueue(item(100 * 1024, 5))).id);
    const failed = (await store.enqueue(item(200 * MB, 1))).id;
    await store.close();

    // Back to what version 2 wrote: no lane column, ready items indexed by priority and id alone.
    await sql(
      file,
      `UPDATE items SET state = 'dead', last_error = 'x' WHERE id = ${failed};
       DROP INDEX items_ready_by_lane; ALTER TABLE items DROP COLUMN lane;
       CREATE INDEX items_ready ON items(priority, id) WHERE state = 'pending';
       DELETE FROM meta WHERE key = 'lane_bytes'; PRAGMA user_version = 2;`,
    );
    for (let open = 0; open < 2; open++) {
      // The second open finds nothing to do: every step of the upgrade is idempotent.
      store = await QueueStore.open(file, policy, { recoverLeases: true });
      const s = await store.stats();
      assert.strictEqual(s.counts.pending.n, 4);
      assert.strictEqual(s.counts.dead.n, 1);
      await store.close();
      const rows = await sql(file, "SELECT id, lane FROM items ORDER BY id; SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'items_ready%'; PRAGMA user_version");
      assert.deepStrictEqual(rows.items, [video, ...stills, failed].map((id) => ({ id, lane: id === video || id === failed ? 1 : 0 })));
      assert.deepStrictEqual(rows.indexes, ['items_ready_by_lane']);
      assert.strictEqual(rows.version, 3);
    }
    store = await QueueStore.open(file, policy, { recoverLeases: true });
    const leased = (await store.lease(2)).map((r) => r.id);
    assert.deepStrictEqual(leased, [video, stills[0], stills[1]], 'one large item beside the small ones, as before the upgrade');
    await store.retryFailed();
    await store.ack(video);
    assert.deepStrictEqual((await store.lease(2)).map((r) => r.id), [failed], 'a failed item retried goes back to its lane');
    await store.close();
  });

  it('places queued items in lanes again when the size that makes an item large changes between starts', async function () {
    const file = path.join(dir, 'q.db');
    let store = await QueueStore.open(file, { largeItemBytes: 16 * MB }, { recoverLeases: true });
    const mid = (await store.enqueue(item(8 * MB, 1))).id;
    const small = (await store.enqueue(item(1024, 5))).id;
    await store.close();
    // 8 MB becomes large: it now leaves beside the small item instead of taking the one small slot.
    store = await QueueStore.open(file, { largeItemBytes: 4 * MB, largeConcurrency: 1 }, { recoverLeases: true });
    assert.deepStrictEqual((await store.lease(1)).map((r) => r.id), [mid, small]);
    await store.close();
    // The command line opens the file with the default policy: it must not move items under the node's feet.
    const cli = await QueueStore.open(file, {}, { recoverLeases: false });
    await cli.close();
    assert.deepStrictEqual((await sql(file, 'SELECT id, lane FROM items ORDER BY id')).items, [{ id: mid, lane: 1 }, { id: small, lane: 0 }]);
    // With no large lane at all, everything is one lane again.
    store = await QueueStore.open(file, { largeItemBytes: 0 }, { recoverLeases: true });
    await store.close();
    assert.deepStrictEqual((await sql(file, 'SELECT id, lane FROM items ORDER BY id')).items, [{ id: mid, lane: 0 }, { id: small, lane: 0 }]);
  });

  it('leases large items in their own lane: stills go out beside a video, never behind it', async function () {
    const store = await QueueStore.open(path.join(dir, 'q.db'), { largeItemBytes: 16 * MB, largeConcurrency: 1 }, { recoverLeases: true });
    const v1 = (await store.enqueue(item(300 * MB, 1))).id;
    const v2 = (await store.enqueue(item(200 * MB, 1))).id;
    const stills = [];
    for (let i = 0; i < 4; i++) stills.push((await store.enqueue(item(100 * 1024, 5))).id);
    const first = (await store.lease(2)).map((r) => r.id);
    assert.deepStrictEqual(first.sort((x, y) => x - y), [v1, stills[0], stills[1]], 'one video, two stills');
    assert.deepStrictEqual(await store.lease(2), [], 'both lanes full');
    const next = await store.ackMany([stills[0]], 2);
    assert.deepStrictEqual(next.leased.map((r) => r.id), [stills[2]], 'a still replaces a still; the second video waits');
    await store.ack(v1);
    assert.deepStrictEqual((await store.lease(2)).map((r) => r.id), [v2]);
    await store.close();
  });

  it('one lane for all when large items are not set apart', async function () {
    const store = await QueueStore.open(path.join(dir, 'q.db'), { largeItemBytes: 0 }, { recoverLeases: true });
    for (let i = 0; i < 3; i++) await store.enqueue(item(300 * MB, 1));
    await store.enqueue(item(10, 5));
    assert.strictEqual((await store.lease(2)).filter((r) => r.bytes > MB).length, 2);
    await store.close();
  });

  it('an upload that moves keeps its lease; its progress is in the stats and the status', async function () {
    const events = { deliver() {}, stats() {}, status() {}, warn() {}, log() {} };
    const delivered = [];
    events.deliver = (m) => delivered.push(m);
    let t = 1_000_000;
    const q = await OfflineQueue.start(
      {
        dbFile: path.join(dir, 'q.db'), createFolder: true, synchronous: 'FULL', concurrency: 1, maxInlineBytes: MB, statsIntervalMs: 10,
        startOnline: true, policy: { ...require('../dist/lib/queue/store').DEFAULT_POLICY, leaseMs: 60_000 },
      },
      events,
      'test',
      () => t,
    );
    await q.handle({ payload: 'x' });
    await waitFor(() => delivered.length === 1, { timeout: 5000, what: 'delivery' });
    const m = delivered[0];
    assert.strictEqual(m.uplink.item.queue, q.token);
    const provider = q.itemProgress();
    assert.ok(provider, 'the queue offers its rows to the uploader');
    const leaseBefore = (await q.store.list({ states: ['leased'] }))[0].leaseUntil;
    // Early progress costs no write: the lease has most of its time left.
    t += 1000;
    provider.progress(m.uplink.item.id, m.uplink.item.attempt, 10, 200);
    assert.strictEqual((await q.store.list({ states: ['leased'] }))[0].leaseUntil, leaseBefore, 'not extended yet');
    t += 19_000;
    provider.progress(m.uplink.item.id, m.uplink.item.attempt, 50, 200);
    await waitFor(async () => (await q.store.list({ states: ['leased'] }))[0].leaseUntil > leaseBefore, { timeout: 5000, what: 'the lease to be extended' });
    const s = await q.stats();
    assert.deepStrictEqual(s.uploading, [{ id: m.uplink.item.id, bytes: 200, sent: 50, percent: 25 }]);
    assert.match(require('../dist/lib/queue/status').statusOf(s).text, /25% of 200 B/);
    // A stale attempt cannot extend the lease.
    assert.strictEqual(await q.store.extendLease(m.uplink.item.id, 99), false);
    provider.finished(m.uplink.item.id);
    assert.deepStrictEqual((await q.stats()).uploading, []);
    await q.close();
    assert.strictEqual(q.isOpen, false, 'no longer offered once closed');
  });
});

describe('the uploader with a queue: resume across attempts and abort of purged items', function () {
  this.timeout(90000);
  let s3;
  let dir;
  before(async function () {
    s3 = await new S3Server().start();
  });
  after(async function () {
    await s3.destroy();
  });
  beforeEach(function () {
    dir = tmpDir('resume-u');
  });
  afterEach(function () {
    rmrf(dir);
  });

  it('keeps the parts in the queue row between attempts, and aborts the upload of an item that was purged', async function () {
    const events = { deliver: () => undefined, stats() {}, status() {}, warn() {}, log() {} };
    const delivered = [];
    events.deliver = (m) => delivered.push(m);
    const store = require('../dist/lib/queue/store');
    const q = await OfflineQueue.start(
      {
        dbFile: path.join(dir, 'q.db'), createFolder: true, synchronous: 'FULL', concurrency: 2, maxInlineBytes: MB, statsIntervalMs: 50,
        startOnline: true, policy: { ...store.DEFAULT_POLICY, backoff: { baseMs: 10, capMs: 20 }, maxAttempts: 1 },
      },
      events,
      'test',
    );
    const t = target(s3);
    let clock = 1_000_000;
    const u = new Uploader(t, 'v/{name}', () => clock);
    u.findQueue = (token) => (token === q.token ? q.itemProgress() : undefined);
    const { file: f1, buf: b1 } = writeFile(dir, 'one.mp4', 16 * MB, 5);
    const { file: f2 } = writeFile(dir, 'two.mp4', 16 * MB, 6);
    await q.handle({ uplink: { file: f1 } });
    await waitFor(() => delivered.length === 1, { timeout: 5000, what: 'delivery' });

    // Attempt 1 of item one: the node closes after two parts.
    const closing = new AbortController();
    let parts = 0;
    // Bytes of a third part flow only after one of the first two was confirmed and recorded.
    u.onProgress = (p) => {
      if (p.sent > 10 * MB + 256 * 1024 && parts++ === 0) closing.abort();
    };
    const r1 = await u.upload(delivered[0], closing.signal);
    assert.strictEqual(r1.ok, false);
    assert.strictEqual(r1.error.code, 'ABORTED', r1.error.message);
    const saved = await q.store.getUploadState(delivered[0].uplink.item.id, t.backend.resumeScope());
    assert.ok(saved && saved.confirmed >= 5 * MB, 'the row holds the confirmed parts');
    u.onProgress = undefined;

    // Attempt 2 (as after a restart): continues, sends less than the file.
    await settled(s3);
    const mid = s3.bytesReceived;
    const r2 = await u.upload(delivered[0], new AbortController().signal);
    assert.ok(r2.ok, r2.error && r2.error.message);
    assert.ok(s3.bytesReceived - mid < b1.length, 'resumed, not restarted');
    assert.ok((await s3.get('v/one.mp4')).body.equals(b1));
    await q.handle(r2.msg);
    assert.strictEqual(await q.store.getUploadState(delivered[0].uplink.item.id, t.backend.resumeScope()), undefined);

    // Item two: half uploaded, then fails for good and is purged; the uploader aborts its upload on the store.
    await q.handle({ uplink: { file: f2 } });
    await waitFor(() => delivered.length === 2, { timeout: 5000, what: 'delivery of item two' });
    const closing2 = new AbortController();
    u.onProgress = (p) => {
      if (p.sent >= 6 * MB) closing2.abort();
    };
    await u.upload(delivered[1], closing2.signal);
    u.onProgress = undefined;
    assert.strictEqual(s3.openUploads().length, 1);
    await q.handle({ ...delivered[1], uplink: { ...delivered[1].uplink, ack: false, error: { message: 'gave up', permanent: true } } });
    await q.command('purge-failed');
    // The next upload through this target sweeps the abandoned ones (at most once a minute).
    clock += 61_000;
    const { file: f3 } = writeFile(dir, 'three.jpg', 1000, 7);
    await q.handle({ uplink: { file: f3 } });
    await waitFor(() => delivered.length === 3, { timeout: 5000, what: 'delivery of item three' });
    assert.ok((await u.upload(delivered[2], new AbortController().signal)).ok);
    await waitFor(() => s3.openUploads().length === 0, { timeout: 10000, what: 'the purged item\'s upload to be aborted' });
    await waitFor(async () => (await q.store.abandonedUploads(t.backend.resumeScope())).length === 0, { timeout: 5000, what: 'the abandoned list to empty' });
    await q.close();
    await t.close();
  });
});

describe('the uploader keeps a lane for large files at each target', function () {
  this.timeout(60000);
  let dir;
  let http;
  beforeEach(async function () {
    dir = tmpDir('lanes');
    http = await startTarget({ keepBodies: false });
  });
  afterEach(async function () {
    await http.close();
    rmrf(dir);
  });

  it('a still goes out while one video uploads and the next video waits for the large-file lane', async function () {
    // Concurrency 2: the large lane has one slot. The server reads slowly, so the videos take a while.
    http.answer('slow', { chunkDelayMs: 20 });
    const settings = parseHttpSettings({ url: `${http.url}/up/{key}`, mode: 'raw', method: 'PUT', timeout: 30 }, {});
    const t = new UploadTarget((bw) => new HttpBackend(settings, bw), { concurrency: 2, bytesPerSecond: 0, timeoutMs: 30_000 });
    const u = new Uploader(t, '{name}');
    const v1 = writeFile(dir, 'v1.mp4', 17 * MB, 1).file;
    const v2 = writeFile(dir, 'v2.mp4', 17 * MB, 2).file;
    const still = writeFile(dir, 's.jpg', 20 * 1024, 3).file;
    const closing = new AbortController();
    const first = u.upload({ uplink: { file: v1 } }, closing.signal);
    await waitFor(() => http.requests.length === 1, { what: 'the first video to start' });
    const second = u.upload({ uplink: { file: v2 } }, closing.signal);
    const small = await u.upload({ uplink: { file: still } }, closing.signal);
    assert.ok(small.ok, small.error && small.error.message);
    const urls = http.requests.map((r) => r.url);
    assert.ok(urls.includes('/up/s.jpg'), urls.join(' '));
    assert.ok(!urls.includes('/up/v2.mp4'), 'the second video waits for the lane: ' + urls.join(' '));
    assert.ok(!http.requests.find((r) => r.url === '/up/v1.mp4').done, 'the first video is still going');
    assert.strictEqual(t.largeSlots.inUse, 1);
    assert.strictEqual(t.largeSlots.queued, 1);
    closing.abort();
    await Promise.all([first, second]);
    await t.close();
  });
});
