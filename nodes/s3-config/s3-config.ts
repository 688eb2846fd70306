import type { NodeAPI } from 'node-red';
import { registerTargetConfig } from '../common/target-config';
import { S3Backend, parseS3Settings } from '../../lib/upload/backends/s3';
import { UploadTarget, parseBandwidth } from '../../lib/upload/target';

export = function (RED: NodeAPI) {
  registerTargetConfig(RED, 'uplink-s3-config', { accessKeyId: { type: 'text' }, secretAccessKey: { type: 'password' } }, (def, creds) => {
    const settings = parseS3Settings(def, creds);
    return new UploadTarget((bw) => new S3Backend(settings, bw), {
      concurrency: settings.concurrency,
      bytesPerSecond: parseBandwidth(def.bandwidthKBps),
      timeoutMs: settings.timeoutMs,
    });
  });
};
