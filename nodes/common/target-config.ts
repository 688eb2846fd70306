import type { Node, NodeAPI, NodeDef } from 'node-red';
import { UploadTarget } from '../../lib/upload/target';

/** A storage config node at runtime: the target it owns, or why it could not be made. */
export interface TargetConfigNode extends Node {
  target?: UploadTarget;
  configError?: string;
}

type Raw = NodeDef & Record<string, unknown>;

/**
 * Registers a storage config node. The node owns one UploadTarget (client, kept-alive connections, concurrency slots,
 * bandwidth budget) shared by every uploader that uses it, and releases it on close. Secrets arrive through
 * `credentials` only, declared here for the runtime as well as in the editor.
 */
export function registerTargetConfig(
  RED: NodeAPI,
  type: string,
  credentials: Record<string, { type: 'text' | 'password' }>,
  build: (def: Raw, creds: Record<string, unknown>) => UploadTarget,
): void {
  function TargetConfig(this: TargetConfigNode, def: Raw) {
    RED.nodes.createNode(this, def);
    const node = this;
    try {
      node.target = build(def, (node.credentials ?? {}) as Record<string, unknown>);
    } catch (e) {
      node.configError = (e as Error).message;
      node.error(`configuration error: ${node.configError}`);
    }
    node.on('close', (_removed: boolean, done: () => void) => {
      const t = node.target;
      node.target = undefined;
      if (t) t.close().then(done, done);
      else done();
    });
  }
  RED.nodes.registerType(type, TargetConfig as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], { credentials } as never);
}
