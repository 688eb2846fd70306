import type { ImageInfo } from './image-info';
import { CaptureError } from './types';

/**
 * Images sized for the link: a still resized to fit a largest size, re-encoded as JPEG at a quality, or as WebP,
 * before it is written, so that the file the queue holds is the file that is uploaded.
 *
 * Done with sharp (libvips), loaded only when a capture node has a transform set: its prebuilt binaries come as npm
 * packages for the Pi's 32- and 64-bit Linux (@img/sharp-linux-arm, -arm64: about 17-20 MB installed, no compiler).
 * A 12 MP JPEG shrinks on load (libvips decodes it at 1/2, 1/4 or 1/8 scale when the target is that much smaller), so
 * resizing one takes about 85 MB of peak RSS for the whole process and runs on libvips' threads, not on the event
 * loop. One transform runs at a time in the process, and libvips' operation cache (which would keep recent images
 * for nothing: each capture is new) is off, so memory stays bounded however many capture nodes there are.
 */
export interface TransformSettings {
  /** Largest width and height in pixels (0: no limit); the image keeps its proportions and is never enlarged. */
  maxWidth: number;
  maxHeight: number;
  /** keep: the camera's format (re-encoded only when resized); jpeg or webp: always re-encoded. */
  format: 'keep' | 'jpeg' | 'webp';
  /** JPEG and WebP quality, 1-100. */
  quality: number;
  /** Keep the camera's image on disk too (below the images folder's `originals/`); only the transformed one is sent. */
  keepOriginal: boolean;
}

export const NO_TRANSFORM: TransformSettings = { maxWidth: 0, maxHeight: 0, format: 'keep', quality: 80, keepOriginal: false };

export function transformIsSet(s: TransformSettings | undefined): s is TransformSettings {
  return !!s && (s.maxWidth > 0 || s.maxHeight > 0 || s.format !== 'keep');
}

export interface TransformedImage {
  data: Buffer;
  width: number;
  height: number;
  contentType: string;
  ext: string;
}

/** Images larger than this many pixels are refused rather than decoded (a 12 MP camera is 12e6). */
const MAX_INPUT_PIXELS = 100e6;

type SharpModule = typeof import('sharp');
let sharpModule: SharpModule | undefined;
let sharpError: Error | undefined;

/** sharp, loaded on first use; a CaptureError a person can act on when it did not install here. */
export function loadSharp(): SharpModule {
  if (sharpModule) return sharpModule;
  if (!sharpError) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      sharpModule = require('sharp') as SharpModule;
      sharpModule.cache(false);
      return sharpModule;
    } catch (e) {
      sharpError = e as Error;
    }
  }
  throw new CaptureError(
    `resizing and re-encoding need the sharp package, which cannot be loaded here (${String(sharpError!.message).split('\n')[0]}): reinstall this package, or turn the transform off`,
    'TRANSFORM_UNAVAILABLE',
  );
}

/** One transform at a time in the process: the memory of one decoded image at most. */
let turn: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(job: () => Promise<T>): Promise<T> {
  const run = turn.then(job, job);
  turn = run.catch(() => undefined);
  return run;
}

/** Whether the image already fits the largest size. */
function fits(info: { width: number; height: number }, s: TransformSettings): boolean {
  return (s.maxWidth <= 0 || info.width <= s.maxWidth) && (s.maxHeight <= 0 || info.height <= s.maxHeight);
}

/**
 * The image as it should be uploaded, or undefined when it is fine as it is (format kept and it fits already: no
 * re-encoding, no loss). Runs off the event loop; aborts between steps when `signal` does.
 */
export async function transformImage(data: Buffer, info: ImageInfo, s: TransformSettings, signal?: AbortSignal): Promise<TransformedImage | undefined> {
  if (!transformIsSet(s)) return undefined;
  if (s.format === 'keep' && fits(info, s)) return undefined;
  const sharp = loadSharp();
  return oneAtATime(async () => {
    if (signal?.aborted) throw new CaptureError('stopped: the capture was cancelled', 'ABORTED');
    // rotate(): applies the EXIF orientation, which re-encoding drops with the rest of the metadata (GPS included).
    let img = sharp(data, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' }).rotate();
    if (s.maxWidth > 0 || s.maxHeight > 0) {
      img = img.resize(s.maxWidth || null, s.maxHeight || null, { fit: 'inside', withoutEnlargement: true });
    }
    const format = s.format === 'keep' ? info.format : s.format;
    if (format === 'webp') img = img.webp({ quality: s.quality });
    else if (format === 'png') img = img.png({ compressionLevel: 9 });
    else img = img.jpeg({ quality: s.quality, mozjpeg: false });
    let out: { data: Buffer; info: { width: number; height: number } };
    try {
      out = await img.toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new CaptureError(`could not resize or re-encode the image: ${(e as Error).message}`, 'TRANSFORM_FAILED');
    }
    const types = { jpeg: ['image/jpeg', 'jpg'], png: ['image/png', 'png'], webp: ['image/webp', 'webp'] } as const;
    const [contentType, ext] = types[format];
    return { data: out.data, width: out.info.width, height: out.info.height, contentType, ext };
  });
}
