/**
 * The video track an MP4 file's header states, read from the file's first bytes, without ffprobe. ffmpeg's fragmented
 * MP4 (empty_moov) puts the whole moov up front, a few hundred bytes: codec and size are there before any frame.
 */

/** The first video track's codec (ffmpeg's name for it) and coded size, as the sample description states them. */
export interface Mp4VideoTrack {
  codec: string;
  width: number;
  height: number;
}

/**
 * ffmpeg's codec names for the sample entries it writes for H.264 and H.265, the codecs recordings hold. Others (mp4v,
 * whose codec depends on the esds inside) are not guessed: the caller asks ffprobe.
 */
const CODEC_OF_ENTRY: Readonly<Record<string, string>> = { avc1: 'h264', avc3: 'h264', hvc1: 'hevc', hev1: 'hevc' };

interface Box {
  type: string;
  /** Where the box's content starts (after its header) and where the box ends. */
  body: number;
  end: number;
}

/** The boxes in buf[start, end), in order; stops at the first one that does not fit (a header cut short). */
function* boxes(buf: Buffer, start: number, end: number): Generator<Box> {
  let at = start;
  while (at + 8 <= end) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > end) return;
      const big = buf.readBigUInt64BE(at + 8);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) return;
      size = Number(big);
      body = at + 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < body - at || at + size > end) return;
    yield { type, body, end: at + size };
    at += size;
  }
}

function child(buf: Buffer, parent: Box, type: string): Box | undefined {
  for (const b of boxes(buf, parent.body, parent.end)) if (b.type === type) return b;
  return undefined;
}

/** A path of boxes below `parent`, each the first of its type. */
function descend(buf: Buffer, parent: Box, ...types: string[]): Box | undefined {
  let at: Box | undefined = parent;
  for (const t of types) {
    at = at && child(buf, at, t);
    if (!at) return undefined;
  }
  return at;
}

/**
 * The first video track of the MP4 whose first bytes are `head`, or undefined when its moov is not wholly in `head`,
 * it has no video track, or its codec is not one named here.
 */
export function readMp4VideoTrack(head: Buffer): Mp4VideoTrack | undefined {
  let moov: Box | undefined;
  for (const b of boxes(head, 0, head.length)) {
    if (b.type === 'moov') {
      moov = b;
      break;
    }
  }
  if (!moov) return undefined;
  for (const trak of boxes(head, moov.body, moov.end)) {
    if (trak.type !== 'trak') continue;
    const mdia = child(head, trak, 'mdia');
    const hdlr = mdia && child(head, mdia, 'hdlr');
    // hdlr: version and flags (4), pre_defined (4), handler type (4).
    if (!mdia || !hdlr || hdlr.end - hdlr.body < 12 || head.toString('latin1', hdlr.body + 8, hdlr.body + 12) !== 'vide') continue;
    const stsd = descend(head, mdia, 'minf', 'stbl', 'stsd');
    // stsd: version and flags (4), entry count (4), then the sample entries.
    if (!stsd || stsd.end - stsd.body < 8 || head.readUInt32BE(stsd.body + 4) < 1) return undefined;
    const entry = boxes(head, stsd.body + 8, stsd.end).next();
    if (entry.done) return undefined;
    const codec = CODEC_OF_ENTRY[entry.value.type];
    // A visual sample entry: reserved (6), data reference index (2), pre_defined and reserved (16), width (2), height (2).
    const sizeAt = entry.value.body + 24;
    if (codec === undefined || sizeAt + 4 > entry.value.end) return undefined;
    const width = head.readUInt16BE(sizeAt);
    const height = head.readUInt16BE(sizeAt + 2);
    return width > 0 && height > 0 ? { codec, width, height } : undefined;
  }
  return undefined;
}
