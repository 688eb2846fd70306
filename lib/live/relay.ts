import { maskCredentials, urlWithCredentials } from '../media/ffmpeg-input';
import { describeEnd } from '../media/ffmpeg-reason';
import { ProcessExit, RecordingProcess } from '../media/ffmpeg-process';
import { DEFAULT_RECONNECT, ReconnectBackoff, ReconnectPolicy } from '../util/backoff';

export type RelayState = 'waiting' | 'connecting' | 'relaying' | 'reconnecting' | 'closed';

export interface RelayTarget {
  /** rtsp:// or rtsps:// URL of the server that takes the stream (ANNOUNCE/RECORD), without a login. */
  url: string;
  username?: string;
  password?: string;
  transport: 'tcp' | 'udp';
}

export interface RelayStats {
  state: RelayState;
  /** The target, login masked. */
  target: string;
  /** When the state last changed (ms since the epoch). */
  since: number;
  reconnects: number;
  lastError?: string;
  /** Bytes of media handed to the relay's ffmpeg since deploy. */
  bytes: number;
  /** Fragments left out because the target took them too slowly. */
  dropped: number;
}

export interface RelayEvents {
  changed(stats: RelayStats): void;
  warn(text: string): void;
  log(text: string): void;
}

export interface RelayOptions {
  ffmpegPath: string;
  reconnect?: ReconnectPolicy;
  /** Media waiting in the pipe to ffmpeg beyond this is dropped (whole fragments, up to the next keyframe). */
  maxQueuedBytes?: number;
  /** A relay that has not sent anything after this long is restarted. */
  connectTimeoutMs?: number;
  killGraceMs?: number;
}

const DEFAULT_MAX_QUEUED = 4 * 1024 * 1024;

/** ffmpeg's argv: fragmented MP4 from its stdin, copied as it is to the RTSP server, progress on stdout. */
export function relayArgs(target: RelayTarget, timeoutMs: number): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-nostats',
    '-progress', 'pipe:1', '-stats_period', '1',
    '-f', 'mp4', '-i', 'pipe:0',
    '-map', '0', '-c', 'copy',
    '-f', 'rtsp', '-rtsp_transport', target.transport,
    // The socket timeout, in µs: a server that stops answering ends ffmpeg instead of hanging it.
    '-timeout', String(Math.round(timeoutMs * 1000)),
    urlWithCredentials({ input: target.url, username: target.username, password: target.password }),
  ];
}

/**
 * Pushes the live stream to an RTSP server, fed with the fragments the recording's own ffmpeg already produces, so
 * the camera is read once. Its ffmpeg is separate from the recording's: when the server is down, refuses the login or
 * stalls, only the relay stops, and comes back on its own backoff (1 s, 2 s … 30 s) while the recording goes on.
 * A new camera stream (ffmpeg restarted, a new initialization segment) starts a new relay session at once.
 */
export class RtspRelay {
  private proc: RecordingProcess | undefined;
  private init: Buffer | undefined;
  private needKeyframe = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly backoff: ReconnectBackoff;
  private lastReasonCode: string | undefined;
  private wasRelaying = false;
  private readonly s: RelayStats;

  constructor(private readonly target: RelayTarget, private readonly options: RelayOptions, private readonly events: RelayEvents) {
    this.backoff = new ReconnectBackoff(options.reconnect ?? DEFAULT_RECONNECT);
    this.s = { state: 'waiting', target: this.mask(target.url), since: Date.now(), reconnects: 0, bytes: 0, dropped: 0 };
  }

  stats(): RelayStats {
    return { ...this.s };
  }

  /** The camera's stream (re)started: a relay session under way ends, a new one starts with this stream. */
  setInit(init: Buffer): void {
    if (this.closed) return;
    this.init = init;
    const old = this.proc;
    if (old) {
      this.proc = undefined;
      void old.stop();
    }
    if (!this.retryTimer) this.spawn();
  }

  /** One fragment of the live stream. */
  push(fragment: Buffer, keyframe: boolean): void {
    const stdin = this.proc?.stdin;
    if (!stdin || this.closed || !stdin.writable) return;
    if (this.needKeyframe && !keyframe) return;
    if (stdin.writableLength > (this.options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED)) {
      // The server takes less than the camera sends: leave out what it cannot take, start again at a keyframe.
      this.s.dropped++;
      this.needKeyframe = true;
      return;
    }
    this.needKeyframe = false;
    this.s.bytes += fragment.length;
    stdin.write(fragment);
  }

  /** The camera's stream stopped: the relay session ends with it (at the end of its input) and waits for the next. */
  streamEnded(): void {
    this.init = undefined;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const p = this.proc;
    this.proc = undefined;
    if (p) {
      p.stdin?.end();
      void p.stop();
    }
    if (!this.closed) this.setState('waiting');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of [this.retryTimer, this.connectTimer]) if (t) clearTimeout(t);
    const p = this.proc;
    this.proc = undefined;
    if (p) {
      p.stdin?.end();
      await p.stop();
    }
    this.setState('closed');
  }

  private spawn(): void {
    if (this.closed || !this.init || this.proc) return;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 20_000;
    const proc = new RecordingProcess(this.options.ffmpegPath, relayArgs(this.target, Math.min(connectTimeoutMs, 10_000)), this.options.killGraceMs ?? 3000, {
      stdin: true,
      stdout: true,
    });
    this.proc = proc;
    this.needKeyframe = true;
    this.setState('connecting');
    proc.stdin?.write(this.init);
    this.watchProgress(proc);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      if (this.proc === proc && this.s.state === 'connecting') void proc.kill();
    }, connectTimeoutMs);
    this.connectTimer.unref();
    void proc.exited.then((exit) => this.ended(proc, exit));
  }

  /**
   * ffmpeg's -progress blocks (once a second): the first that counts a frame written says the server took the
   * stream. (An RTSP output has no size: total_size and bitrate read N/A.)
   */
  private watchProgress(proc: RecordingProcess): void {
    const out = proc.stdout;
    if (!out) return;
    out.setEncoding('utf8');
    let rest = '';
    let frames = 0;
    out.on('data', (chunk: string) => {
      rest += chunk;
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const [key, value] = line.split('=', 2);
        if (key === 'frame') frames = Number(value) || 0;
        else if (key === 'progress' && this.proc === proc && frames > 0 && this.s.state === 'connecting') this.up();
      }
      if (rest.length > 4096) rest = '';
    });
  }

  private up(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.lastReasonCode !== undefined || !this.wasRelaying) this.events.log(`relaying to ${this.s.target}`);
    this.lastReasonCode = undefined;
    this.wasRelaying = true;
    delete this.s.lastError;
    this.setState('relaying');
  }

  private ended(proc: RecordingProcess, exit: ProcessExit): void {
    if (this.proc !== proc) return; // stopped on purpose: a new stream, the stream's end, or close
    this.proc = undefined;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.closed) return;
    const reason = describeEnd(exit, { input: this.s.target, mask: (t) => this.mask(t) });
    const text = reason.code === 'KILLED' && this.s.state === 'connecting' ? 'no answer from the relay server' : reason.text;
    const delay = this.backoff.next(exit.runMs);
    this.s.reconnects++;
    this.s.lastError = text;
    if (reason.code !== this.lastReasonCode) this.events.warn(`relay to ${this.s.target} stopped: ${text}; the recording goes on, the relay retries with backoff`);
    this.lastReasonCode = reason.code;
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.spawn();
    }, delay);
  }

  private setState(state: RelayState): void {
    if (this.s.state === state) return;
    this.s.state = state;
    this.s.since = Date.now();
    this.events.changed(this.stats());
  }

  private mask(text: string): string {
    return maskCredentials(text, { password: this.target.password });
  }
}
