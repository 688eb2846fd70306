import type { NodeAPI } from 'node-red';
import { registerTargetConfig } from '../common/target-config';
import { FolderBackend, parseFolderSettings } from '../../lib/upload/backends/folder';
import { UploadTarget, parseBandwidth } from '../../lib/upload/target';

export = function (RED: NodeAPI) {
  registerTargetConfig(RED, 'uplink-folder-config', {}, (def) => {
    const settings = parseFolderSettings(def);
    return new UploadTarget((bw) => new FolderBackend(settings, bw), {
      concurrency: 2,
      bytesPerSecond: parseBandwidth(def.bandwidthKBps),
      timeoutMs: settings.timeoutMs,
    });
  });
};
