import path from 'path';
import { validateKeyTemplate } from '../message/object-key';
import { SettingsReader } from '../util/settings';
import { DEFAULT_NAME_TEMPLATE } from './still';
import { ClipLimits } from './clip';
import { parseMetadataSetting } from '../message/metadata';
import { TriggerOptions } from './trigger';
import { NO_TRANSFORM, TransformSettings, transformIsSet } from './transform';

export interface CaptureConfig {
  camera: string;
  /** The source kind (createSource in ./sources reads its own settings). */
  source: string;
  imagesFolder: string;
  nameTemplate: string;
  minFreeBytes: number;
  maxBytes: number;
  timeoutMs: number;
  /** Put the image Buffer in msg.payload (for preview nodes) instead of the file path. */
  includeBuffer: boolean;
  trigger: TriggerOptions;
  /** 'still': one image per trigger; 'clip': an MP4 of clip.lengthS seconds (ffmpeg source only). */
  mode: 'still' | 'clip';
  clip: ClipLimits;
  /** The node's metadata rows, put into msg.uplink.metadata (msg.metadata adds to them per trigger). */
  metadata: Record<string, string>;
  /** Resize or re-encode stills before they are written (absent: as the camera gives them). */
  transform?: TransformSettings;
}

/** Reads the capture node's settings once, at deploy, listing every problem. */
export function parseCaptureConfig(raw: Record<string, unknown>, userDir: string): CaptureConfig {
  const r = new SettingsReader(raw);
  const camera = r.str('camera') || 'camera';
  if (camera.length > 100) r.error('Camera name must be at most 100 characters');
  const folderText = r.str('folder');
  const imagesFolder = path.resolve(userDir, folderText || 'uplink/images');
  const nameTemplate = r.str('nameTemplate') || DEFAULT_NAME_TEMPLATE;
  try {
    validateKeyTemplate(nameTemplate);
  } catch (e) {
    r.error(`File name: ${(e as Error).message}`);
  }
  const minFreeMB = r.num('minFreeMB', 'Keep free', 200, 0, 1024 * 1024);
  const maxMB = r.num('maxMB', 'Max image size', 20, 0.01, 1024);
  const timeoutS = r.num('timeout', 'Timeout', 10, 1, 120, { unit: 'seconds' });
  const minIntervalS = r.num('minInterval', 'Minimum interval', 0, 0, 3600, { unit: 'seconds' });
  const edge = r.choice('edge', 'GPIO edge', ['rising', 'both'] as const, 'rising');
  const overlap = r.choice('overlap', 'While capturing', ['skip', 'queue'] as const, 'skip');
  const maxQueued = r.num('maxQueued', 'Queued triggers', 3, 1, 100, { integer: true });
  const mode = r.choice('mode', 'Mode', ['still', 'clip'] as const, 'still');
  const source = r.str('source') || 'test-pattern';
  if (mode === 'clip' && source !== 'ffmpeg') r.error(`Clip mode records with ffmpeg: choose the ffmpeg source (got "${source}")`);
  const maxLengthS = r.num('clipMax', 'Longest clip', 120, 1, 3600, { unit: 'seconds' });
  const lengthS = r.num('clipLength', 'Clip length', 10, 1, 3600, { unit: 'seconds' });
  if (lengthS > maxLengthS) r.error(`Clip length (${lengthS} s) must not be longer than the longest clip (${maxLengthS} s)`);
  const metadata = parseMetadataSetting(raw.metadata, (m) => r.error(m));
  const transform: TransformSettings = {
    maxWidth: r.num('maxWidth', 'Largest width', 0, 0, 16384, { integer: true, unit: 'pixels' }),
    maxHeight: r.num('maxHeight', 'Largest height', 0, 0, 16384, { integer: true, unit: 'pixels' }),
    format: r.choice('format', 'Format', ['keep', 'jpeg', 'webp'] as const, NO_TRANSFORM.format),
    quality: r.num('quality', 'Quality', NO_TRANSFORM.quality, 1, 100, { integer: true }),
    keepOriginal: raw.keepOriginal === true || raw.keepOriginal === 'true',
  };
  if (mode === 'clip' && transformIsSet(transform)) r.error('Resizing and re-encoding apply to stills: set Largest size to 0 and Format to "as the camera sends it" for clips');
  r.check();
  return {
    camera,
    source,
    imagesFolder,
    nameTemplate,
    minFreeBytes: Math.round(minFreeMB * 1024 * 1024),
    maxBytes: Math.round(maxMB * 1024 * 1024),
    timeoutMs: Math.round(timeoutS * 1000),
    includeBuffer: raw.includeBuffer === true || raw.includeBuffer === 'true',
    trigger: { edge, minIntervalMs: Math.round(minIntervalS * 1000), overlap, maxQueued },
    mode,
    clip: { lengthS, maxLengthS },
    metadata,
    ...(transformIsSet(transform) ? { transform } : {}),
  };
}
