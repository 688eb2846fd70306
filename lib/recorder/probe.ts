import { execFile } from 'child_process';

export interface VideoInfo {
  durationS: number;
  codec: string;
  width: number;
  height: number;
}

const PROBE_TIMEOUT_MS = 20_000;

/** Runs ffprobe on a file and resolves with its stdout, or rejects with the reason (stderr's last line). */
function run(ffprobe: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ffprobe, args, { timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return reject(new Error(`ffprobe was not found at "${ffprobe}": it comes with ffmpeg (sudo apt install ffmpeg)`));
        const last = String(stderr).trim().split('\n').pop() ?? '';
        return reject(new Error(last || err.message));
      }
      resolve(String(stdout));
    });
  });
}

/**
 * The first video stream of a recording: codec, size and duration. A fragmented MP4 cut short is read up to its last
 * complete fragment. Rejects when the file holds no readable video at all.
 */
export async function probeVideo(ffprobe: string, file: string): Promise<VideoInfo> {
  const out = await run(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,duration:format=duration', '-of', 'json', file]);
  let parsed: { streams?: Array<Record<string, unknown>>; format?: Record<string, unknown> };
  try {
    parsed = JSON.parse(out) as typeof parsed;
  } catch {
    throw new Error('ffprobe gave no readable answer');
  }
  const st = parsed.streams?.[0];
  if (!st) throw new Error('no video stream in the file');
  const width = Number(st.width);
  const height = Number(st.height);
  let durationS = Number(parsed.format?.duration ?? st.duration);
  if (!Number.isFinite(durationS) || durationS <= 0) durationS = Number(st.duration);
  if (!Number.isFinite(durationS) || durationS <= 0) durationS = await durationFromPackets(ffprobe, file);
  if (!(durationS > 0)) throw new Error('no video frames in the file');
  return { durationS: Math.round(durationS * 1000) / 1000, codec: String(st.codec_name ?? 'unknown'), width: width > 0 ? width : 0, height: height > 0 ? height : 0 };
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
