import fs from 'fs';
import path from 'path';
import { KeyFields, renderKey, sanitizeKey, KeyTemplateError } from './object-key';
import { UploadTarget } from './upload/target';
import { timeoutError } from './upload/classify';
import { UploadError, UploadItem, UploadResult } from './upload/types';

type Msg = Record<string, unknown>;

export interface UploadOutcome {
  ok: boolean;
  /** The message to send on: output 1 when ok, output 2 otherwise, with msg.uplink.ack set for the queue. */
  msg: Msg;
  result?: UploadResult & { durationMs: number };
  error?: UploadError;
}

const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  mp4: 'video/mp4',
  mkv: 'video/x-matroska',
  mov: 'video/quicktime',
  ts: 'video/mp2t',
  json: 'application/json',
  csv: 'text/csv',
  txt: 'text/plain',
  log: 'text/plain',
  pdf: 'application/pdf',
  bin: 'application/octet-stream',
};

const EXTENSIONS: Record<string, string> = Object.fromEntries(
  Object.entries(CONTENT_TYPES)
    .filter(([ext]) => !['jpeg', 'log', 'bin'].includes(ext))
    .map(([ext, type]) => [type, ext]),
);

function obj(v: unknown): Msg | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) ? (v as Msg) : undefined;
}

/** S3 metadata must be ASCII: anything else is percent-encoded. */
function asciiMeta(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

/**
 * Sends one item to one target and says how it went, in the shape the offline queue understands. All of the
 * message handling lives here; the node only wires it to Node-RED.
 */
export class Uploader {
  private inFlight = 0;

  constructor(
    readonly target: UploadTarget,
    readonly keyTemplate: string,
  ) {}

  get active(): number {
    return this.inFlight;
  }

  /** Never throws: every failure comes back classified, with the message for output 2. */
  async upload(msg: Msg, closing: AbortSignal): Promise<UploadOutcome> {
    const started = Date.now();
    this.inFlight++;
    try {
      // The request timeout starts when the upload does, not while it waits for a free slot.
      const { item, result } = await this.target.slots.run(async () => {
        const signal = AbortSignal.any([closing, AbortSignal.timeout(this.target.limits.timeoutMs)]);
        const it = await this.toItem(msg, signal);
        return { item: it, result: await this.target.backend.upload(it) };
      });
      const done = { ...result, durationMs: Date.now() - started };
      const uplink: Msg = { ...(obj(msg.uplink) ?? {}), ack: true, key: item.key, upload: { backend: this.target.backend.kind, ...done } };
      delete uplink.error;
      return { ok: true, msg: { ...msg, uplink }, result: done };
    } catch (e) {
      let error =
        e instanceof UploadError
          ? e
          : e instanceof KeyTemplateError
            ? new UploadError(`cannot make an object key: ${e.message}`, 'permanent', 'BAD_KEY')
            : new UploadError((e as Error).message ?? String(e), 'retryable', 'ERROR');
      // An abort that was not the flow stopping was the request timer, whatever the client library called it.
      if (error.code === 'ABORTED' && !closing.aborted) {
        error = timeoutError(this.target.limits.timeoutMs);
      }
      const uplink = {
        ...(obj(msg.uplink) ?? {}),
        ack: false,
        error: {
          class: error.errorClass,
          permanent: error.errorClass === 'permanent',
          code: error.code,
          status: error.status,
          message: error.message,
          retryAfterMs: error.retryAfterMs,
          backend: this.target.backend.kind,
        },
      };
      return { ok: false, msg: { ...msg, uplink }, error };
    } finally {
      this.inFlight--;
    }
  }

  /** What to upload, under which key. Only facts fixed before the item was queued go into the key. */
  async toItem(msg: Msg, signal: AbortSignal): Promise<UploadItem> {
    const uplink = obj(msg.uplink) ?? {};
    const item = obj(uplink.item) ?? {};
    const file = typeof uplink.file === 'string' && uplink.file !== '' ? uplink.file : typeof msg.filename === 'string' && msg.filename !== '' ? msg.filename : undefined;

    let body: Buffer | undefined;
    let bytes: number;
    if (file !== undefined) {
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new UploadError(`the file ${file} is gone (${code ?? 'unreadable'}); nothing to upload`, 'permanent', 'FILE_GONE');
      }
      if (!st.isFile()) throw new UploadError(`${file} is not a regular file`, 'permanent', 'NOT_A_FILE');
      bytes = st.size;
    } else if (Buffer.isBuffer(msg.payload)) {
      body = msg.payload;
      bytes = body.length;
    } else if (typeof msg.payload === 'string') {
      body = Buffer.from(msg.payload, 'utf8');
      bytes = body.length;
    } else if (msg.payload !== undefined && msg.payload !== null && typeof msg.payload === 'object') {
      body = Buffer.from(JSON.stringify(msg.payload), 'utf8');
      bytes = body.length;
    } else if (typeof msg.payload === 'number' || typeof msg.payload === 'boolean') {
      body = Buffer.from(JSON.stringify(msg.payload), 'utf8');
      bytes = body.length;
    } else {
      throw new UploadError('nothing to upload: no msg.uplink.file, msg.filename or payload', 'permanent', 'NO_CONTENT');
    }

    const name = file ? path.basename(file) : typeof uplink.name === 'string' ? uplink.name : undefined;
    const extFromName = name ? path.extname(name).slice(1).toLowerCase() : '';
    const declared = typeof uplink.contentType === 'string' ? uplink.contentType : typeof msg.contentType === 'string' ? msg.contentType : undefined;
    const contentType =
      declared ??
      CONTENT_TYPES[extFromName] ??
      (file || Buffer.isBuffer(msg.payload) ? 'application/octet-stream' : typeof msg.payload === 'string' ? 'text/plain; charset=utf-8' : 'application/json');
    const ext = extFromName || EXTENSIONS[contentType.split(';')[0].trim()] || 'bin';

    const capturedAt =
      typeof uplink.capturedAt === 'string' ? uplink.capturedAt : typeof item.queuedAt === 'string' ? item.queuedAt : new Date().toISOString();
    const fields: KeyFields = {
      camera: typeof uplink.camera === 'string' ? uplink.camera : undefined,
      capturedAt,
      width: typeof uplink.width === 'number' ? uplink.width : undefined,
      height: typeof uplink.height === 'number' ? uplink.height : undefined,
      id: typeof item.id === 'number' || typeof item.id === 'string' ? item.id : undefined,
      name,
      ext,
      sha256: typeof uplink.sha256 === 'string' ? uplink.sha256 : undefined,
    };
    // A key fixed when the item was captured wins: the same key on every retry, whatever this node's template says.
    const key = typeof uplink.key === 'string' && uplink.key !== '' ? sanitizeKey(uplink.key) : renderKey(this.keyTemplate, fields);

    const metadata: Record<string, string> = {};
    if (fields.camera) metadata.camera = asciiMeta(fields.camera);
    metadata['captured-at'] = capturedAt;
    if (fields.sha256) metadata.sha256 = fields.sha256;
    if (fields.id !== undefined) metadata['item-id'] = String(fields.id);

    const topLevel = Object.fromEntries(Object.entries(msg).filter(([k]) => !['payload', 'uplink', 'req', 'res', '_msgid'].includes(k)));
    return { key, file, body, bytes, contentType, sha256: fields.sha256, metadata, fields: { ...topLevel, ...uplink, ...fields }, signal };
  }
}
