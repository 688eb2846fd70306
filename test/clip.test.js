'use strict';
// Clips from the ffmpeg source: real ffmpeg recording from a real RTSP server (GStreamer, Digest auth), ffprobe reading
// the result back, and a check after every test that no ffmpeg or ffprobe is left behind.
const assert = require('assert');
const { execFileSync, spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { FfmpegSource } = require('../dist/lib/capture/sources/ffmpeg');
const { parseFfmpegSettings } = require('../dist/lib/media/ffmpeg-input');
const { ClipRecorder, isPartial, requestedLength } = require('../dist/lib/capture/clip');
const { parseProbeOutput, ffprobePathFor } = require('../dist/lib/media/ffprobe');
const { parseMetadataSetting, mergeMetadata, flatMetadata, uplinkWithMetadata } = require('../dist/lib/message/metadata');
const { CaptureError } = require('../dist/lib/capture/types');
const { errorWith } = require('./support/errors');
const { listenLocal } = require('./support/net');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { available, unavailableReason, startRtspServer, startSilentServer } = require('./support/rtsp-server');
const { alive } = require('./support/procs');

const FFMPEG = '/usr/bin/ffmpeg';
const USER = 'viewer';
const PASSWORD = 'hunter2@secret';
const TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';

function hasFfmpeg() {
  return spawnSync(FFMPEG, ['-version'], { stdio: 'ignore' }).status === 0;
}

/** Live ffmpeg/ffprobe/setpriv children of this test process (the RTSP server, also our child, is not one). */
function ourMediaChildren() {
  const kids = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim();
      if (Number(ppid) === process.pid && state !== 'Z' && /^(ffmpeg|ffprobe|setpriv)$/.test(comm)) kids.push(`${name} ${comm}`);
    } catch {
      /* it ended while we looked */
    }
  }
  return kids;
}

/** Every file below dir, relative, dot files included. */
function filesBelow(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { encoding: 'utf8', recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

function probe(file) {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'format=duration:stream=codec_name,width,height', '-of', 'json', file], { encoding: 'utf8' }));
}

/** Whether ffmpeg decodes every frame of the file without an error. */
function decodes(file) {
  const r = spawnSync(FFMPEG, ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8', timeout: 30000 });
  return r.status === 0 && r.stderr.trim() === '' ? true : r.stderr || `exit ${r.status}`;
}

/** The first line a stream gives, or an error after `timeout` ms. */
function firstLine(stream, timeout, what) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeout);
    stream.on('data', (d) => {
      text += d;
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(text.slice(0, text.indexOf('\n')).trim());
      }
    });
  });
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the clip to fail, it succeeded');
}

async function freePort() {
  const srv = net.createServer();
  const port = await listenLocal(srv);
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('clips: rules', function () {
  it('a clip within max(1 s, 10 %) of the length asked is whole; shorter is partial', function () {
    assert.strictEqual(isPartial(2.1, 3), false);
    assert.strictEqual(isPartial(1.9, 3), true);
    assert.strictEqual(isPartial(9.0, 10), false);
    assert.strictEqual(isPartial(8.9, 10), true);
    assert.strictEqual(isPartial(54, 60), false);
    assert.strictEqual(isPartial(53.9, 60), true);
  });

  it('takes the length from msg.duration, then msg.uplink.requestedS, within the node limits', function () {
    const limits = { lengthS: 10, maxLengthS: 30 };
    assert.strictEqual(requestedLength({}, limits), 10);
    assert.strictEqual(requestedLength({ duration: 3 }, limits), 3);
    assert.strictEqual(requestedLength({ duration: '2.5' }, limits), 2.5);
    assert.strictEqual(requestedLength({ uplink: { requestedS: 4 } }, limits), 4);
    assert.strictEqual(requestedLength({ duration: 5, uplink: { requestedS: 4 } }, limits), 5);
    for (const bad of [31, 0.5, -1, 'soon', '1e3', true, Infinity]) {
      assert.throws(() => requestedLength({ duration: bad }, limits), (err) => err instanceof CaptureError && err.code === 'BAD_LENGTH' && /^msg\.duration must be a number of seconds from 1 to 30/.test(err.message));
    }
    assert.throws(() => requestedLength({ uplink: { requestedS: 'x' } }, limits), /^CaptureError: msg\.uplink\.requestedS must be/);
  });

  it('builds ffmpeg arguments that copy RTSP video into a fast-start MP4, with a socket timeout, never waiting on stdin', function () {
    const src = new FfmpegSource(parseFfmpegSettings({ input: 'rtsp://127.0.0.1:8554/cam', rtspTransport: 'udp', timeout: 4 }, { username: 'u', password: 'p' }));
    const args = src.clipArgs(3, '/x/.clip.part');
    const at = (flag) => args[args.indexOf(flag) + 1];
    assert.deepStrictEqual(args.slice(0, 2), ['-nostdin', '-y']);
    assert.strictEqual(at('-rtsp_transport'), 'udp');
    assert.strictEqual(at('-timeout'), String(5 * 1e6));
    assert.strictEqual(at('-c:v'), 'copy');
    assert.strictEqual(at('-t'), '3');
    assert.strictEqual(at('-movflags'), '+faststart');
    assert.deepStrictEqual(args.slice(-3), ['-f', 'mp4', '/x/.clip.part']);
    assert.ok(args.includes('-an'));
    // MJPEG cannot be played from an MP4 as it comes: re-encoded, with wall-clock timestamps.
    const mjpeg = new FfmpegSource(parseFfmpegSettings({ input: 'http://127.0.0.1/x.mjpg' })).clipArgs(2, '/x/c.part');
    assert.strictEqual(mjpeg[mjpeg.indexOf('-c:v') + 1], 'libx264');
    assert.ok(mjpeg.includes('-use_wallclock_as_timestamps'));
    const copied = new FfmpegSource(parseFfmpegSettings({ input: '/dev/video0', clipVideo: 'copy' })).clipArgs(2, '/x/c.part');
    assert.strictEqual(copied[copied.indexOf('-c:v') + 1], 'copy');
    assert.throws(() => parseFfmpegSettings({ input: '/dev/video0', clipVideo: 'av1' }), /Clip video must be one of auto, copy, h264/);
  });

  it('finds ffprobe beside ffmpeg, and reads its answer', function () {
    assert.strictEqual(ffprobePathFor('ffmpeg'), 'ffprobe');
    assert.strictEqual(ffprobePathFor('/opt/ff/bin/ffmpeg'), '/opt/ff/bin/ffprobe');
    assert.strictEqual(ffprobePathFor('/usr/local/bin/avconv'), 'ffprobe');
    assert.strictEqual(ffprobePathFor('/opt/bin/FFmpeg'), '/opt/bin/ffprobe');
    assert.deepStrictEqual(parseProbeOutput('{"streams":[{"codec_name":"h264","width":640,"height":360}],"format":{"duration":"2.000000"}}'), {
      durationS: 2,
      codec: 'h264',
      width: 640,
      height: 360,
    });
    assert.strictEqual(parseProbeOutput('{"streams":[],"format":{"duration":"2.0"}}'), undefined);
    assert.strictEqual(parseProbeOutput('{"streams":[{"codec_name":"h264","width":640,"height":360}],"format":{"duration":"N/A"}}'), undefined);
    assert.strictEqual(parseProbeOutput('{"streams":[{"codec_name":"h264","width":0,"height":0}],"format":{"duration":"2.0"}}'), undefined);
    assert.strictEqual(parseProbeOutput('not json'), undefined);
    assert.strictEqual(parseProbeOutput('null'), undefined);
    // A container without a duration: the stream's.
    assert.strictEqual(parseProbeOutput('{"streams":[{"codec_name":"h264","width":64,"height":48,"duration":"1.5"}],"format":{}}').durationS, 1.5);
  });

  it('reads metadata rows, lets msg.metadata override them, and copies free scalar names flat', function () {
    const errors = [];
    const rows = parseMetadataSetting([{ name: 'session', value: 'S-1' }, { name: 'arena', value: 'North' }, { name: '', value: '' }], (m) => errors.push(m));
    assert.deepStrictEqual([rows, errors], [{ session: 'S-1', arena: 'North' }, []]);
    assert.deepStrictEqual(parseMetadataSetting('{"court":"3"}', () => undefined), { court: '3' });
    parseMetadataSetting([{ name: 'bad name', value: 'x' }, { name: 'a', value: 1 }, { name: 'a', value: 2 }], (m) => errors.push(m));
    assert.strictEqual(errors.length, 2, errors.join('; '));
    assert.match(errors[0], /"bad name" must start with a letter/);
    assert.match(errors[1], /"a" is given twice/);

    const merged = mergeMetadata(rows, { session: 'S-2', court: 3, tags: ['x'], key: 'evil/../key' });
    assert.deepStrictEqual(merged, { session: 'S-2', arena: 'North', court: 3, tags: ['x'], key: 'evil/../key' });
    assert.throws(() => mergeMetadata(rows, 'S-2'), errorWith('BAD_METADATA', /msg.metadata must be an object/));
    assert.deepStrictEqual(flatMetadata(merged), { session: 'S-2', arena: 'North', court: 3 });

    const uplink = uplinkWithMetadata({ item: 7, session: 'old' }, { file: '/f.mp4', key: 'cam/f.mp4', camera: 'cam' }, merged);
    assert.strictEqual(uplink.key, 'cam/f.mp4', 'metadata never replaces what the capture owns');
    assert.strictEqual(uplink.item, 7);
    assert.strictEqual(uplink.session, 'S-2');
    assert.deepStrictEqual(uplink.metadata, merged);
    assert.ok(!('metadata' in uplinkWithMetadata({}, { file: '/f' }, {})), 'no metadata, no empty object');
  });
});

describe('clips: recording with ffmpeg', function () {
  this.timeout(60000);
  let dir;
  let server;
  const sources = [];
  const cleanups = [];

  before(function () {
    if (!hasFfmpeg()) {
      console.log(`      skipped: ${FFMPEG} is not installed`);
      this.skip();
    }
  });

  beforeEach(() => {
    dir = tmpDir('uplink-clip-');
  });

  afterEach(async () => {
    while (sources.length) {
      const s = sources.pop();
      await s.close();
      assert.deepStrictEqual(s.runningPids, [], 'ffmpeg outlived close()');
    }
    while (cleanups.length) await cleanups.pop()();
    if (server) await server.close();
    server = null;
    assert.deepStrictEqual(ourMediaChildren(), [], 'an ffmpeg or ffprobe was left behind');
    rmrf(dir);
  });

  function needRtsp(ctx) {
    if (!available()) {
      console.log(`      skipped: ${unavailableReason()}`);
      ctx.skip();
    }
  }

  function recorder(raw, credentials) {
    const src = new FfmpegSource(parseFfmpegSettings({ ffmpegPath: FFMPEG, timeout: 5, ...raw }, credentials));
    sources.push(src);
    return new ClipRecorder(src, { imagesFolder: path.join(dir, 'images'), nameTemplate: TEMPLATE, camera: 'court-3', minFreeBytes: 0 });
  }

  function checkFile(r) {
    assert.ok(fs.existsSync(r.file), r.file);
    const data = fs.readFileSync(r.file);
    assert.strictEqual(data.length, r.bytes);
    assert.strictEqual(crypto.createHash('sha256').update(data).digest('hex'), r.sha256);
    assert.strictEqual(r.key, path.relative(path.join(dir, 'images'), r.file).split(path.sep).join('/'));
    assert.strictEqual(decodes(r.file), true);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')).filter((f) => f.includes('.part')), [], 'a temp file was left');
  }

  it('records a clip of the length asked from a Digest-protected RTSP camera, copying its H.264', async function () {
    needRtsp(this);
    server = await startRtspServer({ user: USER, password: PASSWORD });
    const rec = recorder({ input: server.url }, { username: USER, password: PASSWORD });
    const r = await rec.record(new AbortController().signal, 3);
    checkFile(r);
    assert.strictEqual(r.contentType, 'video/mp4');
    assert.deepStrictEqual([r.codec, r.width, r.height, r.camera, r.requestedS, r.partial], ['h264', 640, 360, 'court-3', 3, false]);
    assert.ok(Math.abs(r.durationS - 3) <= 1, `duration ${r.durationS}`);
    const p = probe(r.file);
    assert.ok(Math.abs(Number(p.format.duration) - r.durationS) <= 0.005, `${p.format.duration} read back as ${r.durationS}`);
    assert.match(r.key, /^court-3\/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(\.\d{3})?_640_360\.mp4$/);
    assert.ok(!('partialReason' in r));
  });

  it('keeps a recording ffprobe cannot check in time, set aside, instead of deleting it', async function () {
    // An ffprobe that hangs, beside the real ffmpeg (the source finds ffprobe next to ffmpeg).
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(FFMPEG, path.join(bin, 'ffmpeg'));
    fs.writeFileSync(path.join(bin, 'ffprobe'), '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const src = new FfmpegSource(parseFfmpegSettings({ ffmpegPath: path.join(bin, 'ffmpeg'), input: 'lavfi:testsrc=size=160x120:rate=10', timeout: 5 }));
    src.probeTimeoutMs = 500;
    sources.push(src);
    const rec = new ClipRecorder(src, { imagesFolder: path.join(dir, 'images'), nameTemplate: TEMPLATE, camera: 'court-3', minFreeBytes: 0 });
    const e = await rec.record(new AbortController().signal, 1).then(
      () => assert.fail('an unchecked clip must not pass as checked'),
      (err) => err,
    );
    assert.strictEqual(e.code, 'UNCHECKED', e.message);
    const kept = filesBelow(path.join(dir, 'images', 'unchecked'));
    assert.strictEqual(kept.length, 1, 'kept');
    assert.match(e.message, /kept at .*unchecked/);
    assert.ok(decodes(path.join(dir, 'images', 'unchecked', kept[0])), 'the recording itself is fine');
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')).filter((f) => f.includes('.part')), [], 'no temp file left');
  });

  it('records over UDP as well', async function () {
    needRtsp(this);
    server = await startRtspServer();
    const r = await recorder({ input: server.url, rtspTransport: 'udp' }).record(new AbortController().signal, 2);
    checkFile(r);
    assert.strictEqual(r.partial, false);
  });

  it('keeps a clip the camera cut short, marked partial with its real length, and playable', async function () {
    needRtsp(this);
    server = await startRtspServer({ user: USER, password: PASSWORD });
    const rec = recorder({ input: server.url }, { username: USER, password: PASSWORD });
    const pending = rec.record(new AbortController().signal, 10);
    // Recording has begun once ffmpeg's output has data in it; then the camera dies.
    const images = path.join(dir, 'images');
    await waitFor(() => filesBelow(images).some((f) => f.includes('.part') && fs.statSync(path.join(images, f)).size > 50000), { what: 'ffmpeg to write video', timeout: 20000 });
    await server.kill('SIGKILL');
    const r = await pending;
    checkFile(r);
    assert.strictEqual(r.partial, true);
    assert.strictEqual(r.requestedS, 10);
    assert.ok(r.durationS > 0 && r.durationS < 9, `duration ${r.durationS}`);
    assert.match(r.partialReason, /camera stopped sending/);
  });

  it('says the login was refused, leaving no file and no temp file, and never shows the password', async function () {
    needRtsp(this);
    server = await startRtspServer({ user: USER, password: PASSWORD });
    const err = await rejection(recorder({ input: server.url }, { username: USER, password: 'wrong-horse' }).record(new AbortController().signal, 2));
    assert.strictEqual(err.code, 'AUTH', err.message);
    assert.match(err.message, /401 Unauthorized\): check the user name and password/);
    assert.ok(!err.message.includes('wrong-horse'));
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')), []);
  });

  it('says the connection was refused', async function () {
    const port = await freePort();
    const err = await rejection(recorder({ input: `rtsp://127.0.0.1:${port}/cam` }).record(new AbortController().signal, 2));
    assert.strictEqual(err.code, 'UNREACHABLE', err.message);
    assert.match(err.message, /refused the connection/);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')), []);
  });

  it('gives up on a camera that accepts and never answers, leaving no ffmpeg', async function () {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    const rec = recorder({ input: silent.url, timeout: 1 });
    const pending = rec.record(new AbortController().signal, 2);
    const [pid] = await waitFor(() => rec.source.runningPids.length && rec.source.runningPids, { what: 'ffmpeg to start' });
    const err = await rejection(pending);
    assert.strictEqual(err.code, 'TIMEOUT', err.message);
    assert.match(err.message, /no answer from rtsp:\/\/127\.0\.0\.1:\d+\/cam/);
    assert.strictEqual(alive(pid), false, 'ffmpeg is still running');
    assert.deepStrictEqual(rec.source.runningPids, []);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')), []);
  });

  it('stops ffmpeg when the recorder closes mid-recording, and removes the unfinished file before close() returns', async function () {
    needRtsp(this);
    server = await startRtspServer();
    const rec = recorder({ input: server.url });
    const pending = rec.record(new AbortController().signal, 10);
    const [pid] = await waitFor(() => rec.source.runningPids.length && rec.source.runningPids, { what: 'ffmpeg to start' });
    assert.ok(alive(pid));
    await waitFor(() => filesBelow(path.join(dir, 'images')).length === 1, { what: 'the temp file' });
    await rec.close();
    assert.strictEqual(alive(pid), false);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')), []);
    const err = await rejection(pending);
    assert.strictEqual(err.code, 'ABORTED', err.message);
    assert.strictEqual(alive(pid), false);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')), []);
  });

  it('ffmpeg dies with the process that started it, even one killed with SIGKILL', async function () {
    needRtsp(this);
    server = await startRtspServer();
    const script = `
      const { FfmpegSource } = require(${JSON.stringify(path.join(__dirname, '..', 'dist/lib/capture/sources/ffmpeg'))});
      const { parseFfmpegSettings } = require(${JSON.stringify(path.join(__dirname, '..', 'dist/lib/media/ffmpeg-input'))});
      const { ClipRecorder } = require(${JSON.stringify(path.join(__dirname, '..', 'dist/lib/capture/clip'))});
      const src = new FfmpegSource(parseFfmpegSettings({ input: ${JSON.stringify(server.url)}, ffmpegPath: ${JSON.stringify(FFMPEG)}, timeout: 5 }));
      const rec = new ClipRecorder(src, { imagesFolder: ${JSON.stringify(path.join(dir, 'images'))}, nameTemplate: '{camera}/{time}.{ext}', camera: 'c', minFreeBytes: 0 });
      rec.record(new AbortController().signal, 30).catch(() => undefined);
      const t = setInterval(() => { if (src.runningPids.length) { console.log(src.runningPids[0]); clearInterval(t); } }, 20);
    `;
    const { spawn } = require('child_process');
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => child.kill('SIGKILL'));
    const pid = Number(await firstLine(child.stdout, 15000, 'the ffmpeg pid'));
    assert.ok(alive(pid), 'ffmpeg runs');
    child.kill('SIGKILL');
    await waitFor(() => !alive(pid), { what: 'ffmpeg to die with its parent', timeout: 10000 });
  });

  it('records MJPEG over HTTP re-encoded to H.264, timed by arrival (MJPEG has no timestamps)', async function () {
    const port = await freePort();
    const { spawn } = require('child_process');
    // ffmpeg serves a live 10 fps MJPEG stream to one client, as a cheap IP camera does.
    const cam = spawn(FFMPEG, ['-nostdin', '-hide_banner', '-loglevel', 'quiet', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '30', '-c:v', 'mjpeg', '-q:v', '5', '-f', 'mpjpeg', '-listen', '1', `http://127.0.0.1:${port}/x.mjpg`], { stdio: 'ignore' });
    cleanups.push(async () => {
      if (cam.exitCode === null && cam.signalCode === null) {
        const gone = new Promise((r) => cam.once('exit', r));
        cam.kill('SIGKILL');
        await gone;
      }
    });
    await waitFor(() => fs.readFileSync('/proc/net/tcp', 'utf8').includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`), { what: 'the MJPEG server to listen' });
    const r = await recorder({ input: `http://127.0.0.1:${port}/x.mjpg` }).record(new AbortController().signal, 2);
    checkFile(r);
    assert.deepStrictEqual([r.codec, r.width, r.height, r.partial], ['h264', 320, 240, false]);
    assert.ok(Math.abs(r.durationS - 2) <= 1, `duration ${r.durationS}`);
  });

  it('re-encodes what MP4 cannot carry as it comes (a lavfi test source standing in for MJPEG or V4L2)', async function () {
    const r = await recorder({ input: 'lavfi:testsrc=size=320x240:rate=10' }).record(new AbortController().signal, 2);
    checkFile(r);
    assert.deepStrictEqual([r.codec, r.width, r.height, r.partial, r.durationS], ['h264', 320, 240, false, 2]);
  });

  it('sweeps clip temp files that no recording has written to for a long time', async function () {
    const images = path.join(dir, 'images');
    fs.mkdirSync(images, { recursive: true });
    const stale = path.join(images, '.clip-0123456789ab.mp4.part');
    const fresh = path.join(images, '.clip-ba9876543210.mp4.part');
    const other = path.join(images, 'old-notes.txt');
    for (const f of [stale, fresh, other]) fs.writeFileSync(f, 'x');
    const hourAgo = new Date(Date.now() - 3600 * 1000);
    fs.utimesSync(stale, hourAgo, hourAgo);
    fs.utimesSync(other, hourAgo, hourAgo);
    const r = await recorder({ input: 'lavfi:testsrc=size=64x48:rate=5' }).record(new AbortController().signal, 1);
    assert.deepStrictEqual([fs.existsSync(stale), fs.existsSync(fresh), fs.existsSync(other), fs.existsSync(r.file)], [false, true, true, true]);
    fs.rmSync(fresh);
  });

  it('says ffmpeg is missing, as clearly as when it is run without the parent-death guard', async function () {
    const missing = path.join(dir, 'no-such-ffmpeg');
    const err = await rejection(recorder({ input: 'lavfi:testsrc', ffmpegPath: missing }).record(new AbortController().signal, 2));
    assert.strictEqual(err.code, 'FFMPEG_MISSING');
    assert.strictEqual(err.message, `ffmpeg was not found at "${missing}": install it (sudo apt install ffmpeg) or set its path`);
  });

  it('deletes a recording with no video in it', async function () {
    // A graph that ends before its first frame: ffmpeg exits 0 with an MP4 holding no video.
    const err = await rejection(recorder({ input: 'lavfi:testsrc=size=64x48:rate=1:duration=0.001,trim=start=5' }).record(new AbortController().signal, 2));
    assert.strictEqual(err.code, 'NO_VIDEO', err.message);
    assert.match(err.message, /not a playable video \(it holds no video frames\): deleted/);
    assert.deepStrictEqual(filesBelow(path.join(dir, 'images')), []);
  });
});
