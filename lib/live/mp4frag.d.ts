// The part of the mp4frag package (MIT, no types of its own) the live view uses.
declare module 'mp4frag' {
  import { Transform } from 'stream';

  interface Mp4FragInit {
    type: 'init';
    initialization: Buffer;
    mime: string;
  }
  interface Mp4FragSegment {
    type: 'segment';
    segment: Buffer;
    sequence: number;
    /** Seconds. */
    duration: number;
    keyframe: boolean;
  }

  class Mp4Frag extends Transform {
    constructor(options?: { readableObjectMode?: boolean; segmentCount?: number });
    on(event: 'data', listener: (data: Mp4FragInit | Mp4FragSegment) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
    reset(): void;
  }
  export = Mp4Frag;
}
