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

/** The system calls prepareFolder makes, replaceable (a capturer remembers folders it made; tests fake a disk). */
export interface FolderSteps {
  mkdir?: (dir: string) => Promise<unknown>;
  statfs?: (dir: string) => Promise<{ bavail: number; bsize: number; blocks: number }>;
  /** Called when the disk cannot say how much room it has: the capture goes on without the check. */
  cannotTell?: (why: string) => void;
}

/**
 * Makes the images folder, then refuses to capture when its disk has less than `minFreeBytes` free (0: no check). A
 * file system that reports no size (statfs unsupported, or a block size or count of 0: some FUSE and network file
 * systems) is not taken for a full one: `cannotTell` hears why, and the capture goes on (a disk that does fill up
 * still fails the write, with "disk full").
 */
export async function prepareFolder(folder: string, minFreeBytes: number, steps: FolderSteps = {}): Promise<void> {
  const mkdir = steps.mkdir ?? ((dir: string) => fs.promises.mkdir(dir, { recursive: true }));
  await mkdir(folder).catch((e: NodeJS.ErrnoException) => {
    throw new CaptureError(`cannot create the images folder ${folder} (${e.code ?? e.message})`, 'FOLDER');
  });
  if (minFreeBytes <= 0) return;
  let st: { bavail: number; bsize: number; blocks: number };
  try {
    st = await (steps.statfs ?? ((dir: string) => fs.promises.statfs(dir)))(folder);
  } catch (e) {
    steps.cannotTell?.(`the file system does not say (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    return;
  }
  if (!(st.bsize > 0) || !(st.blocks > 0)) {
    steps.cannotTell?.('the file system reports no size');
    return;
  }
  const free = st.bavail * st.bsize;
  if (free < minFreeBytes) {
    throw new CaptureError(
      `only ${fmtMegabytes(free)} free on the disk of ${folder}, below the ${fmtMegabytes(minFreeBytes)} kept free: not capturing (make room, or upload and delete old files)`,
      'DISK_FULL',
    );
  }
}

/**
 * A `cannotTell` for prepareFolder that says it once, as a warning through `warn` (read when it is called, so a host
 * may set it later), naming the folder and what the capture does about it.
 */
export function warnOnceCannotTell(folder: string, warn: () => ((text: string) => void) | undefined): (why: string) => void {
  let said = false;
  return (why) => {
    if (said) return;
    said = true;
    warn()?.(`cannot tell how much room is left on the disk of ${folder} (${why}): capturing without the "Keep free" check`);
  };
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

