import { execFile } from 'child_process';
import { MediaInfo, ProbedStream, probeArgs, readProbeJson } from './ffprobe';

export type VideoInfo = MediaInfo;

const PROBE_TIMEOUT_MS = 20_000;

/**
 * ffprobe ran and found no readable video in the file: the file may be set aside. Any other failure (ffprobe missing,
 * not runnable, too slow on a busy Pi) says nothing about the file, which must then be tried again later.
 */
export class NoVideoError extends Error {}

/** Runs ffprobe on a file and resolves with its stdout, or rejects with the reason (stderr's last line). */
function run(ffprobe: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ffprobe, args, { timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code as unknown;
        if (code === 'ENOENT') return reject(new Error(`ffprobe was not found at "${ffprobe}": it comes with ffmpeg (sudo apt install ffmpeg)`));
        if (code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(new NoVideoError('ffprobe said far more about it than a segment holds'));
        if (typeof code === 'string') return reject(new Error(`ffprobe at "${ffprobe}" could not be run: ${err.message}`));
        if (err.killed) return reject(new Error(`ffprobe did not finish within ${PROBE_TIMEOUT_MS / 1000} s`));
        if (err.signal) return reject(new Error(`ffprobe was stopped by ${err.signal}`));
        const last = String(stderr).trim().split('\n').pop() ?? '';
        return reject(new NoVideoError(last || err.message));
      }
      resolve(String(stdout));
    });
  });
}

/**
 * The first video stream of a recording: codec, size and duration. A fragmented MP4 cut short is read up to its last
 * complete fragment. Rejects with a NoVideoError when the file holds no readable video at all.
 */
export async function probeVideo(ffprobe: string, file: string): Promise<VideoInfo> {
  const out = await run(ffprobe, probeArgs(file));
  let st: ProbedStream | undefined;
  try {
    st = readProbeJson(out);
  } catch {
    throw new NoVideoError('ffprobe gave no readable answer');
  }
  if (!st) throw new NoVideoError('no video stream in the file');
  let durationS = st.durationS;
  if (!Number.isFinite(durationS) || durationS <= 0) durationS = await durationFromPackets(ffprobe, file);
  if (!(durationS > 0)) throw new NoVideoError('no video frames in the file');
  return { durationS: Math.round(durationS * 1000) / 1000, codec: st.codec ?? 'unknown', width: st.width > 0 ? st.width : 0, height: st.height > 0 ? st.height : 0 };
}

/** When the container states no duration: the end of the last video packet. */
async function durationFromPackets(ffprobe: string, file: string): Promise<number> {
  const out = await run(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,duration_time', '-of', 'csv=p=0', file]);
  let end = 0;
  for (const line of out.split('\n')) {
    const [pts, dur] = line.split(',').map(Number);
    if (Number.isFinite(pts)) end = Math.max(end, pts + (Number.isFinite(dur) ? dur : 0));
  }
  return end;
}
