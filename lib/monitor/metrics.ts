import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Board, Snapshot } from './board';

// The board's figures in Prometheus' text format, through prom-client. Labels are node names, camera names and
// backend kinds: never file names, keys or ids, so the number of series stays bounded by the flow.

/** Why an upload failed and will be retried, in a few words that make a bounded label. */
export const UPLOAD_FAILURE_KINDS = ['network', 'timeout', 'server', 'throttled', 'client', 'other'] as const;
export type UploadFailureKind = (typeof UPLOAD_FAILURE_KINDS)[number];

const NETWORK = /^(E[A-Z]+|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT)$/;

/** The kind of a failed upload from its error code (network codes, TIMEOUT, HTTP status as text) and HTTP status. */
export function uploadFailureKind(code: string | undefined, status?: number): UploadFailureKind {
  const st = status ?? (code && /^\d{3}$/.test(code) ? Number(code) : undefined);
  if (code === 'TIMEOUT' || (code && /TIMEOUT/.test(code))) return 'timeout';
  if (st === 429 || code === 'SlowDown' || code === 'Throttling') return 'throttled';
  if (st !== undefined && st >= 500) return 'server';
  if (st !== undefined && st >= 400) return 'client';
  if (code && NETWORK.test(code)) return 'network';
  return 'other';
}

/** The order of health states as a gauge's value. */
export const HEALTH_VALUE = { healthy: 0, degraded: 1, unhealthy: 2 } as const;

/** What the device monitor adds when it is deployed: its verdict, and which alerts are on. */
export interface Verdict {
  status: keyof typeof HEALTH_VALUE;
  activeAlerts: string[];
}

const QUEUE_STATES = ['ready', 'retrying', 'in_flight', 'failed', 'expired'] as const;

export class BoardMetrics {
  readonly registry = new Registry();
  readonly captures: Counter<'node' | 'camera' | 'result'>;
  readonly uploadBytes: Counter<'node' | 'backend'>;
  readonly uploadDuration: Histogram<'node' | 'backend'>;
  readonly uploadRetries: Counter<'node' | 'backend' | 'class'>;
  /** Set by a deployed device monitor: its verdict at scrape time. */
  verdict?: () => Promise<Verdict>;
  private defaults = false;

  constructor(board: Board) {
    const registers = [this.registry];
    const look = (): Promise<Snapshot> => board.snapshot();

    /** A gauge whose values are read from the board at each scrape. */
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (s: Snapshot, set: (labels: Record<L, string>, v: number) => void) => void) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const s = await look();
          this.reset();
          fill(s, (labels, v) => this.set(labels as never, v));
        },
      });
    /** A counter kept by somebody else (the queue's database, a node's own tally): read at each scrape, never counted here. */
    const kept = <L extends string>(name: string, help: string, labelNames: L[], fill: (s: Snapshot, add: (labels: Record<L, string>, v: number) => void) => void) =>
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const s = await look();
          this.reset();
          fill(s, (labels, v) => this.inc(labels as never, v));
        },
      });
    const counted = (name: string, help: string, read: (totals: NonNullable<Snapshot['queues'][number]['stats']>) => number) =>
      kept(name, help, ['node'], (s, add) => {
        for (const q of s.queues) if (q.stats) add({ node: q.name }, read(q.stats));
      });

    gauge('uplink_queue_items', 'Items in each state, per queue.', ['node', 'state'], (s, set) => {
      for (const q of s.queues) {
        if (!q.stats) continue;
        const v = { ready: q.stats.ready, retrying: q.stats.retrying, in_flight: q.stats.inFlight, failed: q.stats.failed, expired: q.stats.expired };
        for (const state of QUEUE_STATES) set({ node: q.name, state }, v[state]);
      }
    });
    gauge('uplink_queue_pending_items', 'Items waiting to go out (ready plus retrying), as the dashboard shows them.', ['node'], (s, set) => {
      for (const q of s.queues) if (q.stats) set({ node: q.name }, q.stats.pending);
    });
    gauge('uplink_queue_oldest_pending_age_seconds', 'Age of the oldest item not yet uploaded (0 when none).', ['node'], (s, set) => {
      for (const q of s.queues) if (q.stats) set({ node: q.name }, q.stats.oldestPendingAgeS ?? 0);
    });
    gauge('uplink_queue_bytes', 'Bytes of the items waiting to go out.', ['node'], (s, set) => {
      for (const q of s.queues) if (q.stats) set({ node: q.name }, q.stats.queuedBytes);
    });
    gauge('uplink_queue_paused', '1 while the queue is paused.', ['node'], (s, set) => {
      for (const q of s.queues) if (q.stats) set({ node: q.name }, q.stats.paused ? 1 : 0);
    });
    gauge('uplink_queue_up', '1 while the queue database is open and answering.', ['node'], (s, set) => {
      for (const q of s.queues) set({ node: q.name }, q.stats ? 1 : 0);
    });
    counted('uplink_queue_enqueued_total', 'Items ever queued (kept in the queue database).', (st) => st.totals.enqueued);
    counted('uplink_queue_uploaded_total', 'Items ever uploaded (kept in the queue database).', (st) => st.totals.done);
    counted('uplink_queue_failed_total', 'Items ever set aside as failed (kept in the queue database).', (st) => st.totals.dead);
    counted('uplink_queue_dropped_total', 'Items ever dropped by a limit (kept in the queue database).', (st) => st.totals.dropped);
    counted('uplink_queue_expired_total', 'Items ever expired unsent (kept in the queue database).', (st) => st.totals.expired);

    gauge('uplink_connectivity_up', '1 while the upload target answers, 0 while it does not (absent before the first verdict).', ['node'], (s, set) => {
      for (const l of s.links) if (l.state.online !== null) set({ node: l.name }, l.state.online ? 1 : 0);
    });
    gauge('uplink_connectivity_probe_latency_seconds', 'Latency of the last successful probe.', ['node'], (s, set) => {
      for (const l of s.links) if (l.state.latencyMs !== null) set({ node: l.name }, l.state.latencyMs / 1000);
    });
    kept('uplink_connectivity_changes_total', 'Changes between online and offline since the node started.', ['node'], (s, add) => {
      for (const l of s.links) add({ node: l.name }, l.changes);
    });

    this.captures = new Counter({ name: 'uplink_captures_total', help: 'Captures taken, by result.', labelNames: ['node', 'camera', 'result'], registers });
    gauge('uplink_capture_failures_in_a_row', 'Failed captures since the last good one.', ['node', 'camera'], (s, set) => {
      for (const c of s.captures) set({ node: c.name, camera: c.camera }, c.failuresInARow);
    });

    this.uploadBytes = new Counter({ name: 'uplink_upload_bytes_total', help: 'Bytes of the items uploaded.', labelNames: ['node', 'backend'], registers });
    this.uploadDuration = new Histogram({
      name: 'uplink_upload_duration_seconds',
      help: 'Time to upload one item, from the uploader taking it to the target confirming it.',
      labelNames: ['node', 'backend'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.uploadRetries = new Counter({ name: 'uplink_upload_retries_total', help: 'Uploads that failed and will be tried again, by why.', labelNames: ['node', 'backend', 'class'], registers });

    /** A budget figure of each uploader whose target has one, per period with a limit. */
    const budgetGauge = (name: string, help: string, pick: (p: { bytes: number; limit: number }) => number) =>
      gauge(name, help, ['node', 'period'], (s, set) => {
        for (const u of s.uploaders) {
          const b = u.budget?.();
          if (!b) continue;
          for (const period of ['day', 'month'] as const) if (b[period].limit > 0) set({ node: u.name, period }, pick(b[period]));
        }
      });
    budgetGauge('uplink_budget_used_bytes', 'Bytes sent to the target this period, for the uploaders whose target has a byte budget.', (p) => p.bytes);
    budgetGauge('uplink_budget_limit_bytes', 'The byte budget of the target, per period.', (p) => p.limit);
    gauge('uplink_recorder_recording', '1 while the recorder is recording.', ['node', 'camera'], (s, set) => {
      for (const r of s.recorders) set({ node: r.name, camera: r.view?.camera ?? '' }, r.view?.state === 'recording' ? 1 : 0);
    });
    gauge('uplink_recorder_state', 'The recorder\'s state (1 for the one it is in): starting, recording, reconnecting, paused, stopped (on purpose), closed.', ['node', 'camera', 'state'], (s, set) => {
      for (const r of s.recorders) if (r.view) set({ node: r.name, camera: r.view.camera, state: r.view.state }, 1);
    });
    kept('uplink_recorder_segments_total', 'Segments closed and handed on since the node started.', ['node', 'camera'], (s, add) => {
      for (const r of s.recorders) if (r.view) add({ node: r.name, camera: r.view.camera }, r.view.segments);
    });
    kept('uplink_recorder_gaps_total', 'Gaps in the recording (the camera dropped, ffmpeg restarted) since the node started.', ['node', 'camera'], (s, add) => {
      for (const r of s.recorders) if (r.view) add({ node: r.name, camera: r.view.camera }, r.view.gaps.count);
    });

    gauge('uplink_disk_free_bytes', 'Free bytes on the file system of each folder in use (the node using it; userDir for Node-RED).', ['node'], (s, set) => {
      for (const d of s.disks) if (d.freeBytes !== null) set({ node: d.node }, d.freeBytes);
    });

    const verdictOf = () => this.verdict?.();
    new Gauge({
      name: 'uplink_health_status',
      help: 'The device monitor\'s verdict: 0 healthy, 1 degraded, 2 unhealthy.',
      registers,
      async collect() {
        const v = await verdictOf();
        this.reset();
        if (v) this.set(HEALTH_VALUE[v.status]);
      },
    });
    new Gauge<'alert'>({
      name: 'uplink_alert_active',
      help: 'Alerts of the device monitor that are raised now (1).',
      labelNames: ['alert'],
      registers,
      async collect() {
        const v = await verdictOf();
        this.reset();
        for (const a of v?.activeAlerts ?? []) this.set({ alert: a }, 1);
      },
    });
  }

  /** Node.js process figures (CPU, memory, event loop) too: taken once metrics are served. */
  withProcessMetrics(): void {
    if (this.defaults) return;
    this.defaults = true;
    // The event-loop delay is sampled twice a second: enough to see a stall, few wake-ups on an idle Pi.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 500 });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  forgetCapture(node: string, camera: string): void {
    this.captures.remove({ node, camera, result: 'ok' });
    this.captures.remove({ node, camera, result: 'failed' });
  }

  forgetUploader(node: string, backend: string): void {
    this.uploadBytes.remove({ node, backend });
    this.uploadDuration.remove({ node, backend });
    for (const k of UPLOAD_FAILURE_KINDS) this.uploadRetries.remove({ node, backend, class: k });
  }
}
