import type { Snapshot } from './board';

// The device's health, from one snapshot of the board and the thresholds the user set: a list of conditions (each
// either holding or not), the verdict they add up to, and the answer GET /uplink/health gives. The alerts are the
// same conditions over time (alerts.ts), so the health page and the alerts can never disagree.

export interface Thresholds {
  /** Pending items (per queue) above which the queue counts as backed up (degraded; alert queue-depth). */
  maxPending: number;
  /** Oldest pending item older than this: unhealthy (alert queue-age). */
  maxOldestPendingS: number;
  /** Target offline for longer than this: unhealthy (alert offline); shorter: degraded. */
  offlineForS: number;
  /** This many failed captures in a row: unhealthy (alert camera-failing). */
  captureFailures: number;
  /** Free space below this on any folder in use: unhealthy (alert disk-low). */
  minDiskFreeBytes: number;
  /** A recorder not recording for longer than this (unless stopped on purpose): unhealthy (alert recorder-stopped). */
  recorderStalledS: number;
  /** A jump of the wall clock against the monotonic clock bigger than this: degraded (alert clock-jump). */
  clockJumpS: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  maxPending: 1000,
  maxOldestPendingS: 3600,
  offlineForS: 600,
  captureFailures: 3,
  minDiskFreeBytes: 500 * 1024 * 1024,
  recorderStalledS: 120,
  clockJumpS: 120,
};

export const ALERTS = ['queue-depth', 'queue-age', 'offline', 'camera-failing', 'disk-low', 'failed-items', 'recorder-stopped', 'clock-jump'] as const;
export type AlertName = (typeof ALERTS)[number];

export type Severity = 'warning' | 'critical';

/** One thing that can be wrong, for one subject (a queue, a link, a camera…), and whether it is wrong now. */
export interface Condition {
  /** The alert it raises; null for what only lowers health (a short outage, a paused queue). */
  alert: AlertName | null;
  /** Who it is about: the node's name ('' for the device as a whole). */
  subject: string;
  severity: Severity;
  active: boolean;
  message: string;
  value: number | null;
  threshold: number | null;
}

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/** A jump of the wall clock, as the monitor saw it between two looks. */
export interface ClockJump {
  at: number;
  byS: number;
}

const s = (n: number): string => {
  if (n < 120) return `${Math.round(n)} s`;
  if (n < 3600) return `${Math.round(n / 60)} min`;
  const m = Math.floor(n / 60);
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
};
const mb = (b: number): string => (b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(1)} GB` : `${Math.round(b / 1024 ** 2)} MB`);

/** Every condition the snapshot allows to judge. `clock` is the last jump seen, if one is recent. */
export function conditionsOf(snap: Snapshot, t: Thresholds, clock?: ClockJump | null): Condition[] {
  const out: Condition[] = [];
  const now = snap.at;
  for (const q of snap.queues) {
    const st = q.stats;
    if (!st) {
      out.push({ alert: null, subject: q.name, severity: 'critical', active: true, message: `queue "${q.name}" is not running: ${q.error ?? 'no answer'}`, value: null, threshold: null });
      continue;
    }
    out.push({
      alert: 'queue-depth', subject: q.name, severity: 'warning', active: st.pending > t.maxPending,
      message: `queue "${q.name}" holds ${st.pending} pending items (over ${t.maxPending})`, value: st.pending, threshold: t.maxPending,
    });
    const age = st.oldestPendingAgeS ?? 0;
    out.push({
      alert: 'queue-age', subject: q.name, severity: 'critical', active: age > t.maxOldestPendingS,
      message: `queue "${q.name}": the oldest pending item waits for ${s(age)} (over ${s(t.maxOldestPendingS)})`, value: age, threshold: t.maxOldestPendingS,
    });
    const failed = st.failed + st.expired;
    out.push({
      alert: 'failed-items', subject: q.name, severity: 'warning', active: failed > 0,
      message: `queue "${q.name}" has ${failed} failed item${failed === 1 ? '' : 's'}${st.lastError ? ` (last error: ${st.lastError})` : ''}`, value: failed, threshold: 0,
    });
    if (st.paused) out.push({ alert: null, subject: q.name, severity: 'warning', active: true, message: `queue "${q.name}" is paused`, value: null, threshold: null });
  }
  for (const l of snap.links) {
    if (l.state.online !== false) continue;
    const forS = Math.max(0, (now - l.state.since) / 1000);
    const long = forS > t.offlineForS;
    out.push({
      alert: long ? 'offline' : null, subject: l.name, severity: long ? 'critical' : 'warning', active: true,
      message: `"${l.name}": the upload target has been offline for ${s(forS)} (${l.state.reason})`, value: forS, threshold: t.offlineForS,
    });
  }
  // The alert's episode is the whole outage: it exists (inactive) for online links too, so it can clear.
  for (const l of snap.links) {
    if (l.state.online === false && (now - l.state.since) / 1000 > t.offlineForS) continue;
    out.push({ alert: 'offline', subject: l.name, severity: 'critical', active: false, message: `"${l.name}": the upload target answers`, value: 0, threshold: t.offlineForS });
  }
  for (const c of snap.captures) {
    const n = c.failuresInARow;
    out.push({
      alert: 'camera-failing', subject: c.name, severity: 'critical', active: n >= t.captureFailures,
      message: `camera "${c.camera}" (${c.name}): ${n} failed capture${n === 1 ? '' : 's'} in a row${c.lastError ? `: ${c.lastError}` : ''}`, value: n, threshold: t.captureFailures,
    });
    if (n > 0 && n < t.captureFailures) out.push({ alert: null, subject: c.name, severity: 'warning', active: true, message: `camera "${c.camera}": the last capture failed${c.lastError ? `: ${c.lastError}` : ''}`, value: n, threshold: t.captureFailures });
  }
  for (const r of snap.recorders) {
    const state = r.view?.state ?? 'not started';
    const forS = Math.max(0, (now - r.stateSince) / 1000);
    // Stopped by a "stop" message is a person's choice, not a fault.
    const stalled = state !== 'recording' && state !== 'stopped' && forS > t.recorderStalledS;
    out.push({
      alert: 'recorder-stopped', subject: r.name, severity: 'critical', active: stalled,
      message: `recorder "${r.name}" (${r.view?.camera ?? 'camera'}) has been ${state} for ${s(forS)}`, value: forS, threshold: t.recorderStalledS,
    });
  }
  for (const d of snap.disks) {
    if (d.freeBytes === null) continue;
    out.push({
      alert: 'disk-low', subject: d.node, severity: 'critical', active: d.freeBytes < t.minDiskFreeBytes,
      message: `only ${mb(d.freeBytes)} free on the disk of ${d.node === 'userDir' ? "Node-RED's folder" : `"${d.node}"`} (under ${mb(t.minDiskFreeBytes)})`, value: d.freeBytes, threshold: t.minDiskFreeBytes,
    });
  }
  for (const u of snap.uploaders) {
    const b = u.budget?.();
    if (!b || b.state === 'ok') continue;
    out.push({ alert: null, subject: u.name, severity: 'warning', active: true, message: `"${u.name}": ${b.text}${b.state === 'spent' ? ', spent' : ', nearly spent'}`, value: null, threshold: null });
  }
  for (const p of snap.problems) {
    out.push({ alert: null, subject: p.name, severity: 'critical', active: true, message: `${p.type.replace(/^uplink-/, '')} "${p.name}" is not working: ${p.message}`, value: null, threshold: null });
  }
  out.push({
    alert: 'clock-jump', subject: '', severity: 'warning', active: !!clock,
    message: clock ? `the clock jumped by ${clock.byS > 0 ? '+' : ''}${Math.round(clock.byS)} s at ${new Date(clock.at).toISOString()}` : 'the clock runs steadily',
    value: clock ? clock.byS : 0, threshold: t.clockJumpS,
  });
  return out;
}

export function verdictOf(conditions: Condition[]): { status: HealthStatus; reasons: string[] } {
  const active = conditions.filter((c) => c.active);
  const reasons = [...active.filter((c) => c.severity === 'critical'), ...active.filter((c) => c.severity === 'warning')].map((c) => c.message);
  const status: HealthStatus = active.some((c) => c.severity === 'critical') ? 'unhealthy' : active.length ? 'degraded' : 'healthy';
  return { status, reasons };
}

const iso = (t: number | null | undefined): string | null => (typeof t === 'number' && t > 0 ? new Date(t).toISOString() : null);

/** The body of GET /uplink/health. Names, counts and times only: no URL, path or login of any node. */
export function healthAnswer(
  snap: Snapshot,
  conditions: Condition[],
  ctx: { device: string; uptimeS: number; alerts: { alert: string; subject: string; since: string; message: string }[] },
) {
  const { status, reasons } = verdictOf(conditions);
  const stats = snap.queues.flatMap((q) => (q.stats ? [q.stats] : []));
  const known = snap.links.filter((l) => l.state.online !== null);
  const online = known.length ? known.every((l) => l.state.online === true) : stats.length ? stats.every((q) => q.online) : null;
  const ages = stats.map((q) => q.oldestPendingAgeS).filter((a): a is number => typeof a === 'number');
  const frees = snap.disks.map((d) => d.freeBytes).filter((b): b is number => b !== null);
  const max = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => typeof x === 'number');
    return v.length ? Math.max(...v) : null;
  };
  return {
    status,
    reasons,
    device: ctx.device,
    uptimeS: Math.round(ctx.uptimeS),
    lastCaptureAt: iso(max(snap.captures.map((c) => c.lastCaptureAt))),
    lastUploadAt: iso(max(snap.uploaders.map((u) => u.lastUploadAt))),
    captures: snap.captures.reduce((n, c) => n + c.ok, 0),
    uploads: stats.reduce((n, q) => n + q.totals.done, 0),
    failed: stats.reduce((n, q) => n + q.failed + q.expired, 0),
    pending: stats.reduce((n, q) => n + q.pending, 0),
    oldestPendingAgeS: ages.length ? Math.max(...ages) : null,
    online,
    onlineSince: online === true && known.length ? iso(Math.max(...known.map((l) => l.state.since))) : null,
    offlineSince: online === false && known.length ? iso(Math.min(...known.filter((l) => l.state.online === false).map((l) => l.state.since))) : null,
    diskFreeBytes: frees.length ? Math.min(...frees) : null,
    queues: snap.queues.map((q) => ({
      name: q.name,
      running: q.stats !== null,
      pending: q.stats?.pending ?? null,
      inFlight: q.stats?.inFlight ?? null,
      failed: q.stats ? q.stats.failed + q.stats.expired : null,
      uploaded: q.stats?.totals.done ?? null,
      oldestPendingAgeS: q.stats?.oldestPendingAgeS ?? null,
      online: q.stats?.online ?? null,
      paused: q.stats?.paused ?? null,
    })),
    links: snap.links.map((l) => ({ name: l.name, online: l.state.online, since: iso(l.state.since), latencyMs: l.state.latencyMs })),
    cameras: snap.captures.map((c) => ({
      name: c.name,
      camera: c.camera,
      ok: c.ok,
      failed: c.failed,
      failuresInARow: c.failuresInARow,
      lastCaptureAt: iso(c.lastCaptureAt),
    })),
    budgets: snap.uploaders.flatMap((u) => {
      const b = u.budget?.();
      return b ? [{ name: u.name, state: b.state, text: b.text, resetsAt: iso(b.resetsAt), metered: b.metered, day: b.day, month: b.month }] : [];
    }),
    recorders: snap.recorders.map((r) => ({
      name: r.name,
      camera: r.view?.camera ?? null,
      state: r.view?.state ?? 'not started',
      recording: r.view?.state === 'recording',
      since: iso(r.stateSince),
      segments: r.view?.segments ?? 0,
      gaps: r.view?.gaps.count ?? 0,
      lastSegmentAt: r.view?.lastSegmentAt ?? null,
    })),
    alerts: ctx.alerts,
  };
}
