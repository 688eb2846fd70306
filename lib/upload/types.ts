/** What every item carries besides its bytes. The key is final and safe. */
interface UploadItemBase {
  key: string;
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
  /**
   * Told what the backend did about a request the store refused for good (a resume probe, an abort): which way the
   * upload went and why. Called at a decision, never per part or chunk; the uploader passes each text on once.
   */
  onWarning?: (text: string) => void;
  /**
   * Where a large upload keeps what the store has confirmed (S3 UploadId and part ETags, a TUS upload URL), so that
   * after a crash, a restart or a lost link it continues instead of starting again. Set when the item came from an
   * offline-queue (the state lives in the queue's database, in the item's row); absent for other messages.
   */
  resume?: ResumeHandle;
}

/** An item whose bytes are a file on disk, streamed (never read whole when large). */
export interface FileItem extends UploadItemBase {
  file: string;
  body?: undefined;
}

/** An item whose bytes came inline, in the message. */
export interface BodyItem extends UploadItemBase {
  body: Buffer;
  file?: undefined;
}

/** One object to store, as every backend sees it: a file or an inline body, read fresh per attempt. */
export type UploadItem = FileItem | BodyItem;

/** Where an item's bytes are: `file !== undefined` tells which. */
export type ItemSource = Pick<FileItem, 'file' | 'body'> | Pick<BodyItem, 'file' | 'body'>;

/** Backend-specific progress of one item on one target, as plain JSON. */
export type ResumeState = Record<string, unknown>;

export interface ResumeHandle {
  /** The state an earlier attempt of this item saved for this target, if any. */
  load(): Promise<ResumeState | undefined>;
  /** Saves the state durably (it is what the store has confirmed) with the bytes the store holds so far. */
  save(state: ResumeState, confirmedBytes: number): Promise<void>;
  /** Forgets the state: the upload completed, or the state turned out to be useless (the upload expired). */
  clear(): Promise<void>;
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

/**
 * retryable: try again after a backoff; permanent: never; held: not tried at all (a byte budget holds it until
 * `retryAfterMs`), so it uses up no attempt.
 */
export type FailureClass = 'retryable' | 'permanent' | 'held';

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
  /**
   * Names the store (backend, endpoint, bucket) the saved progress of a resumable upload belongs to: progress saved
   * for one store is never applied to another. Absent for backends that do not resume.
   */
  resumeScope?(): string;
  /** Items from this size up are "large" for this backend (they upload in parts): they take the lane for large items. */
  readonly largeAbove?: number;
  /** Cleans up, on the store, an upload that will never be finished (an S3 multipart upload is aborted). */
  abandon?(state: ResumeState): Promise<void>;
  close(): Promise<void>;
}
