'use strict';
// The wall-clock time the camera stand-in draws into its frames (startRtspServer({ timecode: true })) and the decoders
// in test/support/timecode.js that live-view tests read it back with.
const assert = require('assert');
const vm = require('vm');
const { decodeTimecode, decodeTimecodeFromRgba, timecodeDecoderSource, drawTimecode } = require('./support/timecode');
const { available, unavailableReason, startRtspServer } = require('./support/rtsp-server');
const { hasFfmpeg, runFfmpeg } = require('./support/ffmpeg');
const { missingNeed } = require('./support/skip');

const W = 640;
const H = 360;
const MS = 1796691771956; // a 2026 time: 41 significant bits

function frame(width = W, height = H, fill = 128) {
  return new Uint8Array(width * height).fill(fill);
}

function toRgba(gray) {
  const rgba = new Uint8ClampedArray(gray.length * 4);
  for (let i = 0; i < gray.length; i++) rgba.set([gray[i], gray[i], gray[i], 255], i * 4);
  return rgba;
}

/** Runs ffmpeg to completion (bounded), resolving { code, stdout, stderr }. */
const ffmpeg = (args, timeout = 20000) => runFfmpeg(args, timeout).done;

/** One frame of `url` as raw pixels (`pixFmt` gray or rgba, optionally scaled), and when the grab started. */
async function grab(url, { pixFmt = 'gray', size = null } = {}) {
  const started = Date.now();
  const scale = size ? ['-vf', `scale=${size[0]}:${size[1]}`] : [];
  const r = await ffmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-probesize', '32', '-i', url, '-frames:v', '1', ...scale, '-f', 'rawvideo', '-pix_fmt', pixFmt, '-']);
  assert.strictEqual(r.code, 0, r.stderr);
  return { pixels: r.stdout, started };
}

describe('time code in frames: decoders', () => {
  it('reads back what drawTimecode drew, from gray and from RGBA, at the stream size and scaled', () => {
    for (const [w, h] of [
      [640, 360],
      [320, 180],
      [1280, 720],
    ]) {
      const gray = frame(w, h);
      drawTimecode(gray, w, h, MS);
      assert.strictEqual(decodeTimecode(gray, w, h), MS, `${w}x${h} gray`);
      assert.strictEqual(decodeTimecodeFromRgba(toRgba(gray), w, h), MS, `${w}x${h} rgba`);
    }
    for (const ms of [0, 1, 2 ** 48 - 1, 2 ** 47, 1234567890123]) {
      const gray = frame();
      drawTimecode(gray, W, H, ms);
      assert.strictEqual(decodeTimecode(gray, W, H), ms);
    }
  });

  it('answers null for a frame without a time code, a corrupted one, or too few pixels', () => {
    assert.strictEqual(decodeTimecode(frame(), W, H), null, 'flat grey');
    assert.strictEqual(decodeTimecode(frame(W, H, 16), W, H), null, 'black');
    const gray = frame();
    drawTimecode(gray, W, H, MS);
    // Flip one data bit (block 30): the parity no longer holds.
    const x = 8 + 12 * 30;
    const on = gray[20 * W + x + 6] > 128;
    for (let y = 8; y < 32; y++) gray.fill(on ? 16 : 235, y * W + x, y * W + x + 12);
    assert.strictEqual(decodeTimecode(gray, W, H), null, 'one bit flipped');
    // A block half-way between black and white is not read as either.
    const grey = frame();
    drawTimecode(grey, W, H, MS);
    for (let y = 8; y < 32; y++) grey.fill(125, y * W + 8 + 12 * 10, y * W + 8 + 12 * 11);
    assert.strictEqual(decodeTimecode(grey, W, H), null, 'an unclear block');
    assert.strictEqual(decodeTimecode(new Uint8Array(10), W, H), null, 'short buffer');
  });

  it('the exported source is self-contained: it decodes in an empty context, as page.evaluate would run it', () => {
    const gray = frame();
    drawTimecode(gray, W, H, MS);
    const data = toRgba(gray);
    const ms = vm.runInNewContext(`(${timecodeDecoderSource})(data, ${W}, ${H})`, { data });
    assert.strictEqual(ms, MS);
  });
});

describe('time code in frames: the camera stand-in', function () {
  this.timeout(60000);
  let server;

  before(function () {
    const why = missingNeed([
      [available(), unavailableReason()],
      [hasFfmpeg(), 'ffmpeg is not installed'],
    ]);
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });

  afterEach(async () => {
    if (server) await server.close();
    server = null;
  });

  it('each grabbed frame carries the time it was made: after the grab started (minus 5 s), before it ended, and later in a later grab', async () => {
    server = await startRtspServer({ user: 'cam', password: 'pw', timecode: true });
    const url = server.url.replace('rtsp://', 'rtsp://cam:pw@');

    const first = await grab(url);
    assert.strictEqual(first.pixels.length, W * H);
    const t1 = decodeTimecode(first.pixels, W, H);
    assert.notStrictEqual(t1, null, 'no time code in the first frame');
    assert.ok(t1 >= first.started - 5000 && t1 <= Date.now(), `decoded ${t1}, grab started ${first.started}, now ${Date.now()}`);

    await new Promise((r) => setTimeout(r, 1000));
    const second = await grab(url, { pixFmt: 'rgba', size: [320, 180] });
    assert.strictEqual(second.pixels.length, 320 * 180 * 4);
    const t2 = decodeTimecodeFromRgba(second.pixels, 320, 180);
    assert.notStrictEqual(t2, null, 'no time code in the second frame (RGBA, scaled to 320x180)');
    assert.ok(t2 >= second.started - 5000 && t2 <= Date.now(), `decoded ${t2}, grab started ${second.started}, now ${Date.now()}`);
    assert.ok(t2 > t1, `second grab decoded ${t2}, not later than the first's ${t1}`);
  });

  it('the rest of the picture moves: two frames a second apart differ below the band', async () => {
    server = await startRtspServer({ timecode: true });
    const a = await grab(server.url);
    await new Promise((r) => setTimeout(r, 1000));
    const b = await grab(server.url);
    const below = (buf) => buf.subarray(40 * W);
    let differing = 0;
    for (let i = 0; i < below(a.pixels).length; i++) if (Math.abs(below(a.pixels)[i] - below(b.pixels)[i]) > 40) differing++;
    assert.ok(differing > 10000, `only ${differing} pixels changed below the band`);
  });
});
