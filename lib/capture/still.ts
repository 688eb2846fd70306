import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { renderKey } from '../message/object-key';
import { inspectImage } from './image-info';
import { CaptureError, CaptureSource } from './types';
import { linkIntoPlace, pathInside, prepareFolder, saveError, warnOnceCannotTell } from './file-steps';
import type { JournalRef } from '../message/uplink';
import type { Carried, CaptureJournal, OriginalRecord } from './journal';
import { captureClockFacts, CaptureClockFacts, ClockSource } from '../message/clock';
import { TransformSettings, transformImage } from './transform';

export interface CaptureOptions {
  /** Every file goes below this folder; nothing a name or template says can leave it. */
  imagesFolder: string;
  /** Relative path of each file, over the same placeholders as object keys. */
  nameTemplate: string;
  camera: string;
  /** Refuse to capture when the folder's disk has less free space than this. */
  minFreeBytes: number;
  /** Largest image accepted from a source. */
  maxBytes: number;
  /** Resize or re-encode before writing (the file written is the one uploaded); absent: the camera's image as it is. */
  transform?: TransformSettings;
}

/** The camera's own image, kept beside a transformed one when the transform says so. */
export interface OriginalFile {
  file: string;
  bytes: number;
  sha256: string;
  width: number;
  height: number;
  contentType: string;
}

export interface CaptureResult {
  file: string;
  bytes: number;
  sha256: string;
  width: number;
  height: number;
  contentType: string;
  camera: string;
  capturedAt: string;
  /** The file's path below the images folder, with "/": fixed now, so every upload retry uses the same object key. */
  key: string;
  /** The capture journal's entry for the file, which the queue hands back once it has committed it. */
  journal?: JournalRef;
  /** Whether the clock was known to be right, and for a capture taken while it was not, what corrects it later. */
  clockSynced?: boolean;
  capturedMono?: CaptureClockFacts['capturedMono'];
  bootId?: string;
  keyTemplate?: string;
  /** Kept when the image was transformed and the original asked for. */
  original?: OriginalFile;
}

/** Below the images folder: where kept originals go, under the name the template gives them. */
export const ORIGINALS_DIR = 'originals';

const sha256Of = (data: Buffer): string => crypto.createHash('sha256').update(data).digest('hex');

export const DEFAULT_NAME_TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';

/**
 * One capture: the image from the source (or given), checked, then on disk atomically (temp name, fsync, link into
 * place without overwriting, fsync of the folder) before anyone hears of it. With a journal, the file is journalled
 * before its link, so that one no queue ever committed is found at the next start (see CaptureJournal).
 */
export class Capturer {
  /** Folders known to exist: creating them again costs system calls on every capture. */
  private readonly folders = new Set<string>();
  /** Remembers each file until a queue has committed it (the capture node sets it). */
  journal?: CaptureJournal;
  /** Hears what the capture cannot check but goes on without (a disk that does not say how full it is). */
  onWarning?: (text: string) => void;
  /**
   * Says whether the wall clock is right (the capture node sets the system's): a capture taken while it is not keeps
   * the monotonic time that corrects it later (../message/clock). Without one, the wall clock is taken as it is.
   */
  clock?: ClockSource;
  private cannotTell?: (why: string) => void;

  constructor(
    readonly source: CaptureSource,
    readonly options: CaptureOptions,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private async ensureFolder(dir: string): Promise<void> {
    if (this.folders.has(dir) && fs.existsSync(dir)) return;
    await fs.promises.mkdir(dir, { recursive: true });
    this.folders.add(dir);
  }

  /** Takes one image (or stores `given`); `carry` is what the journal keeps to send its message again. */
  async capture(signal: AbortSignal, given?: Buffer, carry?: Carried): Promise<CaptureResult> {
    const reading = this.clock ? await this.clock.read() : undefined;
    const at = reading ? new Date(reading.wallMs) : this.now();
    const clockFacts = reading ? captureClockFacts(reading, this.options.nameTemplate) : {};
    this.cannotTell ??= warnOnceCannotTell(this.options.imagesFolder, () => this.onWarning);
    await prepareFolder(this.options.imagesFolder, this.options.minFreeBytes, { mkdir: (d) => this.ensureFolder(d), cannotTell: this.cannotTell });
    const camera = given ?? (await this.source.grab(signal, this.options.maxBytes));
    if (camera.length > this.options.maxBytes) {
      throw new CaptureError(`the image is ${camera.length} bytes, over the limit of ${this.options.maxBytes}`, 'TOO_LARGE');
    }
    const cameraInfo = inspectImage(camera);
    const t = this.options.transform ? await transformImage(camera, cameraInfo, this.options.transform, signal) : undefined;
    const data = t?.data ?? camera;
    const info = t ? { width: t.width, height: t.height, contentType: t.contentType, ext: t.ext } : cameraInfo;
    const keyFields = { camera: this.options.camera, capturedAt: at.toISOString() };
    const relative = renderKey(this.options.nameTemplate, { ...keyFields, width: info.width, height: info.height, ext: info.ext });
    let original: { data: Buffer; relative: string; facts: Omit<OriginalFile, 'file'> } | undefined;
    if (t && this.options.transform?.keepOriginal) {
      const name = renderKey(this.options.nameTemplate, { ...keyFields, width: cameraInfo.width, height: cameraInfo.height, ext: cameraInfo.ext });
      original = {
        data: camera,
        relative: `${ORIGINALS_DIR}/${name}`,
        facts: { bytes: camera.length, sha256: sha256Of(camera), width: cameraInfo.width, height: cameraInfo.height, contentType: cameraInfo.contentType },
      };
    }
    const facts = {
      bytes: data.length,
      sha256: sha256Of(data),
      width: info.width,
      height: info.height,
      contentType: info.contentType,
      camera: this.options.camera,
      capturedAt: at.toISOString(),
      ...clockFacts,
    };
    const placed = await this.writeAtomically(relative, data, facts, carry, original);
    return {
      file: placed.file,
      key: placed.key,
      ...facts,
      ...(placed.journal ? { journal: placed.journal } : {}),
      ...(original && placed.original ? { original: { file: placed.original, ...original.facts } } : {}),
    };
  }

  private async writeAtomically(
    relative: string,
    data: Buffer,
    facts: Record<string, unknown>,
    carry?: Carried,
    original?: { data: Buffer; relative: string; facts: Omit<OriginalFile, 'file'> },
  ): Promise<{ file: string; key: string; journal?: JournalRef; original?: string }> {
    const root = path.resolve(this.options.imagesFolder);
    const wanted = pathInside(root, relative);
    const dir = path.dirname(wanted);
    const temp = tempBeside(wanted);
    const originalWanted = original ? pathInside(root, original.relative) : undefined;
    const originalTemp = originalWanted ? tempBeside(originalWanted) : undefined;
    try {
      await this.ensureFolder(dir);
      if (originalWanted) await this.ensureFolder(path.dirname(originalWanted));
      // Both files are written, then synced while the journal entry that names them both is (one wait for the disk,
      // not two): the links come after all of it, and recovery checks a temp file's checksum before it links one.
      const handles: fs.promises.FileHandle[] = [];
      let journal: JournalRef | undefined;
      try {
        handles.push(await fs.promises.open(temp, 'wx'));
        await handles[0].writeFile(data);
        if (original && originalTemp) {
          handles.push(await fs.promises.open(originalTemp, 'wx'));
          await handles[1].writeFile(original.data);
        }
        const orig: OriginalRecord | undefined = original && originalTemp && originalWanted ? { temp: originalTemp, file: originalWanted, ...original.facts } : undefined;
        [journal] = await Promise.all([this.journal?.written(temp, wanted, facts, carry, orig), ...handles.map((h) => h.sync())]);
      } finally {
        for (const h of handles) await h.close();
      }
      let originalPlaced: string | undefined;
      if (originalTemp && originalWanted) originalPlaced = (await linkIntoPlace(root, originalTemp, originalWanted)).file;
      const placed = await linkIntoPlace(root, temp, wanted);
      if (journal) await this.journal!.placed(journal, placed.file, originalPlaced);
      return { ...placed, ...(journal ? { journal } : {}), ...(originalPlaced ? { original: originalPlaced } : {}) };
    } catch (e) {
      throw saveError(e, root, dir, 'image');
    } finally {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
      if (originalTemp) await fs.promises.rm(originalTemp, { force: true }).catch(() => undefined);
    }
  }
}

function tempBeside(wanted: string): string {
  return path.join(path.dirname(wanted), `.${path.basename(wanted)}.${crypto.randomBytes(4).toString('hex')}.part`);
}
