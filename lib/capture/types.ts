/** Where a capture's bytes come from. A source returns the raw image; checking and storing it is not its job. */
export interface CaptureSource {
  readonly kind: string;
  /**
   * Fetches one image. Must honour `signal` (abort = stop at once, release sockets and child processes), and must
   * never hold more than `maxBytes` in memory: a bigger answer is a CaptureError('TOO_LARGE').
   */
  grab(signal: AbortSignal, maxBytes: number): Promise<Buffer>;
  /** Releases anything held between captures (agents, processes). */
  close(): Promise<void>;
}

/**
 * A capture that failed, with a code for flows and a message a person can act on (never carrying a password).
 * Codes: AUTH, TIMEOUT, TOO_LARGE, NOT_FOUND, CAMERA_ERROR, UNREACHABLE, TLS, CUT_SHORT, ABORTED, NOT_AN_IMAGE,
 * BAD_IMAGE, NO_IMAGE, NO_FRAME, NO_DEVICE, FFMPEG_MISSING, FFMPEG_ERROR, COMMAND_MISSING, COMMAND_FAILED, NO_OUTPUT,
 * DISK_FULL, FOLDER, BAD_NAME.
 */
export class CaptureError extends Error {
  /** For TOO_LARGE and cut-short answers: how much of the image arrived before the source gave up. */
  bytesRead?: number;

  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'CaptureError';
  }
}
