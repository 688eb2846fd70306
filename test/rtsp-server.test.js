'use strict';
// Self-test of the RTSP camera stand-in (test/support/rtsp-server.js) that the clip and recorder tests rely on.
const assert = require('assert');
const childProcess = require('child_process');
const net = require('net');
const path = require('path');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { available, unavailableReason, startRtspServer, startSilentServer } = require('./support/rtsp-server');
const { alive } = require('./support/procs');

function hasFfmpeg() {
  return childProcess.spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
}

/** Runs ffmpeg to completion (bounded), resolving { code, stderr }. */
function ffmpeg(args, timeout = 20000) {
  return new Promise((resolve, reject) => {
    const p = childProcess.spawn('ffmpeg', ['-nostdin', '-y', '-v', 'error', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

describe('RTSP test server', function () {
  this.timeout(60000);
  let server;
  let dir;

  before(function () {
    if (!available()) {
      console.log(`      skipped: ${unavailableReason()}`);
      this.skip();
    }
    if (!hasFfmpeg()) {
      console.log('      skipped: ffmpeg is not installed');
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
    const child = childProcess.spawn('/usr/bin/python3', [path.join(__dirname, 'fixtures', 'rtsp_server.py'), '0'], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for the port line')), 15000);
        child.stdout.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      child.stdin.end();
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, { what: 'the server to exit', timeout: 10000 });
    } finally {
      child.kill('SIGKILL');
    }
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
