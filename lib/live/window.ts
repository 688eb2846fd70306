import { randomBytes } from 'crypto';

/** One media fragment of the live stream: a moof+mdat pair starting at a keyframe, as ffmpeg's frag_keyframe cuts it. */
export interface LiveFragment {
  /** Counts up for as long as the node runs, across camera restarts: a player never sees it go back. */
  seq: number;
  /** Seconds of media in it. */
  duration: number;
  data: Buffer;
  /** Which initialization segment it needs (a restarted camera may change its size or codec). */
  init: number;
  /** The first fragment after a restart: timestamps start over, the player must be told. */
  discontinuity: boolean;
  keyframe: boolean;
  /** Wall-clock time (ms) when its last byte arrived. */
  at: number;
}

export interface LiveWindowOptions {
  /** Fragments the playlist names. */
  size?: number;
  /** Fragments kept beyond those, for a player that asks for one just gone from the playlist. */
  extra?: number;
  now?: () => number;
}

export interface LiveWindowStats {
  /** The newest fragment's number, -1 before the first. */
  sequence: number;
  fragments: number;
  bytes: number;
  /** Bits per second over the fragments held. */
  bitrate: number;
  mime?: string;
  lastFragmentAt?: number;
}

/**
 * The live stream held in memory as a fragmented-MP4 HLS playlist: the initialization segment(s) and the last few
 * fragments, nothing on disk. Numbers count up across restarts of the camera, a restart is marked
 * EXT-X-DISCONTINUITY with its own EXT-X-MAP, so a player that keeps polling the same URL goes on playing.
 */
export class LiveWindow {
  /** Tells this window's numbers from another's (a redeploy starts them over): part of every ETag. */
  readonly id = randomBytes(4).toString('hex');
  private readonly size: number;
  private readonly extra: number;
  private readonly now: () => number;
  private readonly fragments: LiveFragment[] = [];
  private readonly inits = new Map<number, { data: Buffer; mime: string }>();
  private initId = 0;
  private nextSeq = 0;
  private pendingDiscontinuity = false;
  /** Fragments marked as a discontinuity, ever. */
  private discontinuities = 0;
  /** Only grows, as the spec asks of EXT-X-TARGETDURATION. */
  private targetDuration = 1;
  private bytes = 0;

  constructor(options: LiveWindowOptions = {}) {
    this.size = Math.max(2, Math.min(20, Math.round(options.size ?? 4)));
    this.extra = Math.max(0, Math.min(10, Math.round(options.extra ?? 2)));
    this.now = options.now ?? Date.now;
  }

  /** A stream (re)starts with this initialization segment. Fragments that follow belong to it. */
  setInit(data: Buffer, mime: string): void {
    const current = this.inits.get(this.initId);
    const same = current !== undefined && current.data.equals(data);
    if (!same) {
      this.initId++;
      this.inits.set(this.initId, { data, mime });
    }
    // A fragment came before: this is a new stream whose timestamps start over, even with the same init.
    if (this.fragments.length > 0 || this.nextSeq > 0) this.pendingDiscontinuity = true;
    this.dropUnusedInits();
  }

  push(data: Buffer, duration: number, keyframe: boolean): LiveFragment | undefined {
    if (!this.inits.has(this.initId)) return undefined;
    const f: LiveFragment = {
      seq: this.nextSeq++,
      duration: Number.isFinite(duration) && duration > 0 ? duration : 0,
      data,
      init: this.initId,
      discontinuity: this.pendingDiscontinuity,
      keyframe,
      at: this.now(),
    };
    this.pendingDiscontinuity = false;
    if (f.discontinuity) this.discontinuities++;
    this.fragments.push(f);
    this.bytes += data.length;
    // The spec's rule: each duration, rounded to the nearest second, at most the target. Rounding up instead would
    // make a 1.04 s keyframe interval a 2 s target, and players keep a multiple of it behind the live edge.
    this.targetDuration = Math.max(this.targetDuration, Math.round(f.duration));
    while (this.fragments.length > this.size + this.extra) {
      const gone = this.fragments.shift()!;
      this.bytes -= gone.data.length;
    }
    this.dropUnusedInits();
    return f;
  }

  /** The playlist, or undefined before the first fragment. */
  playlist(): string | undefined {
    const shown = this.fragments.slice(-this.size);
    if (shown.length === 0) return undefined;
    const lines = [
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      `#EXT-X-TARGETDURATION:${this.targetDuration}`,
      `#EXT-X-MEDIA-SEQUENCE:${shown[0].seq}`,
      `#EXT-X-DISCONTINUITY-SEQUENCE:${this.discontinuityCountBefore(shown[0].seq)}`,
    ];
    if (shown.every((f) => f.keyframe)) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
    let init = -1;
    for (const f of shown) {
      if (f.discontinuity && init !== -1) lines.push('#EXT-X-DISCONTINUITY');
      if (f.init !== init) {
        lines.push(`#EXT-X-MAP:URI="init-${f.init}.mp4"`);
        init = f.init;
      }
      lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(f.at - f.duration * 1000).toISOString()}`);
      lines.push(`#EXTINF:${f.duration.toFixed(3)},`, `seg-${f.seq}.m4s`);
    }
    return lines.join('\n') + '\n';
  }

  fragment(seq: number): LiveFragment | undefined {
    const first = this.fragments[0];
    if (!first) return undefined;
    return this.fragments[seq - first.seq];
  }

  init(id: number): { data: Buffer; mime: string } | undefined {
    return this.inits.get(id);
  }

  /** The newest fragment that starts with a keyframe, with its initialization segment: one picture decodes from it. */
  lastKeyframe(): { fragment: LiveFragment; init: Buffer } | undefined {
    for (let i = this.fragments.length - 1; i >= 0; i--) {
      const f = this.fragments[i];
      const init = this.inits.get(f.init);
      if (f.keyframe && init) return { fragment: f, init: init.data };
    }
    return undefined;
  }

  stats(): LiveWindowStats {
    const last = this.fragments[this.fragments.length - 1];
    const seconds = this.fragments.reduce((s, f) => s + f.duration, 0);
    const mime = this.inits.get(this.initId)?.mime;
    return {
      sequence: last ? last.seq : -1,
      fragments: this.fragments.length,
      bytes: this.bytes,
      bitrate: seconds > 0 ? Math.round((this.bytes * 8) / seconds) : 0,
      ...(mime ? { mime } : {}),
      ...(last ? { lastFragmentAt: last.at } : {}),
    };
  }

  /** Seconds since the newest fragment, Infinity before the first. */
  ageS(): number {
    const last = this.fragments[this.fragments.length - 1];
    return last ? (this.now() - last.at) / 1000 : Infinity;
  }

  get targetDurationS(): number {
    return this.targetDuration;
  }

  /**
   * EXT-X-DISCONTINUITY-SEQUENCE of the playlist starting at `seq`: the discontinuities up to and including that
   * fragment (the first fragment shown carries no tag of its own).
   */
  private discontinuityCountBefore(seq: number): number {
    return this.discontinuities - this.fragments.filter((f) => f.seq > seq && f.discontinuity).length;
  }

  private dropUnusedInits(): void {
    for (const id of this.inits.keys()) {
      if (id !== this.initId && !this.fragments.some((f) => f.init === id)) this.inits.delete(id);
    }
  }
}
