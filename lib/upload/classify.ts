import { parseRetryAfter } from '../backoff';
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

/** HTTP statuses: 408, 429 and 5xx are worth retrying; any other 4xx means the request itself is wrong. */
export function classifyStatus(status: number): FailureClass {
  if (status === 408 || status === 429 || status >= 500) return 'retryable';
  return 'permanent';
}

/** The network-level code of an error or of its cause chain (fetch wraps the socket error in `cause`). */
export function networkCode(e: unknown): string | undefined {
  for (let cur = e as { code?: unknown; cause?: unknown; name?: unknown } | undefined, i = 0; cur && i < 5; cur = cur.cause as typeof cur, i++) {
    if (typeof cur.code === 'string' && NETWORK_CODES[cur.code]) return cur.code;
  }
  return undefined;
}

/**
 * Turns whatever a request threw into an UploadError. `timeoutMs` names the limit when the request was aborted by its
 * timer; an abort because the node is closing is retryable too (the item goes out again after the restart).
 */
export function classifyThrown(e: unknown, timeoutMs: number): UploadError {
  if (e instanceof UploadError) return e;
  const err = e as Error & { code?: string; name?: string };
  const code = networkCode(e);
  if (code) return new UploadError(NETWORK_CODES[code], 'retryable', code);
  if (err?.name === 'TimeoutError') return new UploadError(`no answer within ${Math.round(timeoutMs / 1000)} s`, 'retryable', 'TIMEOUT');
  if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR') {
    // Either the request timer or the flow stopping; the signal's reason tells which.
    const reason = (err as { cause?: { name?: string } }).cause?.name;
    if (reason === 'TimeoutError') return new UploadError(`no answer within ${Math.round(timeoutMs / 1000)} s`, 'retryable', 'TIMEOUT');
    return new UploadError('stopped: the upload was cancelled (the flow is stopping)', 'retryable', 'ABORTED');
  }
  // Programming or setup errors (an invalid URL or header) will not fix themselves by waiting.
  if (typeof err?.code === 'string' && /^ERR_INVALID_/.test(err.code)) return new UploadError(err.message, 'permanent', err.code);
  if (err?.code === 'ENOENT') return new UploadError(`the file to upload is gone: ${err.message}`, 'permanent', 'FILE_GONE');
  if (err?.code === 'EACCES' || err?.code === 'EISDIR') return new UploadError(`the file cannot be read: ${err.message}`, 'permanent', err.code);
  return new UploadError(err?.message ?? String(e), 'retryable', err?.code ?? err?.name ?? 'ERROR');
}

/** An UploadError for an HTTP answer, with its Retry-After when a 429/503 gives one. */
export function statusError(status: number, message: string, retryAfter?: string | null, code = `HTTP_${status}`): UploadError {
  const retryAfterMs = retryAfter ? parseRetryAfter(retryAfter) : undefined;
  return new UploadError(message, classifyStatus(status), code, status, retryAfterMs);
}
