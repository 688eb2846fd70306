import { text } from '../util/settings';
import type { Uplink } from '../message/uplink';

/** The live widget's settings as the runtime uses them. */
export interface LiveWidgetConfig {
  /** The recorder node whose live view is played (its node id). */
  recorder: string;
  /**
   * A capture node whose latest image may be the still instead of the live view's last frame, when it is newer
   * (optional: '' for none).
   */
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

/** The latest image of the capture node picked, described without its path on this machine. */
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

/** A file's name without its folder (this module is also bundled into the browser's widget, where there is no path). */
function baseName(file: string): string {
  return file.slice(Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\')) + 1);
}

/** Whether a capture can be the still (an image; a clip is not shown). */
export function isStill(u: Uplink | undefined): u is Uplink & { file: string } {
  return !!u && typeof u.file === 'string' && u.file !== '' && /^image\//.test(u.contentType ?? '');
}

export function liveView(source: LiveSource | null, capture: Uplink | undefined, now: number = Date.now()): LiveView {
  const paths = source?.slug ? livePaths(source.slug) : null;
  const still = isStill(capture)
    ? {
        name: baseName(capture.file),
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

/** What the live view's status says about its last frame (nodes/common/live.ts), as a browser reads it. */
export interface LiveFrameStatus {
  /** When the newest fragment came (ISO), absent before the first. */
  lastFrameAt?: unknown;
  /** The last frame as a JPEG, below httpNodeRoot (changes as new fragments come). */
  still?: unknown;
  /** The rest of the status (state, viewers, relay), not read here. */
  [field: string]: unknown;
}

/** The picture the widget shows while the stream is not up, and what its caption calls it. */
export interface StillChoice {
  kind: 'frame' | 'capture';
  /** Where to load it, below httpNodeRoot, no leading slash. */
  path: string;
  /** When it was taken (ms since the epoch, server time), null when not known. */
  at: number | null;
  /** "last frame" or "last capture". */
  label: string;
  /** What the caption says when the time is not known: the capture's file name. */
  name: string | null;
  width: number | null;
  height: number | null;
}

/** The capture node's latest image, as the widget node serves it by its own id (a browser never names a file). */
export function captureStillPath(widgetId: string, still: LiveStill): string {
  return `uplink-live/${encodeURIComponent(widgetId)}/still?v=${encodeURIComponent(still.capturedAt ?? still.name)}`;
}

function timeOf(iso: unknown): number | null {
  if (typeof iso !== 'string') return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/**
 * Which picture stands in for the video: the newer of the live view's last frame (no camera connection: decoded
 * from memory) and the capture node's latest image, when the widget has one. The frame wins a tie and over a capture
 * whose time is not known; null when there is neither.
 */
export function stillToShow(status: LiveFrameStatus | null | undefined, capture: LiveStill | null | undefined, widgetId: string): StillChoice | null {
  const frameAt = timeOf(status?.lastFrameAt);
  const framePath = typeof status?.still === 'string' && status.still !== '' ? status.still.replace(/^\/+/, '') : null;
  const frame: StillChoice | null =
    framePath !== null && frameAt !== null
      ? { kind: 'frame', path: framePath, at: frameAt, label: 'last frame', name: null, width: null, height: null }
      : null;
  const shot: StillChoice | null = capture
    ? {
        kind: 'capture',
        path: captureStillPath(widgetId, capture),
        at: timeOf(capture.capturedAt),
        label: 'last capture',
        name: capture.name,
        width: capture.width,
        height: capture.height,
      }
    : null;
  if (!frame || !shot) return frame ?? shot;
  return shot.at !== null && shot.at > (frame.at as number) ? shot : frame;
}

/**
 * The still's part of the caption: "last frame 12:03:04", "last capture still_3.jpg" when its time is not known, "no
 * picture yet". `clock` writes a server time in the reader's zone.
 */
export function stillCaption(choice: StillChoice | null, clock: (t: number) => string): string {
  if (!choice) return 'no picture yet';
  return `${choice.label} ${choice.at !== null ? clock(choice.at) : (choice.name ?? '')}`.trim();
}
