import { imageSize } from 'image-size';
import { CaptureError } from './types';

export interface ImageInfo {
  format: 'jpeg' | 'png';
  contentType: 'image/jpeg' | 'image/png';
  width: number;
  height: number;
  ext: 'jpg' | 'png';
}

const JPEG = Buffer.from([0xff, 0xd8, 0xff]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const JPEG_END = Buffer.from([0xff, 0xd9]);
const PNG_END = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/**
 * Accepts a JPEG or PNG whose header gives its size; anything else (an HTML login page, a JSON error, a truncated
 * body) is refused with a message that says what arrived instead.
 */
export function inspectImage(data: Buffer): ImageInfo {
  if (data.length === 0) throw new CaptureError('the camera sent an empty answer instead of an image', 'NOT_AN_IMAGE');
  let format: 'jpeg' | 'png';
  if (data.subarray(0, 3).equals(JPEG)) format = 'jpeg';
  else if (data.subarray(0, 8).equals(PNG)) format = 'png';
  else throw new CaptureError(`the answer is not a JPEG or PNG image (it starts with ${describeStart(data)})`, 'NOT_AN_IMAGE');
  let size: { width?: number; height?: number };
  try {
    size = imageSize(data);
  } catch (e) {
    throw new CaptureError(`the ${format.toUpperCase()} image is damaged or cut short (${(e as Error).message})`, 'BAD_IMAGE');
  }
  if (!size.width || !size.height) throw new CaptureError(`the ${format.toUpperCase()} image has no size in its header`, 'BAD_IMAGE');
  // Some cameras pad after the end marker: look for it near the end, not only in the last two bytes.
  if (format === 'jpeg' && data.subarray(Math.max(0, data.length - 512)).lastIndexOf(JPEG_END) < 0) {
    throw new CaptureError('the JPEG image is cut short (no end marker): the transfer stopped half-way', 'BAD_IMAGE');
  }
  if (format === 'png' && !data.subarray(data.length - 12).equals(PNG_END)) {
    throw new CaptureError('the PNG image is cut short (no IEND chunk): the transfer stopped half-way', 'BAD_IMAGE');
  }
  return format === 'jpeg'
    ? { format, contentType: 'image/jpeg', width: size.width, height: size.height, ext: 'jpg' }
    : { format, contentType: 'image/png', width: size.width, height: size.height, ext: 'png' };
}

function describeStart(data: Buffer): string {
  const head = data.subarray(0, 40).toString('utf8').replace(/\uFFFD+$/, '').trim();
  const quoted = head.length > 30 ? `"${head.slice(0, 30)}…"` : `"${head}"`;
  if (head.startsWith('<')) return `${quoted}, a web page`;
  if (/^[{[]/.test(head)) return `${quoted}, JSON`;
  return `bytes ${data.subarray(0, 4).toString('hex')}`;
}
