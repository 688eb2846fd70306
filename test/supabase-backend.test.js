'use strict';
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { SupabaseBackend, parseSupabaseSettings, buildRow, BUFFER_LIMIT_BYTES } = require('../dist/lib/upload/backends/supabase');
const { Bandwidth } = require('../dist/lib/upload/body');
const { UploadError } = require('../dist/lib/upload/types');
const { SupabaseServer } = require('./support/supabase-server');
const { tmpDir, rmrf } = require('./support/tmp');

const KEY = 'eyJhbGciOiJIUzI1NiJ9.test-service-role.s3cr3t-signature';
const COLUMNS = {
  image_url: 'url',
  camera_name: 'camera',
  capture_timestamp: 'capturedAt',
  resolution: 'resolution',
  file_size_kb: 'kb',
  item_id: 'itemId',
  session: 'fields.session',
};

describe('Supabase backend', function () {
  this.timeout(20000);
  let server;
  let dir;
  const closers = [];

  beforeEach(async () => {
    server = new SupabaseServer({
      key: KEY,
      buckets: ['captures'],
      tables: {
        captures: { unique: ['image_url'], columns: Object.keys(COLUMNS) },
        loose: { unique: [] },
      },
    });
    await server.start();
    dir = tmpDir('uplink-supabase-');
  });

  afterEach(async () => {
    while (closers.length) await closers.pop()();
    await server.stop();
    rmrf(dir);
  });

  function backend(overrides = {}, bandwidth) {
    const b = new SupabaseBackend({ url: server.url, key: KEY, bucket: 'captures', columns: {}, timeoutMs: 3000, ...overrides }, bandwidth);
    closers.push(() => b.close());
    return b;
  }

  function jpeg(n, seed = 1) {
    const buf = crypto.createHash('sha256').update(String(seed)).digest();
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = buf[i % buf.length] ^ (i & 0xff);
    return out;
  }

  function item(overrides = {}) {
    const body = overrides.body ?? (overrides.file ? undefined : jpeg(1000));
    const bytes = overrides.bytes ?? (body ? body.length : fs.statSync(overrides.file).size);
    return {
      key: 'porch/2026-01-02_03-04-05_640_480.jpg',
      body,
      bytes,
      contentType: 'image/jpeg',
      metadata: { camera: 'porch', 'captured-at': '2026-01-02T03:04:05.000Z', 'item-id': '7' },
      fields: { camera: 'porch', capturedAt: '2026-01-02T03:04:05.000Z', width: 640, height: 480, id: 7, session: 'night-1', topic: 'gpio/17' },
      signal: new AbortController().signal,
      ...overrides,
    };
  }

  async function rejects(promise) {
    try {
      await promise;
    } catch (e) {
      assert.ok(e instanceof UploadError, `expected an UploadError, got ${e && e.stack}`);
      return e;
    }
    assert.fail('the upload succeeded but should have failed');
  }

  function uploads() {
    return server.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/storage/v1/object/'));
  }

  describe('storing objects', () => {
    it('uploads a file: the stored bytes are identical and the content type is image/jpeg', async () => {
      const file = path.join(dir, 'shot.jpg');
      const data = jpeg(150 * 1024, 2);
      fs.writeFileSync(file, data);
      const it = item({ file, body: undefined });
      const result = await backend().upload(it);

      const stored = server.object('captures', it.key);
      assert.ok(stored, 'the object is stored');
      assert.ok(stored.bytes.equals(data), 'the stored bytes equal the file');
      assert.strictEqual(stored.contentType, 'image/jpeg');
      assert.deepStrictEqual(stored.metadata, it.metadata);
      assert.deepStrictEqual(result, { key: it.key, url: `${server.url}/storage/v1/object/captures/${it.key}`, bytes: data.length, status: 200 });
    });

    it('uploads a Buffer with its own content type, not text/plain', async () => {
      const data = jpeg(3000, 3);
      await backend().upload(item({ key: 'inline/a.png', body: data, contentType: 'image/png' }));
      const stored = server.object('captures', 'inline/a.png');
      assert.ok(stored.bytes.equals(data));
      assert.strictEqual(stored.contentType, 'image/png');
    });

    it('sends the key as apikey and as Bearer token, upserts, and checks the size on the authenticated info route', async () => {
      await backend({ cacheControl: '600' }).upload(item());
      const post = uploads()[0];
      assert.strictEqual(post.headers.apikey, KEY);
      assert.strictEqual(post.headers.authorization, `Bearer ${KEY}`);
      assert.strictEqual(post.headers['x-upsert'], 'true');
      assert.strictEqual(post.headers['content-type'], 'image/jpeg');
      assert.strictEqual(post.headers['cache-control'], 'max-age=600');
      const info = server.requests.find((r) => r.path.startsWith('/storage/v1/object/info/'));
      assert.ok(info, 'the stored size is checked');
      assert.ok(info.path.startsWith('/storage/v1/object/info/authenticated/captures/'), info.path);
      assert.strictEqual(info.headers.authorization, `Bearer ${KEY}`);
    });

    it('a retry of the same item overwrites its object: one object, the latest bytes', async () => {
      const b = backend();
      await b.upload(item({ body: jpeg(1000, 4) }));
      const second = jpeg(1000, 5);
      await b.upload(item({ body: second }));
      assert.strictEqual(server.objects.size, 1);
      assert.ok(server.object('captures', item().key).bytes.equals(second));
      assert.deepStrictEqual(
        uploads().map((r) => r.headers['x-upsert']),
        ['true', 'true'],
      );
    });

    it('sends a file larger than the buffer limit through the resumable endpoint, not in one request', async () => {
      server.maxBytes = 64 * 1024 * 1024;
      const file = path.join(dir, 'clip.mp4');
      const data = jpeg(BUFFER_LIMIT_BYTES + 12345, 6);
      fs.writeFileSync(file, data);
      const progress = [];
      await backend().upload(item({ key: 'clips/clip.mp4', file, body: undefined, contentType: 'video/mp4', onProgress: (n) => progress.push(n) }));
      const stored = server.object('captures', 'clips/clip.mp4');
      assert.ok(stored.bytes.equals(data), 'the stored bytes equal the file');
      assert.strictEqual(stored.contentType, 'video/mp4');
      assert.strictEqual(uploads().length, 0, 'no single-request upload');
      assert.strictEqual(server.tusBytesReceived, data.length);
      assert.strictEqual(progress[progress.length - 1], data.length);
    });

    it('streams through the bandwidth limit, reporting cumulative progress', async () => {
      const data = jpeg(200 * 1024, 7);
      const progress = [];
      await backend({}, new Bandwidth(50 * 1024 * 1024)).upload(item({ body: data, onProgress: (n) => progress.push(n) }));
      assert.ok(server.object('captures', item().key).bytes.equals(data));
      assert.ok(progress.length > 1, 'progress in steps');
      assert.strictEqual(progress[progress.length - 1], data.length);
    });

    it('counts an object already stored with our size as uploaded when the store refuses to overwrite', async () => {
      const b = backend();
      await b.upload(item());
      server.refuseOverwrite = true;
      const result = await b.upload(item());
      assert.strictEqual(result.bytes, 1000);
      const e = await rejects(b.upload(item({ body: jpeg(999) })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'KeyAlreadyExists');
    });

    it('reads the stored size from a HEAD when the info answer has none', async () => {
      server.infoWithoutSize = true;
      await backend().upload(item());
      assert.ok(server.requests.some((r) => r.method === 'HEAD' && r.path.startsWith('/storage/v1/object/authenticated/captures/')));
      server.sizeSkew = 3;
      const e = await rejects(backend().upload(item()));
      assert.strictEqual(e.code, 'SIZE_MISMATCH');
    });

    it('reports the public URL when one is configured', async () => {
      const base = `${server.url}/storage/v1/object/public/captures`;
      const result = await backend({ publicUrl: base }).upload(item());
      assert.strictEqual(result.url, `${base}/${item().key}`);
    });

    it('probes the storage API endpoint', () => {
      assert.strictEqual(backend().endpoint(), `${server.url}/storage/v1/`);
    });
  });

  describe('the table row', () => {
    const rowSettings = { table: 'captures', columns: COLUMNS, conflictColumn: 'image_url' };

    it('inserts one row with the column mapping', async () => {
      await backend(rowSettings).upload(item());
      assert.deepStrictEqual(server.rows.captures, [
        {
          image_url: `${server.url}/storage/v1/object/captures/${item().key}`,
          camera_name: 'porch',
          capture_timestamp: '2026-01-02T03:04:05.000Z',
          resolution: '640x480',
          file_size_kb: 1,
          item_id: 7,
          session: 'night-1',
        },
      ]);
      const insert = server.requests.find((r) => r.path === '/rest/v1/captures');
      assert.strictEqual(insert.headers.apikey, KEY);
      assert.strictEqual(insert.headers.authorization, `Bearer ${KEY}`);
      assert.match(insert.headers.prefer, /resolution=ignore-duplicates/);
      assert.strictEqual(new URLSearchParams(insert.query).get('on_conflict'), 'image_url');
    });

    it('a retry of the same item leaves exactly one row', async () => {
      const b = backend(rowSettings);
      await b.upload(item());
      await b.upload(item());
      assert.strictEqual(server.rows.captures.length, 1);
      assert.strictEqual(server.objects.size, 1);
    });

    it('a row that fails with 503 is retryable, and the retry writes it once', async () => {
      const b = backend(rowSettings);
      server.failNext(1, { status: 503, path: '/rest/v1/' });
      const e = await rejects(b.upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.match(e.message, /object was stored, but the row/);
      assert.strictEqual(server.rows.captures.length, 0);
      await b.upload(item());
      assert.strictEqual(server.rows.captures.length, 1);
    });

    it('a duplicate row (23505) counts as written', async () => {
      // Another writer already put the row there, and this table conflicts on a column we did not name.
      server.rows.captures.push({ image_url: `${server.url}/storage/v1/object/captures/${item().key}` });
      server.tables.captures.unique.push('camera_name');
      await backend({ ...rowSettings, conflictColumn: 'camera_name' }).upload(item());
      assert.strictEqual(server.rows.captures.length, 1);
    });

    it('a conflict column without a unique constraint is permanent and says why', async () => {
      const e = await rejects(backend({ table: 'loose', columns: { path: 'key' }, conflictColumn: 'path' }).upload(item()));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.match(e.message, /UNIQUE constraint/);
    });

    it('a missing table is permanent', async () => {
      const e = await rejects(backend({ ...rowSettings, table: 'nope' }).upload(item()));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'PGRST205');
    });

    it('builds kb with one decimal, leaves unknown values out and reads nested message fields', () => {
      const row = buildRow(
        { bucket: 'b', columns: { k: 'key', kb: 'kb', cam: 'camera', site: 'fields.meta.site', n: 'bucket', r: 'resolution', sha: 'sha256', id: 'itemId' } },
        { key: 'x/y.jpg', bytes: 1536, contentType: 'image/jpeg', sha256: 'ab', fields: { meta: { site: 'north' }, item: { id: 'q-9' } } },
        'u',
      );
      assert.deepStrictEqual(row, { k: 'x/y.jpg', kb: 1.5, site: 'north', n: 'b', sha: 'ab', id: 'q-9' });
    });
  });

  describe('failures', () => {
    it('a missing bucket is permanent', async () => {
      const e = await rejects(backend({ bucket: 'nope' }).upload(item()));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'NoSuchBucket');
      assert.match(e.message, /bucket "nope" not found/);
    });

    it('a wrong key is permanent, and the key is in no message', async () => {
      const wrong = 'eyJhbGciOiJIUzI1NiJ9.wrong-key.zzz';
      const e = await rejects(backend({ key: wrong }).upload(item()));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.status, 401);
      assert.ok(!JSON.stringify({ m: e.message, s: String(e), stack: e.stack, e }).includes(wrong), 'the key does not leak');
      assert.ok(!e.message.includes(KEY));
    });

    it('a token storage cannot verify is permanent access denied (HTTP 400, statusCode 403)', async () => {
      server.gatewayChecks = false;
      const wrong = 'eyJhbGciOiJIUzI1NiJ9.other.sig';
      const e = await rejects(backend({ key: wrong }).upload(item()));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.status, 403);
      assert.strictEqual(e.code, 'AccessDenied');
      assert.match(e.message, /access denied/);
      assert.ok(!e.message.includes(wrong));
    });

    it('an object over the size limit (413) is permanent', async () => {
      server.maxBytes = 1000;
      const e = await rejects(backend().upload(item({ body: jpeg(2000) })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.status, 413);
      assert.strictEqual(e.code, 'EntityTooLarge');
    });

    it('a key the store refuses (InvalidKey) is permanent', async () => {
      const e = await rejects(backend().upload(item({ key: 'cam/50%.jpg' })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'InvalidKey');
    });

    it('500 is retryable', async () => {
      server.failNext(1, { status: 500 });
      const e = await rejects(backend().upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.status, 500);
    });

    it('a gateway 503 (plain text) is retryable', async () => {
      server.failNext(1, { status: 503 });
      const e = await rejects(backend().upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.status, 503);
    });

    it('429 is retryable and carries Retry-After', async () => {
      server.throttleNext(1, { retryAfter: 7 });
      const e = await rejects(backend().upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.status, 429);
      assert.strictEqual(e.retryAfterMs, 7000);
    });

    it('connection refused (server stopped) is retryable', async () => {
      const gone = new SupabaseServer({ key: KEY });
      const url = await gone.start();
      await gone.stop();
      const e = await rejects(backend({ url }).upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'ECONNREFUSED');
    });

    it('a server that never answers times out, retryable', async () => {
      server.hangNext(1);
      const e = await rejects(backend({ timeoutMs: 300 }).upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'TIMEOUT');
    });

    it('a verify step that never answers times out too', async () => {
      server.hangNext(1, { path: '/storage/v1/object/info/' });
      const e = await rejects(backend({ timeoutMs: 300 }).upload(item()));
      assert.strictEqual(e.code, 'TIMEOUT');
    });

    it('a stored size that differs is retryable', async () => {
      server.sizeSkew = -1;
      const e = await rejects(backend().upload(item()));
      assert.strictEqual(e.errorClass, 'retryable');
      assert.strictEqual(e.code, 'SIZE_MISMATCH');
    });

    it('a file that is gone is permanent', async () => {
      const e = await rejects(backend().upload(item({ file: path.join(dir, 'missing.jpg'), body: undefined, bytes: 10 })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'FILE_GONE');
    });

    it('a large (streamed) file that is gone is permanent, and no stream error escapes', async () => {
      const e = await rejects(backend().upload(item({ file: path.join(dir, 'missing.mp4'), body: undefined, bytes: BUFFER_LIMIT_BYTES + 1 })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'FILE_GONE');
    });

    it('a slow upload that keeps moving is not cut off by the (idle) timeout', async () => {
      const data = jpeg(300 * 1024, 8);
      // 100 KB/s: the body takes about two seconds, longer than the timeout, but no 64 KB chunk waits that long.
      await backend({ timeoutMs: 1200 }, new Bandwidth(100 * 1024)).upload(item({ body: data }));
      assert.ok(server.object('captures', item().key).bytes.equals(data));
    });

    it('a file that is shorter than queued while it streams is permanent', async () => {
      const file = path.join(dir, 'shrunk.mp4');
      fs.writeFileSync(file, jpeg(5000));
      const e = await rejects(backend().upload(item({ file, body: undefined, bytes: BUFFER_LIMIT_BYTES + 1 })));
      assert.strictEqual(e.errorClass, 'permanent');
      assert.strictEqual(e.code, 'FILE_CHANGED');
      assert.strictEqual(server.objects.size, 0);
    });

    it('an aborted item (node closing) is retryable', async () => {
      server.hangNext(1);
      const ac = new AbortController();
      const p = backend({ timeoutMs: 5000 }).upload(item({ signal: ac.signal }));
      setTimeout(() => ac.abort(), 100);
      const e = await rejects(p);
      assert.strictEqual(e.errorClass, 'retryable');
    });
  });

  describe('parseSupabaseSettings', () => {
    it('reads text-line and JSON column mappings and defaults the unique column to the one mapped to key or url', () => {
      const s = parseSupabaseSettings(
        {
          url: 'https://xyz.supabase.co/',
          bucket: 'captures',
          table: 'captures',
          columns: 'image_url = url\n# comment\n\ncamera_name=camera\nsession = fields.session',
          timeout: '30',
          cacheControl: 'max-age=120',
        },
        { key: ` ${KEY} ` },
      );
      assert.deepStrictEqual(s, {
        url: 'https://xyz.supabase.co',
        key: KEY,
        bucket: 'captures',
        table: 'captures',
        columns: { image_url: 'url', camera_name: 'camera', session: 'fields.session' },
        conflictColumn: 'image_url',
        timeoutMs: 30000,
        cacheControl: '120',
        publicUrl: undefined,
      });
      const j = parseSupabaseSettings(
        { url: 'http://127.0.0.1:54321', bucket: 'b', table: 't', columns: '{"path":"key","image_url":"url"}' },
        { key: KEY },
      );
      assert.strictEqual(j.conflictColumn, 'path');
      assert.strictEqual(j.timeoutMs, 60000);
    });

    it('lists every problem at once and never quotes the key', () => {
      const badKey = 'secret with spaces';
      let err;
      try {
        parseSupabaseSettings(
          { url: 'https://user:pw@xyz.supabase.co', bucket: '', table: 'bad-table', columns: 'image_url = url\nbad col = camera\nx = nosuch', conflictColumn: 'other' },
          { key: badKey },
        );
      } catch (e) {
        err = e;
      }
      assert.ok(err, 'it throws');
      for (const part of [/user name or password/, /Bucket is required/, /Table "bad-table"/, /Column "bad col"/, /unknown field "nosuch"/, /API key contains/, /Unique column "other"/]) {
        assert.match(err.message, part);
      }
      assert.ok(!err.message.includes(badKey));
    });

    it('requires the key, an http(s) project URL, and a unique column for rows', () => {
      assert.throws(() => parseSupabaseSettings({ url: 'ftp://x', bucket: 'b' }, {}), /http:\/\/ or https:\/\/.*API key is required/);
      assert.throws(() => parseSupabaseSettings({ url: 'https://x.supabase.co/storage/v1', bucket: 'b' }, { key: KEY }), /without \/storage\/v1/);
      assert.throws(() => parseSupabaseSettings({ url: 'https://x.supabase.co', bucket: 'b', table: 't', columns: 'cam = camera' }, { key: KEY }), /Map a column to key or url/);
      assert.throws(() => parseSupabaseSettings({ url: 'https://x.supabase.co', bucket: 'b', table: 't', columns: '' }, { key: KEY }), /Columns are required/);
      assert.throws(() => parseSupabaseSettings({ url: 'https://x.supabase.co', bucket: 'b', columns: '{"a":' }, { key: KEY }), /not a JSON object/);
      const plain = parseSupabaseSettings({ url: 'https://x.supabase.co', bucket: 'b' }, { key: KEY });
      assert.strictEqual(plain.table, undefined);
      assert.strictEqual(plain.conflictColumn, undefined);
    });
  });
});

describe('Supabase target in Node-RED, wired into a real offline queue', function () {
  const helper = require('node-red-node-test-helper');
  const nodePath = require('path');
  const uploaderNode = require('../dist/nodes/uploader/uploader.js');
  const supabaseConfigNode = require('../dist/nodes/supabase-config/supabase-config.js');
  const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
  const { SupabaseServer: Server } = require('./support/supabase-server');
  const { tmpDir: mkTmp, rmrf: rm, waitFor: wait } = require('./support/tmp');
  helper.init(require.resolve('node-red'));
  let supa;
  let work;
  beforeEach(async function () {
    work = mkTmp();
    supa = new Server({ buckets: ['clips'], tables: { captures: { unique: ['image_url'], columns: ['image_url', 'camera_name', 'file_size_kb', 'session'] } } });
    await supa.start();
    await new Promise((r) => helper.startServer(r));
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    await supa.stop();
    rm(work);
  });

  it('stores each capture once with one row, even when a row write fails and the item is retried', async function () {
    const flowJson = [
      {
        id: 's',
        type: 'uplink-supabase-config',
        url: supa.url,
        bucket: 'clips',
        table: 'captures',
        columns: 'image_url = url\ncamera_name = camera\nfile_size_kb = kb\nsession = fields.session',
        timeout: 5,
      },
      { id: 'q', type: 'uplink-offline-queue', db: nodePath.join(work, 'q.db'), concurrency: 2, backoffBase: 0.1, backoffCap: 0.3, statsInterval: 0.1, wires: [['up'], [], ['stats']] },
      { id: 'up', type: 'uplink-uploader', backend: 'supabase', supabase: 's', keyTemplate: '{camera}/{name}', wires: [['q'], ['q', 'bad']] },
      { id: 'bad', type: 'helper' },
      { id: 'stats', type: 'helper' },
    ];
    await helper.load([supabaseConfigNode, queueNode, uploaderNode], flowJson, { s: { key: supa.key } });
    const q = helper.getNode('q');
    await q.ready;
    const stats = [];
    const bad = [];
    helper.getNode('stats').on('input', (m) => stats.push(m.payload));
    helper.getNode('bad').on('input', (m) => bad.push(m));
    supa.failNext(2, { status: 500, path: '/rest/v1/' });
    const files = [];
    for (let i = 0; i < 4; i++) {
      const f = nodePath.join(work, `clip${i}.jpg`);
      require('fs').writeFileSync(f, Buffer.alloc(3000 + i, i));
      files.push(f);
      q.receive({ uplink: { file: f, camera: 'court-1' }, session: 'S-42' });
    }
    await wait(() => stats.length && stats[stats.length - 1].uploaded === 4, { what: 'all four uploaded', timeout: 15000 });
    assert.ok(bad.length >= 1, 'a row write failed at least once and was retried');
    assert.ok(bad.every((m) => m.uplink.error.class === 'retryable'));
    assert.strictEqual(supa.rows.captures.length, 4, 'one row per item, never two');
    for (const f of files) {
      const o = supa.object('clips', `court-1/${nodePath.basename(f)}`);
      assert.ok(o && o.bytes.equals(require('fs').readFileSync(f)), 'object stored byte-identical');
      assert.strictEqual(o.contentType, 'image/jpeg');
    }
    assert.deepStrictEqual([...new Set(supa.rows.captures.map((r) => r.session))], ['S-42']);
    assert.ok(!JSON.stringify(bad).includes(supa.key), 'the key appears in no message');
  });
});
