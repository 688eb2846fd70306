import { renderKey, KeyTemplateError } from './object-key';
import { isRecord, Msg, uplinkRecord } from './uplink';

/**
 * Capture times on a device whose wall clock may be wrong after boot (a Raspberry Pi has no battery-backed clock: it
 * starts at the time of its last shutdown, or at 1970, until NTP sets it, which may be never while it is offline).
 *
 * A capture taken while the clock is not known to be right keeps, besides its (probably wrong) wall time, the
 * monotonic clock's reading and the boot it belongs to. The monotonic clock never jumps and counts from boot, so once
 * the wall clock is right (NTP synchronized it, or a trusted time was seen) the capture's true time is its monotonic
 * reading plus the current offset between the two clocks: `correctCapture` rewrites capturedAt and the key from it.
 * Across a reboot the monotonic clock starts again, and the correction is impossible: the item keeps its time, flagged.
 *
 * Everything here is pure: the clock is a reading handed in (lib/capture/system-clock.ts reads the real one).
 */

/** One look at the clocks, as a ClockSource gives it. */
export interface ClockReading {
  /** Wall time, ms since 1970: the system's, or the system's monotonic clock plus a trusted offset. */
  wallMs: number;
  /** The monotonic clock, ms since boot (CLOCK_MONOTONIC: the same in every process of one boot). */
  monoMs: number;
  /** Names the boot the monotonic reading belongs to (/proc/sys/kernel/random/boot_id). */
  bootId: string;
  /** Whether wallMs is known to be right. */
  synced: boolean;
  /** What said so: timesyncd, timedatectl, chrony, http-date (a trusted server's Date), assumed, implausible… */
  source: string;
}

/** Where the clocks are read; injected in tests. */
export interface ClockSource {
  read(): Promise<ClockReading>;
}

/** What a capture records about its clock in msg.uplink. */
export interface CaptureClockFacts {
  /** Whether the wall clock was known to be right when the capture was taken. */
  clockSynced: boolean;
  /** For a capture taken unsynchronized: the monotonic clock then (ms since boot), the boot, and its key's template. */
  capturedMono?: number;
  bootId?: string;
  keyTemplate?: string;
}

/**
 * Times before this are not believed whatever says the clock is synchronized (1970, or a clock reset to its build
 * date by a board without a battery). Later than every release of this package's dependencies' certificates would be
 * too strict; the start of 2025 is before this code existed.
 */
export const PLAUSIBLE_AFTER_MS = Date.UTC(2025, 0, 1);

/** The facts a capture taken at `r` records (its key's template too, so the key can be made again later). */
export function captureClockFacts(r: ClockReading, keyTemplate: string): CaptureClockFacts {
  if (r.synced) return { clockSynced: true };
  return { clockSynced: false, capturedMono: Math.round(r.monoMs * 1000) / 1000, bootId: r.bootId, keyTemplate };
}

/** How a capture's time was settled, as msg.uplink.clockCorrection tells it. */
export interface ClockCorrection {
  /** corrected: time and key rewritten; rebooted / unsynced: could not be, the item keeps its time. */
  state: 'corrected' | 'rebooted' | 'unsynced';
  /** The capture's time as it was recorded. */
  from: string;
  /** Seconds added to it (corrected only). */
  byS?: number;
  /** What vouched for the clock (corrected only). */
  source?: string;
  /** The key the capture had before (when it changed). */
  fromKey?: string;
}

export type CorrectionVerdict =
  /** Nothing to do: taken while synchronized, corrected before, or not a capture. */
  | { kind: 'as-is' }
  /** The clock is not right yet, in the same boot: wait for it (or call again with giveUp). */
  | { kind: 'wait'; reason: string }
  /** msg.uplink rewritten (a new object; the message given is not changed). */
  | { kind: 'settled'; msg: Msg; correction: ClockCorrection; text: string };

export interface CorrectOptions {
  /**
   * Settle now even though the clock is still not right (waited long enough): the capture keeps its time, flagged,
   * and a time before PLAUSIBLE_AFTER_MS is not used in the key (it reads "undated" there).
   */
  giveUp?: boolean;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Whether msg.uplink describes a capture taken unsynchronized and not yet settled. */
export function needsClockCorrection(msg: Msg): boolean {
  const u = uplinkRecord(msg);
  return !!u && u.clockSynced === false && num(u.capturedMono) !== undefined && !isRecord(u.clockCorrection);
}

/**
 * Settles the time of a capture taken while the clock was not right. Pure: `msg` is not changed, a settled verdict
 * carries a new message whose msg.uplink has capturedAt, key and clockCorrection rewritten.
 *
 * - Same boot and the clock is right now: capturedAt = capturedMono + (wall - mono now); the key is rendered again
 *   from its template with the corrected time (keeping a `_N` the file's name got when its name was taken).
 * - Another boot: the offset of that boot is gone; the item keeps its time, flagged `rebooted`.
 * - Same boot, the clock still not right: `wait`, or with giveUp the item keeps its time, flagged `unsynced`.
 * A kept time before PLAUSIBLE_AFTER_MS never goes into a key: its date and time read "undated" instead.
 */
export function correctCapture(msg: Msg, now: ClockReading, opts: CorrectOptions = {}): CorrectionVerdict {
  if (!needsClockCorrection(msg)) return { kind: 'as-is' };
  const u = uplinkRecord(msg)!;
  const mono = num(u.capturedMono)!;
  const from = str(u.capturedAt) ?? '';
  const sameBoot = str(u.bootId) !== undefined && u.bootId === now.bootId && mono <= now.monoMs + 1;
  if (sameBoot && now.synced) {
    const at = new Date(Math.round(now.wallMs - now.monoMs + mono));
    const fromMs = Date.parse(from);
    const byS = Number.isFinite(fromMs) ? Math.round(at.getTime() - fromMs) / 1000 : undefined;
    const key = rekey(u, at.toISOString());
    const correction: ClockCorrection = { state: 'corrected', from, ...(byS !== undefined ? { byS } : {}), source: now.source, ...(key !== u.key ? { fromKey: u.key as string } : {}) };
    const uplink = { ...u, capturedAt: at.toISOString(), key, clockCorrection: correction };
    const text = `capture ${String(u.key ?? u.file ?? '')}: time corrected from ${from || 'none'} to ${at.toISOString()} (${byS !== undefined ? `${byS > 0 ? '+' : ''}${byS} s, ` : ''}clock ${now.source})${key !== u.key ? `, key ${key}` : ''}`;
    return { kind: 'settled', msg: { ...msg, uplink }, correction, text };
  }
  if (sameBoot && !opts.giveUp) return { kind: 'wait', reason: `the clock is not synchronized yet (${now.source})` };
  const state = sameBoot ? 'unsynced' : 'rebooted';
  const fromMs = Date.parse(from);
  const plausible = Number.isFinite(fromMs) && fromMs >= PLAUSIBLE_AFTER_MS;
  const key = plausible ? (str(u.key) ?? '') : rekey(u, undefined);
  const correction: ClockCorrection = { state, from, ...(key !== u.key ? { fromKey: u.key as string } : {}) };
  const uplink: Msg = { ...u, key, clockCorrection: correction };
  if (!key) delete uplink.key;
  const why = state === 'rebooted' ? 'it was taken before the last reboot' : 'the clock is still not synchronized';
  const text = `capture ${String(u.key ?? u.file ?? '')}: time ${from || 'none'} kept, not corrected: ${why}${plausible ? '' : ` (key ${key}, no date)`}`;
  return { kind: 'settled', msg: { ...msg, uplink }, correction, text };
}

/**
 * The key rendered again from the capture's template with another time (undefined: no time, "undated"). A key the
 * capture did not render from its template (one a user's node set) is left alone when there is a time to keep.
 */
function rekey(u: Msg, capturedAt: string | undefined): string {
  const oldKey = str(u.key);
  const template = str(u.keyTemplate);
  if (!template) return oldKey ?? '';
  const fields = {
    camera: str(u.camera),
    width: num(u.width),
    height: num(u.height),
    ext: oldKey ? extOf(oldKey) : undefined,
    sha256: str(u.sha256),
    // Without a time, {time} reads the id: the queue's item id, else the content's checksum, so undated keys differ.
    id: isRecord(u.item) && (typeof u.item.id === 'number' || typeof u.item.id === 'string') ? u.item.id : str(u.sha256)?.slice(0, 16),
  };
  let rendered: string;
  let before: string;
  try {
    rendered = renderKey(template, { ...fields, id: capturedAt === undefined ? fields.id : undefined, capturedAt });
    before = renderKey(template, { ...fields, id: undefined, capturedAt: str(u.capturedAt) });
  } catch (e) {
    if (e instanceof KeyTemplateError) return oldKey ?? '';
    throw e;
  }
  if (!oldKey) return rendered;
  if (oldKey === before) return rendered;
  // The file's name was taken by another capture in the same second: it went in as name_N.ext, and so does the key.
  const suffix = suffixAgainst(oldKey, before);
  if (suffix !== undefined) return insertBeforeExt(rendered, suffix);
  // Not made from this template (a user's node set the key): keep it, unless its time must go.
  return capturedAt === undefined ? rendered : oldKey;
}

function extOf(key: string): string | undefined {
  const base = key.slice(key.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1) : undefined;
}

function splitExt(key: string): [string, string] {
  const slash = key.lastIndexOf('/');
  const dot = key.lastIndexOf('.');
  return dot > slash + 1 ? [key.slice(0, dot), key.slice(dot)] : [key, ''];
}

/** "_3" when `key` is `expected` with `_3` before its extension. */
function suffixAgainst(key: string, expected: string): string | undefined {
  const [kb, ke] = splitExt(key);
  const [eb, ee] = splitExt(expected);
  if (ke !== ee || !kb.startsWith(eb)) return undefined;
  const rest = kb.slice(eb.length);
  return /^_\d+$/.test(rest) ? rest : undefined;
}

function insertBeforeExt(key: string, suffix: string): string {
  const [b, e] = splitExt(key);
  return `${b}${suffix}${e}`;
}

/** A clock that can also learn the time from a trusted server (SystemClock). */
export interface LearningClock extends ClockSource {
  learnFromHttpDate?(url: string): Promise<'learned' | 'no-date' | 'unreachable'>;
}

export interface CaptureTimesOptions {
  /** How long one upload waits for the clock at most; default 60 s. */
  waitMs?: number;
  /** How often the clock is looked at while waiting; default 2 s. */
  pollMs?: number;
  /** An http(s) URL whose `Date` answer is trusted (the upload target's endpoint), asked while the clock is not right. */
  trustedUrl?: string;
  /** How often the trusted URL is asked at most; default 30 s. */
  askEveryMs?: number;
  /** Monotonic milliseconds; injected in tests. */
  mono?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const sleepFor = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Settles capture times at upload: what the uploader calls on each message before it makes the key. A capture taken
 * unsynchronized is corrected when the clock is right. While it is not (in the same boot), the trusted server's Date
 * is asked for (at most every half minute) and the upload waits, polling the clock, up to `waitMs`; then it goes on
 * with its time flagged, and never under a date before PLAUSIBLE_AFTER_MS (the key reads "undated"). Once one upload
 * has waited in vain while the target answered (or nothing can tell), the next ones do not wait until the clock is
 * right again; a wait during which the target did not answer says nothing about the clock, and does not count.
 */
export class CaptureTimes {
  private gaveUp = false;
  private askedAt = -Infinity;
  private reachable: boolean | undefined;
  private readonly waitMs: number;
  private readonly pollMs: number;
  private readonly askEveryMs: number;
  private readonly mono: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    private readonly clock: LearningClock,
    private readonly opts: CaptureTimesOptions = {},
  ) {
    this.waitMs = opts.waitMs ?? 60_000;
    this.pollMs = opts.pollMs ?? 2000;
    this.askEveryMs = opts.askEveryMs ?? 30_000;
    this.mono = opts.mono ?? (() => performance.now());
    this.sleep = opts.sleep ?? sleepFor;
  }

  /** The message to upload (corrected, flagged, or as it came) and a line for the log when its time was settled. */
  async settle(msg: Msg, signal?: AbortSignal): Promise<{ msg: Msg; log?: string }> {
    if (!needsClockCorrection(msg)) return { msg };
    const started = this.mono();
    for (;;) {
      let reading = await this.clock.read();
      let verdict = correctCapture(msg, reading);
      if (verdict.kind === 'wait' && this.opts.trustedUrl && this.clock.learnFromHttpDate && this.mono() - this.askedAt >= this.askEveryMs) {
        this.askedAt = this.mono();
        const learned = await this.clock.learnFromHttpDate(this.opts.trustedUrl);
        this.reachable = learned !== 'unreachable';
        if (learned === 'learned') {
          reading = await this.clock.read();
          verdict = correctCapture(msg, reading);
        }
      }
      if (verdict.kind === 'settled') {
        if (verdict.correction.state === 'corrected') this.gaveUp = false;
        return { msg: verdict.msg, log: verdict.text };
      }
      if (verdict.kind === 'as-is' || signal?.aborted) return { msg };
      if (this.gaveUp || this.mono() - started >= this.waitMs) {
        // Waited in vain while the target answered (or nothing tells): the next uploads need not wait again.
        if (this.reachable !== false) this.gaveUp = true;
        const given = correctCapture(msg, reading, { giveUp: true });
        return given.kind === 'settled' ? { msg: given.msg, log: given.text } : { msg };
      }
      await this.sleep(this.pollMs, signal);
    }
  }
}
