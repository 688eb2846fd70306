'use strict';
/**
 * A Supabase-protocol server for tests, on 127.0.0.1 with a free port: the Storage REST calls the uploader makes and
 * PostgREST's insert/upsert, answering the way a real project does (see /work/shared/notes/supabase.md):
 *
 * - Storage errors other than 500 arrive as HTTP 400 with the real status as the *string* `statusCode` in a JSON body
 *   `{statusCode, code, error, message}` (storage's error handler, src/http/error-handler.ts).
 * - The API gateway checks the `apikey` header first (HTTP 401 `{"message":"Invalid API key"}`); storage then verifies
 *   the `Authorization: Bearer` JWT (400 + statusCode "403" AccessDenied), and a request without Authorization fails
 *   the route's header schema (400 InvalidRequest).
 * - `POST /storage/v1/object/{bucket}/{path}` creates, and overwrites only when `x-upsert` is exactly "true";
 *   `PUT` always overwrites.
 * - `GET /storage/v1/object/info/authenticated/{bucket}/{path}` answers the object's info as JSON (size, content type,
 *   etag...); `GET /storage/v1/object/info/{bucket}/{path}` is the same but treats a bad token as anonymous, so a
 *   private bucket then answers "Bucket not found". `HEAD /storage/v1/object/[authenticated/]{bucket}/{path}` answers
 *   headers only (errors without a body, as HEAD must).
 * - `POST /rest/v1/{table}` inserts rows: 201 with an empty body; a unique violation is 409 `{code: "23505", ...}`;
 *   `Prefer: resolution=ignore-duplicates` with `on_conflict=col` skips an existing row (201), merge-duplicates updates
 *   it; an `on_conflict` column without a unique constraint is 400 code 42P10.
 *
 * - `/storage/v1/upload/resumable[/{id}]` is Storage's TUS endpoint, served by @tus/server with @tus/file-store (into a
 *   temp folder), behind the same key checks. Its errors carry the real status with a plain-text body, as Storage's
 *   tus lifecycle answers them: 409 "The resource already exists" (an existing object without `x-upsert: true`, on
 *   creation, on every PATCH and on a DELETE of the upload: Storage's onIncomingRequest runs canUpload for every
 *   request but HEAD and OPTIONS), 400 for a DELETE (with x-upsert) of a finished upload, 404 "Bucket not found", 413
 *   "Maximum size exceeded" (`maxBytes`), 409 "Upload-Offset conflict", 404/410 for an upload it does not have.
 *   Metadata `bucketName`, `objectName`, `contentType`, `cacheControl` (seconds -> `max-age=<n>`, else `no-cache`) and
 *   `metadata` (JSON). The upload id in the URL is base64url("bucket/object/version") like Storage's. A finished upload
 *   is stored in `server.objects` exactly like a REST upload.
 *
 * Objects are kept in memory (`server.objects`, keyed "bucket/path", each {bytes, contentType, cacheControl,
 * metadata}); rows in `server.rows[table]`; every request's method, path and headers in `server.requests`.
 * Switches: `failNext(n, {status, path, text})` (500 JSON, 503 plain text like a gateway, any status, or a plain
 * `text` body as TUS answers), `throttleNext(n, {retryAfter, path})` (HTTP 429), `hangNext(n, {path})` (read the
 * request, never answer), `sizeSkew` (info reports that many bytes more than stored), `refuseOverwrite` (409 even with
 * x-upsert), `infoWithoutSize`; for TUS: `tusBytesReceived` (PATCH body bytes the TUS server read),
 * `tusCutAfter(bytes, {mode})` (once that many more PATCH bytes arrived: 'reset' the connection, or 'hang' without an
 * answer until the client goes away), `forgetTusUploads({gone})` (the server no longer has its uploads: 404, or 410
 * with `gone`), `tusLocationBase` (answer creations with a Location under this base, as a misconfigured gateway does),
 * `refuseTusHead` / `refuseTusDelete` (a status, e.g. 405: a gateway or policy in front that does not allow HEAD or
 * DELETE on upload URLs answers it, with a plain-text body, before Storage sees the request).
 */
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { Transform } = require('stream');
const { listenLocal } = require('./net');

const TUS_PATH = '/storage/v1/upload/resumable';

// The characters storage accepts in an object key (its mustBeValidKey rule).
const VALID_KEY = /^(\w|\/|!|-|\.|\*|'|\(|\)| |&|\$|@|=|;|:|\+|,|\?)*$/;

function storageError(statusCode, code, message, error) {
  return { statusCode: String(statusCode), code, error: error || code, message };
}

class SupabaseServer {
  /**
   * @param {object} [opts]
   * @param {string} [opts.key] the one API key (service role) the project accepts
   * @param {Record<string, {public?: boolean}>|string[]} [opts.buckets]
   * @param {number} [opts.maxBytes] the upload size limit (storage's default is 50 MB)
   * @param {Record<string, {unique?: string[], columns?: string[]}>} [opts.tables]
   * @param {boolean} [opts.gateway] check the apikey header like the API gateway does (default true)
   */
  constructor(opts = {}) {
    this.key = opts.key ?? 'service-role-key-for-tests';
    const buckets = opts.buckets ?? ['captures'];
    this.buckets = Array.isArray(buckets) ? Object.fromEntries(buckets.map((b) => [b, { public: false }])) : { ...buckets };
    this.maxBytes = opts.maxBytes ?? 50 * 1024 * 1024;
    this.tables = opts.tables ?? {};
    this.objects = new Map();
    this.rows = Object.fromEntries(Object.keys(this.tables).map((t) => [t, []]));
    this.requests = [];
    this.gatewayChecks = opts.gateway ?? true;
    this.sizeSkew = 0;
    // A storage policy that refuses overwrites: 409 KeyAlreadyExists for an existing object even with x-upsert.
    this.refuseOverwrite = false;
    // Info answers without a size (as older storage versions did): clients must HEAD the object.
    this.infoWithoutSize = false;
    this.faults = [];
    // TUS: the files of unfinished uploads go into a temp folder of this server, removed by stop().
    this.tusDir = undefined;
    this.tus = undefined;
    this.tusBytesReceived = 0;
    this.tusCut = undefined;
    this.tusGone = new Set();
    this.tusLocationBase = undefined;
    this.refuseTusHead = undefined;
    this.refuseTusDelete = undefined;
    this.tusPatches = new Map();
    this.tusWrites = 0;
    // Hung PATCHes (tusCutAfter 'hang'), by upload id: each entry ends its request.
    this.tusHung = new Map();
    this.sockets = new Set();
    this.hung = new Set();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start() {
    this.port = await listenLocal(this.server);
    this.url = `http://127.0.0.1:${this.port}`;
    return this.url;
  }

  async stop() {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    for (const id of [...this.tusHung.keys()]) this.releaseHung(id);
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
    if (this.tusDir) fs.rmSync(this.tusDir, { recursive: true, force: true });
  }

  /**
   * Once `bytes` more PATCH body bytes have arrived (counted from now, across requests), the PATCH under way fails:
   * 'reset' destroys its connection (what arrived so far is kept, as a store keeps what it wrote); 'hang' stops
   * reading it and never answers, until the client gives up and closes the connection.
   */
  tusCutAfter(bytes, { mode = 'reset' } = {}) {
    this.tusCut = { left: bytes, mode };
  }

  /** The TUS server no longer has the uploads it holds now: 404 (deleted), or 410 "no longer exists" with `gone`. */
  forgetTusUploads({ gone = false } = {}) {
    if (!this.tusDir) return;
    for (const f of fs.readdirSync(this.tusDir)) {
      if (f.endsWith('.json')) continue;
      if (gone) this.tusGone.add(f);
      else {
        fs.rmSync(path.join(this.tusDir, f), { force: true });
        fs.rmSync(path.join(this.tusDir, `${f}.json`), { force: true });
      }
    }
  }

  /** The ids of the uploads the TUS server holds. */
  tusUploads() {
    if (!this.tusDir || !fs.existsSync(this.tusDir)) return [];
    return fs.readdirSync(this.tusDir).filter((f) => !f.endsWith('.json'));
  }

  /**
   * The next `n` requests whose path starts with `path` fail with `status` (500 JSON, 503 plain text, other JSON).
   * @param {number} n
   * @param {{ status?: number, path?: string, text?: string }} [opts]
   */
  failNext(n, { status = 503, path = '/', text } = {}) {
    this.faults.push({ kind: 'fail', n, status, path, text });
  }

  /**
   * The next `n` requests answer HTTP 429, with a Retry-After header when given.
   * @param {number} n
   * @param {{ retryAfter?: number | string, path?: string }} [opts]
   */
  throttleNext(n, { retryAfter, path = '/' } = {}) {
    this.faults.push({ kind: 'throttle', n, retryAfter, path });
  }

  /** The next `n` requests are read and never answered (until stop()). */
  hangNext(n, { path = '/' } = {}) {
    this.faults.push({ kind: 'hang', n, path });
  }

  object(bucket, path) {
    return this.objects.get(`${bucket}/${path}`);
  }

  takeFault(pathname) {
    const f = this.faults.find((x) => x.n > 0 && pathname.startsWith(x.path));
    if (!f) return undefined;
    f.n--;
    if (f.n === 0) this.faults.splice(this.faults.indexOf(f), 1);
    return f;
  }

  async handle(req, res) {
    const u = new URL(req.url, 'http://127.0.0.1');
    this.requests.push({ method: req.method, path: u.pathname, query: u.search, headers: { ...req.headers } });
    const fault = this.takeFault(u.pathname);
    if (fault) return this.injectFault(fault, req, res);
    try {
      if (u.pathname === TUS_PATH || u.pathname.startsWith(`${TUS_PATH}/`)) await this.resumable(req, res, u);
      else if (u.pathname.startsWith('/storage/v1/')) await this.storage(req, res, u);
      else if (u.pathname.startsWith('/rest/v1/')) await this.rest(req, res, u);
      else send(res, 404, { message: 'no Route matched with those values' });
    } catch (e) {
      if (!res.headersSent) send(res, 500, storageError(500, 'InternalError', `test server: ${e.message}`));
    }
  }

  async injectFault(fault, req, res) {
    if (fault.kind === 'hang') {
      this.hung.add(res);
      req.resume();
      return;
    }
    await drain(req);
    if (fault.kind === 'throttle') {
      const headers = fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {};
      return send(res, 429, { statusCode: '429', code: 'SlowDown', error: 'too_many_connections', message: 'Too many connections issued to the database' }, headers);
    }
    if (fault.text !== undefined) {
      res.writeHead(fault.status, { 'content-type': 'text/plain', 'tus-resumable': '1.0.0', 'content-length': String(Buffer.byteLength(fault.text)) });
      return res.end(fault.text);
    }
    if (fault.status === 503) {
      // What a gateway in front of the service says when the service is down: plain text, no JSON.
      res.writeHead(503, { 'content-type': 'text/plain' });
      return res.end('upstream connect error or disconnect/reset before headers');
    }
    if (u(req).startsWith('/rest/v1/')) return send(res, fault.status, { code: 'XX000', details: null, hint: null, message: 'internal error' });
    return send(res, fault.status, storageError(fault.status, 'InternalError', 'Internal server error'));
  }

  /** The gateway's key check. Returns false when it answered. */
  gateway(req, res) {
    if (!this.gatewayChecks) return true;
    const apikey = req.headers.apikey;
    if (!apikey) {
      send(res, 401, { message: 'No API key found in request', hint: 'No `apikey` request header or url param was found.' });
      return false;
    }
    if (apikey !== this.key) {
      send(res, 401, { message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' });
      return false;
    }
    return true;
  }

  /** Storage's JWT check: 'ok', 'anon' (bad token on a route that allows it) or false when it answered. */
  jwt(req, res, allowInvalid) {
    const auth = req.headers.authorization;
    if (auth === undefined) {
      if (allowInvalid) return 'anon';
      send(res, 400, storageError(400, 'InvalidRequest', "headers must have required property 'authorization'", 'Bad Request'));
      return false;
    }
    const token = auth.replace(/^Bearer\s+/i, '');
    if (token === this.key) return 'ok';
    if (allowInvalid) return 'anon';
    send(res, 400, storageError(403, 'AccessDenied', 'invalid signature', 'Unauthorized'));
    return false;
  }

  async storage(req, res, url) {
    const parts = url.pathname.slice('/storage/v1/'.length).split('/');
    const isHead = req.method === 'HEAD';
    const fail = (body) => (isHead ? (res.writeHead(400), res.end()) : send(res, 400, body));
    if (parts[0] !== 'object' || parts.length < 3) {
      await drain(req);
      return send(res, 404, { statusCode: 404, error: 'Not Found', message: `Route ${req.method}:${url.pathname} not found` });
    }
    if (!this.gateway(req, res)) return drain(req);

    let rest = parts.slice(1);
    let mode = 'object';
    if (rest[0] === 'info') {
      mode = 'info';
      rest = rest.slice(1);
    }
    let strict = !(mode === 'info' || isHead); // the deprecated info and HEAD routes allow an invalid token
    if (rest[0] === 'authenticated') {
      strict = true;
      rest = rest.slice(1);
    }
    const bucket = decodeURIComponent(rest[0] ?? '');
    const path = rest.slice(1).map(decodeURIComponent).join('/');
    const auth = this.jwt(req, res, !strict);
    if (!auth) return drain(req);
    const b = this.buckets[bucket];

    if (req.method === 'POST' || req.method === 'PUT') {
      if (mode !== 'object') return send(res, 404, { statusCode: 404, error: 'Not Found', message: 'Route not found' });
      if (!b) {
        await drain(req);
        return fail(storageError(404, 'NoSuchBucket', 'Bucket not found', 'Bucket not found'));
      }
      if (path === '' || !VALID_KEY.test(path)) {
        await drain(req);
        return fail(storageError(400, 'InvalidKey', `Invalid key: ${path}`));
      }
      const contentType = req.headers['content-type'] || 'application/octet-stream';
      if (contentType.startsWith('multipart/form-data')) {
        await drain(req);
        return fail(storageError(400, 'InvalidRequest', 'test server: multipart uploads are not implemented'));
      }
      const declared = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
      const bytes = await readBody(req, this.maxBytes);
      if ((declared !== undefined && declared > this.maxBytes) || bytes === undefined) {
        return fail(storageError(413, 'EntityTooLarge', 'The object exceeded the maximum allowed size', 'Payload too large'));
      }
      const id = `${bucket}/${path}`;
      const upsert = !this.refuseOverwrite && (req.method === 'PUT' || req.headers['x-upsert'] === 'true');
      if (this.objects.has(id) && !upsert) return fail(storageError(409, 'KeyAlreadyExists', 'The resource already exists', 'Duplicate'));
      let metadata;
      if (typeof req.headers['x-metadata'] === 'string') {
        try {
          metadata = JSON.parse(Buffer.from(req.headers['x-metadata'], 'base64').toString('utf8'));
        } catch {
          metadata = undefined;
        }
      }
      this.putObject(id, { bytes, contentType, cacheControl: req.headers['cache-control'] ?? 'no-cache', metadata });
      return send(res, 200, { Key: id, Id: this.objects.get(id).id });
    }

    if (req.method === 'GET' || isHead) {
      await drain(req);
      if (!b || (auth === 'anon' && !b.public)) return fail(storageError(404, 'NoSuchBucket', 'Bucket not found', 'Bucket not found'));
      const obj = this.objects.get(`${bucket}/${path}`);
      if (!obj) return fail(storageError(404, 'NoSuchKey', 'Object not found', 'not_found'));
      const size = obj.bytes.length + this.sizeSkew;
      if (isHead) {
        res.writeHead(200, { 'content-type': obj.contentType, 'content-length': String(size), etag: obj.etag, 'cache-control': obj.cacheControl });
        return res.end();
      }
      if (mode === 'info') {
        return send(res, 200, {
          id: obj.id,
          name: path,
          version: obj.version,
          bucket_id: bucket,
          ...(this.infoWithoutSize ? {} : { size }),
          content_type: obj.contentType,
          cache_control: obj.cacheControl,
          etag: obj.etag,
          metadata: obj.metadata ?? null,
          last_modified: obj.updatedAt,
          created_at: obj.createdAt,
        });
      }
      res.writeHead(200, { 'content-type': obj.contentType, 'content-length': String(obj.bytes.length), etag: obj.etag });
      return res.end(obj.bytes);
    }
    await drain(req);
    return send(res, 404, { statusCode: 404, error: 'Not Found', message: `Route ${req.method}:${url.pathname} not found` });
  }

  /** Storage's TUS routes: the gateway's and Storage's key checks, then @tus/server with Storage's lifecycle hooks. */
  async resumable(req, res, url) {
    if (req.method !== 'OPTIONS') {
      if (!this.gateway(req, res)) return drain(req);
      if (!this.jwt(req, res, false)) return drain(req);
    }
    const id = url.pathname.slice(TUS_PATH.length + 1);
    const refused = id && (req.method === 'HEAD' ? this.refuseTusHead : req.method === 'DELETE' ? this.refuseTusDelete : undefined);
    if (refused) {
      await drain(req);
      const text = req.method === 'HEAD' ? '' : `${http.STATUS_CODES[refused] ?? 'Refused'}\n`;
      res.writeHead(refused, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)) });
      return res.end(text);
    }
    // What Storage's preHandler puts on the request for its hooks.
    req.uplinkUpsert = req.headers['x-upsert'] === 'true';
    // A stalled request is cut once the client is back for the same upload (Storage has an idle timeout for bodies;
    // a paused socket would not even notice that the client closed it).
    if (id) this.releaseHung(id);
    const done = () => {
      if (this.tusPatches.get(id) === req) this.tusPatches.delete(id);
    };
    if (req.method === 'PATCH' && id) {
      this.tusPatches.set(id, req);
      // @tus/server (through srvx) may never settle a request whose client went away: its answer is the end of it.
      res.once('close', done);
    }
    try {
      await this.tusServer().handle(req, res);
    } finally {
      done();
    }
  }

  /** Whether a PATCH is still being answered or its bytes written (after a client went away, for a moment). */
  tusBusy() {
    return this.tusPatches.size > 0 || this.tusWrites > 0;
  }

  tusServer() {
    if (this.tus) return this.tus;
    // Loaded on first use: @tus/server is ESM (require(esm), Node >= 20.19), and most tests never need it.
    const { Server } = require('@tus/server');
    const { FileStore } = require('@tus/file-store');
    this.tusDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-tus-'));
    const server = this;
    // @ts-expect-error FileStore declares checkOrCreateDirectory private; replacing it is the point (below).
    class ObservedStore extends FileStore {
      // FileStore makes its folder asynchronously and throws from the callback: a server stopped (its folder removed)
      // before that callback ran would crash the test process. The folder exists already; make sure of it at once.
      checkOrCreateDirectory() {
        fs.mkdirSync(this.directory, { recursive: true });
      }

      async write(readable, id, offset) {
        server.tusWrites++;
        try {
          return await super.write(server.observeTus(readable, id), id, offset);
        } finally {
          server.tusWrites--;
        }
      }
    }
    const tusError = (status_code, body) => ({ status_code, body });
    const nodeReq = (req) => req.runtime?.node?.req ?? req.node?.req;
    const decode = (id) => {
      const parts = Buffer.from(id, 'base64url').toString('utf8').split('/');
      return { bucket: parts[0], objectName: parts.slice(1, -1).join('/') };
    };
    this.tus = new Server({
      path: TUS_PATH,
      datastore: new ObservedStore({ directory: this.tusDir }),
      maxSize: () => this.maxBytes,
      disableTerminationForFinishedUploads: true,
      generateUrl: (req, { proto, host, path: base, id }) => (this.tusLocationBase ? `${this.tusLocationBase}/${id}` : `${proto}://${host}${base}/${id}`),
      namingFunction: (req, metadata) => {
        if (!metadata) throw tusError(400, 'Metadata header is required');
        const objectName = metadata.objectName || '';
        if (objectName === '' || !VALID_KEY.test(objectName)) throw tusError(400, `Invalid key: ${objectName}`);
        return Buffer.from(`${metadata.bucketName || ''}/${objectName}/${crypto.randomUUID()}`, 'utf8').toString('base64url');
      },
      // Storage's onIncomingRequest: every request but HEAD/OPTIONS must be allowed to write the object.
      onIncomingRequest: async (req, id) => {
        if (this.tusGone.has(id)) throw tusError(410, 'The file for this url no longer exists\n');
        if (req.method === 'HEAD' || req.method === 'OPTIONS') return;
        const { bucket, objectName } = decode(id);
        if (!this.buckets[bucket]) throw tusError(404, 'Bucket not found');
        const upsert = !this.refuseOverwrite && nodeReq(req)?.uplinkUpsert === true;
        if (this.objects.has(`${bucket}/${objectName}`) && !upsert) throw tusError(409, 'The resource already exists');
      },
      onUploadCreate: async (req, upload) => {
        const { bucket } = decode(upload.id);
        if (!this.buckets[bucket]) throw tusError(404, 'Bucket not found');
        const metadata = { ...(upload.metadata ?? {}) };
        metadata.cacheControl = /^-?\d+$/.test(metadata.cacheControl || '') ? `max-age=${metadata.cacheControl}` : 'no-cache';
        return { metadata };
      },
      // Storage's completeUpload: the object appears (or is overwritten) like a REST upload's.
      onUploadFinish: async (req, upload) => {
        const { bucket, objectName } = decode(upload.id);
        const key = `${bucket}/${objectName}`;
        const upsert = !this.refuseOverwrite && nodeReq(req)?.uplinkUpsert === true;
        if (this.objects.has(key) && !upsert) throw tusError(409, 'The resource already exists');
        const bytes = await fs.promises.readFile(path.join(this.tusDir, upload.id));
        let metadata;
        if (upload.metadata?.metadata) {
          try {
            metadata = JSON.parse(upload.metadata.metadata);
          } catch {
            metadata = undefined;
          }
        }
        this.putObject(key, { bytes, contentType: upload.metadata?.contentType || 'application/octet-stream', cacheControl: upload.metadata?.cacheControl ?? 'no-cache', metadata });
        return { headers: { 'Tus-Complete': '1' } };
      },
    });
    return this.tus;
  }

  /** Counts the PATCH bytes the TUS store reads, and applies `tusCutAfter`. */
  observeTus(readable, id) {
    const server = this;
    const req = this.tusPatches.get(id);
    const counter = new Transform({
      transform(chunk, _enc, cb) {
        server.tusBytesReceived += chunk.length;
        const cut = server.tusCut;
        if (cut) {
          cut.left -= chunk.length;
          if (cut.left <= 0) {
            server.tusCut = undefined;
            if (cut.mode === 'hang') {
              // Nothing more is read or written, and no answer goes out, until the next request for this upload.
              server.tusHung.set(id, () => {
                req?.socket.destroy();
                cb(new Error('the request stalled'));
              });
              return;
            }
            cb(null, chunk);
            if (req) setImmediate(() => req.socket.destroy());
            return;
          }
        }
        cb(null, chunk);
      },
    });
    readable.on('error', (e) => counter.destroy(e));
    return readable.pipe(counter);
  }

  releaseHung(id) {
    const release = this.tusHung.get(id);
    if (!release) return;
    this.tusHung.delete(id);
    release();
  }

  putObject(id, { bytes, contentType, cacheControl, metadata }) {
    const now = new Date().toISOString();
    const prev = this.objects.get(id);
    this.objects.set(id, {
      id: prev?.id ?? crypto.randomUUID(),
      bytes,
      contentType,
      cacheControl,
      metadata,
      etag: `"${crypto.createHash('md5').update(bytes).digest('hex')}"`,
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
      version: crypto.randomUUID(),
    });
    return this.objects.get(id);
  }

  async rest(req, res, url) {
    const raw = await readBody(req, 1024 * 1024);
    if (!this.gateway(req, res)) return;
    const auth = req.headers.authorization;
    if (auth !== undefined && auth.replace(/^Bearer\s+/i, '') !== this.key) {
      return send(res, 401, { code: 'PGRST301', details: null, hint: null, message: 'JWSError JWSInvalidSignature' });
    }
    const table = decodeURIComponent(url.pathname.slice('/rest/v1/'.length));
    const def = this.tables[table];
    if (!def) {
      return send(res, 404, { code: 'PGRST205', details: null, hint: null, message: `Could not find the table 'public.${table}' in the schema cache` });
    }
    if (req.method !== 'POST') return send(res, 405, { code: 'PGRST117', details: null, hint: null, message: `Unsupported HTTP method: ${req.method}` });
    let body;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return send(res, 400, { code: 'PGRST102', details: null, hint: null, message: 'Empty or invalid json' });
    }
    const rows = Array.isArray(body) ? body : [body];
    const prefer = String(req.headers.prefer ?? '')
      .split(',')
      .map((s) => s.trim());
    const resolution = prefer.find((p) => p.startsWith('resolution='))?.slice('resolution='.length);
    const unique = def.unique ?? [];
    const onConflict = url.searchParams.get('on_conflict') ?? (resolution ? unique[0] : undefined);
    if (resolution && onConflict !== undefined && !unique.includes(onConflict)) {
      return send(res, 400, { code: '42P10', details: null, hint: null, message: 'there is no unique or exclusion constraint matching the ON CONFLICT specification' });
    }
    for (const row of rows) {
      for (const col of Object.keys(row)) {
        if (def.columns && !def.columns.includes(col)) {
          return send(res, 400, { code: 'PGRST204', details: null, hint: null, message: `Could not find the '${col}' column of '${table}' in the schema cache` });
        }
      }
    }
    // One statement: every row is checked before any is written.
    const stored = this.rows[table];
    const plan = [];
    for (const row of rows) {
      const target = resolution && onConflict !== undefined ? stored.find((r) => r[onConflict] === row[onConflict] && row[onConflict] != null) : undefined;
      if (target) {
        plan.push({ row, target });
        continue;
      }
      for (const col of unique) {
        if (row[col] == null) continue;
        if (stored.some((r) => r[col] === row[col]) || plan.some((p) => !p.target && p.row[col] === row[col])) {
          return send(res, 409, {
            code: '23505',
            details: `Key (${col})=(${row[col]}) already exists.`,
            hint: null,
            message: `duplicate key value violates unique constraint "${table}_${col}_key"`,
          });
        }
      }
      plan.push({ row });
    }
    for (const { row, target } of plan) {
      if (!target) stored.push({ ...row });
      else if (resolution === 'merge-duplicates') Object.assign(target, row);
    }
    res.writeHead(201, { 'content-length': '0' });
    res.end();
  }
}

function u(req) {
  return new URL(req.url, 'http://127.0.0.1').pathname;
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function drain(req) {
  return new Promise((resolve) => {
    if (req.readableEnded) return resolve();
    req.on('end', resolve);
    req.on('error', resolve);
    req.on('close', resolve);
    req.resume();
  });
}

/** The whole body, or undefined once it passes `limit` bytes (the rest is read and dropped). */
function readBody(req, limit) {
  return new Promise((resolve) => {
    const chunks = [];
    let n = 0;
    let over = false;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', () => resolve(over ? undefined : Buffer.concat(chunks)));
  });
}

module.exports = { SupabaseServer, TUS_PATH };

// Run alone as a child process (`fork(this file, [JSON options])`), for a test that measures its own memory without
// the server's: the URL is sent over IPC; the server ends when the parent goes away.
if (require.main === module) {
  const opts = JSON.parse(process.argv[2] || '{}');
  const server = new SupabaseServer(opts);
  if (opts.maxBytes) server.maxBytes = opts.maxBytes;
  server.start().then((url) => process.send?.({ url }));
  process.on('disconnect', () => {
    server.stop().finally(() => process.exit(0));
  });
}
