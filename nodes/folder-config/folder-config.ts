import type { NodeAPI } from 'node-red';
import { registerTargetConfig } from '../common/target-config';
import { BACKENDS } from '../../lib/upload/registry';

export = function (RED: NodeAPI) {
  registerTargetConfig(RED, 'uplink-folder-config', BACKENDS.folder);
};
