/** What ffprobe says about a recorded clip: its real length and its video stream. */
export interface MediaInfo {
  /** Seconds, from the container (the MP4 index ffmpeg wrote when it finished). */
  durationS: number;
  /** ffmpeg's codec name: h264, hevc, mjpeg… */
  codec: string;
  width: number;
  height: number;
}

/** ffprobe's argv for one file: the first video stream's codec and size, and the container's duration, as JSON. */
export function probeArgs(file: string): string[] {
  return ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'format=duration:stream=codec_name,width,height', '-of', 'json', file];
}

/**
 * Reads ffprobe's JSON. `undefined` when there is no video stream, or no positive duration (an MP4 that ffmpeg
 * started and never got a frame into).
 */
export function parseProbeOutput(json: string): MediaInfo | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const root = (parsed ?? {}) as { streams?: unknown; format?: { duration?: unknown } };
  const streams = Array.isArray(root.streams) ? (root.streams as Array<Record<string, unknown>>) : [];
  const video = streams.find((s) => typeof s.codec_name === 'string' && Number(s.width) > 0 && Number(s.height) > 0);
  const durationS = Number(root.format?.duration);
  if (!video || !Number.isFinite(durationS) || durationS <= 0) return undefined;
  return { durationS, codec: String(video.codec_name), width: Number(video.width), height: Number(video.height) };
}
