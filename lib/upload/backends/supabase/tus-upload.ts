import fs from 'fs';
import { Bandwidth, openBody } from '../../body';
import { abortRefused, networkCode, refusedForGood } from '../../classify';
import { ResumeState, UploadError, UploadItem } from '../../types';
import { classifyFailure, redact, sizeChanged, tusAnswer, uploadGone } from './errors';
import { Exchange, authHeaders } from './exchange';
import { TusAgents, TusAnswerError, TusClient } from './resumable';
import { SupabaseSettings, TUS_CHUNK_BYTES } from './settings';
import { settleExisting, storedSize, verifySize } from './stored-size';

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

/**
 * The code of the failure when the store refuses to tell an upload's offset just when the one we have proved wrong
 * (an Upload-Offset conflict) or uncertain (a chunk broke off): only a new upload can go on.
 */
const OFFSET_UNKNOWN = 'TUS_OFFSET_UNKNOWN';

/**
 * An answer that refuses the request for good (403, 405, 501): a gateway or policy that does not allow a HEAD or a
 * DELETE on upload URLs. Only the HTTP status counts: Storage's own "invalid signature" arrives as 400.
 */
function refused(e: unknown): e is TusAnswerError {
  return e instanceof TusAnswerError && refusedForGood(e.status);
}

function resumeFailure(what: string, e: unknown): UploadError {
  const msg = e instanceof Error ? e.message : String(e);
  return new UploadError(`the upload's progress could not be ${what} in the queue's database: ${msg}`, 'retryable', 'RESUME_STATE');
}

/**
 * The backend's path for large objects: Supabase's resumable (TUS) endpoint, with the upload's progress kept in the
 * item's resume state so a later attempt continues it, and the cleanup of uploads that will never be finished.
 */
export class TusUploads {
  private readonly headers: Record<string, string>;
  /** Kept-alive connections of the resumable uploads (the REST calls use fetch's own pool). */
  private readonly agents = new TusAgents();
  /**
   * Uploads (by URL) whose refused HEAD this process has said already: an upload retried after a lost link says it
   * once, not at every attempt. Forgotten when the upload completes or is given up.
   */
  private readonly saidUnprobed = new Set<string>();

  constructor(
    private readonly settings: SupabaseSettings,
    private readonly bandwidth?: Bandwidth,
  ) {
    // Upserts like the REST path: a retry overwrites the item's own object. Storage checks on every request but HEAD
    // that this request may write the object, and without x-upsert an existing object there is a 409 "The resource
    // already exists", a DELETE of the upload included.
    this.headers = { ...authHeaders(settings.key), 'x-upsert': 'true' };
  }

  /** The TUS endpoint of the project: uploads are created here, and live under it. */
  private tusEndpoint(): string {
    return `${this.settings.url}/storage/v1/upload/resumable`;
  }

  /**
   * A large object through the resumable (TUS) endpoint, in TUS_CHUNK_BYTES chunks streamed from disk (through the
   * bandwidth limit, reporting progress). The upload's URL is saved through the item's resume handle before any data
   * goes, and the confirmed offset after each chunk: a later attempt (after a lost link, a timeout, a restart of
   * Node-RED) asks the store how much it holds and sends only the rest. Then, like the REST path, the size is checked.
   */
  async store(item: UploadItem, ex: Exchange): Promise<void> {
    await this.checkSource(item);
    const tus = new TusClient({
      headers: this.headers,
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
        // The store holds another offset than recorded and will not say which: only a new upload goes on from here.
        if (e instanceof UploadError && e.code === OFFSET_UNKNOWN && !restarted && !item.signal.aborted) {
          restarted = true;
          item.onWarning?.(`${e.message}: starting it again`);
          this.saidUnprobed.delete(upload.tusUrl);
          await this.discard(upload, tus, item);
          await this.resumeClear(item);
          upload = undefined;
          continue;
        }
        // Storage checks the overwrite on every request, and again when the last chunk completes the object.
        if (e instanceof TusAnswerError && tusAnswer(e).code === 'KeyAlreadyExists') {
          await this.resumeClear(item);
          return settleExisting(this.settings, item, ex);
        }
        // Without a place to keep the upload (a message not from a queue), no later attempt can continue it: delete
        // it now rather than leave its bytes on the store until it expires. Not while the flow is stopping.
        if (!item.resume && !item.signal.aborted) await this.abandon(upload).catch(() => undefined);
        throw e;
      }
    }
    this.saidUnprobed.delete(upload.tusUrl);
    await this.resumeClear(item);
    await verifySize(this.settings, item, ex);
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
    this.saidUnprobed.delete(st.tusUrl);
    const signal = new AbortController().signal;
    // With x-upsert, as the upload was created: Storage answers the DELETE of an upload whose key already holds an
    // object 409 "The resource already exists" otherwise, and the upload would stay.
    const tus = new TusClient({ headers: this.headers, agents: this.agents, signal, idleMs: this.settings.timeoutMs });
    const ex = new Exchange(signal, this.settings.timeoutMs);
    try {
      await tus.terminate(st.tusUrl);
    } catch (e) {
      // Gone already (expired, deleted), or finished (Storage refuses to delete those, with x-upsert: 400): nothing
      // left to clean up.
      if (e instanceof TusAnswerError && (e.status === 404 || e.status === 410 || e.status === 400)) return;
      // Never worth asking again (a gateway or policy that does not allow the DELETE).
      if (refused(e)) throw abortRefused(`the resumable upload of ${st.key ?? 'an object'}`, e.status, `HTTP ${e.status}`);
      throw redact(this.settings, classifyFailure(this.settings, e, ex));
    } finally {
      ex.close();
    }
  }

  /**
   * Deletes an upload no attempt will continue, as far as the store allows: a refusal is said (its bytes stay until
   * the store expires the upload); any other failure is let go.
   */
  private async discard(state: TusResumeState, tus: TusClient, item: UploadItem): Promise<void> {
    try {
      await tus.terminate(state.tusUrl);
    } catch (e) {
      if (refused(e)) item.onWarning?.(`the store refused to delete the resumable upload of ${item.key} (HTTP ${e.status}): its bytes stay until the store expires it`);
    }
  }

  /** The resumable uploads' connections are this object's own (fetch keeps the REST ones in a global pool). */
  close(): void {
    this.agents.destroy();
  }


  /** The file must still be what was queued: a changed size can never upload right, and is not worth retrying. */
  private async checkSource(item: UploadItem): Promise<void> {
    const size = item.file !== undefined ? (await fs.promises.stat(item.file)).size : item.body.length;
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
      if (ours) await this.discard(st as TusResumeState, tus, item);
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
      if (!refused(e)) throw e;
      // The store will not say its offset (a gateway that does not allow HEAD): go on from the offset the queue row
      // recorded as confirmed. If the store holds more (a chunk arrived, its answer did not), the PATCH there is an
      // Upload-Offset conflict, and the upload starts again.
      if (!this.saidUnprobed.has(state.tusUrl)) {
        this.saidUnprobed.add(state.tusUrl);
        item.onWarning?.(
          `the store refused to tell the offset of the resumable upload of ${item.key} (HTTP ${e.status}): continuing from the ${state.offset} bytes recorded as confirmed`,
        );
      }
      return state;
    }
    if (held.length !== item.bytes || held.offset > item.bytes) {
      await this.discard(state, tus, item);
      await this.resumeClear(item);
      return undefined;
    }
    if (held.offset === item.bytes) {
      // Every byte arrived earlier (the attempt died before it could record that): the object is there, unless
      // completing it failed on the store, and then only a new upload can make it.
      let stored: number | undefined;
      try {
        stored = await storedSize(this.settings, item, ex);
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
        await settleExisting(this.settings, item, ex);
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
    let offset = state.offset;
    let recoveries = 0;
    if (offset > 0) item.onProgress?.(offset);
    while (offset < item.bytes) {
      const start = offset;
      const end = Math.min(item.bytes, start + TUS_CHUNK_BYTES);
      let sent = 0;
      const body = openBody(item, this.bandwidth, (n) => item.onProgress?.(start + (sent += n)), { start, end });
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
          offset = await this.heldOffset(item, tus, state, start, lost ? e : undefined);
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
   * A HEAD the store refuses (403, 405, 501) leaves the offset unknown: the caller starts a new upload.
   */
  private async heldOffset(item: UploadItem, tus: TusClient, state: TusResumeState, at: number, lost?: unknown): Promise<number> {
    let held: { offset: number; length?: number };
    try {
      held = await tus.head(state.tusUrl);
    } catch (e) {
      if (lost !== undefined && !(e instanceof TusAnswerError)) throw lost;
      if (refused(e)) {
        throw new UploadError(
          `the store refused to tell the offset of the resumable upload of ${item.key} (HTTP ${e.status}) after the chunk from byte ${at} ${lost !== undefined ? 'broke off' : 'found it elsewhere (Upload-Offset conflict)'}`,
          'retryable',
          OFFSET_UNKNOWN,
          e.status,
        );
      }
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
}
