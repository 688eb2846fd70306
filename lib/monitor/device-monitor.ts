import { performance } from 'perf_hooks';
import { maskUrlLogin } from '../util/url-login';
import { AlertBook, AlertEvent } from './alerts';
import type { Board } from './board';
import type { MonitorConfig } from './config';
import { ClockJump, conditionsOf, healthAnswer, HealthStatus, verdictOf } from './health';
import type { Verdict } from './metrics';

/** The clocks the monitor reads: injected by tests. `mono` never jumps (ms since some fixed point). */
export interface Clocks {
  wall(): number;
  mono(): number;
}

export const SYSTEM_CLOCKS: Clocks = { wall: Date.now, mono: () => performance.now() };

/** A clock jump stays on the health answer (and its alert raised) this long at least. */
const JUMP_SHOWN_MS = 10 * 60_000;

/** What an alert message carries (the node sends it as msg.payload). */
export interface AlertMessage {
  alert: string;
  subject: string;
  state: 'raised' | 'cleared';
  severity: string;
  message: string;
  device: string;
  since: string;
  at: string;
  value: number | null;
  threshold: number | null;
}

/**
 * The device monitor: health and the alerts, both from the board's snapshot and the same conditions. It looks at the
 * board every `checkEveryMs` (in memory only: nothing is written while the device is idle).
 */
export class DeviceMonitor {
  private readonly book: AlertBook;
  private timer?: NodeJS.Timeout;
  private checking?: Promise<{ status: HealthStatus; reasons: string[] }>;
  private offset?: number;
  private jump: ClockJump | null = null;
  private readonly startedMono: number;

  constructor(
    private readonly board: Board,
    readonly config: MonitorConfig,
    private readonly onAlert: (a: AlertMessage) => void,
    private readonly clocks: Clocks = SYSTEM_CLOCKS,
    /** Told the verdict after each timed look (the node's status). */
    private readonly onCheck: (v: { status: HealthStatus; reasons: string[] }) => void = () => {},
  ) {
    this.book = new AlertBook(config.alerts);
    this.startedMono = clocks.mono();
    this.lookAtClock();
  }

  start(): void {
    this.timer ??= setInterval(() => void this.check().then(this.onCheck, () => {}), this.config.checkEveryMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look: alerts that start or end now are sent; returns the verdict. Looks never overlap. */
  check(): Promise<{ status: HealthStatus; reasons: string[] }> {
    this.checking ??= (async () => {
      try {
        const snap = await this.board.snapshot();
        const conditions = conditionsOf(snap, this.config.thresholds, this.lookAtClock());
        for (const e of this.book.update(conditions, this.clocks.wall())) this.onAlert(this.message(e));
        const v = verdictOf(conditions);
        return { status: v.status, reasons: v.reasons.map(maskUrlLogin) };
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /** GET /uplink/health: the HTTP status (503 when unhealthy) and the body. */
  async health(): Promise<{ code: number; body: ReturnType<typeof healthAnswer> }> {
    const snap = await this.board.snapshot();
    const conditions = conditionsOf(snap, this.config.thresholds, this.lookAtClock());
    const alerts = this.book.active().map((a) => ({ alert: a.alert, subject: a.subject, since: new Date(a.since).toISOString(), message: maskUrlLogin(a.message) }));
    const body = healthAnswer(snap, conditions, { device: this.config.device, uptimeS: (this.clocks.mono() - this.startedMono) / 1000, alerts });
    body.reasons = body.reasons.map(maskUrlLogin);
    return { code: body.status === 'unhealthy' ? 503 : 200, body };
  }

  /** For the metrics: the verdict now, and the alerts raised. */
  async verdict(): Promise<Verdict> {
    const snap = await this.board.snapshot();
    const { status } = verdictOf(conditionsOf(snap, this.config.thresholds, this.lookAtClock()));
    return { status, activeAlerts: [...new Set(this.book.active().map((a) => a.alert))] };
  }

  /**
   * Compares wall time with the monotonic clock since the last look: a difference that moved by more than the
   * threshold is a jump (NTP setting a Pi's clock after boot, a person changing it). Returns the last jump while it is
   * recent.
   */
  private lookAtClock(): ClockJump | null {
    const wall = this.clocks.wall();
    const offset = wall - this.clocks.mono();
    if (this.offset !== undefined) {
      const by = (offset - this.offset) / 1000;
      if (Math.abs(by) > this.config.thresholds.clockJumpS) this.jump = { at: wall, byS: by };
    }
    this.offset = offset;
    const shownMs = Math.max(JUMP_SHOWN_MS, (this.config.alerts.raiseAfterS * 1000) + 2 * this.config.checkEveryMs);
    if (this.jump && Math.abs(wall - this.jump.at) > shownMs) this.jump = null;
    return this.jump;
  }

  private message(e: AlertEvent): AlertMessage {
    return {
      alert: e.alert,
      subject: e.subject,
      state: e.state,
      severity: e.severity,
      message: maskUrlLogin(e.message),
      device: this.config.device,
      since: new Date(e.since).toISOString(),
      at: new Date(e.at).toISOString(),
      value: e.value,
      threshold: e.threshold,
    };
  }
}
