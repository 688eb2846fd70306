import { PostgrestClient } from '@supabase/postgrest-js';
import { classifyThrown, statusError } from '../../classify';
import { UploadError, UploadItem } from '../../types';
import { Exchange, authHeaders } from './exchange';
import type { SupabaseSettings } from './settings';

/** What a row column can be filled from, besides `fields.<name>`. */
export const SOURCE_FIELDS = [
  'key',
  'url',
  'bucket',
  'bytes',
  'kb',
  'camera',
  'capturedAt',
  'width',
  'height',
  'resolution',
  'contentType',
  'sha256',
  'itemId',
] as const;

/** The row for one object: each mapped column gets its source field's value; missing values are left out (column default). */
export function buildRow(
  s: Pick<SupabaseSettings, 'bucket' | 'columns'>,
  item: Pick<UploadItem, 'key' | 'bytes' | 'contentType' | 'sha256' | 'fields'>,
  url: string,
): Record<string, unknown> {
  const f = item.fields ?? {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const width = num(f.width);
  const height = num(f.height);
  const queueItem = f.item && typeof f.item === 'object' ? (f.item as Record<string, unknown>) : undefined;
  const id = f.id ?? queueItem?.id;
  const sources: Record<string, unknown> = {
    key: item.key,
    url,
    bucket: s.bucket,
    bytes: item.bytes,
    kb: Math.round((item.bytes / 1024) * 10) / 10,
    camera: str(f.camera),
    capturedAt: str(f.capturedAt),
    width,
    height,
    resolution: width !== undefined && height !== undefined ? `${width}x${height}` : undefined,
    contentType: item.contentType,
    sha256: item.sha256 ?? str(f.sha256),
    itemId: typeof id === 'number' || typeof id === 'string' ? id : undefined,
  };
  const row: Record<string, unknown> = {};
  for (const [column, source] of Object.entries(s.columns)) {
    let v: unknown;
    if (source.startsWith('fields.')) {
      v = f;
      for (const part of source.slice('fields.'.length).split('.')) {
        v = v !== null && typeof v === 'object' && !Buffer.isBuffer(v) ? (v as Record<string, unknown>)[part] : undefined;
      }
      if (Buffer.isBuffer(v) || typeof v === 'function' || typeof v === 'bigint') v = undefined;
    } else {
      v = sources[source];
    }
    if (v !== undefined) row[column] = v;
  }
  return row;
}

/**
 * One row per object. The upsert with ignoreDuplicates sends `Prefer: resolution=ignore-duplicates` and
 * `on_conflict=<conflictColumn>`: PostgREST answers 201 whether the row was new or already there, so a retry (the
 * object upload repeats too, harmlessly) leaves exactly one row. That needs a UNIQUE constraint on the conflict
 * column in the table (e.g. `image_url text unique`); without one PostgREST refuses the request (42P10).
 */
export async function writeRow(s: SupabaseSettings, item: UploadItem, url: string, ex: Exchange): Promise<void> {
  const row = buildRow(s, item, url);
  const db = new PostgrestClient(`${s.url}/rest/v1`, { headers: authHeaders(s.key), fetch: ex.fetch, retry: false });
  const { error, status } = await db.from(s.table!).upsert(row as never, { onConflict: s.conflictColumn, ignoreDuplicates: true });
  if (!error) return;
  const pgCode = typeof error.code === 'string' ? error.code : '';
  // A duplicate means the row is already there: that is what we wanted.
  if (status === 409 || pgCode === '23505') return;
  const where = `the object was stored, but the row in table "${s.table}" was not written`;
  if (status === 0) {
    const failure = classifyThrown(ex.lastThrown ?? new Error(error.message), s.timeoutMs);
    throw new UploadError(`${where}: ${failure.message}`, failure.errorClass, failure.code);
  }
  const answer = ex.lastError;
  const msg = (error.message || answer?.message || `HTTP ${status}`).slice(0, 200);
  const permanent = (why: string, code = pgCode || `HTTP_${status}`) => new UploadError(`${where}: ${why}`, 'permanent', code, status);
  if (status === 401) throw permanent(`the key was rejected (${msg})`, pgCode || 'InvalidApiKey');
  if (status === 403 || pgCode === '42501') throw permanent(`the key's role may not insert into "${s.table}" (${msg})`);
  if (pgCode === 'PGRST205' || (status === 404 && pgCode.startsWith('PGRST'))) throw permanent(`the table does not exist (${msg})`);
  if (pgCode === 'PGRST204') throw permanent(`a mapped column does not exist (${msg})`);
  if (pgCode === '42P10') throw permanent(`the column "${s.conflictColumn}" needs a UNIQUE constraint, so a retry cannot write a second row`);
  throw statusError(status, `${where}: ${msg} (HTTP ${status}${pgCode ? ` ${pgCode}` : ''})`, answer?.retryAfter, pgCode || `HTTP_${status}`);
}
