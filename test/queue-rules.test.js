'use strict';
const assert = require('assert');
const { backoffDelay, parseRetryAfter, MAX_RETRY_AFTER_MS } = require('../dist/lib/util/backoff');
const { classifyInput } = require('../dist/lib/queue/input');
const { encodeMessage, decodeMessage, payloadBytes } = require('../dist/lib/message/codec');
const { parseQueueConfig } = require('../dist/lib/queue/config');
const { statusOf } = require('../dist/lib/queue/status');

/** @typedef {import('../dist/lib/queue/input').QueueInput} QueueInput */
/** @typedef {Extract<QueueInput, { type: 'ack' }>} Ack */
/** @typedef {Extract<QueueInput, { type: 'nack' }>} Nack */
/** @typedef {Extract<QueueInput, { type: 'invalid' }>} Invalid */

describe('backoff', function () {
  it('doubles the ceiling per attempt up to the cap', function () {
    const p = { baseMs: 1000, capMs: 10_000 };
    assert.deepStrictEqual([1, 2, 3, 4, 5, 20].map((a) => backoffDelay(p, a, () => 0.999999)), [999, 1999, 3999, 7999, 9999, 9999]);
    assert.strictEqual(backoffDelay(p, 3, () => 0), 0, 'full jitter reaches zero');
  });

  it('reads Retry-After as seconds, as an HTTP date, and caps it at a day', function () {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.strictEqual(parseRetryAfter('120', now), 120_000);
    assert.strictEqual(parseRetryAfter(2.5, now), 2500);
    assert.strictEqual(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now), 60_000);
    assert.strictEqual(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0, 'a date in the past means now');
    assert.strictEqual(parseRetryAfter('999999999', now), MAX_RETRY_AFTER_MS);
    assert.strictEqual(parseRetryAfter('soon', now), undefined);
    assert.strictEqual(parseRetryAfter(-1, now), undefined);
    assert.strictEqual(parseRetryAfter(undefined, now), undefined);
  });
});

describe('what a message means to the queue', function () {
  it('an uploader success or failure wired back is an ack or a nack', function () {
    assert.deepStrictEqual(classifyInput({ uplink: { item: { id: 7, attempt: 2 }, ack: true } }), { type: 'ack', id: 7, attempt: 2 });
    const nack = classifyInput({
      uplink: { item: { id: 7, attempt: 2 }, ack: false, error: { class: 'retryable', code: 429, message: 'Too Many Requests', retryAfter: '30' } },
    });
    assert.deepStrictEqual(nack, {
      type: 'nack',
      id: 7,
      attempt: 2,
      info: { message: 'Too Many Requests', code: '429', permanent: false, retryAfterMs: 30_000, offline: false, held: false },
    });
    const perm = classifyInput({ topic: 'nack', uplink: { item: { id: 3 } }, error: { message: 'Access Denied', source: {} } });
    assert.strictEqual(perm.type, 'nack');
    assert.strictEqual(perm.info.message, 'Access Denied');
    assert.strictEqual(/** @type {Nack} */ (classifyInput({ topic: 'nack', uplink: { item: { id: 3 }, error: { class: 'permanent', message: 'x' } } })).info.permanent, true);
  });

  it('topic ack takes the id from the item, the payload id or a bare number', function () {
    assert.strictEqual(/** @type {Ack} */ (classifyInput({ topic: 'ack', payload: { id: 9 } })).id, 9);
    assert.strictEqual(/** @type {Ack} */ (classifyInput({ topic: 'ack', payload: 11 })).id, 11);
    assert.match(/** @type {Invalid} */ (classifyInput({ topic: 'ack', payload: 'x' })).error, /needs the queue item id/);
  });

  it('commands and connectivity are control messages', function () {
    assert.deepStrictEqual(classifyInput({ topic: 'pause' }), { type: 'command', command: 'pause', ids: undefined, deleteFiles: false });
    assert.deepStrictEqual(classifyInput({ topic: 'purge-failed', payload: { ids: [1, '2'], deleteFiles: true } }), {
      type: 'command',
      command: 'purge-failed',
      ids: [1, 2],
      deleteFiles: true,
    });
    assert.deepStrictEqual(classifyInput({ topic: 'connectivity', payload: { online: false, reason: 'timeout' } }), {
      type: 'connectivity',
      online: false,
      reason: 'timeout',
      configured: true,
    });
    // A target whose settings are blank: the queue takes nothing meant for it.
    assert.strictEqual(/** @type {any} */ (classifyInput({ topic: 'connectivity', payload: { online: false, configured: false } })).configured, false);
    assert.match(/** @type {Invalid} */ (classifyInput({ topic: 'connectivity', payload: 'up' })).error, /msg.payload.online/);
    assert.match(/** @type {Invalid} */ (classifyInput({ topic: 'retry-failed', payload: { ids: ['a'] } })).error, /whole numbers/);
  });

  it('everything else with a file or a payload is an item; a message with a topic and nothing in it is an error', function () {
    assert.deepStrictEqual(classifyInput({ uplink: { file: '/a.jpg' }, topic: 'gpio/17' }), { type: 'item', file: '/a.jpg', priority: undefined });
    assert.deepStrictEqual(classifyInput({ filename: '/b.jpg', priority: '2' }), { type: 'item', file: '/b.jpg', priority: 2 });
    assert.deepStrictEqual(classifyInput({ payload: 0 }), { type: 'item', priority: undefined });
    assert.match(/** @type {Invalid} */ (classifyInput({ topic: 'pasue' })).error, /"pasue" is not a command/);
    assert.match(/** @type {Invalid} */ (classifyInput({ payload: 1, priority: 'high' })).error, /msg.priority must be a whole number/);
    assert.match(/** @type {Invalid} */ (classifyInput({ payload: 1, uplink: { item: { id: 4 } } })).error, /coming back without an outcome/);
  });
});

describe('message codec', function () {
  it('keeps buffers, dates and nested data; drops what cannot outlive the process', function () {
    const msg = {
      _msgid: 'abc',
      payload: Buffer.from([0, 1, 2, 255]),
      when: new Date('2026-05-01T10:00:00Z'),
      nested: { list: [1, 'two', { b: Buffer.from('hi') }] },
      fn: () => 1,
      req: { socket: {} },
    };
    msg.self = msg;
    const back = /** @type {{ payload: Buffer, when: Date, nested: { list: any[] } }} */ (decodeMessage(encodeMessage(msg)));
    assert.deepStrictEqual(back.payload, Buffer.from([0, 1, 2, 255]));
    assert.strictEqual(back.when.toISOString(), '2026-05-01T10:00:00.000Z');
    assert.deepStrictEqual(back.nested.list[2].b, Buffer.from('hi'));
    for (const gone of ['_msgid', 'fn', 'req', 'self']) assert.ok(!(gone in back), `${gone} is left out`);
  });

  it('measures payload bytes as stored', function () {
    assert.strictEqual(payloadBytes(Buffer.alloc(10)), 10);
    assert.strictEqual(payloadBytes('é'), 2);
    assert.strictEqual(payloadBytes({ a: 1 }), 7);
    assert.strictEqual(payloadBytes(undefined), 0);
  });

  it('refuses a stored text that is not a message', function () {
    assert.throws(() => decodeMessage('[1,2]'), /not an object/);
  });
});

describe('queue configuration', function () {
  it('defaults to a database in the user folder that it may create', function () {
    const c = parseQueueConfig({}, '/home/pi/.node-red');
    assert.strictEqual(c.dbFile, '/home/pi/.node-red/uplink/queue.db');
    assert.strictEqual(c.createFolder, true);
    assert.strictEqual(c.policy.maxAttempts, 10);
    assert.strictEqual(c.synchronous, 'FULL');
  });

  it('does not create the folder of an absolute path (a disk that may not be mounted), but does inside the user folder', function () {
    const c = parseQueueConfig({ db: '/mnt/usb/q.db' }, '/home/pi/.node-red');
    assert.strictEqual(c.createFolder, false);
    const inside = parseQueueConfig({ db: 'queues/cam1.db' }, '/home/pi/.node-red');
    assert.deepStrictEqual([inside.dbFile, inside.createFolder], ['/home/pi/.node-red/queues/cam1.db', true]);
  });

  it('converts editor units and lists every mistake at once', function () {
    const c = parseQueueConfig({ ttl: '24', maxMB: 1.5, lease: 30, keepDays: 2, fileRetention: 'delete-after-days', deleteFolder: 'images' }, '/u');
    assert.strictEqual(c.policy.ttlMs, 86_400_000);
    assert.strictEqual(c.policy.maxBytes, 1_572_864);
    assert.strictEqual(c.policy.leaseMs, 30_000);
    assert.strictEqual(c.policy.keepFilesMs, 2 * 86_400_000);
    assert.strictEqual(c.deleteFolder, '/u/images');
    assert.throws(
      () => parseQueueConfig({ concurrency: 'many', whenFull: 'panic', fileRetention: 'delete-on-ack' }, '/u'),
      (/** @type {Error} */ e) =>
        /Concurrency must be a whole number/.test(e.message) &&
        /When full must be one of reject, drop-oldest/.test(e.message) &&
        /Deleting uploaded files needs "Only files in"/.test(e.message),
    );
  });
});

describe('queue status text', function () {
  // The fields of the queue's stats that its status reads.
  const base = /** @type {import('../dist/lib/queue/status').QueueStats} */ ({ online: true, paused: false, pending: 12, inFlight: 3, failed: 1, expired: 0, lastError: null });
  it('reads like the state of the queue', function () {
    assert.deepStrictEqual(statusOf(base), { fill: 'green', shape: 'dot', text: 'online · 12 pending · 3 in flight · 1 failed' });
    assert.deepStrictEqual(statusOf({ ...base, online: false, inFlight: 0, failed: 0 }), { fill: 'yellow', shape: 'ring', text: 'offline · 12 pending' });
    assert.strictEqual(statusOf({ ...base, paused: true }).text, 'paused · 12 pending · 3 in flight · 1 failed');
    assert.strictEqual(statusOf({ ...base, online: false, paused: true }).text, 'offline · paused · 12 pending · 3 in flight · 1 failed');
    assert.strictEqual(statusOf({ ...base, lastError: 'database error: the disk is full' }).fill, 'red');
  });
});
