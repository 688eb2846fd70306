import { StorageApiError, StorageError, isStorageError } from '@supabase/storage-js';
import { classifyStatus, classifyThrown, networkCode, statusError } from '../../classify';
import { UploadError } from '../../types';
import { Answer, Exchange, parseAnswer } from './exchange';
import { TUS_VERSION, TusAnswerError, TusBodyLengthError } from './resumable';
import type { SupabaseSettings } from './settings';

/** A TUS error answer as an Answer, with Storage's code named from its plain-text message where it has none. */
export function tusAnswer(e: TusAnswerError): Answer {
  const a = parseAnswer(e.status, e.body, e.retryAfter ?? null);
  if (a.code) return a;
  const m = a.message ?? '';
  let code: string | undefined;
  if (/upload-offset conflict/i.test(m) || (a.status === 409 && /offset/i.test(m))) code = 'OffsetConflict';
  else if (/bucket not found/i.test(m)) code = 'NoSuchBucket';
  else if (a.status === 409) code = 'KeyAlreadyExists';
  else if (a.status === 413 || /maximum size exceeded/i.test(m)) code = 'EntityTooLarge';
  else if (/^invalid key/i.test(m)) code = 'InvalidKey';
  return { ...a, code };
}

/**
 * The store no longer has the resumable upload (it expired, or was cleaned up): 404 or 410 on the upload's own URL, not
 * a missing bucket. A new upload can still succeed.
 */
export function uploadGone(e: unknown): boolean {
  if (!(e instanceof TusAnswerError) || e.method === 'POST') return false;
  const a = tusAnswer(e);
  return (a.status === 404 || a.status === 410) && a.code !== 'NoSuchBucket';
}

/** The file is not the size it was queued with: it can never upload right, and is not worth retrying. */
export function sizeChanged(queued: number, now: number): UploadError {
  return new UploadError(`the file changed size since it was queued (${queued} → ${now} bytes)`, 'permanent', 'FILE_CHANGED');
}

/** Storage answers every error but 500 as HTTP 400: classify on the real status and code in the body. */
export function classifyStorage(s: SupabaseSettings, error: StorageError, ex: Exchange, step: 'upload' | 'verify'): UploadError {
  if (!(error instanceof StorageApiError)) {
    // No answer at all (network, timeout, file unreadable): storage-js keeps what fetch threw as originalError.
    return classifyFailure(s, (error as StorageError & { originalError?: unknown }).originalError ?? ex.lastThrown ?? error, ex);
  }
  const statusCode = Number(error.statusCode);
  const answer = ex.lastError ?? {
    httpStatus: error.status,
    status: Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599 ? statusCode : error.status,
    message: error.message,
  };
  return answerError(s, answer, step);
}

/** An error answer of Storage (REST or TUS, upload or size check) as an UploadError, permanent where retrying cannot help. */
export function answerError(s: SupabaseSettings, a: Answer, step: 'upload' | 'verify'): UploadError {
  const code = a.code ?? `HTTP_${a.status}`;
  const said = a.message ? `: ${a.message.slice(0, 200)}` : '';
  const tag = `(${a.status}${a.code ? ` ${a.code}` : ''})`;
  const permanent = (why: string) => new UploadError(`${why} ${tag}`, 'permanent', code, a.status);
  if (a.code === 'KeyAlreadyExists' || (a.status === 409 && step === 'upload')) return new UploadError(`the object already exists ${tag}`, 'permanent', 'KeyAlreadyExists', 409);
  if (a.status === 401) return permanent(`the API key was rejected${said}`);
  if (a.status === 403 || a.code === 'AccessDenied' || a.code === 'InvalidJWT' || a.code === 'ExpiredToken') {
    return permanent(`access denied: the key was refused or may not write to bucket "${s.bucket}"${said}`);
  }
  if (a.code === 'NoSuchBucket' || (a.status === 404 && step === 'upload' && a.code !== 'NoSuchKey')) {
    return permanent(`bucket "${s.bucket}" not found`);
  }
  if (a.status === 404) {
    // Right after the upload said it stored the object: not visible (yet) is worth another try, not a dead letter.
    return new UploadError(`the stored object could not be found to check its size ${tag}`, 'retryable', code, a.status);
  }
  if (a.status === 413 || a.code === 'EntityTooLarge') return permanent(`the object is larger than the bucket or project allows`);
  if (a.code === 'InvalidKey') return permanent(`the store refuses the object key${said}`);
  if (a.code === 'InvalidMimeType' || a.status === 415) return permanent(`the bucket does not accept this content type${said}`);
  if (a.code === 'InvalidRequest' && /authorization/i.test(a.message ?? '')) return permanent(`the request carried no key${said}`);
  // A lock held by a concurrent write of the same object passes.
  if (a.status === 423 || a.code === 'ResourceLocked' || a.code === 'LockTimeout') {
    return new UploadError(`the object is locked by another write ${tag}`, 'retryable', code, a.status);
  }
  const what = classifyStatus(a.status) === 'retryable' ? (a.status === 429 ? 'too many requests' : 'the store failed') : `the ${step} was refused`;
  return statusError(a.status, `${what}${said} ${tag}`, a.retryAfter, code);
}

/** Whatever an upload attempt threw, classified: an answer of the store, a broken connection, a changed file, a timeout. */
export function classifyFailure(s: SupabaseSettings, e: unknown, ex: Exchange): UploadError {
  if (e instanceof UploadError) return e;
  if (isStorageError(e)) return classifyStorage(s, e, ex, 'upload');
  if (e instanceof TusAnswerError) return classifyTus(s, e);
  if (e instanceof TusBodyLengthError) return new UploadError(e.message, 'permanent', 'FILE_CHANGED');
  // The item's signal fired with a classified reason (the uploader's own timer): that reason is the failure.
  const cause = (e as { name?: unknown; cause?: unknown } | undefined)?.cause;
  if ((e as { name?: unknown })?.name === 'AbortError' && cause instanceof UploadError) return cause;
  for (let cur = e as { code?: unknown; cause?: unknown } | undefined, i = 0; cur && i < 5; cur = cur.cause as typeof cur, i++) {
    if (cur.code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
      return new UploadError('the file changed size while it was being uploaded', 'permanent', 'FILE_CHANGED');
    }
  }
  if (!networkCode(e) && (e as { cause?: unknown })?.cause) {
    // fetch wraps a failing body stream (file gone, unreadable) in "fetch failed": classify the cause.
    const inner = classifyThrown((e as { cause: unknown }).cause, s.timeoutMs);
    if (inner.errorClass === 'permanent') return inner;
  }
  return classifyThrown(e, s.timeoutMs);
}

/**
 * TUS answers carry the real status with a plain-text message (Storage's own errors, e.g. 409 "The resource already
 * exists", 404 "Bucket not found", 413 "Maximum size exceeded"), or JSON from the gateway and the auth check in
 * front: both read into the same classification as the REST path.
 */
function classifyTus(s: SupabaseSettings, e: TusAnswerError): UploadError {
  const a = tusAnswer(e);
  const said = a.message ? `: ${a.message.slice(0, 200)}` : '';
  if (a.status >= 200 && a.status < 300) return new UploadError(`the resumable upload answer broke the protocol${said}`, 'retryable', 'TUS_PROTOCOL', a.status);
  if (uploadGone(e)) {
    return new UploadError(`the store no longer has the resumable upload (expired); the next attempt starts a new one (${a.status})`, 'retryable', 'TUS_UPLOAD_GONE', a.status);
  }
  if (a.code === 'OffsetConflict') return new UploadError(`the store holds another offset of the upload than expected${said}`, 'retryable', 'OffsetConflict', a.status);
  // tus-node-server cancels a request whose upload another request (ours, retried) wants the lock of: transient.
  if (a.status === 400 && /request aborted/i.test(a.message ?? '')) return new UploadError(`the upload was busy with an earlier request${said}`, 'retryable', 'TUS_LOCKED', a.status);
  if (a.status === 412) return new UploadError(`the store does not speak tus ${TUS_VERSION}${said}`, 'permanent', 'TUS_VERSION', a.status);
  return answerError(s, a, 'upload');
}

/** The key never leaves this object: not in a message, whatever a server or library put into one. */
export function redact(s: SupabaseSettings, e: UploadError): UploadError {
  const key = s.key;
  if (!key || !e.message.includes(key)) return e;
  return new UploadError(e.message.split(key).join('[key]'), e.errorClass, e.code, e.status, e.retryAfterMs);
}
