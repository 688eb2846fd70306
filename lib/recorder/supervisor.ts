import fs from 'fs';
import path from 'path';
import { maskCredentials } from '../media/ffmpeg-input';
import { maskUrlLogin } from '../util/url-login';
import { ffprobePathFor } from '../media/ffprobe';
import { ReconnectBackoff, ReconnectPolicy } from '../util/backoff';
import { recordingArgs } from './args';
import { BudgetGuard } from './budget-guard';
import { liveSlug, RecorderConfig } from './config';
import { describeEnd } from '../media/ffmpeg-reason';
import { ProcessExit, RecordingProcess } from '../media/ffmpeg-process';
import { ListTail } from './segment-list';
import { segmentMessage, SegmentMessage } from './segment-message';
import { Segment, SegmentStore } from './store';
import { LiveStats, LiveStream } from '../live/stream';

export type RecorderState = 'starting' | 'recording' | 'reconnecting' | 'paused' | 'stopped' | 'closed';

export interface NodeStatus {
  fill: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape: 'ring' | 'dot';
  text: string;
}

export interface RecorderStats {
  state: RecorderState;
  camera: string;
  input: string;
  /** Segments handed on since deploy (recovered ones included). */
  segments: number;
  recovered: number;
  partial: number;
  lastDurationS?: number;
  lastSegmentAt?: string;
  /** Breaks in the recording: between one segment's end and the next one's start, since deploy. */
  gaps: { count: number; totalS: number };
  reconnects: number;
  lastError?: string;
  /** ffmpeg's process id while it runs. */
  pid?: number;
  /** The live view and relay, when on. */
  live?: LiveStats & { path: string };
  disk: {
    recordingsBytes: number;
    onDisk: number;
    uploaded: number;
    notUploaded: number;
    unreadable: number;
    budgetBytes?: number;
    freeBytes?: number;
    /** Segments deleted before upload under "drop oldest unsent", and uploaded ones deleted, since deploy. */
    dropped: number;
    deleted: number;
  };
}

export interface RecorderEvents {
  /** A closed segment, as the message to send: must hand it on at once (the journal says "sent" right after). */
  segment(msg: SegmentMessage): void;
  status(s: NodeStatus): void;
  /** A change worth telling a dashboard: started, reconnecting, gap, paused, resumed, stopped, dropped. */
  event(e: { event: string; reason?: string } & RecorderStats): void;
  warn(text: string): void;
  log(text: string): void;
}

export interface RecorderOptions {
  reconnect?: ReconnectPolicy;
  /**
   * Fallback poll of the segment list, besides fs.watch (which can miss events on some file systems), until the watch
   * has shown that it works; then once a minute (or this, if longer).
   */
  listPollMs?: number;
  /** How often a recorder paused by its disk budget looks for room. */
  pausePollMs?: number;
  /** How often the free disk space is checked while recording (besides after each segment). */
  diskPollMs?: number;
  killGraceMs?: number;
}

interface Run {
  run: string;
  proc: RecordingProcess;
  tail: ListTail;
  firstFile: string;
  started: number;
  watcher?: fs.FSWatcher;
  /** The watcher is on the list file itself, no longer on the state folder. */
  watchingList: boolean;
  /** Its watcher and poll are gone: no new watcher may start. */
  unwatched: boolean;
  poll?: NodeJS.Timeout;
  /** The list's watch has reported a closed segment: the poll, only a backup, is slow. */
  watchProven: boolean;
  poked: boolean;
  /** A watch event asked for the read to come (else only the poll did). */
  pokedByWatch: boolean;
}

const fmtS = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
/** The backup poll once the list's watch has shown that it works. */
const PROVEN_POLL_MS = 60_000;

/**
 * Records one camera for as long as it is open: ffmpeg's segment muxer writes fragmented MP4 segments, each closed
 * segment becomes one message (once, across crashes: see SegmentStore), a camera or ffmpeg that stops is restarted
 * with backoff, and a disk budget deletes uploaded recordings first and pauses (or drops, if told) before the disk
 * fills. Node-RED-free: the node passes messages in and out.
 */
export class Recorder {
  private state: RecorderState = 'stopped';
  private wanted = false;
  private closed = false;
  private current: Run | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pauseTimer: NodeJS.Timeout | undefined;
  private diskTimer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly backoff: ReconnectBackoff;
  private readonly stats = { segments: 0, recovered: 0, partial: 0, gaps: 0, gapS: 0, reconnects: 0 };
  private readonly budget: BudgetGuard;
  private lastDurationS: number | undefined;
  private lastSegmentAt: string | undefined;
  private lastError: string | undefined;
  private lastReasonCode: string | undefined;
  /** The live view and relay, fed by the recording's own ffmpeg. */
  readonly live: LiveStream | undefined;
  private liveTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly config: RecorderConfig,
    private readonly store: SegmentStore,
    private readonly events: RecorderEvents,
    private readonly options: RecorderOptions,
  ) {
    this.backoff = new ReconnectBackoff(options.reconnect);
    this.budget = new BudgetGuard(config.folder, config.budget, store, {
      log: (t) => events.log(t),
      warn: (t) => events.warn(t),
      event: (event, reason) => events.event({ event, ...(reason !== undefined ? { reason } : {}), ...this.snapshot() }),
    }, options.diskPollMs ?? 15_000);
    if (config.live) {
      // The status names the live view's and the relay's states: it is told again when either changes.
      const restate = (): void => {
        if (this.state === 'recording') this.setStatus(this.recordingStatus());
      };
      this.live = new LiveStream(config.live, config.source.ffmpegPath, {
        state: restate,
        changed: restate,
        warn: (t) => events.warn(t),
        log: (t) => events.log(t),
      });
      this.liveTimer = setInterval(() => this.live?.check(), 5000);
      this.liveTimer.unref();
    }
  }

  /**
   * Opens the folder, hands on what earlier runs left (closed segments never sent, the segment being written when
   * ffmpeg or Node-RED was killed), then starts recording unless told to wait for "start".
   */
  static async open(config: RecorderConfig, events: RecorderEvents, options: RecorderOptions = {}): Promise<Recorder> {
    const store = await SegmentStore.open({
      folder: config.folder,
      camera: config.camera,
      nameTemplate: config.nameTemplate,
      ffprobePath: ffprobePathFor(config.source.ffmpegPath),
      requestedS: config.segmentSeconds,
      warn: (t) => events.warn(t),
    });
    const rec = new Recorder(config, store, events, options);
    try {
      await rec.serial(() => rec.recover());
      await store.compactIfDue();
    } catch (e) {
      await store.close();
      throw e;
    }
    if (config.autoStart) rec.start();
    else rec.setStatus({ fill: 'grey', shape: 'dot', text: 'stopped: send "start" to record' });
    return rec;
  }

  /** ffmpeg's process id while it runs. */
  get pid(): number | undefined {
    return this.current?.proc.pid;
  }

  get currentState(): RecorderState {
    return this.state;
  }

  // ---- commands ------------------------------------------------------------------------------------------

  start(): void {
    if (this.closed) return;
    this.wanted = true;
    this.backoff.reset();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    // Launching weighs the disk budget first: this also ends a budget pause once there is room.
    this.launch();
  }

  /** Stops recording (the segment being written is finished and sent) until "start". */
  async stop(): Promise<void> {
    this.wanted = false;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const cur = this.current;
    if (cur) await cur.proc.stop();
    await this.chain;
    if (!cur && !this.closed) this.enterStopped();
  }

  /** The uploader stored this file (its output 1 wired back here): it may go first when space runs short. */
  async uploaded(file: string): Promise<boolean> {
    if (this.closed) return false;
    const resolved = path.resolve(file);
    if (!resolved.startsWith(path.resolve(this.config.folder) + path.sep)) return false;
    const seg = await this.serial(() => this.store.markUploaded(resolved));
    if (seg && this.budget.paused) this.launch();
    return seg !== undefined;
  }

  snapshot(): RecorderStats {
    const c = this.store.counts();
    return {
      state: this.state,
      camera: this.config.camera,
      input: maskUrlLogin(this.config.source.input),
      segments: this.stats.segments,
      recovered: this.stats.recovered,
      partial: this.stats.partial,
      ...(this.lastDurationS !== undefined ? { lastDurationS: this.lastDurationS } : {}),
      ...(this.lastSegmentAt ? { lastSegmentAt: this.lastSegmentAt } : {}),
      gaps: { count: this.stats.gaps, totalS: Math.round(this.stats.gapS * 1000) / 1000 },
      reconnects: this.stats.reconnects,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.pid !== undefined ? { pid: this.pid } : {}),
      ...(this.live ? { live: { ...this.live.stats(), path: liveSlug(this.config.camera) } } : {}),
      disk: {
        recordingsBytes: c.bytes,
        onDisk: c.onDisk,
        uploaded: c.uploaded,
        notUploaded: c.notUploaded,
        unreadable: c.unreadable,
        ...(this.budget.budgetBytes !== undefined && Number.isFinite(this.budget.budgetBytes) ? { budgetBytes: this.budget.budgetBytes } : {}),
        ...(this.budget.freeBytes !== undefined ? { freeBytes: this.budget.freeBytes } : {}),
        dropped: this.budget.dropped,
        deleted: this.budget.deleted,
      },
    };
  }

  /** Stops ffmpeg (one SIGTERM, SIGKILL after the grace time) and waits until it is gone. What it finished is sent at the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wanted = false;
    for (const t of [this.retryTimer, this.pauseTimer, this.diskTimer]) if (t) clearTimeout(t);
    if (this.liveTimer) clearInterval(this.liveTimer);
    const first = this.current;
    if (first) this.unwatch(first);
    const stopping = first?.proc.stop();
    // A step under way may still start ffmpeg (it checks `closed` just before spawning): wait for it, stop that too.
    await this.chain;
    const late = this.current;
    if (late && late !== first) {
      this.unwatch(late);
      await late.proc.stop();
    }
    await stopping;
    await this.chain;
    await this.live?.close();
    this.state = 'closed';
    await this.store.close();
  }

  // ---- the run loop ----------------------------------------------------------------------------------------

  /** Work on files and the journal happens one step at a time, in order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async recover(): Promise<void> {
    for (const seg of await this.store.unsent()) {
      if (this.closed) return;
      await this.handOn(seg, true);
    }
    for (const run of await this.store.runsOnDisk()) {
      for (const seg of await this.store.settleRun(run)) {
        if (this.closed) return;
        await this.handOn(seg, true);
      }
    }
  }

  private launch(): void {
    if (this.closed || !this.wanted || this.current || this.retryTimer) return;
    void this.serial(async () => {
      if (this.closed || !this.wanted || this.current || this.retryTimer) return;
      if (!(await this.checkBudget())) return;
      if (this.closed || !this.wanted || this.current) return;
      this.spawn();
    }).catch((e: Error) => this.fail(e));
  }

  private spawn(): void {
    const { run, listFile, pattern } = this.store.newRun();
    const c = this.config;
    const live = this.live !== undefined;
    const args = recordingArgs({
      source: c.source,
      segmentSeconds: c.segmentSeconds,
      video: c.video,
      audio: c.audio,
      // With the live output ffmpeg works in the state folder, and is given plain names (see recordingArgs).
      listFile: live ? path.basename(listFile) : listFile,
      segmentPattern: live ? path.basename(pattern) : pattern,
      live,
    });
    const proc = new RecordingProcess(c.source.ffmpegPath, args, this.options.killGraceMs ?? 5000, live ? { stdout: true, cwd: this.store.stateDir } : {});
    if (this.live && proc.stdout) this.live.attach(proc.stdout);
    const cur: Run = {
      run,
      proc,
      tail: new ListTail(listFile),
      firstFile: path.basename(this.store.workingFile(run, 0)),
      started: Date.now(),
      watchingList: false,
      unwatched: false,
      watchProven: false,
      poked: false,
      pokedByWatch: false,
    };
    this.current = cur;
    this.state = 'starting';
    this.setStatus({ fill: 'yellow', shape: 'ring', text: `connecting to ${this.describeInput()}…` });
    try {
      cur.watcher = fs.watch(this.store.stateDir, { persistent: false }, (_ev, name) => {
        if (name === path.basename(listFile) || (name === cur.firstFile && this.state === 'starting')) this.poke(cur, true);
      });
      cur.watcher.on('error', () => cur.watcher?.close());
    } catch {
      /* no inotify: the poll below finds the segments */
    }
    this.setPoll(cur, false);
    if (!this.diskTimer) this.scheduleDiskCheck();
    void proc.exited.then((exit) => this.ended(cur, exit)).catch((e: Error) => this.fail(e));
  }

  /**
   * fs.watch does the work; the poll only backs it up (some file systems send no events). Until the list's watch has
   * reported a segment, the poll looks every listPollMs (a fraction of a segment); from then on once a minute, as each
   * look wakes Node-RED for nothing. Should the poll find a segment the watch did not report, it looks often again.
   */
  private setPoll(cur: Run, proven: boolean): void {
    if (cur.unwatched) return;
    cur.watchProven = proven;
    if (cur.poll) clearInterval(cur.poll);
    const often = this.options.listPollMs ?? Math.max(250, Math.min(5000, this.config.segmentSeconds * 500));
    cur.poll = setInterval(() => this.poke(cur, false), proven ? Math.max(often, PROVEN_POLL_MS) : often);
    cur.poll.unref();
  }

  private unwatch(cur: Run): void {
    cur.unwatched = true;
    cur.watcher?.close();
    if (cur.poll) clearInterval(cur.poll);
  }

  /**
   * Once ffmpeg writes the first segment, only its list matters. A watch on the state folder wakes Node-RED at every
   * write ffmpeg makes to a segment (a few a second, about 55 µs of CPU each, a third of what a 10 s segment's own
   * handling costs), so the watch moves to the list file itself. Should the list be replaced, the poll still reads it.
   */
  private watchListOnly(cur: Run): void {
    if (cur.watchingList || cur.unwatched || !cur.watcher) return;
    let listWatcher: fs.FSWatcher;
    try {
      listWatcher = fs.watch(cur.tail.file, { persistent: false }, () => this.poke(cur, true));
    } catch {
      return; // not there yet: the folder's watch goes on
    }
    listWatcher.on('error', () => listWatcher.close());
    cur.watcher.close();
    cur.watcher = listWatcher;
    cur.watchingList = true;
  }

  /** Reads what the list gained since last time, and hands on each newly closed segment. `byWatch`: a watch event asks. */
  private poke(cur: Run, byWatch: boolean): void {
    if (byWatch) cur.pokedByWatch = true;
    if (cur.poked || this.closed || this.current !== cur) return;
    cur.poked = true;
    void this.serial(async () => {
      cur.poked = false;
      const watched = cur.pokedByWatch;
      cur.pokedByWatch = false;
      if (this.closed || this.current !== cur) return;
      if (this.state === 'starting') {
        const st = await fs.promises.stat(path.join(this.store.stateDir, cur.firstFile)).catch(() => undefined);
        if (st && st.size > 0) this.enterRecording();
      }
      const entries = await cur.tail.read();
      if (entries.length > 0) {
        // Segments the list's watch reported show that it works; one that only the poll found, that it missed some.
        if (watched && cur.watchingList && !cur.watchProven) this.setPoll(cur, true);
        else if (!watched && cur.watchProven) this.setPoll(cur, false);
      }
      for (const entry of entries) {
        if (this.closed) return;
        const seg = await this.store.closeListed(cur.run, entry).catch((e: Error) => {
          // It stays in the run's list: the end of the run (or the next start) tries it again.
          this.fail(new Error(`segment ${entry.file}: ${e.message}`));
          return undefined;
        });
        if (!seg || this.closed) continue;
        if (this.state === 'starting') this.enterRecording();
        // The budget's look at the disk goes out now, and comes back while the journal says the segment was sent.
        this.budget.prepare();
        await this.handOn(seg, false);
        await this.afterSegment(false);
      }
      if (this.state !== 'starting' && this.current === cur) this.watchListOnly(cur);
    }).catch((e: Error) => this.fail(e));
  }

  private enterRecording(): void {
    if (this.state !== 'starting') return;
    this.state = 'recording';
    this.lastReasonCode = undefined;
    this.setStatus(this.recordingStatus());
    this.events.event({ event: 'started', ...this.snapshot() });
  }

  private enterStopped(): void {
    this.state = 'stopped';
    this.setStatus({ fill: 'grey', shape: 'dot', text: `stopped · ${this.stats.segments} segments` });
    this.events.event({ event: 'stopped', ...this.snapshot() });
  }

  private async ended(cur: Run, exit: ProcessExit): Promise<void> {
    this.unwatch(cur);
    // After the reads already queued: the end of the run reads the whole list by its name.
    void this.serial(() => cur.tail.close()).catch(() => undefined);
    if (this.closed) return;
    try {
      await this.serial(async () => {
        // What the last reads missed, and the segment a killed ffmpeg left unlisted.
        for (const seg of await this.store.settleRun(cur.run)) {
          if (this.closed) return;
          await this.handOn(seg, false);
        }
        this.current = undefined;
        await this.afterSegment();
      });
    } catch (e) {
      this.events.warn(`after the recording ended: ${(e as Error).message}`);
    }
    this.current = undefined;
    if (this.closed) return;
    if (!this.wanted) return this.enterStopped();
    if (this.budget.paused) return;
    if (exit.stopped) {
      // Stopped by us for the budget, which found room again meanwhile: no failure to wait out.
      this.launch();
      return;
    }
    const reason = describeEnd(exit, { input: this.config.source.input, kind: this.config.source.kind, mask: (s) => this.mask(s) });
    const delay = this.backoff.next(exit.runMs);
    this.stats.reconnects++;
    this.lastError = reason.text;
    this.state = 'reconnecting';
    this.setStatus({ fill: reason.fatal ? 'red' : 'yellow', shape: 'ring', text: `reconnecting in ${fmtS(delay)}: ${reason.text}` });
    if (reason.code !== this.lastReasonCode) this.events.warn(`recording of ${this.describeInput()} stopped: ${reason.text}; reconnecting with backoff`);
    this.lastReasonCode = reason.code;
    this.events.event({ event: 'reconnecting', reason: reason.text, ...this.snapshot() });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.launch();
    }, delay);
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.lastError = e.message;
    this.events.warn(`recorder: ${e.message}`);
    this.setStatus({ fill: 'red', shape: 'ring', text: e.message.slice(0, 80) });
  }

  // ---- messages ------------------------------------------------------------------------------------------

  /** Sends a closed segment on, then journals that it was sent. */
  private async handOn(seg: Segment, recovered: boolean): Promise<void> {
    this.emit(seg, recovered);
    await this.store.markSent(seg.id);
  }

  private emit(seg: Segment, recovered: boolean): void {
    const msg = segmentMessage(seg, this.config, recovered);
    this.stats.segments++;
    if (recovered) this.stats.recovered++;
    if (seg.partial) this.stats.partial++;
    this.lastDurationS = seg.durationS;
    this.lastSegmentAt = seg.capturedAt;
    this.events.segment(msg);
    if (seg.gapBeforeS !== undefined) {
      this.stats.gaps++;
      this.stats.gapS += seg.gapBeforeS;
      this.events.event({ event: 'gap', reason: `${seg.gapBeforeS} s not recorded before ${path.basename(seg.path)}`, ...this.snapshot() });
    }
    if (this.state === 'recording') this.setStatus(this.recordingStatus());
  }

  private recordingStatus(): NodeStatus {
    const parts = [`recording · ${this.stats.segments} segments`];
    if (this.lastDurationS !== undefined) parts.push(`last ${this.lastDurationS.toFixed(1)} s`);
    if (this.stats.gaps > 0) parts.push(`${this.stats.gaps} gap${this.stats.gaps > 1 ? 's' : ''}`);
    const live = this.live?.stats();
    if (live && this.config.live?.view) parts.push(live.state === 'live' ? 'live' : `live ${live.state}`);
    // A relay that is down does not make the recording less green: the status says so, the recording goes on.
    if (live?.relay) parts.push(`relay ${live.relay.state === 'relaying' ? 'on' : live.relay.state}`);
    return { fill: 'green', shape: 'dot', text: parts.join(' · ') };
  }

  private setStatus(s: NodeStatus): void {
    if (!this.closed) this.events.status(s);
  }

  private describeInput(): string {
    return this.mask(this.config.source.input);
  }

  private mask(s: string): string {
    return maskCredentials(s, this.config.source);
  }

  // ---- disk budget -----------------------------------------------------------------------------------------

  /** `recount`: false while the run goes on, whose segment being written the budget's headroom covers. */
  private async afterSegment(recount = true): Promise<void> {
    await this.checkBudget(recount);
    await this.store.compactIfDue();
  }

  /**
   * The disk is checked after every segment, and at least every diskPollMs while recording: each check puts the
   * timer off by as much (checkBudget refreshes it), so with segments shorter than that it never fires.
   */
  private scheduleDiskCheck(): void {
    this.diskTimer = setTimeout(() => {
      this.diskTimer = undefined;
      if (this.closed || !this.current) return;
      void this.serial(() => this.checkBudget()).catch((e: Error) => this.fail(e));
      this.scheduleDiskCheck();
    }, this.options.diskPollMs ?? 15_000);
    this.diskTimer.unref();
  }

  /** Applies the disk budget (see BudgetGuard) and pauses or resumes recording as it says. True when recording may go on. */
  private async checkBudget(recount = true): Promise<boolean> {
    if (this.closed) return false;
    this.diskTimer?.refresh();
    const verdict = await this.budget.check(recount);
    if (verdict.pause) {
      this.state = 'paused';
      this.setStatus({ fill: 'red', shape: 'ring', text: verdict.text });
      // The segment being written is finished and sent; recording starts again when there is room.
      const cur = this.current;
      if (cur) void cur.proc.stop();
      this.schedulePauseCheck();
      return false;
    }
    if (verdict.resumed) {
      if (this.pauseTimer) clearTimeout(this.pauseTimer);
      this.pauseTimer = undefined;
      if (!this.current) this.state = 'stopped';
    }
    return true;
  }

  private schedulePauseCheck(): void {
    if (this.pauseTimer || this.closed) return;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = undefined;
      if (!this.closed && this.budget.paused) this.launch();
    }, this.options.pausePollMs ?? 5000);
    this.pauseTimer.unref();
  }
}
