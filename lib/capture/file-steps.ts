import fs from 'fs';
import path from 'path';
import { syncFolder } from '../util/fs-durable';
import { fmtMegabytes } from '../util/format';
import { CaptureError } from './types';

// The steps by which a still or a clip becomes a file: inside the images folder, on a disk with room, linked into
// place without overwriting, its folder synced; and a failure to save said so a person can act on it.

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

