'use strict';
// Self-test of the RTSP camera stand-in (test/support/rtsp-server.js) that the clip and recorder tests rely on.
const assert = require('assert');
const childProcess = require('child_process');
const path = require('path');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { available, unavailableReason, startRtspServer, startSilentServer } = require('./support/rtsp-server');
const { exitsWhenStdinCloses } = require('./support/gst-process');
const { hasFfmpeg, runFfmpeg } = require('./support/ffmpeg');
const { missingNeed } = require('./support/skip');
const { refused } = require('./support/net');
const { alive } = require('./support/procs');

/** Runs ffmpeg to completion (bounded, overwriting its output file), resolving { code, stdout, stderr }. */
const ffmpeg = (args, timeout = 20000) => runFfmpeg(['-y', ...args], timeout).done;

describe('RTSP test server', function () {
  this.timeout(60000);
  let server;
  let dir;

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

  beforeEach(() => {
    dir = tmpDir();
  });

  afterEach(async () => {
    if (server) await server.close();
    server = null;
    rmrf(dir);
  });

  it('serves H.264 behind Digest auth, refuses a wrong password, and comes back on the same port after a kill', async () => {
    server = await startRtspServer({ user: 'cam', password: 's3cret' });
    assert.match(server.url, /^rtsp:\/\/127\.0\.0\.1:\d+\/cam$/);
    const withCreds = (user, pass) => server.url.replace('rtsp://', `rtsp://${user}:${pass}@`);
    const out = path.join(dir, 'a.mp4');

    const ok = await ffmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', withCreds('cam', 's3cret'), '-c', 'copy', '-t', '1', out]);
    assert.strictEqual(ok.code, 0, ok.stderr);
    const probe = childProcess.execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', out], { encoding: 'utf8' });
    assert.strictEqual(probe.trim(), 'h264,640,360');

    const bad = await ffmpeg(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', withCreds('cam', 'wrong'), '-c', 'copy', '-t', '1', path.join(dir, 'b.mp4')]);
    assert.notStrictEqual(bad.code, 0);
    assert.match(bad.stderr, /401/);

    const oldPid = server.pid;
    await server.kill();
    assert.strictEqual(alive(oldPid), false);
    assert.strictEqual(await refused(server.port), true);
    await server.restart();
    assert.notStrictEqual(server.pid, oldPid);
    const again = await ffmpeg(['-rtsp_transport', 'udp', '-timeout', '5000000', '-i', withCreds('cam', 's3cret'), '-c', 'copy', '-t', '1', path.join(dir, 'c.mp4')]);
    assert.strictEqual(again.code, 0, again.stderr);
  });

  it('counts the RTSP clients connected to it as they come and go (TCP and UDP transport alike)', async () => {
    server = await startRtspServer({ user: 'cam', password: 's3cret' });
    const url = server.url.replace('rtsp://', 'rtsp://cam:s3cret@');
    assert.strictEqual(await server.clients(), 0);
    const viewers = ['tcp', 'udp'].map((transport) =>
      childProcess.spawn('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', transport, '-timeout', '5000000', '-i', url, '-t', '30', '-f', 'null', '-'], { stdio: 'ignore' }),
    );
    const exits = viewers.map((p) => new Promise((resolve) => p.on('exit', resolve)));
    try {
      await waitFor(async () => (await server.clients()) === 2, { what: 'two clients', timeout: 15000, interval: 200 });
      assert.strictEqual(server.clientCount, 2);
      viewers[0].kill('SIGKILL'); // gone without a TEARDOWN
      await waitFor(async () => (await server.clients()) === 1, { what: 'one client left', timeout: 10000, interval: 200 });
      viewers[1].kill('SIGTERM');
      await waitFor(async () => (await server.clients()) === 0, { what: 'no client left', timeout: 10000, interval: 200 });
      assert.strictEqual(server.clientCount, 0);
    } finally {
      for (const p of viewers) p.kill('SIGKILL');
      await Promise.all(exits);
    }
    await server.kill();
    assert.strictEqual(await server.clients(), 0, 'a dead camera has no clients');
  });

  it('exits when the stdin of its process closes', async () => {
    assert.strictEqual(await exitsWhenStdinCloses(path.join(__dirname, 'fixtures', 'rtsp_server.py')), true);
  });

  it('a silent server accepts and never answers', async () => {
    const silent = await startSilentServer();
    try {
      const r = await ffmpeg(['-rtsp_transport', 'tcp', '-timeout', '1000000', '-i', silent.url, '-t', '1', path.join(dir, 'd.mp4')]);
      assert.notStrictEqual(r.code, 0);
    } finally {
      await silent.close();
    }
  });
});
