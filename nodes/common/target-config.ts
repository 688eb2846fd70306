import type { Node, NodeAPI } from 'node-red';
import { UploadTarget } from '../../lib/upload/target';
import { BackendEntry } from '../../lib/upload/registry';
import { NotConfiguredError } from '../../lib/util/settings';
import { EditorConfig, registerNode, userDirOf } from './node';

/** A storage config node at runtime: the target it owns, or why it could not be made. */
export interface TargetConfigNode extends Node<Record<string, unknown>> {
  target?: UploadTarget;
  configError?: string;
  /** Settings still blank ("not configured: set the bucket"): the nodes using it wait, and nothing is sent. */
  notConfigured?: string;
}

/**
 * Registers a storage config node. The node owns one UploadTarget (client, kept-alive connections, concurrency slots,
 * bandwidth budget) shared by every uploader that uses it, and releases it on close. Secrets arrive through
 * `credentials` only, declared here for the runtime as well as in the editor.
 */
export function registerTargetConfig(RED: NodeAPI, type: string, backend: BackendEntry): void {
  function TargetConfig(this: TargetConfigNode, def: EditorConfig) {
    RED.nodes.createNode(this, def);
    const node = this;
    try {
      node.target = backend.createTarget(def, node.credentials ?? {}, { userDir: userDirOf(RED) });
    } catch (e) {
      if (e instanceof NotConfiguredError) {
        // The one line in the log: the uploader and connectivity nodes using this target only show it in their status.
        node.notConfigured = e.message;
        node.warn(`${e.message}: the nodes using this target wait until it is`);
      } else {
        node.configError = (e as Error).message;
        node.error(`configuration error: ${node.configError}`);
      }
    }
    node.on('close', (_removed: boolean, done: () => void) => {
      const t = node.target;
      node.target = undefined;
      if (t) t.close().then(done, done);
      else done();
    });
  }
  const credentials = Object.fromEntries(Object.entries(backend.credentials).map(([name, kind]) => [name, { type: kind }]));
  registerNode(RED, type, TargetConfig, credentials);
}
