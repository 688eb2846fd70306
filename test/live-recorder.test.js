'use strict';
// The recorder's live view and RTSP relay in a real node-red, against the RTSP camera stand-in (digest login) and an
// RTSP server that takes RECORD: one camera connection feeds recording, HLS and relay; each survives the others'
// failures; nothing is written to disk for the live view; no ffmpeg outlives Node-RED.
const assert = require('assert');
const { execFile } = require('child_process');
const fs = require('fs');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { call, until, deploy } = require('./support/http-client');
const { tmpDir, rmrf } = require('./support/tmp');
const { alive } = require('./support/procs');
const rtsp = require('./support/rtsp-server');
const recordServer = require('./support/rtsp-record-server');

const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red'))] }));

const CAMERA_USER = 'admin';
const CAMERA_PASSWORD = 'cam-S3cret!';
const RELAY_USER = 'publisher';
const RELAY_PASSWORD = 'relay-S3cret!';
const HTTP_USER = 'viewer';
const HTTP_PASS = 'watch-me';
const auth = { authorization: `Basic ${Buffer.from(`${HTTP_USER}:${HTTP_PASS}`).toString('base64')}` };

/** Runs a program to its end (bounded), with its output. */
function run(file, args, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Process ids of the running ffmpeg processes whose command line mentions `text`. */
function ffmpegPids(text) {
  const pids = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmd;
    try {
      cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (path.basename(cmd[0] || '') === 'ffmpeg' && cmd.some((a) => a.includes(text)) && alive(Number(name))) pids.push(Number(name));
  }
  return pids;
}

/** Every file below a folder, as paths relative to it. */
function filesBelow(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(p);
      } else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

function tag(playlist, name) {
  const m = new RegExp(`^#${name}:(.*)$`, 'm').exec(playlist);
  return m ? m[1] : undefined;
}

describe('recorder: live view and relay in node-red', function () {
  this.timeout(180_000);
  let dir;
  let camera;
  let relay;
  let red;
  let base;
  let folder;
  let userDir;

  before(async function () {
    if (!rtsp.available() || !recordServer.available()) {
      console.log(`      skipped: ${rtsp.unavailableReason() || recordServer.unavailableReason()}`);
      this.skip();
    }
    dir = tmpDir('uplink-live-');
    userDir = path.join(dir, 'user');
    folder = path.join(userDir, 'recordings');
    camera = await rtsp.startRtspServer({ user: CAMERA_USER, password: CAMERA_PASSWORD });
    relay = await recordServer.startRecordServer({ user: RELAY_USER, password: RELAY_PASSWORD });
    red = await startNodeRed({ userDir, flows: [], settings: { httpNodeAuth: { user: HTTP_USER, pass: bcrypt.hashSync(HTTP_PASS, 8) } } });
    base = `${red.url}/uplink/live/gate-camera`;
    // Deployed as the editor does, so both logins land in Node-RED's encrypted credentials.
    await deploy(red, [
      { id: 't1', type: 'tab', label: 'live' },
      {
        id: 'rec', z: 't1', type: 'uplink-recorder', name: 'gate', camera: 'Gate camera', input: camera.url, kind: 'rtsp', segmentSeconds: 2, folder,
        keepFreeMB: 0, liveView: true, livePlaylistSize: 4, relayUrl: relay.url, relayTransport: 'tcp', wires: [[], []],
        credentials: { username: CAMERA_USER, password: CAMERA_PASSWORD, relayUsername: RELAY_USER, relayPassword: RELAY_PASSWORD },
      },
      { id: 'mon', z: 't1', type: 'uplink-monitor', name: 'watch', device: 'test-pi', health: true, metrics: true, wires: [[]] },
    ]);
  });

  after(async function () {
    if (red) await red.stop();
    if (camera) await camera.close();
    if (relay) await relay.close();
    if (dir) rmrf(dir);
  });

  const playlist = () => call(`${base}/index.m3u8?viewer=test`, { headers: auth });
  const status = async () => (await call(`${base}/status`, { headers: auth })).body;
  const segmentsOnDisk = () => fs.readdirSync(folder).filter((n) => n.endsWith('.mp4')).length;
  const authedUrl = (u) => u.replace('http://', `http://${HTTP_USER}:${HTTP_PASS}@`);

  it('serves a live HLS playlist behind httpNodeAuth that ffprobe reads and ffmpeg decodes, its sequence advancing', async function () {
    assert.strictEqual((await call(`${base}/index.m3u8`)).status, 401, 'httpNodeAuth applies');
    const first = await until('the live playlist', async () => {
      const r = await playlist();
      return { ok: r.status === 200 && (r.text.match(/^seg-\d+\.m4s$/gm) || []).length >= 2, value: r.text };
    });
    assert.match(first, /^#EXT-X-MAP:URI="init-1\.mp4"$/m);
    const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', authedUrl(`${base}/index.m3u8`)]);
    assert.strictEqual(probe.code, 0, probe.stderr);
    // The stream, once as the playlist's program lists it and once as itself.
    const streams = probe.stdout.split('\n').filter((l) => l.trim() !== '');
    assert.ok(streams.length >= 1 && streams.every((l) => l === 'h264,640,360'), probe.stdout);
    const decode = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', authedUrl(`${base}/index.m3u8`), '-frames:v', '15', '-f', 'null', '-']);
    assert.strictEqual(decode.code, 0, decode.stderr);
    assert.strictEqual(decode.stderr.trim(), '', 'decodes without an error');
    const later = await until('the media sequence to advance', async () => {
      const r = await playlist();
      return { ok: r.status === 200 && Number(tag(r.text, 'EXT-X-MEDIA-SEQUENCE')) > Number(tag(first, 'EXT-X-MEDIA-SEQUENCE')), value: r.text };
    });
    assert.ok(later);
    assert.strictEqual((await call(`${base}/seg-999999.m4s`, { headers: auth })).status, 404);
    assert.strictEqual((await call(`${red.url}/uplink/live/no-such-camera/index.m3u8`, { headers: auth })).status, 404);
  });

  it('gives ten viewers the stream from one camera connection', async function () {
    const seq = (t) => [...t.matchAll(/^seg-(\d+)\.m4s$/gm)].map((m) => Number(m[1]));
    const viewer = async (i) => {
      for (let round = 0; round < 3; round++) {
        const r = await call(`${base}/index.m3u8?viewer=v${i}`, { headers: auth });
        assert.strictEqual(r.status, 200);
        const res = await fetch(`${base}/seg-${seq(r.text).pop()}.m4s`, { headers: auth, signal: AbortSignal.timeout(5000) });
        assert.strictEqual(res.status, 200);
        assert.ok((await res.arrayBuffer()).byteLength > 0);
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, i) => viewer(i)));
    const s = await status();
    assert.ok(s.viewers >= 10, `viewers counted: ${JSON.stringify(s)}`);
    assert.strictEqual(s.state, 'live');
    assert.strictEqual(await camera.clients(), 1, 'the camera has one client: the recording\'s ffmpeg');
  });

  it('relays the stream to an RTSP server with the login from the credentials, which a client reads and decodes', async function () {
    await until('one publisher on the relay server', async () => ({ ok: (await relay.publishers()) === 1 }));
    const s = await until('the relay up', async () => {
      const st = await status();
      return { ok: st.relay && st.relay.state === 'relaying', value: st };
    });
    assert.strictEqual(s.relay.reconnects, 0);
    const playUrl = relay.playUrl.replace('rtsp://', `rtsp://${RELAY_USER}:${RELAY_PASSWORD}@`);
    const read = await run('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', 'tcp', '-i', playUrl, '-frames:v', '10', '-f', 'null', '-']);
    assert.strictEqual(read.code, 0, read.stderr);
    assert.strictEqual(await camera.clients(), 1, 'the relay does not read the camera again');
    // The device monitor shows both.
    const metrics = (await call(`${red.url}/uplink/metrics`, { headers: auth })).text;
    assert.match(metrics, /^uplink_relay_up\{node="gate",camera="Gate camera"\} 1$/m);
    assert.match(metrics, /^uplink_live_up\{node="gate",camera="Gate camera"\} 1$/m);
    assert.match(metrics, /^uplink_live_bitrate_bits_per_second\{node="gate",camera="Gate camera"\} [1-9]\d*$/m);
    assert.match(metrics, /^uplink_live_viewers\{node="gate",camera="Gate camera"\} [1-9]\d*$/m);
    const health = (await call(`${red.url}/uplink/health`, { headers: auth })).body;
    const rec = health.recorders.find((r) => r.name === 'gate');
    assert.strictEqual(rec.live.path, '/uplink/live/gate-camera/index.m3u8');
    assert.strictEqual(rec.live.state, 'live');
    assert.strictEqual(rec.relay.state, 'relaying');
    assert.ok(!JSON.stringify(health).includes(RELAY_PASSWORD) && !metrics.includes(RELAY_PASSWORD));
    // Neither login is in the flow file or the answers.
    const flowsFile = fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8');
    for (const secret of [CAMERA_PASSWORD, RELAY_PASSWORD]) {
      assert.ok(!flowsFile.includes(secret));
      assert.ok(!JSON.stringify(s).includes(secret));
    }
  });

  it('keeps recording while the relay server is down, and relays again once it is back', async function () {
    const gaps = async () => (await call(`${red.url}/uplink/health`, { headers: auth })).body.recorders[0].gaps;
    const gapsBefore = await gaps();
    const before = segmentsOnDisk();
    await relay.kill();
    await until('the relay to notice', async () => {
      const st = await status();
      return { ok: st.relay.state === 'reconnecting' || st.relay.state === 'connecting', value: st };
    });
    await until('two more segments closed while the relay is down', async () => ({ ok: segmentsOnDisk() >= before + 2 }), 30_000);
    assert.strictEqual((await status()).state, 'live', 'the live view goes on too');
    assert.strictEqual(await gaps(), gapsBefore, 'no gap in the recording');
    await relay.restart();
    await until('relaying again', async () => {
      const st = await status();
      return { ok: st.relay.state === 'relaying' && (await relay.publishers()) === 1, value: st };
    }, 60_000);
  });

  it('brings recording, live view and relay back after the camera dies and returns', async function () {
    const seqBefore = (await status()).sequence;
    const segmentsBefore = segmentsOnDisk();
    await camera.kill();
    await until('the live view down', async () => {
      const r = await playlist();
      return { ok: r.status === 503, value: r.text };
    });
    // While it is down, the last picture it sent, from memory.
    const asked = Date.now();
    const down = await status();
    assert.ok(down.lastFrameAt && down.still, JSON.stringify(down));
    // The server's clock beside it, by which a browser shows that time corrected for its own clock.
    assert.ok(Date.parse(down.now) >= asked - 1000 && Date.parse(down.now) <= Date.now() + 1000, `now is this server's time: ${down.now}`);
    assert.ok(Date.parse(down.lastFrameAt) <= Date.parse(down.now), 'the last frame came before now');
    const still = await fetch(`${red.url}/${down.still}`, { headers: auth, signal: AbortSignal.timeout(10_000) });
    assert.strictEqual(still.status, 200);
    assert.strictEqual(still.headers.get('content-type'), 'image/jpeg');
    const jpegFile = path.join(dir, 'still.jpg');
    fs.writeFileSync(jpegFile, Buffer.from(await still.arrayBuffer()));
    const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', jpegFile]);
    assert.strictEqual(probe.stdout.trim(), 'mjpeg,640,360', probe.stderr);
    assert.strictEqual((await call(`${base}/still.jpg`)).status, 401, 'httpNodeAuth applies');
    await camera.restart();
    const back = await until('live again, past a discontinuity', async () => {
      const r = await playlist();
      return { ok: r.status === 200 && Number(tag(r.text, 'EXT-X-MEDIA-SEQUENCE')) > seqBefore && /#EXT-X-DISCONTINUITY\n|#EXT-X-DISCONTINUITY-SEQUENCE:[1-9]/.test(r.text), value: r.text };
    }, 60_000);
    assert.ok(back);
    const decode = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', authedUrl(`${base}/index.m3u8`), '-frames:v', '10', '-f', 'null', '-']);
    assert.strictEqual(decode.code, 0, decode.stderr);
    await until('segments closing again', async () => ({ ok: segmentsOnDisk() >= segmentsBefore + 2 }), 30_000);
    await until('relaying again', async () => ({ ok: (await status()).relay.state === 'relaying' && (await relay.publishers()) === 1 }), 60_000);
    assert.strictEqual(await camera.clients(), 1);
  });

  it('writes nothing for the live view, and leaves no ffmpeg behind when Node-RED is killed', async function () {
    const files = filesBelow(userDir);
    assert.deepStrictEqual(files.filter((f) => /\.(m3u8|m4s)$|(^|\/)init-\d+\.mp4$/.test(f)), []);
    // In the recordings folder: segments, and the recorder's own state (its journal and ffmpeg's working files).
    for (const f of filesBelow(folder)) assert.match(f, /^(Gate_camera_\d{8}_\d{6}\.mp4|\.uplink-recorder\/.+)$/, f);
    const recording = ffmpegPids(`${camera.port}`);
    const relaying = ffmpegPids(`${relay.port}`);
    assert.strictEqual(recording.length, 1, 'one ffmpeg reads the camera');
    assert.strictEqual(relaying.length, 1, 'one ffmpeg relays');
    await red.kill('SIGKILL');
    red = undefined;
    await until('no ffmpeg left', async () => ({ ok: [...recording, ...relaying].every((p) => !alive(p)) }), 10_000);
  });
});
