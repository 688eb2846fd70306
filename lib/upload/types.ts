/** One object to store, as every backend sees it. The key is final and safe; the body is read fresh per attempt. */
export interface UploadItem {
  key: string;
  /** A file on disk, streamed (never read whole when large). Exactly one of file and body is set. */
  file?: string;
  /** An inline payload. */
  body?: Buffer;
  bytes: number;
  contentType: string;
  /** Hex SHA-256 of the content, when the capture computed it. */
  sha256?: string;
  /** Small string metadata (camera, captured-at, sha256, queue item id), stored beside the object where the backend can. */
  metadata: Record<string, string>;
  /** Everything the item's message carried that a backend may map (Supabase's table row). */
  fields: Record<string, unknown>;
  /** Aborted on timeout or when the node closes. */
  signal: AbortSignal;
  onProgress?: (sentBytes: number) => void;
}

export interface UploadResult {
  key: string;
  /** Where the object can be found (public URL or API location); never carries a secret. */
  url?: string;
  etag?: string;
  bytes: number;
  /** What the target answered, for backends whose answer the user wants (HTTP). */
  response?: unknown;
  status?: number;
}

export type FailureClass = 'retryable' | 'permanent';

/** A failed upload, classified: retryable (network, timeout, 5xx, 429) or permanent (the item or the setup is wrong). */
export class UploadError extends Error {
  constructor(
    message: string,
    readonly errorClass: FailureClass,
    readonly code: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface StorageBackend {
  readonly kind: string;
  upload(item: UploadItem): Promise<UploadResult>;
  /** The URL the connectivity node probes when it follows this target. */
  endpoint(): string;
  close(): Promise<void>;
}
