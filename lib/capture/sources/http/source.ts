import http from 'http';
import https from 'https';
import { CaptureError, CaptureSource } from '../../types';
import { fmtBytesExact } from '../../../util/format';
import { CameraLogin, basicCredentials, loginRefused } from './digest';
import { HttpCameraSettings, PLACEHOLDER, randomRs } from './settings';

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

interface Answer {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

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
  private readonly login: CameraLogin;
  private closed = false;
  private readonly inflight = new Set<AbortController>();
  private readonly secrets: string[];

  constructor(readonly settings: HttpCameraSettings) {
    const pw = settings.password ?? '';
    const basic = basicCredentials(settings.username ?? '', pw);
    this.secrets = [...new Set([pw, encodeURIComponent(pw), new URLSearchParams({ p: pw }).toString().slice(2), basic])]
      .filter((s) => s.length > 0)
      .sort((a, b) => b.length - a.length);
    this.login = new CameraLogin(settings, (s) => this.quote(s));
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
      const { header, sent } = this.login.authorization(url);
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
          this.login.unsent(sent);
          continue;
        }
        throw new AtUrl(e instanceof StaleConnection ? e.original : e, url);
      }
      const s = a.status;
      if (s === 401) {
        if (++authRounds > MAX_AUTH_ROUNDS) throw loginRefused(this.said(a), 'the camera keeps asking for a new login');
        this.login.answerChallenge(a.rawHeaders, this.said(a), sent);
        continue;
      }
      if (s === 403) throw loginRefused(this.said(a));
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

function tooLarge(message: string, bytesRead: number): CaptureError {
  return Object.assign(new CaptureError(message, 'TOO_LARGE'), { bytesRead });
}


function formatSeconds(ms: number): string {
  return ms < 10000 ? `${+(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
