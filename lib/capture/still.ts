import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { renderKey } from '../message/object-key';
import { inspectImage } from './image-info';
import { CaptureError, CaptureSource } from './types';
import { linkIntoPlace, pathInside, prepareFolder, saveError, warnOnceCannotTell } from './file-steps';

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
}

export const DEFAULT_NAME_TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';

/**
 * One capture: the image from the source (or given), checked, then on disk atomically (temp name, fsync, link into
 * place without overwriting, fsync of the folder) before anyone hears of it.
 */
export class Capturer {
  /** Folders known to exist: creating them again costs system calls on every capture. */
  private readonly folders = new Set<string>();
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

  async capture(signal: AbortSignal, given?: Buffer): Promise<CaptureResult> {
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
    const { file, key } = await this.writeAtomically(relative, data);
    return {
      file,
      key,
      bytes: data.length,
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
      width: info.width,
      height: info.height,
      contentType: info.contentType,
      camera: this.options.camera,
      capturedAt: at.toISOString(),
    };
  }

  private async writeAtomically(relative: string, data: Buffer): Promise<{ file: string; key: string }> {
    const root = path.resolve(this.options.imagesFolder);
    const wanted = pathInside(root, relative);
    const dir = path.dirname(wanted);
    const temp = path.join(dir, `.${path.basename(wanted)}.${crypto.randomBytes(4).toString('hex')}.part`);
    try {
      await this.ensureFolder(dir);
      const fh = await fs.promises.open(temp, 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return await linkIntoPlace(root, temp, wanted);
    } catch (e) {
      throw saveError(e, root, dir, 'image');
    } finally {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    }
  }
}
