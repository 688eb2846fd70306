import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { pipeline } from 'stream/promises';
import { Bandwidth, openBody } from '../body';
import { classifyThrown } from '../classify';
import { StorageBackend, UploadError, UploadItem, UploadResult } from '../types';
import { syncFolder } from '../../util/fs-durable';
import { SettingsReader } from '../../util/settings';

export interface FolderSettings {
  /** A mounted NAS share or USB disk, or a folder in Node-RED's user folder. */
  folder: string;
  /**
   * Make the folder when it is not there. Only for a folder inside the user folder (given as a relative path): that
   * is on the local disk anyway. A missing absolute folder is a disk that is not mounted, and is waited for.
   */
  create?: boolean;
  timeoutMs: number;
}

/** Reads the folder target's settings at deploy. A relative folder is inside `userDir` (Node-RED's user folder). */
export function parseFolderSettings(raw: Record<string, unknown>, userDir?: string): FolderSettings {
  const r = new SettingsReader(raw);
  const folder = r.required('folder', 'folder', 'Folder is required');
  const relative = folder !== '' && !path.isAbsolute(folder);
  if (relative && userDir === undefined) r.error(`Folder must be an absolute path (got "${folder}")`);
  if (relative && folder.split(/[\\/]/).includes('..')) r.error(`Folder must stay inside the Node-RED user folder: no ".." (got "${folder}")`);
  const timeoutS = r.num('timeout', 'Timeout', 60, 1, 86400, { unit: 'seconds' });
  r.check();
  return {
    folder: relative ? path.resolve(userDir!, folder) : path.resolve(folder),
    create: relative,
    timeoutMs: Math.round(timeoutS * 1000),
  };
}

/** Copies into a folder: temp name, fsync, rename, fsync of the folder. A reader never sees half a file. */
export class FolderBackend implements StorageBackend {
  readonly kind = 'folder';

  constructor(readonly settings: FolderSettings, private readonly bandwidth?: Bandwidth) {
    // Made at deploy, so the connectivity node, which probes whether the folder is there, finds it from the start.
    if (settings.create) {
      try {
        fs.mkdirSync(settings.folder, { recursive: true });
      } catch {
        /* the first upload says why */
      }
    }
  }

  endpoint(): string {
    return `file://${this.settings.folder}`;
  }

  async upload(item: UploadItem): Promise<UploadResult> {
    const root = this.settings.folder;
    const target = path.join(root, ...item.key.split('/'));
    if (!target.startsWith(root + path.sep)) throw new UploadError(`the key ${item.key} leads outside the folder`, 'permanent', 'BAD_KEY');
    if (this.settings.create) await fs.promises.mkdir(root, { recursive: true }).catch(() => undefined);
    // A folder that is not there usually means the share or disk is not mounted: wait for it rather than write to the SD card.
    try {
      const st = await fs.promises.stat(root);
      if (!st.isDirectory()) throw new UploadError(`${root} is not a folder`, 'permanent', 'NOT_A_FOLDER');
    } catch (e) {
      if (e instanceof UploadError) throw e;
      throw new UploadError(`the folder ${root} is not there (is the disk mounted?)`, 'retryable', 'FOLDER_MISSING');
    }
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${crypto.randomBytes(4).toString('hex')}.part`);
    try {
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      let sent = 0;
      await pipeline(openBody(item, this.bandwidth, (n) => item.onProgress?.((sent += n))), fs.createWriteStream(temp), { signal: item.signal });
      const fd = await fs.promises.open(temp, 'r+');
      try {
        await fd.sync();
      } finally {
        await fd.close();
      }
      const st = await fs.promises.stat(temp);
      if (st.size !== item.bytes) throw new UploadError(`wrote ${st.size} bytes, the item has ${item.bytes}`, 'retryable', 'SIZE_MISMATCH');
      await fs.promises.rename(temp, target);
      await syncFolder(path.dirname(target));
      return { key: item.key, url: `file://${target}`, bytes: item.bytes };
    } catch (e) {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
      if (e instanceof UploadError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') throw new UploadError(`the target disk is full (${root})`, 'retryable', 'ENOSPC');
      // The share unmounted (or the folder moved) mid-write: wait for it, as when it is missing from the start.
      if (code === 'ENOENT' && !(await isFolder(root))) throw new UploadError(`the folder ${root} went away while writing (is the disk mounted?)`, 'retryable', 'FOLDER_MISSING');
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
        throw new UploadError(`cannot write to ${root} (${code})`, 'permanent', code);
      }
      throw classifyThrown(e, this.settings.timeoutMs);
    }
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}

async function isFolder(p: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(p)).isDirectory();
  } catch {
    return false;
  }
}
