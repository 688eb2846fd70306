import fs from 'fs';
import { performance } from 'perf_hooks';
import path from 'path';
import { QueueConfig } from './config';
import { classifyInput, Command } from './input';
import { decodeMessage, encodeMessage, payloadBytes } from '../message/codec';
import { ItemRow, LeasedItem, QueueFullError, QueueStore, StoreStats } from './store';
import { fmtBytes } from '../util/format';
import { describeDbError, QueueStats, QueueStatus, statusOf } from './status';
import { ItemProgress, ProgressState } from './item-progress';
import { Msg, QueueItemRef, uplinkRecord } from '../message/uplink';

/** What the queue tells its host (the Node-RED node, a test, the benchmark). */
export interface QueueEvents {
  deliver(msg: Msg): void;
  stats(stats: QueueStats): void;
  status(status: QueueStatus): void;
  warn(text: string): void;
  log(text: string): void;
}

export class InputError extends Error {
  constructor(message: string, readonly rejectedMsg?: Msg) {
    super(message);
  }
}

export type HandleResult =
  | { kind: 'queued'; id: number }
  | { kind: 'acked' | 'nacked' | 'ignored' | 'command' | 'connectivity'; detail?: string };

const THROUGHPUT_WINDOW_MS = 60_000;
const MAX_TIMER_MS = 3600_000;
/** A change of wall time against the monotonic clock this large is a jump (NTP setting the clock), not a drift. */
const CLOCK_JUMP_MS = 60_000;
/**
 * Items leased ahead of their turn: as many as the concurrency, at least MIN_AHEAD (so that even one upload at a
 * time has acks to write together), at most MAX_AHEAD.
 */
const MIN_AHEAD = 4;
const MAX_AHEAD = 8;
/** The longest an ack waits for others to share its commit, while items leased ahead keep the slots full. */
const ACK_GROUP_MS = 15;

/**
 * The offline queue's behaviour over its store: turns messages into items, delivers them while online and not
 * paused, sleeps until the next backoff or lease runs out, and keeps status and stats current. No polling: it wakes on
 * messages, on its own timers and on commits by other processes (the CLI).
 */
export class OfflineQueue {
  private online: boolean;
  private paused = false;
  private closed = false;
  private pumping = false;
  private pumpAgain = false;
  private wakeTimer?: NodeJS.Timeout;
  private wakeAt = Infinity;
  private houseTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;
  private lastRefresh = 0;
  private retryTimer?: NodeJS.Timeout;
  private watcher?: fs.FSWatcher;
  private watchTimer?: NodeJS.Timeout;
  private dataVersion = 0;
  private lastError: string | null = null;
  /** Items the uploader held back (a byte budget), and until when. */
  private held: { reason: string; until: number } | null = null;
  /** The monotonic clock, wall time minus it when last looked at, and the first wall time this run wrote. */
  private clock?: { mono: () => number; offset: number; from: number };
  /** Set while the connectivity node says the target is not configured: new items are not queued. */
  private notConfigured: string | null = null;
  private notQueued = 0;
  private lastStatsKey = '';
  private acks: { at: number; bytes: number }[] = [];
  private pendingAcks: { id: number; resolve: (r: HandleResult) => void; reject: (e: unknown) => void }[] = [];
  private flushingAcks = false;
  private ackFlushScheduled = false;
  private ackGroupTimer?: NodeJS.Timeout;
  /**
   * Items leased ahead of their turn (in priority order), handed out the moment an answer frees a slot: the next
   * upload never waits for the commit of the last one's ack. Leased in the file like the items in flight; given back
   * when delivery stops (offline, paused, closed). A crash leaves them leased, and the next start makes them ready.
   */
  private ahead: LeasedItem[] = [];
  /** Items delivered by this queue and not answered yet, with their lanes: the slots in use. */
  private inFlight = new Map<number, number>();
  /** How many items may be leased ahead (see MIN_AHEAD). */
  private readonly aheadLimit: number;
  /** Uploads reporting progress: bytes sent, size, and when the lease was last extended. */
  private progressOf = new Map<number, { sent: number; bytes: number; attempt: number; touchedAt: number; at: number }>();
  /** When each item in flight was delivered (its lease started), so progress can tell when the lease needs extending. */
  private deliveredAt = new Map<number, number>();
  /** The one ItemProgress this queue hands out (the uploader keys its clean-up timer by it). */
  private offered?: ItemProgress;

  private constructor(
    readonly store: QueueStore,
    readonly config: QueueConfig,
    private readonly events: QueueEvents,
    private readonly now: () => number,
  ) {
    this.online = config.startOnline;
    this.aheadLimit = Math.min(Math.max(config.concurrency, MIN_AHEAD), MAX_AHEAD);
  }

  static async start(
    config: QueueConfig,
    events: QueueEvents,
    owner: string,
    now: () => number = Date.now,
    mono: () => number = () => performance.now(),
  ): Promise<OfflineQueue> {
    const store = await QueueStore.open(config.dbFile, config.policy, {
      synchronous: config.synchronous,
      createFolder: config.createFolder,
      recoverLeases: true,
      owner,
      now,
    });
    const q = new OfflineQueue(store, config, events, now);
    q.clock = { mono, offset: now() - mono(), from: now() };
    if (store.movedAside) {
      q.lastError = `the queue database was corrupt: moved to ${store.movedAside}, ${store.salvaged} items recovered into a fresh one`;
    }
    q.paused = (await store.getMeta('paused')) === 'true';
    // Items still in flight from before a redeploy (their nodes may answer yet) hold their slots.
    for (const it of await store.leasedItems()) q.inFlight.set(it.id, it.lane);
    q.dataVersion = await store.dataVersion();
    q.watchForOtherWriters();
    await q.housekeeping();
    q.schedulePump();
    q.changed();
    return q;
  }

  /** Interprets one message. Throws InputError (with the message, when it was an item not queued) for bad input. */
  async handle(msg: Msg): Promise<HandleResult> {
    await this.watchClock();
    const input = classifyInput(msg);
    switch (input.type) {
      case 'invalid':
        throw new InputError(input.error);
      case 'connectivity':
        this.notConfigured = input.configured ? null : (input.reason ?? 'not configured');
        await this.setOnline(input.online, input.reason);
        return { kind: 'connectivity', detail: input.online ? 'online' : 'offline' };
      case 'command':
        return { kind: 'command', detail: await this.command(input.command, input.ids, input.deleteFiles) };
      case 'ack':
        return this.ack(input.id);
      case 'nack': {
        const info = { ...input.info, offline: input.info.offline || !this.online };
        const r = await this.store.nack(input.id, input.attempt, info);
        // Held by a byte budget: said in the stats and the status until the hold ends.
        if (info.held && r.status === 'retry') this.held = { reason: info.message, until: this.now() + r.delayMs };
        // A stale nack answers an attempt that is over: the item's slot now belongs to the attempt after it.
        if (r.status !== 'stale') {
          this.ahead = this.ahead.filter((it) => it.id !== input.id);
          if (this.inFlight.delete(input.id)) this.deliverAhead();
        }
        if (r.status === 'unknown') throw new InputError(`nack for item ${input.id}, which is not in the queue (purged, or from another queue)`);
        this.afterChange();
        if (r.status === 'dead') this.events.warn(`item ${input.id} moved to failed: ${r.item.lastError}`);
        return { kind: r.status === 'stale' || r.status === 'already-done' ? 'ignored' : 'nacked', detail: r.status };
      }
      case 'item':
        if (this.notConfigured !== null) {
          // Nothing captured before the target is configured is uploaded later (a test image must not reach a real
          // bucket). Counted in the status, in silence: the connectivity or config node said why, once.
          this.notQueued++;
          this.changed();
          return { kind: 'ignored', detail: 'the target is not configured' };
        }
        return this.enqueue(msg, input.file, input.priority);
    }
  }

  private async enqueue(msg: Msg, file: string | undefined, priority: number | undefined): Promise<HandleResult> {
    let bytes: number;
    let stored: Msg = msg;
    if (file !== undefined) {
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (e as Error).message})`;
        throw new InputError(`file ${file} ${why}; nothing was queued`, msg);
      }
      if (!st.isFile()) throw new InputError(`${file} is not a regular file; nothing was queued`, msg);
      bytes = st.size;
      // The file is the data: its bytes are not kept twice. The delivered message carries the path instead.
      if (Buffer.isBuffer(msg.payload) || msg.payload instanceof Uint8Array) stored = { ...msg, payload: file };
    } else {
      bytes = payloadBytes(msg.payload);
      if (bytes > this.config.maxInlineBytes) {
        throw new InputError(
          `the payload is ${fmtBytes(bytes)}, over the inline limit of ${fmtBytes(this.config.maxInlineBytes)}: write it to a file and queue the file (msg.filename), or raise the limit`,
          msg,
        );
      }
    }
    let text: string;
    try {
      text = encodeMessage(stored);
    } catch (e) {
      throw new InputError(`the message cannot be stored: ${(e as Error).message}`, msg);
    }
    try {
      const r = await this.store.enqueue({ kind: file ? 'file' : 'inline', file, bytes, priority, msg: text });
      for (const d of r.dropped) {
        this.events.warn(`queue full: dropped item ${d.id} (priority ${d.priority}, ${fmtBytes(d.bytes)}${d.file ? `, ${d.file}` : ''}) to make room`);
      }
      this.afterChange();
      return { kind: 'queued', id: r.id };
    } catch (e) {
      if (e instanceof QueueFullError) throw new InputError(e.message, msg);
      throw new InputError(`could not store the item: ${describeDbError(e)}`, msg);
    }
  }

  /**
   * The slot an ack frees goes at once to an item leased ahead; the ack itself is answered once it is written.
   * Acks are written together (see QueueStore.ackMany): those that arrive in the same turn of the event loop, those
   * that arrive while the previous batch is being written, and, while enough items leased ahead keep the slots full,
   * those that arrive within a few milliseconds. When the items ahead run low, an ack waits for no timer: its
   * statement also leases the next ones.
   */
  private ack(id: number): Promise<HandleResult> {
    return new Promise((resolve, reject) => {
      if (this.inFlight.delete(id)) this.deliverAhead();
      // Only a message forged with its id answers an item not delivered yet: it is not delivered after that answer.
      else if (this.ahead.some((it) => it.id === id)) this.ahead = this.ahead.filter((it) => it.id !== id);
      this.pendingAcks.push({ id, resolve, reject });
      this.scheduleAckFlush();
    });
  }

  private scheduleAckFlush(grouped = false): void {
    if (this.ackFlushScheduled || this.flushingAcks) return;
    // Enough leased ahead for the next answers: let a few more acks join this commit, for a few milliseconds at most.
    if (!grouped && this.ahead.length > 0 && this.ahead.length * 2 >= this.aheadLimit && this.pendingAcks.length < this.aheadLimit && this.deliverable()) {
      this.ackGroupTimer ??= setTimeout(() => {
        this.ackGroupTimer = undefined;
        this.scheduleAckFlush(true);
      }, ACK_GROUP_MS);
      return;
    }
    if (this.ackGroupTimer) clearTimeout(this.ackGroupTimer);
    this.ackGroupTimer = undefined;
    this.ackFlushScheduled = true;
    setImmediate(() => {
      this.ackFlushScheduled = false;
      void this.flushAcks();
    });
  }

  private async flushAcks(): Promise<void> {
    if (this.flushingAcks) return;
    this.flushingAcks = true;
    try {
      while (this.pendingAcks.length > 0) {
        const batch = this.pendingAcks;
        this.pendingAcks = [];
        await this.writeAcks(batch);
      }
    } finally {
      this.flushingAcks = false;
      if (this.pendingAcks.length > 0) this.scheduleAckFlush();
    }
  }

  private async writeAcks(batch: OfflineQueue['pendingAcks']): Promise<void> {
    // While no other delivery round is running, the acks also take the next items.
    const leaseUpTo = this.deliverable() && !this.pumping ? this.leaseLimit : 0;
    let r: Awaited<ReturnType<QueueStore['ackMany']>>;
    try {
      r = await this.store.ackMany(batch.map((b) => b.id), leaseUpTo);
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    this.take(r.leased);
    const t = this.now();
    const files: string[] = [];
    batch.forEach((b, i) => {
      const res = r.results[i];
      if (res.status === 'unknown') {
        b.reject(new InputError(`ack for item ${b.id}, which is not in the queue (purged, or from another queue)`));
      } else if (res.status === 'already-done') {
        b.resolve({ kind: 'ignored', detail: 'already-done' });
      } else {
        this.deliveredAt.delete(b.id);
        this.acks.push({ at: t, bytes: res.item.bytes });
        if (this.config.policy.fileRetention === 'delete-on-ack' && res.item.file) files.push(res.item.file);
        b.resolve({ kind: 'acked' });
      }
    });
    await this.deleteFiles(files);
    if (leaseUpTo > 0) this.changed();
    else this.afterChange();
  }


  async command(command: Command, ids?: number[], deleteFiles = false): Promise<string> {
    switch (command) {
      case 'pause':
        await this.setPaused(true);
        return 'paused';
      case 'resume':
        await this.setPaused(false);
        return 'resumed';
      case 'retry-failed': {
        const n = await this.store.retryFailed(ids);
        this.afterChange();
        return `${n} failed items queued again`;
      }
      case 'purge-failed': {
        const r = await this.store.purgeFailed(ids);
        if (deleteFiles) await this.deleteFiles(r.files);
        this.afterChange();
        return `${r.count} failed items purged`;
      }
      case 'stats':
        this.events.stats(await this.stats());
        return 'stats sent';
    }
  }

  async setPaused(paused: boolean): Promise<void> {
    this.paused = paused;
    await this.store.setMeta('paused', String(paused));
    if (paused) await this.releaseAhead();
    this.afterChange();
  }

  /** Items backing off go out now (a Retry-After or a byte budget's hold still holds): the link got better. */
  async wakeWaiting(): Promise<void> {
    if (this.closed) return;
    if ((await this.store.wakeWaiting()) > 0) this.afterChange();
  }

  async setOnline(online: boolean, reason?: string): Promise<void> {
    const was = this.online;
    this.online = online;
    if (online && !was) {
      // Items backing off because the link was down go out now: draining fast is the point of knowing.
      await this.store.wakeWaiting();
      this.events.log(`online${reason ? ` (${reason})` : ''}: delivering`);
    } else if (!online && was) {
      this.events.log(`offline${reason ? ` (${reason})` : ''}: holding items`);
      await this.releaseAhead();
    }
    this.afterChange();
  }

  async stats(): Promise<QueueStats> {
    const s = await this.store.stats();
    const t = this.now();
    this.acks = this.acks.filter((a) => a.at > t - THROUGHPUT_WINDOW_MS);
    const c = s.counts;
    // Items leased ahead are still waiting for their turn, whatever the file says.
    const ahead = Math.min(this.ahead.length, c.leased.n);
    return {
      online: this.online,
      paused: this.paused,
      notConfigured: this.notConfigured,
      notQueued: this.notQueued,
      pending: c.pending.n + c.waiting.n + ahead,
      ready: c.pending.n + ahead,
      retrying: c.waiting.n,
      inFlight: c.leased.n - ahead,
      failed: c.dead.n,
      expired: c.expired.n,
      dropped: s.totals.dropped,
      uploaded: s.totals.done,
      queuedBytes: c.pending.bytes + c.waiting.bytes + c.leased.bytes,
      oldestPendingAgeS: s.oldestQueuedAt === null ? null : Math.max(0, Math.round((t - s.oldestQueuedAt) / 1000)),
      totals: s.totals,
      throughput: {
        itemsPerMin: this.acks.length * (60_000 / THROUGHPUT_WINDOW_MS),
        bytesPerSec: Math.round(this.acks.reduce((a, b) => a + b.bytes, 0) / (THROUGHPUT_WINDOW_MS / 1000)),
      },
      concurrency: this.config.concurrency,
      db: this.store.file,
      lastError: this.lastError,
      held: this.held && this.held.until > t ? this.held.reason : null,
      uploading: this.uploading(),
    };
  }

  /** Uploads reporting progress in this process (an upload resumed after a restart reports from what is confirmed). */
  private uploading(): QueueStats['uploading'] {
    const t = this.now();
    for (const [id, p] of this.progressOf) if (t - p.at > this.config.policy.leaseMs) this.progressOf.delete(id);
    // Items answered by something other than an uploader leave no 'finished': forget them once their lease is over.
    for (const [id, at] of this.deliveredAt) if (t - at > 2 * this.config.policy.leaseMs) this.deliveredAt.delete(id);
    return [...this.progressOf]
      .map(([id, p]) => ({ id, bytes: p.bytes, sent: p.sent, percent: p.bytes > 0 ? Math.min(100, Math.round((p.sent / p.bytes) * 1000) / 10) : 100 }))
      .sort((a, b) => a.id - b.id);
  }

  listFailed(limit = 100, afterId = 0): Promise<ItemRow[]> {
    return this.store.list({ states: ['dead', 'expired'], limit, afterId });
  }

  /** Names this queue in the messages it delivers (msg.uplink.item.queue), so an uploader can keep upload progress in the item's row. */
  get token(): string {
    return this.config.token ?? this.store.file;
  }

  /** False once closed: a deliverer must not use its ItemProgress any more. */
  get isOpen(): boolean {
    return !this.closed;
  }

  /** Upload progress kept in the items' rows, for whoever delivers them (see ItemProgress). */
  itemProgress(): ItemProgress {
    if (this.offered) return this.offered;
    const store = this.store;
    this.offered = {
      load: async (id, target) => {
        const r = await store.getUploadState(id, target);
        if (!r) return undefined;
        try {
          return JSON.parse(r.state) as ProgressState;
        } catch {
          return undefined;
        }
      },
      save: (id, target, state, confirmed) => store.saveUploadState(id, target, JSON.stringify(state), confirmed),
      clear: (id, target) => store.clearUploadState(id, target),
      progress: (id, attempt, sent, bytes) => {
        if (this.closed) return;
        const t = this.now();
        const p = this.progressOf.get(id);
        // The lease is extended once a quarter of it has gone by since it started (or was last extended): an upload
        // that finishes sooner costs no extra write.
        const touchedAt = p && p.attempt === attempt ? p.touchedAt : (this.deliveredAt.get(id) ?? t);
        this.progressOf.set(id, { sent, bytes, attempt, touchedAt, at: t });
        if (t - touchedAt >= this.config.policy.leaseMs / 4) {
          this.progressOf.get(id)!.touchedAt = t;
          void store.extendLease(id, attempt).catch(() => undefined);
        }
        this.changed();
      },
      finished: (id) => {
        this.deliveredAt.delete(id);
        if (this.progressOf.delete(id)) this.changed();
      },
      abandoned: async (target, limit) =>
        (await store.abandonedUploads(target, limit)).flatMap((r) => {
          try {
            return [{ id: r.id, state: JSON.parse(r.state) as ProgressState }];
          } catch {
            return [{ id: r.id, state: {} }];
          }
        }),
      forgetAbandoned: (ids) => store.forgetAbandoned(ids),
    };
    return this.offered;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.wakeTimer, this.houseTimer, this.refreshTimer, this.retryTimer, this.watchTimer, this.ackGroupTimer]) if (t) clearTimeout(t);
    this.watcher?.close();
    // Acks waiting for company are written now, and items leased ahead go back: nobody got them.
    if (this.pendingAcks.length > 0 && !this.flushingAcks) void this.flushAcks();
    await this.releaseAhead();
    // Items in flight keep their lease in the file: the next start releases them, so none is lost or doubled.
    await this.store.close();
  }

  // ---- delivery -------------------------------------------------------------------------------------------

  private deliverable(): boolean {
    return !this.closed && this.online && !this.paused;
  }

  private afterChange(): void {
    this.schedulePump();
    this.changed();
  }

  private schedulePump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        if (!this.deliverable()) break;
        const leased = await this.store.lease(this.leaseLimit);
        this.take(leased);
        if (leased.length > 0) this.changed();
      } while (this.pumpAgain && !this.closed);
      if (this.lastError?.startsWith('database error')) this.lastError = null;
      await this.scheduleWake();
    } catch (e) {
      if (this.closed) return;
      this.lastError = `database error: ${describeDbError(e)}`;
      this.events.warn(`delivery stopped: ${this.lastError}; retrying in 5 s`);
      this.changed();
      this.retryTimer = setTimeout(() => this.schedulePump(), 5000);
    } finally {
      this.pumping = false;
      if (this.pumpAgain && !this.closed) this.schedulePump();
    }
  }

  /** Items in flight plus those leased ahead: what a lease may fill the small items' lane up to. */
  private get leaseLimit(): number {
    return this.config.concurrency + this.aheadLimit;
  }

  /** Newly leased items join those leased ahead; as many as there are free slots go out. */
  private take(leased: LeasedItem[]): void {
    if (leased.length === 0) return;
    const fresh = new Set(leased.map((it) => it.id));
    this.ahead = [...this.ahead.filter((it) => !fresh.has(it.id)), ...leased].sort((a, b) => a.priority - b.priority || a.id - b.id);
    if (this.deliverable()) this.deliverAhead();
    else void this.releaseAhead();
  }

  /**
   * Delivers items leased ahead into the free slots of their lanes, in priority order. One whose lease has run half
   * its time while it waited goes back instead (its slot is not taken): the uploader must have most of a lease.
   */
  private deliverAhead(): void {
    if (this.ahead.length === 0 || !this.deliverable()) return;
    const used = [0, 0];
    for (const lane of this.inFlight.values()) used[lane === 1 ? 1 : 0]++;
    const room = [this.config.concurrency - used[0], this.config.policy.largeConcurrency - used[1]];
    const t = this.now();
    const stale: LeasedItem[] = [];
    const kept: LeasedItem[] = [];
    const out: LeasedItem[] = [];
    for (const item of this.ahead) {
      const lane = item.lane === 1 ? 1 : 0;
      if ((item.leaseUntil ?? 0) - t < this.config.policy.leaseMs / 2) stale.push(item);
      else if (room[lane] > 0) {
        room[lane]--;
        out.push(item);
      } else kept.push(item);
    }
    this.ahead = kept;
    for (const item of out) this.deliver(item);
    if (stale.length > 0) void this.giveBack(stale);
  }

  /** Gives back every item leased ahead (delivery stopped). */
  private async releaseAhead(): Promise<void> {
    const items = this.ahead;
    this.ahead = [];
    await this.giveBack(items);
  }

  private async giveBack(items: LeasedItem[]): Promise<void> {
    if (items.length === 0) return;
    try {
      await this.store.releaseLeases(items.map((i) => [i.id, i.attempts]));
    } catch (e) {
      // Their leases run out in the end and they go out again: late, never lost.
      if (!this.closed) this.events.warn(`could not give back ${items.length} items taken ahead: ${describeDbError(e)}`);
    }
    if (!this.closed) this.schedulePump();
  }

  private deliver(item: LeasedItem): void {
    let msg: Msg;
    try {
      msg = decodeMessage(item.msg);
    } catch (e) {
      void this.store
        .nack(item.id, item.attempts, { message: `stored message unreadable: ${(e as Error).message}`, permanent: true })
        .then(() => this.afterChange(), () => undefined);
      return;
    }
    const uplink: Msg = { ...uplinkRecord(msg) };
    const ref: QueueItemRef = { id: item.id, attempt: item.attempts, priority: item.priority, queuedAt: new Date(item.createdAt).toISOString(), queue: this.token };
    uplink.item = ref;
    if (item.file && uplink.file === undefined) uplink.file = item.file;
    delete uplink.ack;
    delete uplink.error;
    msg.uplink = uplink;
    this.inFlight.set(item.id, item.lane);
    // The lease started when the item was taken, which may have been ahead of its delivery.
    this.deliveredAt.set(item.id, item.leaseUntil !== null ? Math.min(this.now(), item.leaseUntil - this.config.policy.leaseMs) : this.now());
    this.events.deliver(msg);
  }

  /** Sleeps until the earliest backoff or lease deadline; nothing runs in between. */
  private async scheduleWake(): Promise<void> {
    const at = await this.store.nextWakeAt();
    if (this.closed) return;
    if (at === null) {
      if (this.wakeTimer) clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      return;
    }
    if (this.wakeTimer && at >= this.wakeAt) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    const delay = Math.min(Math.max(0, at - this.now()) + 5, MAX_TIMER_MS);
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      void this.wake();
    }, delay);
  }

  private async wake(): Promise<void> {
    if (this.closed) return;
    try {
      const r = await this.store.expireLeases();
      if (r.redelivered > 0) this.events.warn(`${r.redelivered} items got no ack or nack within the lease: delivering again`);
      if (r.dead > 0) this.events.warn(`${r.dead} items moved to failed: out of attempts without an answer`);
      if (r.redelivered + r.dead > 0) await this.forgetExpired();
    } catch (e) {
      this.events.warn(`lease check failed: ${describeDbError(e)}`);
    }
    this.afterChange();
  }

  /**
   * A Pi without a clock of its own boots at the time it last shut down (or 1970) and jumps when NTP sets it. Times
   * this queue wrote before the jump are moved by it, before anything is written with the new clock, so that expiry,
   * the oldest pending age and backoffs count from when an item really came. Times written by an earlier run (before a
   * restart) cannot be told apart and stay as they are.
   */
  private async watchClock(): Promise<void> {
    const c = this.clock;
    if (!c || this.closed) return;
    const now = this.now();
    const jump = now - c.mono() - c.offset;
    c.offset += jump;
    // A slow drift (NTP slewing) is followed, so a later jump is measured from where the clock really was.
    if (Math.abs(jump) < CLOCK_JUMP_MS) return;
    const from = c.from;
    c.from += jump;
    try {
      const moved = await this.store.shiftClock(from, now - jump, jump);
      const s = Math.round(jump / 1000);
      this.events.log(`the clock jumped by ${s > 0 ? '+' : ''}${s} s: the times of ${moved} items queued before were moved with it`);
      this.afterChange();
    } catch (e) {
      this.events.warn(`the clock jumped, but the queued items' times could not be moved: ${describeDbError(e)}`);
    }
  }

  /** Items whose lease ran out no longer hold a slot, and are not handed out from those leased ahead. */
  private async forgetExpired(): Promise<void> {
    const leased = new Map((await this.store.leasedItems()).map((it) => [it.id, it]));
    for (const id of this.inFlight.keys()) if (!leased.has(id)) this.inFlight.delete(id);
    this.ahead = this.ahead.filter((it) => leased.get(it.id)?.attempts === it.attempts);
  }

  private async housekeeping(): Promise<void> {
    if (this.closed) return;
    await this.watchClock();
    try {
      const expired = await this.store.expireOld();
      if (expired.length > 0) this.events.warn(`${expired.length} items expired (older than the TTL) and were set aside with the failed items`);
      const files = await this.store.pruneFinished();
      await this.deleteFiles(files);
      if (expired.length > 0) this.changed();
    } catch (e) {
      this.events.warn(`housekeeping failed: ${describeDbError(e)}`);
    }
    const ttl = this.config.policy.ttlMs;
    const every = ttl > 0 ? Math.min(Math.max(ttl / 10, 10_000), 600_000) : 600_000;
    this.houseTimer = setTimeout(() => void this.housekeeping(), every);
    this.houseTimer.unref();
  }

  private async deleteFiles(files: string[]): Promise<void> {
    const folder = this.config.deleteFolder;
    for (const f of files) {
      const full = path.resolve(f);
      if (!folder || !(full === folder || full.startsWith(folder + path.sep))) {
        this.events.warn(`not deleting ${full}: it is outside the folder files may be deleted from (${folder ?? 'none set'})`);
        continue;
      }
      try {
        await fs.promises.unlink(full);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') this.events.warn(`could not delete uploaded file ${full}: ${code ?? (e as Error).message}`);
      }
    }
  }

  // ---- other writers (the CLI) ----------------------------------------------------------------------------

  /**
   * The WAL file changes on every commit; a change our own connection did not make means someone else wrote. Our own
   * commits change it too, many times a second while a backlog drains, and each change would wake the process: after
   * one, the watch stops until the check 250 ms later, which watches again before it reads (a commit in between is
   * seen by that read, one after it by the watch).
   */
  private watchForOtherWriters(): void {
    try {
      const watcher = fs.watch(this.store.file + '-wal', { persistent: false }, () => {
        watcher.close();
        if (this.watcher === watcher) this.watcher = undefined;
        if (this.watchTimer || this.closed) return;
        this.watchTimer = setTimeout(() => {
          this.watchTimer = undefined;
          if (this.closed) return;
          this.watchForOtherWriters();
          void this.checkOtherWriters();
        }, 250);
      });
      watcher.on('error', () => watcher.close());
      this.watcher = watcher;
    } catch {
      /* no inotify here: changes made by the CLI show up at the next message or timer */
    }
  }

  private async checkOtherWriters(): Promise<void> {
    if (this.closed) return;
    try {
      const v = await this.store.dataVersion();
      if (v === this.dataVersion) return;
      this.dataVersion = v;
      this.paused = (await this.store.getMeta('paused')) === 'true';
      this.afterChange();
    } catch {
      /* closed meanwhile */
    }
  }

  // ---- status and stats -----------------------------------------------------------------------------------

  /** Status and stats follow changes, at most once per stats interval (the last change is never left out). */
  private changed(): void {
    if (this.closed || this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefresh + this.config.statsIntervalMs - this.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.lastRefresh = this.now();
      void this.refresh();
    }, wait);
  }

  private async refresh(): Promise<void> {
    if (this.closed) return;
    let s: QueueStats;
    try {
      s = await this.stats();
    } catch (e) {
      if (!this.closed) this.events.status({ fill: 'red', shape: 'ring', text: `database error: ${describeDbError(e)}` });
      return;
    }
    if (this.closed) return;
    this.events.status(statusOf(s));
    const key = JSON.stringify({ ...s, oldestPendingAgeS: null, throughput: null });
    if (key !== this.lastStatsKey) {
      this.lastStatsKey = key;
      this.events.stats(s);
    }
  }
}
