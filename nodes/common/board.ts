import type { Node, NodeAPI } from 'node-red';
import { Board } from '../../lib/monitor/board';

/**
 * The one board of this Node-RED process: every Uplink node puts what it knows there, and the device monitor (health,
 * metrics, alerts) reads it. Nodes take themselves off when they close.
 */
let shared: Board | undefined;

export function boardOf(RED?: NodeAPI): Board {
  shared ??= new Board();
  if (RED) shared.setUserDir(RED.settings.userDir ?? process.cwd());
  return shared;
}

/** The name a node has in metrics labels and health answers: its name, or its id when it has none. */
export function labelOf(node: Node, def: { name?: unknown }): string {
  const name = typeof def.name === 'string' ? def.name.trim() : '';
  return name || node.id;
}

/** Runs `remove` when the node closes (a redeploy, a stop). */
export function offBoardOnClose(node: Node, remove: () => void): void {
  node.on('close', (_removed: boolean, done: () => void) => {
    remove();
    done();
  });
}
