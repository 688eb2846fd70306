import fs from 'fs';
import path from 'path';

/**
 * Makes a rename or link inside `dir` survive a power cut: the folder's own entry list is flushed too. Some file
 * systems (FAT, SMB shares) cannot sync a folder; the file itself was synced, which is the most they offer.
 */
export async function syncFolder(dir: string): Promise<void> {
  const fd = await fs.promises.open(dir, 'r');
  try {
    await fd.sync();
  } catch {
    /* not supported here */
  } finally {
    await fd.close();
  }
}

/**
 * Replaces `file` with `data` so that a crash or power cut at any moment leaves either the old file or the new one,
 * whole, never an empty or half-written one: temp file, fsync, rename over the file, fsync of its folder. Without the
 * fsyncs, ext4 can keep the data in memory for half a minute after the rename and leave a 0-byte file behind. One
 * writer per file: the temp name beside it is fixed, so a crash leaves at most one stale temp, replaced next time.
 * `mode` (0o600 for a secret) is set before the data is written, on a stale temp too, so no other user can read it.
 */
export async function writeFileDurably(file: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const temp = `${file}.tmp`;
  const fh = await fs.promises.open(temp, 'w', options.mode);
  try {
    if (options.mode !== undefined) await fh.chmod(options.mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.promises.rename(temp, file);
  } catch (e) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
  await syncFolder(path.dirname(file));
}

/**
 * `mkdir -p` whose new folders survive a power cut: each folder it created is recorded in its parent, and the parent
 * synced. Without that, a file synced inside a new folder can vanish with the folder.
 */
export async function makeFolderDurably(dir: string): Promise<void> {
  const first = await fs.promises.mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const target = path.resolve(dir);
  for (let d = path.resolve(first); ; d = path.join(d, path.relative(d, target).split(path.sep)[0])) {
    await syncFolder(path.dirname(d));
    if (d === target) break;
  }
}
