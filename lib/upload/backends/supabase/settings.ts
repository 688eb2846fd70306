import { SettingsReader, text } from '../../../util/settings';
import { SOURCE_FIELDS } from './row';

export interface SupabaseSettings {
  /** The project URL, e.g. https://xyz.supabase.co (no trailing slash). */
  url: string;
  /** Service-role or anon key: a secret, never put into a message, log line or result. */
  key: string;
  bucket: string;
  /** Optional: one row per stored object is written into this table. */
  table?: string;
  /** Row column -> source field (see SOURCE_FIELDS, or `fields.<name>` for what the message carried). */
  columns: Record<string, string>;
  /** The table's unique column the row upsert conflicts on, so a retry cannot write a second row. */
  conflictColumn?: string;
  timeoutMs: number;
  /** Seconds, sent as `Cache-Control: max-age=<n>`; blank = storage-js's default (3600). */
  cacheControl?: string;
  /**
   * Base of the URL reported for each object, e.g. `https://xyz.supabase.co/storage/v1/object/public/<bucket>` for a
   * public bucket or a CDN; blank = the object's API location (`<url>/storage/v1/object/<bucket>/<key>`), which works
   * for any bucket with a key.
   */
  publicUrl?: string;
}

/**
 * Bodies up to this size go as one Buffer (a file is read whole first) in one REST request; larger ones go through the
 * resumable (TUS) endpoint in TUS_CHUNK_BYTES chunks streamed from disk, so a Pi never holds a video in memory and a
 * lost link costs at most one chunk. Supabase's own advice is TUS above 6 MB.
 */
export const BUFFER_LIMIT_BYTES = 6 * 1024 * 1024;

/** The chunk size Supabase documents for its TUS endpoint (`chunkSize: 6 * 1024 * 1024`). */
export const TUS_CHUNK_BYTES = 6 * 1024 * 1024;

const NAME = /^[A-Za-z0-9_]{1,63}$/;
const BUCKET = /^[A-Za-z0-9._-]{1,100}$/;
const FIELD_PATH = /^fields\.[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

/**
 * Reads the Supabase config node's settings and key once, at deploy; every problem is listed in one Error. The key
 * is checked but never quoted.
 */
export function parseSupabaseSettings(raw: Record<string, unknown>, credentials: Record<string, unknown>): SupabaseSettings {
  const r = new SettingsReader(raw);
  const errors = r.errors;
  const str = text;

  let url = r.required('url', 'project URL', 'Project URL is required (like https://xyz.supabase.co)').replace(/\/+$/, '');
  if (url !== '') {
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errors.push(`Project URL must start with http:// or https:// (got "${url}")`);
      else if (u.username || u.password) errors.push('Project URL must not contain a user name or password: the key goes in the key field');
      else if (u.search || u.hash) errors.push(`Project URL must not have a query or fragment (got "${url}")`);
      else if (/\/(storage|rest)\/v1$/.test(u.pathname.replace(/\/+$/, ''))) {
        errors.push(`Project URL is the project's address (like https://xyz.supabase.co), without /storage/v1 or /rest/v1`);
      } else url = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
    } catch {
      errors.push(`Project URL "${url}" is not a URL`);
    }
  }

  const key = str(credentials.key);
  if (key === '') r.need('API key', 'API key is required (the service-role key, or an anon key with storage policies)');
  else if (!/^[\x21-\x7e]+$/.test(key)) errors.push('API key contains spaces or characters a key cannot have (was it pasted whole?)');

  const bucket = r.required('bucket', 'bucket', 'Bucket is required');
  if (bucket !== '' && !BUCKET.test(bucket)) errors.push(`Bucket "${bucket}" must be letters, digits, dots, hyphens or underscores`);

  const table = str(raw.table);
  if (table !== '' && !NAME.test(table)) errors.push(`Table "${table}" must be letters, digits or underscores`);

  const columns = parseColumns(raw.columns, errors);
  if (table !== '' && Object.keys(columns).length === 0) errors.push(`Columns are required with a table: one "column = field" per line`);

  let conflictColumn: string | undefined = str(raw.conflictColumn) || undefined;
  if (table !== '') {
    if (conflictColumn !== undefined) {
      if (!NAME.test(conflictColumn)) errors.push(`Unique column "${conflictColumn}" must be letters, digits or underscores`);
      else if (!(conflictColumn in columns)) errors.push(`Unique column "${conflictColumn}" must be one of the mapped columns`);
    } else {
      conflictColumn = Object.keys(columns).find((c) => columns[c] === 'key') ?? Object.keys(columns).find((c) => columns[c] === 'url');
      if (conflictColumn === undefined && Object.keys(columns).length > 0) {
        errors.push('Map a column to key or url, or name the unique column, so a retried upload cannot write a second row');
      }
    }
  } else conflictColumn = undefined;

  const timeoutText = str(raw.timeout);
  let timeoutS = 60;
  if (timeoutText !== '') {
    const n = Number(timeoutText);
    if (!Number.isFinite(n) || n < 1 || n > 3600) errors.push(`Timeout must be a number of seconds from 1 to 3600 (got "${timeoutText}")`);
    else timeoutS = n;
  }

  let cacheControl: string | undefined = str(raw.cacheControl).replace(/^max-age=/i, '') || undefined;
  if (cacheControl !== undefined && !/^\d{1,9}$/.test(cacheControl)) {
    errors.push(`Cache control must be a number of seconds (got "${str(raw.cacheControl)}")`);
    cacheControl = undefined;
  }

  const publicUrl = str(raw.publicUrl).replace(/\/+$/, '');
  if (publicUrl !== '') {
    try {
      const u = new URL(publicUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errors.push(`Public URL must start with http:// or https:// (got "${publicUrl}")`);
      if (u.username || u.password) errors.push('Public URL must not contain a user name or password');
    } catch {
      errors.push(`Public URL "${publicUrl}" is not a URL`);
    }
  }

  r.check();
  return {
    url,
    key,
    bucket,
    table: table || undefined,
    columns,
    conflictColumn,
    timeoutMs: Math.round(timeoutS * 1000),
    cacheControl,
    publicUrl: publicUrl || undefined,
  };
}

/** "column = field" lines (blank lines and # comments skipped) or a JSON object {column: field}. */
function parseColumns(raw: unknown, errors: string[]): Record<string, string> {
  let pairs: [string, unknown][] = [];
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) pairs = Object.entries(raw);
  else if (typeof raw === 'string' && raw.trim().startsWith('{')) {
    try {
      const v: unknown = JSON.parse(raw);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      pairs = Object.entries(v);
    } catch (e) {
      errors.push(`Columns are not a JSON object {"column": "field"}: ${(e as Error).message}`);
      return {};
    }
  } else if (typeof raw === 'string') {
    raw.split(/\r?\n/).forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const eq = t.indexOf('=');
      if (eq < 0) {
        errors.push(`Columns line ${i + 1} "${t}" is not "column = field"`);
        return;
      }
      pairs.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
    });
  } else if (raw !== undefined && raw !== null) {
    errors.push('Columns must be text lines "column = field" or a JSON object');
  }
  const out: Record<string, string> = {};
  for (const [column, source] of pairs) {
    if (!NAME.test(column)) {
      errors.push(`Column "${column}" must be letters, digits or underscores`);
      continue;
    }
    if (column in out) {
      errors.push(`Column "${column}" is mapped twice`);
      continue;
    }
    const src = typeof source === 'string' ? source.trim() : '';
    if (!(SOURCE_FIELDS as readonly string[]).includes(src) && !FIELD_PATH.test(src)) {
      errors.push(`Column "${column}": unknown field "${String(source)}" (known: ${SOURCE_FIELDS.join(', ')}, or fields.<name> for a message property)`);
      continue;
    }
    out[column] = src;
  }
  return out;
}
