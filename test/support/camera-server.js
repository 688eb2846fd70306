'use strict';
const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { listenLocal } = require('./net');
const { tmpDir, rmrf } = require('./tmp');

/** A real 16x16 baseline JPEG (ffmpeg's testsrc), small enough to keep here instead of running ffmpeg per test. */
const JPEG_16 = Buffer.from(
  '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgKCgsKCw0NDQ0NDRAPEBAQEBAQEBAQEBASEhIVFRUSEhIQEBISFBQVFRcXFxUVFRUX' +
    'FxkZGR4eHBwjIyQrKzP/xABtAAEBAQAAAAAAAAAAAAAAAAAGAwUBAQEAAAAAAAAAAAAAAAAAAAECEAADAAICAQQCAwEAAAAAAAADAgEEEQUSAAYhMRNBQhQjMiIR' +
    'AAEDAgcBAQEAAAAAAAAAAAEEEQMSAhQhBRMiMiMAREH/wAARCAAQABADASIAAhEAAxEA/9oADAMBAAIRAxEAPwAzcY/C8DiEEZxGOJMikCR1sUtQg1jSJZYMunk/' +
    'a2bs1425fk09L8gI+OEQwKRPuCISSMO/Wr9FlHI8V3ZP+pO+u255lZI8Pk+EwV/nY4oIGPjs3ZHk+pBp2b+xevajvtfjet3XkfUmPm85lnxkxMgfXWmUZC9v8X2W' +
    'Iv4Tfzfa+TMy8abdp2WwVmN/Obj4M4koM7c+tdL/AMf4jIvWpkaljPbidwSNQcloSeh87yAUu1yNNNjdMv/Z',
  'base64',
);

const LOGIN_PAGE = '<!DOCTYPE html>\n<html><head><title>IP Camera login</title></head><body><form>user <input name=u> password <input type=password name=p></form></body></html>\n';
const DIGEST_HASH = { MD5: 'md5', 'MD5-SESS': 'md5', 'SHA-256': 'sha256', 'SHA-256-SESS': 'sha256' };

/** The JPEG with a COM segment after its APP0 header saying which answer it is, so every capture differs. */
function numberedJpeg(n) {
  const app0End = 4 + JPEG_16.readUInt16BE(4);
  const text = Buffer.from(`fake camera frame ${n}`, 'latin1');
  const com = Buffer.alloc(4);
  com.writeUInt16BE(0xfffe, 0);
  com.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([JPEG_16.subarray(0, app0End), com, text, JPEG_16.subarray(app0End)]);
}

/**
 * A self-signed certificate for 127.0.0.1 made now with openssl, or { skip: reason } when it cannot be made.
 * The caller removes `dir`.
 */
function selfSignedCert() {
  const dir = tmpDir('uplink-cam-tls-');
  try {
    childProcess.execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
      { stdio: 'pipe', timeout: 30000 },
    );
    return { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')), dir };
  } catch (e) {
    rmrf(dir);
    return { skip: e.code === 'ENOENT' ? 'openssl is not installed' : `openssl failed: ${String(e.stderr || e.message).trim().split('\n')[0]}` };
  }
}

/** `a=1, b="two, three"` → { a: '1', b: 'two, three' } (keys lower-cased). */
function authParams(s) {
  const out = {};
  const re = /([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let m;
  while ((m = re.exec(s))) out[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  return out;
}

/**
 * A fake IP camera on 127.0.0.1 (port 0), plain http or, with `tls: { key, cert }`, https. Routes:
 *
 *   /snap.jpg                   the JPEG, no login
 *   /reset-reused.jpg           the JPEG on a new connection; a request on a kept-alive one is dropped unanswered
 *   /basic/snap.jpg             Basic login
 *   /digest/<alg>/snap.jpg      Digest login, qop=auth, alg = md5 | sha-256 | md5-sess | sha-256-sess
 *   /digest/both/snap.jpg       Digest offered twice (SHA-256 and MD5 headers), either accepted
 *   /any/snap.jpg               Basic and Digest offered in one header line; either accepted
 *   /deny/snap.jpg              401 whatever is sent
 *   /forbidden.jpg              403
 *   /error                      500
 *   /hang                       accepts the request, never answers
 *   /stall.jpg                  sends the headers and half the image, then nothing
 *   /login.html                 200 with an HTML login page
 *   /endless                    200 image/jpeg, streams forever (camera.endless counts what was written)
 *   /cut.jpg                    Content-Length of the whole image, half of it, then the connection drops
 *   /cut-close.jpg              no Content-Length, half the image, then a clean close
 *   /huge.jpg                   announces 50 MB
 *   /cgi-bin/api.cgi?cmd=Snap&channel=0&rs=..&user=..&password=..   Reolink: the JPEG, or its JSON error array
 *                               (channel 9: an error that quotes the password it was sent)
 *   /redirect/<n>               n redirects (302, relative) down to /snap.jpg
 *   /redirect-away              302 to the same port on "localhost" (another host name)
 *   anything else               404
 *
 * `camera.requests` records { method, url, path, query, headers, connection } per request; `camera.expireNonces()`
 * makes every digest nonce stale; `camera.served` holds every JPEG answered.
 */
/**
 * @param {{ tls?: { key: string | Buffer, cert: string | Buffer }, username?: string, password?: string, unique?: boolean,
 *   image?: Buffer }} [opts] image: served instead of the 16x16 JPEG (a camera-sized picture, for benchmarks)
 */
async function startCamera({ tls, username = 'admin', password = 'pa55 w&rd#é', unique = true, image: picture } = {}) {
  const requests = [];
  const served = [];
  const sockets = new Set();
  const nonces = new Map();
  const endless = { written: 0, closed: false, started: false };
  let frames = 0;
  let connections = 0;
  const realm = 'IP Camera';
  const opaque = crypto.randomBytes(8).toString('hex');

  const image = () => {
    const body = picture || (unique ? numberedJpeg(++frames) : JPEG_16);
    served.push(body);
    return body;
  };
  const sendJpeg = (res) => {
    const body = image();
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
    res.end(body);
  };
  const newNonce = () => {
    const nonce = crypto.randomBytes(12).toString('base64');
    nonces.set(nonce, { lastNc: 0, stale: false, uses: 0 });
    return nonce;
  };
  const digestChallenge = (alg, stale) =>
    `Digest realm="${realm}", qop="auth", algorithm=${alg}, nonce="${newNonce()}", opaque="${opaque}"${stale ? ', stale=true' : ''}`;

  /** Checks a Digest Authorization as a strict camera would: 'ok', 'stale' or 'bad'. */
  function checkDigest(req, algs) {
    const h = req.headers.authorization || '';
    if (!/^Digest\s/i.test(h)) return 'bad';
    const p = authParams(h.slice(7));
    const alg = (p.algorithm || 'MD5').toUpperCase();
    if (!algs.includes(alg)) return 'bad';
    const record = nonces.get(p.nonce);
    if (!record) return 'bad';
    if (p.username !== username || p.realm !== realm || p.uri !== req.url || p.opaque !== opaque || p.qop !== 'auth') return 'bad';
    if (!/^[0-9a-f]{8}$/.test(p.nc || '') || !p.cnonce) return 'bad';
    const H = (v) => crypto.createHash(DIGEST_HASH[alg]).update(v, 'utf8').digest('hex');
    let ha1 = H(`${username}:${realm}:${password}`);
    if (alg.endsWith('-SESS')) ha1 = H(`${ha1}:${p.nonce}:${p.cnonce}`);
    const expected = H(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${H(`${req.method}:${p.uri}`)}`);
    if (p.response !== expected) return 'bad';
    // A right answer on an expired nonce is "stale", not a wrong password; a repeated nc is a replay.
    if (record.stale) return 'stale';
    const nc = parseInt(p.nc, 16);
    if (nc <= record.lastNc) return 'bad';
    record.lastNc = nc;
    record.uses++;
    return 'ok';
  }

  function basicOk(req) {
    const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization || '');
    return !!m && Buffer.from(m[1], 'base64').toString('utf8') === `${username}:${password}`;
  }

  const handler = (req, res) => {
    const u = new URL(req.url, 'http://camera');
    const rec = { method: req.method, url: req.url, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers, connection: req.socket.cameraId };
    requests.push(rec);
    const route = u.pathname;

    if (route === '/snap.jpg') return sendJpeg(res);
    if (route === '/reset-reused.jpg') {
      // A camera that dropped an idle kept-alive connection just as the next request went out on it.
      req.socket.cameraRequests = (req.socket.cameraRequests || 0) + 1;
      if (req.socket.cameraRequests > 1) return req.socket.destroy();
      return sendJpeg(res);
    }
    if (route === '/basic/snap.jpg') {
      if (basicOk(req)) return sendJpeg(res);
      res.writeHead(401, { 'www-authenticate': `Basic realm="${realm}"`, 'content-type': 'text/plain' });
      return res.end('login required');
    }
    const dm = /^\/digest\/(md5|sha-256|md5-sess|sha-256-sess|both)\/snap\.jpg$/.exec(route);
    if (dm) {
      const algs = dm[1] === 'both' ? ['SHA-256', 'MD5'] : [dm[1].toUpperCase()];
      const verdict = checkDigest(req, algs);
      if (verdict === 'ok') return sendJpeg(res);
      res.writeHead(401, { 'www-authenticate': algs.map((a) => digestChallenge(a, verdict === 'stale')), 'content-type': 'text/plain' });
      return res.end('login required');
    }
    if (route === '/any/snap.jpg') {
      if (basicOk(req) || checkDigest(req, ['MD5']) === 'ok') return sendJpeg(res);
      res.writeHead(401, { 'www-authenticate': `Basic realm="${realm}", ${digestChallenge('MD5', false)}` });
      return res.end();
    }
    if (route === '/deny/snap.jpg') {
      res.writeHead(401, { 'www-authenticate': [`Basic realm="${realm}"`, digestChallenge('MD5', false)] });
      return res.end('no');
    }
    if (route === '/forbidden.jpg') {
      res.writeHead(403, { 'content-type': 'text/plain' });
      return res.end('forbidden');
    }
    if (route === '/error') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      return res.end('sensor failure');
    }
    if (route === '/hang') return; // the socket stays open until close()
    if (route === '/stall.jpg') {
      const body = image();
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
      return res.write(body.subarray(0, body.length >> 1));
    }
    if (route === '/login.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(LOGIN_PAGE);
    }
    if (route === '/endless') {
      endless.started = true;
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const chunk = Buffer.alloc(64 * 1024, 0x55);
      chunk[0] = 0xff;
      const pump = () => {
        while (!endless.closed) {
          endless.written += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
      };
      res.on('close', () => (endless.closed = true));
      return pump();
    }
    if (route === '/cut.jpg' || route === '/cut-close.jpg') {
      const body = image();
      const half = body.subarray(0, body.length >> 1);
      if (route === '/cut.jpg') {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
        return res.write(half, () => setImmediate(() => req.socket.destroy()));
      }
      res.writeHead(200, { 'content-type': 'image/jpeg', connection: 'close' });
      return res.end(half);
    }
    if (route === '/huge.jpg') {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 50 * 1024 * 1024 });
      return res.write(JPEG_16.subarray(0, 4));
    }
    if (route === '/cgi-bin/api.cgi') {
      const q = u.searchParams;
      if (q.get('cmd') !== 'Snap') {
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end(JSON.stringify([{ cmd: q.get('cmd'), code: 1, error: { rspCode: -9, detail: 'not support' } }]));
      }
      if (q.get('user') === username && q.get('password') === password) return sendJpeg(res);
      if (q.get('channel') === '9') {
        // A careless firmware that quotes what it was sent.
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end(JSON.stringify([{ cmd: 'Snap', code: 1, error: { rspCode: -6, detail: `bad password ${q.get('password')}` } }]));
      }
      // What a Reolink answers to a wrong login: HTTP 200 and a JSON array.
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(JSON.stringify([{ cmd: 'Snap', code: 1, error: { rspCode: -6, detail: 'please login first' } }]));
    }
    const rm = /^\/redirect\/(\d+)$/.exec(route);
    if (rm) {
      const n = Number(rm[1]);
      res.writeHead(302, { location: n > 1 ? `/redirect/${n - 1}` : '/snap.jpg' });
      return res.end();
    }
    if (route === '/redirect-away') {
      res.writeHead(302, { location: `${tls ? 'https' : 'http'}://localhost:${camera.port}/snap.jpg` });
      return res.end();
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  };

  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 5000;
  server.on(tls ? 'secureConnection' : 'connection', (s) => {
    s.cameraId = ++connections;
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  const port = await listenLocal(server);

  const camera = {
    port,
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    url: (p) => `${camera.origin}${p}`,
    username,
    password,
    requests,
    served,
    endless,
    nonces,
    get connections() {
      return connections;
    },
    get openSockets() {
      return sockets.size;
    },
    /** Every nonce given so far turns stale: the next answer on one gets `401 ... stale=true`. */
    expireNonces() {
      for (const r of nonces.values()) r.stale = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return camera;
}

module.exports = { startCamera, selfSignedCert, numberedJpeg, JPEG_16, LOGIN_PAGE, authParams };
