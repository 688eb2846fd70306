import path from 'path';
import { FfmpegSettings, parseFfmpegSettings } from '../media/ffmpeg-input';
import { validateKeyTemplate } from '../message/object-key';
import { parseMetadataSetting } from '../message/metadata';
import { SettingsReader } from '../util/settings';
import { LiveSettings } from '../live/stream';
import { chooseLogin, splitUrlLogin } from '../util/url-login';
import { BudgetPolicy } from './budget';
import { DEFAULT_FILE_TEMPLATE, validateFileTemplate } from './file-name';

export const DEFAULT_RECORDER_KEY_TEMPLATE = '{camera}/{date}/{name}';
export const DEFAULT_RECORDINGS_FOLDER = 'uplink/recordings';

export type VideoCodec = 'copy' | 'libx264' | 'h264_v4l2m2m';
export type AudioMode = 'none' | 'copy' | 'aac';

export interface RecorderBudget {
  /** Most the recordings may take: a number of bytes, or a share of the disk's size. 0 bytes: no limit of its own. */
  bytes?: number;
  percent?: number;
  /** Free space that always remains on the disk, whatever the budget says. */
  keepFreeBytes: number;
  policy: BudgetPolicy;
}

export interface RecorderConfig {
  camera: string;
  source: FfmpegSettings;
  segmentSeconds: number;
  /** Every file the recorder writes or deletes is below this folder. */
  folder: string;
  nameTemplate: string;
  keyTemplate: string;
  video: VideoCodec;
  audio: AudioMode;
  budget: RecorderBudget;
  /** The user's rows, as msg.uplink.metadata of every segment (and flat in msg.uplink, as the capture node does). */
  metadata: Record<string, string>;
  /** Record from deploy (otherwise only after a "start" message). */
  autoStart: boolean;
  /** Live view and RTSP relay, from the same ffmpeg as the recording; undefined when neither is on. */
  live?: LiveSettings;
}

/** The part of a camera name that goes into its live view's URL: /uplink/live/<this>/index.m3u8. */
export function liveSlug(camera: string): string {
  return camera.toLowerCase().normalize('NFKD').replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64) || 'camera';
}

/**
 * Reads the recorder node's settings and credentials once, at deploy, listing every problem. The camera login comes
 * from the credentials, or from the URL it was typed into, which is kept without it (see parseFfmpegSettings).
 */
export function parseRecorderConfig(raw: Record<string, unknown>, credentials: Record<string, unknown>, userDir: string): RecorderConfig {
  const r = new SettingsReader(raw);
  let source: FfmpegSettings | undefined;
  try {
    source = parseFfmpegSettings({ ...raw, quality: undefined }, credentials);
  } catch (e) {
    r.absorb(e);
  }
  const camera = r.str('camera') || 'camera';
  if (camera.length > 100) r.error('Camera name must be at most 100 characters');
  const segmentSeconds = r.num('segmentSeconds', 'Segment length', 60, 0.5, 3600, { unit: 'seconds' });
  const folder = path.resolve(userDir, r.str('folder') || DEFAULT_RECORDINGS_FOLDER);
  const nameTemplate = r.str('nameTemplate') || DEFAULT_FILE_TEMPLATE;
  try {
    validateFileTemplate(nameTemplate);
  } catch (e) {
    r.error(`File name: ${(e as Error).message}`);
  }
  const keyTemplate = r.str('keyTemplate') || DEFAULT_RECORDER_KEY_TEMPLATE;
  try {
    validateKeyTemplate(keyTemplate);
  } catch (e) {
    r.error(`Object key: ${(e as Error).message}`);
  }
  const videoChoice = r.choice('video', 'Video', ['auto', 'copy', 'libx264', 'h264_v4l2m2m'] as const, 'auto');
  const audio = r.choice('audio', 'Audio', ['none', 'copy', 'aac'] as const, 'none');
  const budgetAmount = r.num('budget', 'Disk budget', 0, 0, 1024 * 1024 * 1024);
  const budgetUnit = r.choice('budgetUnit', 'Disk budget unit', ['MB', 'GB', '%'] as const, 'GB');
  if (budgetUnit === '%' && budgetAmount > 95) r.error(`Disk budget must be at most 95 % of the disk (got ${budgetAmount})`);
  const keepFreeMB = r.num('keepFreeMB', 'Keep free', 500, 0, 1024 * 1024, { unit: 'MB' });
  const policy = r.choice('budgetPolicy', 'When the budget is reached', ['keep-unsent', 'drop-oldest-unsent'] as const, 'keep-unsent');
  const metadata = parseMetadataSetting(raw.metadata, (m) => r.error(m));
  const liveView = raw.liveView === true || raw.liveView === 'true';
  const playlistSize = r.num('livePlaylistSize', 'Live playlist', 4, 2, 10, { integer: true, unit: 'fragments' });
  const relay = parseRelay(r, credentials);
  r.check();
  const s = source!;
  const video: VideoCodec = videoChoice !== 'auto' ? videoChoice : s.kind === 'lavfi' || s.kind === 'v4l2' ? 'libx264' : 'copy';
  const MB = 1024 * 1024;
  return {
    camera,
    source: s,
    segmentSeconds,
    folder,
    nameTemplate,
    keyTemplate,
    video,
    audio,
    budget: {
      ...(budgetAmount > 0 && budgetUnit === '%' ? { percent: budgetAmount } : {}),
      ...(budgetAmount > 0 && budgetUnit !== '%' ? { bytes: Math.round(budgetAmount * (budgetUnit === 'GB' ? 1024 * MB : MB)) } : {}),
      keepFreeBytes: Math.round(keepFreeMB * MB),
      policy,
    },
    metadata,
    autoStart: raw.autoStart !== false && raw.autoStart !== 'false',
    ...(liveView || relay ? { live: { view: liveView, playlistSize, ...(relay ? { relay } : {}) } } : {}),
  };
}

/** The relay's target: an rtsp:// URL, its login from the credentials (or typed into the URL, then taken out of it). */
function parseRelay(r: SettingsReader, credentials: Record<string, unknown>): LiveSettings['relay'] {
  const typed = r.str('relayUrl').trim();
  if (typed === '') return undefined;
  const fromUrl = splitUrlLogin(typed);
  let url: URL;
  try {
    url = new URL(fromUrl.url);
  } catch {
    r.error(`Relay to: "${fromUrl.url}" is not a URL (rtsp://server:8554/path)`);
    return undefined;
  }
  if (url.protocol !== 'rtsp:' && url.protocol !== 'rtsps:') {
    r.error(`Relay to: must be an rtsp:// or rtsps:// URL (got ${url.protocol}//)`);
    return undefined;
  }
  const own = { username: String(credentials.relayUsername ?? ''), password: String(credentials.relayPassword ?? '') };
  const { username, password } = chooseLogin(own, fromUrl);
  const transport = r.choice('relayTransport', 'Relay transport', ['tcp', 'udp'] as const, 'tcp');
  return { url: fromUrl.url, transport, ...(username ? { username } : {}), ...(password ? { password } : {}) };
}
