import fs from 'fs';
import path from 'path';
import type { QueueStats } from '../queue/status';
import type { ConnectivityState } from '../connectivity/monitor';
import { BoardMetrics, UPLOAD_FAILURE_KINDS, UploadFailureKind } from './metrics';
import { maskUrlLogin } from '../util/url-login';

// The board: where every running Uplink node shows what it knows, so that health, metrics and alerts read the very
// numbers the nodes' own status and stats show. Nothing here is stored or polled: queues, links and recorders are
// asked when somebody looks (a scrape, a health request, the alert check); captures and uploads are counted as they
// happen, in memory (the queue's own totals are in its database and survive a restart).

/** A queue as the board sees it: the stats its node sends on output 3 and the admin endpoint serves. */
export interface QueueWatch {
  name: string;
  /** Folder of its database (for the free space there). */
  folder: string;
  stats(): Promise<QueueStats>;
}

/** A connectivity node's monitor. */
export interface LinkWatch {
  name: string;
  current(): ConnectivityState;
  /** State changes since the node started. */
  changes(): number;
}

/** What the board needs of a recorder's stats. */
export interface RecorderView {
  state: string;
  camera: string;
  segments: number;
  gaps: { count: number };
  lastSegmentAt?: string;
}

export interface RecorderWatch {
  name: string;
  folder: string;
  /** Null while it has not started (or could not). */
  snapshot(): RecorderView | null;
}

/** Captures of one capture node, counted as they happen. */
export class CaptureTally {
  ok = 0;
  failed = 0;
  failuresInARow = 0;
  lastCaptureAt: number | null = null;
  lastFailureAt: number | null = null;
  lastError: string | null = null;

  constructor(
    readonly name: string,
    readonly camera: string,
    readonly folder: string,
    private readonly metrics: BoardMetrics,
  ) {}

  succeeded(at: number): void {
    this.ok++;
    this.failuresInARow = 0;
    this.lastCaptureAt = at;
    this.metrics.captures.inc({ node: this.name, camera: this.camera, result: 'ok' });
  }

  /** `reason` is shown on the health answer and in alerts: any login in a URL in it is masked here. */
  failedWith(at: number, reason: string): void {
    this.failed++;
    this.failuresInARow++;
    this.lastFailureAt = at;
    this.lastError = maskUrlLogin(reason).slice(0, 200);
    this.metrics.captures.inc({ node: this.name, camera: this.camera, result: 'failed' });
  }
}

/** Uploads of one uploader node. */
export class UploadTally {
  uploads = 0;
  bytes = 0;
  lastUploadAt: number | null = null;
  /** The byte budget of the target it uploads to, when it has one. */
  budget?: () => BudgetView | undefined;
  readonly retries: Record<UploadFailureKind, number> = Object.fromEntries(UPLOAD_FAILURE_KINDS.map((k) => [k, 0])) as Record<UploadFailureKind, number>;

  constructor(
    readonly name: string,
    readonly backend: string,
    private readonly metrics: BoardMetrics,
  ) {}

  uploaded(at: number, bytes: number, seconds: number): void {
    this.uploads++;
    this.bytes += bytes;
    this.lastUploadAt = at;
    const labels = { node: this.name, backend: this.backend };
    this.metrics.uploadBytes.inc(labels, bytes);
    this.metrics.uploadDuration.observe(labels, seconds);
  }

  /** An upload that failed and will be tried again. */
  retried(kind: UploadFailureKind): void {
    this.retries[kind]++;
    this.metrics.uploadRetries.inc({ node: this.name, backend: this.backend, class: kind });
  }
}

/** A target's byte budget as the board shows it (see lib/upload/budget's BudgetSnapshot). */
export interface BudgetView {
  state: 'ok' | 'near' | 'spent';
  text: string;
  resetsAt: number | null;
  metered: boolean | null;
  day: { bytes: number; limit: number };
  month: { bytes: number; limit: number };
}

export interface QueueView {
  name: string;
  folder: string;
  stats: QueueStats | null;
  error: string | null;
}

export interface LinkView {
  name: string;
  state: ConnectivityState;
  changes: number;
}

export interface RecorderEntry {
  name: string;
  folder: string;
  view: RecorderView | null;
  /** When the board first saw it in its current state (ms). */
  stateSince: number;
}

/** Everything the board knows at one instant: what health, metrics and alerts are computed from. */
export interface Snapshot {
  at: number;
  queues: QueueView[];
  links: LinkView[];
  captures: CaptureTally[];
  uploaders: UploadTally[];
  recorders: RecorderEntry[];
  /** Free bytes of each watched folder's file system, by the node that uses it ("userDir" for Node-RED's own). */
  disks: { node: string; freeBytes: number | null }[];
  /** Nodes that cannot work. */
  problems: NodeProblem[];
}

export interface NodeProblem {
  name: string;
  /** The node's type (uplink-uploader…). */
  type: string;
  message: string;
}

type Removal = () => void;

/** Answers taken within this long of each other share one look (a scrape reads the snapshot once per metric). */
const SNAPSHOT_REUSE_MS = 500;

export class Board {
  readonly metrics: BoardMetrics;
  private readonly queues = new Map<string, QueueWatch>();
  private readonly links = new Map<string, LinkWatch>();
  private readonly recorders = new Map<string, RecorderWatch>();
  private readonly captures = new Map<string, CaptureTally>();
  private readonly uploaders = new Map<string, UploadTally>();
  private readonly recorderStates = new Map<string, { state: string; since: number }>();
  private readonly problems = new Map<string, NodeProblem>();
  private userDir?: string;
  private last?: { at: number; snapshot: Promise<Snapshot> };

  constructor(private readonly now: () => number = Date.now) {
    this.metrics = new BoardMetrics(this);
  }

  /** Node-RED's own folder: its free space counts too. */
  setUserDir(dir: string): void {
    this.userDir = dir;
  }

  addQueue(id: string, watch: QueueWatch): Removal {
    // Read at each look: once off the board, it is gone from the next scrape.
    return this.add(this.queues, id, watch, () => {});
  }

  addLink(id: string, watch: LinkWatch): Removal {
    return this.add(this.links, id, watch, () => {});
  }

  addRecorder(id: string, watch: RecorderWatch): Removal {
    return this.add(this.recorders, id, watch, () => this.recorderStates.delete(id));
  }

  /** A node that cannot work (its settings are wrong): the pipeline it belongs to is broken. */
  addProblem(id: string, problem: NodeProblem): Removal {
    return this.add(this.problems, id, { ...problem, message: maskUrlLogin(problem.message).slice(0, 300) }, () => {});
  }

  /** The tally a capture node counts into, and how to take it off the board when the node closes. */
  capture(id: string, name: string, camera: string, folder: string): { tally: CaptureTally; remove: Removal } {
    const tally = new CaptureTally(name, camera, folder, this.metrics);
    return { tally, remove: this.add(this.captures, id, tally, () => this.metrics.forgetCapture(name, camera)) };
  }

  uploader(id: string, name: string, backend: string): { tally: UploadTally; remove: Removal } {
    const tally = new UploadTally(name, backend, this.metrics);
    return { tally, remove: this.add(this.uploaders, id, tally, () => this.metrics.forgetUploader(name, backend)) };
  }

  /** True when nothing is on the board (no Uplink node runs). */
  get empty(): boolean {
    return this.queues.size + this.links.size + this.recorders.size + this.captures.size + this.uploaders.size + this.problems.size === 0;
  }

  /** What every node knows now; looks taken within half a second of each other share one answer. */
  snapshot(): Promise<Snapshot> {
    const now = this.now();
    if (this.last && now - this.last.at < SNAPSHOT_REUSE_MS && now >= this.last.at) return this.last.snapshot;
    const snapshot = this.take(now);
    this.last = { at: now, snapshot };
    return snapshot;
  }

  private add<T>(map: Map<string, T>, id: string, value: T, forget: () => void): Removal {
    map.set(id, value);
    this.last = undefined;
    return () => {
      if (map.get(id) !== value) return;
      map.delete(id);
      this.last = undefined;
      forget();
    };
  }

  private async take(at: number): Promise<Snapshot> {
    const queues = await Promise.all(
      [...this.queues.values()].map(async (q): Promise<QueueView> => {
        try {
          return { name: q.name, folder: q.folder, stats: await q.stats(), error: null };
        } catch (e) {
          return { name: q.name, folder: q.folder, stats: null, error: (e as Error).message };
        }
      }),
    );
    const links = [...this.links.values()].map((l) => ({ name: l.name, state: l.current(), changes: l.changes() }));
    const recorders = [...this.recorders.entries()].map(([id, r]): RecorderEntry => {
      const view = r.snapshot();
      const state = view?.state ?? 'not started';
      const seen = this.recorderStates.get(id);
      const since = seen && seen.state === state ? seen.since : at;
      this.recorderStates.set(id, { state, since });
      return { name: r.name, folder: r.folder, view, stateSince: since };
    });
    const folders = new Map<string, string>();
    if (this.userDir) folders.set('userDir', this.userDir);
    for (const q of queues) folders.set(q.name, q.folder);
    for (const r of recorders) folders.set(r.name, r.folder);
    for (const c of this.captures.values()) folders.set(c.name, c.folder);
    const disks = await Promise.all([...folders].map(async ([node, folder]) => ({ node, freeBytes: await freeBytes(folder) })));
    return { at, queues, links, captures: [...this.captures.values()], uploaders: [...this.uploaders.values()], recorders, disks, problems: [...this.problems.values()] };
  }
}

/**
 * Free bytes for an unprivileged writer on the file system holding `folder` (or its nearest existing parent); null
 * when the file system cannot tell (statfs unsupported, or it reports no size).
 */
export async function freeBytes(folder: string): Promise<number | null> {
  let dir = path.resolve(folder);
  for (let i = 0; i < 64; i++) {
    try {
      const s = await fs.promises.statfs(dir);
      if (!s.blocks || !s.bsize) return null;
      return s.bavail * s.bsize;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const parent = path.dirname(dir);
      if (code !== 'ENOENT' || parent === dir) return null;
      dir = parent;
    }
  }
  return null;
}
