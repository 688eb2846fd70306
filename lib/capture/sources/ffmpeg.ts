import fs from 'fs';
import { guardedCommand } from '../../util/child-guard';
import { abortedError, ChildOutcome, ChildRunner, lastLine } from '../child-run';
import { ffprobePathFor, MediaInfo, parseProbeOutput, probeArgs } from '../../media/ffprobe';
import { CaptureError, CaptureSource } from '../types';
import { FfmpegSettings, LAVFI_PREFIX, maskCredentials, urlWithCredentials } from '../../media/ffmpeg-input';
import { maskUrlLogin } from '../../util/url-login';

/** What a clip recording gives: how ffmpeg ended, and what it left in the file. */
export interface ClipRun {
  out: ChildOutcome;
  /** The kill timer: the clip's length, the connect timeout and a grace period. */
  deadlineMs: number;
  /** Stopped because nothing was written within the connect timeout (a camera that accepts and never answers). */
  connectTimedOut: boolean;
}

/**
 * ffmpeg's own socket timeout is a backstop, set past our deadline: our kill timer decides (and says TIMEOUT), while
 * an ffmpeg whose Node-RED died under it still gives up by itself instead of hanging on a silent camera forever.
 */
const SOCKET_BACKSTOP_MS = 1000;
/** A clip's kill timer is its length + the connect timeout + this (ffmpeg writing the MP4 index, a keyframe wait). */
const CLIP_GRACE_MS = 5000;
/** ffprobe reads an MP4's index: seconds at most, even on a Pi's SD card. */
const PROBE_TIMEOUT_MS = 15000;
/** Exit codes of `setpriv` (lib/child-guard.ts) when it cannot execute the program it wraps. */
const EXEC_FAILED = /failed to execute (.*): (No such file or directory|Permission denied)/;

function clipClosed(): CaptureError {
  return new CaptureError('the clip was stopped: the camera is closing (the flow is stopping)', 'ABORTED');
}

/** Grabs one JPEG frame with ffmpeg from an RTSP camera, an MJPEG-over-HTTP stream, a V4L2 device or a lavfi graph. */
export class FfmpegSource implements CaptureSource {
  readonly kind = 'ffmpeg';
  private readonly children = new ChildRunner();

  constructor(readonly settings: FfmpegSettings) {}

  /** Process ids of the ffmpeg processes running now. */
  get runningPids(): number[] {
    return this.children.pids;
  }

  /** The input as it may be shown to a person: never with the password. */
  describeInput(): string {
    return maskUrlLogin(this.settings.input);
  }

  /** ffmpeg's argv. It holds the password when there is one (ffmpeg takes it nowhere else): never log it. */
  ffmpegArgs(): string[] {
    const s = this.settings;
    const args = this.inputArgs('still');
    args.push('-an', '-frames:v', '1', '-q:v', String(s.quality), '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1');
    return args;
  }

  /**
   * ffmpeg's argv for a clip of `lengthS` seconds into `outFile` (an MP4 whatever its name). Video only: cameras'
   * G.711 audio cannot go into MP4, and one failing stream would fail the whole clip. Holds the password: never log it.
   */
  clipArgs(lengthS: number, outFile: string): string[] {
    const args = this.inputArgs('clip');
    args.push('-map', '0:v:0', '-an');
    if (this.clipReencodes()) {
      // -vsync vfr keeps each frame's own time (a camera's real rate) instead of padding to a fixed rate; spelled the
      // old way, which ffmpeg 4.x (Raspberry Pi OS Bullseye) to 7 all accept.
      args.push('-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-vsync', 'vfr');
    } else {
      args.push('-c:v', 'copy');
    }
    // +faststart: the index at the front, so a browser plays the uploaded clip before it has all of it.
    args.push('-t', String(lengthS), '-movflags', '+faststart', '-f', 'mp4', outFile);
    return args;
  }

  /** Whether a clip is re-encoded to H.264 rather than copied as the camera sends it. */
  private clipReencodes(): boolean {
    const v = this.settings.clipVideo ?? 'auto';
    return v === 'h264' || (v === 'auto' && this.settings.kind !== 'rtsp');
  }

  private inputArgs(purpose: 'still' | 'clip'): string[] {
    const s = this.settings;
    const args = ['-nostdin', '-y', '-hide_banner', '-loglevel', 'error'];
    const socketTimeoutUs = String((s.timeoutMs + SOCKET_BACKSTOP_MS) * 1000);
    // -probesize 32 saves ~2.5 s for a still (the frame is decoded anyway); a clip copied into MP4 needs the stream's
    // parameters found first, so it probes normally.
    const probe = purpose === 'still' ? ['-probesize', '32'] : [];
    switch (s.kind) {
      case 'rtsp':
        // -timeout is the RTSP socket timeout in microseconds (ffmpeg 5.1; -stimeout is gone).
        args.push('-rtsp_transport', s.rtspTransport, '-timeout', socketTimeoutUs, ...probe, '-i', this.urlWithCredentials());
        break;
      case 'mjpeg':
        // An MJPEG stream has no timestamps: ffmpeg would assume 25 fps and a "3 s" clip of a 10 fps camera would take
        // 7.5 s. The arrival time is the frame's time.
        args.push('-rw_timeout', socketTimeoutUs, ...probe, ...(purpose === 'clip' ? ['-use_wallclock_as_timestamps', '1'] : []), '-i', this.urlWithCredentials());
        break;
      case 'v4l2':
        args.push('-f', 'v4l2', '-i', s.input);
        break;
      case 'lavfi':
        args.push('-f', 'lavfi', '-i', s.input.startsWith(LAVFI_PREFIX) ? s.input.slice(LAVFI_PREFIX.length) : s.input);
        break;
    }
    return args;
  }

  async grab(signal: AbortSignal, maxBytes: number): Promise<Buffer> {
    if (this.children.closed) throw new CaptureError('the camera is closed (the flow is stopping)', 'CLOSED');
    if (signal.aborted) throw abortedError(signal);
    const out = await this.runGuarded(this.settings.ffmpegPath, this.ffmpegArgs(), this.settings.timeoutMs, signal, 'collect', maxBytes);
    return this.result(out, signal, maxBytes);
  }

  /**
   * Records a clip into `outFile`. Resolves (never rejects) once ffmpeg is gone: finished, or stopped by the kill
   * timer (its length + the connect timeout + CLIP_GRACE_MS), by `signal` or by close().
   */
  async recordClip(outFile: string, lengthS: number, signal: AbortSignal): Promise<ClipRun> {
    const deadlineMs = Math.round(lengthS * 1000) + this.settings.timeoutMs + CLIP_GRACE_MS;
    // ffmpeg writes the MP4's first bytes once the camera has answered and sent video. Nothing by the timeout: stop it
    // then, rather than let ffmpeg's socket timeout end it with a vague "Invalid data found".
    const connect = new AbortController();
    const watch = setTimeout(() => {
      fs.promises.stat(outFile).then(
        (st) => st.size === 0 && connect.abort(),
        () => connect.abort(),
      );
    }, this.settings.timeoutMs);
    try {
      const both = AbortSignal.any([signal, connect.signal]);
      const out = await this.runGuarded(this.settings.ffmpegPath, this.clipArgs(lengthS, outFile), deadlineMs, both, 'ignore', 0);
      return { out, deadlineMs, connectTimedOut: connect.signal.aborted && !signal.aborted && out.end === 'aborted' };
    } finally {
      clearTimeout(watch);
    }
  }

  /**
   * Reads a media file's real duration, video codec and size with ffprobe (beside ffmpeg). `undefined` when the file
   * is not a readable video; a CaptureError when ffprobe itself cannot run.
   */
  /** How long ffprobe may take to read a recording back. */
  probeTimeoutMs = PROBE_TIMEOUT_MS;

  /**
   * Reads a recording back. `undecided` means ffprobe could not give an answer (it hung): that says nothing about the
   * recording, which must then be kept, not deleted.
   */
  async probe(file: string, signal: AbortSignal): Promise<{ info?: MediaInfo; problem?: string; undecided?: boolean }> {
    const ffprobe = ffprobePathFor(this.settings.ffmpegPath);
    const out = await this.runGuarded(ffprobe, probeArgs(file), this.probeTimeoutMs, signal, 'collect', 1024 * 1024);
    const launch = this.launchFailure(out, 'ffprobe', ffprobe);
    if (launch) throw launch;
    if (out.end === 'closed') throw clipClosed();
    if (out.end === 'aborted') throw abortedError(signal);
    if (out.end === 'timeout') return { problem: `ffprobe gave no answer within ${this.probeTimeoutMs / 1000} s`, undecided: true };
    if (out.code !== 0) return { problem: `ffprobe: ${lastLine(out.stderr) || `exit code ${String(out.code)}`}` };
    const info = parseProbeOutput(out.stdout.toString('utf8'));
    return info ? { info } : { problem: 'it holds no video frames' };
  }

  /**
   * Why a clip recording that left no usable file failed, as a CaptureError a person can act on (never with the
   * password in it).
   */
  clipFailure(run: ClipRun, signal: AbortSignal): CaptureError {
    const { out } = run;
    const launch = this.launchFailure(out, 'ffmpeg', this.settings.ffmpegPath);
    if (launch) return launch;
    const where = this.describeInput();
    const seconds = this.settings.timeoutMs / 1000;
    if (run.connectTimedOut) return new CaptureError(`no answer from ${where} within ${seconds} s`, 'TIMEOUT');
    switch (out.end) {
      case 'timeout':
        return new CaptureError(`no video from ${where}: ffmpeg was stopped after ${run.deadlineMs / 1000} s`, 'TIMEOUT');
      case 'aborted':
        return abortedError(signal);
      case 'closed':
        return clipClosed();
      default:
        break;
    }
    if (out.code === 0) {
      const last = this.mask(lastLine(out.stderr));
      return new CaptureError(`ffmpeg finished without any video from ${where}${last ? ` (${last})` : ''}`, 'NO_VIDEO');
    }
    return this.classifyFailure(out, where, seconds);
  }

  /** Why ffmpeg stopped before the length asked, for a clip that was kept (never with the password in it). */
  clipShortReason(run: ClipRun): string {
    const { out } = run;
    if (out.end === 'timeout') return `camera stopped sending (ffmpeg stopped after ${run.deadlineMs / 1000} s)`;
    if (out.code === 0) return 'camera stopped sending';
    const last = this.mask(lastLine(out.stderr));
    return `ffmpeg stopped${last ? `: ${last}` : ` (exit code ${String(out.code)})`}`;
  }

  async close(): Promise<void> {
    await this.children.close();
  }

  /**
   * Runs a tool through setpriv --pdeathsig (lib/child-guard.ts), so it dies with Node-RED even when Node-RED is
   * SIGKILLed, in its own process group, stopped at `timeoutMs`, on abort and on close.
   */
  private runGuarded(file: string, args: string[], timeoutMs: number, signal: AbortSignal, stdout: 'collect' | 'ignore', maxBytes: number): Promise<ChildOutcome> {
    const cmd = guardedCommand(file, args, 'TERM');
    return this.children.run({ file: cmd.file, args: cmd.args, timeoutMs, signal, stdout, maxBytes });
  }

  /**
   * A tool that could not be started: spawn's own error, or setpriv's exit 127/126 ("failed to execute") when it
   * wraps the tool. Both read the same to the user.
   */
  private launchFailure(out: ChildOutcome, tool: 'ffmpeg' | 'ffprobe', at: string): CaptureError | undefined {
    let code: string | undefined;
    if (out.end === 'spawn-failed') code = out.spawnError?.code ?? 'UNKNOWN';
    else if (out.end === 'exit' && (out.code === 127 || out.code === 126)) {
      const m = EXEC_FAILED.exec(out.stderr);
      if (m) code = m[2] === 'Permission denied' ? 'EACCES' : 'ENOENT';
    }
    if (code === undefined) return undefined;
    const install = tool === 'ffmpeg' ? 'install it (sudo apt install ffmpeg) or set its path' : 'it comes with ffmpeg (sudo apt install ffmpeg)';
    if (code === 'EACCES') {
      return new CaptureError(`${tool} at "${at}" cannot be run (permission denied): check the path, or make it executable`, 'FFMPEG_MISSING');
    }
    if (code === 'ENOENT') return new CaptureError(`${tool} was not found at "${at}": ${install}`, 'FFMPEG_MISSING');
    return new CaptureError(`${tool} could not be started: ${this.mask(out.spawnError?.message ?? 'unknown error')}`, 'FFMPEG_ERROR');
  }

  private urlWithCredentials(): string {
    return urlWithCredentials(this.settings);
  }

  private mask(s: string): string {
    return maskCredentials(s, this.settings);
  }

  private result(out: ChildOutcome, signal: AbortSignal, maxBytes: number): Buffer {
    const where = this.describeInput();
    const seconds = this.settings.timeoutMs / 1000;
    const launch = this.launchFailure(out, 'ffmpeg', this.settings.ffmpegPath);
    if (launch) throw launch;
    switch (out.end) {
      case 'timeout':
        throw new CaptureError(`no image from ${where} within ${seconds} s`, 'TIMEOUT');
      case 'aborted':
        throw abortedError(signal);
      case 'closed':
        throw new CaptureError('the capture was stopped: the camera is closing (the flow is stopping)', 'ABORTED');
      case 'too-large':
        throw new CaptureError(`the image from ${where} is larger than the limit of ${maxBytes} bytes`, 'TOO_LARGE');
      case 'exit':
      case 'spawn-failed':
        break;
    }
    if (out.code === 0) {
      if (out.stdout.length === 0) throw new CaptureError(`ffmpeg finished without an image from ${where}`, 'NO_FRAME');
      return out.stdout;
    }
    throw this.classifyFailure(out, where, seconds);
  }

  /** The exit code says only that ffmpeg failed; its stderr says why. */
  private classifyFailure(out: ChildOutcome, where: string, seconds: number): CaptureError {
    const err = out.stderr;
    const last = this.mask(lastLine(err));
    if (/401 Unauthorized|authorization failed/i.test(err)) {
      return this.settings.username
        ? new CaptureError(`${where} refused the user name or password (401 Unauthorized): check the user name and password`, 'AUTH')
        : new CaptureError(`${where} asks for a user name and password (401 Unauthorized): set them in the camera's settings`, 'AUTH');
    }
    if (/Connection refused/i.test(err)) {
      return new CaptureError(`${where} refused the connection: check the address and port, and that the camera is on`, 'UNREACHABLE');
    }
    if (/No route to host|Network is unreachable|Name or service not known|Temporary failure in name resolution|nodename nor servname/i.test(err)) {
      return new CaptureError(`${where} cannot be reached: ${last}`, 'UNREACHABLE');
    }
    if (this.settings.kind === 'v4l2' && /No such file or directory/i.test(err)) {
      return new CaptureError(`there is no video device ${this.settings.input}: check that the camera is connected (ls /dev/video*)`, 'NO_DEVICE');
    }
    if (this.settings.kind === 'v4l2' && /Device or resource busy/i.test(err)) {
      return new CaptureError(`the video device ${this.settings.input} is in use by another program`, 'DEVICE_BUSY');
    }
    if (/timed out/i.test(err)) {
      return new CaptureError(`no answer from ${where} within ${seconds} s (${last})`, 'TIMEOUT');
    }
    const how = out.code !== null ? `exit code ${out.code}` : `signal ${out.signalName ?? 'unknown'}`;
    return new CaptureError(`ffmpeg failed (${how})${last ? `: ${last}` : ''}`, 'FFMPEG_ERROR');
  }
}
