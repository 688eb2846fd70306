'use strict';
// Images sized for the link: the capture resizes and re-encodes (sharp) before it writes, so the file on disk, its
// facts and its key are the transformed image's; the camera's original is kept when asked, journalled with it, so a
// crash at any point neither loses nor orphans either file.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const helper = require('node-red-node-test-helper');
const { Capturer } = require('../dist/lib/capture/still');
const { CaptureJournal, CAPTURE_STATE_DIR } = require('../dist/lib/capture/journal');
const { TestPatternSource } = require('../dist/lib/capture/sources/test-pattern');
const { transformImage, transformIsSet } = require('../dist/lib/capture/transform');
const { inspectImage } = require('../dist/lib/capture/image-info');
const { parseCaptureConfig } = require('../dist/lib/capture/config');
const captureNode = require('../dist/nodes/capture/capture.js');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

const never = new AbortController().signal;
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';

/** A camera-like JPEG: noise compresses as badly as a real photo does. */
async function photo(width, height, quality = 90) {
  return sharp({ create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ quality }).toBuffer();
}

/** A source that hands out one fixed image. */
const fixed = (data) => ({ kind: 'fixed', grab: async () => data, close: async () => undefined });

describe('capture transform: resize and re-encode before writing', function () {
  this.timeout(60000);
  let dir;
  let big;
  before(async () => (big = await photo(4000, 3000)));
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  const set = (s) => ({ maxWidth: 0, maxHeight: 0, format: 'keep', quality: 80, keepOriginal: false, ...s });

  it('resizes a 12 MP JPEG to fit, keeping its proportions, never enlarging', async function () {
    const info = inspectImage(big);
    const t = await transformImage(big, info, set({ maxWidth: 1280, maxHeight: 1280 }));
    assert.deepStrictEqual([t.width, t.height, t.contentType, t.ext], [1280, 960, 'image/jpeg', 'jpg']);
    assert.ok(t.data.length < big.length / 10, `${t.data.length} of ${big.length}`);
    const back = await sharp(t.data).metadata();
    assert.deepStrictEqual([back.width, back.height, back.format], [1280, 960, 'jpeg']);
    // Already small enough, format kept: nothing to do, the camera's bytes are kept as they are.
    const small = await photo(640, 480);
    assert.strictEqual(await transformImage(small, inspectImage(small), set({ maxWidth: 1280 })), undefined);
    // Only a height given: the width follows.
    const h = await transformImage(big, info, set({ maxHeight: 600 }));
    assert.deepStrictEqual([h.width, h.height], [800, 600]);
  });

  it('re-encodes as WebP or as JPEG at a quality; lower quality, fewer bytes', async function () {
    const info = inspectImage(big);
    const webp = await transformImage(big, info, set({ maxWidth: 1280, format: 'webp', quality: 75 }));
    assert.deepStrictEqual([webp.contentType, webp.ext], ['image/webp', 'webp']);
    assert.strictEqual((await sharp(webp.data).metadata()).format, 'webp');
    const q90 = await transformImage(big, info, set({ maxWidth: 1280, format: 'jpeg', quality: 90 }));
    const q50 = await transformImage(big, info, set({ maxWidth: 1280, format: 'jpeg', quality: 50 }));
    assert.ok(q50.data.length < q90.data.length, `${q50.data.length} < ${q90.data.length}`);
    // A PNG (the test pattern) re-encoded as JPEG.
    const png = new TestPatternSource({ camera: 'x', width: 640, height: 360 }).render(new Date(), 1);
    const j = await transformImage(png, inspectImage(png), set({ format: 'jpeg', quality: 80 }));
    assert.deepStrictEqual([j.width, j.height, j.contentType], [640, 360, 'image/jpeg']);
  });

  it('applies the EXIF orientation, which re-encoding would otherwise lose', async function () {
    const rotated = await sharp({ create: { width: 400, height: 200, channels: 3, background: '#808080' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const t = await transformImage(rotated, inspectImage(rotated), set({ maxWidth: 1000, format: 'jpeg' }));
    assert.deepStrictEqual([t.width, t.height], [200, 400]);
  });

  it('writes the transformed image, whose facts and key it gives, and keeps the original when asked', async function () {
    const images = path.join(dir, 'images');
    const c = new Capturer(fixed(big), { imagesFolder: images, nameTemplate: TEMPLATE, camera: 'yard', minFreeBytes: 0, maxBytes: 20e6, transform: set({ maxWidth: 1280, maxHeight: 1280, format: 'webp', quality: 70, keepOriginal: true }) });
    const journal = await CaptureJournal.open(images, 'cap', { warn() {}, log() {} });
    c.journal = journal;
    const r = await c.capture(never);
    await journal.close();
    const onDisk = fs.readFileSync(r.file);
    assert.deepStrictEqual([r.width, r.height, r.contentType], [1280, 960, 'image/webp']);
    assert.strictEqual(r.bytes, onDisk.length);
    assert.strictEqual(r.sha256, sha(onDisk));
    assert.match(r.key, /^yard\/\d{4}-\d\d-\d\d_[\d.-]+_1280_960\.webp$/);
    assert.strictEqual(path.relative(images, r.file).split(path.sep).join('/'), r.key);
    // The original, byte for byte, under originals/ with its own size in its name.
    assert.ok(r.original, 'original kept');
    assert.deepStrictEqual(fs.readFileSync(r.original.file), big);
    assert.deepStrictEqual([r.original.width, r.original.height, r.original.contentType, r.original.bytes, r.original.sha256], [4000, 3000, 'image/jpeg', big.length, sha(big)]);
    assert.match(path.relative(images, r.original.file), /^originals\/yard\/.*_4000_3000\.jpg$/);
    // No temp file left behind.
    const left = [];
    const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : left.push(e.name)));
    walk(images);
    assert.deepStrictEqual(left.filter((n) => n.endsWith('.part')), []);
  });

  it('a crash after the journal entry and before the links: both files are linked at the next start, none orphaned', async function () {
    const images = path.join(dir, 'images');
    const events = { warn() {}, log() {} };
    const j = await CaptureJournal.open(images, 'cap', events);
    // A queue confirmed this node's captures before, so leftovers are sent again.
    const first = await new Capturer(fixed(big), { imagesFolder: images, nameTemplate: TEMPLATE, camera: 'yard', minFreeBytes: 0, maxBytes: 20e6 }).capture(never);
    void first;
    const small = await photo(320, 240);
    const origSmall = big;
    // What the capture does up to the crash: both temps written and synced, the journal entry naming both.
    fs.mkdirSync(path.join(images, 'yard'), { recursive: true });
    fs.mkdirSync(path.join(images, 'originals', 'yard'), { recursive: true });
    const temp = path.join(images, 'yard', '.a.webp.1.part');
    const otemp = path.join(images, 'originals', 'yard', '.a.jpg.1.part');
    fs.writeFileSync(temp, small);
    fs.writeFileSync(otemp, origSmall);
    const ref = await j.written(temp, path.join(images, 'yard', 'a.webp'), { bytes: small.length, sha256: sha(small), width: 320, height: 240, contentType: 'image/jpeg', camera: 'yard', capturedAt: new Date().toISOString() }, undefined, {
      temp: otemp, file: path.join(images, 'originals', 'yard', 'a.jpg'), bytes: origSmall.length, sha256: sha(origSmall), width: 4000, height: 3000, contentType: 'image/jpeg',
    });
    // Another capture confirmed, so this node is known to be wired to a queue.
    const other = path.join(images, 'yard', '.b.part');
    fs.writeFileSync(other, small);
    const refB = await j.written(other, path.join(images, 'yard', 'b.jpg'), { bytes: small.length, sha256: sha(small) });
    await j.queued(refB.entry);
    await j.close(); // the process dies here: nothing linked

    const again = await CaptureJournal.open(images, 'cap', events);
    const rec = again.takeRecovered();
    await again.close();
    assert.strictEqual(rec.length, 1);
    assert.strictEqual(rec[0].result.journal.entry, ref.entry);
    assert.deepStrictEqual(fs.readFileSync(path.join(images, 'yard', 'a.webp')), small);
    assert.deepStrictEqual(fs.readFileSync(path.join(images, 'originals', 'yard', 'a.jpg')), origSmall);
    assert.strictEqual(rec[0].result.original.file, path.join(images, 'originals', 'yard', 'a.jpg'));
    assert.ok(!fs.existsSync(temp) && !fs.existsSync(otemp), 'temps gone');
    // The journal remembers the original with the capture until a queue confirms it.
    const lines = fs.readFileSync(path.join(images, CAPTURE_STATE_DIR, 'cap.journal'), 'utf8');
    assert.match(lines, /originals\/yard\/a\.jpg/);
  });

  it('settings: off unless set; refused for clips; quality bounded', function () {
    const cfg = (raw) => parseCaptureConfig(raw, dir);
    assert.strictEqual(cfg({}).transform, undefined);
    assert.strictEqual(transformIsSet(cfg({ maxWidth: '1280' }).transform), true);
    assert.deepStrictEqual(cfg({ format: 'webp', quality: '70', keepOriginal: true }).transform, { maxWidth: 0, maxHeight: 0, format: 'webp', quality: 70, keepOriginal: true });
    assert.throws(() => cfg({ quality: '0', format: 'jpeg' }), /Quality must be a whole number from 1 to 100/);
    assert.throws(() => cfg({ format: 'gif' }), /Format must be one of keep, jpeg, webp/);
    assert.throws(() => cfg({ mode: 'clip', source: 'ffmpeg', maxWidth: '640' }), /apply to stills/);
  });
});

describe('capture node with a transform', function () {
  this.timeout(30000);
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(async () => {
    await helper.unload();
    rmrf(dir);
  });

  it('sends the transformed file with its size in msg.uplink and the key, and clockSynced', async function () {
    const flow = [
      { id: 'c1', type: 'uplink-capture', camera: 'pattern', source: 'test-pattern', folder: path.join(dir, 'images'), patternWidth: '1280', patternHeight: '720', maxWidth: '640', format: 'jpeg', quality: '70', keepOriginal: true, wires: [['out']] },
      { id: 'out', type: 'helper' },
    ];
    await helper.load(captureNode, flow);
    const out = helper.getNode('out');
    const got = [];
    out.on('input', (m) => got.push(m));
    helper.getNode('c1').receive({ payload: 1 });
    await waitFor(() => got.length === 1, { what: 'a capture' });
    const u = got[0].uplink;
    assert.deepStrictEqual([u.width, u.height, u.contentType], [640, 360, 'image/jpeg']);
    assert.match(u.key, /_640_360\.jpg$/);
    assert.strictEqual(typeof u.clockSynced, 'boolean');
    assert.strictEqual(fs.statSync(u.file).size, u.bytes);
    assert.deepStrictEqual([u.original.width, u.original.height, u.original.contentType], [1280, 720, 'image/png']);
    assert.ok(fs.existsSync(u.original.file));
  });
});
