import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { renderKey } from '../message/object-key';
import { uplinkRecord } from '../message/uplink';
import { SettingsReader, text } from '../util/settings';
import { CaptureOptions, CaptureResult } from './still';
import { linkIntoPlace, pathInside, prepareFolder, saveError, warnOnceCannotTell } from './file-steps';
import type { Carried, CaptureJournal } from './journal';
import type { JournalRef } from '../message/uplink';
import { FfmpegSource } from './sources/ffmpeg';
import { CaptureError, CaptureSource } from './types';
import { syncFolder } from '../util/fs-durable';
import { captureClockFacts, ClockSource } from '../message/clock';

export interface ClipLimits {
  /** The clip length when the trigger asks for none. */
  lengthS: number;
  /** The longest clip a trigger may ask for (msg.duration). */
  maxLengthS: number;
}

const MIN_CLIP_S = 1;
const TEMP_PREFIX = '.clip-';
const TEMP_SUFFIX = '.mp4.part';
/**
 * A temp file ffmpeg has not written to for this long belongs to no recording (ffmpeg gives up on a silent camera
 * within its timeout): Node-RED died mid-clip, or the power went. Swept so they cannot fill the SD card.
 */
const STALE_TEMP_MS = 15 * 60 * 1000;

export interface ClipResult extends CaptureResult {
  contentType: 'video/mp4';
  codec: string;
  /** The real length, read back with ffprobe. */
  durationS: number;
  requestedS: number;
  /** Shorter than asked beyond the tolerance (see isPartial): kept, and said so. */
  partial: boolean;
  /** Why it is short, when it is. */
  partialReason?: string;
}

/**
 * Whether a clip of `durationS` falls short of `requestedS`. Cuts fall on keyframes (one every 1-2 s on most cameras),
 * so a clip within max(1 s, 10 %) of what was asked is whole.
 */
export function isPartial(durationS: number, requestedS: number): boolean {
  return durationS < requestedS - Math.max(1, requestedS * 0.1);
}

/**
 * The clip length a trigger asks for: msg.duration, else msg.uplink.requestedS, else the node's length; seconds, from
 * MIN_CLIP_S to the node's longest clip. Anything else is an error naming the limits, rather than a silently
 * different clip.
 */
export function requestedLength(msg: Record<string, unknown>, limits: ClipLimits): number {
  const uplink = uplinkRecord(msg) ?? {};
  const [raw, from] = text(msg.duration) !== '' ? [msg.duration, 'msg.duration'] : [uplink.requestedS, 'msg.uplink.requestedS'];
  const r = new SettingsReader({ length: raw });
  const n = r.num('length', from, limits.lengthS, MIN_CLIP_S, limits.maxLengthS, { unit: 'seconds' });
  if (r.errors.length > 0) throw new CaptureError(`${r.errors[0]}; ${limits.maxLengthS} s is the longest clip set on the node`, 'BAD_LENGTH');
  return n;
}

/** The clip recorder for a capture node in clip mode: clips are recorded with ffmpeg only. */
export function createClipRecorder(source: CaptureSource, options: Omit<CaptureOptions, 'maxBytes'>): ClipRecorder {
  if (!(source instanceof FfmpegSource)) throw new Error(`Clip mode records with ffmpeg: choose the ffmpeg source (got "${source.kind}")`);
  return new ClipRecorder(source, options);
}

/**
 * Records clips from an ffmpeg source: into a temp file in the images folder, then checked (ffprobe reads back the
 * real duration, codec and size), fsynced and linked into place under its final name without overwriting anything,
 * like a still. A clip the camera cut short is kept and marked partial; a file with no video is deleted.
 */
export class ClipRecorder {
  private readonly inFlight = new Set<Promise<unknown>>();
  private swept = false;
  /** Remembers each clip until a queue has committed it, journalled before its link (see Capturer). */
  journal?: CaptureJournal;
  /** Says whether the wall clock is right (see Capturer.clock). */
  clock?: ClockSource;
  /** Hears what the recorder cannot check but goes on without (a disk that does not say how full it is). */
  onWarning?: (text: string) => void;
  private cannotTell?: (why: string) => void;

  constructor(
    readonly source: FfmpegSource,
    readonly options: Omit<CaptureOptions, 'maxBytes'>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Records one clip; see the class comment. `carry` is what the journal keeps to send its message again. */
  record(signal: AbortSignal, requestedS: number, carry?: Carried): Promise<ClipResult> {
    const p = this.recordOnce(signal, requestedS, carry);
    const tracked = p.catch(() => undefined);
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return p;
  }

  /** Stops ffmpeg (and ffprobe), and waits until every recording has cleaned up its temp file. */
  async close(): Promise<void> {
    await this.source.close();
    await Promise.all([...this.inFlight]);
  }

  private async recordOnce(signal: AbortSignal, requestedS: number, carry?: Carried): Promise<ClipResult> {
    const reading = this.clock ? await this.clock.read() : undefined;
    const at = reading ? new Date(reading.wallMs) : this.now();
    const clockFacts = reading ? captureClockFacts(reading, this.options.nameTemplate) : {};
    const root = path.resolve(this.options.imagesFolder);
    if (!this.swept) {
      // Before the free-space check: what it removes may be the space that is missing.
      this.swept = true;
      await sweepStaleTemps(root, this.now().getTime());
    }
    this.cannotTell ??= warnOnceCannotTell(root, () => this.onWarning);
    await prepareFolder(root, this.options.minFreeBytes, { cannotTell: this.cannotTell });
    // A dot name nobody uploads or mistakes for a finished clip; same folder tree, so the final link is one syscall.
    const temp = path.join(root, `${TEMP_PREFIX}${crypto.randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    try {
      const run = await this.source.recordClip(temp, requestedS, signal);
      if (run.out.end === 'closed' || run.out.end === 'aborted' || run.out.end === 'spawn-failed') throw this.source.clipFailure(run, signal);
      const bytes = await fileSize(temp);
      if (bytes === 0) throw this.source.clipFailure(run, signal);
      const probed = await this.source.probe(temp, signal);
      if (!probed.info && probed.undecided) {
        // Nothing says the recording is bad: keep it where a person can look, never delete it.
        const kept = await setAside(root, temp);
        throw new CaptureError(`the recording from ${this.source.describeInput()} could not be checked (${probed.problem}): kept at ${kept}`, 'UNCHECKED');
      }
      if (!probed.info) {
        // ffmpeg's own failure (401, refused, timeout) says more than "not a video", when there is one.
        if (run.out.end !== 'exit' || run.out.code !== 0) throw this.source.clipFailure(run, signal);
        throw new CaptureError(`the recording from ${this.source.describeInput()} is not a playable video (${probed.problem ?? 'unreadable'}): deleted`, 'NO_VIDEO');
      }
      const info = probed.info;
      const durationS = Math.round(info.durationS * 100) / 100;
      const partial = isPartial(info.durationS, requestedS);
      const relative = renderKey(this.options.nameTemplate, { camera: this.options.camera, capturedAt: at.toISOString(), width: info.width, height: info.height, ext: 'mp4' });
      const facts = {
        bytes,
        contentType: 'video/mp4' as const,
        width: info.width,
        height: info.height,
        codec: info.codec,
        durationS,
        requestedS,
        partial,
        ...(partial ? { partialReason: this.source.clipShortReason(run) } : {}),
        camera: this.options.camera,
        capturedAt: at.toISOString(),
        ...clockFacts,
      };
      const placed = await this.place(root, relative, temp, facts, carry);
      return { ...placed, ...facts };
    } finally {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    }
  }

  /** Checksum, fsync and journal, then link into place under its final name (or name_1…), and fsync the folder. */
  private async place(
    root: string,
    relative: string,
    temp: string,
    facts: Record<string, unknown>,
    carry?: Carried,
  ): Promise<{ file: string; key: string; sha256: string; journal?: JournalRef }> {
    const wanted = pathInside(root, relative);
    const dir = path.dirname(wanted);
    try {
      await fs.promises.mkdir(dir, { recursive: true });
      const hash = crypto.createHash('sha256');
      const fh = await fs.promises.open(temp, 'r');
      let sha256: string;
      let journal: JournalRef | undefined;
      try {
        for await (const chunk of fh.createReadStream({ autoClose: false, start: 0 })) hash.update(chunk as Buffer);
        sha256 = hash.digest('hex');
        // Journalled while the clip is synced, as a still is (see Capturer).
        [, journal] = await Promise.all([fh.sync(), this.journal?.written(temp, wanted, { ...facts, sha256 }, carry)]);
      } finally {
        await fh.close();
      }
      const placed = await linkIntoPlace(root, temp, wanted);
      if (journal) await this.journal!.placed(journal, placed.file);
      return { ...placed, sha256, ...(journal ? { journal } : {}) };
    } catch (e) {
      throw saveError(e, root, dir, 'clip');
    }
  }
}

/** Removes clip temp files that no recording has written to for STALE_TEMP_MS; best effort. */
async function sweepStaleTemps(root: string, now: number): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(root);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX) || !name.endsWith(TEMP_SUFFIX)) continue;
    const file = path.join(root, name);
    try {
      const st = await fs.promises.stat(file);
      if (st.isFile() && now - st.mtimeMs > STALE_TEMP_MS) await fs.promises.rm(file, { force: true });
    } catch {
      /* gone already */
    }
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.promises.stat(file)).size;
  } catch {
    return 0;
  }
}

/** Moves a recording that could not be checked to <folder>/unchecked/ under a free name; returns where it went. */
async function setAside(root: string, temp: string): Promise<string> {
  const dir = path.join(root, 'unchecked');
  await fs.promises.mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (let i = 0; i < 100; i++) {
    const to = path.join(dir, `clip_${stamp}${i ? `_${i}` : ''}.mp4`);
    try {
      await fs.promises.link(temp, to);
      const fh = await fs.promises.open(to, 'r');
      await fh.datasync().finally(() => fh.close());
      await syncFolder(dir);
      return to;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new CaptureError(`cannot find a free name in ${dir}`, 'UNCHECKED');
}
