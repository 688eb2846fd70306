import { parseRetryAfter } from '../util/backoff';
import { FailureClass, UploadError } from './types';

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  ESOCKETTIMEDOUT: 'socket timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  ENOTFOUND: 'host name not found',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'answer stalled',
  ECONNABORTED: 'connection aborted',
};

/** HTTP statuses: 408, 423 (locked), 429 and 5xx are worth retrying; any other 4xx means the request itself is wrong. */
export function classifyStatus(status: number): FailureClass {
  if (status === 408 || status === 423 || status === 429 || status >= 500) return 'retryable';
  return 'permanent';
}

type Chain = { code?: unknown; cause?: unknown; originalError?: unknown; name?: unknown; message?: unknown };

/** The error and what it wraps: fetch puts the socket error in `cause`, storage-js keeps fetch's in `originalError`. */
function chain(e: unknown): Chain[] {
  const out: Chain[] = [];
  let cur = e as Chain | undefined;
  for (let i = 0; cur && typeof cur === 'object' && i < 6; i++) {
    out.push(cur);
    cur = (cur.cause ?? cur.originalError) as Chain | undefined;
  }
  return out;
}

/** The failure of a request that got no answer within its time limit. */
export function timeoutError(ms: number): UploadError {
  return new UploadError(`no answer within ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`}`, 'retryable', 'TIMEOUT');
}

/** The network-level code of an error or of its cause chain (fetch wraps the socket error in `cause`). */
export function networkCode(e: unknown): string | undefined {
  for (const c of chain(e)) if (typeof c.code === 'string' && NETWORK_CODES[c.code]) return c.code;
  return undefined;
}

/**
 * Turns whatever a request threw into an UploadError. `timeoutMs` names the limit when the request was aborted by its
 * timer; an abort because the node is closing is retryable too (the item goes out again after the restart).
 */
export function classifyThrown(e: unknown, timeoutMs: number): UploadError {
  if (e instanceof UploadError) return e;
  const err = e as Error & { code?: string; name?: string };
  for (const c of chain(e)) {
    if (c.code === 'ENOENT') return new UploadError(`the file to upload is gone: ${String(c.message)}`, 'permanent', 'FILE_GONE');
    if (c.code === 'EACCES' || c.code === 'EISDIR') return new UploadError(`the file cannot be read: ${String(c.message)}`, 'permanent', c.code);
    if (c.code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
      return new UploadError('the file changed size while it was being sent', 'permanent', 'FILE_CHANGED');
    }
  }
  const code = networkCode(e);
  if (code) return new UploadError(NETWORK_CODES[code], 'retryable', code);
  if (err?.name === 'TimeoutError') return timeoutError(timeoutMs);
  if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR') {
    // Either the request timer or the flow stopping; the signal's reason tells which.
    const reason = (err as { cause?: { name?: string } }).cause?.name;
    if (reason === 'TimeoutError') return timeoutError(timeoutMs);
    return new UploadError('stopped: the upload was cancelled (the flow is stopping)', 'retryable', 'ABORTED');
  }
  // Programming or setup errors (an invalid URL or header) will not fix themselves by waiting.
  if (typeof err?.code === 'string' && /^ERR_INVALID_/.test(err.code)) return new UploadError(err.message, 'permanent', err.code);
  return new UploadError(err?.message ?? String(e), 'retryable', err?.code ?? err?.name ?? 'ERROR');
}

/** An UploadError for an HTTP answer, with its Retry-After when a 429/503 gives one. */
export function statusError(status: number, message: string, retryAfter?: string | null, code = `HTTP_${status}`): UploadError {
  const retryAfterMs = retryAfter ? parseRetryAfter(retryAfter) : undefined;
  return new UploadError(message, classifyStatus(status), code, status, retryAfterMs);
}

/**
 * The answers with which a store says it will never do a request of this kind, however often it is asked: not
 * implemented (501), not allowed on this resource (405), or denied to this key by a policy (403; an upload-only IAM
 * policy without s3:ListMultipartUploadParts or s3:AbortMultipartUpload). Waiting does not change them.
 */
const REFUSED_STATUSES = new Set([403, 405, 501]);
const REFUSED_CODES = new Set(['AccessDenied', 'MethodNotAllowed', 'NotImplemented']);

/** Whether an answer (its HTTP status and the store's error code) refuses the request for good. */
export function refusedForGood(status: number | undefined, code?: string): boolean {
  return (code !== undefined && REFUSED_CODES.has(code)) || (status !== undefined && REFUSED_STATUSES.has(status));
}

/** The code of an UploadError for an abort (of a half upload) the store refused for good: never worth another try. */
export const ABORT_REFUSED = 'ABORT_REFUSED';

/** An abort the store refused for good, as a permanent UploadError saying what it answered. */
export function abortRefused(what: string, status: number | undefined, answer: string): UploadError {
  return new UploadError(`the store refused to abort ${what} (${answer})`, 'permanent', ABORT_REFUSED, status);
}
