import path from 'path';
import type { QueueStats } from '../queue/status';
import type { ItemRow } from '../queue/store';
import { isRecord, Msg, readUplink, Uplink } from '../message/uplink';
import type { ActionsMode } from './config';
import type { LinkState } from '../connectivity/status';

// What the Uplink status widget shows, made from what the nodes already publish: the queue's stats (output 3), its
// failed items (the same list as GET /uplink/queue/<id>/failed), the connectivity node's state changes, the capture
// node's captures, and the errors wired into the widget. The browser only draws this; it computes no figure.


export type LinkWord = 'online' | 'offline' | 'not-configured' | 'unknown';

export interface StatusView {
  /** When this view was made (server clock, ms): the browser measures "since" against it, not against its own clock. */
  at: number;
  queue: { running: boolean; problem: string | null };
  link: { state: LinkWord; paused: boolean; since: number | null; reason: string; latencyMs: number | null; target: string | null };
  /** Why items wait untried (a byte budget), from the queue's stats; null when nothing is held. */
  held: string | null;
  counts: { pending: number; inFlight: number; uploaded: number; failed: number; retrying: number; queuedBytes: number; oldestPendingAgeS: number | null } | null;
  /** Queue depth (pending + in flight) at each change: [time ms, depth], oldest first. */
  depth: [number, number][];
  uploading: { id: number; bytes: number; sent: number; percent: number }[];
  capture: CaptureView | null;
  errors: { at: number; text: string }[];
  failed: { items: FailedView[]; more: number };
  /** From the connectivity node's outage log: the last days' outages, newest first (null when there is no log). */
  outages: OutagesView | null;
  actions: ActionsMode;
}

export interface OutagesView {
  days: number;
  count: number;
  offlineS: number;
  recent: { start: number; end: number | null; durationS: number; reason: string }[];
}

/** Outages listed on the widget. */
export const OUTAGES_SHOWN = 5;

export interface CaptureView {
  name: string;
  capturedAt: string | null;
  bytes: number | null;
  width: number | null;
  height: number | null;
  camera: string | null;
  durationS: number | null;
  /** An image the browser can show (served by the widget node, by node id, never by path). */
  image: boolean;
}

export interface FailedView {
  id: number;
  /** dead: failed for good or out of attempts; expired: older than the queue's Expire after. */
  state: string;
  attempts: number;
  lastError: string | null;
  name: string;
  bytes: number;
  at: number;
}

/** Depth samples kept: the last half hour of changes, at most this many. */
export const DEPTH_WINDOW_MS = 30 * 60_000;
export const DEPTH_MAX_SAMPLES = 240;
export const ERRORS_KEPT = 5;

/** The name a failed item is listed under: its file's name, or what an inline payload is. */
export function itemName(row: Pick<ItemRow, 'kind' | 'file' | 'id'>): string {
  if (row.kind === 'file' && row.file) return path.basename(row.file);
  return `inline item ${row.id}`;
}

/**
 * The line an incoming message adds to "last errors", or null. An uploader's failure output (msg.uplink.ack false with
 * msg.uplink.error) says whether the item will be retried; a Catch node's message (msg.error) names its source. A
 * permanent upload failure reaches both: the Catch copy of an uploader's error is left out, so it is listed once.
 */
export function errorLine(msg: Msg): string | null {
  const u: Uplink = readUplink(msg);
  if (u.ack === false && u.error) {
    const e = u.error;
    const permanent = e.class === 'permanent' || e.permanent === true;
    const what = u.file ? path.basename(u.file) : u.item?.id !== undefined ? `item ${u.item.id}` : 'an item';
    return `upload of ${what} ${permanent ? 'failed' : 'will be retried'}: ${String(e.message ?? 'no reason given')}`;
  }
  const err = msg.error;
  if (!isRecord(err)) return null;
  const source = isRecord(err.source) ? err.source : {};
  if (source.type === 'uplink-uploader') return null;
  const who = typeof source.name === 'string' && source.name ? source.name : typeof source.type === 'string' ? source.type : 'error';
  return `${who}: ${String(err.message ?? 'no message')}`;
}

/** The widget's state, fed by events; `view()` is what goes to the browsers. */
export class StatusBoard {
  private stats: QueueStats | null = null;
  private problem: string | null = 'waiting for the queue to open';
  private link: LinkState | null = null;
  /** Without a connectivity node: when the queue's online flag last changed, as seen here. */
  private onlineSeen: { online: boolean; since: number | null } | null = null;
  private depth: [number, number][] = [];
  private errors: { at: number; text: string }[] = [];
  private failed: FailedView[] = [];
  private failedTotal = 0;
  private capture: CaptureView | null = null;
  private failedKey = '';
  private outages: OutagesView | null = null;

  constructor(
    private readonly actions: ActionsMode,
    private readonly failedShown: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * New stats from the queue. Returns true when the failed items may have changed (their count or the number that
   * ever failed), so the caller reads the list again; otherwise it is left alone.
   */
  setStats(s: QueueStats): boolean {
    const t = this.now();
    this.stats = s;
    this.problem = null;
    if (!this.onlineSeen || this.onlineSeen.online !== s.online) this.onlineSeen = { online: s.online, since: this.onlineSeen ? t : null };
    const depth = s.pending + s.inFlight;
    const last = this.depth[this.depth.length - 1];
    if (!last || last[1] !== depth) this.depth.push([t, depth]);
    // Keep the window, and the sample before it (the depth at the window's start).
    while (this.depth.length > DEPTH_MAX_SAMPLES || (this.depth.length > 1 && this.depth[1][0] < t - DEPTH_WINDOW_MS)) this.depth.shift();
    const key = `${s.failed}/${s.expired}/${s.totals.dead ?? 0}/${s.totals.expired ?? 0}`;
    const changed = key !== this.failedKey;
    this.failedKey = key;
    return changed;
  }

  /** The queue cannot be shown: not deployed, not running, its database failed to open. */
  setProblem(problem: string): void {
    this.problem = problem;
  }

  /** The first failed items (by id) and how many there are in all. */
  setFailed(rows: ItemRow[], total: number): void {
    this.failed = rows.slice(0, this.failedShown).map((r) => ({
      id: r.id,
      state: r.state,
      attempts: r.attempts,
      lastError: r.lastError,
      name: itemName(r),
      bytes: r.bytes,
      at: r.doneAt ?? r.createdAt,
    }));
    this.failedTotal = Math.max(total, this.failed.length);
  }

  /** Ids of failed items the list shows now. */
  shownFailedIds(): number[] {
    return this.failed.map((f) => f.id);
  }

  setLink(state: LinkState): void {
    this.link = state;
  }

  /** The outage log's summary (see OutageLog.summary); null when the connectivity node keeps no log. */
  setOutages(days: number, s: { outages: { start: number; end: number | null; durationMs: number; reason: string }[]; totalOfflineS: number } | null): void {
    this.outages = s
      ? {
          days,
          count: s.outages.length,
          offlineS: s.totalOfflineS,
          recent: [...s.outages]
            .sort((a, b) => b.start - a.start)
            .slice(0, OUTAGES_SHOWN)
            .map((o) => ({ start: o.start, end: o.end, durationS: Math.round(o.durationMs / 1000), reason: o.reason })),
        }
      : null;
  }

  setCapture(u: Uplink): void {
    if (!u.file) return;
    this.capture = {
      name: path.basename(u.file),
      capturedAt: u.capturedAt ?? null,
      bytes: u.bytes ?? null,
      width: u.width ?? null,
      height: u.height ?? null,
      camera: u.camera ?? null,
      durationS: u.durationS ?? null,
      image: /^image\//.test(u.contentType ?? ''),
    };
  }

  /** An error message wired into the widget: true when it was listed. */
  noteMessage(msg: Msg): boolean {
    const text = errorLine(msg);
    if (!text) return false;
    this.errors = [{ at: this.now(), text }, ...this.errors].slice(0, ERRORS_KEPT);
    return true;
  }

  view(): StatusView {
    const s = this.stats;
    return {
      at: this.now(),
      queue: { running: this.problem === null, problem: this.problem },
      link: this.linkView(),
      held: s?.held ?? null,
      counts: s
        ? { pending: s.pending, inFlight: s.inFlight, uploaded: s.uploaded, failed: s.failed + s.expired, retrying: s.retrying, queuedBytes: s.queuedBytes, oldestPendingAgeS: s.oldestPendingAgeS }
        : null,
      depth: this.depth.map(([t, d]) => [t, d]),
      uploading: s?.uploading ?? [],
      capture: this.capture,
      errors: [...(s?.lastError ? [{ at: this.now(), text: `queue: ${s.lastError}` }] : []), ...this.errors],
      failed: { items: this.failed, more: Math.max(0, this.failedTotal - this.failed.length) },
      outages: this.outages,
      actions: this.actions,
    };
  }

  private linkView(): StatusView['link'] {
    const s = this.stats;
    const paused = s?.paused ?? false;
    const l = this.link;
    if (l) {
      const since = Date.parse(l.since);
      const state: LinkWord = l.configured === false ? 'not-configured' : l.online === null ? 'unknown' : l.online ? 'online' : 'offline';
      return { state, paused, since: Number.isFinite(since) ? since : null, reason: l.reason, latencyMs: l.latency ?? null, target: l.target ?? null };
    }
    if (!s) return { state: 'unknown', paused, since: null, reason: 'waiting for the queue', latencyMs: null, target: null };
    if (s.notConfigured) return { state: 'not-configured', paused, since: null, reason: s.notConfigured, latencyMs: null, target: null };
    return { state: s.online ? 'online' : 'offline', paused, since: this.onlineSeen?.since ?? null, reason: '', latencyMs: null, target: null };
  }
}
