import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import https from 'https';
import { HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException, StorageClass, ServerSideEncryption } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Bandwidth, openBody } from './body';
import { classifyThrown, statusError } from './classify';
import { StorageBackend, UploadError, UploadItem, UploadResult } from './types';
import { SettingsReader, text } from '../settings';

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

/** S3 and S3-compatible stores (AWS, MinIO, Wasabi, R2, Spaces). */
export class S3Backend implements StorageBackend {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly agent: http.Agent | https.Agent;

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
      // Options for the SDK's own Node HTTP handler (it builds the handler from them).
      requestHandler: {
        httpAgent: secure ? undefined : (this.agent as http.Agent),
        httpsAgent: secure ? (this.agent as https.Agent) : undefined,
        connectionTimeout: Math.min(settings.timeoutMs, 10_000),
        requestTimeout: settings.timeoutMs,
      },
    });
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
    const data = item.body ?? (await fs.promises.readFile(item.file!));
    if (data.length !== item.bytes) {
      throw new UploadError(`the file changed size since it was queued (${item.bytes} → ${data.length} bytes)`, 'permanent', 'FILE_CHANGED');
    }
    const md5 = crypto.createHash('md5').update(data).digest();
    const limited = this.bandwidth && this.bandwidth.bytesPerSecond > 0;
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

  /** Large files stream through multipart upload, a few parts in memory at a time, never the whole file. */
  private async multipart(item: UploadItem): Promise<string | undefined> {
    let sent = 0;
    const upload = new Upload({
      client: this.client,
      params: { ...this.common(item), Body: openBody({ file: item.file }, this.bandwidth, (n) => item.onProgress?.((sent += n))), ContentLength: item.bytes },
      partSize: this.settings.partSizeBytes,
      queueSize: 2,
      leavePartsOnError: false,
      abortController: abortControllerFor(item.signal),
    });
    const out = await upload.done();
    return (out as { ETag?: string }).ETag?.replace(/"/g, '');
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

function abortControllerFor(signal: AbortSignal): AbortController {
  const ac = new AbortController();
  if (signal.aborted) ac.abort();
  else signal.addEventListener('abort', () => ac.abort(), { once: true });
  return ac;
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
  const bucket = str(raw.bucket);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) errors.push(`Bucket "${bucket}" is not a valid bucket name (3-63 lower-case letters, digits, dots, hyphens)`);
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
