import { FfmpegSettings, urlWithCredentials } from '../media/ffmpeg-input';
import { AudioMode, VideoCodec } from './config';

/**
 * fMP4: a moov without samples up front, then a moof+mdat fragment at each keyframe and at least every 0.5 s (a camera
 * may send a keyframe only every few seconds), each flushed at once, so a file cut short (ffmpeg or the Pi killed)
 * is readable up to its last fragment. These go to the MP4 muxer inside the
 * segment muxer through -segment_format_options: a top-level -movflags does not reach it (measured: no moof at all).
 */
export const FRAGMENTED_MP4 = 'movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=500000:flush_packets=1';

export interface RecordingArgsOptions {
  source: FfmpegSettings;
  segmentSeconds: number;
  video: VideoCodec;
  audio: AudioMode;
  /** The CSV list ffmpeg appends each closed segment to. */
  listFile: string;
  /** ffmpeg's own numbered name pattern for this run's segments (…-%06d.mp4). */
  segmentPattern: string;
  /**
   * Also write the stream as fragmented MP4 to stdout, for the live view and the relay. Then the list and the pattern
   * must be plain names in ffmpeg's working folder: the tee muxer's option syntax cannot carry any path safely.
   */
  live?: boolean;
}

/** The live output: a fragment at each keyframe, so each HLS segment starts with one and plays on its own. */
export const LIVE_MP4 = 'movflags=+frag_keyframe+empty_moov+default_base_moof';

/** The input part: how to reach the camera, with the login put into the URL only here (never log the result). */
function inputArgs(s: FfmpegSettings): string[] {
  const timeoutUs = String(Math.round(s.timeoutMs * 1000));
  switch (s.kind) {
    case 'rtsp':
      // -timeout: the RTSP socket timeout in µs (ffmpeg 5.1). Without it a camera that stalls hangs ffmpeg for good.
      return ['-rtsp_transport', s.rtspTransport, '-timeout', timeoutUs, '-i', urlWithCredentials(s)];
    case 'mjpeg':
      // MJPEG over HTTP carries no timestamps: take the arrival time, so durations are real seconds.
      return ['-rw_timeout', timeoutUs, '-use_wallclock_as_timestamps', '1', '-i', urlWithCredentials(s)];
    case 'v4l2':
      return ['-f', 'v4l2', '-i', s.input];
    case 'lavfi':
      // A filter graph runs as fast as the CPU allows unless read at its own rate (-re), like a camera.
      return ['-re', '-f', 'lavfi', '-i', s.input.startsWith('lavfi:') ? s.input.slice('lavfi:'.length) : s.input];
  }
}

function plainName(name: string): string {
  if (!/^[A-Za-z0-9_.%-]+$/.test(name)) throw new Error(`not a plain file name for the tee muxer: ${name}`);
  return name;
}

/** ffmpeg's full argv for one continuous recording run. */
export function recordingArgs(o: RecordingArgsOptions): string[] {
  const seg = String(o.segmentSeconds);
  const args = ['-nostdin', '-y', '-hide_banner', '-loglevel', 'error', ...inputArgs(o.source), '-map', '0:v:0'];
  if (o.video === 'copy') {
    args.push('-c:v', 'copy');
  } else {
    // Re-encoding: put a keyframe exactly at every cut, so segments are as long as asked.
    // With a live view, a keyframe at least every second (an equal share of the segment), so the live view's
    // fragments, each starting at one, stay short: latency is about three of them.
    const every = o.live ? o.segmentSeconds / Math.ceil(o.segmentSeconds) : o.segmentSeconds;
    args.push('-c:v', o.video, '-pix_fmt', 'yuv420p', '-force_key_frames', `expr:gte(t,n_forced*${every})`);
    if (o.video === 'libx264') args.push('-preset', 'ultrafast', '-tune', 'zerolatency');
  }
  if (o.audio === 'none') args.push('-an');
  else args.push('-map', '0:a:0?', '-c:a', o.audio === 'copy' ? 'copy' : 'aac');
  if (o.live) {
    // One encoding (or copy) feeds both outputs: the tee muxer. A slave that fails (Node-RED stopped reading) is
    // dropped and the recording goes on. Encoders must put the codec's headers up front, as MP4 wants, since the tee
    // cannot ask for it on their behalf. Escapes: one level for the tee, one for its options, one for the segment
    // muxer's own options.
    if (o.video !== 'copy') args.push('-flags:v', '+global_header');
    const recording = [
      'f=segment',
      `segment_time=${seg}`,
      'segment_format=mp4',
      `segment_format_options=${FRAGMENTED_MP4.replace(/:/g, '\\\\:')}`,
      'reset_timestamps=1',
      `segment_list=${plainName(o.listFile)}`,
      'segment_list_type=csv',
    ].join(':');
    const live = ['f=mp4', LIVE_MP4, 'flush_packets=1', 'onfail=ignore'].join(':');
    args.push('-f', 'tee', `[${recording}]${plainName(o.segmentPattern)}|[${live}]pipe:1`);
    return args;
  }
  args.push(
    '-f', 'segment',
    '-segment_time', seg,
    '-segment_format', 'mp4',
    '-segment_format_options', FRAGMENTED_MP4,
    '-reset_timestamps', '1',
    '-segment_list', o.listFile,
    '-segment_list_type', 'csv',
    o.segmentPattern,
  );
  return args;
}
