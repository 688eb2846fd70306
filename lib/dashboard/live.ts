import path from 'path';
import { text } from '../util/settings';
import type { Uplink } from '../message/uplink';

/** The live widget's settings as the runtime uses them. */
export interface LiveWidgetConfig {
  /** The recorder node whose live view is played (its node id). */
  recorder: string;
  /** The capture node whose latest image is the still shown while the stream is not up, if any. */
  capture: string;
}

export function parseLiveWidgetConfig(raw: Record<string, unknown>): LiveWidgetConfig {
  const recorder = text(raw.recorder);
  if (recorder === '') throw new Error('pick the recorder whose live view to show');
  return { recorder, capture: text(raw.capture) };
}

/** What a recorder node tells the widget about its live view. */
export interface LiveSource {
  /** The live view's path part (/uplink/live/<slug>/), when the recorder serves one. */
  slug?: string;
  camera?: string;
  /** Why there is no live view to play. */
  problem?: string;
}

/** The still: the latest image of the capture node picked, described without its path on this machine. */
export interface LiveStill {
  name: string;
  capturedAt: string | null;
  width: number | null;
  height: number | null;
}

/**
 * What the live widget's browsers get: where the playlist and the status are (below httpNodeRoot, no leading slash),
 * or why there is nothing to play, and the still. Never a path of this machine.
 */
export interface LiveView {
  at: number;
  camera: string | null;
  playlist: string | null;
  status: string | null;
  problem: string | null;
  still: LiveStill | null;
}

/** The live view's URLs below httpNodeRoot, as nodes/common/live.ts serves them. */
export function livePaths(slug: string): { playlist: string; status: string } {
  const s = encodeURIComponent(slug);
  return { playlist: `uplink/live/${s}/index.m3u8`, status: `uplink/live/${s}/status` };
}

/** Whether a capture can be the still (an image; a clip is not shown). */
export function isStill(u: Uplink | undefined): u is Uplink & { file: string } {
  return !!u && typeof u.file === 'string' && u.file !== '' && /^image\//.test(u.contentType ?? '');
}

export function liveView(source: LiveSource | null, capture: Uplink | undefined, now: number = Date.now()): LiveView {
  const paths = source?.slug ? livePaths(source.slug) : null;
  const still = isStill(capture)
    ? {
        name: path.basename(capture.file),
        capturedAt: typeof capture.capturedAt === 'string' ? capture.capturedAt : null,
        width: typeof capture.width === 'number' ? capture.width : null,
        height: typeof capture.height === 'number' ? capture.height : null,
      }
    : null;
  return {
    at: now,
    camera: source?.camera ?? null,
    playlist: paths?.playlist ?? null,
    status: paths?.status ?? null,
    problem: paths ? null : (source?.problem ?? 'the recorder picked in this widget is not deployed'),
    still,
  };
}
