'use strict';
const crypto = require('crypto');
const http = require('http');
const { listenLocal } = require('./net');

/**
 * An upload target on 127.0.0.1 (port 0) that records every request and answers the way a test asks:
 *
 *   target.answer('json', { status: 200, body: { ok: true } })   JSON answer (default: 200 {"ok":true,"received":n})
 *   target.answer('status', { status: 503, headers: { 'retry-after': '7' }, body: 'busy' })
 *   target.answer('early', { status, body })  answer at once, before reading the body (a proxy's 413)
 *   target.answer('hang')                     read the whole body, never answer
 *   target.answer('stall', { afterBytes })    read that many body bytes, then stop reading and never answer
 *   target.answer('reset', { afterBytes })    destroy the connection once that many body bytes arrived
 *   target.answer('slow', { chunkDelayMs })   read the body slowly (pause after each chunk), then answer 200 JSON
 *   target.answer('reset-reused')             drop a request that comes on a kept-alive connection, answer fresh ones
 *   target.answer('echo', { status })         answer with the Authorization header it got, as a leaky API might
 *
 * Each request is recorded as { method, url, headers, bytes, sha256, body (unless keepBodies is false), chunks:
 * [{ at, bytes }], multipart (parsed when the body is multipart/form-data), done (the whole body arrived) }.
 */
async function startTarget({ keepBodies = true } = {}) {
  const requests = [];
  const sockets = new Set();
  let behaviour = { kind: 'json', opts: {} };
  const server = http.createServer((req, res) => {
    const { kind, opts } = behaviour;
    const socket = /** @type {import('net').Socket & { uplinkRequests?: number }} */ (req.socket);
    const rec = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      bytes: 0,
      chunks: [],
      done: false,
      reusedConnection: (socket.uplinkRequests = (socket.uplinkRequests || 0) + 1) > 1,
    };
    requests.push(rec);
    if (kind === 'reset-reused' && rec.reusedConnection) {
      req.socket.destroy();
      return;
    }
    if (kind === 'early') send(res, opts.status, { 'content-type': 'text/plain' }, opts.body ?? '');
    const hash = crypto.createHash('sha256');
    const kept = [];
    let stopped = false;
    req.on('data', (chunk) => {
      if (stopped) return;
      rec.chunks.push({ at: Date.now(), bytes: chunk.length });
      rec.bytes += chunk.length;
      hash.update(chunk);
      if (keepBodies) kept.push(chunk);
      if (kind === 'reset' && rec.bytes >= opts.afterBytes) {
        stopped = true;
        req.socket.destroy();
      } else if (kind === 'stall' && rec.bytes >= opts.afterBytes) {
        stopped = true;
        req.pause();
      } else if (kind === 'slow') {
        req.pause();
        setTimeout(() => req.resume(), opts.chunkDelayMs ?? 20);
      }
    });
    req.on('end', () => {
      rec.done = true;
      rec.sha256 = hash.digest('hex');
      if (keepBodies) {
        rec.body = Buffer.concat(kept);
        const m = /^multipart\/form-data;\s*boundary=(.+)$/i.exec(req.headers['content-type'] || '');
        if (m) rec.multipart = parseMultipart(rec.body, m[1].replace(/^"|"$/g, ''));
      }
      if (kind === 'hang') return;
      if (kind === 'json' || kind === 'slow' || kind === 'reset-reused') {
        send(res, opts.status ?? 200, { 'content-type': 'application/json' }, JSON.stringify(opts.body ?? { ok: true, received: rec.bytes }));
      } else if (kind === 'status') {
        send(res, opts.status, opts.headers ?? {}, opts.body ?? '');
      } else if (kind === 'echo') {
        send(res, opts.status ?? 200, { 'content-type': 'text/plain' }, `you sent authorization: ${req.headers.authorization}`);
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listenLocal(server);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    get sockets() {
      return sockets.size;
    },
    answer(kind, opts = {}) {
      behaviour = { kind, opts };
    },
    /** Stops listening and drops every connection, including those a test left hanging. */
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res, status, headers, body) {
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * Splits a multipart/form-data body at its boundary: { fields: {name: value}, files: [{ field, filename, contentType,
 * data }], closed } — closed is true when the final "--boundary--" was there.
 */
function parseMultipart(body, boundary) {
  const delimiter = Buffer.from(`--${boundary}`);
  const out = { fields: {}, files: [], closed: false };
  let pos = body.indexOf(delimiter);
  if (pos !== 0) throw new Error('multipart body does not start with its boundary');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') {
      out.closed = body.subarray(pos).toString() === '--\r\n';
      return out;
    }
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new Error('malformed multipart delimiter line');
    pos += 2;
    const headEnd = body.indexOf('\r\n\r\n', pos);
    const head = body.subarray(pos, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headEnd + 4);
    if (headEnd < 0 || next < 0) throw new Error('multipart part is not closed');
    const data = body.subarray(headEnd + 4, next);
    const headers = {};
    for (const line of head.split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const disposition = headers['content-disposition'] || '';
    const name = /\bname="([^"]*)"/.exec(disposition)?.[1];
    const filename = /\bfilename="([^"]*)"/.exec(disposition)?.[1];
    if (filename !== undefined) out.files.push({ field: name, filename, contentType: headers['content-type'], data });
    else out.fields[name] = data.toString('utf8');
    pos = next + 2;
  }
}

module.exports = { startTarget, parseMultipart };
