import { SettingsReader, text } from '../settings';
import { abortedError, ChildOutcome, ChildRunner, lastLine } from './child-run';
import { CaptureError, CaptureSource } from './types';

export type FfmpegInputKind = 'rtsp' | 'mjpeg' | 'v4l2' | 'lavfi';

export interface FfmpegSettings {
  /** rtsp://host/path, http://host/video.mjpg, /dev/video0, or (tests, demos) lavfi:testsrc=size=320x240:rate=5. */
  input: string;
  kind: FfmpegInputKind;
  rtspTransport: 'tcp' | 'udp';
  /** From the node's credentials, put into the URL only when ffmpeg is started: never in the flow file. */
  username?: string;
  password?: string;
  /** 'ffmpeg' (found on PATH) unless set. */
  ffmpegPath: string;
  timeoutMs: number;
  /** ffmpeg's -q:v for the JPEG: 2 (best, biggest) to 31; 3 by default. */
  quality: number;
}

const KINDS: readonly FfmpegInputKind[] = ['rtsp', 'mjpeg', 'v4l2', 'lavfi'];
const LAVFI_PREFIX = 'lavfi:';
/**
 * ffmpeg's own socket timeout is a backstop, set past our deadline: our kill timer decides (and says TIMEOUT), while
 * an ffmpeg whose Node-RED died under it still gives up by itself instead of hanging on a silent camera forever.
 */
const SOCKET_BACKSTOP_MS = 1000;

/** What kind of input a string looks like, or undefined. */
export function guessInputKind(input: string): FfmpegInputKind | undefined {
  if (/^rtsps?:\/\//i.test(input)) return 'rtsp';
  if (/^https?:\/\//i.test(input)) return 'mjpeg';
  if (input.startsWith('/dev/')) return 'v4l2';
  if (input.startsWith(LAVFI_PREFIX)) return 'lavfi';
  return undefined;
}

/**
 * Reads an ffmpeg camera's settings and credentials once, at deploy, listing every problem in one Error. The user
 * name and password come only from `credentials`; a URL that carries them itself is refused, so they never sit in the
 * flow file.
 */
export function parseFfmpegSettings(raw: Record<string, unknown>, credentials: Record<string, unknown> = {}): FfmpegSettings {
  const r = new SettingsReader(raw);
  const input = r.str('input');
  // The input says what it is (rtsp://, http://, /dev/, lavfi:); Kind only decides for an input that does not, so a
  // Kind left at its default beside /dev/video0 is no reason to refuse a deploy.
  const chosen = r.choice('kind', 'Input type', KINDS, 'rtsp');
  const kind = guessInputKind(input) ?? chosen;
  const rtspTransport = r.choice('rtspTransport', 'RTSP transport', ['tcp', 'udp'] as const, 'tcp');
  const timeoutMs = Math.round(r.num('timeout', 'Timeout', 10, 0.1, 600, { unit: 'seconds' }) * 1000);
  const quality = r.num('quality', 'JPEG quality (-q:v)', 3, 2, 31, { integer: true });
  const ffmpegPath = r.str('ffmpegPath') || 'ffmpeg';
  const username = text(credentials.username);
  // A password may start or end with a space: keep it as typed.
  const password = typeof credentials.password === 'string' ? credentials.password : '';

  if (input === '') r.error('Input is required (an rtsp:// or http:// URL, or a device like /dev/video0)');
  else if (kind === 'rtsp' || kind === 'mjpeg') {
    const schemes = kind === 'rtsp' ? ['rtsp:', 'rtsps:'] : ['http:', 'https:'];
    const label = kind === 'rtsp' ? 'An RTSP' : 'An MJPEG';
    let url: URL | undefined;
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
      r.error(`${label} input is a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')} (got "${maskUrlCredentials(input)}")`);
    } else {
      try {
        url = new URL(input);
      } catch {
        r.error(`Input "${maskUrlCredentials(input)}" is not a valid URL`);
      }
    }
    if (url) {
      if (!schemes.includes(url.protocol)) {
        r.error(`${label} input is a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')} (got "${url.protocol}//")`);
      }
      if (url.username || url.password) {
        r.error('The URL must not contain a user name or password: put them in the User and Password fields, which Node-RED keeps out of the flow file');
      }
      if (!url.hostname) r.error(`Input "${maskUrlCredentials(input)}" has no host name`);
    }
    if (password !== '' && username === '') r.error('A password needs a user name');
  } else if (kind === 'v4l2') {
    if (!/^\/dev\/\S+$/.test(input)) r.error(`A V4L2 input is a device path like /dev/video0 (got "${input}")`);
  } else if (kind === 'lavfi') {
    const graph = input.startsWith(LAVFI_PREFIX) ? input.slice(LAVFI_PREFIX.length) : input;
    if (graph.trim() === '') r.error('A lavfi input needs a filter graph, like lavfi:testsrc=size=320x240:rate=5');
  }
  if (/[\0\r\n]/.test(ffmpegPath)) r.error('The ffmpeg path must be one line');

  r.check();
  const usesCredentials = kind === 'rtsp' || kind === 'mjpeg';
  return {
    input,
    kind,
    rtspTransport,
    ...(usesCredentials && username !== '' ? { username } : {}),
    ...(usesCredentials && password !== '' ? { password } : {}),
    ffmpegPath,
    timeoutMs,
    quality,
  };
}

/** Replaces the password in `user:password@` of every URL in a text. */
export function maskUrlCredentials(s: string): string {
  return s.replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*):[^\s/?#@]*@/gi, '$1$2:***@');
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
    return maskUrlCredentials(this.settings.input);
  }

  /** ffmpeg's argv. It holds the password when there is one (ffmpeg takes it nowhere else): never log it. */
  ffmpegArgs(): string[] {
    const s = this.settings;
    const args = ['-nostdin', '-y', '-hide_banner', '-loglevel', 'error'];
    const socketTimeoutUs = String((s.timeoutMs + SOCKET_BACKSTOP_MS) * 1000);
    switch (s.kind) {
      case 'rtsp':
        // -timeout is the RTSP socket timeout in microseconds (ffmpeg 5.1; -stimeout is gone). -probesize 32 saves ~2.5 s.
        args.push('-rtsp_transport', s.rtspTransport, '-timeout', socketTimeoutUs, '-probesize', '32', '-i', this.urlWithCredentials());
        break;
      case 'mjpeg':
        args.push('-rw_timeout', socketTimeoutUs, '-probesize', '32', '-i', this.urlWithCredentials());
        break;
      case 'v4l2':
        args.push('-f', 'v4l2', '-i', s.input);
        break;
      case 'lavfi':
        args.push('-f', 'lavfi', '-i', s.input.startsWith(LAVFI_PREFIX) ? s.input.slice(LAVFI_PREFIX.length) : s.input);
        break;
    }
    args.push('-an', '-frames:v', '1', '-q:v', String(s.quality), '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1');
    return args;
  }

  async grab(signal: AbortSignal, maxBytes: number): Promise<Buffer> {
    if (this.children.closed) throw new CaptureError('the camera is closed (the flow is stopping)', 'CLOSED');
    if (signal.aborted) throw abortedError(signal);
    const out = await this.children.run({
      file: this.settings.ffmpegPath,
      args: this.ffmpegArgs(),
      timeoutMs: this.settings.timeoutMs,
      signal,
      stdout: 'collect',
      maxBytes,
    });
    return this.result(out, signal, maxBytes);
  }

  async close(): Promise<void> {
    await this.children.close();
  }

  private urlWithCredentials(): string {
    const { input, username, password } = this.settings;
    if (!username) return input;
    const url = new URL(input);
    // Percent-encoded here, decoded by ffmpeg: a password with @ : / % # in it survives the trip.
    url.username = encodeURIComponent(username);
    if (password) url.password = encodeURIComponent(password);
    return url.toString();
  }

  /** Removes the password from a text in every form ffmpeg might print it. */
  private mask(s: string): string {
    let out = maskUrlCredentials(s);
    const pw = this.settings.password;
    if (pw) {
      for (const form of new Set([pw, encodeURIComponent(pw)])) out = out.split(form).join('***');
    }
    return out;
  }

  private result(out: ChildOutcome, signal: AbortSignal, maxBytes: number): Buffer {
    const where = this.describeInput();
    const seconds = this.settings.timeoutMs / 1000;
    switch (out.end) {
      case 'spawn-failed': {
        const path = this.settings.ffmpegPath;
        if (out.spawnError?.code === 'EACCES') {
          throw new CaptureError(`ffmpeg at "${path}" cannot be run (permission denied): check the path, or make it executable`, 'FFMPEG_MISSING');
        }
        if (out.spawnError?.code === 'ENOENT') {
          throw new CaptureError(`ffmpeg was not found at "${path}": install it (sudo apt install ffmpeg) or set its path`, 'FFMPEG_MISSING');
        }
        throw new CaptureError(`ffmpeg could not be started: ${this.mask(out.spawnError?.message ?? 'unknown error')}`, 'FFMPEG_ERROR');
      }
      case 'timeout':
        throw new CaptureError(`no image from ${where} within ${seconds} s`, 'TIMEOUT');
      case 'aborted':
        throw abortedError(signal);
      case 'closed':
        throw new CaptureError('the capture was stopped: the camera is closing (the flow is stopping)', 'ABORTED');
      case 'too-large':
        throw new CaptureError(`the image from ${where} is larger than the limit of ${maxBytes} bytes`, 'TOO_LARGE');
      case 'exit':
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
        ? new CaptureError(`${where} refused the user name or password (401 Unauthorized)`, 'AUTH')
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
