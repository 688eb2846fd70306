import { maskUrlLogin } from '../util/url-login';

/** Why a recording ended, short enough for a node status ("reconnecting in 8 s: 401 Unauthorized"). */
export interface EndReason {
  text: string;
  code:
    | 'AUTH'
    | 'FORBIDDEN'
    | 'NOT_FOUND'
    | 'REFUSED'
    | 'TIMEOUT'
    | 'UNREACHABLE'
    | 'DNS'
    | 'NO_DEVICE'
    | 'DEVICE_BUSY'
    | 'BAD_STREAM'
    | 'UNSUPPORTED'
    | 'DISK_FULL'
    | 'ENDED'
    | 'KILLED'
    | 'FFMPEG_MISSING'
    | 'FFMPEG_ERROR';
  /** Waiting will not fix it: a setting or the system must change (the status turns red, retries go on slowly). */
  fatal: boolean;
}

export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of ffmpeg's stderr. */
  stderr: string;
  spawnError?: NodeJS.ErrnoException;
}

/** setpriv's complaint (lib/child-guard.ts, exit 127 or 126) when the program it wraps cannot be run. */
const EXEC_FAILED = /failed to execute (.*): (No such file or directory|Permission denied)/;

/** The last few non-empty lines of a program's stderr. */
function lastLines(stderr: string, n = 3): string[] {
  return stderr
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-n);
}

const RULES: Array<[RegExp, EndReason['code'], string, boolean]> = [
  [/401 Unauthorized|authorization failed|Unauthorized/i, 'AUTH', '401 Unauthorized', false],
  [/403 Forbidden/i, 'FORBIDDEN', '403 Forbidden', false],
  [/404 Not Found|Server returned 404|method DESCRIBE failed: 404/i, 'NOT_FOUND', '404 Not Found: check the stream path', false],
  [/Connection refused/i, 'REFUSED', 'connection refused', false],
  [/Connection timed out|timed out|Operation timed out/i, 'TIMEOUT', 'timeout: no answer from the camera', false],
  [/No route to host|Network is unreachable|Host is unreachable/i, 'UNREACHABLE', 'camera unreachable (no route to host)', false],
  [/Name or service not known|Temporary failure in name resolution|nodename nor servname|Failed to resolve hostname/i, 'DNS', 'host name not found', false],
  [/Device or resource busy/i, 'DEVICE_BUSY', 'video device busy (in use by another program)', false],
  [/No space left on device/i, 'DISK_FULL', 'disk full', true],
  [/not currently supported in container|Could not find tag for codec|codec not currently supported/i, 'UNSUPPORTED', 'a stream cannot go into MP4 as it is: set Audio to "none" or "AAC", or Video to "H.264"', true],
  [/Unknown encoder|Encoder not found/i, 'UNSUPPORTED', 'this ffmpeg lacks the chosen encoder', true],
  [/Invalid data found when processing input/i, 'BAD_STREAM', 'no valid stream (not RTSP, or no answer)', false],
  [/received signal (\d+)/i, 'KILLED', 'ffmpeg was stopped by a signal from outside', false],
];

/**
 * Reads why ffmpeg stopped from its exit and the last lines of its stderr: the exit code only says that it failed.
 * `mask` removes the password in every form ffmpeg may print it.
 */
export function describeEnd(end: ProcessEnd, opts: { input?: string; kind?: string; mask?: (s: string) => string } = {}): EndReason {
  const mask = opts.mask ?? maskUrlLogin;
  // ffmpeg that cannot be run shows as spawn's own error, or as setpriv's when setpriv wraps it: both read the same.
  const execFailed = end.code === 127 || end.code === 126 ? EXEC_FAILED.exec(end.stderr) : null;
  const cannotRun = end.spawnError?.code ?? (execFailed ? (execFailed[2] === 'Permission denied' ? 'EACCES' : 'ENOENT') : undefined);
  const at = (end.spawnError as { path?: string } | undefined)?.path ?? execFailed?.[1] ?? 'ffmpeg';
  if (cannotRun === 'ENOENT') return { code: 'FFMPEG_MISSING', text: `ffmpeg not found at "${at}": install it (sudo apt install ffmpeg) or set its path`, fatal: true };
  if (cannotRun === 'EACCES') return { code: 'FFMPEG_MISSING', text: `ffmpeg at "${at}" cannot be run (permission denied): check the path`, fatal: true };
  if (end.spawnError) return { code: 'FFMPEG_ERROR', text: `ffmpeg could not be started: ${mask(end.spawnError.message)}`, fatal: true };
  const tail = lastLines(end.stderr, 6).join('\n');
  if (opts.kind === 'v4l2' && /No such file or directory/i.test(tail)) {
    return { code: 'NO_DEVICE', text: `no video device ${opts.input ?? ''}: is the camera connected?`.replace(' :', ':'), fatal: false };
  }
  for (const [re, code, text, fatal] of RULES) if (re.test(tail)) return { code, text, fatal };
  if (end.signal) return { code: 'KILLED', text: `ffmpeg was killed (${end.signal})`, fatal: false };
  // ffmpeg ends with 255 after a SIGTERM or SIGINT it got from someone else (saying so only at -loglevel info).
  if (end.code === 255 && tail === '') return { code: 'KILLED', text: 'ffmpeg was stopped by a signal from outside', fatal: false };
  if (end.code === 0) return { code: 'ENDED', text: 'the stream ended', fatal: false };
  const last = mask(lastLines(end.stderr, 1)[0] ?? '');
  const shortLast = last.length > 120 ? `${last.slice(0, 120)}…` : last;
  return { code: 'FFMPEG_ERROR', text: `ffmpeg exited with code ${end.code}${shortLast ? `: ${shortLast}` : ''}`, fatal: false };
}
