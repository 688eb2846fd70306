import path from 'path';

/** What a key may be built from: only what was fixed when the item was captured or queued, so retries agree. */
export interface KeyFields {
  camera?: string;
  /** ISO time of capture (or of queueing, for data that was not captured). */
  capturedAt?: string;
  width?: number;
  height?: number;
  /** Queue item id. */
  id?: number | string;
  /** Original file name, without folders. */
  name?: string;
  ext?: string;
  sha256?: string;
}

export const DEFAULT_KEY_TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';
const PLACEHOLDERS = ['camera', 'date', 'time', 'year', 'month', 'day', 'hour', 'width', 'height', 'id', 'name', 'ext', 'sha256'];
const MAX_KEY_BYTES = 1024;

export class KeyTemplateError extends Error {}

/**
 * Keeps one path segment's worth of characters that every store accepts (S3, Supabase, a FAT-formatted USB disk):
 * letters, digits and . _ - = + @ , ( ). Anything else, slashes included, becomes "_", so a value can never add a
 * folder level or climb out of one.
 */
export function sanitizeSegment(value: string): string {
  const cleaned = value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._\-=+@,()]/g, '_')
    .replace(/_+/g, '_');
  if (cleaned === '' || /^\.+$/.test(cleaned)) return '_';
  return cleaned.slice(0, 200);
}

/** Cleans a whole key: no leading "/", no empty, "." or ".." segments, no control characters, at most 1024 bytes. */
export function sanitizeKey(key: string): string {
  const segments = key
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => (s === '..' ? '_' : sanitizeSegment(s)));
  const out = segments.join('/');
  if (out === '') throw new KeyTemplateError('the object key is empty');
  if (Buffer.byteLength(out) > MAX_KEY_BYTES) throw new KeyTemplateError(`the object key is longer than ${MAX_KEY_BYTES} bytes`);
  return out;
}

/** Checks a template at deploy: known placeholders only, and a key comes out of it for a typical item. */
export function validateKeyTemplate(template: string): void {
  if (template.trim() === '') throw new KeyTemplateError('the key template is empty');
  const unknown = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]).filter((p) => !PLACEHOLDERS.includes(p));
  if (unknown.length > 0) {
    throw new KeyTemplateError(`unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `{${u}}`).join(', ')} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
  }
  if (/[{}]/.test(template.replace(/\{[^}]*\}/g, ''))) throw new KeyTemplateError('the key template has an unmatched { or }');
  if (!/\{(id|name|time|sha256)\}/.test(template)) {
    throw new KeyTemplateError('the key template must contain {id}, {name}, {time} or {sha256}, or every item would get the same key');
  }
  const sample = renderKey(template, { camera: 'cam', capturedAt: '2026-01-02T03:04:05.678Z', width: 1, height: 1, id: 1, name: 'a.jpg', ext: 'jpg', sha256: 'ab' });
  if (sample === '') throw new KeyTemplateError('the key template gives an empty key');
}

/**
 * The key of an item that is not a capture (a file queued by msg.filename, a reading), when the uploader's template
 * is made of a capture's facts ({camera}, {width}, {height}) it does not have: the file's own name, under the day it
 * was queued, with the time so that two files of the same name never take each other's place.
 */
export const ITEM_KEY_TEMPLATE = '{date}/{time}_{name}';
/** The same for an inline item that has no name. */
export const NAMELESS_ITEM_KEY_TEMPLATE = '{date}/{time}_{id}.{ext}';

/** The template an item's key is rendered from: the given one, unless the item is not a capture and it is a capture's. */
export function templateFor(template: string, f: KeyFields): string {
  const isCapture = f.camera !== undefined || f.width !== undefined || f.height !== undefined;
  if (isCapture || !/\{(camera|width|height)\}/.test(template) || template.includes('{name}')) return template;
  return f.name ? ITEM_KEY_TEMPLATE : NAMELESS_ITEM_KEY_TEMPLATE;
}

/** Characters that join a placeholder to its neighbours; one goes with a placeholder that has no value. */
const JOINERS = '_-.';

/**
 * Renders the key. Times are UTC (a Pi's clock zone changes with DST; keys must not). A placeholder without a value
 * ({camera}, {width}, {height}, {id} of an item no queue delivered) is dropped with one separator beside it
 * (`{camera}/{date}_{time}_{width}_{height}.{ext}` becomes `{date}_{time}.{ext}`); where that would leave an empty
 * folder or file name it reads "unknown" ("noid") instead.
 */
export function renderKey(template: string, f: KeyFields): string {
  const at = f.capturedAt ? new Date(f.capturedAt) : undefined;
  const valid = at && !Number.isNaN(at.getTime());
  const iso = valid ? at!.toISOString() : '';
  const ext = f.ext ?? (f.name ? path.extname(f.name).slice(1) : '') ?? '';
  const values: Record<string, string | undefined> = {
    camera: f.camera,
    date: valid ? iso.slice(0, 10) : 'undated',
    time: valid ? iso.slice(11, 19).replace(/:/g, '-') + (iso.slice(20, 23) !== '000' ? `.${iso.slice(20, 23)}` : '') : String(f.id ?? 'untimed'),
    year: valid ? iso.slice(0, 4) : 'undated',
    month: valid ? iso.slice(5, 7) : 'undated',
    day: valid ? iso.slice(8, 10) : 'undated',
    hour: valid ? iso.slice(11, 13) : 'undated',
    width: f.width !== undefined ? String(f.width) : undefined,
    height: f.height !== undefined ? String(f.height) : undefined,
    id: f.id !== undefined ? String(f.id) : undefined,
    name: f.name ? path.basename(f.name) : String(f.id ?? 'unnamed'),
    ext: ext || 'bin',
    sha256: f.sha256 ? f.sha256.slice(0, 16) : String(f.id ?? 'nosum'),
  };
  const placeholder = (v: string) => sanitizeSegment(v);
  // Literal text and placeholders, alternating: [text, name, text, name, ..., text].
  const parts = template.split(/\{([a-z0-9]+)\}/);
  for (let i = 1; i < parts.length; i += 2) {
    const v = values[parts[i]];
    if (v !== undefined) {
      parts[i] = placeholder(v);
      continue;
    }
    parts[i] = '';
    const before = parts[i - 1];
    const after = parts[i + 1];
    if (before !== '' && JOINERS.includes(before[before.length - 1])) parts[i - 1] = before.slice(0, -1);
    else if ((before === '' || before.endsWith('/')) && after !== '' && '_-/'.includes(after[0])) parts[i + 1] = after.slice(1);
    else if (before.endsWith('/') && after === '' && i === parts.length - 2) parts[i - 1] = before.slice(0, -1);
  }
  const dropped = parts.join('');
  if (soundKey(dropped)) return sanitizeKey(dropped);
  const fallback: Record<string, string> = { camera: 'unknown', width: 'unknown', height: 'unknown', id: 'noid' };
  return sanitizeKey(template.replace(/\{([a-z0-9]+)\}/g, (_m, p: string) => placeholder(values[p] ?? fallback[p] ?? '')));
}

/** Every folder and file name in the key has a name of its own (no "", no ".jpg" left by a dropped placeholder). */
function soundKey(key: string): boolean {
  const segments = key.replace(/^\/+/, '').split('/');
  return segments.length > 0 && segments.every((s) => s !== '' && !s.startsWith('.'));
}
