import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import https from 'https';
import { Readable, pipeline } from 'stream';
import { Bandwidth, openBody } from '../body';
import { classifyThrown, networkCode, statusError } from '../classify';
import { StorageBackend, UploadError, UploadItem, UploadResult } from '../types';
import { FIELD_PLACEHOLDER, HttpSettings } from './http-settings';

/** How much of an answer is kept for the result; the rest is read and dropped so the connection can be reused. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const MAX_SNIPPET = 200;

interface Answer {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A reset on a kept-alive connection the server had already closed: worth one immediate repeat on a fresh one. */
class StaleConnection extends Error {
  constructor(readonly original: unknown) {
    super('stale kept-alive connection');
  }
}

/**
 * Any HTTP API: multipart/form-data (a file field plus text fields) or the raw bytes, POST or PUT. The body streams
 * from disk with an exact Content-Length, so nothing is ever held whole in memory and no chunked encoding is needed.
 */
export class HttpBackend implements StorageBackend {
  readonly kind = 'http';
  private readonly agent: http.Agent;
  private readonly secure: boolean;
  private readonly authorization?: string;
  private readonly secrets: string[];

  constructor(readonly settings: HttpSettings, private readonly bandwidth?: Bandwidth) {
    this.secure = settings.url.startsWith('https:');
    // Kept-alive connections, one per upload that may run at once: one TLS handshake per connection, not per file.
    const options = { keepAlive: true, maxSockets: Math.max(1, settings.concurrency) };
    this.agent = this.secure ? new https.Agent(options) : new http.Agent(options);
    if (settings.auth === 'bearer' && settings.token) this.authorization = `Bearer ${settings.token}`;
    if (settings.auth === 'basic' && settings.username) {
      this.authorization = `Basic ${Buffer.from(`${settings.username}:${settings.password ?? ''}`, 'utf8').toString('base64')}`;
    }
    this.secrets = [settings.token, settings.password, this.authorization?.replace(/^\w+ /, '')].filter((s): s is string => !!s);
  }

  /** Origin and path only: a query string may carry an API key. A {key} placeholder's folder stands for the target. */
  endpoint(): string {
    const u = new URL(this.settings.url.split('{key}')[0]);
    return `${u.origin}${u.pathname}`;
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  async upload(item: UploadItem): Promise<UploadResult> {
    try {
      if (item.signal.aborted) throw abortReason(item.signal);
      const size = await this.sizeNow(item);
      const url = this.requestUrl(item.key);
      let answer: Answer;
      try {
        answer = await this.send(item, url, size);
      } catch (e) {
        if (!(e instanceof StaleConnection)) throw e;
        if (item.signal.aborted) throw abortReason(item.signal);
        answer = await this.send(item, url, size);
      }
      return this.result(item, url, size, answer);
    } catch (e) {
      throw this.redact(classifyThrown(e instanceof StaleConnection ? e.original : e, this.settings.timeoutMs));
    }
  }

  /** The size to announce, from the file as it is now: a file that is gone is gone for good. */
  private async sizeNow(item: UploadItem): Promise<number> {
    if (!item.file) return item.body?.length ?? 0;
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(item.file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new UploadError(`the file to upload is gone: ${item.file}`, 'permanent', 'FILE_GONE');
      throw e;
    }
    if (!st.isFile()) throw new UploadError(`${item.file} is not a regular file`, 'permanent', 'NOT_A_FILE');
    if (st.size !== item.bytes) {
      throw new UploadError(`the file changed size since it was queued (${item.bytes} → ${st.size} bytes)`, 'permanent', 'FILE_CHANGED');
    }
    return st.size;
  }

  private requestUrl(key: string): URL {
    const path = key.split('/').map(encodeURIComponent).join('/');
    return new URL(this.settings.url.replace(/\{key\}/g, path));
  }

  private result(item: UploadItem, url: URL, size: number, a: Answer): UploadResult {
    const text = a.body.toString('utf8');
    const type = String(a.headers['content-type'] ?? '');
    if (this.settings.successCodes.includes(a.status)) {
      let response: unknown = text === '' ? undefined : text;
      if (text !== '' && /[/+]json\b/i.test(type)) {
        try {
          response = JSON.parse(text);
        } catch {
          /* truncated or not really JSON: the text is still worth passing on */
        }
      }
      const location = typeof a.headers.location === 'string' ? safeUrl(a.headers.location, url) : undefined;
      const etag = typeof a.headers.etag === 'string' ? a.headers.etag.replace(/^W\//, '').replace(/"/g, '') : undefined;
      return { key: item.key, url: location, etag, bytes: size, status: a.status, response };
    }
    throw this.statusFailure(a, text, size, url);
  }

  private statusFailure(a: Answer, text: string, size: number, url: URL): UploadError {
    const s = a.status;
    const said = `HTTP ${s}${a.statusMessage ? ` ${a.statusMessage}` : ''}`;
    let what: string;
    if (s === 401 || s === 403) {
      what = this.settings.auth === 'none' ? `the server refused access without credentials (${said}): choose an authentication method` : `the server rejected the credentials (${said})`;
    } else if (s === 413) what = `the server says the file is too large (${said}, ${size} bytes)`;
    else if (s === 429) what = `the server asks to slow down (${said})`;
    else if (s === 503) what = `the server is unavailable (${said})`;
    else if (s === 408) what = `the server gave up waiting for the request (${said})`;
    else if (s >= 500) what = `the server failed (${said})`;
    else if (s === 404 || s === 405) what = `the server does not take uploads at ${url.origin}${url.pathname} (${said}): check the URL and method`;
    else if (s >= 300 && s < 400) {
      const to = typeof a.headers.location === 'string' ? safeUrl(a.headers.location, url) : undefined;
      what = `the server redirects${to ? ` to ${to}` : ''} (${said}): set the URL it points to`;
    } else if (s < 300) what = `the server answered ${said}, which is not one of the success codes`;
    else what = `the server refused the upload (${said})`;
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, MAX_SNIPPET);
    const retryAfter = s === 429 || s === 503 ? headerValue(a.headers['retry-after']) : undefined;
    return statusError(s, snippet ? `${what}: ${snippet}` : what, retryAfter);
  }

  /** Whatever the server echoed back (some echo the request headers) must not carry the secret into a log. */
  private redact(e: UploadError): UploadError {
    let message = e.message;
    for (const s of this.secrets) message = message.split(s).join('***');
    return message === e.message ? e : new UploadError(message, e.errorClass, e.code, e.status, e.retryAfterMs);
  }

  /** The body as a fresh stream: multipart preamble, the file's bytes, epilogue; exactly `length` bytes long. */
  private body(item: UploadItem, size: number): { stream: Readable; length: number; contentType: string; abort: () => void } {
    let pre = Buffer.alloc(0);
    let post = Buffer.alloc(0);
    let contentType = item.contentType || 'application/octet-stream';
    if (this.settings.mode === 'multipart') {
      const boundary = `----UplinkBoundary${crypto.randomBytes(16).toString('hex')}`;
      const values = placeholderValues(item);
      const parts: string[] = [];
      for (const [name, template] of Object.entries(this.settings.extraFields)) {
        const value = template.replace(FIELD_PLACEHOLDER, (m, p: string) => values[p] ?? (p.startsWith('metadata.') ? '' : m));
        parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(name)}"\r\n\r\n${value}\r\n`);
      }
      const filename = item.key.split('/').pop() || 'file';
      parts.push(
        `--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(this.settings.fieldName)}"; filename="${escapeQuoted(filename)}"\r\n` +
          `Content-Type: ${oneLine(contentType)}\r\n\r\n`,
      );
      pre = Buffer.from(parts.join(''), 'utf8');
      post = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
      contentType = `multipart/form-data; boundary=${boundary}`;
    }

    let sent = 0;
    const source = item.file ? { file: item.file } : { body: item.body ?? Buffer.alloc(0) };
    // Exactly the announced bytes: a file that grew sends its first `size` bytes, one that shrank fails below.
    const range = item.file && size > 0 ? { start: 0, end: size } : undefined;
    const content = openBody(source, this.bandwidth, (n) => item.onProgress?.((sent += n)), range);
    // openBody pipes the file into a throttle; destroying the throttle alone would leave the file open.
    content.on('unpipe', (src: Readable) => src.destroy());
    async function* frame() {
      if (pre.length) yield pre;
      let n = 0;
      for await (const chunk of content) {
        n += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (n !== size) throw new UploadError(`the file changed size while it was sent (${size} → ${n} bytes)`, 'permanent', 'FILE_CHANGED');
      if (post.length) yield post;
    }
    return {
      stream: Readable.from(frame(), { objectMode: false }),
      length: pre.length + size + post.length,
      contentType,
      abort: () => content.destroy(),
    };
  }

  /** One request. Resolves with the answer (any status); rejects on a network error, a body error or the signal. */
  private send(item: UploadItem, url: URL, size: number): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const body = this.body(item, size);
      const headers: Record<string, string> = { 'user-agent': 'node-red-contrib-uplink' };
      for (const [k, v] of Object.entries(this.settings.headers)) headers[k.toLowerCase()] = v;
      headers['content-type'] = body.contentType;
      headers['content-length'] = String(body.length);
      headers['x-uplink-key'] = headerSafe(item.key);
      headers['idempotency-key'] = headerSafe(item.key);
      const sha = item.sha256 ?? item.metadata?.sha256;
      if (sha) headers['x-uplink-sha256'] = headerSafe(sha);
      if (this.authorization) headers.authorization = this.authorization;

      let settled = false;
      let answered = false;
      const req = (this.secure ? https : http).request(url, { method: this.settings.method, headers, agent: this.agent });
      const finish = (err: unknown, answer?: Answer) => {
        if (settled) return;
        settled = true;
        item.signal.removeEventListener('abort', onAbort);
        // A request still sending (an early answer, an error, the signal) cannot leave its connection reusable.
        if (err || !req.writableFinished) {
          body.stream.destroy();
          body.abort();
          req.destroy();
        }
        if (err) reject(err);
        else resolve(answer!);
      };
      const onAbort = () => finish(abortReason(item.signal));
      item.signal.addEventListener('abort', onAbort, { once: true });

      req.on('error', (e) => {
        // Once the server has answered, its answer decides (a 413 sent before the body was read, then a close).
        if (answered) return;
        const code = networkCode(e);
        finish(req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') ? new StaleConnection(e) : e);
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (kept >= MAX_RESPONSE_BYTES) return;
          const part = chunk.subarray(0, MAX_RESPONSE_BYTES - kept);
          chunks.push(part);
          kept += part.length;
        });
        res.on('error', () => undefined);
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('close', () => {
          if (!res.complete) finish(Object.assign(new Error('the connection closed in the middle of the answer'), { code: 'ECONNRESET' }));
        });
      });
      pipeline(body.stream, req, (err) => {
        if (err && !answered) finish(err);
      });
    });
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException('the upload was aborted', 'AbortError');
}

/** Values for the extra fields' placeholders, from what the item carries. */
function placeholderValues(item: UploadItem): Record<string, string> {
  const f = item.fields ?? {};
  const m = item.metadata ?? {};
  const queueItem = f.item !== null && typeof f.item === 'object' ? (f.item as Record<string, unknown>) : {};
  const pick = (...values: unknown[]): string => {
    for (const v of values) {
      if (v instanceof Date) return v.toISOString();
      if (typeof v === 'string' && v !== '') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    }
    return '';
  };
  return {
    key: item.key,
    camera: pick(f.camera, m.camera),
    capturedAt: pick(f.capturedAt, m['captured-at'], m.capturedAt),
    itemId: pick(f.id, queueItem.id, f.itemId, m['item-id'], m.itemId),
    sha256: pick(item.sha256, f.sha256, m.sha256),
    bytes: String(item.bytes),
    durationS: pick(f.durationS),
    partial: f.partial === true ? 'true' : typeof f.durationS === 'number' ? 'false' : '',
    ...Object.fromEntries(
      Object.entries(f.metadata !== null && typeof f.metadata === 'object' ? (f.metadata as Record<string, unknown>) : {}).map(([k, v]) => [
        `metadata.${k}`,
        typeof v === 'boolean' ? String(v) : pick(v),
      ]),
    ),
  };
}

/** Multipart names and file names as browsers write them (WHATWG): quotes and line breaks percent-encoded. */
function escapeQuoted(s: string): string {
  return s.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** A header value must be printable; a key with other characters goes percent-encoded. */
function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A URL the server gave, absolute, without user info or query (either may hold a secret). */
function safeUrl(location: string, base: URL): string | undefined {
  try {
    const u = new URL(location, base);
    return `${u.origin}${u.pathname}`;
  } catch {
    return undefined;
  }
}
