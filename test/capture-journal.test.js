'use strict';
// The capture journal: files written and not yet committed by a queue, so that a capture killed in between is queued
// at the next start. A "restart" here is closing the journal and opening it again on the same folder.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Capturer } = require('../dist/lib/capture/still');
const { CaptureJournal, CAPTURE_STATE_DIR, carriedOf } = require('../dist/lib/capture/journal');
const { TestPatternSource } = require('../dist/lib/capture/sources/test-pattern');
const { tmpDir, rmrf } = require('./support/tmp');

const never = new AbortController().signal;
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

describe('capture journal', function () {
  let dir;
  let images;
  let events;
  let open = [];
  beforeEach(() => {
    dir = tmpDir();
    images = path.join(dir, 'images');
    events = { warnings: [], logs: [], warn: (t) => events.warnings.push(t), log: (t) => events.logs.push(t) };
  });
  afterEach(async () => {
    for (const j of open) await j.close().catch(() => undefined);
    open = [];
    rmrf(dir);
  });

  async function journal(owner = 'cap-1') {
    const j = await CaptureJournal.open(images, owner, events);
    open.push(j);
    return j;
  }

  async function restart(j, owner) {
    await j.close();
    return journal(owner);
  }

  /** A capturer writing test patterns under fixed times (two captures in one second get _1). */
  function capturer(j, at = new Date('2026-03-01T08:00:00.000Z')) {
    const c = new Capturer(new TestPatternSource({ width: 64, height: 48, camera: 'gate' }), {
      imagesFolder: images,
      nameTemplate: '{camera}/{date}_{time}.{ext}',
      camera: 'gate',
      minFreeBytes: 0,
      maxBytes: 1e7,
    }, () => at);
    c.journal = j;
    return c;
  }

  const journalFile = (owner = 'cap-1') => path.join(images, CAPTURE_STATE_DIR, `${owner}.journal`);
  const lines = (owner) => fs.readFileSync(journalFile(owner), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  it('journals each capture before it is in place, and sends again once what no queue committed', async function () {
    let j = await journal();
    const c = capturer(j);
    const carry = carriedOf({ topic: 'gpio/17', session: 'S-3', payload: 1, uplink: { note: 'from the trigger' } }, { court: '2' });
    const a = await c.capture(never, undefined, carry);
    const b = await c.capture(never, undefined, carry);
    assert.deepStrictEqual(a.journal, { owner: 'cap-1', entry: a.journal.entry });
    assert.strictEqual(path.basename(b.file), '2026-03-01_08-00-00_1.png', 'the second capture in that second');
    const written = lines().filter((r) => r.t === 'written');
    assert.deepStrictEqual(written.map((r) => r.file), ['gate/2026-03-01_08-00-00.png', 'gate/2026-03-01_08-00-00.png'], 'journalled under the name wanted, before the link');
    assert.deepStrictEqual(lines().filter((r) => r.t === 'placed').map((r) => r.file), ['gate/2026-03-01_08-00-00_1.png'], 'and where it went when that was taken');
    await j.queued(a.journal.entry);
    assert.strictEqual(j.openCount, 1);

    j = await restart(j);
    const recovered = j.takeRecovered();
    assert.strictEqual(recovered.length, 1);
    const r = recovered[0];
    assert.deepStrictEqual(
      { file: r.result.file, key: r.result.key, sha256: r.result.sha256, bytes: r.result.bytes, width: r.result.width, capturedAt: r.result.capturedAt },
      { file: b.file, key: b.key, sha256: b.sha256, bytes: b.bytes, width: b.width, capturedAt: b.capturedAt },
    );
    assert.deepStrictEqual(r.result.journal, b.journal, 'the same entry: the queue confirms it as before');
    assert.strictEqual(r.result.recovered, true);
    assert.deepStrictEqual(r.carry, { msg: { topic: 'gpio/17', session: 'S-3', uplink: { note: 'from the trigger' } }, metadata: { court: '2' } });
    assert.deepStrictEqual(j.takeRecovered(), [], 'handed out once');
    await j.resent([r.result.journal]);
    await j.queued(r.result.journal.entry);

    j = await restart(j);
    assert.deepStrictEqual(j.takeRecovered(), [], 'nothing left once the queue committed it');
    assert.deepStrictEqual(lines(), [{ t: 'acked-by-queue' }], 'compacted at start to what is still needed');
  });

  it('sends nothing again for a node no queue ever confirmed, and compacts its journal away', async function () {
    let j = await journal();
    const c = capturer(j);
    await c.capture(never);
    await c.capture(never);
    assert.ok(fs.existsSync(journalFile()));
    j = await restart(j);
    assert.deepStrictEqual(j.takeRecovered(), []);
    assert.strictEqual(fs.existsSync(journalFile()), false);
    assert.ok(events.logs.some((l) => /2 capture\(s\) left by the last run are on disk; no queue has ever confirmed a capture of this node/.test(l)), events.logs.join('\n'));
  });

  it('drops, with a log line, captures whose file no longer exists or is another file now', async function () {
    let j = await journal();
    const c = capturer(j);
    const a = await c.capture(never);
    await j.queued(a.journal.entry);
    const gone = await c.capture(never);
    const replaced = await c.capture(never);
    const kept = await c.capture(never);
    fs.unlinkSync(gone.file);
    fs.writeFileSync(replaced.file, Buffer.alloc(replaced.bytes, 7));
    j = await restart(j);
    assert.deepStrictEqual(j.takeRecovered().map((r) => r.result.file), [kept.file]);
    for (const f of [gone, replaced]) assert.ok(events.logs.some((l) => l.includes(f.key) && /no longer exists: dropped/.test(l)), events.logs.join('\n'));
    assert.deepStrictEqual(lines().filter((r) => r.t === 'written').map((r) => r.file), [kept.key]);
  });

  it('puts in place a capture killed between its journal entry and its link', async function () {
    let j = await journal();
    await j.queued((await capturer(j).capture(never)).journal.entry);
    // The steps of a capture up to its link: a synced temp file, journalled under the name it is meant to get.
    const png = await new TestPatternSource({ width: 32, height: 32, camera: 'gate' }).grab(never, 1e7);
    fs.mkdirSync(path.join(images, 'gate'), { recursive: true });
    const temp = path.join(images, 'gate', '.late.png.0001.part');
    fs.writeFileSync(temp, png);
    const wanted = path.join(images, 'gate', 'late.png');
    fs.writeFileSync(wanted, 'someone else took the name since');
    await j.written(temp, wanted, { bytes: png.length, sha256: sha(png), width: 32, height: 32, contentType: 'image/png', camera: 'gate', capturedAt: '2026-03-01T08:00:05.000Z' });

    j = await restart(j);
    const [r] = j.takeRecovered();
    assert.strictEqual(r.result.file, path.join(images, 'gate', 'late_1.png'), 'linked now, without overwriting');
    assert.strictEqual(r.result.key, 'gate/late_1.png');
    assert.ok(fs.readFileSync(r.result.file).equals(png));
    assert.strictEqual(fs.existsSync(temp), false, 'the temp file is gone');
  });

  it('does not put in place a temp file the power cut before its bytes were synced', async function () {
    let j = await journal();
    await j.queued((await capturer(j).capture(never)).journal.entry);
    const png = await new TestPatternSource({ width: 32, height: 32, camera: 'gate' }).grab(never, 1e7);
    const temp = path.join(images, 'gate', '.torn.png.0003.part');
    fs.writeFileSync(temp, Buffer.alloc(png.length));
    await j.written(temp, path.join(images, 'gate', 'torn.png'), { bytes: png.length, sha256: sha(png) });

    j = await restart(j);
    assert.deepStrictEqual(j.takeRecovered(), []);
    assert.strictEqual(fs.existsSync(path.join(images, 'gate', 'torn.png')), false);
    assert.strictEqual(fs.existsSync(temp), false);
    assert.ok(events.logs.some((l) => /gate\/torn\.png left by the last run was not whole on disk/.test(l)), events.logs.join('\n'));
  });

  it('finds a capture killed after its link, before the journal knew its name, by its inode', async function () {
    let j = await journal();
    await j.queued((await capturer(j).capture(never)).journal.entry);
    const png = await new TestPatternSource({ width: 32, height: 32, camera: 'gate' }).grab(never, 1e7);
    const temp = path.join(images, 'gate', '.same.png.0002.part');
    fs.writeFileSync(temp, png);
    const wanted = path.join(images, 'gate', 'same.png');
    fs.writeFileSync(wanted, 'an earlier capture in that second');
    await j.written(temp, wanted, { bytes: png.length, sha256: sha(png) });
    fs.linkSync(temp, path.join(images, 'gate', 'same_1.png'));

    j = await restart(j);
    const [r] = j.takeRecovered();
    assert.strictEqual(r.result.file, path.join(images, 'gate', 'same_1.png'));
    assert.deepStrictEqual(fs.readdirSync(path.join(images, 'gate')).filter((f) => f.startsWith('same')).sort(), ['same.png', 'same_1.png'], 'no third copy');
    assert.strictEqual(fs.existsSync(temp), false);
  });

  it('gives up on a capture sent again at three starts without a queue confirming it', async function () {
    let j = await journal();
    const c = capturer(j);
    await j.queued((await c.capture(never)).journal.entry);
    const stuck = await c.capture(never);
    for (let start = 1; start <= 3; start++) {
      j = await restart(j);
      const r = j.takeRecovered();
      assert.deepStrictEqual(r.map((x) => x.result.file), [stuck.file], `sent again at start ${start}`);
      await j.resent(r.map((x) => x.result.journal));
    }
    j = await restart(j);
    assert.deepStrictEqual(j.takeRecovered(), []);
    assert.ok(events.logs.some((l) => /was sent again at 3 starts and no queue confirmed it/.test(l)));
    assert.ok(fs.existsSync(stuck.file), 'the file stays');
  });

  it('stays small: compacts as the queue confirms, and forgets the oldest past 1000 unconfirmed', async function () {
    this.timeout(60000);
    let j = await journal();
    const facts = { bytes: 1, sha256: 'x' };
    const write = (i) => j.written(path.join(images, `.t${i}.part`), path.join(images, `f${i}.png`), facts);
    for (let i = 0; i < 1200; i++) await j.queued((await write(i)).entry);
    assert.ok(j.lines <= 2 * j.openCount + 500, `${j.lines} lines`);
    assert.ok(fs.statSync(journalFile()).size < 100 * 1024, `${fs.statSync(journalFile()).size} bytes`);
    for (let i = 0; i < 1001; i++) await write(2000 + i);
    await j.close();
    assert.strictEqual(lines().filter((r) => r.t === 'written').length, 500, 'down to half the bound');
    assert.ok(events.warnings.some((w) => /1000 captures were not confirmed by a queue/.test(w)), events.warnings.join('\n'));
  });

  it('keeps one journal per capture node in a shared folder', async function () {
    const a = await journal('node-a');
    const b = await journal('node/b');
    await a.queued((await capturer(a).capture(never)).journal.entry);
    await capturer(b).capture(never);
    assert.deepStrictEqual(fs.readdirSync(path.join(images, CAPTURE_STATE_DIR)).sort(), ['node-a.journal', 'node_b.journal']);
  });

  it('keeps of the trigger only what can be stored, and its topic when the rest is too large', function () {
    const trigger = { topic: 't', payload: Buffer.alloc(10), _msgid: 'm1', req: {}, res: {}, session: 'S' };
    assert.deepStrictEqual(carriedOf(trigger, {}), { msg: { topic: 't', session: 'S' }, metadata: {} });
    const circular = { topic: 'c' };
    circular.self = circular;
    assert.deepStrictEqual(carriedOf(circular, { a: 1 }), { msg: { topic: 'c' }, metadata: { a: 1 } });
    assert.deepStrictEqual(carriedOf({ topic: 'big', blob: 'x'.repeat(20000) }, {}).msg, { topic: 'big' });
  });
});
