/**
 * `msg.uplink`: the part of a message that Uplink's nodes read and write, in one place.
 *
 * The capture and the recorder describe the file they wrote; the offline-queue adds `item` when it delivers; the
 * uploader adds `ack` and `upload` (success) or `error` (failure). Any node of the user's may sit in between, so a
 * reader trusts nothing: `readUplink` hands back only the fields whose type is right, and `uplinkRecord` the object
 * as it came, for code that passes it on.
 */

export type Msg = Record<string, unknown>;

/** Where the queue delivered an item from: the answer (ack or nack) names the same id and attempt. */
export interface QueueItemRef {
  id: number;
  attempt: number;
  priority: number;
  queuedAt: string;
  /** Names the queue that delivered the item, for the uploader to keep upload progress in the item's row. */
  queue: string;
}

/** The uploader's verdict on a failure: retryable ones go back into the queue, permanent ones to the failed items. */
export interface UploadFailureInfo {
  class: 'retryable' | 'permanent' | 'held';
  permanent: boolean;
  code: string;
  status?: number;
  message: string;
  retryAfterMs?: number;
  backend: string;
}

/** What a successful upload stored. */
export interface UploadDoneInfo {
  backend: string;
  key: string;
  url?: string;
  etag?: string;
  bytes: number;
  durationMs: number;
  status?: number;
  response?: unknown;
}

/**
 * Where a capture's journal keeps its file until a queue has committed it: the queue hands `entry` back to the
 * capture named `owner` (its node id), and a capture killed in between is sent again at the next start.
 */
export interface JournalRef {
  owner: string;
  entry: string;
}

/** The facts of a capture, a clip or a recorded segment. */
export interface CapturedFile {
  file: string;
  bytes: number;
  sha256: string;
  contentType: string;
  camera: string;
  capturedAt: string;
  key: string;
  width?: number;
  height?: number;
  codec?: string;
  durationS?: number;
  requestedS?: number;
  partial?: boolean;
  metadata?: Record<string, unknown>;
  journal?: JournalRef;
  /** Sent again at a start, because no queue had committed it before the process stopped. */
  recovered?: boolean;
  /** Whether the wall clock was known to be right when it was taken (see ./clock). */
  clockSynced?: boolean;
  /** Taken unsynchronized: the monotonic clock (ms since boot), the boot, and the template its key came from. */
  capturedMono?: number;
  bootId?: string;
  keyTemplate?: string;
  /** How the time of a capture taken unsynchronized was settled (./clock ClockCorrection), as it came. */
  clockCorrection?: Msg;
  /** The image as the camera gave it, kept on disk beside the resized or re-encoded one that is uploaded. */
  original?: Msg;
}

/** msg.uplink as a reader sees it: each field present only when it has the right type. */
export interface Uplink extends Partial<CapturedFile> {
  /** A name for an inline payload, whose extension picks the content type and the key's `{ext}`. */
  name?: string;
  item?: Partial<QueueItemRef>;
  ack?: boolean;
  /** The uploader's UploadDoneInfo, as it came. */
  upload?: Msg;
  /** A failure as the uploader (or any node) described it; read leniently, it may come from a user's own node. */
  error?: Msg;
}

/** A plain object: not null, not an array, not a Buffer. */
export function isRecord(v: unknown): v is Msg {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** msg.uplink as it came (any fields a user's node added kept), or undefined when it is not an object. */
export function uplinkRecord(msg: Msg): Msg | undefined {
  return isRecord(msg.uplink) ? msg.uplink : undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);

/** The typed view of msg.uplink. Fields of the wrong type are left out, never coerced. */
export function readUplink(msg: Msg): Uplink {
  const u = uplinkRecord(msg);
  if (!u) return {};
  const out: Uplink = {};
  const strings = ['file', 'sha256', 'contentType', 'camera', 'capturedAt', 'key', 'codec', 'name', 'bootId', 'keyTemplate'] as const;
  for (const k of strings) {
    const v = str(u[k]);
    if (v !== undefined) out[k] = v;
  }
  const numbers = ['bytes', 'width', 'height', 'durationS', 'requestedS', 'capturedMono'] as const;
  for (const k of numbers) {
    const v = num(u[k]);
    if (v !== undefined) out[k] = v;
  }
  if (bool(u.partial) !== undefined) out.partial = u.partial as boolean;
  if (bool(u.ack) !== undefined) out.ack = u.ack as boolean;
  if (bool(u.recovered) !== undefined) out.recovered = u.recovered as boolean;
  if (bool(u.clockSynced) !== undefined) out.clockSynced = u.clockSynced as boolean;
  if (isRecord(u.clockCorrection)) out.clockCorrection = u.clockCorrection;
  if (isRecord(u.original)) out.original = u.original;
  if (isRecord(u.journal) && str(u.journal.owner) !== undefined && str(u.journal.entry) !== undefined) {
    out.journal = { owner: u.journal.owner as string, entry: u.journal.entry as string };
  }
  if (isRecord(u.metadata)) out.metadata = u.metadata;
  if (isRecord(u.error)) out.error = u.error;
  if (isRecord(u.upload)) out.upload = u.upload;
  if (isRecord(u.item)) {
    const i = u.item;
    const item: Partial<QueueItemRef> = {};
    if (num(i.id) !== undefined) item.id = i.id as number;
    if (num(i.attempt) !== undefined) item.attempt = i.attempt as number;
    if (num(i.priority) !== undefined) item.priority = i.priority as number;
    if (str(i.queuedAt) !== undefined) item.queuedAt = i.queuedAt as string;
    if (str(i.queue) !== undefined) item.queue = i.queue as string;
    out.item = item;
  }
  return out;
}

/** The file a message names for upload or queueing: `msg.uplink.file`, else `msg.filename`; empty strings do not count. */
export function fileOf(msg: Msg): string | undefined {
  const u = uplinkRecord(msg);
  if (typeof u?.file === 'string' && u.file !== '') return u.file;
  return typeof msg.filename === 'string' && msg.filename !== '' ? msg.filename : undefined;
}
