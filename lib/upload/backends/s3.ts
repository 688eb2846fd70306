import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import https from 'https';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ClientConfig,
  S3ServiceException,
  StorageClass,
  ServerSideEncryption,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Bandwidth, openBody } from '../body';
import { ABORT_REFUSED, abortRefused, classifyThrown, refusedForGood, statusError } from '../classify';
import { FileItem, ResumeState, StorageBackend, UploadError, UploadItem, UploadResult } from '../types';
import { SettingsReader, text } from '../../util/settings';

export interface S3Settings {
  /** Blank = AWS. */
  endpoint?: string;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  /** Blank = the SDK's default chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  storageClass?: string;
  sse?: string;
  multipartThresholdBytes: number;
  partSizeBytes: number;
  timeoutMs: number;
  concurrency: number;
  /** Base of the URL reported for each object (a CDN or public bucket URL); blank = the endpoint's own. */
  publicUrl?: string;
}

const PERMANENT_NAMES: Record<string, string> = {
  NoSuchBucket: 'the bucket does not exist',
  InvalidAccessKeyId: 'the access key is not known to the server',
  SignatureDoesNotMatch: 'the secret key does not match the access key',
  AccessDenied: 'access denied: the key may not write to this bucket',
  InvalidBucketName: 'the bucket name is not valid',
  EntityTooLarge: 'the object is larger than the server accepts',
  InvalidStorageClass: 'the storage class is not valid here',
  PermanentRedirect: 'the bucket is in another region: set that region',
  AuthorizationHeaderMalformed: 'the region does not match the bucket',
};

/** What is kept of a multipart upload between attempts (in the queue item's row): enough to continue it. */
export interface S3MultipartState extends ResumeState {
  kind: 's3-multipart';
  bucket: string;
  key: string;
  uploadId: string;
  /** The file as it was when the upload started: a file that changed since starts again. */
  bytes: number;
  mtimeMs: number;
  partSize: number;
  /** Parts the store confirmed, with their ETags (as S3 returned them, quotes included). */
  parts: { n: number; etag: string }[];
}

/** How a file is cut into parts: their size, their number, and the size of part `n` (1-based; the last is shorter). */
interface PartPlan {
  size: number;
  count: number;
  sizeOf: (n: number) => number;
}

/** The HTTP status and S3 error code of what a request threw, when the store answered at all. */
function answerOf(e: unknown): { status?: number; name?: string } {
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return { status: err?.$metadata?.httpStatusCode, name: err?.name || err?.Code };
}

/** "HTTP 405 MethodNotAllowed": what the store answered, for a log line. */
function answerText(e: unknown): string {
  const { status, name } = answerOf(e);
  return [status !== undefined ? `HTTP ${status}` : undefined, name].filter(Boolean).join(' ') || String((e as Error)?.message ?? e);
}

/**
 * The store answered that it will never do this request (not implemented, not allowed, or denied by the key's
 * policy). A wrong key or signature fails every request alike, so it is a setup problem, not this request refused.
 */
function refusedByStore(e: unknown): boolean {
  const { status, name } = answerOf(e);
  if (status === undefined) return false;
  if (name && name !== 'AccessDenied' && PERMANENT_NAMES[name]) return false;
  return refusedForGood(status, name);
}

/** Parts uploaded at once within one file: memory is about this many parts, never the file. */
const PARTS_AT_ONCE = 2;
/** S3's limit on the number of parts of one object. */
const MAX_PARTS = 10_000;

/** S3 and S3-compatible stores (AWS, MinIO, Wasabi, R2, Spaces). */
export class S3Backend implements StorageBackend {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly agent: http.Agent | https.Agent;
  /**
   * Multipart uploads (by id) whose refused ListParts this process has said already: an upload retried after a lost
   * link says it once, not at every attempt. Forgotten when the upload completes or is given up.
   */
  private readonly saidUnprobed = new Set<string>();

  constructor(readonly settings: S3Settings, private readonly bandwidth?: Bandwidth) {
    const secure = !settings.endpoint || settings.endpoint.startsWith('https:');
    // Keep-alive connections, as many as uploads may run at once: one TLS handshake per connection, not per object.
    this.agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: Math.max(settings.concurrency, 4) })
      : new http.Agent({ keepAlive: true, maxSockets: Math.max(settings.concurrency, 4) });
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint || undefined,
      forcePathStyle: settings.forcePathStyle,
      credentials: settings.accessKeyId ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey ?? '' } : undefined,
      // Checksums only where S3 requires them: S3-compatible stores may not understand aws-chunked bodies (and one
      // stores the framing as data). Integrity is checked with Content-MD5 and the stored size instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The queue owns retries (with backoff, and without losing the item); one quick repeat covers a dropped socket.
      maxAttempts: 2,
      // Failures come back to the queue classified; the SDK's own console lines would only repeat them. No info():
      // the SDK's logging middleware calls logger.info?.(…) with a copy of every request and answer, filtered for
      // secrets, which it builds only when there is an info to give it to (a silent info would still cost that copy).
      logger: { trace() {}, debug() {}, warn() {}, error() {} } as unknown as S3ClientConfig['logger'],
      // Options for the SDK's own Node HTTP handler (it builds the handler from them).
      requestHandler: {
        httpAgent: secure ? undefined : (this.agent as http.Agent),
        httpsAgent: secure ? (this.agent as https.Agent) : undefined,
        connectionTimeout: Math.min(settings.timeoutMs, 10_000),
        requestTimeout: settings.timeoutMs,
      },
    });
  }

  get largeAbove(): number {
    return this.settings.multipartThresholdBytes;
  }

  resumeScope(): string {
    return `s3 ${this.settings.endpoint ?? `aws:${this.settings.region}`} ${this.settings.bucket}`;
  }

  async abandon(state: ResumeState): Promise<void> {
    const st = state as Partial<S3MultipartState>;
    if (st.kind !== 's3-multipart' || typeof st.uploadId !== 'string' || typeof st.key !== 'string') return;
    this.saidUnprobed.delete(st.uploadId);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: st.bucket ?? this.settings.bucket, Key: st.key, UploadId: st.uploadId }));
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchUpload') return;
      // Never worth asking again (an IAM policy without s3:AbortMultipartUpload, a store without the call).
      if (refusedByStore(e)) throw abortRefused(`the multipart upload of ${st.key}`, answerOf(e).status, answerText(e));
      throw this.classify(e);
    }
  }

  endpoint(): string {
    const s = this.settings;
    if (s.endpoint) return s.forcePathStyle ? `${s.endpoint.replace(/\/$/, '')}/${s.bucket}` : s.endpoint;
    return `https://s3.${s.region}.amazonaws.com/`;
  }

  objectUrl(key: string): string {
    const s = this.settings;
    const path = key.split('/').map(encodeURIComponent).join('/');
    if (s.publicUrl) return `${s.publicUrl.replace(/\/$/, '')}/${path}`;
    if (s.endpoint) {
      const base = s.endpoint.replace(/\/$/, '');
      if (s.forcePathStyle) return `${base}/${s.bucket}/${path}`;
      const u = new URL(base);
      return `${u.protocol}//${s.bucket}.${u.host}/${path}`;
    }
    return `https://${s.bucket}.s3.${s.region}.amazonaws.com/${path}`;
  }

  async upload(item: UploadItem): Promise<UploadResult> {
    try {
      let etag: string | undefined;
      if (item.bytes >= this.settings.multipartThresholdBytes && item.file) {
        etag = await this.multipart(item);
        await this.verify(item);
      } else {
        const put = await this.put(item);
        etag = put.etag;
        // An ETag equal to the MD5 of our bytes already proves the stored content; otherwise ask for the size.
        if (!put.md5Verified) await this.verify(item);
      }
      return { key: item.key, url: this.objectUrl(item.key), etag, bytes: item.bytes };
    } catch (e) {
      throw this.classify(e);
    }
  }

  private common(item: UploadItem) {
    const s = this.settings;
    return {
      Bucket: s.bucket,
      Key: item.key,
      ContentType: item.contentType,
      Metadata: item.metadata,
      StorageClass: (s.storageClass || undefined) as StorageClass | undefined,
      ServerSideEncryption: (s.sse || undefined) as ServerSideEncryption | undefined,
    };
  }

  /** One PutObject with Content-MD5, so the server rejects a body damaged on the way. */
  private async put(item: UploadItem): Promise<{ etag?: string; md5Verified: boolean }> {
    const data = item.file !== undefined ? await readWhole(item.file, item.bytes) : item.body;
    if (data.length !== item.bytes) {
      throw new UploadError(`the file changed size since it was queued (${item.bytes} → ${data.length} bytes)`, 'permanent', 'FILE_CHANGED');
    }
    const md5 = crypto.createHash('md5').update(data).digest();
    const limited = this.bandwidth && this.bandwidth.shaping;
    let sent = 0;
    const out = await this.client.send(
      new PutObjectCommand({
        ...this.common(item),
        Body: limited ? openBody({ body: data }, this.bandwidth, (n) => item.onProgress?.((sent += n))) : data,
        ContentLength: data.length,
        ContentMD5: md5.toString('base64'),
      }),
      { abortSignal: item.signal },
    );
    if (!limited) item.onProgress?.(data.length);
    const etag = out.ETag?.replace(/"/g, '');
    // A single-part ETag is the MD5 of the stored bytes, unless KMS encryption changes it.
    const comparable = !!etag && /^[0-9a-f]{32}$/.test(etag) && this.settings.sse !== 'aws:kms';
    if (comparable && etag !== md5.toString('hex')) {
      throw new UploadError(`the stored object's checksum (${etag}) differs from the file's (${md5.toString('hex')})`, 'retryable', 'CHECKSUM_MISMATCH');
    }
    return { etag, md5Verified: comparable };
  }

  /**
   * Large files go up in parts, a few in memory at a time, never the whole file. Each part is sent with its MD5 (the
   * store refuses a damaged one) and, once confirmed, recorded through the item's resume handle: after a crash, a
   * restart or a lost link the next attempt asks the store which parts it holds (ListParts) and sends only the rest.
   * A store that no longer has the upload, or not all of the parts it was continued from, gets a new upload, once.
   */
  private async multipart(item: FileItem): Promise<string | undefined> {
    const s = this.settings;
    const file = item.file;
    const st = await fs.promises.stat(file);
    if (st.size !== item.bytes) {
      throw new UploadError(`the file changed size since it was queued (${item.bytes} → ${st.size} bytes)`, 'permanent', 'FILE_CHANGED');
    }
    // Parts grow past the configured size only when the file needs more than S3's 10,000 parts.
    const partSize = Math.max(s.partSizeBytes, Math.ceil(item.bytes / MAX_PARTS));
    const count = Math.max(1, Math.ceil(item.bytes / partSize));
    const plan: PartPlan = { size: partSize, count, sizeOf: (n: number) => Math.min(partSize, item.bytes - (n - 1) * partSize) };

    const found = await this.continuable(item, st.mtimeMs, plan);
    if (found === 'completed') return undefined;
    let state = found;
    for (let restarted = false; ; restarted = true) {
      if (!state) {
        const created = await this.client.send(new CreateMultipartUploadCommand(this.common(item)), { abortSignal: item.signal });
        if (!created.UploadId) throw new UploadError('the store did not return an upload id for the multipart upload', 'retryable', 'NO_UPLOAD_ID');
        state = { kind: 's3-multipart', bucket: s.bucket, key: item.key, uploadId: created.UploadId, bytes: item.bytes, mtimeMs: st.mtimeMs, partSize, parts: [] };
        await item.resume?.save(state, 0);
      }
      try {
        const sent = await this.sendParts(item, state, plan);
        const etag = await this.complete(item, sent);
        this.saidUnprobed.delete(state.uploadId);
        return etag;
      } catch (e) {
        const name = (e as { name?: string }).name;
        // The store forgot the upload (it expired, or was aborted), or lacks a part it was continued from: only a new
        // upload can make the object. Once per attempt; the old one is aborted where the store allows it.
        if (restarted || item.signal.aborted || (name !== 'NoSuchUpload' && name !== 'InvalidPart')) throw e;
        item.onWarning?.(
          name === 'NoSuchUpload'
            ? `the store no longer has the multipart upload of ${item.key} (NoSuchUpload): starting it again`
            : `the store does not hold every part the multipart upload of ${item.key} was continued from (InvalidPart): starting it again`,
        );
        if (name === 'InvalidPart') await this.discard(state, item);
        this.saidUnprobed.delete(state.uploadId);
        await item.resume?.clear();
        state = undefined;
      }
    }
  }

  /**
   * Sends the parts the state does not hold yet, two at a time, recording each confirmed one; resolves with the state
   * holding every part. A failed part stops the others; the next attempt continues from what was recorded.
   */
  private async sendParts(item: FileItem, current: S3MultipartState, plan: PartPlan): Promise<S3MultipartState> {
    const s = this.settings;
    const { size: partSize, count, sizeOf } = plan;
    const have = new Map(current.parts.map((p) => [p.n, p.etag]));
    let confirmed = current.parts.reduce((a, p) => a + sizeOf(p.n), 0);
    const inFlight = new Map<number, number>();
    const report = () => item.onProgress?.(confirmed + [...inFlight.values()].reduce((a, b) => a + b, 0));
    if (confirmed > 0) report();

    const todo = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !have.has(n));
    let saving = Promise.resolve();
    const stop = new AbortController();
    const signal = AbortSignal.any([item.signal, stop.signal]);
    const worker = async () => {
      // One part-sized buffer per worker, reused for each of its parts: memory stays at a few parts, and a 1 GB
      // file does not leave a trail of 8 MB buffers for the garbage collector.
      let buffer: Buffer | undefined;
      for (let n = todo.shift(); n !== undefined; n = todo.shift()) {
        if (signal.aborted) throw item.signal.reason ?? new Error('aborted');
        const start = (n - 1) * partSize;
        buffer ??= Buffer.allocUnsafe(partSize);
        const data = await readRange(item.file, start, sizeOf(n), buffer);
        const md5 = crypto.createHash('md5').update(data).digest();
        inFlight.set(n, 0);
        const out = await this.client.send(
          new UploadPartCommand({
            Bucket: current.bucket,
            Key: current.key,
            UploadId: current.uploadId,
            PartNumber: n,
            Body: openBody({ body: data }, this.bandwidth, (b) => {
              inFlight.set(n, (inFlight.get(n) ?? 0) + b);
              report();
            }),
            ContentLength: data.length,
            ContentMD5: md5.toString('base64'),
          }),
          { abortSignal: signal },
        );
        inFlight.delete(n);
        const etag = out.ETag ?? `"${md5.toString('hex')}"`;
        const plain = etag.replace(/"/g, '');
        if (/^[0-9a-f]{32}$/.test(plain) && s.sse !== 'aws:kms' && plain !== md5.toString('hex')) {
          throw new UploadError(`part ${n} was stored with another checksum (${plain}) than sent (${md5.toString('hex')})`, 'retryable', 'CHECKSUM_MISMATCH');
        }
        have.set(n, etag);
        confirmed += data.length;
        report();
        // Saved in order, one at a time, so the row never goes back to fewer parts.
        const snapshot: S3MultipartState = { ...current, parts: [...have].map(([pn, e]) => ({ n: pn, etag: e })).sort((a, b) => a.n - b.n) };
        const bytesNow = confirmed;
        saving = saving.then(() => item.resume?.save(snapshot, bytesNow));
        await saving;
      }
    };
    // The first failure is the reason: the others only stopped because of it.
    let first: { reason: unknown } | undefined;
    const workers = Array.from({ length: Math.min(PARTS_AT_ONCE, Math.max(1, todo.length)) }, () =>
      worker().catch((e) => {
        first ??= { reason: e };
        stop.abort();
      }),
    );
    await Promise.all(workers);
    if (first) {
      // Without a place to keep the parts (a message not from a queue), they could never be used: abort the upload.
      if (!item.resume) await this.discard(current, item);
      throw first.reason;
    }
    return { ...current, parts: [...have].map(([n, etag]) => ({ n, etag })).sort((a, b) => a.n - b.n) };
  }

  /** CompleteMultipartUpload with every part; the store's ETag of the object. */
  private async complete(item: FileItem, state: S3MultipartState): Promise<string | undefined> {
    let etag: string | undefined;
    try {
      const done = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: state.bucket,
          Key: state.key,
          UploadId: state.uploadId,
          MultipartUpload: { Parts: state.parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
        { abortSignal: item.signal },
      );
      etag = done.ETag?.replace(/"/g, '');
    } catch (e) {
      // Completed by an earlier attempt that did not live to record it: the object is there (verify() checks it).
      // Otherwise the upload is gone, and the caller starts a new one.
      if ((e as { name?: string }).name !== 'NoSuchUpload' || !(await this.holds(item))) throw e;
    }
    await item.resume?.clear();
    return etag;
  }

  /**
   * Aborts a multipart upload no attempt will continue, as far as the store allows: a refusal is said (its parts stay
   * until the store's lifecycle rule removes them); any other failure is let go, as the store expires it in the end.
   */
  private async discard(state: S3MultipartState, item: UploadItem): Promise<void> {
    try {
      await this.abandon(state);
    } catch (e) {
      if (e instanceof UploadError && e.code === ABORT_REFUSED) {
        item.onWarning?.(`${e.message}: its parts stay on the store until a lifecycle rule for incomplete multipart uploads removes them`);
      }
    }
  }

  /**
   * The saved multipart upload of an earlier attempt, brought up to date with what the store holds; 'completed' when
   * the store already has the whole object; undefined when there is nothing to continue.
   */
  private async continuable(item: UploadItem, mtimeMs: number, plan: PartPlan): Promise<S3MultipartState | 'completed' | undefined> {
    const { size: partSize, count, sizeOf } = plan;
    const saved = (await item.resume?.load()) as S3MultipartState | undefined;
    if (!saved || saved.kind !== 's3-multipart') return undefined;
    const same = saved.bucket === this.settings.bucket && saved.key === item.key && saved.bytes === item.bytes && saved.mtimeMs === mtimeMs && saved.partSize === partSize;
    if (!same) {
      // The file or the settings changed: that upload cannot be continued. Abort it (best effort) and start again.
      await this.discard(saved, item);
      await item.resume?.clear();
      return undefined;
    }
    const listed = new Map<number, { etag: string; size: number }>();
    try {
      let marker: string | undefined;
      for (let page = 0; page < MAX_PARTS / 1000 + 1; page++) {
        const r = await this.client.send(
          new ListPartsCommand({ Bucket: saved.bucket, Key: saved.key, UploadId: saved.uploadId, PartNumberMarker: marker }),
          { abortSignal: item.signal },
        );
        for (const p of r.Parts ?? []) if (p.PartNumber && p.ETag) listed.set(p.PartNumber, { etag: p.ETag, size: p.Size ?? -1 });
        if (!r.IsTruncated || !r.NextPartNumberMarker) break;
        marker = r.NextPartNumberMarker;
      }
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchUpload') {
        await item.resume?.clear();
        // Gone: completed by an attempt that crashed before it was acknowledged, or aborted (expired) on the store.
        if (await this.holds(item)) return 'completed';
        return undefined;
      }
      if (!refusedByStore(e)) throw e;
      return this.unprobed(item, saved, count, answerText(e));
    }
    // Only parts the store holds whole, with the ETag we were given when we sent them (or, after a crash between
    // the part and its record, any part of the right size: its MD5 was checked by the store on the way in).
    const recorded = new Map(saved.parts.map((p) => [p.n, p.etag]));
    const parts = [...listed]
      .filter(([n, p]) => p.size === sizeOf(n) && (!recorded.has(n) || recorded.get(n)!.replace(/"/g, '') === p.etag.replace(/"/g, '')))
      .map(([n, p]) => ({ n, etag: p.etag }))
      .sort((a, b) => a.n - b.n);
    return { ...saved, parts };
  }

  /**
   * The saved upload when the store refused to say which parts it holds (ListParts not implemented, or not allowed to
   * this key): it goes on from the parts the queue row recorded as confirmed, and the completion judges them
   * (InvalidPart or NoSuchUpload there starts the upload again). With every part recorded, the attempt that sent the
   * last one may have completed the upload before it died: an object already stored whole ends it.
   */
  private async unprobed(item: UploadItem, saved: S3MultipartState, count: number, answer: string): Promise<S3MultipartState | 'completed'> {
    const parts = (Array.isArray(saved.parts) ? saved.parts : []).filter((p) => Number.isInteger(p.n) && p.n >= 1 && p.n <= count && typeof p.etag === 'string');
    const refused = `the store refused to list the parts of the multipart upload of ${item.key} (${answer})`;
    if (parts.length === count && (await this.holds(item).catch(() => false))) {
      item.onWarning?.(`${refused}; the object is already stored whole: an earlier attempt completed it`);
      this.saidUnprobed.delete(saved.uploadId);
      await item.resume?.clear();
      return 'completed';
    }
    if (!this.saidUnprobed.has(saved.uploadId)) {
      this.saidUnprobed.add(saved.uploadId);
      item.onWarning?.(`${refused}: continuing from the ${parts.length} of ${count} parts recorded as confirmed; the completion shows whether the store kept them`);
    }
    return { ...saved, parts };
  }

  /** Whether the store already holds the item's object, whole. A failure other than "not there" is an error. */
  private async holds(item: UploadItem): Promise<boolean> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: item.key }), { abortSignal: item.signal });
      return head.ContentLength === item.bytes && (!item.sha256 || head.Metadata?.sha256 === undefined || head.Metadata.sha256 === item.sha256);
    } catch (e) {
      const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404) return false;
      throw e;
    }
  }

  /** The store must hold exactly as many bytes as the file has before the item counts as uploaded. */
  private async verify(item: UploadItem): Promise<void> {
    const head = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: item.key }), { abortSignal: item.signal });
    if (head.ContentLength !== item.bytes) {
      throw new UploadError(`the store holds ${head.ContentLength} bytes for ${item.key}, the file has ${item.bytes}`, 'retryable', 'SIZE_MISMATCH');
    }
  }

  private classify(e: unknown): UploadError {
    if (e instanceof UploadError) return e;
    if (e instanceof S3ServiceException || (e as { $metadata?: unknown }).$metadata) {
      const err = e as S3ServiceException & { Code?: string };
      const status = err.$metadata?.httpStatusCode;
      const name = err.name || err.Code || 'S3Error';
      const retryAfter = (err.$response?.headers as Record<string, string> | undefined)?.['retry-after'];
      if (PERMANENT_NAMES[name]) {
        return new UploadError(`${PERMANENT_NAMES[name]} (${name}, bucket ${this.settings.bucket})`, 'permanent', name, status);
      }
      if (status) {
        const what = status === 403 ? 'access denied' : status === 404 ? 'not found' : (err.message || name).slice(0, 200);
        return statusError(status, `${what} (HTTP ${status} ${name})`, retryAfter, name);
      }
    }
    return classifyThrown(e, this.settings.timeoutMs);
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.agent.destroy();
  }
}

/**
 * A small file read whole, when its size is known (the uploader stat()ed it): open, one read for one byte more than
 * expected (which shows a file that grew), close. readFile would fstat it too; and the upload need not wait for the
 * close of a file opened only to read it. Returns what was read: shorter or longer than `bytes` when the file changed.
 * A read that comes back short having reached the expected size is the end: no second read to hear it say 0 (each
 * read is a trip through the thread pool, and at 16 uploads at once the event loop is what limits the drain). A file
 * system may read short before its end, so a short read that has not reached the size reads on.
 */
async function readWhole(file: string, bytes: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(bytes + 1);
    let got = 0;
    while (got < buf.length) {
      const want = buf.length - got;
      const { bytesRead } = await fh.read(buf, got, want, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (bytesRead < want && got >= bytes) break;
    }
    return buf.subarray(0, got);
  } finally {
    fh.close().catch(() => undefined);
  }
}

/** Reads one part of a file into `into` (at least `length` long); returns the part's bytes, a view of it. */
async function readRange(file: string, start: number, length: number, into: Buffer): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = into.subarray(0, length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, start + got);
      if (bytesRead === 0) throw new UploadError(`the file got shorter while it was uploading (${start + got} bytes)`, 'retryable', 'FILE_CHANGED');
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** Reads the S3 config node's settings and credentials once, at deploy; every problem is listed. */
export function parseS3Settings(raw: Record<string, unknown>, credentials: Record<string, unknown>): S3Settings {
  const r = new SettingsReader(raw);
  const errors = r.errors;
  const str = text;
  const endpoint = str(raw.endpoint);
  if (endpoint !== '') {
    try {
      const u = new URL(endpoint);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errors.push(`Endpoint must start with http:// or https:// (got "${endpoint}")`);
      if (u.username || u.password) errors.push('Endpoint must not contain a user name or password: use the access key fields');
    } catch {
      errors.push(`Endpoint "${endpoint}" is not a URL`);
    }
  }
  const region = str(raw.region) || 'us-east-1';
  if (!/^[a-z0-9-]+$/.test(region)) errors.push(`Region "${region}" is not a region name (like eu-central-1)`);
  const bucket = r.required('bucket', 'bucket', 'Bucket is required');
  if (bucket !== '' && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) errors.push(`Bucket "${bucket}" is not a valid bucket name (3-63 lower-case letters, digits, dots, hyphens)`);
  const accessKeyId = str(credentials.accessKeyId);
  const secretAccessKey = str(credentials.secretAccessKey);
  if ((accessKeyId === '') !== (secretAccessKey === '')) errors.push('Give both the access key and the secret, or neither (to use the environment or an instance role)');
  const num = (key: string, label: string, def: number, min: number, max: number, integer = false) => r.num(key, label, def, min, max, { integer });
  const thresholdMB = num('multipartMB', 'Multipart above', 16, 5, 5 * 1024);
  const partMB = num('partMB', 'Part size', 8, 5, 5 * 1024);
  const timeoutS = num('timeout', 'Timeout', 60, 1, 3600);
  const concurrency = num('concurrency', 'Concurrency', 4, 1, 64, true);
  const sse = str(raw.sse);
  if (sse !== '' && sse !== 'AES256' && sse !== 'aws:kms') errors.push(`Server-side encryption must be AES256 or aws:kms (got "${sse}")`);
  const storageClass = str(raw.storageClass);
  if (storageClass !== '' && !/^[A-Z_]+$/.test(storageClass)) errors.push(`Storage class "${storageClass}" is not a storage class (like STANDARD_IA)`);
  const publicUrl = str(raw.publicUrl);
  if (publicUrl !== '' && !/^https?:\/\//.test(publicUrl)) errors.push(`Public URL must start with http:// or https:// (got "${publicUrl}")`);
  r.check();
  return {
    endpoint: endpoint || undefined,
    region,
    bucket,
    forcePathStyle: raw.forcePathStyle === true || raw.forcePathStyle === 'true',
    accessKeyId: accessKeyId || undefined,
    secretAccessKey: secretAccessKey || undefined,
    storageClass: storageClass || undefined,
    sse: sse || undefined,
    multipartThresholdBytes: Math.round(thresholdMB * 1024 * 1024),
    partSizeBytes: Math.round(partMB * 1024 * 1024),
    timeoutMs: Math.round(timeoutS * 1000),
    concurrency,
    publicUrl: publicUrl || undefined,
  };
}
