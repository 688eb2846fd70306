import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { renderKey } from '../message/object-key';
import { inspectImage } from './image-info';
import { CaptureError, CaptureSource } from './types';
import { linkIntoPlace, pathInside, prepareFolder, saveError, warnOnceCannotTell } from './file-steps';
import type { JournalRef } from '../message/uplink';
import type { Carried, CaptureJournal } from './journal';

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
}

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
    const at = this.now();
    this.cannotTell ??= warnOnceCannotTell(this.options.imagesFolder, () => this.onWarning);
    await prepareFolder(this.options.imagesFolder, this.options.minFreeBytes, { mkdir: (d) => this.ensureFolder(d), cannotTell: this.cannotTell });
    const data = given ?? (await this.source.grab(signal, this.options.maxBytes));
    if (data.length > this.options.maxBytes) {
      throw new CaptureError(`the image is ${data.length} bytes, over the limit of ${this.options.maxBytes}`, 'TOO_LARGE');
    }
    const info = inspectImage(data);
    const relative = renderKey(this.options.nameTemplate, {
      camera: this.options.camera,
      capturedAt: at.toISOString(),
      width: info.width,
      height: info.height,
      ext: info.ext,
    });
    const facts = {
      bytes: data.length,
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
      width: info.width,
      height: info.height,
      contentType: info.contentType,
      camera: this.options.camera,
      capturedAt: at.toISOString(),
    };
    const placed = await this.writeAtomically(relative, data, facts, carry);
    return { file: placed.file, key: placed.key, ...facts, ...(placed.journal ? { journal: placed.journal } : {}) };
  }

  private async writeAtomically(relative: string, data: Buffer, facts: Record<string, unknown>, carry?: Carried): Promise<{ file: string; key: string; journal?: JournalRef }> {
    const root = path.resolve(this.options.imagesFolder);
    const wanted = pathInside(root, relative);
    const dir = path.dirname(wanted);
    const temp = path.join(dir, `.${path.basename(wanted)}.${crypto.randomBytes(4).toString('hex')}.part`);
    try {
      await this.ensureFolder(dir);
      const fh = await fs.promises.open(temp, 'wx');
      let journal: JournalRef | undefined;
      try {
        await fh.writeFile(data);
        // The journal entry is synced while the image is (one wait for the disk, not two): the link comes after both,
        // and recovery checks a temp file's checksum before it links one the entry names.
        [, journal] = await Promise.all([fh.sync(), this.journal?.written(temp, wanted, facts, carry)]);
      } finally {
        await fh.close();
      }
      const placed = await linkIntoPlace(root, temp, wanted);
      if (journal) await this.journal!.placed(journal, placed.file);
      return { ...placed, ...(journal ? { journal } : {}) };
    } catch (e) {
      throw saveError(e, root, dir, 'image');
    } finally {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    }
  }
}
