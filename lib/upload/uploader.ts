import fs from 'fs';
import path from 'path';
import { KeyFields, renderKey, sanitizeKey, KeyTemplateError, templateFor } from '../message/object-key';
import { UploadTarget } from './target';
import { ABORT_REFUSED, timeoutError } from './classify';
import { ItemSource, ResumeHandle, UploadError, UploadItem, UploadResult } from './types';
import { ItemProgress, QueueFinder } from '../queue/item-progress';
import { fileOf, isRecord, Msg, readUplink, UploadDoneInfo, UploadFailureInfo, uplinkRecord } from '../message/uplink';

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


/** S3 metadata must be ASCII: anything else is percent-encoded. */
function asciiMeta(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

/** Items at least this large upload in the target's lane for large items, so they never take every slot. */
export const DEFAULT_LARGE_BYTES = 16 * 1024 * 1024;
/** At most this often, the uploader cleans up on the store the half uploads of items that left the queue. */
/** The priority of an item that came without a queue (the queue's own default). */
const DEFAULT_HELD_PRIORITY = 5;
/** How soon an item waiting for an unmetered link asks again. */
const UNMETERED_RECHECK_MS = 5 * 60_000;
/** The code of an item that waits for an unmetered link: the queue lets it go early when told the link is unmetered. */
export const UNMETERED_WAIT = 'UNMETERED_WAIT';
const ABANDONED_SWEEP_MS = 60_000;

export interface UploadProgress {
  key: string;
  sent: number;
  bytes: number;
}

/**
 * Sends one item to one target and says how it went, in the shape the offline queue understands. All of the
 * message handling lives here; the node only wires it to Node-RED.
 */
export class Uploader {
  private inFlight = 0;
  private readonly moving = new Map<UploadItem, UploadProgress>();
  private sweptAt = new WeakMap<ItemProgress, number>();
  private sweeping = false;
  /** Told whenever bytes of an upload go out (the node shows the largest one in its status). */
  onProgress?: (p: UploadProgress) => void;
  /**
   * Told what the node should say in its log: a store that refused something for good (a resume probe, an abort) and
   * which way the upload went because of it, once per upload; cleaning up abandoned uploads that failed.
   */
  onWarning?: (text: string) => void;
  /**
   * Finds the offline queue that delivered an item (by `msg.uplink.item.queue`), whose rows keep a large upload's
   * progress between attempts. Without it, or for a message no queue delivered, uploads start from the beginning.
   */
  findQueue?: QueueFinder;

  constructor(
    readonly target: UploadTarget,
    readonly keyTemplate: string,
    private readonly now: () => number = Date.now,
  ) {}

  get active(): number {
    return this.inFlight;
  }

  /** Uploads under way that have reported bytes, largest first. */
  get progress(): UploadProgress[] {
    return [...this.moving.values()].sort((a, b) => b.bytes - a.bytes);
  }

  /** Never throws: every failure comes back classified, with the message for output 2. */
  async upload(msg: Msg, closing: AbortSignal): Promise<UploadOutcome> {
    const started = Date.now();
    this.inFlight++;
    const queued = readUplink(msg).item ?? {};
    const provider = queued.queue !== undefined ? this.findQueue?.(queued.queue) : undefined;
    const itemId = queued.id;
    const attempt = queued.attempt ?? 0;
    let item: UploadItem | undefined;
    try {
      const backend = this.target.backend;
      const it = await this.toItem(msg, closing);
      item = it;
      const scope = backend.resumeScope?.();
      if (provider && itemId !== undefined && scope) it.resume = resumeHandle(provider, itemId, scope);
      // The timeout is for an upload that stops moving, not for a long one: every byte that goes out restarts it.
      // One controller ends the upload for either reason (the flow stopping, or the timer). AbortSignal.any would
      // also do, at a cost per upload: the flow's signal keeps a weak reference to each, which Node 20 never drops.
      const stop = new AbortController();
      const timeoutMs = this.target.limits.timeoutMs;
      let timer: NodeJS.Timeout | undefined;
      let ended = false;
      const arm = () => {
        // A late progress report (a stream flushing after the answer) must not start a timer nobody clears.
        if (ended) return;
        // Put off, not made anew, at every report: a large upload reports thousands of times.
        if (timer) timer.refresh();
        else timer = setTimeout(() => stop.abort(timeoutError(timeoutMs)), timeoutMs);
      };
      // Once per upload: a backend says what it decided, and never per part, but the same text twice is once too many.
      const said = new Set<string>();
      it.onWarning = (text) => {
        if (said.has(text)) return;
        said.add(text);
        this.onWarning?.(text);
      };
      it.onProgress = (sent) => {
        arm();
        const p = { key: it.key, sent, bytes: it.bytes };
        this.moving.set(it, p);
        if (provider && itemId !== undefined) provider.progress(itemId, attempt, sent, it.bytes);
        this.onProgress?.(p);
      };
      // A metered link's budget may hold it: it waits, untried, until the budget allows (or the link is unmetered).
      const budget = this.target.budget;
      if (budget) {
        const d = budget.decide({ priority: queued.priority ?? DEFAULT_HELD_PRIORITY, bytes: it.bytes });
        if (!d.go) {
          if (d.until === null) throw new UploadError(d.reason, 'held', UNMETERED_WAIT, undefined, UNMETERED_RECHECK_MS);
          throw new UploadError(d.reason, 'held', 'BUDGET_HELD', undefined, Math.max(1000, d.until - this.now()));
        }
      }
      // Large items have a lane of their own, so they never take every slot from the stills behind them.
      const lane = it.bytes >= (backend.largeAbove ?? DEFAULT_LARGE_BYTES) ? this.target.largeSlots : this.target.slots;
      const result = await lane.run(async () => {
        arm();
        const onClosing = () => stop.abort(closing.reason);
        if (closing.aborted) onClosing();
        else closing.addEventListener('abort', onClosing, { once: true });
        it.signal = stop.signal;
        try {
          return await backend.upload(it);
        } finally {
          ended = true;
          clearTimeout(timer);
          closing.removeEventListener('abort', onClosing);
        }
      });
      if (provider && scope && backend.abandon) this.sweepAbandoned(provider, scope);
      const done = { ...result, durationMs: Date.now() - started };
      const upload: UploadDoneInfo = { backend: this.target.backend.kind, ...done };
      const uplink: Msg = { ...uplinkRecord(msg), ack: true, key: it.key, upload };
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
      const failure: UploadFailureInfo = {
        class: error.errorClass,
        permanent: error.errorClass === 'permanent',
        code: error.code,
        status: error.status,
        message: error.message,
        retryAfterMs: error.retryAfterMs,
        backend: this.target.backend.kind,
      };
      const uplink = { ...uplinkRecord(msg), ack: false, error: failure };
      return { ok: false, msg: { ...msg, uplink }, error };
    } finally {
      this.inFlight--;
      if (item) this.moving.delete(item);
      if (provider && itemId !== undefined) provider.finished(itemId);
    }
  }

  /** Aborts, on the store, the half uploads that items which left the queue (purged, dropped) left behind. */
  private sweepAbandoned(provider: ItemProgress, scope: string): void {
    const t = this.now();
    if (this.sweeping || t - (this.sweptAt.get(provider) ?? -Infinity) < ABANDONED_SWEEP_MS) return;
    this.sweeping = true;
    this.sweptAt.set(provider, t);
    void (async () => {
      try {
        const left = await provider.abandoned(scope, 20);
        const done: number[] = [];
        const refused: UploadError[] = [];
        for (const a of left) {
          try {
            await this.target.backend.abandon!(a.state);
            done.push(a.id);
          } catch (e) {
            const err = e as UploadError;
            // Gone already, or never to succeed: forget it. A network failure is tried again later.
            if (err.errorClass === 'permanent') done.push(a.id);
            else this.onWarning?.(`could not abort an abandoned upload on the store (will try again): ${err.message}`);
            // Refused by the store or the key's policy: asking every minute would change nothing. Said once, here.
            if (err.code === ABORT_REFUSED) refused.push(err);
          }
        }
        await provider.forgetAbandoned(done);
        if (refused.length > 0) {
          const more = refused.length > 1 ? ` (and ${refused.length - 1} more abandoned upload${refused.length > 2 ? 's' : ''})` : '';
          this.onWarning?.(
            `${refused[0].message}${more}: forgotten, not tried again; what it holds stays on the store until the store expires it (on S3, a lifecycle rule for incomplete multipart uploads)`,
          );
        }
        if (left.length === 20) this.sweptAt.delete(provider);
      } catch {
        /* the queue closed meanwhile */
      } finally {
        this.sweeping = false;
      }
    })();
  }

  /** What to upload, under which key. Only facts fixed before the item was queued go into the key. */
  async toItem(msg: Msg, signal: AbortSignal): Promise<UploadItem> {
    const uplink = uplinkRecord(msg) ?? {};
    const item = isRecord(uplink.item) ? uplink.item : {};
    const file = fileOf(msg);

    let source: ItemSource;
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
      source = { file };
      bytes = st.size;
    } else if (Buffer.isBuffer(msg.payload)) {
      source = { body: msg.payload };
      bytes = source.body.length;
    } else if (typeof msg.payload === 'string') {
      source = { body: Buffer.from(msg.payload, 'utf8') };
      bytes = source.body.length;
    } else if (msg.payload !== undefined && msg.payload !== null && typeof msg.payload === 'object') {
      source = { body: Buffer.from(JSON.stringify(msg.payload), 'utf8') };
      bytes = source.body.length;
    } else if (typeof msg.payload === 'number' || typeof msg.payload === 'boolean') {
      source = { body: Buffer.from(JSON.stringify(msg.payload), 'utf8') };
      bytes = source.body.length;
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
    // Items that are not captures keep their own name where the template is made of a capture's facts.
    const key =
      typeof uplink.key === 'string' && uplink.key !== '' ? sanitizeKey(uplink.key) : renderKey(templateFor(this.keyTemplate, fields), fields);

    const metadata: Record<string, string> = {};
    if (fields.camera) metadata.camera = asciiMeta(fields.camera);
    metadata['captured-at'] = capturedAt;
    if (fields.sha256) metadata.sha256 = fields.sha256;
    if (fields.id !== undefined) metadata['item-id'] = String(fields.id);

    const topLevel = Object.fromEntries(Object.entries(msg).filter(([k]) => !['payload', 'uplink', 'req', 'res', '_msgid'].includes(k)));
    return { key, ...source, bytes, contentType, sha256: fields.sha256, metadata, fields: { ...topLevel, ...uplink, ...fields }, signal };
  }
}

/** The handle one upload attempt uses: the queue's row storage, narrowed to one item on one store. */
function resumeHandle(queue: ItemProgress, itemId: number, target: string): ResumeHandle {
  return {
    load: () => queue.load(itemId, target),
    save: (state, confirmed) => queue.save(itemId, target, state, confirmed),
    clear: () => queue.clear(itemId, target),
  };
}
