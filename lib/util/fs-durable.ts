import fs from 'fs';

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
