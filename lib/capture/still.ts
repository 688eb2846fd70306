import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { renderKey } from '../message/object-key';
import { inspectImage } from './image-info';
import { CaptureError, CaptureSource } from './types';
import { syncFolder } from '../util/fs-durable';
import { fmtMegabytes } from '../util/format';

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
    await prepareFolder(this.options.imagesFolder, this.options.minFreeBytes, (d) => this.ensureFolder(d));
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

/** The absolute path of `relative` below `root`; a name that would lead outside it is refused. */
export function pathInside(root: string, relative: string): string {
  const wanted = path.resolve(root, ...relative.split('/'));
  if (!wanted.startsWith(root + path.sep)) throw new CaptureError(`the file name ${relative} leads outside the images folder`, 'BAD_NAME');
  return wanted;
}

/**
 * Makes the images folder (with `mkdir`, which may remember folders it made), then refuses to capture when its disk
 * has less than `minFreeBytes` free (0: no check).
 */
export async function prepareFolder(
  folder: string,
  minFreeBytes: number,
  mkdir: (dir: string) => Promise<unknown> = (dir) => fs.promises.mkdir(dir, { recursive: true }),
): Promise<void> {
  await mkdir(folder).catch((e: NodeJS.ErrnoException) => {
    throw new CaptureError(`cannot create the images folder ${folder} (${e.code ?? e.message})`, 'FOLDER');
  });
  if (minFreeBytes <= 0) return;
  const st = await fs.promises.statfs(folder);
  const free = st.bavail * st.bsize;
  if (free < minFreeBytes) {
    throw new CaptureError(
      `only ${fmtMegabytes(free)} free on the disk of ${folder}, below the ${fmtMegabytes(minFreeBytes)} kept free: not capturing (make room, or upload and delete old files)`,
      'DISK_FULL',
    );
  }
}

/** A failure to save a file, as a CaptureError a person can act on. `what` is "image" or "clip". */
export function saveError(e: unknown, root: string, dir: string, what: string): CaptureError {
  if (e instanceof CaptureError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return new CaptureError(`the disk of ${root} is full: the ${what} was not saved`, 'DISK_FULL');
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new CaptureError(`cannot write to ${dir} (${code}): check the folder's permissions`, 'FOLDER');
  }
  return new CaptureError(`could not save the ${what}: ${(e as Error).message}`, code ?? 'WRITE');
}

/**
 * Puts the finished (synced) temp file in place under `wanted` below `root` and syncs its folder, so the name survives
 * a power cut; returns the final path and its key (the path below `root`, with "/").
 */
export async function linkIntoPlace(root: string, temp: string, wanted: string): Promise<{ file: string; key: string }> {
  const file = await linkWithoutOverwrite(temp, wanted);
  await syncFolder(path.dirname(wanted));
  return { file, key: path.relative(root, file).split(path.sep).join('/') };
}

/**
 * Puts the finished temp file in place under `wanted`, or `name_1.ext`, `name_2.ext`… when that name is taken (two
 * captures in one second): a hard link fails instead of replacing, so no earlier capture is ever overwritten.
 */
async function linkWithoutOverwrite(temp: string, wanted: string): Promise<string> {
  const ext = path.extname(wanted);
  const base = wanted.slice(0, wanted.length - ext.length);
  for (let i = 0; i < 1000; i++) {
    const candidate = i === 0 ? wanted : `${base}_${i}${ext}`;
    try {
      await fs.promises.link(temp, candidate);
      return candidate;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        // File systems without hard links (FAT on a USB stick): check, then rename.
        if (fs.existsSync(candidate)) continue;
        await fs.promises.rename(temp, candidate);
        return candidate;
      }
      throw e;
    }
  }
  throw new CaptureError(`1000 files already share the name ${path.basename(wanted)}: add {time} or {id} to the name template`, 'BAD_NAME');
}

