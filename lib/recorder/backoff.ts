export interface ReconnectPolicy {
  /** Wait before the first reconnect, in ms. */
  firstMs: number;
  /** Longest wait between reconnects, in ms. */
  maxMs: number;
  /** A run that lasted this long was healthy: the next failure starts the waits from the beginning again. */
  stableMs: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { firstMs: 1000, maxMs: 30_000, stableMs: 60_000 };

/**
 * How long to wait before restarting a recording that ended: 1 s, 2 s, 4 s… up to 30 s while the camera keeps failing,
 * back to 1 s once a run has lasted a stable minute. No jitter: one recorder talks to one camera, there is no herd.
 */
export class ReconnectBackoff {
  private failures = 0;

  constructor(readonly policy: ReconnectPolicy = DEFAULT_RECONNECT) {}

  /** The wait after a run that lasted `runMs`. */
  next(runMs: number): number {
    if (runMs >= this.policy.stableMs) this.failures = 0;
    const delay = Math.min(this.policy.maxMs, this.policy.firstMs * Math.pow(2, this.failures));
    this.failures++;
    return delay;
  }

  /** Failures in a row so far. */
  get attempts(): number {
    return this.failures;
  }

  reset(): void {
    this.failures = 0;
  }
}
