'use strict';
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Capturer } = require('../dist/lib/capture/still');
const { TriggerGate, gpioLevel } = require('../dist/lib/capture/trigger');
const { TestPatternSource } = require('../dist/lib/capture/sources/test-pattern');
const { parseCaptureConfig } = require('../dist/lib/capture/config');
const { inspectImage } = require('../dist/lib/capture/image-info');
const { errorWith } = require('./support/errors');
const { prepareFolder, warnOnceCannotTell } = require('../dist/lib/capture/file-steps');
const { tmpDir, rmrf } = require('./support/tmp');

const never = new AbortController().signal;

/** A source that hands out whatever the test says. */
function fixed(data) {
  return { kind: 'fixed', grab: async () => data, close: async () => undefined };
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('capture to disk', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  const opts = (extra = {}) => ({ imagesFolder: path.join(dir, 'images'), nameTemplate: '{camera}/{date}_{time}_{width}_{height}.{ext}', camera: 'gate', minFreeBytes: 0, maxBytes: 5 * 1024 * 1024, ...extra });

  it('writes the image under its name, whole, and describes it', async function () {
    const png = await new TestPatternSource({ width: 320, height: 180, camera: 'gate' }).grab(never, 1e7);
    const at = new Date('2026-06-01T12:34:56.000Z');
    const r = await new Capturer(fixed(png), opts(), () => at).capture(never);
    assert.strictEqual(r.file, path.join(dir, 'images', 'gate', '2026-06-01_12-34-56_320_180.png'));
    assert.strictEqual(r.key, 'gate/2026-06-01_12-34-56_320_180.png');
    assert.ok(fs.readFileSync(r.file).equals(png));
    assert.deepStrictEqual(
      { bytes: r.bytes, width: r.width, height: r.height, contentType: r.contentType, camera: r.camera, capturedAt: r.capturedAt },
      { bytes: png.length, width: 320, height: 180, contentType: 'image/png', camera: 'gate', capturedAt: '2026-06-01T12:34:56.000Z' },
    );
    assert.strictEqual(r.sha256, crypto.createHash('sha256').update(png).digest('hex'));
    assert.deepStrictEqual(walk(path.join(dir, 'images')), [r.file], 'no temp file is left behind');
  });

  it('adds a suffix instead of overwriting when two captures share a second', async function () {
    const src = new TestPatternSource({ width: 240, height: 120, camera: 'gate' });
    const at = new Date('2026-06-01T12:34:56.000Z');
    const c = new Capturer(src, opts(), () => at);
    const a = await c.capture(never);
    const b = await c.capture(never);
    const d = await c.capture(never);
    assert.deepStrictEqual([a.file, b.file, d.file].map((f) => path.basename(f)), ['2026-06-01_12-34-56_240_120.png', '2026-06-01_12-34-56_240_120_1.png', '2026-06-01_12-34-56_240_120_2.png']);
    assert.notStrictEqual(fs.readFileSync(a.file).toString('hex'), fs.readFileSync(b.file).toString('hex'), 'both images kept');
  });

  it('keeps hostile camera names and templates inside the images folder', async function () {
    const png = await new TestPatternSource({ width: 16, height: 16, camera: 'x' }).grab(never, 1e7);
    for (const camera of ['../../etc', '/etc/passwd', 'a/../../b', '..', 'cam\u0000era\n']) {
      const r = await new Capturer(fixed(png), opts({ camera })).capture(never);
      assert.ok(r.file.startsWith(path.join(dir, 'images') + path.sep), `${JSON.stringify(camera)} -> ${r.file}`);
      assert.strictEqual(r.key.split('/').length, 2, 'one folder level, from the template');
    }
    const r = await new Capturer(fixed(png), opts({ nameTemplate: '../../../{camera}/{time}.{ext}' })).capture(never);
    assert.ok(r.file.startsWith(path.join(dir, 'images') + path.sep), r.file);
  });

  it('refuses to capture when the disk is below the space kept free, and writes nothing', async function () {
    const png = await new TestPatternSource({ width: 16, height: 16, camera: 'x' }).grab(never, 1e7);
    let grabbed = 0;
    const src = { kind: 'counting', grab: async () => (grabbed++, png), close: async () => undefined };
    await assert.rejects(new Capturer(src, opts({ minFreeBytes: Number.MAX_SAFE_INTEGER })).capture(never), errorWith('DISK_FULL', /free on the disk of/));
    assert.strictEqual(grabbed, 0, 'the camera is not even asked');
    assert.deepStrictEqual(walk(path.join(dir, 'images')), []);
  });

  it('captures on a file system that cannot say how full it is, and says so once, as a warning', async function () {
    const folder = path.join(dir, 'images');
    const warnings = [];
    const cannotTell = warnOnceCannotTell(folder, () => (text) => warnings.push(text));
    const unsupported = async () => {
      throw Object.assign(new Error('statfs: function not implemented'), { code: 'ENOSYS' });
    };
    for (const statfs of [unsupported, async () => ({ bavail: 0, bsize: 0, blocks: 0 }), async () => ({ bavail: 0, bsize: 4096, blocks: 0 })]) {
      await prepareFolder(folder, 200 * 1024 * 1024, { statfs, cannotTell });
    }
    assert.strictEqual(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /cannot tell how much room is left on the disk of .*images \(the file system does not say \(ENOSYS\)\): capturing without the "Keep free" check/);
    // A disk that does report its size, and is full, still stops the capture.
    await assert.rejects(prepareFolder(folder, 200 * 1024 * 1024, { statfs: async () => ({ bavail: 10, bsize: 4096, blocks: 1000 }), cannotTell }), errorWith('DISK_FULL'));
    await prepareFolder(folder, 200 * 1024 * 1024, { statfs: async () => ({ bavail: 1e6, bsize: 4096, blocks: 2e6 }), cannotTell });
    assert.strictEqual(warnings.length, 1);
  });

  it('refuses what is not an image, or is too large, and writes nothing', async function () {
    await assert.rejects(new Capturer(fixed(Buffer.from('<html>login</html>')), opts()).capture(never), errorWith('NOT_AN_IMAGE', /web page/));
    const png = await new TestPatternSource({ width: 64, height: 64, camera: 'x' }).grab(never, 1e7);
    await assert.rejects(new Capturer(fixed(png), opts({ maxBytes: 100 })).capture(never), errorWith('TOO_LARGE'));
    const cut = png.subarray(0, 30);
    await assert.rejects(new Capturer(fixed(cut), opts()).capture(never), errorWith('BAD_IMAGE'));
    assert.deepStrictEqual(walk(path.join(dir, 'images')), []);
  });

  it('says clearly when the images folder cannot be written', async function () {
    fs.writeFileSync(path.join(dir, 'blocker'), 'x');
    const png = await new TestPatternSource({ width: 16, height: 16, camera: 'x' }).grab(never, 1e7);
    await assert.rejects(new Capturer(fixed(png), opts({ imagesFolder: path.join(dir, 'blocker', 'images') })).capture(never), errorWith('FOLDER', /cannot create the images folder/));
  });

  it('accepts a JPEG cut by the camera only when it is whole', function () {
    const jpeg = Buffer.from(
      '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==',
      'base64',
    );
    assert.deepStrictEqual(inspectImage(jpeg), { format: 'jpeg', contentType: 'image/jpeg', width: 1, height: 1, ext: 'jpg' });
    assert.throws(() => inspectImage(jpeg.subarray(0, jpeg.length - 2)), /cut short/);
  });
});

describe('triggers', function () {
  /**
   * A gate whose kept triggers are plain labels.
   * @type {(o?: Partial<import('../dist/lib/capture/trigger').TriggerOptions>) => TriggerGate<string | number>}
   */
  const gate = (o = {}) => new TriggerGate({ edge: 'rising', minIntervalMs: 0, overlap: 'skip', maxQueued: 2, ...o });

  it('captures on a GPIO rising edge and ignores the falling one', function () {
    const g = gate();
    assert.strictEqual(g.offer({ topic: 'gpio/17', payload: 0 }, 0, 'a'), 'falling-edge');
    assert.strictEqual(g.offer({ topic: 'gpio/17', payload: 1 }, 1, 'b'), 'capture');
    g.finished();
    assert.strictEqual(gate({ edge: 'both' }).offer({ topic: 'gpio/17', payload: 0 }, 0, 'c'), 'capture');
    assert.strictEqual(g.offer({ payload: 1700000000000 }, 10, 'inject'), 'capture', 'an inject timestamp is not a level');
    assert.deepStrictEqual([gpioLevel({ topic: 'gpio/4', payload: '1' }), gpioLevel({ topic: 'door', payload: true }), gpioLevel({ payload: 'x' })], [1, undefined, undefined]);
  });

  it('debounces a bouncing button', function () {
    const g = gate({ minIntervalMs: 200 });
    const verdicts = [0, 5, 9, 14, 250].map((t, i) => {
      const v = g.offer({ topic: 'gpio/17', payload: 1 }, t, i);
      if (v === 'capture') g.finished();
      return v;
    });
    assert.deepStrictEqual(verdicts, ['capture', 'debounced', 'debounced', 'debounced', 'capture']);
    assert.strictEqual(g.counts.debounced, 3);
  });

  it('skips, or keeps a bounded number of, triggers that arrive during a capture', function () {
    const skip = gate();
    assert.strictEqual(skip.offer({}, 0, 1), 'capture');
    assert.strictEqual(skip.offer({}, 1, 2), 'busy-skipped');
    assert.strictEqual(skip.finished(), undefined);
    assert.strictEqual(skip.offer({}, 2, 3), 'capture');

    const keep = gate({ overlap: 'queue', maxQueued: 2 });
    assert.deepStrictEqual([keep.offer({}, 0, 'a'), keep.offer({}, 1, 'b'), keep.offer({}, 2, 'c'), keep.offer({}, 3, 'd')], ['capture', 'queued', 'queued', 'queue-full']);
    assert.deepStrictEqual([keep.finished(), keep.finished(), keep.finished()], ['b', 'c', undefined]);
    assert.strictEqual(keep.offer({}, 4, 'e'), 'capture', 'free again once the queue is empty');
  });
});

describe('capture settings', function () {
  it('defaults to the test pattern folder in the user folder, and lists every mistake', function () {
    const c = parseCaptureConfig({}, '/home/pi/.node-red');
    assert.deepStrictEqual([c.imagesFolder, c.camera, c.trigger.edge, c.trigger.overlap, c.minFreeBytes], ['/home/pi/.node-red/uplink/images', 'camera', 'rising', 'skip', 200 * 1024 * 1024]);
    assert.throws(
      () => parseCaptureConfig({ nameTemplate: '{camera}/snap.jpg', timeout: 'soon', overlap: 'panic' }, '/u'),
      (/** @type {Error} */ e) => /File name: .*same key/.test(e.message) && /Timeout must be a number of seconds/.test(e.message) && /While capturing must be one of skip, queue/.test(e.message),
    );
  });
});
