import { SettingsReader, text } from '../util/settings';
import { chooseLogin, maskUrlLogin, splitUrlLogin, urlLoginHint } from '../util/url-login';

/**
 * A camera as ffmpeg reads it, for the capture node's stills and clips and for the recorder: the input's settings,
 * and its login, which goes into ffmpeg's argv only and is masked in everything ffmpeg prints.
 */

export type FfmpegInputKind = 'rtsp' | 'mjpeg' | 'v4l2' | 'lavfi';

export interface FfmpegSettings {
  /** rtsp://host/path, http://host/video.mjpg, /dev/video0, or (tests, demos) lavfi:testsrc=size=320x240:rate=5. */
  input: string;
  kind: FfmpegInputKind;
  rtspTransport: 'tcp' | 'udp';
  /**
   * From the node's credentials (or, when they hold none, taken out of the URL it was typed into), put into the URL
   * only when ffmpeg is started: never in `input`, so never in the flow file, a status or a log.
   */
  username?: string;
  password?: string;
  /** 'ffmpeg' (found on PATH) unless set. */
  ffmpegPath: string;
  timeoutMs: number;
  /** ffmpeg's -q:v for the JPEG: 2 (best, biggest) to 31; 3 by default. */
  quality: number;
  /**
   * Clips: 'copy' keeps the camera's own H.264/H.265 (no re-encoding), 'h264' re-encodes with libx264 (for MJPEG and
   * raw V4L2 input, which MP4 players cannot play as they come), 'auto' (left out) copies RTSP and re-encodes the rest.
   */
  clipVideo?: 'auto' | 'copy' | 'h264';
}

const KINDS: readonly FfmpegInputKind[] = ['rtsp', 'mjpeg', 'v4l2', 'lavfi'];
export const LAVFI_PREFIX = 'lavfi:';
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
 * name and password come from `credentials`, or, when they hold none, from an RTSP or HTTP URL that carries them
 * (`rtsp://admin:pass@host/stream`): the settings keep the URL without them.
 */
export function parseFfmpegSettings(raw: Record<string, unknown>, credentials: Record<string, unknown> = {}): FfmpegSettings {
  const r = new SettingsReader(raw);
  const input = r.required('input', 'camera input', 'Input is required (an rtsp:// or http:// URL, or a device like /dev/video0)');
  // The input says what it is (rtsp://, http://, /dev/, lavfi:); Kind only decides for an input that does not, so a
  // Kind left at its default beside /dev/video0 is no reason to refuse a deploy.
  const chosen = r.choice('kind', 'Input type', KINDS, 'rtsp');
  const kind = guessInputKind(input) ?? chosen;
  const rtspTransport = r.choice('rtspTransport', 'RTSP transport', ['tcp', 'udp'] as const, 'tcp');
  const timeoutMs = Math.round(r.num('timeout', 'Timeout', 10, 0.1, 600, { unit: 'seconds' }) * 1000);
  const quality = r.num('quality', 'JPEG quality (-q:v)', 3, 2, 31, { integer: true });
  const ffmpegPath = r.str('ffmpegPath') || 'ffmpeg';
  const clipVideo = r.choice('clipVideo', 'Clip video', ['auto', 'copy', 'h264'] as const, 'auto');
  const fromUrl = kind === 'rtsp' || kind === 'mjpeg' ? splitUrlLogin(input) : { url: input };
  const { username, password } = chooseLogin(
    // A password may start or end with a space: keep it as typed.
    { username: text(credentials.username), password: typeof credentials.password === 'string' ? credentials.password : '' },
    fromUrl,
  );

  if (input === '') {
    /* not configured yet: check() says so */
  } else if (kind === 'rtsp' || kind === 'mjpeg') {
    const schemes = kind === 'rtsp' ? ['rtsp:', 'rtsps:'] : ['http:', 'https:'];
    const label = kind === 'rtsp' ? 'An RTSP' : 'An MJPEG';
    let url: URL | undefined;
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
      r.error(`${label} input is a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')} (got "${input.includes('://') ? maskUrlLogin(input) : input.replace(/^.*@/, '***@')}")`);
    } else {
      try {
        url = new URL(input);
      } catch {
        r.error(`Input "${maskUrlLogin(input)}" is not a valid URL${urlLoginHint(input)}`);
      }
    }
    if (url) {
      if (!schemes.includes(url.protocol)) {
        r.error(`${label} input is a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')} (got "${url.protocol}//")`);
      }
      if (!url.hostname) r.error(`Input "${maskUrlLogin(input)}" has no host name`);
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
    input: fromUrl.url,
    kind,
    rtspTransport,
    ...(usesCredentials && username !== '' ? { username } : {}),
    ...(usesCredentials && password !== '' ? { password } : {}),
    ffmpegPath,
    timeoutMs,
    quality,
    ...(clipVideo !== 'auto' ? { clipVideo } : {}),
  };
}

/** A text ffmpeg printed about this camera, with its password taken out in every form ffmpeg might print it. */
export function maskCredentials(s: string, settings: Pick<FfmpegSettings, 'password'>): string {
  let out = maskUrlLogin(s);
  const pw = settings.password;
  if (pw) for (const form of new Set([pw, encodeURIComponent(pw)])) out = out.split(form).join('***');
  return out;
}

/** The camera URL with its login in it, for ffmpeg's argv only (never log it). */
export function urlWithCredentials(settings: Pick<FfmpegSettings, 'input' | 'username' | 'password'>): string {
  const { input, username, password } = settings;
  if (!username) return input;
  const url = new URL(input);
  // Percent-encoded here, decoded by ffmpeg: a password with @ : / % # in it survives the trip.
  url.username = encodeURIComponent(username);
  if (password) url.password = encodeURIComponent(password);
  return url.toString();
}
