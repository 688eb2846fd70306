import fs from 'fs';
import { Readable, Transform, TransformCallback } from 'stream';
import { ItemSource } from './types';

/**
 * A token bucket shared by every upload of one target, so a bandwidth limit holds however many run at once.
 * `bytesPerSecond` 0 means no limit.
 */
export class Bandwidth {
  private available: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.available = bytesPerSecond;
    this.last = now();
  }

  /** Told of every byte that goes out through this target's bodies (a byte budget counts them). */
  meter?: (n: number) => void;

  /** Bodies must stream through it: there is a limit to keep, or bytes to count. */
  get shaping(): boolean {
    return this.bytesPerSecond > 0 || this.meter !== undefined;
  }

  /** Milliseconds to wait before `n` bytes may go. */
  take(n: number): number {
    this.meter?.(n);
    if (this.bytesPerSecond <= 0) return 0;
    const now = this.now();
    this.available = Math.min(this.bytesPerSecond, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
    this.available -= n;
    return this.available >= 0 ? 0 : Math.ceil((-this.available / this.bytesPerSecond) * 1000);
  }
}

class Throttle extends Transform {
  private timer?: NodeJS.Timeout;
  constructor(private readonly bandwidth: Bandwidth, private readonly onBytes?: (n: number) => void) {
    super({ highWaterMark: 64 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const pass = () => {
      this.onBytes?.(chunk.length);
      cb(null, chunk);
    };
    const wait = this.bandwidth.take(chunk.length);
    if (wait === 0) pass();
    else this.timer = setTimeout(pass, wait);
  }
  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    cb(err);
  }
}

/** Splits a buffer into 64 KB chunks so a limit and progress apply to inline bodies too. */
function chunks(buf: Buffer): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= buf.length) {
        this.push(null);
        return;
      }
      const end = Math.min(buf.length, offset + 64 * 1024);
      this.push(buf.subarray(offset, end));
      offset = end;
    },
  });
}

/**
 * The item's bytes as a fresh stream (a retry must not reuse a consumed one), limited to the target's bandwidth,
 * reporting progress. Byte ranges serve multipart parts.
 */
export function openBody(
  source: ItemSource,
  bandwidth?: Bandwidth,
  onBytes?: (n: number) => void,
  range?: { start: number; end: number },
): Readable {
  let raw: Readable;
  if (range && range.end <= range.start) raw = Readable.from([]);
  else if (source.file !== undefined) raw = fs.createReadStream(source.file, range ? { start: range.start, end: range.end - 1 } : {});
  else raw = chunks(range ? source.body.subarray(range.start, range.end) : source.body);
  // A file that cannot be opened fails its stream before a client starts reading it: without a listener that error
  // would be uncaught and take Node-RED down. The stream stays failed, so its reader still sees the error.
  raw.on('error', () => undefined);
  if ((!bandwidth || !bandwidth.shaping) && !onBytes) return raw;
  const t = new Throttle(bandwidth ?? new Bandwidth(0), onBytes);
  raw.on('error', (e) => t.destroy(e));
  // An aborted upload destroys the stream it was given: the file under it must close too.
  t.on('close', () => raw.destroy());
  t.on('error', () => undefined);
  return raw.pipe(t);
}

/** A semaphore: at most `limit` uploads of one target at once, the rest wait their turn in order. */
export class Slots {
  private active = 0;
  private waiting: (() => void)[] = [];
  constructor(readonly limit: number) {}
  get inUse(): number {
    return this.active;
  }
  get queued(): number {
    return this.waiting.length;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
