import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { Msg } from '../../lib/message/uplink';
import { boardOf, offBoardOnClose } from './board';

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
  // The device monitor says so too: a node that cannot work leaves the pipeline broken.
  offBoardOnClose(node, boardOf().addProblem(node.id, { name: node.name || node.id, type: node.type, message: `configuration error: ${why}` }));
  node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
    const err = new Error(`${doing}: configuration error: ${why}`);
    if (options.refuse) options.refuse(msg, send, done, err);
    else done(err);
  });
}

/**
 * A node whose settings are not given yet (a blank bucket, URL or camera address): a yellow status naming what to
 * set, and nothing sent. `log` writes the one line in the log (left out where the config node holding the blank
 * settings has written it); every message is then taken in silence, never a line per trigger.
 */
export function waitForConfiguration(
  node: Node,
  why: string,
  options: { log?: boolean; input?: (msg: NodeMessageInFlow, send: Send, done: Done) => void } = {},
): void {
  node.status({ fill: 'yellow', shape: 'ring', text: why.slice(0, 80) });
  if (options.log) node.warn(why);
  node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => (options.input ? options.input(msg, send, done) : done()));
}

/**
 * Where this Node-RED serves its HTTP nodes, as a flow on this machine reaches it: http(s)://host:port plus
 * httpNodeRoot; undefined when HTTP nodes are off.
 */
export function localHttpBase(RED: NodeAPI): string | undefined {
  const s = RED.settings as unknown as Record<string, unknown>;
  if (s.httpNodeRoot === false) return undefined;
  const root = typeof s.httpNodeRoot === 'string' ? s.httpNodeRoot : '/';
  const port = Number(s.uiPort ?? process.env.PORT ?? 1880);
  const configured = typeof s.uiHost === 'string' ? s.uiHost : '';
  const anyAddress = configured === '' || configured === '0.0.0.0' || configured === '::';
  const host = anyAddress ? '127.0.0.1' : configured.includes(':') ? `[${configured}]` : configured;
  const scheme = s.https ? 'https' : 'http';
  return `${scheme}://${host}:${port}${root.replace(/\/+$/, '')}`;
}
