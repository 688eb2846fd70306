import crypto from 'crypto';
import http from 'http';
import https from 'https';
import { SettingsReader, text } from '../../util/settings';
import { CaptureError, CaptureSource } from '../types';
import { fmtBytesExact } from '../../util/format';

export interface HttpCameraSettings {
  /**
   * The snapshot URL. Never carries a secret: a user name or password is in `username`/`password`, added at request
   * time (an Authorization header, Reolink's `user`/`password` query parameters, or a `{username}`/`{password}`
   * placeholder in the query for cameras that only take them there).
   */
  url: string;
  auth: 'none' | 'basic' | 'digest' | 'auto';
  username?: string;
  password?: string;
  /** Accept a certificate that does not verify (the self-signed one most cameras make for themselves). */
  allowSelfSigned: boolean;
  timeoutMs: number;
}

/** Statuses that point elsewhere; each hop must stay on the camera's own host. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 3;
/** Challenges answered in one capture: a fresh one, plus a stale nonce or two. More means the password is wrong. */
const MAX_AUTH_ROUNDS = 3;
/** How much of a refusal (401, 404, 500...) is read: enough to keep the connection and quote the camera. */
const ERROR_BODY_LIMIT = 16 * 1024;
/** A JSON error (Reolink's) is small; an image that happens to start with "[" is not looked at. */
const JSON_ERROR_LIMIT = 64 * 1024;
const MAX_QUOTE = 200;
/** Query parameters that carry secrets (or, for Reolink, noise): never shown in a message. */
const SECRET_PARAMS = /^(user|username|usr|password|passwd|pwd|pass|token)$/i;
const PASSWORD_PARAMS = /^(password|passwd|pwd|pass)$/i;
const PLACEHOLDER = /\{(username|password)\}/g;
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing answers on that port',
  ECONNRESET: 'the camera closed the connection',
  EPIPE: 'the camera closed the connection',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EADDRNOTAVAIL: 'address not available',
  ENOTFOUND: 'host name not found (DNS)',
  EAI_AGAIN: 'host name lookup failed (DNS, temporary)',
  ECONNABORTED: 'connection aborted',
};

/** Reolink's snapshot command; `user` and `password` are appended by the source when it asks, never stored here. */
export function reolinkUrl(host: string, channel: number, https: boolean): string {
  return `${https ? 'https' : 'http'}://${host}/cgi-bin/api.cgi?cmd=Snap&channel=${channel}&rs=${randomRs()}`;
}

/**
 * Reads an HTTP camera's settings once, at deploy, listing every problem. `raw.source` (or `raw.preset`) 'reolink'
 * builds the URL from host, channel and https; anything else takes `raw.url`. Secrets come only from `credentials`.
 */
export function parseHttpCameraSettings(raw: Record<string, unknown>, credentials: Record<string, unknown>): HttpCameraSettings {
  const r = new SettingsReader(raw);
  const reolink = r.str('source') === 'reolink' || r.str('preset') === 'reolink';
  const username = text(credentials.username);
  // A password may legitimately start or end with a space: keep it as typed.
  const password = typeof credentials.password === 'string' ? credentials.password : '';

  let url = '';
  let auth: HttpCameraSettings['auth'] = 'none';
  if (reolink) {
    const host = r.str('host');
    const channel = r.num('channel', 'Channel', 0, 0, 15, { integer: true });
    const secure = raw.https === true || raw.https === 'true';
    if (host === '') r.error('Host is required (the camera\'s address, like 192.168.1.30 or 192.168.1.30:8080)');
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) r.error(`Host must be only the address, without ${host.split('//')[0]}// (got "${host}")`);
    else if (/[\s/?#@\\]/.test(host)) r.error(`Host must be a name or address with an optional :port, nothing else (got "${host}")`);
    else {
      try {
        const u = new URL(`http://${host}/`);
        if (!u.hostname) throw new Error('no host');
      } catch {
        r.error(`Host "${host}" is not a valid host name or address`);
      }
    }
    if (username === '') r.error('A Reolink camera needs a user name (admin, or a user made for snapshots)');
    url = reolinkUrl(host, channel, secure);
  } else {
    url = r.str('url');
    if (url === '') r.error('URL is required (the camera\'s snapshot address, like http://192.168.1.20/snapshot.jpg)');
    else {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url.replace(PLACEHOLDER, 'x'));
      } catch {
        r.error(`URL "${url}" is not a valid URL`);
      }
      if (parsed) {
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') r.error(`URL must start with http:// or https:// (got "${parsed.protocol}")`);
        if (parsed.username || parsed.password) {
          r.error('URL must not contain a user name or password: put them in the user name and password fields');
        }
        const q = url.indexOf('?');
        const firstPlaceholder = url.search(PLACEHOLDER);
        if (firstPlaceholder >= 0 && (q < 0 || firstPlaceholder < q)) r.error('{username} and {password} may only appear in the query of the URL (after "?")');
        const withoutHash = url.split('#')[0];
        const query = withoutHash.includes('?') ? withoutHash.slice(withoutHash.indexOf('?') + 1) : '';
        for (const [k, v] of new URLSearchParams(query)) {
          if (PASSWORD_PARAMS.test(k) && v !== '{password}') {
            r.error(`URL must not carry the password (${k}=…): put it in the password field and write ${k}={password} in the URL`);
          }
        }
        if (url.includes('{password}') && username === '' && password === '') r.error('The URL uses {password}, but no password is set');
      }
    }
    auth = r.choice('auth', 'Authentication', ['none', 'basic', 'digest', 'auto'] as const, 'auto');
    // "As the camera asks" without a user name is a camera that asks for nothing; basic or digest need one.
    if (auth === 'auto' && username === '') auth = 'none';
    if ((auth === 'basic' || auth === 'digest') && username === '') r.error(`${auth === 'basic' ? 'Basic' : 'Digest'} authentication needs a user name`);
    if ((auth === 'basic' || auth === 'auto') && username.includes(':')) r.error('A user name for basic authentication cannot contain ":"');
  }
  const timeoutS = r.num('timeout', 'Timeout', 10, 1, 120, { unit: 'seconds' });
  r.check();
  const keepLogin = reolink || auth !== 'none' || /\{(username|password)\}/.test(url);
  return {
    url,
    auth,
    username: keepLogin ? username : undefined,
    password: keepLogin ? password : undefined,
    allowSelfSigned: raw.allowSelfSigned === true || raw.allowSelfSigned === 'true',
    timeoutMs: Math.round(timeoutS * 1000),
  };
}

interface Answer {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** A digest login in use: one server nonce, counted up request by request until the camera calls it stale. */
interface DigestSession {
  realm: string;
  nonce: string;
  opaque?: string;
  /** The algorithm token as the camera wrote it (echoed back), and the hash it names. */
  algorithm?: string;
  hash: string;
  sess: boolean;
  qop?: 'auth' | 'auth-int';
  userhash: boolean;
  cnonce: string;
  nc: number;
}

/** What a request carried, to judge the 401 that may come back. */
type Sent = { kind: 'none' } | { kind: 'basic' } | { kind: 'digest'; fresh: boolean };

/** A kept-alive connection the camera had already closed: worth one repeat on a fresh connection. */
class StaleConnection extends Error {
  constructor(readonly original: unknown) {
    super('stale kept-alive connection');
  }
}

/** The request was stopped by the signal; `answering` tells whether the camera had started its answer. */
class Stopped extends Error {
  constructor(
    readonly reason: unknown,
    readonly answering: boolean,
  ) {
    super('stopped');
  }
}

/** The source's own deadline (a backstop for callers that pass a signal without one). */
class OwnTimeout extends Error {
  override readonly name = 'TimeoutError';
}

class SourceClosed extends Error {}

/** A request's failure, with the URL it was for (after a redirect, not the configured one). */
class AtUrl extends Error {
  constructor(
    readonly original: unknown,
    readonly url: URL,
  ) {
    super('request failed');
  }
}

/**
 * A camera's snapshot URL over HTTP(S): basic, digest (RFC 7616: MD5, SHA-256, SHA-512-256, -sess, nonce reuse with
 * a counted nc) or whatever the camera's challenge asks, Reolink's query-string login, and at most three redirects on
 * the same host. The answer is streamed and dropped as soon as it passes `maxBytes`.
 */
export class HttpCameraSource implements CaptureSource {
  readonly kind = 'http';
  private httpAgent?: http.Agent;
  private httpsAgent?: https.Agent;
  private digest?: DigestSession;
  /** 'auto' met a Basic challenge: send Basic up front from now on, saving a round trip per capture. */
  private basicLearned = false;
  private closed = false;
  private readonly inflight = new Set<AbortController>();
  private readonly secrets: string[];

  constructor(readonly settings: HttpCameraSettings) {
    const pw = settings.password ?? '';
    const basic = Buffer.from(`${settings.username ?? ''}:${pw}`, 'utf8').toString('base64');
    this.secrets = [...new Set([pw, encodeURIComponent(pw), new URLSearchParams({ p: pw }).toString().slice(2), basic])]
      .filter((s) => s.length > 0)
      .sort((a, b) => b.length - a.length);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.inflight) c.abort(new SourceClosed());
    this.httpAgent?.destroy();
    this.httpsAgent?.destroy();
    this.httpAgent = this.httpsAgent = undefined;
  }

  async grab(signal: AbortSignal, maxBytes: number): Promise<Buffer> {
    if (this.closed) throw new CaptureError('the camera source is closed', 'ABORTED');
    const started = Date.now();
    const ctl = new AbortController();
    this.inflight.add(ctl);
    const timer = setTimeout(() => ctl.abort(new OwnTimeout()), this.settings.timeoutMs);
    const relay = () => ctl.abort(signal.reason);
    if (signal.aborted) relay();
    else signal.addEventListener('abort', relay, { once: true });
    try {
      return await this.fetchImage(ctl.signal, maxBytes);
    } catch (e) {
      throw this.explain(e, Date.now() - started);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', relay);
      this.inflight.delete(ctl);
    }
  }

  private async fetchImage(signal: AbortSignal, maxBytes: number): Promise<Buffer> {
    let url = this.firstUrl();
    let redirects = 0;
    let authRounds = 0;
    let repeatedStale = false;
    for (;;) {
      const { header, sent } = this.authorization(url);
      const headers: Record<string, string> = {
        'user-agent': 'node-red-contrib-uplink',
        accept: 'image/jpeg, image/png;q=0.9, image/*;q=0.8, */*;q=0.1',
      };
      if (header) headers.authorization = header;
      let a: Answer;
      try {
        a = await this.exchange(url, headers, signal, maxBytes);
      } catch (e) {
        if (e instanceof StaleConnection && !repeatedStale) {
          repeatedStale = true;
          if (sent.kind === 'digest' && this.digest) this.digest.nc--; // that nc never reached the camera
          continue;
        }
        throw new AtUrl(e instanceof StaleConnection ? e.original : e, url);
      }
      const s = a.status;
      if (s === 401) {
        if (++authRounds > MAX_AUTH_ROUNDS) throw this.refused(a, 'the camera keeps asking for a new login');
        this.answerChallenge(a, sent);
        continue;
      }
      if (s === 403) throw this.refused(a);
      if (REDIRECTS.has(s)) {
        url = this.redirectTarget(a, url, ++redirects);
        continue;
      }
      if (s === 404) throw new CaptureError(`no snapshot at this URL: check the path (${this.show(url)})`, 'NOT_FOUND');
      if (s >= 500) throw new CaptureError(`the camera failed (${this.said(a)}) at ${this.show(url)}`, 'CAMERA_ERROR');
      if (s < 200 || s >= 300) throw new CaptureError(`the camera refused the request (${this.said(a)}) at ${this.show(url)}`, 'CAMERA_ERROR');
      this.checkJsonError(a.body);
      return a.body;
    }
  }

  /** The URL of the first request: placeholders filled in, Reolink's login and a fresh cache-buster added. */
  private firstUrl(): URL {
    const { username = '', password = '' } = this.settings;
    const filled = this.settings.url.replace(PLACEHOLDER, (_, which: string) => encodeURIComponent(which === 'username' ? username : password));
    const url = new URL(filled);
    if (!isReolinkSnap(url)) return url;
    const parts: string[] = [];
    for (const [k, v] of url.searchParams) {
      if (/^(user|password|token)$/i.test(k)) continue;
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(/^rs$/i.test(k) ? randomRs() : v)}`);
    }
    if (!parts.some((p) => /^rs=/i.test(p))) parts.push(`rs=${randomRs()}`);
    parts.push(`user=${encodeURIComponent(username)}`, `password=${encodeURIComponent(password)}`);
    url.search = `?${parts.join('&')}`;
    return url;
  }

  private authorization(url: URL): { header?: string; sent: Sent } {
    const { auth, username = '', password = '' } = this.settings;
    if (auth === 'none') return { sent: { kind: 'none' } };
    if (auth === 'basic' || (auth === 'auto' && this.basicLearned && !this.digest)) {
      return { header: `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`, sent: { kind: 'basic' } };
    }
    if (this.digest) {
      const fresh = this.digest.nc === 0;
      return { header: digestHeader(this.digest, username, password, 'GET', `${url.pathname}${url.search}`), sent: { kind: 'digest', fresh } };
    }
    return { sent: { kind: 'none' } };
  }

  /** Takes up the camera's 401 challenge for the next try, or throws AUTH when another try cannot help. */
  private answerChallenge(a: Answer, sent: Sent): void {
    const { auth } = this.settings;
    const challenges = challengesOf(a);
    const schemes = challenges.map((c) => c.scheme);
    const offered = schemes.length ? [...new Set(schemes)].map(schemeName).join(' or ') : 'no known';
    if (auth === 'none') {
      throw new CaptureError(
        `the camera asks for a user name and password (${this.said(a)}, ${offered} authentication): choose an authentication method and fill them in`,
        'AUTH',
      );
    }
    const digest = bestDigest(challenges);
    if (sent.kind === 'basic') {
      this.basicLearned = false;
      if (auth === 'basic' && !schemes.includes('basic') && schemes.includes('digest')) {
        throw new CaptureError(`the camera refused the user name or password (${this.said(a)}): it asks for digest authentication, choose digest or auto`, 'AUTH');
      }
      // A camera that switched from Basic to Digest (a firmware update) gets one digest answer.
      if (auth === 'auto' && digest) return this.startDigest(digest);
      throw this.refused(a);
    }
    if (sent.kind === 'digest') {
      // An answer computed from a challenge of this capture that still fails is a wrong password, unless the nonce
      // merely went stale in between; a reused nonce may have expired however the camera says it.
      if (digest && (!sent.fresh || digest.params.stale?.toLowerCase() === 'true')) return this.startDigest(digest);
      this.digest = undefined;
      throw this.refused(a);
    }
    if (digest) return this.startDigest(digest);
    if (auth === 'auto' && schemes.includes('basic')) {
      this.basicLearned = true;
      return;
    }
    const unsupported = challenges.find((c) => c.scheme === 'digest');
    if (unsupported) {
      const what = [`algorithm ${unsupported.params.algorithm ?? 'MD5'}`, unsupported.params.qop ? `qop ${unsupported.params.qop}` : ''].filter(Boolean).join(' and ');
      throw new CaptureError(`the camera asks for digest authentication with ${this.quote(what)}, which is not supported (MD5, SHA-256 and SHA-512-256 with qop auth are)`, 'AUTH');
    }
    if (auth === 'digest' && schemes.includes('basic')) {
      throw new CaptureError(`the camera asks for basic authentication, not digest (${this.said(a)}): choose basic or auto`, 'AUTH');
    }
    throw new CaptureError(`the camera asks for ${offered} authentication (${this.said(a)}), which is not supported`, 'AUTH');
  }

  private startDigest(c: Challenge): void {
    const alg = (c.params.algorithm ?? 'MD5').toUpperCase();
    const sess = alg.endsWith('-SESS');
    const qops = (c.params.qop ?? '').split(',').map((q) => q.trim().toLowerCase());
    this.digest = {
      realm: c.params.realm ?? '',
      nonce: c.params.nonce ?? '',
      opaque: c.params.opaque,
      algorithm: c.params.algorithm,
      hash: DIGEST_HASHES[sess ? alg.slice(0, -5) : alg],
      sess,
      qop: qops.includes('auth') ? 'auth' : qops.includes('auth-int') ? 'auth-int' : undefined,
      userhash: c.params.userhash?.toLowerCase() === 'true',
      cnonce: crypto.randomBytes(16).toString('hex'),
      nc: 0,
    };
  }

  private refused(a: Answer, why?: string): CaptureError {
    return new CaptureError(`the camera refused the user name or password (${this.said(a)}${why ? `; ${why}` : ''})`, 'AUTH');
  }

  private redirectTarget(a: Answer, from: URL, hop: number): URL {
    const location = typeof a.headers.location === 'string' ? a.headers.location : '';
    let to: URL;
    try {
      to = new URL(location, from);
    } catch {
      throw new CaptureError(`the camera redirects (${this.said(a)}) to an invalid address`, 'CAMERA_ERROR');
    }
    to.username = to.password = '';
    to.hash = '';
    if (!location) throw new CaptureError(`the camera redirects (${this.said(a)}) without saying where`, 'CAMERA_ERROR');
    if (hop > MAX_REDIRECTS) throw new CaptureError(`the camera redirects more than ${MAX_REDIRECTS} times (last to ${this.show(to)}): set the final URL`, 'CAMERA_ERROR');
    // The login goes with every request: it must never follow a redirect to some other machine, or to plain http.
    if (to.hostname.toLowerCase() !== from.hostname.toLowerCase()) {
      throw new CaptureError(`the camera redirects to another host (${this.show(to)}): set that URL if you trust it`, 'CAMERA_ERROR');
    }
    if (to.protocol !== 'http:' && to.protocol !== 'https:') throw new CaptureError(`the camera redirects to ${to.protocol} (not http)`, 'CAMERA_ERROR');
    if (from.protocol === 'https:' && to.protocol === 'http:') {
      throw new CaptureError(`the camera redirects from https to plain http (${this.show(to)}): refused, it would expose the login`, 'CAMERA_ERROR');
    }
    return to;
  }

  /** Reolink answers a refused Snap with HTTP 200 and a JSON array; other cameras' JSON is left to the image check. */
  private checkJsonError(body: Buffer): void {
    if (body.length === 0 || body.length > JSON_ERROR_LIMIT) return;
    const first = body.subarray(0, 16).toString('latin1').trimStart()[0];
    if (first !== '[' && first !== '{') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return;
    }
    const item = (Array.isArray(parsed) ? parsed[0] : parsed) as { code?: unknown; error?: { rspCode?: unknown; detail?: unknown } } | undefined;
    if (!item || typeof item !== 'object' || !item.error || typeof item.error !== 'object') return;
    const rsp = Number(item.error.rspCode);
    const detail = this.quote(typeof item.error.detail === 'string' ? item.error.detail : '');
    if (rsp === -6 || rsp === -7 || /login|password|user/i.test(detail)) {
      throw new CaptureError(`the camera refused the user name or password${detail ? ` (${detail})` : ''}`, 'AUTH');
    }
    throw new CaptureError(`the camera answered with an error: ${detail || 'no detail'}${Number.isFinite(rsp) ? ` (rspCode ${rsp})` : ''}`, 'CAMERA_ERROR');
  }

  private agent(secure: boolean): http.Agent {
    // One connection is all a camera needs; a second for captures that overlap. Kept alive between captures.
    const options = { keepAlive: true, maxSockets: 2, maxFreeSockets: 1 };
    if (secure) return (this.httpsAgent ??= new https.Agent({ ...options, rejectUnauthorized: !this.settings.allowSelfSigned }));
    return (this.httpAgent ??= new http.Agent(options));
  }

  /** One GET. Resolves with the answer (any status); a 2xx body over `maxBytes` rejects with TOO_LARGE at once. */
  private exchange(url: URL, headers: Record<string, string>, signal: AbortSignal, maxBytes: number): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (this.closed) return reject(new Stopped(new SourceClosed(), false));
      if (signal.aborted) return reject(new Stopped(signal.reason, false));
      const secure = url.protocol === 'https:';
      const req = (secure ? https : http).request(url, { method: 'GET', headers, agent: this.agent(secure) });
      let settled = false;
      let answering = false;
      const finish = (err: unknown, answer?: Answer) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (err) {
          // A half-read answer leaves the connection useless: close it, never hand it back to the pool.
          req.destroy();
          reject(err);
        } else resolve(answer!);
      };
      const onAbort = () => finish(new Stopped(signal.reason, answering));
      signal.addEventListener('abort', onAbort, { once: true });

      req.on('error', (e: NodeJS.ErrnoException) => {
        if (!answering && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) finish(new StaleConnection(e));
        else finish(e);
      });
      req.on('response', (res) => {
        answering = true;
        const status = res.statusCode ?? 0;
        const image = status >= 200 && status < 300;
        const declared = Number(res.headers['content-length']);
        if (image && Number.isFinite(declared) && declared > maxBytes) {
          finish(tooLarge(`the camera's answer is ${fmtBytesExact(declared)}, over the limit of ${fmtBytesExact(maxBytes)}`, 0));
          return;
        }
        const chunks: Buffer[] = [];
        let got = 0;
        let read = 0;
        const answer = (): Answer => ({
          status,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks, got),
        });
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          read += chunk.length;
          if (image && got + chunk.length > maxBytes) {
            finish(tooLarge(`the camera sent more than the limit of ${fmtBytesExact(maxBytes)}: stopped reading`, read));
            return;
          }
          if (!image && got + chunk.length > ERROR_BODY_LIMIT) {
            // Enough to quote; the rest of a refusal is not worth reading (or keeping the connection for).
            chunks.push(chunk.subarray(0, ERROR_BODY_LIMIT - got));
            got = ERROR_BODY_LIMIT;
            req.destroy();
            finish(undefined, answer());
            return;
          }
          chunks.push(chunk);
          got += chunk.length;
        });
        res.on('error', () => undefined); // 'close' below tells what happened
        res.on('end', () => finish(undefined, answer()));
        res.on('close', () => {
          if (settled || res.complete) return;
          if (!image) return finish(undefined, answer());
          const of = Number.isFinite(declared) ? ` of ${declared}` : '';
          finish(new CaptureError(`the camera closed the connection in the middle of the image (after ${got}${of} bytes)`, 'CUT_SHORT'));
        });
      });
      req.end();
    });
  }

  /** Turns whatever stopped a capture into a CaptureError a person can act on, without the login in it. */
  private explain(thrown: unknown, elapsedMs: number): CaptureError {
    let e = thrown;
    let url = new URL(this.settings.url.replace(PLACEHOLDER, 'x'));
    if (e instanceof AtUrl) {
      url = e.url;
      e = e.original;
    }
    if (e instanceof CaptureError) {
      // Every message is built without the login, but a camera's own words could still carry it back.
      if (e.message === this.redact(e.message)) return e;
      return Object.assign(new CaptureError(this.redact(e.message), e.code), { bytesRead: (e as { bytesRead?: number }).bytesRead });
    }
    if (e instanceof Stopped) {
      const r = e.reason as { name?: unknown } | undefined;
      if (r instanceof OwnTimeout || r?.name === 'TimeoutError') {
        const within = formatSeconds(r instanceof OwnTimeout ? this.settings.timeoutMs : elapsedMs);
        return new CaptureError(e.answering ? `the camera did not send the whole image within ${within}` : `the camera did not answer within ${within}`, 'TIMEOUT');
      }
      if (r instanceof SourceClosed) return new CaptureError('the capture was stopped: the camera source closed', 'ABORTED');
      return new CaptureError('the capture was cancelled', 'ABORTED');
    }
    const err = e as NodeJS.ErrnoException;
    const code = typeof err?.code === 'string' ? err.code : '';
    const where = this.show(url);
    if (TLS_CODES.has(code)) {
      const why = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'it was made for another name' : this.quote(err.message);
      return new CaptureError(
        `the camera's certificate was refused (${why}) at ${where}: if the camera uses its own self-signed certificate, turn on "accept this camera's self-signed certificate"`,
        'TLS',
      );
    }
    if (/^ERR_SSL_|^ERR_TLS_|^EPROTO$/.test(code)) {
      // OpenSSL's own words ("wrong version number") without its source-file trail.
      const reason = /SSL routines:[^:]*:([^:]+):/.exec(err.message)?.[1] ?? err.message;
      return new CaptureError(`the secure connection failed (${this.quote(reason)}) at ${where}: does the camera speak https on this port?`, 'TLS');
    }
    if (UNREACHABLE[code]) return new CaptureError(`the camera is unreachable at ${where}: ${UNREACHABLE[code]} (${code})`, 'UNREACHABLE');
    if (/^HPE_/.test(code)) return new CaptureError(`the camera's answer is not valid HTTP (${this.quote(err.message)}) at ${where}`, 'CAMERA_ERROR');
    return new CaptureError(`the capture failed at ${where}: ${this.quote(err?.message ?? String(e))}${code ? ` (${code})` : ''}`, 'CAMERA_ERROR');
  }

  /** The status as the camera said it. */
  private said(a: Answer): string {
    const message = this.quote(a.statusMessage);
    return `HTTP ${a.status}${message ? ` ${message}` : ''}`;
  }

  /** Camera-provided text, one line, short, with the password (in any form it was sent) blotted out. */
  private quote(s: string): string {
    return this.redact(s.replace(/\s+/g, ' ').trim()).slice(0, MAX_QUOTE);
  }

  private redact(s: string): string {
    for (const secret of this.secrets) s = s.split(secret).join('***');
    return s;
  }

  /** A URL fit for a message: origin and path, the query without its login or Reolink's random cache-buster. */
  private show(url: URL): string {
    const kept = [...url.searchParams].filter(([k]) => !SECRET_PARAMS.test(k) && !(isReolinkSnap(url) && /^rs$/i.test(k)));
    const query = kept.length ? `?${new URLSearchParams(kept).toString()}` : '';
    return this.redact(`${url.origin}${url.pathname}${query}`);
  }
}

function isReolinkSnap(url: URL): boolean {
  if (!/\/cgi-bin\/api\.cgi$/i.test(url.pathname)) return false;
  for (const [k, v] of url.searchParams) if (/^cmd$/i.test(k) && /^snap$/i.test(v)) return true;
  return false;
}

function randomRs(): string {
  return crypto.randomBytes(8).toString('hex');
}

function tooLarge(message: string, bytesRead: number): CaptureError {
  return Object.assign(new CaptureError(message, 'TOO_LARGE'), { bytesRead });
}


function formatSeconds(ms: number): string {
  return ms < 10000 ? `${+(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function schemeName(s: string): string {
  return s === 'basic' ? 'Basic' : s === 'digest' ? 'Digest' : s;
}

// ---- HTTP authentication (RFC 7235 challenges, RFC 7617 basic, RFC 7616 digest) ----

/** Digest algorithms by strength; SHA-512-256 only where this Node's OpenSSL has it. */
const DIGEST_HASHES: Record<string, string> = { MD5: 'md5', 'SHA-256': 'sha256' };
if (crypto.getHashes().includes('sha512-256')) DIGEST_HASHES['SHA-512-256'] = 'sha512-256';
const DIGEST_PREFERENCE = ['SHA-512-256', 'SHA-256', 'MD5'];

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Every challenge in every WWW-Authenticate header (a camera may send several, or several in one). */
function challengesOf(a: Answer): Challenge[] {
  const out: Challenge[] = [];
  for (let i = 0; i + 1 < a.rawHeaders.length; i += 2) {
    if (a.rawHeaders[i].toLowerCase() === 'www-authenticate') out.push(...parseChallenges(a.rawHeaders[i + 1]));
  }
  return out;
}

/** `Basic realm="x", Digest realm="y", nonce="z", qop="auth,auth-int"` → challenges with lower-case names. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  const s = header;
  let i = 0;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i])) i++;
    return s.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < s.length) {
    ws();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (!name) {
      i++; // a stray character (a token68's "/"): skip it
      continue;
    }
    ws();
    if (s[i] === '=') {
      i++;
      ws();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        const start = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
        value = s.slice(start, i);
      }
      if (current) current.params[name.toLowerCase()] = value;
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}

/** The strongest digest challenge this source can answer (qop auth, auth-int or none; a known algorithm). */
function bestDigest(challenges: Challenge[]): Challenge | undefined {
  let best: Challenge | undefined;
  let rank = Infinity;
  for (const c of challenges) {
    if (c.scheme !== 'digest' || !c.params.nonce) continue;
    const alg = (c.params.algorithm ?? 'MD5').toUpperCase().replace(/-SESS$/, '');
    const r = DIGEST_PREFERENCE.indexOf(alg);
    if (r < 0 || !DIGEST_HASHES[alg]) continue;
    if (c.params.qop !== undefined) {
      const qops = c.params.qop.split(',').map((q) => q.trim().toLowerCase());
      if (!qops.includes('auth') && !qops.includes('auth-int')) continue;
    }
    if (r < rank) {
      best = c;
      rank = r;
    }
  }
  return best;
}

/** The Authorization header for the next request on this nonce (nc counts up; the cnonce stays per nonce). */
function digestHeader(d: DigestSession, username: string, password: string, method: string, uri: string): string {
  const H = (v: string) => crypto.createHash(d.hash).update(v, 'utf8').digest('hex');
  d.nc++;
  const nc = d.nc.toString(16).padStart(8, '0');
  let ha1 = H(`${username}:${d.realm}:${password}`);
  if (d.sess) ha1 = H(`${ha1}:${d.nonce}:${d.cnonce}`);
  // A GET has an empty body, so auth-int's entity hash is the hash of nothing.
  const ha2 = d.qop === 'auth-int' ? H(`${method}:${uri}:${H('')}`) : H(`${method}:${uri}`);
  const response = d.qop ? H(`${ha1}:${d.nonce}:${nc}:${d.cnonce}:${d.qop}:${ha2}`) : H(`${ha1}:${d.nonce}:${ha2}`);
  const parts: string[] = [];
  if (d.userhash) parts.push(`username="${H(`${username}:${d.realm}`)}"`);
  else if (/^[\x20-\x7e]*$/.test(username)) parts.push(`username=${quoted(username)}`);
  else parts.push(`username*=UTF-8''${encodeURIComponent(username)}`);
  parts.push(`realm=${quoted(d.realm)}`, `nonce=${quoted(d.nonce)}`, `uri=${quoted(uri)}`);
  if (d.algorithm) parts.push(`algorithm=${d.algorithm}`);
  parts.push(`response="${response}"`);
  if (d.opaque !== undefined) parts.push(`opaque=${quoted(d.opaque)}`);
  if (d.qop) parts.push(`qop=${d.qop}`, `nc=${nc}`, `cnonce="${d.cnonce}"`);
  if (d.userhash) parts.push('userhash=true');
  return `Digest ${parts.join(', ')}`;
}

function quoted(v: string): string {
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
