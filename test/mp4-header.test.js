'use strict';
// lib/media/mp4-header.ts against files ffmpeg makes: the recorder's own segments (its segment muxer and fragmented
// MP4 options, re-encoding and copying), each compared with what ffprobe says of the same file.
const assert = require('assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { readMp4VideoTrack } = require('../dist/lib/media/mp4-header');
const { recordingArgs } = require('../dist/lib/recorder/args');
const { parseRecorderConfig } = require('../dist/lib/recorder/config');
const { parseList } = require('../dist/lib/recorder/segment-list');
const { tmpDir, rmrf } = require('./support/tmp');

const QUIET = ['-nostdin', '-y', '-hide_banner', '-loglevel', 'error'];
/** What the recorder reads of a segment: its first read, 1 MB. */
const HEAD_BYTES = 1024 * 1024;

function ffmpeg(args) {
  execFileSync('ffmpeg', [...QUIET, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
}

/** What ffprobe says of the first video stream, as the recorder used to ask it: [codec, width, height]. */
function probed(file) {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', file]).toString();
  const st = JSON.parse(out).streams[0];
  return [st.codec_name, st.width, st.height];
}

/** The sample entry's type, as ffprobe names it (avc1, hev1, hvc1, mp4v). */
function sampleEntry(file) {
  return execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_tag_string', '-of', 'csv=p=0', file]).toString().trim();
}

function header(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0));
  } finally {
    fs.closeSync(fd);
  }
}

const asTriple = (t) => (t === undefined ? undefined : [t.codec, t.width, t.height]);

/** Where the top-level moov box ends in `buf`, found the plain way (sizes only). */
function moovEnd(buf) {
  for (let at = 0; at + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (type === 'moov') return at + size;
    assert.ok(size >= 8, `box ${type} at ${at}`);
    at += size;
  }
  throw new Error('no moov');
}

/** A small deterministic generator, so a failing case can be run again. */
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

describe('mp4 header: a segment codec and size without ffprobe', function () {
  this.timeout(180_000);
  let dir;
  before(() => (dir = tmpDir('uplink-mp4-header-')));
  after(() => rmrf(dir));

  /**
   * The recorder's argv for a run (segment muxer, fragmented MP4, CSV list), with its lavfi input replaced by `input`
   * when given: `-c:v copy` of a file stands in for a camera's stream copied as it comes.
   * @param {string} name
   * @param {{ filter?: string, input?: string, video: string, extraOut?: string[] }} o
   */
  function recorderRun(name, { filter, input, video, extraOut = [] }) {
    const out = path.join(dir, name);
    fs.mkdirSync(out);
    const config = parseRecorderConfig({ input: `lavfi:${filter ?? 'testsrc=size=16x16:rate=10'}`, camera: 'cam', segmentSeconds: 1, folder: out, video }, {}, dir);
    const listFile = path.join(out, 'list.csv');
    let args = recordingArgs({ source: config.source, segmentSeconds: 1, video: config.video, audio: 'none', listFile, segmentPattern: path.join(out, 'seg-%06d.mp4') });
    if (input) {
      const from = args.indexOf('-re');
      const i = args.indexOf('-i', from);
      assert.ok(from > 0 && i > from, 'the lavfi input part');
      args = [...args.slice(0, from), '-i', input, ...args.slice(i + 2)];
    }
    if (extraOut.length > 0) args.splice(args.indexOf('-f', args.indexOf('-map')), 0, ...extraOut);
    execFileSync(config.source.ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    const listed = parseList(fs.readFileSync(listFile, 'utf8')).map((e) => path.join(out, e.file));
    assert.ok(listed.length >= 2, `${name}: ffmpeg closed ${listed.length} segments`);
    return listed;
  }

  /**
   * An encoded source file to copy from: `seconds` of testsrc at `size`.
   * @param {string} name
   * @param {{ size: string, codec: string, vf?: string, extra?: string[], seconds?: number }} o
   */
  function source(name, { size, codec, vf, extra = [], seconds = 2.5 }) {
    const file = path.join(dir, `${name}.mkv`);
    ffmpeg(['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=10${vf ? `,${vf}` : ''}`, '-t', String(seconds), '-c:v', codec, ...extra, file]);
    return file;
  }

  const X264 = ['-preset', 'ultrafast', '-g', '10'];
  const X265 = ['-preset', 'ultrafast', '-g', '10', '-x265-params', 'log-level=none'];

  it("agrees with ffprobe on the recorder's own segments, re-encoded with libx264 (its lavfi and V4L2 path)", function () {
    for (const seg of recorderRun('x264', { filter: 'testsrc=size=320x240:rate=10:duration=2.5', video: 'libx264' })) {
      assert.deepStrictEqual(asTriple(readMp4VideoTrack(header(seg))), probed(seg), seg);
      assert.deepStrictEqual(probed(seg), ['h264', 320, 240]);
    }
  });

  const copies = [
    { name: 'camera-h264', size: '640x360', codec: 'libx264', extra: X264, entry: 'avc1', want: ['h264', 640, 360] },
    // 1080 lines are coded as 1088 and cropped: the size stated is the cropped one, as ffprobe says.
    { name: 'h264-1080p', size: '1920x1080', codec: 'libx264', extra: X264, want: ['h264', 1920, 1080] },
    // Non-square pixels: the coded width, not the display width.
    { name: 'h264-sar', size: '720x576', vf: 'setsar=16/15', codec: 'libx264', extra: X264, want: ['h264', 720, 576] },
    // An odd size (4:4:4 allows it).
    { name: 'h264-odd', size: '161x121', codec: 'libx264', extra: [...X264, '-pix_fmt', 'yuv444p'], want: ['h264', 161, 121] },
    { name: 'hevc-hev1', size: '320x180', codec: 'libx265', extra: X265, entry: 'hev1', want: ['hevc', 320, 180] },
    { name: 'hevc-hvc1', size: '320x180', codec: 'libx265', extra: X265, out: ['-tag:v', 'hvc1'], entry: 'hvc1', want: ['hevc', 320, 180] },
  ];
  for (const c of copies) {
    it(`agrees with ffprobe on the segments of a ${c.name} stream copied as it comes (${c.want.join(' ')})`, function () {
      const src = source(c.name, c);
      for (const seg of recorderRun(c.name, { input: src, video: 'copy', extraOut: c.out })) {
        assert.deepStrictEqual(probed(seg), c.want, `ffprobe on ${seg}`);
        if (c.entry) assert.strictEqual(sampleEntry(seg), c.entry);
        assert.deepStrictEqual(asTriple(readMp4VideoTrack(header(seg))), c.want, seg);
      }
    });
  }

  it('says nothing of codecs whose sample entry does not name them (MJPEG, MPEG-4 part 2): ffprobe is asked', function () {
    for (const [name, codec] of [
      ['mjpeg', 'mjpeg'],
      ['mpeg4', 'mpeg4'],
    ]) {
      const src = source(name, { size: '320x240', codec, extra: ['-g', '10'] });
      for (const seg of recorderRun(name, { input: src, video: 'copy' })) {
        assert.deepStrictEqual(probed(seg), [codec, 320, 240]);
        assert.strictEqual(sampleEntry(seg), 'mp4v');
        assert.strictEqual(readMp4VideoTrack(header(seg)), undefined, seg);
      }
    }
  });

  it('reads the video track wherever it is among the tracks', function () {
    const file = path.join(dir, 'audio-first.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'sine', '-f', 'lavfi', '-i', 'testsrc=size=160x90:rate=10', '-map', '0:a', '-map', '1:v', '-c:a', 'aac', '-c:v', 'libx264', ...X264, '-t', '1', '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', file]);
    assert.deepStrictEqual(asTriple(readMp4VideoTrack(header(file))), ['h264', 160, 90]);
    assert.deepStrictEqual(probed(file), ['h264', 160, 90]);
  });

  it('says nothing until the whole moov is in what it is given, then the same as ffprobe', function () {
    const [seg] = recorderRun('cut', { input: source('cut', { size: '320x240', codec: 'libx264', extra: X264 }), video: 'copy' });
    const head = header(seg);
    const end = moovEnd(head);
    const want = probed(seg);
    for (let n = 0; n <= end + 16; n++) {
      const got = readMp4VideoTrack(head.subarray(0, n));
      if (n < end) assert.strictEqual(got, undefined, `${n} of ${end} bytes`);
      else assert.deepStrictEqual(asTriple(got), want, `${n} bytes`);
    }
  });

  it('finds a moov written at the end of a plain MP4 when it is in the bytes given, and nothing when it is not', function () {
    const file = path.join(dir, 'plain.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '1', '-c:v', 'libx264', ...X264, file]);
    const whole = fs.readFileSync(file);
    const at = whole.indexOf(Buffer.from('moov', 'latin1')) - 4;
    assert.ok(whole.indexOf(Buffer.from('mdat', 'latin1')) < at, 'the moov comes after the media');
    assert.deepStrictEqual(asTriple(readMp4VideoTrack(whole)), probed(file));
    assert.strictEqual(readMp4VideoTrack(whole.subarray(0, at)), undefined);
  });

  it('never throws on damaged headers: each answer is nothing, or a codec with a positive size', function () {
    const [seg] = recorderRun('damaged', { input: source('damaged', { size: '320x240', codec: 'libx264', extra: X264 }), video: 'copy' });
    const head = header(seg).subarray(0, 4096);
    const end = Math.min(moovEnd(head), head.length);
    const rnd = prng(0x5eed);
    let answered = 0;
    for (let i = 0; i < 3000; i++) {
      const bad = Buffer.from(head);
      for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) {
        const at = Math.floor(rnd() * end);
        // Sizes and types are what a damaged header gets wrong in ways that matter: 0, 1, huge, or any byte.
        const pick = rnd();
        if (pick < 0.25) bad.writeUInt32BE([0, 1, 7, 0xffffffff][Math.floor(rnd() * 4)], Math.min(at, end - 4));
        else bad[at] = Math.floor(rnd() * 256);
      }
      const cut = rnd() < 0.3 ? Math.floor(rnd() * bad.length) : bad.length;
      let got;
      try {
        got = readMp4VideoTrack(bad.subarray(0, cut));
      } catch (e) {
        assert.fail(`case ${i} threw ${e}`);
      }
      if (got === undefined) continue;
      answered++;
      assert.ok(typeof got.codec === 'string' && Number.isInteger(got.width) && got.width > 0 && Number.isInteger(got.height) && got.height > 0, JSON.stringify(got));
    }
    assert.ok(answered > 0, 'some damage leaves the sample description readable');
    for (const junk of [Buffer.alloc(0), Buffer.from('not a video at all'), Buffer.alloc(64 * 1024)]) assert.strictEqual(readMp4VideoTrack(junk), undefined);
  });
});
