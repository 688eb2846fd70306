import type { NodeAPI } from 'node-red';
import { registerTargetConfig } from '../common/target-config';
import { SupabaseBackend, parseSupabaseSettings } from '../../lib/upload/backends/supabase';
import { UploadTarget, parseBandwidth } from '../../lib/upload/target';

export = function (RED: NodeAPI) {
  registerTargetConfig(RED, 'uplink-supabase-config', { key: { type: 'password' } }, (def, creds) => {
    const settings = parseSupabaseSettings(def, creds);
    const concurrency = Number(def.concurrency ?? 4);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new Error(`Concurrency must be a whole number from 1 to 64 (got "${String(def.concurrency)}")`);
    }
    return new UploadTarget((bw) => new SupabaseBackend(settings, bw), {
      concurrency,
      bytesPerSecond: parseBandwidth(def.bandwidthKBps),
      timeoutMs: settings.timeoutMs,
    });
  });
};
