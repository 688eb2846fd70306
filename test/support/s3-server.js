'use strict';
// A real S3-protocol server (s3rver) on 127.0.0.1 for tests and benchmarks, stoppable and restartable on its port.
// s3rver checks access key ids but not signatures, and stores aws-chunked framing as data: the uploader's own size
// check is what catches the latter.
//
// s3rver has multipart upload (create, upload part, complete) but not ListParts, AbortMultipartUpload or
// ListMultipartUploads, which resuming an upload needs. `multipartExtensions` adds them over s3rver's own files
// (<dir>/<bucket>/._S3rver_uploads/<uploadId>/<part>) with S3's XML answers, answers NoSuchUpload (404) for
// parts and completions of an upload that is gone, and InvalidPart for a completion naming a part it does not hold
// (or with another ETag), like S3.
//
// Options for the stores and policies an uploader meets:
// - `multipartExtensions: false`: plain s3rver, the one `npm start` embeds: ListParts and AbortMultipartUpload answer
//   405 MethodNotAllowed, ListMultipartUploads 501 NotImplemented, and a completion does not check its parts.
// - `refuse: { listParts, abort }` (also settable later, `server.refuse.listParts = ...`): that request is answered
//   with this S3 error code: 'AccessDenied' (403, as AWS answers a key whose IAM policy lacks
//   s3:ListMultipartUploadParts or s3:AbortMultipartUpload), 'MethodNotAllowed' (405) or 'NotImplemented' (501).
//
// Either way it counts the bytes of every object and part received (`server.bytesReceived`), so a test can prove a
// resumed upload sent less than a fresh one, and the ListParts and abort requests (`server.calls`).
const fs = require('fs');
const os = require('os');
const path = require('path');
const S3rver = require('s3rver');
const { Readable, Transform } = require('stream');
const { S3Client, GetObjectCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');

const REFUSALS = {
  AccessDenied: [403, 'Access Denied'],
  MethodNotAllowed: [405, 'The specified method is not allowed against this resource.'],
  NotImplemented: [501, 'A header you provided implies functionality that is not implemented.'],
};

class S3Server {
  /**
   * @param {{ buckets?: string[], directory?: string, multipartExtensions?: boolean,
   *   refuse?: { listParts?: string, abort?: string } }} [opts] refuse: AccessDenied, MethodNotAllowed or NotImplemented
   */
  constructor({ buckets = ['uplink'], directory, multipartExtensions = true, refuse = {} } = {}) {
    this.buckets = buckets;
    this.extended = multipartExtensions;
    this.refuse = { ...refuse };
    /** ListParts and AbortMultipartUpload requests received, answered or refused. */
    this.calls = { listParts: 0, abort: 0 };
    this.ownDir = !directory;
    this.directory = directory || fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-s3rver-'));
    this.bytesReceived = 0;
    /** Multipart uploads created, completed and aborted (ids), for tests. */
    this.multipart = { created: [], completed: [], aborted: [] };
  }

  /** The multipart uploads s3rver still holds, as { uploadId, key, parts }. */
  openUploads(bucket = this.buckets[0]) {
    return listUploadDirs(this.directory, bucket, this.multipart.aborted).map((u) => ({ uploadId: u.uploadId, key: u.key, parts: listParts(u.dir).length }));
  }

  async start(port = 0) {
    this.server = new S3rver({
      port,
      address: '127.0.0.1',
      silent: true,
      directory: this.directory,
      configureBuckets: this.buckets.map((name) => ({ name })),
    });
    // Before s3rver's router (the last middleware), after its bucket and virtual-host handling.
    this.server.middleware.splice(this.server.middleware.length - 1, 0, multipartExtensions(this));
    const info = await this.server.run();
    this.port = info.port;
    this.endpoint = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    if (this.server) await this.server.close();
    this.server = undefined;
  }

  async destroy() {
    await this.stop();
    this.client?.destroy();
    if (this.ownDir) fs.rmSync(this.directory, { recursive: true, force: true });
  }

  /** The settings an S3 config node needs to reach this server. */
  config(extra = {}) {
    return { endpoint: this.endpoint, region: 'us-east-1', bucket: this.buckets[0], forcePathStyle: true, ...extra };
  }

  get credentials() {
    return { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  }

  s3() {
    if (!this.client || this.clientPort !== this.port) {
      this.client?.destroy();
      this.client = new S3Client({ region: 'us-east-1', endpoint: this.endpoint, forcePathStyle: true, credentials: this.credentials });
      this.clientPort = this.port;
    }
    return this.client;
  }

  async list(bucket = this.buckets[0]) {
    const out = [];
    let token;
    for (let i = 0; i < 100; i++) {
      const r = await this.s3().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      out.push(...(r.Contents || []).map((o) => ({ key: o.Key, size: o.Size })));
      if (!r.IsTruncated) break;
      token = r.NextContinuationToken;
    }
    return out;
  }

  async get(key, bucket = this.buckets[0]) {
    const r = await this.s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { body: Buffer.from(await r.Body.transformToByteArray()), contentType: r.ContentType, metadata: r.Metadata };
  }
}

const XML = (body) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const esc = (v) => String(v).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);

/** The `<uploadId>` folders s3rver keeps for a bucket (`<dir>/<bucket>/._S3rver_uploads/<uploadId>`). */
function listUploadDirs(root, bucket, aborted = []) {
  const base = path.join(root, bucket, '._S3rver_uploads');
  let ids = [];
  try {
    ids = fs.readdirSync(base);
  } catch {
    return [];
  }
  return ids.flatMap((id) => {
    if (aborted.includes(id)) return [];
    const dir = path.join(base, id);
    try {
      return [{ uploadId: id, key: fs.readFileSync(path.join(dir, 'key'), 'utf8'), dir }];
    } catch {
      return [];
    }
  });
}

function listParts(dir) {
  return fs
    .readdirSync(dir)
    .filter((n) => /^[0-9]+$/.test(n))
    .map((n) => {
      const file = path.join(dir, n);
      let md5 = '';
      try {
        md5 = fs.readFileSync(`${file}.md5`, 'utf8');
      } catch {
        return null; // still being written
      }
      const st = fs.statSync(file);
      return { number: Number(n), size: st.size, etag: md5, modified: st.mtime };
    })
    .filter(Boolean)
    .sort((a, b) => a.number - b.number);
}

function noSuchUpload(ctx, uploadId) {
  ctx.status = 404;
  ctx.type = 'application/xml';
  ctx.body = XML(`<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${esc(uploadId)}</UploadId></Error>`);
}

/** An S3 error answer with this code (see REFUSALS), as a store or an IAM policy refuses a request. */
function refusal(ctx, code) {
  const [status, message] = REFUSALS[code] ?? [403, code];
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = XML(`<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error>`);
}

/** A completion must name parts the upload holds, with their ETags (quotes aside), else S3 answers 400 InvalidPart. */
async function checkCompletion(ctx, up) {
  const chunks = [];
  for await (const c of ctx.req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const held = new Map(listParts(up.dir).map((p) => [p.number, p.etag]));
  const named = [...body.toString('utf8').matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
    n: Number((/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1]) || [])[1]),
    etag: ((/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1]) || [])[1] || '').replace(/&quot;|"/g, ''),
  }));
  const bad = named.find((p) => held.get(p.n) !== p.etag);
  // s3rver reads the body again from ctx.req.
  const again = Readable.from([body]);
  for (const k of ['headers', 'method', 'url', 'httpVersion', 'socket', 'connection', 'rawHeaders']) again[k] = ctx.req[k];
  ctx.req = again;
  return bad;
}

function multipartExtensions(server) {
  return async (ctx, next) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    if (!m) return next();
    const bucket = decodeURIComponent(m[1]);
    const key = m[2] === undefined || m[2] === '' ? undefined : decodeURIComponent(m[2]);
    const q = ctx.query;
    const find = (id) => listUploadDirs(server.directory, bucket, server.multipart.aborted).find((u) => u.uploadId === id && (key === undefined || u.key === key));
    const withUpload = key !== undefined && typeof q.uploadId === 'string';
    const op = withUpload && ctx.method === 'GET' ? 'listParts' : withUpload && ctx.method === 'DELETE' ? 'abort' : undefined;
    if (op) {
      server.calls[op]++;
      if (server.refuse[op]) return refusal(ctx, server.refuse[op]);
    }
    if (!server.extended) {
      if (key !== undefined && ctx.method === 'PUT') return countBody(server, ctx, next);
      if (withUpload && ctx.method === 'POST') {
        await next();
        if (ctx.status === 200) server.multipart.completed.push(q.uploadId);
        return;
      }
      return next();
    }

    if (key === undefined && ctx.method === 'GET' && 'uploads' in q) {
      const ups = listUploadDirs(server.directory, bucket, server.multipart.aborted).filter((u) => !q.prefix || u.key.startsWith(q.prefix));
      ctx.type = 'application/xml';
      ctx.body = XML(
        `<ListMultipartUploadsResult><Bucket>${esc(bucket)}</Bucket><IsTruncated>false</IsTruncated>` +
          ups.map((u) => `<Upload><Key>${esc(u.key)}</Key><UploadId>${esc(u.uploadId)}</UploadId></Upload>`).join('') +
          '</ListMultipartUploadsResult>',
      );
      return;
    }
    if (key === undefined || typeof q.uploadId !== 'string') {
      if (key !== undefined && ctx.method === 'PUT') return countBody(server, ctx, next);
      return next();
    }
    const up = find(q.uploadId);
    if (ctx.method === 'GET') {
      if (!up) return noSuchUpload(ctx, q.uploadId);
      const parts = listParts(up.dir);
      ctx.type = 'application/xml';
      ctx.body = XML(
        `<ListPartsResult><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${esc(q.uploadId)}</UploadId>` +
          `<MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>` +
          parts
            .map((p) => `<Part><PartNumber>${p.number}</PartNumber><LastModified>${p.modified.toISOString()}</LastModified><ETag>&quot;${p.etag}&quot;</ETag><Size>${p.size}</Size></Part>`)
            .join('') +
          '</ListPartsResult>',
      );
      return;
    }
    if (ctx.method === 'DELETE') {
      if (!up) return noSuchUpload(ctx, q.uploadId);
      // Forgotten at once, like S3; its folder stays until the server is destroyed, because s3rver may still be
      // writing a part into it (it cannot cope with the folder going away under a part).
      server.multipart.aborted.push(q.uploadId);
      ctx.status = 204;
      return;
    }
    if (!up) return noSuchUpload(ctx, q.uploadId);
    if (ctx.method === 'PUT') return countBody(server, ctx, next);
    if (ctx.method === 'POST') {
      const bad = await checkCompletion(ctx, up);
      if (bad) {
        ctx.status = 400;
        ctx.type = 'application/xml';
        ctx.body = XML(`<Error><Code>InvalidPart</Code><Message>One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.</Message><PartNumber>${esc(bad.n)}</PartNumber></Error>`);
        return;
      }
      await next();
      if (ctx.status === 200) server.multipart.completed.push(q.uploadId);
      return;
    }
    return next();
  };
}

/** Counts the request body's bytes as s3rver reads them. */
function countBody(server, ctx, next) {
  const counter = new Transform({
    transform(chunk, _enc, cb) {
      server.bytesReceived += chunk.length;
      cb(null, chunk);
    },
  });
  const req = ctx.req;
  // A client that goes away mid-body leaves s3rver's half-read part as it would without the counter.
  counter.on('error', () => undefined);
  const piped = req.pipe(counter);
  // s3rver reads ctx.req (its body parser and store stream from it).
  for (const k of ['headers', 'method', 'url', 'httpVersion', 'socket', 'connection', 'rawHeaders']) piped[k] = req[k];
  ctx.req = piped;
  return next();
}

module.exports = { S3Server };
