/**
 * Turns a Node-RED message into text that survives a restart, and back.
 *
 * Buffers keep their bytes (base64), Dates their instant. Things that cannot outlive the process are left out rather
 * than failing the capture: functions, sockets and the req/res objects of an HTTP-in flow, and repeated references
 * (a circular structure keeps its first occurrence only).
 */

const BUFFER_TAG = '__uplinkBuffer';
const DATE_TAG = '__uplinkDate';
const TRANSIENT_KEYS = new Set(['_msgid', 'req', 'res', 'socket', '_session']);

export function encodeMessage(msg: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(msg, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = key === '' ? value : this[key];
    if (this === (msg as unknown) && TRANSIENT_KEYS.has(key)) return undefined;
    if (typeof raw === 'function' || typeof raw === 'symbol') return undefined;
    if (typeof raw === 'bigint') return raw.toString();
    if (Buffer.isBuffer(raw)) return { [BUFFER_TAG]: raw.toString('base64') };
    if (raw instanceof Uint8Array) return { [BUFFER_TAG]: Buffer.from(raw).toString('base64') };
    if (raw instanceof Date) return { [DATE_TAG]: Number.isNaN(raw.getTime()) ? null : raw.toISOString() };
    if (raw !== null && typeof raw === 'object') {
      if (seen.has(raw)) return undefined;
      seen.add(raw);
    }
    return value;
  });
}

export function decodeMessage(text: string): Record<string, unknown> {
  const value = JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (typeof o[BUFFER_TAG] === 'string' && Object.keys(o).length === 1) return Buffer.from(o[BUFFER_TAG], 'base64');
      if (DATE_TAG in o && Object.keys(o).length === 1) return o[DATE_TAG] === null ? new Date(NaN) : new Date(o[DATE_TAG] as string);
    }
    return v;
  }) as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('stored message is not an object');
  }
  return value as Record<string, unknown>;
}

/** Bytes a payload occupies as data the user cares about (what the size limit applies to). */
export function payloadBytes(payload: unknown): number {
  if (payload === undefined || payload === null) return 0;
  if (Buffer.isBuffer(payload)) return payload.length;
  if (payload instanceof Uint8Array) return payload.byteLength;
  if (typeof payload === 'string') return Buffer.byteLength(payload, 'utf8');
  const text = encodeMessage({ payload });
  return Buffer.byteLength(text, 'utf8') - '{"payload":}'.length;
}
