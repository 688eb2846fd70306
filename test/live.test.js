'use strict';
const assert = require('assert');
const { LiveWindow } = require('../dist/lib/live/window');
const { ViewerCount } = require('../dist/lib/live/viewers');
const { relayArgs } = require('../dist/lib/live/relay');
const { recordingArgs } = require('../dist/lib/recorder/args');
const { parseRecorderConfig, liveSlug } = require('../dist/lib/recorder/config');
const { parseFfmpegSettings } = require('../dist/lib/media/ffmpeg-input');

const INIT_A = Buffer.from('init-a');
const INIT_B = Buffer.from('init-b');

/** The playlist's tags and URIs as a list of lines, without the program date times (wall-clock). */
function lines(playlist) {
  return playlist.trim().split('\n').filter((l) => !l.startsWith('#EXT-X-PROGRAM-DATE-TIME'));
}

function tag(playlist, name) {
  const l = playlist.split('\n').find((x) => x.startsWith(`#${name}:`));
  return l === undefined ? undefined : l.slice(name.length + 2);
}

describe('live view: the playlist in memory', function () {
  it('has no playlist before the first fragment, then names the last ones, their numbers counting up', function () {
    const w = new LiveWindow({ size: 3, extra: 1 });
    assert.strictEqual(w.playlist(), undefined);
    w.setInit(INIT_A, 'video/mp4; codecs="avc1.42C01E"');
    assert.strictEqual(w.playlist(), undefined);
    for (let i = 0; i < 5; i++) w.push(Buffer.alloc(1000, i), 1, true);
    const p = w.playlist();
    assert.deepStrictEqual(lines(p), [
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-MEDIA-SEQUENCE:2',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-MAP:URI="init-1.mp4"',
      '#EXTINF:1.000,',
      'seg-2.m4s',
      '#EXTINF:1.000,',
      'seg-3.m4s',
      '#EXTINF:1.000,',
      'seg-4.m4s',
    ]);
    // One more than the playlist is kept for a player a little behind; older ones are gone.
    assert.ok(w.fragment(1));
    assert.strictEqual(w.fragment(0), undefined);
    assert.strictEqual(w.fragment(5), undefined);
    assert.deepStrictEqual(w.fragment(4).data, Buffer.alloc(1000, 4));
    assert.deepStrictEqual(w.init(1).data, INIT_A);
  });

  it('marks a restarted camera as a discontinuity with its own map, and never numbers a fragment twice', function () {
    const w = new LiveWindow({ size: 4, extra: 0 });
    w.setInit(INIT_A, 'video/mp4');
    w.push(Buffer.from('a0'), 1, true);
    w.push(Buffer.from('a1'), 1, true);
    w.setInit(INIT_B, 'video/mp4');
    w.push(Buffer.from('b0'), 2, true);
    const p = w.playlist();
    assert.deepStrictEqual(lines(p).slice(3), [
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-MAP:URI="init-1.mp4"',
      '#EXTINF:1.000,',
      'seg-0.m4s',
      '#EXTINF:1.000,',
      'seg-1.m4s',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="init-2.mp4"',
      '#EXTINF:2.000,',
      'seg-2.m4s',
    ]);
    assert.strictEqual(tag(p, 'EXT-X-TARGETDURATION'), '2');
    // Once the fragments before the restart have left the window, the discontinuity is counted in the header instead.
    for (let i = 0; i < 3; i++) w.push(Buffer.from(`b${i + 1}`), 1, true);
    const later = w.playlist();
    assert.strictEqual(tag(later, 'EXT-X-MEDIA-SEQUENCE'), '2');
    assert.strictEqual(tag(later, 'EXT-X-DISCONTINUITY-SEQUENCE'), '1');
    assert.ok(!later.includes('#EXT-X-DISCONTINUITY\n'));
    assert.ok(later.includes('init-2.mp4') && !later.includes('init-1.mp4'));
    assert.strictEqual(w.init(1), undefined, 'an initialization segment no fragment needs is let go');
    // The target duration never shrinks, as the HLS spec asks.
    assert.strictEqual(tag(later, 'EXT-X-TARGETDURATION'), '2');
  });

  it('keeps one initialization segment when a restart sends the same bytes, but still marks the discontinuity', function () {
    const w = new LiveWindow({ size: 4 });
    w.setInit(INIT_A, 'video/mp4');
    w.push(Buffer.from('x'), 1, true);
    w.setInit(Buffer.from(INIT_A), 'video/mp4');
    w.push(Buffer.from('y'), 1, true);
    const p = w.playlist();
    assert.strictEqual(p.match(/EXT-X-MAP/g).length, 1);
    assert.strictEqual(p.match(/#EXT-X-DISCONTINUITY\n/g).length, 1);
  });

  it('keeps the target duration at the rounded longest fragment, as the HLS spec asks (not rounded up)', function () {
    const w = new LiveWindow({ size: 4 });
    w.setInit(INIT_A, 'video/mp4');
    w.push(Buffer.from('x'), 1.04, true);
    w.push(Buffer.from('y'), 0.7, true);
    assert.strictEqual(tag(w.playlist(), 'EXT-X-TARGETDURATION'), '1', 'a keyframe interval a little over 1 s keeps a 1 s target');
    w.push(Buffer.from('z'), 1.6, true);
    assert.strictEqual(tag(w.playlist(), 'EXT-X-TARGETDURATION'), '2');
  });

  it('does not say segments are independent when one does not start with a keyframe', function () {
    const w = new LiveWindow({ size: 4 });
    w.setInit(INIT_A, 'video/mp4');
    w.push(Buffer.from('x'), 1, true);
    w.push(Buffer.from('y'), 1, false);
    assert.ok(!w.playlist().includes('INDEPENDENT'));
  });

  it('reports the bitrate over what it holds and how old the newest fragment is, from its clock', function () {
    let now = 1_000_000;
    const w = new LiveWindow({ size: 2, extra: 0, now: () => now });
    assert.strictEqual(w.ageS(), Infinity);
    w.setInit(INIT_A, 'video/mp4');
    w.push(Buffer.alloc(1000), 1, true);
    w.push(Buffer.alloc(3000), 1, true);
    w.push(Buffer.alloc(5000), 1, true);
    const s = w.stats();
    assert.strictEqual(s.sequence, 2);
    assert.strictEqual(s.fragments, 2);
    assert.strictEqual(s.bytes, 8000);
    assert.strictEqual(s.bitrate, 32000);
    now += 4500;
    assert.strictEqual(w.ageS(), 4.5);
    // Program date times are the wall clock at each fragment's start.
    assert.ok(w.playlist().includes(`#EXT-X-PROGRAM-DATE-TIME:${new Date(1_000_000 - 1000).toISOString()}`));
  });
});

describe('live view: viewers', function () {
  it('counts whoever asked within the window, once each, and forgets them after', function () {
    let now = 0;
    const v = new ViewerCount(() => 10_000, () => now);
    v.saw('a');
    v.saw('b');
    v.saw('a');
    assert.strictEqual(v.count(), 2);
    now = 6000;
    v.saw('a');
    now = 12_000;
    assert.strictEqual(v.count(), 1, 'b was last seen 12 s ago');
    now = 17_000;
    assert.strictEqual(v.count(), 0);
  });

  it('cannot be grown without bound by made-up ids', function () {
    const v = new ViewerCount(() => 60_000, () => 0, 50);
    for (let i = 0; i < 1000; i++) v.saw(`id${i}`);
    assert.strictEqual(v.count(), 50);
  });
});

describe('live view: settings and ffmpeg commands', function () {
  it('names the live path after the camera, in URL-safe characters', function () {
    assert.strictEqual(liveSlug('Front Door'), 'front-door');
    assert.strictEqual(liveSlug('../../etc'), 'etc');
    assert.strictEqual(liveSlug('Café #2'), 'cafe-2');
    assert.strictEqual(liveSlug('???'), 'camera');
  });

  it('reads the relay: login out of the URL into the credentials, rtsp only, transport checked', function () {
    const cfg = parseRecorderConfig({ input: 'rtsp://10.0.0.2/s', camera: 'gate', liveView: true, relayUrl: 'rtsp://pub:s%40cret@relay:8554/gate' }, {}, '/tmp');
    assert.deepStrictEqual(cfg.live, { view: true, playlistSize: 4, relay: { url: 'rtsp://relay:8554/gate', transport: 'tcp', username: 'pub', password: 's@cret' } });
    const own = parseRecorderConfig({ input: 'rtsp://10.0.0.2/s', relayUrl: 'rtsps://relay/gate', relayTransport: 'udp' }, { relayUsername: 'u', relayPassword: 'p' }, '/tmp');
    assert.deepStrictEqual(own.live, { view: false, playlistSize: 4, relay: { url: 'rtsps://relay/gate', transport: 'udp', username: 'u', password: 'p' } });
    assert.strictEqual(parseRecorderConfig({ input: 'rtsp://10.0.0.2/s' }, {}, '/tmp').live, undefined);
    assert.throws(() => parseRecorderConfig({ input: 'rtsp://10.0.0.2/s', relayUrl: 'http://relay/x' }, {}, '/tmp'), /Relay to: must be an rtsp:\/\/ or rtsps:\/\/ URL/);
    assert.throws(() => parseRecorderConfig({ input: 'rtsp://10.0.0.2/s', relayUrl: 'rtsp://r/x', relayTransport: 'sctp' }, {}, '/tmp'), /Relay transport/);
    assert.throws(() => parseRecorderConfig({ input: 'rtsp://10.0.0.2/s', liveView: true, livePlaylistSize: 40 }, {}, '/tmp'), /Live playlist/);
  });

  it('relays with the login only in the URL ffmpeg is given, a socket timeout, and the stream copied', function () {
    const args = relayArgs({ url: 'rtsp://relay:8554/gate', username: 'pub', password: 'a@b:c', transport: 'tcp' }, 10000);
    assert.strictEqual(args[args.length - 1], 'rtsp://pub:a%40b%3Ac@relay:8554/gate');
    const at = (name) => args[args.indexOf(name) + 1];
    assert.strictEqual(at('-i'), 'pipe:0');
    assert.strictEqual(at('-c'), 'copy');
    assert.strictEqual(at('-f'), 'mp4', 'the input is fragmented MP4');
    assert.strictEqual(at('-rtsp_transport'), 'tcp');
    assert.strictEqual(at('-timeout'), '10000000');
  });

  it('writes segments and the live stream from one ffmpeg through the tee muxer, with plain names only', function () {
    /** @type {{ source: import('../dist/lib/media/ffmpeg-input').FfmpegSettings, segmentSeconds: number, audio: 'none' }} */
    const base = { source: parseFfmpegSettings({ input: 'rtsp://cam/s' }), segmentSeconds: 10, audio: 'none' };
    const copy = recordingArgs({ ...base, video: 'copy', listFile: 'r1.csv', segmentPattern: 'r1-%06d.mp4', live: true });
    assert.strictEqual(copy.filter((a) => a === '-i').length, 1, 'the camera is read once');
    assert.strictEqual(copy[copy.indexOf('-f', copy.indexOf('-c:v')) + 1], 'tee');
    const tee = copy[copy.length - 1];
    assert.match(tee, /^\[f=segment:segment_time=10:segment_format=mp4:segment_format_options=movflags=\+frag_keyframe\+empty_moov\+default_base_moof\\\\:frag_duration=500000\\\\:flush_packets=1:reset_timestamps=1:segment_list=r1\.csv:segment_list_type=csv\]r1-%06d\.mp4\|\[f=mp4:movflags=\+frag_keyframe\+empty_moov\+default_base_moof:flush_packets=1:onfail=ignore\]pipe:1$/);
    assert.ok(!copy.includes('-flags:v'), 'copied video keeps the camera\'s headers');
    const encoded = recordingArgs({ ...base, source: parseFfmpegSettings({ input: 'lavfi:testsrc' }), segmentSeconds: 2.5, video: 'libx264', listFile: 'r1.csv', segmentPattern: 'r1-%06d.mp4', live: true });
    assert.strictEqual(encoded[encoded.indexOf('-flags:v') + 1], '+global_header');
    assert.strictEqual(encoded[encoded.indexOf('-force_key_frames') + 1], 'expr:gte(t,n_forced*0.8333333333333334)', 'a keyframe at least every second');
    assert.throws(() => recordingArgs({ ...base, video: 'copy', listFile: '/data/my [cam]|x/r1.csv', segmentPattern: 'r1-%06d.mp4', live: true }), /not a plain file name/);
    // Without the live view, the command is the recorder's own, unchanged.
    const plain = recordingArgs({ ...base, video: 'copy', listFile: '/d/r1.csv', segmentPattern: '/d/r1-%06d.mp4' });
    assert.ok(!plain.includes('tee') && plain.includes('segment'));
  });
});

describe('live view: two recorders, one camera name', function () {
  this.timeout(30000);
  const helper = require('node-red-node-test-helper');
  const recorderNode = require('../dist/nodes/recorder/recorder.js');
  const { tmpDir, rmrf, waitFor } = require('./support/tmp');
  helper.init(require.resolve('node-red'));
  let dir;
  beforeEach(function (done) {
    dir = tmpDir('uplink-live-clash-');
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    rmrf(dir);
  });

  it('serves the first one and refuses the second with a message naming the camera, both still recording', async function () {
    const rec = (id) => ({ id, type: 'uplink-recorder', camera: 'Gate', input: 'lavfi:testsrc=size=160x120:rate=10', segmentSeconds: 1, folder: `${dir}/${id}`, keepFreeMB: 0, liveView: true, wires: [[], []] });
    await helper.load([recorderNode], [rec('a'), rec('b')]);
    const errors = [];
    for (const id of ['a', 'b']) {
      const n = helper.getNode(id);
      const error = n.error.bind(n);
      n.error = (e) => {
        errors.push({ id, text: String(e) });
        return error(e);
      };
    }
    await waitFor(() => errors.length > 0, { timeout: 15000, what: 'the second recorder to be refused its live view' });
    assert.strictEqual(errors.length, 1);
    assert.match(errors[0].text, /the live view \/uplink\/live\/gate\/ is already served by the recorder of camera "Gate": give this camera another name/);
    const refused = helper.getNode(errors[0].id);
    assert.strictEqual(refused.liveSlug, undefined, 'the live widget is not pointed at the other camera');
    assert.match(refused.liveProblem, /already served/);
    await waitFor(() => helper.getNode('a').recorder && helper.getNode('b').recorder && helper.getNode('a').recorder.snapshot().segments > 0 && helper.getNode('b').recorder.snapshot().segments > 0, { timeout: 15000, what: 'both recording' });
  });
});
