'use strict';
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');
const v8 = require('v8');
const vm = require('vm');
const { SupabaseBackend, BUFFER_LIMIT_BYTES, TUS_CHUNK_BYTES } = require('../dist/lib/upload/backends/supabase');
const { Bandwidth } = require('../dist/lib/upload/body');
const { UploadError } = require('../dist/lib/upload/types');
const { SupabaseServer, TUS_PATH } = require('./support/supabase-server');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

const KEY = 'eyJhbGciOiJIUzI1NiJ9.test-service-role.tus-s3cr3t';
const MB = 1024 * 1024;

/** A full garbage collection, so memory figures show what is held, not what is waiting to be collected. */
function collector() {
  if (typeof global.gc === 'function') return global.gc;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
}

describe('Supabase resumable (TUS) uploads', function () {
  this.timeout(60000);
  let server;
  let dir;
  const closers = [];

  beforeEach(async () => {
    server = new SupabaseServer({ key: KEY, buckets: ['captures'] });
    server.maxBytes = 64 * MB;
    await server.start();
    dir = tmpDir('uplink-tus-test-');
  });

  afterEach(async () => {
    while (closers.length) await closers.pop()();
    await server.stop();
    rmrf(dir);
  });

  function backend(overrides = {}, bandwidth) {
    const b = new SupabaseBackend({ url: server.url, key: KEY, bucket: 'captures', columns: {}, timeoutMs: 5000, ...overrides }, bandwidth);
    closers.push(() => b.close());
    return b;
  }

  /** A file of random bytes written 1 MB at a time (never whole in memory), with its SHA-256. */
  function bigFile(bytes, name = 'clip.mp4') {
    const file = path.join(dir, name);
    const fd = fs.openSync(file, 'w');
    const hash = crypto.createHash('sha256');
    for (let left = bytes; left > 0; ) {
      const block = crypto.randomBytes(Math.min(MB, left));
      hash.update(block);
      fs.writeSync(fd, block);
      left -= block.length;
    }
    fs.closeSync(fd);
    return { file, bytes, sha256: hash.digest('hex') };
  }

  const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

  function item(f, overrides = {}) {
    return {
      key: 'clips/porch/2026-01-02_03-04-05.mp4',
      file: f.file,
      bytes: f.bytes,
      contentType: 'video/mp4',
      metadata: { camera: 'porch', 'item-id': '42' },
      fields: {},
      signal: new AbortController().signal,
      ...overrides,
    };
  }

  /** A ResumeHandle in memory that logs what it was told, and how many PATCHes the server had seen by then. */
  function memoryHandle(initial) {
    const h = {
      state: initial,
      saves: [],
      clears: [],
      async load() {
        return h.state === undefined ? undefined : JSON.parse(JSON.stringify(h.state));
      },
      async save(state, confirmed) {
        h.saves.push({ state: JSON.parse(JSON.stringify(state)), confirmed, patchesBefore: patches().length });
        h.state = JSON.parse(JSON.stringify(state));
      },
      async clear() {
        h.clears.push({ requestsBefore: server.requests.length });
        h.state = undefined;
      },
    };
    return h;
  }

  /** A ResumeHandle kept in a file, as the queue keeps it in its database: it outlives the backend (a restart). */
  function fileHandle(file) {
    return {
      async load() {
        try {
          return JSON.parse(fs.readFileSync(file, 'utf8')).state;
        } catch (e) {
          if (e.code === 'ENOENT') return undefined;
          throw e;
        }
      },
      async save(state, confirmedBytes) {
        fs.writeFileSync(`${file}.tmp`, JSON.stringify({ state, confirmedBytes }));
        fs.renameSync(`${file}.tmp`, file);
      },
      async clear() {
        fs.rmSync(file, { force: true });
      },
    };
  }

  const patches = () => server.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith(`${TUS_PATH}/`));
  const heads = () => server.requests.filter((r) => r.method === 'HEAD' && r.path.startsWith(`${TUS_PATH}/`));
  const creations = () => server.requests.filter((r) => r.method === 'POST' && r.path === TUS_PATH);

  async function rejects(promise) {
    try {
      await promise;
    } catch (e) {
      assert.ok(e instanceof UploadError, `expected an UploadError, got ${e && e.stack}`);
      return e;
    }
    assert.fail('the upload succeeded but should have failed');
  }

  function decodeMetadata(header) {
    return Object.fromEntries(
      header.split(',').map((pair) => {
        const [k, v] = pair.trim().split(' ');
        return [k, Buffer.from(v ?? '', 'base64').toString('utf8')];
      }),
    );
  }

  function assertStored(f, key = item(f).key) {
    const stored = server.object('captures', key);
    assert.ok(stored, 'the object is stored');
    assert.strictEqual(stored.bytes.length, f.bytes);
    assert.strictEqual(sha(stored.bytes), f.sha256, 'the stored bytes equal the file');
    return stored;
  }

  /** The server has finished with every PATCH (an aborted one may still be read for a moment). */
  const settled = () => waitFor(() => !server.tusBusy(), { what: 'the server to finish the PATCH under way' });

  /** Aborts the item once `at` bytes of the file have gone out. */
  function abortAt(at) {
    const ac = new AbortController();
    return { signal: ac.signal, onProgress: (n) => n >= at && !ac.signal.aborted && ac.abort() };
  }

  describe('uploading', () => {
    it('uploads a 30 MB file byte-identical through TUS in 6 MB chunks', async () => {
      const f = bigFile(30 * MB + 123);
      const progress = [];
      const result = await backend().upload(item(f, { onProgress: (n) => progress.push(n) }));

      const stored = assertStored(f);
      assert.strictEqual(stored.contentType, 'video/mp4');
      assert.strictEqual(stored.cacheControl, 'max-age=3600');
      assert.deepStrictEqual(stored.metadata, { camera: 'porch', 'item-id': '42' });
      assert.strictEqual(result.bytes, f.bytes);
      assert.strictEqual(result.url, `${server.url}/storage/v1/object/captures/${item(f).key}`);

      const sent = patches();
      assert.strictEqual(sent.length, Math.ceil(f.bytes / TUS_CHUNK_BYTES));
      sent.forEach((p, i) => {
        assert.strictEqual(p.headers['upload-offset'], String(i * TUS_CHUNK_BYTES));
        assert.strictEqual(p.headers['content-length'], String(Math.min(TUS_CHUNK_BYTES, f.bytes - i * TUS_CHUNK_BYTES)));
        assert.strictEqual(p.headers['content-type'], 'application/offset+octet-stream');
        assert.strictEqual(p.headers['tus-resumable'], '1.0.0');
        assert.strictEqual(p.headers.authorization, `Bearer ${KEY}`);
        assert.strictEqual(p.headers.apikey, KEY);
        assert.strictEqual(p.headers['x-upsert'], 'true');
      });
      assert.strictEqual(server.tusBytesReceived, f.bytes, 'every byte went once');
      assert.strictEqual(
        server.requests.filter((r) => r.path.startsWith('/storage/v1/object/') && r.method === 'POST').length,
        0,
        'nothing went through the REST upload',
      );
      assert.strictEqual(progress[progress.length - 1], f.bytes);
      assert.ok(progress.every((n, i) => i === 0 || n >= progress[i - 1]), 'progress only grows');
    });

    it('uploads a 50 MB file holding only a little of it in memory (the server in another process)', async () => {
      const child = fork(require.resolve('./support/supabase-server'), [JSON.stringify({ key: KEY, maxBytes: 64 * MB })], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      closers.push(
        () =>
          new Promise((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', resolve);
            child.disconnect();
          }),
      );
      const url = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the server process did not start')), 20000);
        child.once('message', (m) => {
          clearTimeout(timer);
          resolve(/** @type {{ url: string }} */ (m).url);
        });
        child.once('exit', () => reject(new Error('the server process exited')));
      });
      const f = bigFile(50 * MB);
      const gc = collector();
      gc();
      const before = process.memoryUsage();
      let peak = { rss: 0, held: 0 };
      let sampled = 0;
      await backend({ url }).upload(
        item(f, {
          onProgress: (n) => {
            if (n >= f.bytes || n - sampled < MB) return;
            sampled = n;
            gc();
            const m = process.memoryUsage();
            peak = { rss: Math.max(peak.rss, m.rss), held: Math.max(peak.held, m.heapUsed + m.external) };
          },
        }),
      );
      assert.ok(sampled > 40 * MB, 'memory was sampled along the way');
      const held = peak.held - (before.heapUsed + before.external);
      const rss = peak.rss - before.rss;
      // Bounds, not measurements: a chunk (6 MB) is never held whole, let alone the file.
      assert.ok(held < 6 * MB, `JS heap and buffers grew by ${(held / MB).toFixed(1)} MB`);
      assert.ok(rss < 20 * MB, `the process grew by ${(rss / MB).toFixed(1)} MB`);

      const res = await fetch(`${url}/storage/v1/object/authenticated/captures/${item(f).key}`, { headers: { apikey: KEY, authorization: `Bearer ${KEY}` } });
      assert.strictEqual(res.status, 200);
      const hash = crypto.createHash('sha256');
      for await (const chunk of res.body) hash.update(chunk);
      assert.strictEqual(hash.digest('hex'), f.sha256, 'the stored object equals the file');
    });

    it('creates the upload with the key, the Supabase metadata and the TUS headers, and checks the stored size after', async () => {
      const f = bigFile(7 * MB);
      await backend({ cacheControl: '600' }).upload(item(f));
      const [post] = creations();
      assert.strictEqual(post.headers['tus-resumable'], '1.0.0');
      assert.strictEqual(post.headers['upload-length'], String(f.bytes));
      assert.strictEqual(post.headers.authorization, `Bearer ${KEY}`);
      assert.strictEqual(post.headers.apikey, KEY);
      assert.strictEqual(post.headers['x-upsert'], 'true');
      assert.deepStrictEqual(decodeMetadata(post.headers['upload-metadata']), {
        bucketName: 'captures',
        objectName: item(f).key,
        contentType: 'video/mp4',
        cacheControl: '600',
        metadata: JSON.stringify({ camera: 'porch', 'item-id': '42' }),
      });
      assert.strictEqual(assertStored(f).cacheControl, 'max-age=600');
      const last = server.requests[server.requests.length - 1];
      assert.strictEqual(last.path, `/storage/v1/object/info/authenticated/captures/${item(f).key}`);
    });

    it('sends only files above the REST limit through TUS', async () => {
      const small = bigFile(BUFFER_LIMIT_BYTES, 'small.mp4');
      await backend().upload(item(small, { key: 'clips/small.mp4' }));
      assert.strictEqual(creations().length, 0);
      assertStored(small, 'clips/small.mp4');
      const big = bigFile(BUFFER_LIMIT_BYTES + 1, 'big.mp4');
      await backend().upload(item(big, { key: 'clips/big.mp4' }));
      assert.strictEqual(creations().length, 1);
      assertStored(big, 'clips/big.mp4');
    });

    it('sends every chunk through the bandwidth limit', async () => {
      const f = bigFile(13 * MB);
      class CountingBandwidth extends Bandwidth {
        taken = 0;
        take(n) {
          this.taken += n;
          return super.take(n);
        }
      }
      const bw = new CountingBandwidth(1024 * MB);
      await backend({}, bw).upload(item(f));
      assert.strictEqual(bw.taken, f.bytes);
      assertStored(f);
    });

    it('uses the upload id of a Location a misconfigured gateway answers, under the configured project URL', async () => {
      // Self-hosted Storage behind Kong answers e.g. http://localhost/upload/resumable/<id> (wrong host, no prefix).
      server.tusLocationBase = 'http://localhost:9/upload/resumable';
      const f = bigFile(7 * MB);
      const h = memoryHandle();
      await backend().upload(item(f, { resume: h }));
      assertStored(f);
      assert.ok(h.saves[0].state.tusUrl.startsWith(`${server.url}${TUS_PATH}/`), h.saves[0].state.tusUrl);
      assert.strictEqual(patches().length, 2);
    });
  });

  describe('resuming', () => {
    it('saves the upload URL before any data, then each confirmed offset, and clears it before checking the size', async () => {
      const f = bigFile(20 * MB);
      const h = memoryHandle();
      await backend().upload(item(f, { resume: h, sha256: f.sha256 }));
      assertStored(f);

      assert.strictEqual(h.saves[0].patchesBefore, 0, 'saved before the first PATCH');
      assert.deepStrictEqual(
        h.saves.map((s) => s.confirmed),
        [0, 6 * MB, 12 * MB, 18 * MB],
      );
      assert.deepStrictEqual(
        h.saves.map((s) => s.state.offset),
        [0, 6 * MB, 12 * MB, 18 * MB],
      );
      const st = h.saves[0].state;
      assert.deepStrictEqual(Object.keys(st).sort(), ['bucket', 'bytes', 'chunkSize', 'createdAt', 'key', 'kind', 'offset', 'project', 'sha256', 'tusUrl']);
      assert.strictEqual(st.kind, 'supabase-tus');
      assert.strictEqual(st.project, server.url);
      assert.strictEqual(st.bucket, 'captures');
      assert.strictEqual(st.key, item(f).key);
      assert.strictEqual(st.bytes, f.bytes);
      assert.strictEqual(st.sha256, f.sha256);
      assert.strictEqual(st.chunkSize, TUS_CHUNK_BYTES);
      assert.ok(st.tusUrl.startsWith(`${server.url}${TUS_PATH}/`));
      assert.ok(!Number.isNaN(Date.parse(st.createdAt)));

      assert.strictEqual(h.clears.length, 1);
      assert.strictEqual(h.state, undefined);
      const verify = server.requests.findIndex((r) => r.path.startsWith('/storage/v1/object/info/'));
      assert.ok(h.clears[0].requestsBefore <= verify, 'cleared before the size check');
    });

    it('continues an attempt aborted mid-way with the same handle: fewer bytes sent, a byte-identical object', async () => {
      const f = bigFile(30 * MB);
      const h = memoryHandle();
      const b = backend();
      const e = await rejects(b.upload(item(f, { resume: h, ...abortAt(15 * MB) })));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'ABORTED');
      assert.ok(h.state, 'the upload is remembered');
      assert.ok(h.state.offset >= 12 * MB, `confirmed ${h.state.offset}`);
      assert.strictEqual(server.object('captures', item(f).key), undefined);
      await settled();

      server.tusBytesReceived = 0;
      const patchesBefore = patches().length;
      await b.upload(item(f, { resume: h }));
      assertStored(f);
      assert.ok(server.tusBytesReceived < f.bytes, `the second attempt sent ${server.tusBytesReceived} of ${f.bytes} bytes`);
      assert.ok(server.tusBytesReceived <= f.bytes - 12 * MB);
      assert.strictEqual(creations().length, 1, 'one upload, continued');
      assert.strictEqual(heads().length, 1, 'the offset was asked');
      assert.ok(Number(patches()[patchesBefore].headers['upload-offset']) >= 12 * MB);
      assert.strictEqual(h.state, undefined);
    });

    it('after a restart (a new backend, the state read back from disk) continues where the store is', async () => {
      const f = bigFile(24 * MB);
      const stateFile = path.join(dir, 'resume.json');
      const first = backend();
      const e = await rejects(first.upload(item(f, { resume: fileHandle(stateFile), ...abortAt(10 * MB) })));
      assert.strictEqual(e.errorClass, 'retryable', `${e.code}: ${e.message}`);
      await first.close();
      const saved = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
      assert.strictEqual(saved.confirmedBytes, 6 * MB);
      assert.strictEqual(saved.state.offset, 6 * MB);
      await settled();

      server.tusBytesReceived = 0;
      await backend().upload(item(f, { resume: fileHandle(stateFile) }));
      assertStored(f);
      // The store kept what arrived of the aborted chunk: the next attempt starts there, past the last confirmed offset.
      assert.ok(server.tusBytesReceived <= f.bytes - 6 * MB, `sent ${server.tusBytesReceived} bytes again`);
      assert.strictEqual(creations().length, 1);
      assert.ok(!fs.existsSync(stateFile), 'the state is cleared');
    });

    it('an attempt that died after its last chunk (the state never cleared) finds the object stored and sends nothing', async () => {
      const f = bigFile(13 * MB);
      const h = memoryHandle();
      // The queue's database fails at the worst moment: every byte is on the store, the state still says 12 MB.
      h.clear = async () => {
        throw new Error('SQLITE_IOERR: disk I/O error');
      };
      const e = await rejects(backend().upload(item(f, { resume: h })));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'RESUME_STATE');
      assert.strictEqual(h.state.offset, 12 * MB);
      assertStored(f);

      h.clear = async () => {
        h.state = undefined;
      };
      const patchesBefore = patches().length;
      await backend().upload(item(f, { resume: h }));
      assert.strictEqual(patches().length, patchesBefore, 'nothing sent again');
      assert.strictEqual(heads().length, 1);
      assert.strictEqual(h.state, undefined);
    });

    it('a connection the server cuts mid-chunk is continued in the same attempt from what the store holds', async () => {
      const f = bigFile(20 * MB);
      const h = memoryHandle();
      server.tusCutAfter(9 * MB, { mode: 'reset' });
      await backend().upload(item(f, { resume: h }));
      assertStored(f);
      assert.strictEqual(creations().length, 1);
      assert.strictEqual(heads().length, 1, 'asked where the upload is');
      // Not the whole cut chunk again, only what had not reached the store's disk.
      assert.ok(server.tusBytesReceived < f.bytes + MB, `received ${server.tusBytesReceived} bytes for ${f.bytes}`);
      const offsets = h.saves.map((x) => x.confirmed);
      assert.ok(offsets.some((o) => o > 6 * MB && o < 12 * MB), `saved the offset the store held: ${offsets}`);
    });

    it('a chunk the server never answers times out (retryable), and the next attempt continues', async () => {
      const f = bigFile(20 * MB);
      const h = memoryHandle();
      server.tusCutAfter(9 * MB, { mode: 'hang' });
      const b = backend({ timeoutMs: 500 });
      const e = await rejects(b.upload(item(f, { resume: h })));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'TIMEOUT');
      assert.strictEqual(h.state.offset, 6 * MB);

      server.tusBytesReceived = 0;
      await backend().upload(item(f, { resume: h }));
      assertStored(f);
      assert.ok(server.tusBytesReceived <= f.bytes - 6 * MB);
      assert.strictEqual(creations().length, 1);
    });

    for (const gone of [false, true]) {
      it(`an upload the server forgot (${gone ? '410 gone' : '404 expired'}) is started again, and succeeds`, async () => {
        const f = bigFile(14 * MB);
        const h = memoryHandle();
        const e = await rejects(backend().upload(item(f, { resume: h, ...abortAt(8 * MB) })));
        assert.strictEqual(e.errorClass, 'retryable');
        const forgotten = new URL(h.state.tusUrl).pathname;
        await settled();
        server.forgetTusUploads({ gone });

        server.tusBytesReceived = 0;
        const patchesBefore = patches().length;
        await backend().upload(item(f, { resume: h }));
        assertStored(f);
        assert.strictEqual(creations().length, 2, 'a new upload');
        assert.strictEqual(server.tusBytesReceived, f.bytes, 'all of it again');
        assert.deepStrictEqual(
          heads().map((r) => r.path),
          [forgotten],
        );
        const again = patches().slice(patchesBefore);
        assert.ok(again.every((p) => p.path !== forgotten));
        assert.strictEqual(again[0].headers['upload-offset'], '0');
        assert.strictEqual(h.state, undefined);
      });
    }

    it('an upload that expires mid-way is started again within the same attempt', async () => {
      const f = bigFile(20 * MB);
      const h = memoryHandle();
      let forgot = false;
      await backend().upload(
        item(f, {
          resume: h,
          onProgress: (n) => {
            if (!forgot && n >= 8 * MB) {
              forgot = true;
              server.forgetTusUploads();
            }
          },
        }),
      );
      assertStored(f);
      assert.strictEqual(creations().length, 2);
      assert.strictEqual(h.state, undefined);
    });

    it('a saved state for another object or file is not continued', async () => {
      const f = bigFile(7 * MB);
      const h = memoryHandle({
        kind: 'supabase-tus',
        tusUrl: `${server.url}${TUS_PATH}/b3RoZXI`,
        project: server.url,
        bucket: 'captures',
        key: item(f).key,
        bytes: f.bytes + 1,
        chunkSize: TUS_CHUNK_BYTES,
        offset: 6 * MB,
        createdAt: new Date().toISOString(),
      });
      await backend().upload(item(f, { resume: h }));
      assertStored(f);
      assert.strictEqual(heads().length, 0, 'not asked for its offset');
      assert.strictEqual(server.requests.filter((r) => r.method === 'DELETE').length, 1, 'the stale upload is deleted');
      assert.strictEqual(Number(patches()[0].headers['upload-offset']), 0);
    });

    it('an Upload-Offset conflict is settled by asking the offset, and the upload continues', async () => {
      const f = bigFile(13 * MB);
      server.failNext(1, { status: 409, text: 'Upload-Offset conflict\n', path: `${TUS_PATH}/` });
      await backend().upload(item(f, { resume: memoryHandle() }));
      assertStored(f);
      assert.strictEqual(heads().length, 1);
      assert.strictEqual(creations().length, 1);
    });

    it('a 503 on a chunk is retryable and keeps the upload for the next attempt', async () => {
      const f = bigFile(13 * MB);
      const h = memoryHandle();
      const b = backend();
      server.failNext(1, { status: 503, path: `${TUS_PATH}/` });
      const e = await rejects(b.upload(item(f, { resume: h })));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.status, 503);
      assert.ok(h.state);
      await b.upload(item(f, { resume: h }));
      assertStored(f);
      assert.strictEqual(creations().length, 1);
    });

    it('a failed upload of a message with nowhere to keep it (no resume handle) is deleted on the store', async () => {
      const f = bigFile(13 * MB);
      server.failNext(1, { status: 503, path: `${TUS_PATH}/` });
      const e = await rejects(backend().upload(item(f)));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(server.requests.filter((r) => r.method === 'DELETE').length, 1);
      assert.deepStrictEqual(server.tusUploads(), []);
    });

    it('abandon() deletes an unfinished upload on the store, and accepts one already gone', async () => {
      const f = bigFile(14 * MB);
      const h = memoryHandle();
      const b = backend();
      await rejects(b.upload(item(f, { resume: h, ...abortAt(8 * MB) })));
      await settled();
      assert.strictEqual(server.tusUploads().length, 1);
      await b.abandon(h.state);
      assert.strictEqual(server.tusUploads().length, 0);
      await b.abandon(h.state);
      // A state of another project is never sent anywhere.
      await b.abandon({ ...h.state, project: 'https://elsewhere.example', tusUrl: 'https://elsewhere.example/storage/v1/upload/resumable/x' });
      assert.strictEqual(server.requests.filter((r) => r.method === 'DELETE').length, 2);
    });

    const uploadId = (url) => new URL(url).pathname.split('/').pop();

    it('abandon() deletes an unfinished upload whose key already holds an object: the DELETE carries x-upsert, as Storage wants', async () => {
      const f = bigFile(14 * MB);
      const b = backend();
      await b.upload(item(f));
      const h = memoryHandle();
      await rejects(b.upload(item(f, { resume: h, ...abortAt(8 * MB) })));
      await settled();
      const id = uploadId(h.state.tusUrl);
      assert.ok(server.tusUploads().includes(id));
      // What Storage answers a DELETE of that upload without x-upsert.
      const bare = await fetch(h.state.tusUrl, { method: 'DELETE', headers: { apikey: KEY, authorization: `Bearer ${KEY}`, 'tus-resumable': '1.0.0' } });
      assert.strictEqual(bare.status, 409);
      assert.match(await bare.text(), /The resource already exists/);
      assert.ok(server.tusUploads().includes(id));

      await b.abandon(h.state);
      assert.ok(!server.tusUploads().includes(id), 'the half upload is gone from the store');
      assert.strictEqual(server.requests.filter((r) => r.method === 'DELETE').pop().headers['x-upsert'], 'true');
    });

    for (const status of [403, 405, 501]) {
      it(`abandon() refused by the store (${status}) fails for good (ABORT_REFUSED), not to be asked again`, async () => {
        const f = bigFile(14 * MB);
        const h = memoryHandle();
        const b = backend();
        await rejects(b.upload(item(f, { resume: h, ...abortAt(8 * MB) })));
        await settled();
        server.refuseTusDelete = status;
        const e = await rejects(b.abandon(h.state));
        assert.strictEqual(e.code, 'ABORT_REFUSED');
        assert.strictEqual(e.errorClass, 'permanent');
        assert.strictEqual(e.status, status);
        assert.match(e.message, new RegExp(`refused to abort the resumable upload of .*HTTP ${status}`));
        assert.ok(server.tusUploads().includes(uploadId(h.state.tusUrl)));
      });

      it(`a HEAD the store refuses (${status}) continues from the offset recorded as confirmed, and says so once`, async () => {
        const f = bigFile(20 * MB);
        const h = memoryHandle();
        // The first attempt stops right after the store confirmed 12 MB: it holds exactly what was recorded.
        const stop = new AbortController();
        const save = h.save;
        h.save = async (state, confirmed) => {
          await save(state, confirmed);
          if (state.offset >= 12 * MB) stop.abort();
        };
        await rejects(backend().upload(item(f, { resume: h, signal: stop.signal })));
        h.save = save;
        assert.strictEqual(h.state.offset, 12 * MB);
        await settled();

        server.refuseTusHead = status;
        server.tusBytesReceived = 0;
        const warnings = [];
        await backend().upload(item(f, { resume: h, onWarning: (w) => warnings.push(w) }));
        assertStored(f);
        assert.strictEqual(heads().length, 1, 'asked, and refused');
        assert.strictEqual(server.tusBytesReceived, f.bytes - 12 * MB, 'only the rest was sent');
        assert.strictEqual(creations().length, 1, 'the same upload, continued');
        assert.strictEqual(warnings.length, 1, warnings.join('\n'));
        assert.match(warnings[0], new RegExp(`refused to tell the offset .*\\(HTTP ${status}\\): continuing from the ${12 * MB} bytes recorded as confirmed`));
        assert.strictEqual(h.state, undefined);
      });
    }

    it('a refused HEAD where the store holds more than recorded (Upload-Offset conflict) starts the upload again, once', async () => {
      const f = bigFile(20 * MB);
      const h = memoryHandle();
      await rejects(backend().upload(item(f, { resume: h, ...abortAt(9 * MB) })));
      await settled();
      assert.strictEqual(h.state.offset, 6 * MB);
      const old = uploadId(h.state.tusUrl);
      assert.ok(fs.statSync(path.join(server.tusDir, old)).size > 6 * MB, 'the store kept part of the cut chunk');

      server.refuseTusHead = 405;
      const warnings = [];
      await backend().upload(item(f, { resume: h, onWarning: (w) => warnings.push(w) }));
      assertStored(f);
      assert.strictEqual(creations().length, 2, 'a new upload');
      assert.strictEqual(warnings.length, 2, warnings.join('\n'));
      assert.match(warnings[0], new RegExp(`continuing from the ${6 * MB} bytes recorded as confirmed`));
      // The store answers the conflict before it reads the chunk: the client sees the answer, or the connection cut.
      assert.match(warnings[1], /refused to tell the offset .*\(HTTP 405\) after the chunk from byte 6291456 (found it elsewhere \(Upload-Offset conflict\)|broke off): starting it again/);
      assert.ok(!server.tusUploads().includes(old), 'the old upload was deleted');
      assert.strictEqual(h.state, undefined);
    });
  });

  describe('failures', () => {
    it('an object already stored with this size (409 "The resource already exists") counts as uploaded', async () => {
      const f = bigFile(7 * MB);
      const b = backend();
      await b.upload(item(f));
      server.refuseOverwrite = true;
      const before = patches().length;
      const result = await b.upload(item(f, { resume: memoryHandle() }));
      assert.strictEqual(result.bytes, f.bytes);
      assert.strictEqual(patches().length, before, 'nothing sent again');

      const other = bigFile(7 * MB + 1, 'other.mp4');
      const e = await rejects(b.upload(item(other)));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'KeyAlreadyExists');
      assert.strictEqual(e.status, 409);
    });

    it('a wrong key is permanent, and the key is in no message', async () => {
      const f = bigFile(7 * MB);
      const wrong = 'wrong-key-that-must-not-leak';
      const e = await rejects(backend({ key: wrong }).upload(item(f)));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.status, 401);
      assert.ok(!e.message.includes(wrong));
    });

    it('a token storage cannot verify (behind no gateway) is permanent access denied', async () => {
      await server.stop();
      server = new SupabaseServer({ key: KEY, gateway: false });
      await server.start();
      const f = bigFile(7 * MB);
      const e = await rejects(backend({ key: 'not-a-valid-jwt' }).upload(item(f)));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'AccessDenied');
      assert.strictEqual(e.status, 403);
    });

    it('a missing bucket (404 "Bucket not found") is permanent', async () => {
      const f = bigFile(7 * MB);
      const e = await rejects(backend({ bucket: 'nope' }).upload(item(f)));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'NoSuchBucket');
      assert.strictEqual(e.status, 404);
      assert.match(e.message, /bucket "nope" not found/);
    });

    it('a file over the size limit (413 "Maximum size exceeded") is permanent', async () => {
      server.maxBytes = 7 * MB;
      const f = bigFile(8 * MB);
      const e = await rejects(backend().upload(item(f)));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'EntityTooLarge');
      assert.strictEqual(e.status, 413);
    });

    it('429 on creation is retryable and carries Retry-After', async () => {
      const f = bigFile(7 * MB);
      server.throttleNext(1, { retryAfter: 7, path: TUS_PATH });
      const e = await rejects(backend().upload(item(f)));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.status, 429);
      assert.strictEqual(e.retryAfterMs, 7000);
    });

    it('a file that shrinks while its chunks go out is permanent', async () => {
      const f = bigFile(20 * MB);
      let cut = false;
      const e = await rejects(
        backend().upload(
          item(f, {
            onProgress: (n) => {
              if (!cut && n >= 7 * MB) {
                cut = true;
                fs.truncateSync(f.file, 9 * MB);
              }
            },
          }),
        ),
      );
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'FILE_CHANGED');
      assert.strictEqual(server.object('captures', item(f).key), undefined);
    });

    it('connection refused is retryable', async () => {
      const gone = new SupabaseServer({ key: KEY });
      const url = await gone.start();
      await gone.stop();
      const f = bigFile(7 * MB);
      const e = await rejects(backend({ url }).upload(item(f)));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'ECONNREFUSED');
    });
  });
});
