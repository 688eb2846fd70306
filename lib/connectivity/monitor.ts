import { ProbeResult, ProbeSpec, runProbe } from './probes';

export interface ConnectivityTiming {
  timeoutMs: number;
  /** Probe interval while online. */
  onlineIntervalMs: number;
  /** First probe interval while offline (or unsure), growing by `growth` up to offlineMaxMs. */
  offlineMinMs: number;
  offlineMaxMs: number;
  growth: number;
  /** Consecutive failures that take the state to offline (one success brings it back). */
  failuresToOffline: number;
}

export const DEFAULT_TIMING: ConnectivityTiming = {
  timeoutMs: 3000,
  onlineIntervalMs: 30_000,
  offlineMinMs: 1000,
  offlineMaxMs: 15_000,
  growth: 1.3,
  failuresToOffline: 2,
};

export interface ConnectivityState {
  /** null until the first verdict. */
  online: boolean | null;
  since: number;
  latencyMs: number | null;
  reason: string;
}

export interface HistoryEntry {
  at: string;
  online: boolean;
  latencyMs: number | null;
  reason: string;
  /** How long the previous state lasted, ms (null for the first verdict). */
  previousMs: number | null;
}

export interface Uptime {
  sinceStartS: number;
  onlineS: number;
  offlineS: number;
  /** Share of the known time spent online, 0..1 (null before the first verdict). */
  ratio: number | null;
  changes: number;
  probes: number;
}

export interface ConnectivityEvents {
  change(state: ConnectivityState): void;
  probed(result: ProbeResult, state: ConnectivityState): void;
}

const HISTORY_LIMIT = 500;

/**
 * Decides whether the upload target is reachable. Probes slowly while online, quickly while offline (backing off
 * gently, so a long outage costs little), goes offline only after several failures in a row and online after one
 * success. Upload results count as evidence too: a success is a free successful probe, a network failure asks for a
 * probe now.
 */
export class ConnectivityMonitor {
  private state: ConnectivityState;
  private failures = 0;
  private offlineInterval: number;
  private timer?: NodeJS.Timeout;
  private probing = false;
  private again = false;
  private stopped = true;
  private readonly startedAt: number;
  private readonly log: HistoryEntry[] = [];
  private onlineMs = 0;
  private offlineMs = 0;
  private probes = 0;
  private changes = 0;
  private lastProbeAt = 0;

  constructor(
    private readonly probe: ProbeSpec,
    readonly timing: ConnectivityTiming,
    private readonly events: ConnectivityEvents,
    private readonly now: () => number = Date.now,
    private readonly probeFn: (spec: ProbeSpec, timeoutMs: number) => Promise<ProbeResult> = runProbe,
  ) {
    this.startedAt = now();
    this.state = { online: null, since: this.startedAt, latencyMs: null, reason: 'not probed yet' };
    this.offlineInterval = timing.offlineMinMs;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.probeNow();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  current(): ConnectivityState {
    return { ...this.state };
  }

  /** Probes at once (a probe already running is followed by one more, not run twice at the same time). */
  probeNow(): void {
    if (this.stopped) return;
    if (this.probing) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.probing = true;
    void this.runOnce();
  }

  /**
   * Evidence from a real upload. A success is as good as a probe. A failure asks for a probe now, unless the state is
   * already offline (the offline schedule is probing) or a probe ran moments ago: a burst of failed uploads must not
   * become a burst of probes.
   */
  report(ok: boolean, reason: string): void {
    if (this.stopped) return;
    if (ok) {
      const wasOffline = this.state.online !== true;
      this.apply({ ok: true, latencyMs: this.state.online === true ? (this.state.latencyMs ?? 0) : 0, reason });
      if (wasOffline && !this.probing) {
        if (this.timer) clearTimeout(this.timer);
        this.scheduleNext();
      }
      return;
    }
    if (this.state.online === false || this.probing) return;
    if (this.now() - this.lastProbeAt < this.timing.offlineMinMs) return;
    this.probeNow();
  }

  history(): HistoryEntry[] {
    return this.log.slice();
  }

  uptime(): Uptime {
    const t = this.now();
    const current = t - this.state.since;
    const onlineMs = this.onlineMs + (this.state.online === true ? current : 0);
    const offlineMs = this.offlineMs + (this.state.online === false ? current : 0);
    const known = onlineMs + offlineMs;
    return {
      sinceStartS: Math.round((t - this.startedAt) / 1000),
      onlineS: Math.round(onlineMs / 1000),
      offlineS: Math.round(offlineMs / 1000),
      ratio: known > 0 ? Math.round((onlineMs / known) * 10000) / 10000 : null,
      changes: this.changes,
      probes: this.probes,
    };
  }

  private async runOnce(): Promise<void> {
    try {
      do {
        this.again = false;
        const result = await this.probeFn(this.probe, this.timing.timeoutMs);
        if (this.stopped) return;
        this.probes++;
        this.lastProbeAt = this.now();
        this.apply(result);
        this.emit(() => this.events.probed(result, this.current()));
      } while (this.again && !this.stopped);
    } catch {
      /* runProbe never throws; a custom probe that does counts as nothing learned */
    } finally {
      this.probing = false;
      this.scheduleNext();
    }
  }

  private apply(result: ProbeResult): void {
    if (result.ok) {
      this.failures = 0;
      this.offlineInterval = this.timing.offlineMinMs;
      if (this.state.online !== true) this.change(true, result);
      else this.state = { ...this.state, latencyMs: result.latencyMs, reason: result.reason };
      return;
    }
    this.failures++;
    if (this.state.online !== false && this.failures >= this.timing.failuresToOffline) {
      this.change(false, result);
    } else if (this.state.online !== true) {
      this.state = { ...this.state, latencyMs: null, reason: result.reason };
    }
  }

  private change(online: boolean, result: ProbeResult): void {
    const t = this.now();
    const previousMs = this.state.online === null ? null : t - this.state.since;
    if (this.state.online === true) this.onlineMs += t - this.state.since;
    if (this.state.online === false) this.offlineMs += t - this.state.since;
    this.state = { online, since: t, latencyMs: online ? result.latencyMs : null, reason: result.reason };
    this.changes++;
    this.log.push({ at: new Date(t).toISOString(), online, latencyMs: this.state.latencyMs, reason: result.reason, previousMs });
    if (this.log.length > HISTORY_LIMIT) this.log.splice(0, this.log.length - HISTORY_LIMIT);
    const state = this.current();
    this.emit(() => this.events.change(state));
  }

  /** A listener that throws must not stop the probing (or become an unhandled rejection). */
  private emit(fn: () => void): void {
    try {
      fn();
    } catch {
      /* the listener's own problem */
    }
  }

  private scheduleNext(): void {
    if (this.stopped) return;
    let delay: number;
    if (this.state.online === true && this.failures === 0) {
      delay = this.timing.onlineIntervalMs;
    } else {
      // Offline, unsure, or a first failure to confirm: probe soon, a little later each time.
      delay = this.offlineInterval;
      this.offlineInterval = Math.min(this.timing.offlineMaxMs, Math.round(this.offlineInterval * this.timing.growth));
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.probeNow();
    }, delay);
  }
}
