import { UploadError, UploadItem } from '../../types';
import { answerError } from './errors';
import { Exchange, authHeaders, encodeKey, parseAnswer } from './exchange';
import type { SupabaseSettings } from './settings';

// What the store holds of an object, asked after either upload path (REST or resumable) says it stored it: an item
// is uploaded only once the store holds as many bytes as it has.

/** The store refused to overwrite the object: it is uploaded if it has this item's size, else that is permanent. */
export async function settleExisting(s: SupabaseSettings, item: UploadItem, ex: Exchange): Promise<void> {
  const stored = await storedSize(s, item, ex);
  if (stored === item.bytes) return;
  throw new UploadError(
    `an object already exists at ${s.bucket}/${item.key} with ${stored} bytes (this item has ${item.bytes}) and the store refused to overwrite it`,
    'permanent',
    'KeyAlreadyExists',
    409,
  );
}

export async function verifySize(s: SupabaseSettings, item: UploadItem, ex: Exchange): Promise<void> {
  const stored = await storedSize(s, item, ex);
  if (stored !== item.bytes) {
    throw new UploadError(`the store holds ${stored} bytes for ${s.bucket}/${item.key}, the item has ${item.bytes}`, 'retryable', 'SIZE_MISMATCH');
  }
}

/**
 * The stored object's size, from `GET /storage/v1/object/info/authenticated/{bucket}/{key}`. Not storage-js's
 * `info()`: that uses `/object/info/{bucket}/{key}`, which treats a token it cannot verify as anonymous, so a bad key
 * on a private bucket would read as "Bucket not found"; the authenticated route says "access denied" instead.
 * Servers whose info answer has no size (older storage versions) are asked with a HEAD of the object.
 */
export async function storedSize(s: SupabaseSettings, item: UploadItem, ex: Exchange): Promise<number | undefined> {
  const headers = authHeaders(s.key);
  const path = `${encodeURIComponent(s.bucket)}/${encodeKey(item.key)}`;
  const res = await ex.fetch(`${s.url}/storage/v1/object/info/authenticated/${path}`, { headers });
  if (!res.ok) throw answerError(s, ex.lastError ?? parseAnswer(res.status, '', null), 'verify');
  const info = (await res.json().catch(() => undefined)) as { size?: unknown } | undefined;
  if (typeof info?.size === 'number') return info.size;
  const head = await ex.fetch(`${s.url}/storage/v1/object/authenticated/${path}`, { method: 'HEAD', headers });
  if (!head.ok) throw answerError(s, ex.lastError ?? parseAnswer(head.status, '', null), 'verify');
  const len = head.headers.get('content-length');
  return len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
}
