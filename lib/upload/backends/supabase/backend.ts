import { text } from '../../../util/settings';
import fs from 'fs';
import { Readable } from 'stream';
import { PostgrestClient } from '@supabase/postgrest-js';
import { StorageApiError, StorageClient, StorageError, isStorageError } from '@supabase/storage-js';
import { Bandwidth, openBody } from '../../body';
import { classifyStatus, classifyThrown, networkCode, statusError } from '../../classify';
import { TUS_VERSION, TusAgents, TusAnswerError, TusBodyLengthError, TusClient } from './resumable';
import { ResumeState, StorageBackend, UploadError, UploadItem, UploadResult } from '../../types';

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

/**
 * Bodies up to this size go as one Buffer (a file is read whole first) in one REST request; larger ones go through the
 * resumable (TUS) endpoint in TUS_CHUNK_BYTES chunks streamed from disk, so a Pi never holds a video in memory and a
 * lost link costs at most one chunk. Supabase's own advice is TUS above 6 MB.
 */
export const BUFFER_LIMIT_BYTES = 6 * 1024 * 1024;

/** The chunk size Supabase documents for its TUS endpoint (`chunkSize: 6 * 1024 * 1024`). */
export const TUS_CHUNK_BYTES = 6 * 1024 * 1024;

/**
 * What a resumable upload keeps in the item's resume state (the queue's row), saved once the upload exists and again
 * after every chunk the store confirmed. `project`, `bucket`, `key`, `bytes` and `sha256` say which object it is for:
 * a state for anything else is never continued.
 */
export type TusResumeState = {
  kind: 'supabase-tus';
  /** The upload's URL on the project (`<url>/storage/v1/upload/resumable/<id>`). */
  tusUrl: string;
  project: string;
  bucket: string;
  key: string;
  bytes: number;
  sha256?: string;
  chunkSize: number;
  /** Bytes the store confirmed when this was saved. */
  offset: number;
  /** When the upload was created (ISO): Supabase forgets unfinished uploads after a while. */
  createdAt: string;
};

/**
 * At most this many times in one attempt, a chunk that failed with an Upload-Offset conflict or a lost connection is
 * followed by asking the store its offset and going on from there; past that, the attempt fails (and is retried).
 */
const MAX_RECOVERIES = 3;

/** A connection that broke while it was used: worth asking the store where the upload is (it may be reachable). */
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED']);

const NAME = /^[A-Za-z0-9_]{1,63}$/;
const BUCKET = /^[A-Za-z0-9._-]{1,100}$/;
const FIELD_PATH = /^fields\.[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

/** A Storage or PostgREST error answer, as far as it could be read. */
interface Answer {
  httpStatus: number;
  /** Storage's real status (the string statusCode of the body), else the HTTP status. */
  status: number;
  code?: string;
  message?: string;
  retryAfter?: string | null;
}

/**
 * The requests of one upload attempt: every one gets the item's signal plus an idle timeout that restarts whenever
 * body bytes go out (a large file on a slow uplink is not cut off while it is moving), and the last error answer is
 * kept whole, because storage-js keeps only its message and string statusCode and drops the code and Retry-After.
 */
class Exchange {
  private readonly timers = new Set<NodeJS.Timeout>();
  private touchCurrent?: () => void;
  lastError?: Answer;
  lastThrown?: unknown;

  constructor(
    private readonly signal: AbortSignal,
    private readonly timeoutMs: number,
  ) {}

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    this.lastError = undefined;
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) {
        clearTimeout(timer);
        this.timers.delete(timer);
      }
      timer = setTimeout(() => idle.abort(new DOMException(`no progress within ${this.timeoutMs} ms`, 'TimeoutError')), this.timeoutMs);
      this.timers.add(timer);
    };
    arm();
    this.touchCurrent = arm;
    const signals = [this.signal, idle.signal];
    if (init?.signal) signals.push(init.signal);
    let res: Response;
    try {
      res = await fetch(input, { ...init, signal: AbortSignal.any(signals) });
    } catch (e) {
      this.lastThrown = e;
      throw e;
    } finally {
      if (this.touchCurrent === arm) this.touchCurrent = undefined;
    }
    // The timer keeps running (restarted) while the answer's body is read; close() clears it.
    arm();
    if (res.ok) return res;
    let text = '';
    try {
      text = await res.text();
    } catch (e) {
      this.lastThrown = e;
      throw e;
    }
    this.lastError = parseAnswer(res.status, text, res.headers.get('retry-after'));
    return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
  };

  /** Bytes of the request body went out: the idle timeout starts again. */
  touch(): void {
    this.touchCurrent?.();
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function parseAnswer(httpStatus: number, text: string, retryAfter: string | null): Answer {
  let body: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) body = v as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
  const real = Number(str(body?.statusCode));
  return {
    httpStatus,
    status: Number.isInteger(real) && real >= 100 && real <= 599 ? real : httpStatus,
    code: str(body?.code) ?? str(body?.error),
    message: (str(body?.message) ?? str(body?.error) ?? (body ? undefined : text.trim().slice(0, 200))) || undefined,
    retryAfter,
  };
}

/** Keys are sanitized upstream; encoding each segment keeps any other character from changing the request path. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** A TUS error answer as an Answer, with Storage's code named from its plain-text message where it has none. */
function tusAnswer(e: TusAnswerError): Answer {
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
function uploadGone(e: unknown): boolean {
  if (!(e instanceof TusAnswerError) || e.method === 'POST') return false;
  const a = tusAnswer(e);
  return (a.status === 404 || a.status === 410) && a.code !== 'NoSuchBucket';
}

/** The file is not the size it was queued with: it can never upload right, and is not worth retrying. */
function sizeChanged(queued: number, now: number): UploadError {
  return new UploadError(`the file changed size since it was queued (${queued} → ${now} bytes)`, 'permanent', 'FILE_CHANGED');
}

function resumeFailure(what: string, e: unknown): UploadError {
  const msg = e instanceof Error ? e.message : String(e);
  return new UploadError(`the upload's progress could not be ${what} in the queue's database: ${msg}`, 'retryable', 'RESUME_STATE');
}

/**
 * Supabase Storage, with an optional row per object in a table (PostgREST). Uploads are upserts, so a retry of an
 * item overwrites its own object; the row is written with an ignore-duplicates upsert on a unique column, so a retry
 * cannot add a second row.
 */
export class SupabaseBackend implements StorageBackend {
  readonly kind = 'supabase';
  /** Items above this go through the resumable endpoint, in chunks: the uploader gives them the lane for large items. */
  readonly largeAbove = BUFFER_LIMIT_BYTES + 1;
  private readonly headers: Record<string, string>;
  /** Kept-alive connections of the resumable uploads (the REST calls use fetch's own pool). */
  private readonly agents = new TusAgents();

  constructor(
    readonly settings: SupabaseSettings,
    private readonly bandwidth?: Bandwidth,
  ) {
    this.headers = { apikey: settings.key, Authorization: `Bearer ${settings.key}` };
  }

  endpoint(): string {
    return `${this.settings.url}/storage/v1/`;
  }

  /** Saved progress of a resumable upload belongs to one project and bucket. */
  resumeScope(): string {
    return `supabase ${this.settings.url} ${this.settings.bucket}`;
  }

  /** The TUS endpoint of the project: uploads are created here, and live under it. */
  private tusEndpoint(): string {
    return `${this.settings.url}/storage/v1/upload/resumable`;
  }

  objectUrl(key: string): string {
    const s = this.settings;
    if (s.publicUrl) return `${s.publicUrl.replace(/\/+$/, '')}/${encodeKey(key)}`;
    return `${s.url}/storage/v1/object/${encodeURIComponent(s.bucket)}/${encodeKey(key)}`;
  }

  async upload(item: UploadItem): Promise<UploadResult> {
    const ex = new Exchange(item.signal, this.settings.timeoutMs);
    try {
      await this.store(item, ex);
      const url = this.objectUrl(item.key);
      if (this.settings.table) await this.writeRow(item, url, ex);
      return { key: item.key, url, bytes: item.bytes, status: 200 };
    } catch (e) {
      throw this.redact(e instanceof UploadError ? e : this.classifyFailure(e, ex));
    } finally {
      ex.close();
    }
  }

  async close(): Promise<void> {
    // fetch keeps the REST connections in a global pool and each attempt's timers are cleared; the TUS connections
    // are this backend's own.
    this.agents.destroy();
  }

  /**
   * Deletes (TUS termination) the unfinished upload of an item that left the queue, so its bytes do not wait on the
   * store until it expires. An upload already gone or finished is fine.
   */
  async abandon(state: ResumeState): Promise<void> {
    const st = state as Partial<TusResumeState>;
    // Only an upload of this project: the key is never sent anywhere else.
    if (st.kind !== 'supabase-tus' || typeof st.tusUrl !== 'string' || st.project !== this.settings.url) return;
    if (!st.tusUrl.startsWith(`${this.tusEndpoint()}/`)) return;
    const signal = new AbortController().signal;
    const tus = new TusClient({ headers: this.headers, agents: this.agents, signal, idleMs: this.settings.timeoutMs });
    const ex = new Exchange(signal, this.settings.timeoutMs);
    try {
      await tus.terminate(st.tusUrl);
    } catch (e) {
      // Gone already (expired, deleted), or finished (Storage refuses to delete those: 400): nothing left to clean up.
      if (e instanceof TusAnswerError && (e.status === 404 || e.status === 410 || e.status === 400)) return;
      throw this.redact(this.classifyFailure(e, ex));
    } finally {
      ex.close();
    }
  }

  /** Puts the object (an upsert), then checks the store holds as many bytes as the item has. */
  private async store(item: UploadItem, ex: Exchange): Promise<void> {
    const s = this.settings;
    if (item.bytes > BUFFER_LIMIT_BYTES) return this.storeResumable(item, ex);
    const storage = new StorageClient(`${s.url}/storage/v1`, this.headers, ex.fetch);
    const body = await this.body(item, ex);
    const streamed = body instanceof Readable;
    const { error } = await storage.from(s.bucket).upload(encodeKey(item.key), body, {
      // Always: without it storage-js sends text/plain, and the object is stored as text.
      contentType: item.contentType,
      upsert: true,
      // Left out when unset: an explicit undefined would override storage-js's default and send "max-age=undefined".
      ...(s.cacheControl ? { cacheControl: s.cacheControl } : {}),
      metadata: Object.keys(item.metadata).length > 0 ? item.metadata : undefined,
      ...(streamed ? { duplex: 'half', headers: { 'content-length': String(item.bytes) } } : {}),
    });
    if (!streamed && !(this.bandwidth && this.bandwidth.bytesPerSecond > 0)) item.onProgress?.(item.bytes);
    if (error) {
      const failure = this.classifyStorage(error, ex, 'upload');
      // Not expected with upsert, but if a policy refuses the overwrite, an earlier attempt may have stored this very
      // object (we crashed before the ack): the same size means it is uploaded.
      if (failure.code === 'KeyAlreadyExists') return this.settleExisting(item, ex);
      throw failure;
    }
    await this.verifySize(item, ex);
  }

  /** The store refused to overwrite the object: it is uploaded if it has this item's size, else that is permanent. */
  private async settleExisting(item: UploadItem, ex: Exchange): Promise<void> {
    const s = this.settings;
    const stored = await this.storedSize(item, ex);
    if (stored === item.bytes) return;
    throw new UploadError(
      `an object already exists at ${s.bucket}/${item.key} with ${stored} bytes (this item has ${item.bytes}) and the store refused to overwrite it`,
      'permanent',
      'KeyAlreadyExists',
      409,
    );
  }

  private async verifySize(item: UploadItem, ex: Exchange): Promise<void> {
    const s = this.settings;
    const stored = await this.storedSize(item, ex);
    if (stored !== item.bytes) {
      throw new UploadError(`the store holds ${stored} bytes for ${s.bucket}/${item.key}, the item has ${item.bytes}`, 'retryable', 'SIZE_MISMATCH');
    }
  }

  /**
   * A large object through the resumable (TUS) endpoint, in TUS_CHUNK_BYTES chunks streamed from disk (through the
   * bandwidth limit, reporting progress). The upload's URL is saved through the item's resume handle before any data
   * goes, and the confirmed offset after each chunk: a later attempt (after a lost link, a timeout, a restart of
   * Node-RED) asks the store how much it holds and sends only the rest. Then, like the REST path, the size is checked.
   */
  private async storeResumable(item: UploadItem, ex: Exchange): Promise<void> {
    await this.checkSource(item);
    const tus = new TusClient({
      // Upserts like the REST path: a retry overwrites the item's own object.
      headers: { ...this.headers, 'x-upsert': 'true' },
      agents: this.agents,
      signal: item.signal,
      idleMs: this.settings.timeoutMs,
    });
    let upload = await this.continuable(item, tus, ex);
    if (upload === 'stored') return;
    let restarted = false;
    for (;;) {
      if (!upload) {
        upload = await this.createUpload(item, tus, ex);
        if (upload === 'stored') return;
      }
      try {
        await this.sendChunks(item, tus, upload);
        break;
      } catch (e) {
        // The store forgot the upload mid-way (it expired or was cleaned up): once per attempt, start a new one.
        if (uploadGone(e) && !restarted) {
          restarted = true;
          await this.resumeClear(item);
          upload = undefined;
          continue;
        }
        // Storage checks the overwrite on every request, and again when the last chunk completes the object.
        if (e instanceof TusAnswerError && tusAnswer(e).code === 'KeyAlreadyExists') {
          await this.resumeClear(item);
          return this.settleExisting(item, ex);
        }
        // Without a place to keep the upload (a message not from a queue), no later attempt can continue it: delete
        // it now rather than leave its bytes on the store until it expires. Not while the flow is stopping.
        if (!item.resume && !item.signal.aborted) await this.abandon(upload).catch(() => undefined);
        throw e;
      }
    }
    await this.resumeClear(item);
    await this.verifySize(item, ex);
  }

  /** The file must still be what was queued: a changed size can never upload right, and is not worth retrying. */
  private async checkSource(item: UploadItem): Promise<void> {
    const size = item.file ? (await fs.promises.stat(item.file)).size : item.body!.length;
    if (size !== item.bytes) throw sizeChanged(item.bytes, size);
  }

  /**
   * The upload an earlier attempt of this item saved, brought up to date with the offset the store holds (HEAD);
   * 'stored' when it had finished and the object is there; undefined when there is nothing to continue (no state, a
   * state for another object or file, or an upload the store no longer has): the caller starts a new one.
   */
  private async continuable(item: UploadItem, tus: TusClient, ex: Exchange): Promise<TusResumeState | 'stored' | undefined> {
    const s = this.settings;
    const saved = await this.resumeLoad(item);
    if (!saved) return undefined;
    const st = saved as Partial<TusResumeState>;
    const ours = st.kind === 'supabase-tus' && typeof st.tusUrl === 'string' && st.project === s.url && st.tusUrl.startsWith(`${this.tusEndpoint()}/`);
    const same =
      ours &&
      st.bucket === s.bucket &&
      st.key === item.key &&
      st.bytes === item.bytes &&
      (st.sha256 ?? undefined) === (item.sha256 ?? undefined) &&
      typeof st.offset === 'number';
    if (!same) {
      // Another object, or the file changed: that upload can never be finished. Delete it (best effort), start again.
      if (ours) await tus.terminate(st.tusUrl!).catch(() => undefined);
      await this.resumeClear(item);
      return undefined;
    }
    const state = st as TusResumeState;
    let held: { offset: number; length?: number };
    try {
      held = await tus.head(state.tusUrl);
    } catch (e) {
      if (uploadGone(e)) {
        // Expired (Supabase forgets unfinished uploads) or cleaned up: nothing to continue.
        await this.resumeClear(item);
        return undefined;
      }
      throw e;
    }
    if (held.length !== item.bytes || held.offset > item.bytes) {
      await tus.terminate(state.tusUrl).catch(() => undefined);
      await this.resumeClear(item);
      return undefined;
    }
    if (held.offset === item.bytes) {
      // Every byte arrived earlier (the attempt died before it could record that): the object is there, unless
      // completing it failed on the store, and then only a new upload can make it.
      let stored: number | undefined;
      try {
        stored = await this.storedSize(item, ex);
      } catch (e) {
        if (!(e instanceof UploadError && e.status === 404 && e.code !== 'NoSuchBucket')) throw e;
      }
      await this.resumeClear(item);
      return stored === item.bytes ? 'stored' : undefined;
    }
    return { ...state, offset: held.offset };
  }

  /** Creates the upload and saves its URL before any data goes; 'stored' when the object exists with our size. */
  private async createUpload(item: UploadItem, tus: TusClient, ex: Exchange): Promise<TusResumeState | 'stored'> {
    const s = this.settings;
    let location: string;
    try {
      location = await tus.create(this.tusEndpoint(), item.bytes, {
        bucketName: s.bucket,
        objectName: item.key,
        // Always: the object's content type is what the metadata says (TUS sends no Content-Type of the object).
        contentType: item.contentType,
        // Storage turns a number of seconds into max-age=<n>; the REST path's default (storage-js) is 3600.
        cacheControl: s.cacheControl ?? '3600',
        metadata: Object.keys(item.metadata).length > 0 ? JSON.stringify(item.metadata) : undefined,
      });
    } catch (e) {
      if (e instanceof TusAnswerError && tusAnswer(e).code === 'KeyAlreadyExists') {
        await this.settleExisting(item, ex);
        return 'stored';
      }
      throw e;
    }
    const state: TusResumeState = {
      kind: 'supabase-tus',
      tusUrl: this.uploadUrl(location),
      project: s.url,
      bucket: s.bucket,
      key: item.key,
      bytes: item.bytes,
      ...(item.sha256 ? { sha256: item.sha256 } : {}),
      chunkSize: TUS_CHUNK_BYTES,
      offset: 0,
      createdAt: new Date().toISOString(),
    };
    await this.resumeSave(item, state);
    return state;
  }

  /**
   * The upload's URL under the project URL, from the last segment of the Location the store answered. Self-hosted
   * Storage behind a gateway or proxy often answers a Location with the wrong host, port, scheme or path prefix
   * (supabase/storage#339, #543, supabase#40686); the upload id is the last segment either way (storage reads it from
   * there). And the key is then never sent to another host than the one configured.
   */
  private uploadUrl(location: string): string {
    const id = new URL(location).pathname.split('/').filter(Boolean).pop();
    if (!id) throw new UploadError(`the store answered an upload location without an upload id ("${location.slice(0, 200)}")`, 'retryable', 'TUS_PROTOCOL');
    return `${this.tusEndpoint()}/${id}`;
  }

  /** PATCHes the rest of the file from the upload's offset, chunk by chunk, saving each confirmed offset. */
  private async sendChunks(item: UploadItem, tus: TusClient, state: TusResumeState): Promise<void> {
    const source = item.file ? { file: item.file } : { body: item.body };
    let offset = state.offset;
    let recoveries = 0;
    if (offset > 0) item.onProgress?.(offset);
    while (offset < item.bytes) {
      const start = offset;
      const end = Math.min(item.bytes, start + TUS_CHUNK_BYTES);
      let sent = 0;
      const body = openBody(source, this.bandwidth, (n) => item.onProgress?.(start + (sent += n)), { start, end });
      let next: number;
      try {
        next = await tus.patch(state.tusUrl, start, body, end - start);
      } catch (e) {
        // The store holds another offset than we think (a chunk whose answer was lost), or the connection broke
        // mid-chunk (a proxy closed it; the store may have answered an error we could not read, and keeps what
        // arrived): ask where the upload is and go on from there. If the store cannot be reached, the attempt ends.
        const conflict = e instanceof TusAnswerError && tusAnswer(e).code === 'OffsetConflict';
        const lost = !(e instanceof TusAnswerError) && CONNECTION_LOST.has(networkCode(e) ?? '');
        if ((conflict || lost) && recoveries < MAX_RECOVERIES && !item.signal.aborted) {
          recoveries++;
          offset = await this.heldOffset(item, tus, state, lost ? e : undefined);
          continue;
        }
        throw e;
      }
      if (next <= start || next > item.bytes) {
        throw new UploadError(`the store confirmed offset ${next} after a chunk sent from ${start} to ${end}`, 'retryable', 'TUS_OFFSET');
      }
      offset = next;
      if (offset < item.bytes) await this.resumeSave(item, { ...state, offset });
    }
  }

  /**
   * The offset the store holds of the upload (HEAD), saved as confirmed. With `lost` (the connection broke), a HEAD
   * that gets no answer either fails the attempt with that first error; an answer (404 expired, ...) is thrown as is.
   */
  private async heldOffset(item: UploadItem, tus: TusClient, state: TusResumeState, lost?: unknown): Promise<number> {
    let held: { offset: number; length?: number };
    try {
      held = await tus.head(state.tusUrl);
    } catch (e) {
      if (lost !== undefined && !(e instanceof TusAnswerError)) throw lost;
      throw e;
    }
    if (held.length !== item.bytes || held.offset > item.bytes) {
      await this.resumeClear(item);
      throw new UploadError(`the resumable upload on the store no longer matches the file (${held.length} bytes, offset ${held.offset})`, 'retryable', 'TUS_MISMATCH');
    }
    if (held.offset < item.bytes) await this.resumeSave(item, { ...state, offset: held.offset });
    return held.offset;
  }

  // The resume state lives in the queue's database: if it cannot be read or written, the queue cannot work either;
  // say so plainly and let the item be retried.
  private async resumeLoad(item: UploadItem): Promise<ResumeState | undefined> {
    try {
      return await item.resume?.load();
    } catch (e) {
      throw resumeFailure('read', e);
    }
  }

  private async resumeSave(item: UploadItem, state: TusResumeState): Promise<void> {
    try {
      await item.resume?.save(state, state.offset);
    } catch (e) {
      throw resumeFailure('saved', e);
    }
  }

  private async resumeClear(item: UploadItem): Promise<void> {
    try {
      await item.resume?.clear();
    } catch (e) {
      throw resumeFailure('cleared', e);
    }
  }

  /**
   * A Buffer for inline payloads and files up to BUFFER_LIMIT_BYTES (read fresh each attempt), a stream from disk
   * above that or whenever a bandwidth limit applies. storage-js hands a Node Readable to fetch, which streams it
   * (duplex 'half') with the Content-Length we give, and fails the request if the file has changed size since.
   */
  private async body(item: UploadItem, ex: Exchange): Promise<Buffer | Readable> {
    let data = item.body;
    if (!data && item.bytes <= BUFFER_LIMIT_BYTES) {
      data = await fs.promises.readFile(item.file!);
      if (data.length !== item.bytes) throw sizeChanged(item.bytes, data.length);
    }
    const limited = !!this.bandwidth && this.bandwidth.bytesPerSecond > 0;
    if (data && !limited) return data;
    let sent = 0;
    const stream = openBody(data ? { body: data } : { file: item.file }, this.bandwidth, (n) => {
      ex.touch();
      item.onProgress?.((sent += n));
    });
    // fetch reads the body only once it starts sending: a file that cannot be opened fails the stream before anyone
    // listens, and an 'error' event nobody listens to takes the whole process down. The stream stays errored, so
    // fetch still fails with this error (as its cause) when it reads.
    stream.on('error', () => {});
    return stream;
  }

  /**
   * The stored object's size, from `GET /storage/v1/object/info/authenticated/{bucket}/{key}`. Not storage-js's
   * `info()`: that uses `/object/info/{bucket}/{key}`, which treats a token it cannot verify as anonymous, so a bad key
   * on a private bucket would read as "Bucket not found"; the authenticated route says "access denied" instead.
   * Servers whose info answer has no size (older storage versions) are asked with a HEAD of the object.
   */
  private async storedSize(item: UploadItem, ex: Exchange): Promise<number | undefined> {
    const s = this.settings;
    const path = `${encodeURIComponent(s.bucket)}/${encodeKey(item.key)}`;
    const res = await ex.fetch(`${s.url}/storage/v1/object/info/authenticated/${path}`, { headers: this.headers });
    if (!res.ok) throw this.answerError(ex.lastError ?? parseAnswer(res.status, '', null), 'verify');
    const info = (await res.json().catch(() => undefined)) as { size?: unknown } | undefined;
    if (typeof info?.size === 'number') return info.size;
    const head = await ex.fetch(`${s.url}/storage/v1/object/authenticated/${path}`, { method: 'HEAD', headers: this.headers });
    if (!head.ok) throw this.answerError(ex.lastError ?? parseAnswer(head.status, '', null), 'verify');
    const len = head.headers.get('content-length');
    return len !== null && /^\d+$/.test(len) ? Number(len) : undefined;
  }

  /**
   * One row per object. The upsert with ignoreDuplicates sends `Prefer: resolution=ignore-duplicates` and
   * `on_conflict=<conflictColumn>`: PostgREST answers 201 whether the row was new or already there, so a retry (the
   * object upload repeats too, harmlessly) leaves exactly one row. That needs a UNIQUE constraint on the conflict
   * column in the table (e.g. `image_url text unique`); without one PostgREST refuses the request (42P10).
   */
  private async writeRow(item: UploadItem, url: string, ex: Exchange): Promise<void> {
    const s = this.settings;
    const row = buildRow(s, item, url);
    const db = new PostgrestClient(`${s.url}/rest/v1`, { headers: this.headers, fetch: ex.fetch, retry: false });
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

  /** Storage answers every error but 500 as HTTP 400: classify on the real status and code in the body. */
  private classifyStorage(error: StorageError, ex: Exchange, step: 'upload' | 'verify'): UploadError {
    if (!(error instanceof StorageApiError)) {
      // No answer at all (network, timeout, file unreadable): storage-js keeps what fetch threw as originalError.
      return this.classifyFailure((error as StorageError & { originalError?: unknown }).originalError ?? ex.lastThrown ?? error, ex);
    }
    const statusCode = Number(error.statusCode);
    const answer = ex.lastError ?? {
      httpStatus: error.status,
      status: Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599 ? statusCode : error.status,
      message: error.message,
    };
    return this.answerError(answer, step);
  }

  private answerError(a: Answer, step: 'upload' | 'verify'): UploadError {
    const s = this.settings;
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

  private classifyFailure(e: unknown, ex: Exchange): UploadError {
    if (e instanceof UploadError) return e;
    if (isStorageError(e)) return this.classifyStorage(e, ex, 'upload');
    if (e instanceof TusAnswerError) return this.classifyTus(e);
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
      const inner = classifyThrown((e as { cause: unknown }).cause, this.settings.timeoutMs);
      if (inner.errorClass === 'permanent') return inner;
    }
    return classifyThrown(e, this.settings.timeoutMs);
  }

  /**
   * TUS answers carry the real status with a plain-text message (Storage's own errors, e.g. 409 "The resource already
   * exists", 404 "Bucket not found", 413 "Maximum size exceeded"), or JSON from the gateway and the auth check in
   * front: both read into the same classification as the REST path.
   */
  private classifyTus(e: TusAnswerError): UploadError {
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
    return this.answerError(a, 'upload');
  }

  /** The key never leaves this object: not in a message, whatever a server or library put into one. */
  private redact(e: UploadError): UploadError {
    const key = this.settings.key;
    if (!key || !e.message.includes(key)) return e;
    return new UploadError(e.message.split(key).join('[key]'), e.errorClass, e.code, e.status, e.retryAfterMs);
  }
}

/** The row for one object: each mapped column gets its source field's value; missing values are left out (column default). */
export function buildRow(s: Pick<SupabaseSettings, 'bucket' | 'columns'>, item: UploadItem, url: string): Record<string, unknown> {
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
 * Reads the Supabase config node's settings and key once, at deploy; every problem is listed in one Error. The key
 * is checked but never quoted.
 */
export function parseSupabaseSettings(raw: Record<string, unknown>, credentials: Record<string, unknown>): SupabaseSettings {
  const errors: string[] = [];
  const str = text;

  let url = str(raw.url).replace(/\/+$/, '');
  if (url === '') errors.push('Project URL is required (like https://xyz.supabase.co)');
  else {
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
  if (key === '') errors.push('API key is required (the service-role key, or an anon key with storage policies)');
  else if (!/^[\x21-\x7e]+$/.test(key)) errors.push('API key contains spaces or characters a key cannot have (was it pasted whole?)');

  const bucket = str(raw.bucket);
  if (bucket === '') errors.push('Bucket is required');
  else if (!BUCKET.test(bucket)) errors.push(`Bucket "${bucket}" must be letters, digits, dots, hyphens or underscores`);

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

  if (errors.length) throw new Error(errors.join('; '));
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
