import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { Msg } from '../../lib/message/uplink';

/**
 * A node's settings as the editor saved them. `T` names the fields the adapter reads itself; everything else goes,
 * untyped, to the lib parser that validates it (which is why the rest stays a record).
 */
export type EditorConfig<T extends object = object> = NodeDef & Partial<T> & Record<string, unknown>;

/** A camera's login, kept in Node-RED's credentials (never in the flow). */
export type CameraLogin = { username?: string; password?: string };
export const CAMERA_LOGIN: Credentials<CameraLogin> = { username: { type: 'text' }, password: { type: 'password' } };

/** The runtime's declaration of a node's secrets, one entry per field. */
export type Credentials<T extends object> = { [K in keyof T]-?: { type: 'text' | 'password' } };

export type Send = (msg: NodeMessage | (NodeMessage | null)[]) => void;
export type Done = (err?: Error) => void;

/** A message as Uplink's lib code reads it; Node-RED's type is the same object with `topic` typed. */
export function toNodeMessage(msg: Msg): NodeMessage {
  return msg as NodeMessage;
}

/** The folder Node-RED keeps its files in (relative paths in settings resolve against it). */
export function userDirOf(RED: NodeAPI): string {
  return RED.settings.userDir ?? process.cwd();
}

/**
 * Registers a node type, with the secrets it keeps declared for the runtime as well as in the editor (a real
 * Node-RED drops credentials the runtime does not declare).
 */
export function registerNode<TNode extends Node<TCreds>, TDef extends NodeDef, TCreds extends object = object>(
  RED: NodeAPI,
  type: string,
  ctor: (this: TNode, def: TDef) => void,
  credentials?: Credentials<TCreds>,
): void {
  RED.nodes.registerType<TNode, TDef, object, TCreds>(type, ctor, credentials ? { credentials } : undefined);
}

/**
 * A node whose settings cannot work: red status, one error in the log at deploy, and every message refused with the
 * reason (so a Catch node sees it), instead of a node that half works.
 */
export function refuseMisconfigured(
  node: Node,
  why: string,
  doing: string,
  options: { status?: string; refuse?: (msg: NodeMessageInFlow, send: Send, done: Done, err: Error) => void } = {},
): void {
  node.status({ fill: 'red', shape: 'ring', text: options.status ?? 'configuration error' });
  node.error(`configuration error: ${why}`);
  node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
    const err = new Error(`${doing}: configuration error: ${why}`);
    if (options.refuse) options.refuse(msg, send, done, err);
    else done(err);
  });
}
