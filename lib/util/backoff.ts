export interface BackoffPolicy {
  /** Delay ceiling of the first retry, in ms. */
  baseMs: number;
  /** Largest delay the exponential part may reach, in ms. */
  capMs: number;
}

/**
 * Exponential backoff with full jitter: a uniformly random delay in [0, min(cap, base * 2^(attempt-1))].
 * Full jitter spreads the retries of many items that failed together (a whole queue after an outage) instead of
 * sending them back in synchronised waves.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * exponentialDelay(policy, attempt));
}

/** The delay without jitter: min(cap, base * 2^(attempt-1)). */
export function exponentialDelay(policy: BackoffPolicy, attempt: number): number {
  return Math.min(policy.capMs, policy.baseMs * Math.pow(2, Math.max(0, attempt - 1)));
}

export interface ReconnectPolicy extends BackoffPolicy {
  /** A run that lasted this long was healthy: the next failure starts the waits from the beginning again. */
  stableMs: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { baseMs: 1000, capMs: 30_000, stableMs: 60_000 };

/**
 * How long to wait before restarting something long-running that ended (the recorder's ffmpeg): 1 s, 2 s, 4 s… up to
 * 30 s while it keeps failing, back to 1 s once a run has lasted a stable minute. No jitter: one recorder talks to one
 * camera, there is no herd.
 */
export class ReconnectBackoff {
  private failures = 0;

  constructor(readonly policy: ReconnectPolicy = DEFAULT_RECONNECT) {}

  /** The wait after a run that lasted `runMs`. */
  next(runMs: number): number {
    if (runMs >= this.policy.stableMs) this.failures = 0;
    this.failures++;
    return exponentialDelay(this.policy, this.failures);
  }

  reset(): void {
    this.failures = 0;
  }
}

/** Longest Retry-After we obey; a server asking for more than a day is treated as asking for a day. */
export const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

/**
 * Reads a Retry-After as a server gives it (HTTP header: delta-seconds or an HTTP-date) or as a node passes it on
 * (a number of seconds). Returns the wait in ms, or undefined when the value says nothing usable.
 */
export function parseRetryAfter(value: unknown, now: number = Date.now()): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    ms = value * 1000;
  } else if (typeof value === 'string' && value.trim() !== '') {
    const s = value.trim();
    if (/^\d+(\.\d+)?$/.test(s)) {
      ms = parseFloat(s) * 1000;
    } else {
      const at = Date.parse(s);
      if (!Number.isNaN(at)) ms = Math.max(0, at - now);
    }
  } else if (value instanceof Date && !Number.isNaN(value.getTime())) {
    ms = Math.max(0, value.getTime() - now);
  }
  if (ms === undefined) return undefined;
  return Math.min(Math.round(ms), MAX_RETRY_AFTER_MS);
}
