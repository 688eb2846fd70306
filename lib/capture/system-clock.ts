import { execFile } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { ClockReading, ClockSource, PLAUSIBLE_AFTER_MS } from '../message/clock';

/**
 * Whether this machine's wall clock is right, from what Raspberry Pi OS and other Linux systems offer without native
 * code, cheapest first:
 *
 * 1. `/run/systemd/timesync/synchronized`, which systemd-timesyncd (Raspberry Pi OS's time client) creates once it
 *    has synchronized the clock: one stat.
 * 2. `timedatectl show -p NTPSynchronized --value`: the kernel's own flag (adjtimex's STA_UNSYNC, cleared by whichever
 *    client disciplines the clock: timesyncd, chrony, ntpd), through systemd's timedated.
 * 3. `chronyc -n tracking`: "Leap status: Not synchronised" until chrony has a source, where chrony runs without
 *    systemd.
 * 4. Nothing answers (a container, no systemd): the clock is believed when it reads a time after PLAUSIBLE_AFTER_MS.
 *
 * A time before PLAUSIBLE_AFTER_MS is never believed, whatever says otherwise. A time seen in a trusted server's HTTP
 * `Date` answer (the upload target's) stands in while the system is not synchronized: wall time is then the monotonic
 * clock plus the offset that answer gave (to about a second). Probes that are missing are not run again; an answer is
 * kept 10 s while unsynchronized and 10 min once synchronized, and looked at again at once when the wall clock jumps
 * against the monotonic one (NTP stepping it).
 */
export interface SystemClockOptions {
  syncedFile?: string;
  /** Runs a probe command; resolves with its standard output, rejects when it cannot run or fails. */
  run?: (cmd: string, args: string[]) => Promise<string>;
  wall?: () => number;
  /** Milliseconds of CLOCK_MONOTONIC (the same clock in every process of one boot). */
  mono?: () => number;
  bootId?: () => string;
  recheckUnsyncedMs?: number;
  recheckSyncedMs?: number;
}

export const TIMESYNCD_FILE = '/run/systemd/timesync/synchronized';
/** The wall clock moved against the monotonic one by more than this since the last probe: look again now. */
const JUMP_MS = 2000;

function runCommand(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 3000, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(String(stdout))));
  });
}

let processBootId: string | undefined;
/** The kernel's boot id, or (where there is none) one made for this process: then nothing carries across a restart. */
export function readBootId(): string {
  if (processBootId) return processBootId;
  try {
    processBootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  if (!processBootId) processBootId = `process-${crypto.randomBytes(8).toString('hex')}`;
  return processBootId;
}

export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

type Probe = () => Promise<boolean | undefined>;

export class SystemClock implements ClockSource {
  private readonly opts: Required<SystemClockOptions>;
  private known?: { synced: boolean; source: string; at: number; offset: number };
  private probing?: Promise<void>;
  private readonly missing = new Set<string>();
  /** Wall minus monotonic, as a trusted server's Date gave it. */
  private trusted?: { offset: number; source: string };

  constructor(options: SystemClockOptions = {}) {
    this.opts = {
      syncedFile: options.syncedFile ?? TIMESYNCD_FILE,
      run: options.run ?? runCommand,
      wall: options.wall ?? Date.now,
      mono: options.mono ?? monotonicMs,
      bootId: options.bootId ?? readBootId,
      recheckUnsyncedMs: options.recheckUnsyncedMs ?? 10_000,
      recheckSyncedMs: options.recheckSyncedMs ?? 600_000,
    };
  }

  async read(): Promise<ClockReading> {
    const { wall, mono } = this.opts;
    const offset = wall() - mono();
    const k = this.known;
    const stale = !k || mono() - k.at > (k.synced ? this.opts.recheckSyncedMs : this.opts.recheckUnsyncedMs) || Math.abs(offset - k.offset) > JUMP_MS;
    if (stale) await (this.probing ??= this.probe().finally(() => (this.probing = undefined)));
    const state = this.known!;
    const monoMs = mono();
    const wallMs = wall();
    const bootId = this.opts.bootId();
    if (wallMs < PLAUSIBLE_AFTER_MS || !state.synced) {
      if (this.trusted) return { wallMs: monoMs + this.trusted.offset, monoMs, bootId, synced: true, source: this.trusted.source };
      return { wallMs, monoMs, bootId, synced: false, source: wallMs < PLAUSIBLE_AFTER_MS ? 'implausible' : state.source };
    }
    return { wallMs, monoMs, bootId, synced: true, source: state.source };
  }

  /**
   * A time a trusted server gave (its HTTP `Date`, received at the monotonic `monoAt`): stands in for the system's
   * clock while that is not synchronized. Its second's resolution is made up for by taking the middle of the second.
   */
  trust(dateMs: number, monoAt: number, source = 'http-date'): void {
    if (!Number.isFinite(dateMs) || dateMs < PLAUSIBLE_AFTER_MS) return;
    this.trusted = { offset: dateMs + 500 - monoAt, source };
  }

  /** Whether a trusted time has been seen. */
  get hasTrustedTime(): boolean {
    return !!this.trusted;
  }

  /**
   * Asks an HTTP(S) server for its time (a HEAD request; any status will do, as long as it has a `Date`) and trusts
   * it. Says whether a time was learned, the server answered without one, or did not answer; never throws.
   */
  async learnFromHttpDate(url: string, timeoutMs = 5000): Promise<'learned' | 'no-date' | 'unreachable'> {
    if (!/^https?:\/\//i.test(url)) return 'no-date';
    let res: Response;
    const sent = this.opts.mono();
    try {
      res = await fetch(url, { method: 'HEAD', redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      return 'unreachable';
    }
    const got = this.opts.mono();
    const date = res.headers.get('date');
    await res.body?.cancel().catch(() => undefined);
    const ms = date ? Date.parse(date) : NaN;
    if (!Number.isFinite(ms) || ms < PLAUSIBLE_AFTER_MS) return 'no-date';
    // The server wrote its Date somewhere between our request and its answer: take the middle of that time.
    this.trust(ms, sent + (got - sent) / 2, 'http-date');
    return 'learned';
  }

  private async probe(): Promise<void> {
    let answer: { synced: boolean; source: string } | undefined;
    const timesyncd = await this.timesyncd();
    if (timesyncd === true) answer = { synced: true, source: 'timesyncd' };
    const probes: Array<[string, Probe]> = [
      ['timedatectl', () => this.timedatectl()],
      ['chrony', () => this.chrony()],
    ];
    for (const [name, p] of probes) {
      if (answer) break;
      if (this.missing.has(name)) continue;
      const r = await p();
      if (r !== undefined) answer = { synced: r, source: name };
    }
    // timesyncd runs and has not synchronized, and nothing else says otherwise: not synchronized.
    if (!answer && timesyncd === 'running') answer = { synced: false, source: 'timesyncd' };
    const wallMs = this.opts.wall();
    answer ??= wallMs >= PLAUSIBLE_AFTER_MS ? { synced: true, source: 'assumed' } : { synced: false, source: 'implausible' };
    this.known = { ...answer, at: this.opts.mono(), offset: wallMs - this.opts.mono() };
  }

  /**
   * timesyncd's flag file: present = synchronized. Absent while its folder exists: timesyncd runs and has not
   * synchronized yet ('running'); neither: timesyncd does not run here.
   */
  private async timesyncd(): Promise<true | 'running' | undefined> {
    try {
      await fs.promises.stat(this.opts.syncedFile);
      return true;
    } catch {
      try {
        return (await fs.promises.stat(path.dirname(this.opts.syncedFile))).isDirectory() ? 'running' : undefined;
      } catch {
        return undefined;
      }
    }
  }

  private async timedatectl(): Promise<boolean | undefined> {
    try {
      const out = (await this.opts.run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'])).trim();
      if (out === 'yes') return true;
      if (out === 'no') return false;
      return undefined;
    } catch (e) {
      // Not installed, or no systemd to ask (a container): not asked again. Anything else may pass.
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      if (err.code === 'ENOENT' || /not been booted with systemd|Failed to connect to bus/i.test(`${err.message} ${err.stderr ?? ''}`)) this.missing.add('timedatectl');
      return undefined;
    }
  }

  private async chrony(): Promise<boolean | undefined> {
    try {
      const out = await this.opts.run('chronyc', ['-n', 'tracking']);
      const m = /Leap status\s*:\s*(.+)/.exec(out);
      if (!m) return undefined;
      return !/not synchroni[sz]ed/i.test(m[1]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.missing.add('chrony');
      return undefined;
    }
  }
}

let shared: SystemClock | undefined;
/** The one SystemClock of this process, shared by every node (one probe, one trusted time). */
export function systemClock(): SystemClock {
  return (shared ??= new SystemClock());
}
