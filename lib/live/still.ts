import { spawn } from 'child_process';
import { guardedCommand } from '../util/child-guard';

/** The longest a still may take to make; ffmpeg decodes one keyframe, normally in tens of milliseconds. */
const STILL_TIMEOUT_MS = 5000;
const STILL_MAX_BYTES = 8 * 1024 * 1024;

/**
 * One JPEG of a fragment's first frame: the initialization segment and one fragment that starts with a keyframe,
 * decoded by ffmpeg from a pipe (nothing touches the disk). Rejects with ffmpeg's last words on failure.
 */
export function jpegOfFragment(ffmpegPath: string, init: Buffer, fragment: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cmd = guardedCommand(ffmpegPath, ['-hide_banner', '-loglevel', 'error', '-f', 'mp4', '-i', 'pipe:0', '-frames:v', '1', '-q:v', '4', '-f', 'image2', '-c:v', 'mjpeg', 'pipe:1'], 'KILL');
    const child = spawn(cmd.file, cmd.args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), STILL_TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => {
      size += d.length;
      if (size > STILL_MAX_BYTES) child.kill('SIGKILL');
      else out.push(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const jpeg = Buffer.concat(out);
      if (code === 0 && jpeg.length > 0) resolve(jpeg);
      else reject(new Error(`no still from the live stream: ${err.trim().split('\n').pop() || `ffmpeg exited with code ${code}`}`));
    });
    child.stdin.end(Buffer.concat([init, fragment]));
  });
}

/**
 * The live view's last frame as a JPEG, made when somebody asks (a dashboard showing the camera while it is down) and
 * kept until a newer fragment comes: one ffmpeg at a time, however many ask.
 */
export class LastFrame {
  private cached: { key: string; jpeg: Buffer } | undefined;
  private making: { key: string; promise: Promise<Buffer> } | undefined;

  constructor(private readonly ffmpegPath: string) {}

  /** `key` names the fragment (it changes when a newer one is the latest). */
  get(key: string, source: () => { init: Buffer; fragment: Buffer } | undefined): Promise<Buffer | undefined> {
    if (this.cached?.key === key) return Promise.resolve(this.cached.jpeg);
    if (this.making?.key === key) return this.making.promise;
    const s = source();
    if (!s) return Promise.resolve(undefined);
    const promise = jpegOfFragment(this.ffmpegPath, s.init, s.fragment).then((jpeg) => {
      this.cached = { key, jpeg };
      return jpeg;
    });
    const making = { key, promise };
    this.making = making;
    const done = () => {
      if (this.making === making) this.making = undefined;
    };
    promise.then(done, done);
    return promise;
  }
}
