import type { NodeAPI } from 'node-red';
import { registerTargetConfig } from '../common/target-config';
import { HttpBackend } from '../../lib/upload/backends/http';
import { parseHttpSettings } from '../../lib/upload/backends/http-settings';
import { UploadTarget, parseBandwidth } from '../../lib/upload/target';

export = function (RED: NodeAPI) {
  registerTargetConfig(
    RED,
    'uplink-http-config',
    { token: { type: 'password' }, username: { type: 'text' }, password: { type: 'password' } },
    (def, creds) => {
      const settings = parseHttpSettings(def, creds);
      return new UploadTarget((bw) => new HttpBackend(settings, bw), {
        concurrency: settings.concurrency,
        bytesPerSecond: parseBandwidth(def.bandwidthKBps),
        timeoutMs: settings.timeoutMs,
      });
    },
  );
};
