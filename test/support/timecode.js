'use strict';
/**
 * The wall-clock time drawn into each frame of the camera stand-in started with `startRtspServer({ timecode: true })`
 * (test/fixtures/rtsp_server.py draws it; keep the layout below in step with the script's docstring).
 *
 * Layout, in a 640x360 picture (scaled proportionally for other sizes): 52 blocks 12 px wide and 24 px tall in a row at
 * x = 8 + 12 * i, y = 8, on a black band (rows 0..39). Block 0 white and block 1 black give the levels; blocks 2..49 the
 * time in ms since the epoch as a 48-bit number, most significant bit first (white = 1); block 50 a parity bit that
 * makes the number of white blocks among 2..50 odd; block 51 black.
 *
 *   const { decodeTimecode, decodeTimecodeFromRgba, timecodeDecoderSource, drawTimecode } = require('./support/timecode');
 *
 *   decodeTimecode(gray: Uint8Array | Buffer, width, height) -> number | null
 *       From a luma plane, e.g. the output of `ffmpeg ... -frames:v 1 -f rawvideo -pix_fmt gray -`.
 *       null when the frame carries no readable time code (no contrast, an unclear block, or bad parity).
 *   decodeTimecodeFromRgba(data: Uint8Array | Uint8ClampedArray, width, height, bytesPerPixel = 4) -> number | null
 *       Same from RGBA pixels, e.g. a canvas's getImageData(0, 0, w, h).data. Self-contained (no outside references),
 *       so it can run inside a page:
 *   timecodeDecoderSource: string
 *       The source of decodeTimecodeFromRgba, an expression evaluating to the function:
 *         await page.evaluate(`(${timecodeDecoderSource})(ctx.getImageData(0, 0, w, h).data, w, h)`)
 *   drawTimecode(gray: Uint8Array, width, height, ms) -> void
 *       Draws the band into a luma plane the way the camera script does (to test the decoders without a camera).
 */

/**
 * Self-contained on purpose: its source is sent into browser pages as a string.
 * @param {ArrayLike<number>} data pixels, row-major, `bytesPerPixel` bytes each (RGB(A): luma from R, G, B; 1: gray)
 * @param {number} width
 * @param {number} height
 * @param {number} [bytesPerPixel]
 * @returns {number | null} ms since the epoch, or null when no time code can be read
 */
function decodeTimecodeFromRgba(data, width, height, bytesPerPixel = 4) {
  const BLOCKS = 52;
  const BITS = 48;
  if (!(width > 0 && height > 0) || data.length < width * height * bytesPerPixel) return null;
  const sx = width / 640;
  const sy = height / 360;
  const luma = (x, y) => {
    const i = (y * width + x) * bytesPerPixel;
    return bytesPerPixel >= 3 ? 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2] : data[i];
  };
  // Mean over the middle of block i (half its width, half its height), away from edges blurred by compression.
  const block = (i) => {
    const x0 = Math.round((8 + 12 * i + 3) * sx);
    const x1 = Math.max(x0 + 1, Math.round((8 + 12 * i + 9) * sx));
    const y0 = Math.round((8 + 6) * sy);
    const y1 = Math.max(y0 + 1, Math.round((8 + 18) * sy));
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y1 && y < height; y++) {
      for (let x = x0; x < x1 && x < width; x++) {
        sum += luma(x, y);
        n++;
      }
    }
    return n ? sum / n : 0;
  };
  const levels = [];
  for (let i = 0; i < BLOCKS; i++) levels.push(block(i));
  const white = levels[0];
  const black = levels[1];
  if (white - black < 64) return null;
  const threshold = (white + black) / 2;
  const margin = (white - black) / 4;
  const bits = [];
  for (let i = 2; i < BLOCKS; i++) {
    if (Math.abs(levels[i] - threshold) < margin) return null; // neither black nor white: not a time code
    bits.push(levels[i] > threshold ? 1 : 0);
  }
  if (bits[BITS + 1] !== 0) return null; // block 51 must be black
  let ones = 0;
  for (let i = 0; i <= BITS; i++) ones += bits[i];
  if (ones % 2 !== 1) return null;
  let ms = 0;
  for (let i = 0; i < BITS; i++) ms = ms * 2 + bits[i]; // exact: 48 bits fit a double's 53-bit mantissa
  return ms;
}

/**
 * @param {Uint8Array | Buffer} gray luma plane, `width` bytes a row
 * @param {number} width
 * @param {number} height
 * @returns {number | null}
 */
function decodeTimecode(gray, width, height) {
  return decodeTimecodeFromRgba(gray, width, height, 1);
}

/**
 * @param {Uint8Array} gray luma plane to draw into
 * @param {number} width
 * @param {number} height
 * @param {number} ms
 */
function drawTimecode(gray, width, height, ms) {
  const sx = width / 640;
  const sy = height / 360;
  const bits = [];
  for (let i = 47; i >= 0; i--) bits.push(Math.floor(ms / 2 ** i) % 2);
  const ones = bits.reduce((a, b) => a + b, 0);
  const blocks = [1, 0, ...bits, ones % 2 ? 0 : 1, 0];
  for (let y = 0; y < Math.round(40 * sy); y++) gray.fill(16, y * width, (y + 1) * width);
  blocks.forEach((on, i) => {
    if (!on) return;
    for (let y = Math.round(8 * sy); y < Math.round(32 * sy); y++) {
      gray.fill(235, y * width + Math.round((8 + 12 * i) * sx), y * width + Math.round((8 + 12 * (i + 1)) * sx));
    }
  });
}

const timecodeDecoderSource = decodeTimecodeFromRgba.toString();

module.exports = { decodeTimecode, decodeTimecodeFromRgba, timecodeDecoderSource, drawTimecode };
