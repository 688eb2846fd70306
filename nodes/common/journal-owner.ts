import type { Node, NodeAPI } from 'node-red';
import { Msg, readUplink } from '../../lib/message/uplink';

/** A node that journals its files until a queue has committed them (the capture node; see lib/capture/journal). */
export interface JournalOwnerNode<TCreds extends object = object> extends Node<TCreds> {
  queued?: (entry: string) => void;
}

/**
 * Tells the node that wrote a message's file that a queue has committed it: the node is found by the id its message
 * carries (msg.uplink.journal.owner), as the uploader finds the queue. A node gone since (redeployed) is no error: its
 * capture is then sent once more at the next start, under the same key.
 */
export function confirmQueued(RED: NodeAPI, msg: Msg): void {
  const ref = readUplink(msg).journal;
  if (!ref) return;
  const owner = RED.nodes.getNode(ref.owner) as JournalOwnerNode | null;
  owner?.queued?.(ref.entry);
}
