'use strict';
// Self-test of the RTSP relay target (test/support/rtsp-record-server.js) that the recorder's relay tests rely on:
// ffmpeg publishes the camera stand-in's stream to it (RECORD, no re-encoding), and PLAY clients read it back.
const assert = require('assert');
const childProcess = require('child_process');
const path = require('path');
const { waitFor } = require('./support/tmp');
const { exitsWhenStdinCloses } = require('./support/gst-process');
const { hasFfmpeg, runFfmpeg } = require('./support/ffmpeg');
const { missingNeed } = require('./support/skip');
const { refused } = require('./support/net');
const rtsp = require('./support/rtsp-server');
const record = require('./support/rtsp-record-server');
const { decodeTimecode } = require('./support/timecode');
const { alive } = require('./support/procs');

const withLogin = (url, login) => url.replace('rtsp://', `rtsp://${login}@`);

/** Publishes `camUrl` (copy) to `target` for up to `seconds`. */
function publish(camUrl, target, seconds = 30) {
  return runFfmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-probesize', '32', '-i', camUrl, '-c', 'copy', '-t', String(seconds), '-f', 'rtsp', '-rtsp_transport', 'tcp', target], (seconds + 15) * 1000);
}

describe('RTSP record test server (relay target)', function () {
  this.timeout(90000);
  let cam;
  let server;
  /** @type {Array<{ stop: () => void, done: Promise<unknown> }>} */
  let running = [];

  before(function () {
    const why = missingNeed([
      [rtsp.available(), rtsp.unavailableReason()],
      [record.available(), record.unavailableReason()],
      [hasFfmpeg(), 'ffmpeg is not installed'],
    ]);
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });

  afterEach(async () => {
    for (const r of running) r.stop();
    await Promise.all(running.map((r) => r.done));
    running = [];
    if (server) await server.close();
    if (cam) await cam.close();
    server = null;
    cam = null;
  });

  const start = (proc) => {
    running.push(proc);
    return proc;
  };

  it('relays a published stream to PLAY clients unchanged, refuses a wrong login, and takes a new publisher after a kill and restart', async () => {
    cam = await rtsp.startRtspServer({ user: 'cam', password: 'pw', timecode: true });
    server = await record.startRecordServer({ user: 'relay', password: 'r3lay' });
    assert.match(server.url, /^rtsp:\/\/127\.0\.0\.1:\d+\/ingest$/);
    assert.strictEqual(server.playUrl, `rtsp://127.0.0.1:${server.port}/live`);
    const camUrl = withLogin(cam.url, 'cam:pw');
    const playUrl = withLogin(server.playUrl, 'relay:r3lay');
    assert.strictEqual(await server.publishers(), 0);

    const wrong = await publish(camUrl, withLogin(server.url, 'relay:wrong'), 2).done;
    assert.notStrictEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401/);
    assert.strictEqual(await server.publishers(), 0);

    const publisher = start(publish(camUrl, withLogin(server.url, 'relay:r3lay')));
    await waitFor(async () => (await server.publishers()) === 1, { what: 'the publisher to record', timeout: 15000, interval: 200 });

    const play = await runFfmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', playUrl, '-frames:v', '5', '-f', 'null', '-']).done;
    assert.strictEqual(play.code, 0, play.stderr);
    const probe = childProcess.execFileSync('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-timeout', '5000000', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', playUrl], { encoding: 'utf8', timeout: 20000 });
    assert.strictEqual(probe.trim(), 'h264,640,360');
    // The camera's picture comes through: its time code decodes from a frame read at /live.
    const started = Date.now();
    const frame = await runFfmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', playUrl, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-']).done;
    assert.strictEqual(frame.code, 0, frame.stderr);
    const ms = decodeTimecode(frame.stdout, 640, 360);
    assert.ok(ms !== null && ms >= started - 5000 && ms <= Date.now(), `time code ${ms}, read started ${started}`);
    const badPlay = await runFfmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', withLogin(server.playUrl, 'relay:wrong'), '-frames:v', '1', '-f', 'null', '-']).done;
    assert.notStrictEqual(badPlay.code, 0);
    assert.match(badPlay.stderr, /401/);

    const oldPid = server.pid;
    await server.kill();
    assert.strictEqual(alive(oldPid), false);
    assert.strictEqual(await refused(server.port), true);
    assert.strictEqual(await server.publishers(), 0);
    // The publisher notices its target is gone and ends (it may exit 0: the exit code says nothing here).
    await publisher.done;

    await server.restart();
    assert.notStrictEqual(server.pid, oldPid);
    assert.strictEqual(await server.publishers(), 0);
    start(publish(camUrl, withLogin(server.url, 'relay:r3lay')));
    await waitFor(async () => (await server.publishers()) === 1, { what: 'the new publisher to record', timeout: 15000, interval: 200 });
    const again = await runFfmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', playUrl, '-frames:v', '5', '-f', 'null', '-']).done;
    assert.strictEqual(again.code, 0, again.stderr);
  });

  it('counts a publisher only while it records, and serves without a login when started without one', async () => {
    cam = await rtsp.startRtspServer();
    server = await record.startRecordServer();
    const publisher = start(publish(cam.url, server.url));
    await waitFor(async () => (await server.publishers()) === 1, { what: 'the publisher to record', timeout: 15000, interval: 200 });
    const viewer = start(runFfmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', server.playUrl, '-t', '30', '-progress', 'pipe:1', '-f', 'null', '-']));
    // Playing, not just connected: a viewer still in DESCRIBE when the publisher goes waits there for the next one.
    await waitFor(() => /frame=[1-9]/.test(viewer.output()), { what: 'the viewer to decode frames', timeout: 15000, interval: 200 });
    assert.strictEqual(await server.clients(), 2);
    assert.strictEqual(await server.publishers(), 1, 'a PLAY client is not a publisher');
    publisher.stop();
    await waitFor(async () => (await server.publishers()) === 0, { what: 'the publisher to be gone', timeout: 10000, interval: 200 });
    assert.strictEqual(server.publisherCount, 0);
    viewer.stop();
    await waitFor(async () => (await server.clients()) === 0, { what: 'the viewer to be gone', timeout: 10000, interval: 200 });
  });

  it('exits when the stdin of its process closes', async () => {
    assert.strictEqual(await exitsWhenStdinCloses(path.join(__dirname, 'fixtures', 'rtsp_record_server.py')), true);
  });
});
