import Mp4Frag from 'mp4frag';
import type { Readable } from 'stream';
import { LiveWindow } from './window';
import { RelayEvents, RelayStats, RelayTarget, RtspRelay } from './relay';
import { ViewerCount } from './viewers';
import { LastFrame } from './still';

export interface LiveSettings {
  /** Keep the live view (HLS in memory). */
  view: boolean;
  /** Fragments in the playlist (each one a keyframe interval of the camera). */
  playlistSize: number;
  relay?: RelayTarget;
}

export type LiveState = 'waiting' | 'live' | 'stalled';

export interface LiveStats {
  state: LiveState;
  viewers: number;
  /** Bits per second of the live stream, over the fragments held. */
  bitrate: number;
  /** The newest fragment's number, -1 before the first. */
  sequence: number;
  /** When the newest fragment came (ms since the epoch): the time of the last frame a still shows. */
  lastFrameAt?: number;
  mime?: string;
  relay?: RelayStats;
}

export interface LiveEvents extends RelayEvents {
  /** What the live view says changed (live, stalled, waiting). */
  state(stats: LiveStats): void;
}

/**
 * The live side of one camera: the fragmented MP4 the recording's ffmpeg writes to its stdout (a second output of
 * the same process, so the camera is read once), cut into fragments by mp4frag, held in memory as an HLS playlist for
 * any number of viewers, and handed to the RTSP relay. It reads ffmpeg's pipe whatever happens (a parse error only
 * stops the live view), so the recording never waits on it.
 */
export class LiveStream {
  readonly window: LiveWindow;
  readonly viewers: ViewerCount;
  private readonly relay: RtspRelay | undefined;
  private state: LiveState = 'waiting';
  private closed = false;
  private source: Readable | undefined;
  private readonly frame: LastFrame;

  constructor(readonly settings: LiveSettings, ffmpegPath: string, private readonly events: LiveEvents, now: () => number = Date.now) {
    this.frame = new LastFrame(ffmpegPath);
    this.window = new LiveWindow({ size: settings.playlistSize, now });
    this.viewers = new ViewerCount(() => Math.max(10_000, 3000 * this.window.targetDurationS), now);
    this.relay = settings.relay ? new RtspRelay(settings.relay, { ffmpegPath }, events) : undefined;
  }

  /** Reads one ffmpeg run's stdout until it ends. */
  attach(stdout: Readable): void {
    if (this.closed) {
      stdout.resume();
      return;
    }
    this.detach();
    this.source = stdout;
    const parser = new Mp4Frag({ readableObjectMode: true });
    parser.on('data', (d) => {
      if (this.closed || this.source !== stdout) return;
      if (d.type === 'init') {
        this.window.setInit(d.initialization, d.mime);
        this.relay?.setInit(d.initialization);
      } else {
        this.window.push(d.segment, d.duration, d.keyframe);
        this.relay?.push(d.segment, d.keyframe);
        if (this.state !== 'live') this.setState('live');
      }
    });
    parser.on('error', (e: Error) => {
      // mp4frag stops parsing but goes on taking the data: ffmpeg's pipe keeps flowing, the recording is not held up.
      if (this.source === stdout) this.events.warn(`live view: the stream from ffmpeg could not be read (${e.message}); it comes back when the camera reconnects`);
    });
    stdout.on('end', () => {
      if (this.source === stdout) this.ended();
    });
    stdout.pipe(parser);
  }

  /** The run ended (ffmpeg gone): viewers keep the last playlist, the relay waits for the next run. */
  ended(): void {
    this.source = undefined;
    this.relay?.streamEnded();
    if (!this.closed && this.state !== 'waiting') this.setState('waiting');
  }

  /** Called now and then: a stream that stopped sending without ending (a frozen camera) shows as stalled. */
  check(): void {
    if (this.state === 'live' && this.window.ageS() > Math.max(10, 3 * this.window.targetDurationS)) this.setState('stalled');
  }

  stats(): LiveStats {
    const w = this.window.stats();
    return {
      state: this.state,
      viewers: this.viewers.count(),
      bitrate: w.bitrate,
      sequence: w.sequence,
      ...(w.lastFragmentAt !== undefined ? { lastFrameAt: w.lastFragmentAt } : {}),
      ...(w.mime ? { mime: w.mime } : {}),
      ...(this.relay ? { relay: this.relay.stats() } : {}),
    };
  }

  /**
   * The last picture the camera sent, as a JPEG made from the newest keyframe in memory (so also while the camera is
   * down), with the time its fragment came; undefined before the first.
   */
  async lastFrame(): Promise<{ jpeg: Buffer; at: number; key: string } | undefined> {
    const k = this.window.lastKeyframe();
    if (!k) return undefined;
    const key = `${this.window.id}-${k.fragment.seq}`;
    const jpeg = await this.frame.get(key, () => ({ init: k.init, fragment: k.fragment.data }));
    return jpeg ? { jpeg, at: k.fragment.at, key } : undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    await this.relay?.close();
  }

  private detach(): void {
    const s = this.source;
    this.source = undefined;
    if (s) {
        s.unpipe();
      s.resume();
    }
  }

  private setState(state: LiveState): void {
    this.state = state;
    this.events.state(this.stats());
  }
}
