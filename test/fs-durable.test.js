'use strict';
// The durable file steps every writer shares: a whole-file replace that leaves the old file or the new one, folders
// made with their entries synced, and the append-only journal of the recorder and the capture.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { writeFileDurably, makeFolderDurably } = require('../dist/lib/util/fs-durable');
const { AppendLog } = require('../dist/lib/util/append-log');
const { tmpDir, rmrf } = require('./support/tmp');

/** AppendLog's constructor and load are for its subclasses; a test subclass opens one. */
class TestLog extends AppendLog {
  /** @param {string} file @param {{ syncEveryWrite?: boolean }} [options] */
  static async open(file, options) {
    const log = new TestLog(file, options);
    const records = await log.load(
      /** @returns {r is { t: string }} */
      (/** @type {any} */ r) => r !== null && typeof r === 'object' && typeof r.t === 'string',
    );
    return { log, records };
  }
}

describe('durable file steps', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  it('replaces a file whole and leaves no temp file', async function () {
    const file = path.join(dir, 'flows.json');
    fs.writeFileSync(file, 'old');
    await writeFileDurably(file, '[{"id":"a"}]');
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '[{"id":"a"}]');
    await writeFileDurably(file, Buffer.from('[]'));
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '[]');
    assert.deepStrictEqual(fs.readdirSync(dir), ['flows.json']);
  });

  it('replaces a temp file a crash left, and leaves the old file when the rename fails', async function () {
    const file = path.join(dir, 'settings.js');
    fs.writeFileSync(`${file}.tmp`, 'half of an older attempt');
    await writeFileDurably(file, 'module.exports = {};\n');
    assert.deepStrictEqual(fs.readdirSync(dir), ['settings.js']);
    // A folder where the file should be: the rename fails, nothing half-done remains.
    const taken = path.join(dir, 'taken');
    fs.mkdirSync(path.join(taken, 'inside'), { recursive: true });
    await assert.rejects(writeFileDurably(taken, 'x'));
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['settings.js', 'taken']);
  });

  it('writes a secret readable by its owner only, even over a stale temp file others could read', async function () {
    const file = path.join(dir, 'credential-secret');
    fs.writeFileSync(`${file}.tmp`, 'left by a crash', { mode: 0o644 });
    await writeFileDurably(file, 'k3y', { mode: 0o600 });
    assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'k3y');
    assert.deepStrictEqual(fs.readdirSync(dir), ['credential-secret']);
  });

  it('makes nested folders, and is content when they exist', async function () {
    const deep = path.join(dir, 'a', 'b', 'c');
    await makeFolderDurably(deep);
    assert.ok(fs.statSync(deep).isDirectory());
    await makeFolderDurably(deep);
    await makeFolderDurably(path.join(dir, 'a'));
  });
});

describe('append-only journal', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  it('creates nothing until the first append, then keeps every record across a reopen', async function () {
    const file = path.join(dir, 'state', 'journal');
    const { log, records } = await TestLog.open(file);
    assert.deepStrictEqual(records, []);
    assert.strictEqual(fs.existsSync(path.join(dir, 'state')), false, 'nothing on disk for a journal never written');
    await log.append({ t: 'a', n: 1 }, { t: 'b', n: 2 });
    await log.appendUnsynced({ t: 'c', n: 3 });
    assert.strictEqual(log.lines, 3);
    await log.close();
    await assert.rejects(log.append({ t: 'late' }), /closed/);
    const again = await TestLog.open(file);
    assert.deepStrictEqual(again.records, [{ t: 'a', n: 1 }, { t: 'b', n: 2 }, { t: 'c', n: 3 }]);
    await again.log.close();
  });

  it('cuts a line torn by a crash, and skips lines that are not records', async function () {
    const file = path.join(dir, 'journal');
    fs.writeFileSync(file, '{"t":"a"}\nnot json\n[1]\n{"t":"b"}\n{"t":"c","half');
    const { log, records } = await TestLog.open(file);
    assert.deepStrictEqual(records, [{ t: 'a' }, { t: 'b' }]);
    await log.append({ t: 'd' });
    await log.close();
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '{"t":"a"}\nnot json\n[1]\n{"t":"b"}\n{"t":"d"}\n');
  });

  it('rewrites itself whole, appends after the rewrite, and removes itself when nothing is left', async function () {
    const file = path.join(dir, 'journal');
    const { log } = await TestLog.open(file);
    for (let i = 0; i < 5; i++) await log.append({ t: 'x', i });
    await log.rewrite([{ t: 'keep', i: 4 }]);
    await log.append({ t: 'after' });
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '{"t":"keep","i":4}\n{"t":"after"}\n');
    assert.strictEqual(log.lines, 2);
    await log.rewrite([]);
    assert.strictEqual(fs.existsSync(file), false);
    await log.append({ t: 'new' });
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '{"t":"new"}\n');
    await log.close();
  });

  it('opens a log whose every append is synced with O_DSYNC, and appends to it as before, across a rewrite', async function () {
    /** The open flags of the log's file, as the kernel holds them (octal in /proc). */
    const flagsOf = (/** @type {any} */ log) => parseInt(/flags:\s*([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${log['fh'].fd}`, 'utf8'))[1], 8);
    const file = path.join(dir, 'journal');
    const { log } = await TestLog.open(file, { syncEveryWrite: true });
    await log.append({ t: 'a' });
    assert.ok(flagsOf(log) & fs.constants.O_DSYNC, 'O_DSYNC');
    assert.ok(flagsOf(log) & fs.constants.O_APPEND, 'O_APPEND');
    await log.appendUnsynced({ t: 'b' });
    await log.rewrite([{ t: 'kept' }]);
    await log.append({ t: 'c' });
    assert.ok(flagsOf(log) & fs.constants.O_DSYNC, 'O_DSYNC after the rewrite');
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '{"t":"kept"}\n{"t":"c"}\n');
    await log.close();
    const plain = await TestLog.open(path.join(dir, 'plain'));
    await plain.log.append({ t: 'a' });
    assert.strictEqual(flagsOf(plain.log) & fs.constants.O_DSYNC, 0, 'a plain log syncs with fdatasync');
    await plain.log.close();
  });
});
