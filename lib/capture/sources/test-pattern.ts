import * as zlib from 'zlib';
import { CaptureError, CaptureSource } from '../types';

/**
 * The embedded default source, needing no hardware: every grab draws colour bars and a grey ramp with the camera's
 * name, the current time and a frame counter on them, and returns them as a PNG. The counter makes two grabs differ
 * even within the same millisecond. A 640x360 frame takes a few milliseconds: the background is drawn once, each
 * grab copies it, draws three lines of text and deflates the result.
 */
export interface TestPatternOptions {
  /** Width in pixels, 1 to 4096; default 640. */
  width?: number;
  /** Height in pixels, 1 to 4096; default 360. */
  height?: number;
  /** Drawn on the image (lower case drawn as upper case, unknown characters as boxes). */
  camera: string;
  /** The clock drawn on the image (local time); default `new Date()`. */
  now?: () => Date;
}

export const TEST_PATTERN_MAX_SIDE = 4096;

export class TestPatternSource implements CaptureSource {
  readonly kind = 'test-pattern';
  readonly width: number;
  readonly height: number;
  private readonly camera: string;
  private readonly now: () => Date;
  private frame = 0;
  /** The background as PNG scanlines (filter byte + RGB per row), built on the first grab. */
  private background: Buffer | null = null;

  constructor(options: TestPatternOptions) {
    this.width = side(options.width, 640, 'width');
    this.height = side(options.height, 360, 'height');
    this.camera = String(options.camera ?? '');
    this.now = options.now ?? (() => new Date());
  }

  async grab(signal: AbortSignal, maxBytes: number): Promise<Buffer> {
    if (signal.aborted) throw new CaptureError('stopped: the capture was cancelled', 'ABORTED');
    this.frame++;
    const png = this.render(this.now(), this.frame);
    if (png.length > maxBytes) {
      throw new CaptureError(`the test image is ${png.length} bytes, more than the ${maxBytes} allowed: choose a smaller size`, 'TOO_LARGE');
    }
    return png;
  }

  async close(): Promise<void> {
    /* nothing held between grabs */
  }

  /** One frame as a PNG (exposed for tests and previews; grab() adds the counter and the checks). */
  render(when: Date, frame: number): Buffer {
    if (!this.background) this.background = drawBackground(this.width, this.height);
    const img = new Scanlines(this.width, this.height, Buffer.from(this.background));
    const scale = textScale(this.width, this.height);
    const lines = [this.camera, formatTime(when), `FRAME ${String(frame).padStart(6, '0')}`];
    const lineH = (GLYPH_H + 3) * scale;
    const margin = 2 * scale;
    let y = this.height - margin - lines.length * lineH;
    for (const line of lines) {
      drawText(img, margin, y, line, scale);
      y += lineH;
    }
    return encodeScanlines(this.width, this.height, img.data);
  }
}

function side(v: number | undefined, def: number, label: string): number {
  if (v === undefined || v === null) return def;
  if (!Number.isInteger(v) || v < 1 || v > TEST_PATTERN_MAX_SIDE) {
    throw new RangeError(`the test pattern's ${label} must be a whole number of pixels from 1 to ${TEST_PATTERN_MAX_SIDE} (got ${v})`);
  }
  return v;
}

/** Local time as "YYYY-MM-DD HH:MM:SS". */
function formatTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** 3x at 640x360, 1x on small images, at most 4x on big ones. */
function textScale(width: number, height: number): number {
  return Math.max(1, Math.min(4, Math.floor(width / 200), Math.floor(height / 120)));
}

// ---- drawing ---------------------------------------------------------------------------------------------------------

/** RGB pixels stored as PNG scanlines: each row is a filter byte (0, none) followed by width × 3 bytes. */
class Scanlines {
  readonly stride: number;
  constructor(
    readonly width: number,
    readonly height: number,
    readonly data: Buffer,
  ) {
    this.stride = 1 + width * 3;
  }

  /** Fills a rectangle, clipped to the image. */
  fill(x: number, y: number, w: number, h: number, r: number, g: number, b: number): void {
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(this.width, x + w);
    const y1 = Math.min(this.height, y + h);
    if (x0 >= x1 || y0 >= y1) return;
    const d = this.data;
    for (let yy = y0; yy < y1; yy++) {
      let o = yy * this.stride + 1 + x0 * 3;
      for (let xx = x0; xx < x1; xx++) {
        d[o++] = r;
        d[o++] = g;
        d[o++] = b;
      }
    }
  }
}

/** SMPTE-like bars (75 %) over the top two thirds, a strip of reverse bars, then a black-to-white ramp. */
function drawBackground(width: number, height: number): Buffer {
  const stride = 1 + width * 3;
  const data = Buffer.alloc(stride * height); // filter bytes stay 0
  const img = new Scanlines(width, height, data);
  const barsH = Math.round((height * 2) / 3);
  const stripH = Math.round(height / 12);
  const BARS: Array<[number, number, number]> = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
  ];
  const STRIP: Array<[number, number, number]> = [
    [0, 0, 191],
    [19, 19, 19],
    [191, 0, 191],
    [19, 19, 19],
    [0, 191, 191],
    [19, 19, 19],
    [191, 191, 191],
  ];
  for (let i = 0; i < 7; i++) {
    const x0 = Math.round((i * width) / 7);
    const x1 = Math.round(((i + 1) * width) / 7);
    img.fill(x0, 0, x1 - x0, barsH, ...BARS[i]);
    img.fill(x0, barsH, x1 - x0, stripH, ...STRIP[i]);
  }
  // The ramp: one row drawn, then copied down.
  const rampY = barsH + stripH;
  if (rampY < height) {
    const row = rampY * stride;
    for (let x = 0; x < width; x++) {
      const v = width === 1 ? 0 : Math.round((x * 255) / (width - 1));
      data[row + 1 + x * 3] = v;
      data[row + 2 + x * 3] = v;
      data[row + 3 + x * 3] = v;
    }
    for (let y = rampY + 1; y < height; y++) data.copy(data, y * stride, row, row + stride);
  }
  return data;
}

/** One line of text, white on a black band, clipped to the image. */
function drawText(img: Scanlines, x: number, y: number, text: string, scale: number): void {
  if (text.length === 0) return;
  const cell = (GLYPH_W + 1) * scale;
  const pad = scale;
  // Only the characters that can show are drawn (a long camera name costs nothing past the edge).
  const fit = Math.min(text.length, Math.max(0, Math.ceil((img.width - x) / cell)));
  img.fill(x - pad, y - pad, fit * cell + pad, GLYPH_H * scale + 2 * pad, 0, 0, 0);
  for (let i = 0; i < fit; i++) {
    const rows = glyph(text[i]);
    const gx = x + i * cell;
    for (let ry = 0; ry < GLYPH_H; ry++) {
      const bits = rows[ry];
      if (bits === 0) continue;
      for (let rx = 0; rx < GLYPH_W; rx++) {
        if (bits & (1 << (GLYPH_W - 1 - rx))) img.fill(gx + rx * scale, y + ry * scale, scale, scale, 255, 255, 255);
      }
    }
  }
}

// ---- the font: 5x7, one number per row, most significant of the 5 bits on the left --------------------------------

const GLYPH_W = 5;
const GLYPH_H = 7;

const FONT: Record<string, number[]> = {
  '0': [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
  '1': [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
  '2': [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
  '3': [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
  '4': [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
  '5': [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
  '6': [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
  '7': [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
  '8': [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
  '9': [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
  A: [0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001],
  B: [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
  C: [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
  D: [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100],
  E: [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
  F: [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
  G: [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
  H: [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
  I: [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
  J: [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
  K: [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
  L: [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
  M: [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
  N: [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
  O: [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
  P: [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
  Q: [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
  R: [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
  S: [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
  T: [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
  U: [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
  V: [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
  W: [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
  X: [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
  Y: [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100],
  Z: [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
  '-': [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000],
  ':': [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000],
  '.': [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100],
  '_': [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111],
  '/': [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000],
  ' ': [0, 0, 0, 0, 0, 0, 0],
};
const BOX = [0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111];

function glyph(ch: string): number[] {
  return FONT[ch] ?? FONT[ch.toUpperCase()] ?? BOX;
}

// ---- PNG -------------------------------------------------------------------------------------------------------------

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Encodes 8-bit RGB pixels (width × height × 3 bytes, rows top to bottom) as a PNG. */
export function encodePng(width: number, height: number, rgb: Buffer): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`a PNG needs a whole, positive width and height (got ${width}x${height})`);
  }
  const row = width * 3;
  if (rgb.length !== row * height) throw new RangeError(`expected ${row * height} bytes of RGB for ${width}x${height}, got ${rgb.length}`);
  const stride = row + 1;
  const raw = Buffer.alloc(stride * height); // filter byte 0 (none) on every row
  for (let y = 0; y < height; y++) rgb.copy(raw, y * stride + 1, y * row, (y + 1) * row);
  return encodeScanlines(width, height, raw);
}

/** The PNG of already filtered scanlines (filter byte + 3 × width bytes per row). */
function encodeScanlines(width: number, height: number, raw: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method 0
  ihdr[12] = 0; // no interlace
  const idat = zlib.deflateSync(raw, { level: 3 });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG and zlib use) of buf[start, end). */
export function crc32(buf: Buffer, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
