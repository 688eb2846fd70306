'use strict';
const assert = require('assert');
const zlib = require('zlib');
const { TestPatternSource, encodePng } = require('../dist/lib/capture/sources/test-pattern');
const { inspectImage } = require('../dist/lib/capture/image-info');
const { errorWith } = require('./support/errors');

const MAX = 10 * 1024 * 1024;
const signal = () => new AbortController().signal;

/** CRC-32 bit by bit, independent of the table in the code under test. */
function bitwiseCrc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** Splits a PNG into its chunks, checking the signature, lengths and every CRC on the way. */
function chunks(png) {
  assert.deepStrictEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const out = [];
  let o = 8;
  while (o < png.length) {
    assert.ok(o + 12 <= png.length, `chunk header at ${o} cut short`);
    const len = png.readUInt32BE(o);
    const type = png.toString('latin1', o + 4, o + 8);
    assert.ok(o + 12 + len <= png.length, `chunk ${type} cut short`);
    const data = png.subarray(o + 8, o + 8 + len);
    const crc = png.readUInt32BE(o + 8 + len);
    assert.strictEqual(crc, bitwiseCrc32(png.subarray(o + 4, o + 8 + len)), `CRC of ${type}`);
    out.push({ type, data });
    o += 12 + len;
  }
  assert.strictEqual(o, png.length, 'nothing after the last chunk');
  return out;
}

/** Decodes an 8-bit RGB, non-interlaced PNG into { width, height, rgb } (all five filter types). */
function decode(png) {
  const cs = chunks(png);
  assert.strictEqual(cs[0].type, 'IHDR');
  assert.strictEqual(cs.at(-1).type, 'IEND');
  assert.strictEqual(cs.at(-1).data.length, 0);
  const ihdr = cs[0].data;
  assert.strictEqual(ihdr.length, 13);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  assert.deepStrictEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0], 'bit depth 8, RGB, deflate, filter 0, no interlace');
  const raw = zlib.inflateSync(Buffer.concat(cs.filter((c) => c.type === 'IDAT').map((c) => c.data)));
  const stride = 1 + width * 3;
  assert.strictEqual(raw.length, height * stride, 'height × (1 + width × 3) bytes');
  const rgb = Buffer.alloc(width * height * 3);
  const row = width * 3;
  for (let y = 0; y < height; y++) {
    const f = raw[y * stride];
    assert.ok(f <= 4, `filter type ${f} on row ${y}`);
    for (let i = 0; i < row; i++) {
      const x = raw[y * stride + 1 + i];
      const a = i >= 3 ? rgb[y * row + i - 3] : 0;
      const b = y > 0 ? rgb[(y - 1) * row + i] : 0;
      const c = i >= 3 && y > 0 ? rgb[(y - 1) * row + i - 3] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      rgb[y * row + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, rgb };
}

/** The bounding box of the pixels that differ between two decoded images of the same size. */
function diffBox(a, b) {
  assert.strictEqual(a.width, b.width);
  assert.strictEqual(a.height, b.height);
  let box = null;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      const o = (y * a.width + x) * 3;
      if (a.rgb[o] !== b.rgb[o] || a.rgb[o + 1] !== b.rgb[o + 1] || a.rgb[o + 2] !== b.rgb[o + 2]) {
        if (!box) box = { x0: x, y0: y, x1: x, y1: y, pixels: 0 };
        box.x0 = Math.min(box.x0, x);
        box.x1 = Math.max(box.x1, x);
        box.y0 = Math.min(box.y0, y);
        box.y1 = Math.max(box.y1, y);
        box.pixels++;
      }
    }
  }
  return box;
}

describe('test-pattern source', function () {
  it('grabs a PNG that inspectImage accepts, with the size asked for', async function () {
    const src = new TestPatternSource({ camera: 'front-door' });
    assert.strictEqual(src.kind, 'test-pattern');
    const png = await src.grab(signal(), MAX);
    assert.deepStrictEqual(inspectImage(png), { format: 'png', contentType: 'image/png', width: 640, height: 360, ext: 'png' });
    const big = await new TestPatternSource({ camera: 'x', width: 1280, height: 720 }).grab(signal(), MAX);
    assert.strictEqual(inspectImage(big).width, 1280);
    assert.strictEqual(inspectImage(big).height, 720);
    await src.close();
  });

  it('writes IHDR, IDAT and IEND with the right CRCs, and IDAT inflates to height × (1 + width × 3) bytes', async function () {
    const png = await new TestPatternSource({ camera: 'yard', width: 640, height: 360 }).grab(signal(), MAX);
    assert.deepStrictEqual(
      chunks(png).map((c) => c.type),
      ['IHDR', 'IDAT', 'IEND'],
    );
    const img = decode(png);
    assert.strictEqual(img.width, 640);
    assert.strictEqual(img.height, 360);
    // Colour bars: the top-left is 75 % white, the top-right 75 % blue.
    assert.deepStrictEqual([...img.rgb.subarray(0, 3)], [191, 191, 191]);
    assert.deepStrictEqual([...img.rgb.subarray((640 - 1) * 3, 640 * 3)], [0, 0, 191]);
  });

  it('two consecutive grabs differ, even on a clock that stands still', async function () {
    const at = new Date(2026, 0, 2, 3, 4, 5);
    const src = new TestPatternSource({ camera: 'cam', now: () => at });
    const a = await src.grab(signal(), MAX);
    const b = await src.grab(signal(), MAX);
    assert.notDeepStrictEqual(a, b);
    assert.ok(diffBox(decode(a), decode(b)), 'the pixels differ, not only the bytes');
  });

  it('draws the time: two clocks change the pixels of one line of text, and nothing else', async function () {
    const grab = (d) => new TestPatternSource({ camera: 'cam', now: () => d }).grab(signal(), MAX).then(decode);
    const a = await grab(new Date(2025, 10, 26, 6, 0, 0));
    const same = await grab(new Date(2025, 10, 26, 6, 0, 0));
    const b = await grab(new Date(2026, 0, 2, 3, 4, 59));
    assert.strictEqual(diffBox(a, same), null, 'the same clock and frame give the same picture');
    const box = diffBox(a, b);
    assert.ok(box, 'another time changes the picture');
    // One line of 5x7 glyphs at 3x: at most 21 pixel rows, within 19 characters of 18 pixels.
    assert.ok(box.y1 - box.y0 + 1 <= 21, `the change spans ${box.y1 - box.y0 + 1} rows`);
    assert.ok(box.x1 - box.x0 + 1 <= 19 * 18, `the change spans ${box.x1 - box.x0 + 1} columns`);
    assert.ok(box.pixels >= 100, `only ${box.pixels} pixels changed`);
  });

  it('draws lower case as upper case, and unknown characters as the same box', async function () {
    const grab = (camera) => new TestPatternSource({ camera, now: () => new Date(2026, 0, 1) }).grab(signal(), MAX).then(decode);
    assert.strictEqual(diffBox(await grab('gate-2_a.b:c'), await grab('GATE-2_A.B:C')), null);
    assert.strictEqual(diffBox(await grab('a?b'), await grab('a#b')), null);
    assert.ok(diffBox(await grab('a?b'), await grab('a-b')), 'a box is not a dash');
    assert.ok(diffBox(await grab('CAM1'), await grab('CAM2')), 'the camera name is drawn');
  });

  it('works at an odd size (33x17)', async function () {
    const png = await new TestPatternSource({ camera: 'odd', width: 33, height: 17 }).grab(signal(), MAX);
    const info = inspectImage(png);
    assert.strictEqual(info.width, 33);
    assert.strictEqual(info.height, 17);
    const img = decode(png);
    assert.strictEqual(img.rgb.length, 33 * 17 * 3);
  });

  it('a size too small for the text still gives a valid image (the text clipped)', async function () {
    for (const [w, h] of [
      [1, 1],
      [2, 3],
      [7, 1],
      [1, 40],
      [12, 9],
    ]) {
      const src = new TestPatternSource({ camera: 'a very long camera name that cannot fit anywhere', width: w, height: h });
      const png = await src.grab(signal(), MAX);
      const info = inspectImage(png);
      assert.deepStrictEqual([info.width, info.height], [w, h]);
      assert.strictEqual(decode(png).rgb.length, w * h * 3);
    }
  });

  it('keeps a long camera name from slowing a grab down or spilling past the edge', async function () {
    const src = new TestPatternSource({ camera: 'X'.repeat(10_000), width: 64, height: 48 });
    const img = decode(await src.grab(signal(), MAX));
    assert.strictEqual(img.width, 64);
  });

  it('refuses an image bigger than maxBytes, and an aborted signal', async function () {
    const src = new TestPatternSource({ camera: 'cam' });
    await assert.rejects(src.grab(signal(), 100), errorWith('TOO_LARGE'));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(src.grab(ac.signal, MAX), errorWith('ABORTED'));
  });

  it('refuses a size that is not a whole number of pixels from 1 to 4096', function () {
    for (const bad of [0, -1, 1.5, 5000, NaN]) {
      assert.throws(() => new TestPatternSource({ camera: 'c', width: bad }), RangeError);
      assert.throws(() => new TestPatternSource({ camera: 'c', height: bad }), RangeError);
    }
  });

  it('encodePng round-trips any RGB pixels', function () {
    const w = 7;
    const h = 5;
    const rgb = Buffer.alloc(w * h * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 89 + 13) & 0xff;
    const png = encodePng(w, h, rgb);
    assert.deepStrictEqual(inspectImage(png).width, w);
    const img = decode(png);
    assert.deepStrictEqual(img.rgb, rgb);
    assert.throws(() => encodePng(w, h, rgb.subarray(1)), RangeError);
  });
});
