import path from 'path';

/**
 * What ffprobe says of a recording, for the capture node's clips and the recorder's segments: ffprobe's path, its
 * argv, and how its JSON answer reads. Each caller runs ffprobe its own way and decides what is good enough.
 */

/** What ffprobe says about a recorded clip: its real length and its video stream. */
export interface MediaInfo {
  /** Seconds, from the container (the MP4 index ffmpeg wrote when it finished), else from the stream. */
  durationS: number;
  /** ffmpeg's codec name: h264, hevc, mjpeg… */
  codec: string;
  width: number;
  height: number;
}

/** The first video stream as ffprobe states it: any field may be missing (NaN, undefined) in a damaged file. */
export interface ProbedStream {
  codec: string | undefined;
  width: number;
  height: number;
  /** The container's duration when it states a positive one, else the stream's; NaN when neither does. */
  durationS: number;
}

/** ffprobe beside the configured ffmpeg (/opt/ffmpeg/bin/ffmpeg -> /opt/ffmpeg/bin/ffprobe), else from PATH. */
export function ffprobePathFor(ffmpegPath: string): string {
  const base = path.basename(ffmpegPath);
  if (!/ffmpeg/i.test(base)) return 'ffprobe';
  const probe = base.replace(/ffmpeg/i, 'ffprobe');
  return ffmpegPath === base ? probe : path.join(path.dirname(ffmpegPath), probe);
}

/** ffprobe's argv for one file: the first video stream's codec, size and duration, and the container's duration, as JSON. */
export function probeArgs(file: string): string[] {
  return ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,duration:format=duration', '-of', 'json', file];
}

/**
 * Reads ffprobe's JSON answer to probeArgs: the first video stream as stated, or undefined when there is none.
 * Throws when the answer is not JSON.
 */
export function readProbeJson(json: string): ProbedStream | undefined {
  const parsed = JSON.parse(json) as { streams?: unknown; format?: { duration?: unknown } } | null;
  const streams = parsed?.streams;
  const st = Array.isArray(streams) ? (streams[0] as Record<string, unknown> | undefined) : undefined;
  if (!st || typeof st !== 'object') return undefined;
  const fromFormat = Number(parsed?.format?.duration);
  return {
    codec: typeof st.codec_name === 'string' ? st.codec_name : undefined,
    width: Number(st.width),
    height: Number(st.height),
    durationS: Number.isFinite(fromFormat) && fromFormat > 0 ? fromFormat : Number(st.duration),
  };
}

/**
 * A clip's facts from ffprobe's JSON. `undefined` when it is not JSON, has no video stream with a codec and a size,
 * or no positive duration (an MP4 that ffmpeg started and never got a frame into).
 */
export function parseProbeOutput(json: string): MediaInfo | undefined {
  let st: ProbedStream | undefined;
  try {
    st = readProbeJson(json);
  } catch {
    return undefined;
  }
  if (!st || st.codec === undefined || !(st.width > 0) || !(st.height > 0)) return undefined;
  if (!Number.isFinite(st.durationS) || st.durationS <= 0) return undefined;
  return { durationS: st.durationS, codec: st.codec, width: st.width, height: st.height };
}
