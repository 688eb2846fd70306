import { CommandSource, parseCommandSettings } from './command';
import { FfmpegSource } from './ffmpeg';
import { parseFfmpegSettings } from '../../media/ffmpeg-input';
import { HttpCameraSource, parseHttpCameraSettings } from './http';
import { TestPatternSource } from './test-pattern';
import { CaptureError, CaptureSource } from '../types';
import { text } from '../../util/settings';

export const SOURCE_KINDS = ['auto', 'test-pattern', 'http', 'reolink', 'ffmpeg', 'command', 'message'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The image comes in msg.payload from another node; there is nothing to fetch. */
export class MessageSource implements CaptureSource {
  readonly kind = 'message';
  async grab(): Promise<Buffer> {
    throw new CaptureError('no image in msg.payload: this capture node takes its image from the message (a Buffer)', 'NO_IMAGE');
  }
  async close(): Promise<void> {
    /* nothing held */
  }
}

/** Builds the configured source once, at deploy; a bad setting is an Error listing every problem. */
export function createSource(kind: string, raw: Record<string, unknown>, credentials: Record<string, unknown>, camera: string): CaptureSource {
  switch (kind as SourceKind) {
    case 'auto':
      // For shipped flows driven by environment variables: a snapshot URL when one is set, else the test pattern.
      return createSource(text(raw.url) !== '' ? 'http' : 'test-pattern', raw, credentials, camera);
    case 'test-pattern': {
      const width = Number(text(raw.patternWidth) || 640);
      const height = Number(text(raw.patternHeight) || 360);
      if (!Number.isInteger(width) || !Number.isInteger(height) || width < 16 || height < 16 || width > 4096 || height > 4096) {
        throw new Error(`Test pattern size must be whole numbers from 16 to 4096 (got ${String(raw.patternWidth)}x${String(raw.patternHeight)})`);
      }
      return new TestPatternSource({ width, height, camera });
    }
    case 'http':
    case 'reolink':
      return new HttpCameraSource(parseHttpCameraSettings({ ...raw, preset: kind === 'reolink' ? 'reolink' : raw.preset }, credentials));
    case 'ffmpeg':
      return new FfmpegSource(parseFfmpegSettings(raw, credentials));
    case 'command':
      return new CommandSource(parseCommandSettings(raw));
    case 'message':
      return new MessageSource();
    default:
      throw new Error(`Source must be one of ${SOURCE_KINDS.join(', ')} (got "${kind}")`);
  }
}
