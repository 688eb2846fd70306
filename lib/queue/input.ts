import { parseRetryAfter } from '../util/backoff';
import { NackInfo } from './store';
import { fileOf, isRecord, Msg, uplinkRecord } from '../message/uplink';

export const COMMANDS = ['pause', 'resume', 'retry-failed', 'purge-failed', 'stats'] as const;
export type Command = (typeof COMMANDS)[number];

export type QueueInput =
  | { type: 'ack'; id: number; attempt?: number }
  | { type: 'nack'; id: number; attempt?: number; info: NackInfo }
  | { type: 'command'; command: Command; ids?: number[]; deleteFiles: boolean }
  | { type: 'connectivity'; online: boolean; reason?: string; configured: boolean }
  | { type: 'item'; file?: string; priority?: number }
  | { type: 'invalid'; error: string };

function obj(v: unknown): Msg | undefined {
  return isRecord(v) ? v : undefined;
}

function positiveInt(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Decides what an incoming message means to the queue. The rules, in order:
 * 1. `msg.topic` "ack"/"nack", or a message carrying `msg.uplink.item` with `msg.uplink.ack` true/false, answers a
 *    delivery (the uploader's outputs wired back set `msg.uplink.ack`).
 * 2. `msg.topic` "connectivity" with `msg.payload.online`, or one of the command topics, controls the queue.
 * 3. Anything else with a file (`msg.uplink.file`, `msg.filename`) or a payload is a new item.
 */
export function classifyInput(msg: Msg): QueueInput {
  const topic = typeof msg.topic === 'string' ? msg.topic.trim() : '';
  const uplink = uplinkRecord(msg);
  const item = obj(uplink?.item);

  if (topic === 'ack' || topic === 'nack' || (item && typeof uplink?.ack === 'boolean')) {
    const payload = obj(msg.payload);
    const id = positiveInt(item?.id) ?? positiveInt(payload?.id) ?? positiveInt(msg.payload);
    if (id === undefined) {
      return { type: 'invalid', error: `an ${topic || 'ack'} needs the queue item id in msg.uplink.item.id (it came with the delivered message)` };
    }
    const attempt = positiveInt(item?.attempt);
    const isAck = topic === 'ack' || (topic !== 'nack' && uplink?.ack === true);
    if (isAck) return { type: 'ack', id, attempt };
    return { type: 'nack', id, attempt, info: nackInfo(msg, uplink) };
  }

  if (topic === 'connectivity') {
    const online = obj(msg.payload)?.online;
    if (typeof online !== 'boolean') {
      return { type: 'invalid', error: 'a connectivity message needs msg.payload.online set to true or false' };
    }
    const reason = obj(msg.payload)?.reason;
    // A target whose settings are blank: nothing meant for it may be queued (it would be sent once configured).
    const configured = obj(msg.payload)?.configured !== false;
    return { type: 'connectivity', online, reason: typeof reason === 'string' ? reason : undefined, configured };
  }

  if ((COMMANDS as readonly string[]).includes(topic)) {
    const payload = obj(msg.payload);
    let ids: number[] | undefined;
    const rawIds = payload?.ids ?? (Array.isArray(msg.payload) ? msg.payload : undefined) ?? positiveInt(msg.payload);
    if (rawIds !== undefined) {
      const list = Array.isArray(rawIds) ? rawIds : [rawIds];
      ids = list.map(positiveInt).filter((n): n is number => n !== undefined);
      if (ids.length !== list.length) return { type: 'invalid', error: `${topic}: item ids must be whole numbers above 0` };
    }
    return { type: 'command', command: topic as Command, ids, deleteFiles: payload?.deleteFiles === true };
  }

  if (item && item.id !== undefined) {
    return {
      type: 'invalid',
      error: `this message is queue item ${String(item.id)} coming back without an outcome: set msg.uplink.ack (true or false) or msg.topic ("ack" or "nack")`,
    };
  }

  let priority: number | undefined;
  if (msg.priority !== undefined && msg.priority !== null && msg.priority !== '') {
    const p = typeof msg.priority === 'string' ? Number(msg.priority) : msg.priority;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 1000) {
      return { type: 'invalid', error: `msg.priority must be a whole number from 0 to 1000 (1 goes first), not ${JSON.stringify(msg.priority)}` };
    }
    priority = p;
  }

  const file = fileOf(msg);
  if (file !== undefined) return { type: 'item', file, priority };

  if (msg.payload === undefined || msg.payload === null || msg.payload === '') {
    if (topic !== '') {
      return {
        type: 'invalid',
        error: `nothing to queue, and "${topic}" is not a command (commands: ${COMMANDS.join(', ')}, connectivity, ack, nack)`,
      };
    }
    return { type: 'invalid', error: 'nothing to queue: the message has no msg.uplink.file, msg.filename or msg.payload' };
  }
  return { type: 'item', priority };
}

function nackInfo(msg: Msg, uplink: Msg | undefined): NackInfo {
  const e = obj(uplink?.error) ?? obj(msg.error) ?? {};
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : typeof msg.error === 'string' ? msg.error : 'failed (no reason given)';
  const cls = typeof e.class === 'string' ? e.class : undefined;
  const retryAfterMs =
    typeof e.retryAfterMs === 'number' && e.retryAfterMs >= 0 ? Math.round(e.retryAfterMs) : parseRetryAfter(e.retryAfter);
  return {
    message,
    code: typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : undefined,
    permanent: e.permanent === true || cls === 'permanent',
    retryAfterMs,
    offline: cls === 'offline',
    held: cls === 'held',
  };
}
