import fs from 'fs';
import { Readable } from 'stream';
import { StorageClient } from '@supabase/storage-js';
import { Bandwidth, openBody } from '../../body';
import { ResumeState, StorageBackend, UploadError, UploadItem, UploadResult } from '../../types';
import { classifyFailure, classifyStorage, redact, sizeChanged } from './errors';
import { Exchange, authHeaders, encodeKey } from './exchange';
import { writeRow } from './row';
import { BUFFER_LIMIT_BYTES, SupabaseSettings } from './settings';
import { settleExisting, verifySize } from './stored-size';
import { TusUploads } from './tus-upload';

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
  /** Large objects, through the resumable endpoint. */
  private readonly tus: TusUploads;

  constructor(
    readonly settings: SupabaseSettings,
    private readonly bandwidth?: Bandwidth,
  ) {
    this.headers = authHeaders(settings.key);
    this.tus = new TusUploads(settings, bandwidth);
  }

  endpoint(): string {
    return `${this.settings.url}/storage/v1/`;
  }

  /** Saved progress of a resumable upload belongs to one project and bucket. */
  resumeScope(): string {
    return `supabase ${this.settings.url} ${this.settings.bucket}`;
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
      if (this.settings.table) await writeRow(this.settings, item, url, ex);
      return { key: item.key, url, bytes: item.bytes, status: 200 };
    } catch (e) {
      throw redact(this.settings, e instanceof UploadError ? e : classifyFailure(this.settings, e, ex));
    } finally {
      ex.close();
    }
  }

  async close(): Promise<void> {
    // fetch keeps the REST connections in a global pool and each attempt's timers are cleared; the TUS connections
    // are this backend's own.
    this.tus.close();
  }

  /** The unfinished resumable upload of an item that left the queue is deleted on the store. */
  async abandon(state: ResumeState): Promise<void> {
    return this.tus.abandon(state);
  }

  /** Puts the object (an upsert), then checks the store holds as many bytes as the item has. */
  private async store(item: UploadItem, ex: Exchange): Promise<void> {
    const s = this.settings;
    if (item.bytes > BUFFER_LIMIT_BYTES) return this.tus.store(item, ex);
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
    if (!streamed && !(this.bandwidth && this.bandwidth.shaping)) item.onProgress?.(item.bytes);
    if (error) {
      const failure = classifyStorage(s, error, ex, 'upload');
      // Not expected with upsert, but if a policy refuses the overwrite, an earlier attempt may have stored this very
      // object (we crashed before the ack): the same size means it is uploaded.
      if (failure.code === 'KeyAlreadyExists') return settleExisting(s, item, ex);
      throw failure;
    }
    await verifySize(s, item, ex);
  }

  /**
   * A Buffer for inline payloads and files up to BUFFER_LIMIT_BYTES (read fresh each attempt), a stream from disk
   * above that or whenever a bandwidth limit applies. storage-js hands a Node Readable to fetch, which streams it
   * (duplex 'half') with the Content-Length we give, and fails the request if the file has changed size since.
   */
  private async body(item: UploadItem, ex: Exchange): Promise<Buffer | Readable> {
    let data = item.body;
    if (item.file !== undefined && item.bytes <= BUFFER_LIMIT_BYTES) {
      data = await fs.promises.readFile(item.file);
      if (data.length !== item.bytes) throw sizeChanged(item.bytes, data.length);
    }
    const limited = !!this.bandwidth && this.bandwidth.shaping;
    if (data && !limited) return data;
    let sent = 0;
    const stream = openBody(data ? { body: data } : item, this.bandwidth, (n) => {
      ex.touch();
      item.onProgress?.((sent += n));
    });
    // fetch reads the body only once it starts sending: a file that cannot be opened fails the stream before anyone
    // listens, and an 'error' event nobody listens to takes the whole process down. The stream stays errored, so
    // fetch still fails with this error (as its cause) when it reads.
    stream.on('error', () => {});
    return stream;
  }
}
