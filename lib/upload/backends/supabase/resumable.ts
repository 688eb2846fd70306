import http from 'http';
import https from 'https';
import { Readable } from 'stream';

/**
 * A small client of the tus resumable upload protocol 1.0.0 (core, creation, termination; https://tus.io/protocols/
 * resumable-upload): create an upload, learn its offset, send byte ranges, delete it. It knows nothing of a store's
 * metadata or errors beyond the protocol; the backend using it decides what an answer means.
 */
export const TUS_VERSION = '1.0.0';

/** An answer the protocol did not expect (a status other than 2xx, or a 2xx missing a header it needs), with its text. */
export class TusAnswerError extends Error {
  constructor(
    readonly method: string,
    readonly status: number,
    /** The answer's body (plain text for tus servers, JSON from a gateway in front), at most 64 KB. */
    readonly body: string,
    readonly headers: http.IncomingHttpHeaders,
  ) {
    super(`${method} answered HTTP ${status}${body.trim() ? `: ${body.trim().slice(0, 200)}` : ''}`);
    this.name = 'TusAnswerError';
  }

  get retryAfter(): string | undefined {
    const v = this.headers['retry-after'];
    return typeof v === 'string' ? v : undefined;
  }
}

/** The body of a PATCH ended before (or ran past) the length it declared: the file changed under us. */
export class TusBodyLengthError extends Error {
  constructor(
    readonly declared: number,
    readonly actual: number,
  ) {
    super(`the data to send had ${actual} bytes where ${declared} were declared (the file changed while it was sent)`);
    this.name = 'TusBodyLengthError';
  }
}

/** Kept-alive connections for one target, reused across its uploads. TLS certificates are verified (Node's default). */
export class TusAgents {
  private readonly plain = new http.Agent({ keepAlive: true });
  private readonly tls = new https.Agent({ keepAlive: true });

  agentFor(url: URL): http.Agent {
    return url.protocol === 'https:' ? this.tls : this.plain;
  }

  destroy(): void {
    this.plain.destroy();
    this.tls.destroy();
  }
}

export interface TusSession {
  /** Sent with every request (authorization and the like) besides the protocol's own headers. */
  headers: Record<string, string>;
  agents: TusAgents;
  /** Aborts whatever request is under way. */
  signal: AbortSignal;
  /** A request fails when nothing moves (no body byte out, no answer byte in) for this long. */
  idleMs: number;
}

export interface TusOffset {
  offset: number;
  /** Absent when the server defers the length. */
  length?: number;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const MAX_ANSWER_TEXT = 64 * 1024;

/** `Upload-Metadata`: comma-separated `key base64(value)` pairs; empty values are left out. */
function encodeMetadata(meta: Record<string, string | undefined>): string {
  return Object.entries(meta)
    .filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '')
    .map(([k, v]) => {
      if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(k)) throw new Error(`tus metadata key "${k}" must be ASCII without spaces or commas`);
      return `${k} ${Buffer.from(v, 'utf8').toString('base64')}`;
    })
    .join(',');
}

/** What classifyThrown reads as "stopped": the item's signal fired (the flow is stopping, or the uploader's timer). */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('the upload was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason as unknown });
}

function header(h: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The protocol names one success status per request (201, 200, 204, 204); any 2xx is taken as it. */
function ok(a: Answer): boolean {
  return a.status >= 200 && a.status < 300;
}

function nonNegativeInt(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,16}$/.test(v.trim()) ? Number(v.trim()) : undefined;
}

export class TusClient {
  constructor(private readonly session: TusSession) {}

  /** POST: creates an upload of `length` bytes and returns its URL (the Location, resolved against the endpoint). */
  async create(endpoint: string, length: number, metadata: Record<string, string | undefined>): Promise<string> {
    const a = await this.request('POST', endpoint, { 'Upload-Length': String(length), 'Upload-Metadata': encodeMetadata(metadata) });
    if (!ok(a)) throw new TusAnswerError('POST', a.status, a.body, a.headers);
    const location = header(a.headers, 'location');
    if (!location) throw new TusAnswerError('POST', a.status, 'the answer to the creation has no Location header', a.headers);
    return new URL(location, endpoint).href;
  }

  /** HEAD: how many bytes of the upload the server holds, and its length. */
  async head(url: string): Promise<TusOffset> {
    const a = await this.request('HEAD', url, {});
    if (!ok(a)) throw new TusAnswerError('HEAD', a.status, a.body, a.headers);
    const offset = nonNegativeInt(header(a.headers, 'upload-offset'));
    if (offset === undefined) throw new TusAnswerError('HEAD', a.status, 'the answer has no valid Upload-Offset header', a.headers);
    return { offset, length: nonNegativeInt(header(a.headers, 'upload-length')) };
  }

  /**
   * PATCH: sends `length` bytes from `body` at `offset`; returns the new offset the server confirmed. The body is
   * streamed (with backpressure), never held whole.
   */
  async patch(url: string, offset: number, body: Readable, length: number): Promise<number> {
    const a = await this.request(
      'PATCH',
      url,
      { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
      { stream: body, length },
    );
    if (!ok(a)) throw new TusAnswerError('PATCH', a.status, a.body, a.headers);
    const next = nonNegativeInt(header(a.headers, 'upload-offset'));
    if (next === undefined) throw new TusAnswerError('PATCH', a.status, 'the answer has no valid Upload-Offset header', a.headers);
    return next;
  }

  /** DELETE (termination): the server forgets the upload and its bytes. */
  async terminate(url: string): Promise<void> {
    const a = await this.request('DELETE', url, {});
    if (!ok(a)) throw new TusAnswerError('DELETE', a.status, a.body, a.headers);
  }

  /**
   * One request. Settles with the answer as soon as its headers and text are in, even when the server answered
   * before reading the whole body (an error such as 409): the rest of the body is then not sent and the connection
   * is closed, since it cannot be reused.
   */
  private request(
    method: string,
    target: string,
    extra: Record<string, string>,
    body?: { stream: Readable; length: number },
  ): Promise<Answer> {
    const { signal, idleMs, agents } = this.session;
    const url = new URL(target);
    if (signal.aborted) {
      body?.stream.destroy();
      return Promise.reject(abortError(signal));
    }
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      let bodyDone = !body;
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        body?.stream.unpipe();
        body?.stream.destroy();
        req.destroy();
        reject(e);
      };
      const succeed = (a: Answer) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (!bodyDone) {
          // Answered before the body was all sent: stop sending; the connection is in an unknown state.
          body?.stream.unpipe();
          body?.stream.destroy();
          req.destroy();
        }
        resolve(a);
      };
      const arm = () => {
        if (settled) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => fail(new DOMException(`no progress within ${idleMs} ms`, 'TimeoutError')), idleMs);
      };
      const onAbort = () => fail(abortError(signal));

      const mod = url.protocol === 'https:' ? https : http;
      const headers: Record<string, string> = { ...this.session.headers, 'Tus-Resumable': TUS_VERSION, ...extra };
      if (method !== 'HEAD') headers['Content-Length'] = String(body ? body.length : 0);
      const req = mod.request(url, { method, headers, agent: agents.agentFor(url) });
      req.on('error', fail);
      req.on('response', (res) => {
        arm();
        const chunks: Buffer[] = [];
        let kept = 0;
        const done = () => succeed({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.on('data', (c: Buffer) => {
          arm();
          if (kept < MAX_ANSWER_TEXT) {
            chunks.push(c);
            kept += c.length;
          }
        });
        res.on('end', done);
        // A connection closed while the answer's text arrives: the status and headers are the answer.
        res.on('error', done);
        res.on('close', done);
      });

      signal.addEventListener('abort', onAbort, { once: true });
      arm();
      if (!body) {
        req.end();
        return;
      }
      let sent = 0;
      body.stream.on('data', (c: Buffer) => {
        sent += c.length;
        arm();
        if (sent > body.length) fail(new TusBodyLengthError(body.length, sent));
      });
      body.stream.on('end', () => {
        if (sent !== body.length) fail(new TusBodyLengthError(body.length, sent));
        else bodyDone = true;
      });
      body.stream.on('error', fail);
      body.stream.pipe(req);
    });
  }
}
