import { isRecord } from './uplink';


/** msg.metadata that is not an object of names and values. */
export class MetadataError extends Error {
  readonly code = 'BAD_METADATA';
}

/**
 * What the user tells about a capture (session, arena, court…): the node's metadata rows, overridden per trigger by
 * msg.metadata. It travels as msg.uplink.metadata (the uploader's `fields.metadata.<name>`), and each scalar value
 * whose name is free is also copied to msg.uplink.<name> (`fields.<name>`) for mappings that want it flat.
 */
export type Metadata = Record<string, unknown>;

/** A name a Supabase column mapping (`fields.metadata.<name>`) and an HTTP form field can both carry. */
const METADATA_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const MAX_VALUE_CHARS = 1000;

/**
 * Names in msg.uplink that the capture, the recorder, the queue or the uploader read or write: metadata never replaces them (it is
 * still in msg.uplink.metadata). Compared without case, so `Key` does not sit beside `key` to confuse a reader.
 */
const RESERVED_UPLINK_NAMES: ReadonlySet<string> = new Set(
  [
    'file', 'bytes', 'sha256', 'contentType', 'width', 'height', 'camera', 'capturedAt', 'key', 'codec', 'durationS',
    'requestedS', 'partial', 'partialReason', 'metadata', 'item', 'ack', 'error', 'upload', 'name', 'id', 'url',
    'bucket', 'kb', 'resolution', 'itemId', 'priority', 'filename', 'payload', 'topic', 'status', 'ext', 'attempt',
    'recorder', 'endedAt', 'journal', 'recovered', 'clockSynced', 'capturedMono', 'bootId', 'keyTemplate', 'clockCorrection',
    'original', 'transform',
  ].map((n) => n.toLowerCase()),
);

/**
 * Reads the node's metadata setting: rows [{name, value}] from the editor, or an object {name: value}, or either as
 * JSON text. Problems go to `error`, all of them.
 */
export function parseMetadataSetting(raw: unknown, error: (message: string) => void): Record<string, string> {
  let v = raw;
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return {};
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      error('Metadata must be rows of name and value');
      return {};
    }
  }
  const pairs: Array<[unknown, unknown]> = Array.isArray(v)
    ? v.map((row) => (row && typeof row === 'object' ? [(row as Record<string, unknown>).name, (row as Record<string, unknown>).value] : [undefined, undefined]))
    : v && typeof v === 'object'
      ? Object.entries(v)
      : [];
  if (!Array.isArray(v) && (typeof v !== 'object' || v === null)) error('Metadata must be rows of name and value');
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const n = typeof name === 'string' ? name.trim() : '';
    if (n === '' && (value === undefined || value === '')) continue; // an empty row left in the editor
    if (!METADATA_NAME.test(n)) {
      error(`Metadata name "${String(name ?? '')}" must start with a letter or _ and hold only letters, digits, _ and - (at most 64)`);
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(out, n)) error(`Metadata name "${n}" is given twice`);
    const text = value === undefined || value === null ? '' : String(value);
    if (text.length > MAX_VALUE_CHARS) error(`Metadata "${n}" is longer than ${MAX_VALUE_CHARS} characters`);
    out[n] = text;
  }
  return out;
}

/** The node's metadata with the trigger's msg.metadata over it; msg.metadata, when given, must be an object. */
export function mergeMetadata(configured: Record<string, string>, fromMessage: unknown): Metadata {
  if (fromMessage === undefined || fromMessage === null) return { ...configured };
  if (typeof fromMessage !== 'object' || Array.isArray(fromMessage) || Buffer.isBuffer(fromMessage)) {
    throw new MetadataError(`msg.metadata must be an object like {"session": "S-12"} (got ${Array.isArray(fromMessage) ? 'an array' : typeof fromMessage})`, );
  }
  const out: Metadata = { ...configured };
  for (const [k, v] of Object.entries(fromMessage as Record<string, unknown>)) {
    if (k === '__proto__' || v === undefined || typeof v === 'function') continue;
    out[k] = v;
  }
  return out;
}

/** The metadata values copied flat into msg.uplink: scalars under a valid name that nothing in msg.uplink owns. */
export function flatMetadata(metadata: Metadata): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (!METADATA_NAME.test(k) || RESERVED_UPLINK_NAMES.has(k.toLowerCase())) continue;
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[k] = v;
  }
  return out;
}

/**
 * msg.uplink for a capture: what the trigger carried, the metadata's flat copies, the capture's own facts (which no
 * metadata replaces), and the metadata itself when there is any.
 */
export function uplinkWithMetadata(previous: unknown, facts: object, metadata: Metadata): Record<string, unknown> {
  const base = isRecord(previous) ? previous : {};
  const hasMetadata = Object.keys(metadata).length > 0;
  return { ...base, ...(hasMetadata ? flatMetadata(metadata) : {}), ...facts, ...(hasMetadata ? { metadata } : {}) };
}
