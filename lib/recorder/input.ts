// What a message sent to the recorder node means: Node-RED-free, as lib/queue/input.ts is for the queue.
import { Msg, readUplink } from '../message/uplink';

/** What a message sent to the recorder asks for. */
export type RecorderInput =
  | { type: 'command'; command: 'start' | 'stop' | 'status' }
  | { type: 'uploaded'; file: string }
  /** An uploader's failure wired back: the segment stays as it is. */
  | { type: 'upload-failed' }
  | { type: 'invalid'; error: string };

const COMMANDS = ['start', 'stop', 'status'] as const;

/**
 * Reads a message sent to the recorder: the uploader's result for a file (`msg.uplink.upload` on success,
 * `msg.uplink.ack` false on failure), else "start" / "stop" / "status" in msg.topic or msg.payload.
 */
export function classifyRecorderInput(msg: Msg): RecorderInput {
  const uplink = readUplink(msg);
  if (uplink.file !== undefined) {
    // Only a success may mark a segment uploaded: the budget deletes uploaded segments first.
    if (uplink.ack === false) return { type: 'upload-failed' };
    if (uplink.upload) return { type: 'uploaded', file: uplink.file };
  }
  for (const v of [msg.topic, msg.payload]) {
    const t = typeof v === 'string' ? v.trim().toLowerCase() : '';
    if ((COMMANDS as readonly string[]).includes(t)) return { type: 'command', command: t as (typeof COMMANDS)[number] };
  }
  return {
    type: 'invalid',
    error: 'the recorder takes "start", "stop" or "status" in msg.topic or msg.payload, or the uploader\'s results (msg.uplink.upload) for its segments',
  };
}
