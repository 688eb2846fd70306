'use strict';
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { HttpBackend } = require('../dist/lib/upload/backends/http');
const { parseHttpSettings } = require('../dist/lib/upload/backends/http-settings');
const { NotConfiguredError } = require('../dist/lib/util/settings');
const { Bandwidth } = require('../dist/lib/upload/body');
const { UploadError } = require('../dist/lib/upload/types');
const { startTarget } = require('./support/http-target');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

function settings(url, overrides = {}) {
  return parseHttpSettings({ url, timeout: 10, ...overrides.raw }, overrides.credentials ?? {});
}

/**
 * An item as the uploader hands it to a backend; `timeoutMs` bounds its signal.
 * @param {Partial<import('../dist/lib/upload/types').UploadItem> & { timeoutMs?: number }} [overrides]
 * @returns {import('../dist/lib/upload/types').UploadItem}
 */
function item(overrides = {}) {
  const { timeoutMs = 10_000, ...rest } = overrides;
  return /** @type {import('../dist/lib/upload/types').UploadItem} */ ({
    key: 'cam1/2026-01-02/03-04-05.jpg',
    bytes: rest.body ? rest.body.length : 0,
    contentType: 'image/jpeg',
    metadata: {},
    fields: {},
    signal: AbortSignal.timeout(timeoutMs),
    ...rest,
  });
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the upload to fail, it succeeded');
}

function writeFile(dir, name, bytes) {
  const data = crypto.randomBytes(bytes);
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return { file, data };
}

/** The collector, whether or not node was started with --expose-gc. */
function forceGc() {
  if (typeof global.gc === 'function') return global.gc;
  require('v8').setFlagsFromString('--expose_gc');
  return require('vm').runInNewContext('gc');
}

/** How many of this process's descriptors are open on the file. */
function openOn(file) {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      /* closed while listing */
    }
  }
  return n;
}

describe('HTTP backend', function () {
  let target;
  let dir;
  let backend;

  beforeEach(async () => {
    target = await startTarget();
    dir = tmpDir('uplink-http-');
  });

  afterEach(async () => {
    if (backend) await backend.close();
    backend = undefined;
    await target.close();
    rmrf(dir);
  });

  describe('sending', () => {
    it('PUTs a file raw: identical bytes, its content type and length, the key and checksum headers', async () => {
      const { file, data } = writeFile(dir, 'a.jpg', 300_000);
      backend = new HttpBackend(settings(`${target.url}/objects/{key}?sig=secret`, { raw: { method: 'PUT', mode: 'raw' } }));
      const res = await backend.upload(item({ file, bytes: data.length, sha256: sha256(data) }));

      assert.strictEqual(res.status, 200);
      assert.strictEqual(res.bytes, data.length);
      assert.deepStrictEqual(res.response, { ok: true, received: data.length });
      const [req] = target.requests;
      assert.strictEqual(req.method, 'PUT');
      assert.strictEqual(req.url, '/objects/cam1/2026-01-02/03-04-05.jpg?sig=secret');
      assert.ok(req.body.equals(data), 'the server got the file byte for byte');
      assert.strictEqual(req.headers['content-type'], 'image/jpeg');
      assert.strictEqual(req.headers['content-length'], String(data.length));
      assert.strictEqual(req.headers['transfer-encoding'], undefined);
      assert.strictEqual(req.headers['x-uplink-key'], 'cam1/2026-01-02/03-04-05.jpg');
      assert.strictEqual(req.headers['idempotency-key'], 'cam1/2026-01-02/03-04-05.jpg');
      assert.strictEqual(req.headers['x-uplink-sha256'], sha256(data));
      assert.strictEqual(backend.endpoint(), `${target.url}/objects/`, 'the endpoint has no key and no query string');
    });

    it('PUTs an empty file with Content-Length 0', async () => {
      const file = path.join(dir, 'empty.txt');
      fs.writeFileSync(file, '');
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { method: 'PUT', mode: 'raw' } }));
      const res = await backend.upload(item({ file, bytes: 0, contentType: 'text/plain' }));
      assert.strictEqual(res.bytes, 0);
      assert.strictEqual(target.requests[0].headers['content-length'], '0');
      assert.strictEqual(target.requests[0].body.length, 0);
    });

    it('POSTs multipart/form-data: the file under its field name and file name, then the extra fields filled in', async () => {
      const { file, data } = writeFile(dir, 'capture.jpg', 150_000);
      backend = new HttpBackend(
        settings(`${target.url}/upload`, {
          raw: {
            fieldName: 'image',
            extraFields: JSON.stringify({ camera: '{camera}', note: 'key={key} bytes={bytes} id={itemId} at={capturedAt} sha={sha256}', literal: '{"a":1}' }),
            headers: JSON.stringify({ 'X-Api-Version': '2' }),
          },
        }),
      );
      const it = item({
        file,
        bytes: data.length,
        sha256: 'abc123',
        fields: { camera: 'garden', capturedAt: '2026-01-02T03:04:05.000Z', id: 42 },
      });
      await backend.upload(it);

      const [req] = target.requests;
      assert.strictEqual(req.method, 'POST');
      assert.match(req.headers['content-type'], /^multipart\/form-data; boundary=/);
      assert.strictEqual(req.headers['content-length'], String(req.body.length));
      assert.strictEqual(req.headers['transfer-encoding'], undefined);
      assert.strictEqual(req.headers['x-api-version'], '2');
      const mp = req.multipart;
      assert.ok(mp.closed, 'the body ends with the closing boundary');
      assert.deepStrictEqual(mp.fields, {
        camera: 'garden',
        note: `key=cam1/2026-01-02/03-04-05.jpg bytes=${data.length} id=42 at=2026-01-02T03:04:05.000Z sha=abc123`,
        literal: '{"a":1}',
      });
      assert.strictEqual(mp.files.length, 1);
      assert.strictEqual(mp.files[0].field, 'image');
      assert.strictEqual(mp.files[0].filename, '03-04-05.jpg');
      assert.strictEqual(mp.files[0].contentType, 'image/jpeg');
      assert.ok(mp.files[0].data.equals(data), 'the file part is the file byte for byte');
    });

    it("fills a clip's length, partial flag and metadata into the extra fields", async () => {
      const { file, data } = writeFile(dir, 'clip.mp4', 20_000);
      backend = new HttpBackend(
        settings(`${target.url}/upload`, {
          raw: { extraFields: JSON.stringify({ session: '{metadata.session}', court: 'court {metadata.court}', len: '{durationS}', partial: '{partial}', none: '[{metadata.missing}]' }) },
        }),
      );
      await backend.upload(item({ file, bytes: data.length, contentType: 'video/mp4', fields: { durationS: 9.8, partial: true, metadata: { session: 'S-12', court: 3 } } }));
      assert.deepStrictEqual(target.requests[0].multipart.fields, { session: 'S-12', court: 'court 3', len: '9.8', partial: 'true', none: '[]' });
      assert.throws(() => parseHttpSettings({ url: 'http://h/x', extraFields: '{"a":"{metadata}"}' }, {}), /unknown placeholder \{metadata\}/);
    });

    it('sends an inline Buffer as multipart too, reporting progress up to its size', async () => {
      const data = crypto.randomBytes(200_000);
      backend = new HttpBackend(settings(`${target.url}/upload`));
      const progress = [];
      await backend.upload(item({ body: data, contentType: 'application/octet-stream', onProgress: (n) => progress.push(n) }));
      const part = target.requests[0].multipart.files[0];
      assert.strictEqual(part.field, 'file');
      assert.ok(part.data.equals(data));
      assert.strictEqual(progress[progress.length - 1], data.length);
    });

    it('sends the bearer token and basic credentials as Authorization headers', async () => {
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { auth: 'bearer' }, credentials: { token: 'tok-123456' } }));
      await backend.upload(item({ body: Buffer.from('x') }));
      await backend.close();
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { auth: 'basic' }, credentials: { username: 'cam', password: 'p@ss:wörd' } }));
      await backend.upload(item({ body: Buffer.from('y') }));

      assert.strictEqual(target.requests[0].headers.authorization, 'Bearer tok-123456');
      assert.strictEqual(target.requests[1].headers.authorization, `Basic ${Buffer.from('cam:p@ss:wörd').toString('base64')}`);
    });

    it('never puts the token or password in an error message, even when the server echoes them', async () => {
      target.answer('echo', { status: 403 });
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { auth: 'bearer' }, credentials: { token: 'tok-SECRET-987' } }));
      const e = await rejection(backend.upload(item({ body: Buffer.from('x') })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.match(e.message, /rejected the credentials/);
      assert.match(e.message, /403/);
      assert.ok(!e.message.includes('tok-SECRET-987'), e.message);
      await backend.close();

      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { auth: 'basic' }, credentials: { username: 'cam', password: 'hunter2-pw' } }));
      const e2 = await rejection(backend.upload(item({ body: Buffer.from('x') })));
      assert.ok(!e2.message.includes('hunter2-pw'), e2.message);
      assert.ok(!e2.message.includes(Buffer.from('cam:hunter2-pw').toString('base64')), e2.message);
      assert.match(e2.message, /\*\*\*/);
    });

    it('passes the answer on: JSON parsed, text as text, the Location as the URL', async () => {
      target.answer('json', { status: 200, body: { id: 'obj-7', url: 'https://cdn.example/obj-7' } });
      backend = new HttpBackend(settings(`${target.url}/u`));
      const res = await backend.upload(item({ body: Buffer.from('x') }));
      assert.deepStrictEqual(res.response, { id: 'obj-7', url: 'https://cdn.example/obj-7' });

      target.answer('status', { status: 201, headers: { 'content-type': 'text/plain', location: '/files/7?token=t' }, body: 'created' });
      const res2 = await backend.upload(item({ body: Buffer.from('x') }));
      assert.strictEqual(res2.status, 201);
      assert.strictEqual(res2.response, 'created');
      assert.strictEqual(res2.url, `${target.url}/files/7`, 'absolute, without the query string');
    });

    it('counts only the configured success codes as success', async () => {
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { successCodes: '202' } }));
      target.answer('status', { status: 202, body: '' });
      const res = await backend.upload(item({ body: Buffer.from('x') }));
      assert.strictEqual(res.status, 202);

      target.answer('json', { status: 200 });
      const e = await rejection(backend.upload(item({ body: Buffer.from('x') })));
      assert.strictEqual(e.status, 200);
      assert.strictEqual(e.errorClass, 'permanent');
      assert.match(e.message, /not one of the success codes/);
    });

    it('retries once on a fresh connection when a kept-alive one was dropped before any answer', async () => {
      backend = new HttpBackend(settings(`${target.url}/u`));
      await backend.upload(item({ body: Buffer.from('first') }));
      target.answer('reset-reused');
      const res = await backend.upload(item({ body: Buffer.from('second') }));
      assert.strictEqual(res.status, 200);
      assert.deepStrictEqual(
        target.requests.map((r) => r.reusedConnection),
        [false, true, false],
      );
      assert.ok(target.requests[2].multipart.files[0].data.equals(Buffer.from('second')));
    });
  });

  describe('failures', () => {
    const cases = [
      { status: 500, errorClass: 'retryable', retryAfterMs: undefined },
      { status: 503, headers: { 'retry-after': '7' }, errorClass: 'retryable', retryAfterMs: 7000 },
      { status: 429, headers: { 'retry-after': '7' }, errorClass: 'retryable', retryAfterMs: 7000 },
      { status: 408, errorClass: 'retryable', retryAfterMs: undefined },
      { status: 403, errorClass: 'permanent', retryAfterMs: undefined, message: /refused access without credentials/ },
      { status: 413, errorClass: 'permanent', retryAfterMs: undefined, message: /too large/ },
      { status: 400, errorClass: 'permanent', retryAfterMs: undefined },
      { status: 404, errorClass: 'permanent', retryAfterMs: undefined, message: /check the URL/ },
    ];
    for (const c of cases) {
      it(`HTTP ${c.status}${c.headers ? ' with Retry-After: 7' : ''} is ${c.errorClass}${c.retryAfterMs ? ` after ${c.retryAfterMs} ms` : ''}`, async () => {
        target.answer('status', { status: c.status, headers: { 'content-type': 'text/plain', ...c.headers }, body: `why ${c.status}: ${'x'.repeat(400)}` });
        backend = new HttpBackend(settings(`${target.url}/u`));
        const e = await rejection(backend.upload(item({ body: Buffer.from('x') })));
        assert.ok(e instanceof UploadError);
        assert.strictEqual(e.errorClass, c.errorClass);
        assert.strictEqual(e.code, `HTTP_${c.status}`);
        assert.strictEqual(e.status, c.status);
        assert.strictEqual(e.retryAfterMs, c.retryAfterMs);
        assert.match(e.message, new RegExp(`HTTP ${c.status}`));
        assert.match(e.message, new RegExp(`why ${c.status}`), 'a snippet of the answer');
        assert.ok(e.message.length < 400, `the snippet is short: ${e.message.length} chars`);
        if (c.message) assert.match(e.message, c.message);
      });
    }

    it('a server that never answers times out (retryable TIMEOUT)', async () => {
      target.answer('hang');
      backend = new HttpBackend(settings(`${target.url}/u`));
      const e = await rejection(backend.upload(item({ body: crypto.randomBytes(10_000), timeoutMs: 300 })));
      assert.strictEqual(e.code, 'TIMEOUT');
      assert.strictEqual(e.errorClass, 'retryable');
      assert.ok(target.requests[0].done, 'the body was sent; the answer never came');
    });

    it('a server that stops reading mid-body is aborted by the signal, and the file is closed', async () => {
      const { file, data } = writeFile(dir, 'big.bin', 16 * 1024 * 1024);
      target.answer('stall', { afterBytes: 512 * 1024 });
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }));
      const e = await rejection(backend.upload(item({ file, bytes: data.length, timeoutMs: 500 })));
      assert.strictEqual(e.code, 'TIMEOUT');
      assert.strictEqual(e.errorClass, 'retryable');
      assert.ok(!target.requests[0].done);
      await waitFor(() => openOn(file) === 0, { timeout: 5000, what: 'the file to be closed' });
    });

    it('a connection reset half-way through the body is retryable', async () => {
      const { file, data } = writeFile(dir, 'big.bin', 4 * 1024 * 1024);
      target.answer('reset', { afterBytes: 1024 * 1024 });
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }));
      const e = await rejection(backend.upload(item({ file, bytes: data.length })));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.ok(['ECONNRESET', 'EPIPE'].includes(e.code), e.code);
      assert.strictEqual(target.requests.length, 1, 'a fresh connection that drops is not repeated inside the backend');
    });

    it('a refused connection (server gone) is retryable', async () => {
      const url = target.url;
      await target.close();
      backend = new HttpBackend(settings(`${url}/u`));
      const e = await rejection(backend.upload(item({ body: Buffer.from('x') })));
      assert.strictEqual(e.code, 'ECONNREFUSED');
      assert.strictEqual(e.errorClass, 'retryable');
    });

    it('an answer that comes before the body was read still decides (413 from a proxy)', async () => {
      const { file, data } = writeFile(dir, 'big.bin', 8 * 1024 * 1024);
      target.answer('early', { status: 413, body: 'Request Entity Too Large' });
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }));
      const e = await rejection(backend.upload(item({ file, bytes: data.length })));
      assert.strictEqual(e.code, 'HTTP_413');
      assert.strictEqual(e.errorClass, 'permanent');
      assert.match(e.message, /Request Entity Too Large/);
    });

    it('a file that shrinks while it is sent is a permanent FILE_CHANGED, not a short body', async () => {
      const { file, data } = writeFile(dir, 'shrinks.bin', 4 * 1024 * 1024);
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }));
      let truncated = false;
      const onProgress = () => {
        if (!truncated) fs.truncateSync(file, 100_000);
        truncated = true;
      };
      const e = await rejection(backend.upload(item({ file, bytes: data.length, onProgress })));
      assert.strictEqual(e.code, 'FILE_CHANGED');
      assert.strictEqual(e.errorClass, 'permanent');
      assert.ok(!target.requests[0]?.done, 'the server never took a short body for the whole file');
    });

    it('a file deleted before the upload is a permanent FILE_GONE, and nothing is sent', async () => {
      const { file, data } = writeFile(dir, 'gone.jpg', 1000);
      fs.unlinkSync(file);
      backend = new HttpBackend(settings(`${target.url}/u`));
      const e = await rejection(backend.upload(item({ file, bytes: data.length })));
      assert.strictEqual(e.code, 'FILE_GONE');
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(target.requests.length, 0);
    });

    it('a file whose size changed since it was queued is permanent FILE_CHANGED', async () => {
      const { file } = writeFile(dir, 'changed.jpg', 1000);
      backend = new HttpBackend(settings(`${target.url}/u`));
      const e = await rejection(backend.upload(item({ file, bytes: 999 })));
      assert.strictEqual(e.code, 'FILE_CHANGED');
      assert.strictEqual(e.errorClass, 'permanent');
    });

    it('an already-aborted signal fails at once without a request', async () => {
      backend = new HttpBackend(settings(`${target.url}/u`));
      const ac = new AbortController();
      ac.abort();
      const e = await rejection(backend.upload(item({ body: Buffer.from('x'), signal: ac.signal })));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(target.requests.length, 0);
    });
  });

  describe('resources', () => {
    it('streams a 20 MB file: memory grows far less than the file', async () => {
      await target.close();
      target = await startTarget({ keepBodies: false });
      const file = path.join(dir, 'big.bin');
      const hash = crypto.createHash('sha256');
      const block = crypto.randomBytes(1024 * 1024);
      const fd = fs.openSync(file, 'w');
      for (let i = 0; i < 20; i++) {
        block.writeUInt32BE(i, 0);
        fs.writeSync(fd, block);
        hash.update(block);
      }
      fs.closeSync(fd);
      const bytes = 20 * 1024 * 1024;
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }));

      // Streaming leaves tens of MB of spent 64 KB chunks until V8 collects them; collecting before each sample
      // measures what the upload holds, not what the collector has not got round to yet. Samples are taken every 2 MB
      // sent (not on a timer), so the work is the same however slow the machine.
      const gc = forceGc();
      gc();
      const before = process.memoryUsage();
      let peakRss = 0;
      let peakHeld = 0;
      let samples = 0;
      let nextSample = 0;
      const sample = (sent) => {
        if (sent < nextSample) return;
        nextSample += 2 * 1024 * 1024;
        samples++;
        gc();
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss - before.rss);
        peakHeld = Math.max(peakHeld, m.arrayBuffers + m.heapUsed - before.arrayBuffers - before.heapUsed);
      };
      await backend.upload(item({ file, bytes, timeoutMs: 25_000, onProgress: sample }));
      assert.ok(samples >= 9, `${samples} samples`);
      const req = target.requests[0];
      assert.ok(req.done);
      assert.strictEqual(req.bytes, bytes);
      assert.strictEqual(req.sha256, hash.digest('hex'), 'the server got the file byte for byte');
      const mb = (n) => `${(n / 1048576).toFixed(1)} MB`;
      assert.ok(peakHeld < 15 * 1024 * 1024, `buffers and heap held grew by ${mb(peakHeld)}`);
      assert.ok(peakRss < 15 * 1024 * 1024, `RSS grew by ${mb(peakRss)}`);
    });

    it('under a bandwidth limit every byte still arrives, and the limit makes the body wait', async () => {
      const { file, data } = writeFile(dir, 'limited.bin', 400_000);
      const bw = new Bandwidth(200_000);
      const waits = [];
      const take = bw.take.bind(bw);
      bw.take = (n) => {
        const w = take(n);
        waits.push(w);
        return w;
      };
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }), bw);
      await backend.upload(item({ file, bytes: data.length }));
      assert.ok(target.requests[0].body.equals(data));
      assert.ok(waits.some((w) => w > 0), 'the second bucketful had to wait for tokens');
    });

    it('the token bucket lets a bucketful through, then one second per bucketful (on its own clock)', () => {
      let t = 0;
      const bw = new Bandwidth(200_000, () => t);
      const chunk = 50_000;
      const waits = [];
      for (let sent = 0; sent < 400_000; sent += chunk) {
        const w = bw.take(chunk);
        waits.push(w);
        t += w;
      }
      assert.deepStrictEqual(waits.slice(0, 4), [0, 0, 0, 0], 'the first 200 KB go at once');
      assert.strictEqual(waits.reduce((a, b) => a + b, 0), 1000, 'the next 200 KB take one second at 200 KB/s');
      assert.strictEqual(new Bandwidth(0, () => t).take(1e9), 0, 'no limit, no wait');
    });

    it('a server reading slowly still gets every byte (back-pressure, not buffering)', async () => {
      const { file, data } = writeFile(dir, 'slow.bin', 2 * 1024 * 1024);
      target.answer('slow', { chunkDelayMs: 2 });
      backend = new HttpBackend(settings(`${target.url}/u`, { raw: { mode: 'raw', method: 'PUT' } }));
      const res = await backend.upload(item({ file, bytes: data.length, timeoutMs: 20_000 }));
      assert.strictEqual(res.status, 200);
      assert.strictEqual(target.requests[0].sha256, sha256(data));
    });

    it('close() drops the kept-alive connections', async () => {
      backend = new HttpBackend(settings(`${target.url}/u`));
      await backend.upload(item({ body: Buffer.from('x') }));
      assert.strictEqual(target.sockets, 1, 'the connection is kept alive');
      await backend.close();
      backend = undefined;
      await waitFor(() => target.sockets === 0, { timeout: 5000, what: 'the connection to close' });
    });
  });
});

describe('parseHttpSettings', () => {
  it('fills the defaults', () => {
    const s = parseHttpSettings({ url: 'https://api.example.com/upload' }, {});
    assert.deepStrictEqual(
      { ...s, successCodes: [s.successCodes[0], s.successCodes[s.successCodes.length - 1], s.successCodes.length] },
      {
        url: 'https://api.example.com/upload',
        method: 'POST',
        mode: 'multipart',
        fieldName: 'file',
        extraFields: {},
        headers: {},
        auth: 'none',
        token: undefined,
        username: undefined,
        password: undefined,
        successCodes: [200, 299, 100],
        timeoutMs: 60_000,
        concurrency: 4,
      },
    );
  });

  it('reads success codes, headers and fields, and takes secrets from the credentials only', () => {
    const s = parseHttpSettings(
      { url: 'http://nas.local/dav/{key}', method: 'put', mode: 'raw', successCodes: '201, 204-205', headers: '{"X-A":"1"}', auth: 'basic', timeout: '5', concurrency: '2' },
      { username: 'cam', password: ' spaced ' },
    );
    assert.deepStrictEqual(s.successCodes, [201, 204, 205]);
    assert.deepStrictEqual(s.headers, { 'X-A': '1' });
    assert.strictEqual(s.method, 'PUT');
    assert.strictEqual(s.username, 'cam');
    assert.strictEqual(s.password, ' spaced ');
    assert.strictEqual(s.timeoutMs, 5000);
    assert.strictEqual(s.concurrency, 2);
  });

  it('lists every problem in one error', () => {
    let err;
    try {
      parseHttpSettings(
        {
          url: 'ftp://user:pw@example.com/x',
          method: 'GET',
          headers: '{"Bad Name":"x","Authorization":"Bearer abc","Content-Length":"3","X-N":5}',
          extraFields: '[1,2]',
          successCodes: '200-299, abc',
          auth: 'bearer',
        },
        {},
      );
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'it throws');
    const m = err.message;
    for (const expected of [
      /URL must start with http:\/\/ or https:\/\//,
      /must not contain a user name or password/,
      /Method must be POST or PUT/,
      /Header name "Bad Name" is not valid/,
      /Do not put Authorization in the headers/,
      /Header Content-Length cannot be set/,
      /the value of "X-N" must be a string/,
      /Extra fields must be a JSON object/,
      /Success codes: "abc"/,
      /Bearer authentication needs a token/,
    ]) {
      assert.match(m, expected);
    }
  });

  it('rejects headers that are not JSON, unknown placeholders and a {key} outside the path', () => {
    assert.throws(() => parseHttpSettings({ url: 'http://h/x', headers: '{nope' }, {}), /Headers must be a JSON object/);
    assert.throws(() => parseHttpSettings({ url: 'http://h/x', extraFields: '{"a":"{cam}"}' }, {}), /unknown placeholder \{cam\}/);
    assert.throws(() => parseHttpSettings({ url: 'http://h/x?k={key}' }, {}), /\{key\} may only appear in the path/);
    assert.throws(() => parseHttpSettings({ url: 'http://h/x', auth: 'basic', method: 'GET' }, { password: 'p' }), /Basic authentication needs a user name/);
  });

  it('is not configured, rather than wrong, while the URL or the secret is blank (an unresolved ${NAME} is blank)', () => {
    const notConfigured = (raw, creds, what) =>
      assert.throws(() => parseHttpSettings(raw, creds), (e) => e instanceof NotConfiguredError && e.message === `not configured: set the ${what}`);
    notConfigured({ url: '' }, {}, 'URL');
    notConfigured({ url: '${UPLINK_HTTP_URL}', auth: 'bearer' }, {}, 'URL and token');
    notConfigured({ url: 'http://h/x', auth: 'basic' }, { password: 'p' }, 'user name');
  });
});

describe('HTTP target in Node-RED, wired into a real offline queue', function () {
  const helper = require('node-red-node-test-helper');
  const uploaderNode = require('../dist/nodes/uploader/uploader.js');
  const httpConfigNode = require('../dist/nodes/http-config/http-config.js');
  const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
  const { startTarget } = require('./support/http-target');
  const { tmpDir: mkTmp, rmrf: rm, waitFor: wait } = require('./support/tmp');
  helper.init(require.resolve('node-red'));
  let server;
  let work;
  beforeEach(async function () {
    work = mkTmp();
    server = await startTarget();
    await new Promise((r) => helper.startServer(r));
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    await server.close();
    rm(work);
  });

  it('delivers every item exactly once after the API answers 503 for a while, with the token only in credentials', async function () {
    const flowJson = [
      { id: 'h', type: 'uplink-http-config', url: `${server.url}/upload`, method: 'POST', mode: 'multipart', fieldName: 'image', auth: 'bearer', successCodes: '201', timeout: 5, concurrency: 2 },
      { id: 'q', type: 'uplink-offline-queue', db: require('path').join(work, 'q.db'), concurrency: 2, backoffBase: 0.1, backoffCap: 0.3, statsInterval: 0.1, wires: [['up'], [], ['stats']] },
      { id: 'up', type: 'uplink-uploader', backend: 'http', http: 'h', keyTemplate: '{camera}/{id}.{ext}', wires: [['q', 'ok'], ['q']] },
      { id: 'ok', type: 'helper' },
      { id: 'stats', type: 'helper' },
    ];
    server.answer('status', { status: 503, headers: { 'retry-after': '0' }, body: 'maintenance' });
    await helper.load([httpConfigNode, queueNode, uploaderNode], flowJson, { h: { token: 'tok-123-secret' } });
    const q = helper.getNode('q');
    await q.ready;
    const ok = [];
    const stats = [];
    helper.getNode('ok').on('input', (m) => ok.push(m));
    helper.getNode('stats').on('input', (m) => stats.push(m.payload));
    for (let i = 0; i < 5; i++) q.receive({ payload: { reading: i }, uplink: { camera: 'ecg' } });
    await wait(() => server.requests.length >= 3, { what: 'some refused attempts' });
    server.answer('json', { status: 201, body: { stored: true } });
    await wait(() => stats.length && stats[stats.length - 1].uploaded === 5, { what: 'all five uploaded', timeout: 15000 });
    const accepted = server.requests.filter((r) => r.multipart && r.done).map((r) => r.headers['idempotency-key']);
    const delivered = ok.map((m) => m.uplink.upload.key).sort();
    assert.strictEqual(new Set(delivered).size, 5, 'five distinct keys');
    for (const k of delivered) assert.ok(accepted.includes(k), `${k} reached the API`);
    assert.deepStrictEqual(ok[0].uplink.upload.response, { stored: true }, 'the response body is passed on');
    assert.strictEqual(server.requests[server.requests.length - 1].headers.authorization, 'Bearer tok-123-secret');
    assert.ok(!JSON.stringify(flowJson).includes('tok-123-secret'));
    assert.ok(!JSON.stringify(ok).includes('tok-123-secret'));
  });
});
