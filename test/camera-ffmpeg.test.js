'use strict';
// Camera sources that run a program per capture: ffmpeg (lavfi, MJPEG over HTTP, RTSP failures) and a user's command.
// Real ffmpeg, real servers on 127.0.0.1, and a check after every test that no child process is left behind.
const assert = require('assert');
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const { FfmpegSource } = require('../dist/lib/capture/sources/ffmpeg');
const { parseFfmpegSettings } = require('../dist/lib/media/ffmpeg-input');
const { maskUrlLogin } = require('../dist/lib/util/url-login');
const { CommandSource, parseCommandSettings } = require('../dist/lib/capture/sources/command');
const { splitCommandLine } = require('../dist/lib/capture/child-run');
const { inspectImage } = require('../dist/lib/capture/image-info');
const { CaptureError } = require('../dist/lib/capture/types');
const { listenLocal } = require('./support/net');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { alive } = require('./support/procs');

const FFMPEG = '/usr/bin/ffmpeg';
const MB = 1024 * 1024;

/** Live processes whose command line contains `marker`, from ps. */
function processesWith(marker) {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\S+)\s+(.*)$/))
    .filter((m) => m && !m[2].startsWith('Z') && m[3].includes(marker) && Number(m[1]) !== process.pid)
    .map((m) => ({ pid: Number(m[1]), args: m[3] }));
}

/** Live child processes of this test process, from /proc. */
function ourChildren() {
  const kids = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === process.pid && state !== 'Z') kids.push(Number(name));
    } catch {
      /* it ended while we looked */
    }
  }
  return kids;
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the capture to fail, it succeeded');
}

/** A port nothing listens on right now. */
async function freePort() {
  const srv = net.createServer();
  const port = await listenLocal(srv);
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Whether something listens on 127.0.0.1:port, read from /proc (a probe connection would use up a one-client server). */
function listening(port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const rows = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
  return rows.some((r) => {
    const cols = r.trim().split(/\s+/);
    return cols[1] === `0100007F${hex}` && cols[3] === '0A';
  });
}

/** Stops a process we started: SIGTERM, SIGKILL if it lingers, and waits for its exit (bounded). */
async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 2000);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  clearTimeout(t);
}

describe('camera sources that run a program', function () {
  this.timeout(20000);
  let dir;
  let fixture; // a 64x48 JPEG made by ffmpeg
  const cleanups = [];
  const sources = [];

  before(async function () {
    this.timeout(320000);
    // ffmpeg may still be being installed by apt: wait for it (bounded), then make the fixture.
    await waitFor(() => fs.existsSync(FFMPEG), { timeout: 300000, interval: 1000, what: `${FFMPEG} to be installed` });
    dir = tmpDir('uplink-camera-');
    fixture = path.join(dir, 'fixture.jpg');
    execFileSync(FFMPEG, ['-nostdin', '-y', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x48', '-frames:v', '1', fixture]);
  });

  after(() => rmrf(dir));

  afterEach(async () => {
    while (sources.length) {
      const s = sources.pop();
      await s.close();
      assert.deepStrictEqual(s.runningPids, [], 'a child process outlived close()');
    }
    while (cleanups.length) await cleanups.pop()();
    assert.deepStrictEqual(ourChildren(), [], 'a child process was left behind');
  });

  function ffmpegSource(raw, credentials) {
    const s = new FfmpegSource(parseFfmpegSettings({ ffmpegPath: FFMPEG, timeout: 10, ...raw }, credentials));
    sources.push(s);
    return s;
  }

  function commandSource(raw) {
    const s = new CommandSource(parseCommandSettings({ timeout: 10, ...raw }));
    sources.push(s);
    return s;
  }

  /**
   * A TCP server on 127.0.0.1 whose connections get `onConnection` (nothing: it accepts and never says anything).
   * @param {(socket: net.Socket) => void} [onConnection]
   */
  async function tcpServer(onConnection = () => undefined) {
    const sockets = new Set();
    const srv = net.createServer((c) => {
      sockets.add(c);
      c.on('error', () => undefined);
      c.on('close', () => sockets.delete(c));
      onConnection(c);
    });
    const port = await listenLocal(srv);
    cleanups.push(async () => {
      for (const c of sockets) c.destroy();
      await new Promise((resolve) => srv.close(resolve));
    });
    return port;
  }
  const silentServer = () => tcpServer();

  /** ffmpeg serving a live MJPEG test pattern over HTTP: one client per process, so one per test. */
  async function ffmpegMjpegServer(size = '320x240') {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/x.mjpg`;
    const child = spawn(FFMPEG, ['-nostdin', '-hide_banner', '-loglevel', 'quiet', '-re', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=10`, '-f', 'mpjpeg', '-listen', '1', url], {
      stdio: 'ignore',
    });
    cleanups.push(() => stopProcess(child));
    await waitFor(() => listening(port) || child.exitCode !== null, { timeout: 10000, what: 'ffmpeg to listen' });
    assert.strictEqual(child.exitCode, null, 'the ffmpeg MJPEG server exited early');
    return url;
  }

  /** A Node MJPEG server that wants HTTP Basic authentication, sending the fixture as frames. */
  async function authMjpegServer(user, pass) {
    const jpeg = fs.readFileSync(fixture);
    const expected = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    const seen = [];
    const timers = new Set();
    const srv = http.createServer((req, res) => {
      seen.push(req.headers.authorization ?? null);
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="cam"', 'Content-Type': 'text/plain' });
        res.end('401 Unauthorized');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace; boundary=frame', 'Cache-Control': 'no-cache' });
      const frame = () => {
        res.write(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
        res.write(jpeg);
        res.write('\r\n');
      };
      frame();
      const t = setInterval(frame, 100);
      timers.add(t);
      res.on('close', () => {
        clearInterval(t);
        timers.delete(t);
      });
    });
    const port = await listenLocal(srv);
    cleanups.push(async () => {
      for (const t of timers) clearInterval(t);
      srv.closeAllConnections();
      await new Promise((resolve) => srv.close(resolve));
    });
    return { url: `http://127.0.0.1:${port}/video.mjpg`, seen };
  }

  describe('ffmpeg', () => {
    it('grabs a JPEG of the size asked for from a lavfi test pattern', async () => {
      const src = ffmpegSource({ input: 'lavfi:testsrc=size=320x240:rate=5' });
      assert.strictEqual(src.settings.kind, 'lavfi');
      const buf = await src.grab(AbortSignal.timeout(15000), 5 * MB);
      const info = inspectImage(buf);
      assert.deepStrictEqual([info.format, info.width, info.height], ['jpeg', 320, 240]);
      assert.deepStrictEqual(src.runningPids, []);
    });

    it('grabs a frame from an MJPEG stream over HTTP', async () => {
      const url = await ffmpegMjpegServer('320x240');
      const src = ffmpegSource({ input: url });
      assert.strictEqual(src.settings.kind, 'mjpeg');
      const info = inspectImage(await src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.deepStrictEqual([info.width, info.height], [320, 240]);
    });

    it('puts the user name and password into the URL only when ffmpeg runs, encoded so any character survives', async () => {
      const user = 'cam user';
      const pass = 'p@ss:w/rd%41#?';
      const cam = await authMjpegServer(user, pass);
      const src = ffmpegSource({ input: cam.url }, { username: user, password: pass });
      assert.strictEqual(src.settings.input, cam.url, 'the URL in the settings stays without credentials');
      const info = inspectImage(await src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.deepStrictEqual([info.width, info.height], [64, 48]);
      assert.ok(cam.seen.includes(`Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`));
      assert.ok(!src.describeInput().includes(pass));
    });

    it('says AUTH for a wrong password, without the password in the message', async () => {
      const cam = await authMjpegServer('admin', 'right-one');
      const src = ffmpegSource({ input: cam.url }, { username: 'admin', password: 'wrong-secret' });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.ok(err instanceof CaptureError, String(err));
      assert.strictEqual(err.code, 'AUTH', err.message);
      assert.ok(!err.message.includes('wrong-secret'), err.message);
    });

    it('says AUTH, asking for credentials, when the camera wants them and has none', async () => {
      const cam = await authMjpegServer('admin', 'right-one');
      const err = await rejection(ffmpegSource({ input: cam.url }).grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'AUTH', err.message);
      assert.match(err.message, /asks for a user name and password/);
    });

    it('times out on an RTSP server that accepts and never answers, within the deadline, leaving no ffmpeg', async () => {
      const port = await silentServer();
      const src = ffmpegSource({ input: `rtsp://127.0.0.1:${port}/stream1`, timeout: 1.5 }, { username: 'admin', password: 'hunter2-secret' });
      const pending = src.grab(new AbortController().signal, 5 * MB);
      const [pid] = await waitFor(() => src.runningPids.length && src.runningPids, { what: 'ffmpeg to start' });
      assert.ok(alive(pid));
      const err = await rejection(pending);
      assert.strictEqual(err.code, 'TIMEOUT', err.message);
      assert.ok(!err.message.includes('hunter2-secret'), err.message);
      assert.ok(!alive(pid), 'ffmpeg is still running');
      assert.deepStrictEqual(src.runningPids, []);
      assert.deepStrictEqual(processesWith(`127.0.0.1:${port}`), []);
    });

    it('passes the RTSP transport and a socket timeout in microseconds', () => {
      const src = ffmpegSource({ input: 'rtsp://127.0.0.1:8554/cam', rtspTransport: 'udp', timeout: 4 });
      const args = src.ffmpegArgs();
      const at = (flag) => args[args.indexOf(flag) + 1];
      assert.strictEqual(at('-rtsp_transport'), 'udp');
      assert.strictEqual(at('-timeout'), String((4 + 1) * 1e6));
      assert.strictEqual(at('-probesize'), '32');
      assert.ok(!args.includes('-stimeout'));
      assert.deepStrictEqual(args.slice(0, 5), ['-nostdin', '-y', '-hide_banner', '-loglevel', 'error']);
      assert.deepStrictEqual(args.slice(-9), ['-frames:v', '1', '-q:v', '3', '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1']);
    });

    it('says UNREACHABLE when the connection is refused', async () => {
      const port = await freePort();
      const src = ffmpegSource({ input: `rtsp://127.0.0.1:${port}/stream1` }, { username: 'admin', password: 'hunter2-secret' });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'UNREACHABLE', err.message);
      assert.match(err.message, /refused/);
      assert.ok(!err.message.includes('hunter2-secret'), err.message);
    });

    it("reports ffmpeg's last line for other failures, with the password masked", async () => {
      // A server that answers RTSP with nonsense: ffmpeg prints the URL (credentials and all) with its complaint.
      const port = await tcpServer((c) => c.end('HELLO? this is not RTSP\r\n\r\n'));
      const src = ffmpegSource({ input: `rtsp://127.0.0.1:${port}/s` }, { username: 'admin', password: 'hunter2-secret' });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'FFMPEG_ERROR', err.message);
      assert.match(err.message, /exit code 1/);
      assert.ok(!err.message.includes('hunter2-secret'), err.message);
      assert.match(err.message, /: rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/s: Invalid data found/);
    });

    it('says FFMPEG_MISSING when ffmpeg is not at the path given', async () => {
      const missing = path.join(dir, 'no-such-ffmpeg');
      const src = ffmpegSource({ input: 'lavfi:testsrc', ffmpegPath: missing });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'FFMPEG_MISSING');
      assert.strictEqual(err.message, `ffmpeg was not found at "${missing}": install it (sudo apt install ffmpeg) or set its path`);
    });

    it('says NO_DEVICE for a video device that is not there', async () => {
      const err = await rejection(ffmpegSource({ input: '/dev/video-uplink-none' }).grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'NO_DEVICE', err.message);
    });

    it('stops ffmpeg and says TOO_LARGE when the image is bigger than allowed', async () => {
      const src = ffmpegSource({ input: 'lavfi:testsrc=size=640x480:rate=5', quality: 2 });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 1000));
      assert.strictEqual(err.code, 'TOO_LARGE', err.message);
      assert.deepStrictEqual(src.runningPids, []);
    });

    it('kills ffmpeg when the signal aborts', async () => {
      const port = await silentServer();
      const src = ffmpegSource({ input: `rtsp://127.0.0.1:${port}/s`, timeout: 30 });
      const ac = new AbortController();
      const pending = src.grab(ac.signal, 5 * MB);
      const [pid] = await waitFor(() => src.runningPids.length && src.runningPids, { what: 'ffmpeg to start' });
      ac.abort();
      const err = await rejection(pending);
      assert.strictEqual(err.code, 'ABORTED', err.message);
      assert.ok(!alive(pid));
      assert.deepStrictEqual(processesWith(`127.0.0.1:${port}`), []);
    });

    it('says TIMEOUT when the caller aborts with AbortSignal.timeout', async () => {
      const port = await silentServer();
      const src = ffmpegSource({ input: `rtsp://127.0.0.1:${port}/s`, timeout: 30 });
      const err = await rejection(src.grab(AbortSignal.timeout(500), 5 * MB));
      assert.strictEqual(err.code, 'TIMEOUT', err.message);
      assert.deepStrictEqual(processesWith(`127.0.0.1:${port}`), []);
    });

    it('close() kills running ffmpeg processes, and later grabs fail at once', async () => {
      const port = await silentServer();
      const src = ffmpegSource({ input: `rtsp://127.0.0.1:${port}/s`, timeout: 30 });
      const pending = Promise.all([src.grab(new AbortController().signal, 5 * MB), src.grab(new AbortController().signal, 5 * MB)].map(rejection));
      const pids = await waitFor(() => src.runningPids.length === 2 && src.runningPids, { what: 'two ffmpeg processes' });
      await src.close();
      for (const pid of pids) assert.ok(!alive(pid), `ffmpeg ${pid} survived close()`);
      const errs = await pending;
      assert.deepStrictEqual(errs.map((e) => e.code), ['ABORTED', 'ABORTED']);
      const late = await rejection(src.grab(new AbortController().signal, 5 * MB));
      assert.strictEqual(late.code, 'CLOSED');
      assert.deepStrictEqual(processesWith(`127.0.0.1:${port}`), []);
    });

    describe('settings', () => {
      it('takes a user name and password out of the URL into its login', () => {
        const s = parseFfmpegSettings({ input: 'rtsp://admin:secret@192.168.1.20:554/h264' }, {});
        assert.deepStrictEqual([s.input, s.username, s.password], ['rtsp://192.168.1.20:554/h264', 'admin', 'secret']);
      });

      it('lists every problem in one error', () => {
        assert.throws(
          () => parseFfmpegSettings({ input: 'ftp://cam/x', kind: 'rtsp', rtspTransport: 'sctp', quality: 40, timeout: 0 }, { password: 'p' }),
          (/** @type {Error} */ e) => ['RTSP transport', 'Timeout', 'JPEG quality', 'starting with rtsp://', 'needs a user name'].every((w) => e.message.includes(w)),
        );
        assert.throws(() => parseFfmpegSettings({ input: '' }, {}), /^Error: not configured: set the camera input$/);
        assert.throws(() => parseFfmpegSettings({ input: '', rtspTransport: 'sctp' }, {}), /RTSP transport.*; Input is required/);
        assert.throws(() => parseFfmpegSettings({ input: 'video0', kind: 'v4l2' }, {}), /device path/);
        assert.throws(() => parseFfmpegSettings({ input: '192.168.1.20:554/h264', kind: 'rtsp' }, {}), /starting with rtsp:\/\//);
      });

      it('guesses the kind from the input and fills in defaults', () => {
        const s = parseFfmpegSettings({ input: 'rtsp://192.168.1.20:554/h264' }, { username: 'admin', password: ' pw ' });
        assert.deepStrictEqual(s, {
          input: 'rtsp://192.168.1.20:554/h264',
          kind: 'rtsp',
          rtspTransport: 'tcp',
          username: 'admin',
          password: ' pw ',
          ffmpegPath: 'ffmpeg',
          timeoutMs: 10000,
          quality: 3,
        });
        assert.strictEqual(parseFfmpegSettings({ input: '/dev/video0' }, {}).kind, 'v4l2');
        // The editor always sends a Kind; the input's own form wins over one left at its default.
        assert.strictEqual(parseFfmpegSettings({ input: '/dev/video0', kind: 'rtsp' }, {}).kind, 'v4l2');
        assert.strictEqual(parseFfmpegSettings({ input: 'lavfi:testsrc', kind: 'rtsp' }, {}).kind, 'lavfi');
        assert.strictEqual(parseFfmpegSettings({ input: 'https://cam/video.mjpg' }, {}).kind, 'mjpeg');
        const v = parseFfmpegSettings({ input: '/dev/video0' }, { username: 'u', password: 'p' });
        assert.strictEqual(v.password, undefined, 'a device has no use for a password');
      });

      it('masks passwords in URLs inside any text', () => {
        assert.strictEqual(maskUrlLogin('rtsp://admin:s3cr%40t@10.0.0.2:554/x: Connection refused'), 'rtsp://admin:***@10.0.0.2:554/x: Connection refused');
      });
    });
  });

  describe('command', () => {
    const node = process.execPath;
    /** A command line running a node script (the script must not contain a single quote). */
    const nodeCmd = (script, ...args) => [node, '-e', `'${script}'`, ...args].join(' ');
    const PRINT_ARGV = 'process.stdout.write(JSON.stringify(process.argv.slice(1)))';

    it('takes the image from the command’s stdout', async () => {
      const src = commandSource({ command: nodeCmd('process.stdout.write(require("fs").readFileSync(process.argv[1]))', fixture) });
      const buf = await src.grab(AbortSignal.timeout(15000), 5 * MB);
      assert.ok(buf.equals(fs.readFileSync(fixture)));
      assert.deepStrictEqual([inspectImage(buf).width, inspectImage(buf).height], [64, 48]);
    });

    it('reads the file the command writes, then deletes it', async () => {
      const out = path.join(dir, 'shot.jpg');
      const src = commandSource({ command: nodeCmd('require("fs").copyFileSync(process.argv[1], process.argv[2])', fixture, out), output: 'file', file: out });
      const buf = await src.grab(AbortSignal.timeout(15000), 5 * MB);
      assert.ok(buf.equals(fs.readFileSync(fixture)));
      assert.ok(!fs.existsSync(out), 'the file was left behind');
    });

    it('says NO_OUTPUT when the command writes no file, even if an old one was there', async () => {
      const out = path.join(dir, 'stale.jpg');
      fs.copyFileSync(fixture, out);
      const src = commandSource({ command: nodeCmd('0'), output: 'file', file: out });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'NO_OUTPUT', err.message);
    });

    it('says COMMAND_FAILED with the last stderr line when the command exits non-zero', async () => {
      const src = commandSource({ command: nodeCmd('console.error("starting"); console.error("ERROR: no cameras available"); process.exit(3)') });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'COMMAND_FAILED');
      assert.match(err.message, /exited with code 3: ERROR: no cameras available$/);
    });

    it('stops a command that hangs at the deadline, with SIGKILL if it ignores SIGTERM', async () => {
      const src = commandSource({ command: nodeCmd('process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'), timeout: 1 });
      const pending = src.grab(new AbortController().signal, 5 * MB);
      const [pid] = await waitFor(() => src.runningPids.length && src.runningPids, { what: 'the command to start' });
      const err = await rejection(pending);
      assert.strictEqual(err.code, 'TIMEOUT', err.message);
      // It ignores SIGTERM: only the SIGKILL that follows can have ended it.
      assert.ok(!alive(pid));
    });

    it('stops what the command started too (its whole process group)', async () => {
      const pidFile = path.join(dir, 'grandchild.pid');
      const script =
        'const c = require("child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });' +
        'require("fs").writeFileSync(process.argv[1], String(c.pid)); setInterval(() => {}, 1000)';
      const src = commandSource({ command: nodeCmd(script, pidFile), timeout: 1 });
      const err = await rejection(src.grab(new AbortController().signal, 5 * MB));
      assert.strictEqual(err.code, 'TIMEOUT', err.message);
      const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
      await waitFor(() => !alive(grandchild), { timeout: 3000, what: 'the grandchild to be gone' });
    });

    it('says COMMAND_MISSING for a program that does not exist', async () => {
      const err = await rejection(commandSource({ command: 'uplink-no-such-camera-tool -o -' }).grab(AbortSignal.timeout(15000), 5 * MB));
      assert.strictEqual(err.code, 'COMMAND_MISSING');
      assert.match(err.message, /"uplink-no-such-camera-tool" was not found/);
    });

    it('passes a quoted argument with spaces as one argv entry', async () => {
      const src = commandSource({ command: `${nodeCmd(PRINT_ARGV)} annotate "front door  cam" 'it''s' plain\\ word ""` });
      const argv = JSON.parse((await src.grab(AbortSignal.timeout(15000), 5 * MB)).toString());
      assert.deepStrictEqual(argv, ['annotate', 'front door  cam', 'its', 'plain word', '']);
    });

    it('runs no shell: separators, substitutions and variables arrive as literal arguments', async () => {
      const marker = path.join(dir, 'pwned');
      const src = commandSource({ command: `${nodeCmd(PRINT_ARGV)} x;touch\\ ${marker} ";rm -rf ${marker}" '$(touch ${marker})' "\`touch ${marker}\`" $HOME` });
      const argv = JSON.parse((await src.grab(AbortSignal.timeout(15000), 5 * MB)).toString());
      assert.deepStrictEqual(argv, [`x;touch ${marker}`, `;rm -rf ${marker}`, `$(touch ${marker})`, `\`touch ${marker}\``, '$HOME']);
      assert.ok(!fs.existsSync(marker));
    });

    it('says TOO_LARGE for more output than allowed, and stops the command', async () => {
      const src = commandSource({ command: nodeCmd('const b = Buffer.alloc(65536); setInterval(() => process.stdout.write(b), 1)') });
      const err = await rejection(src.grab(AbortSignal.timeout(15000), 100000));
      assert.strictEqual(err.code, 'TOO_LARGE', err.message);
      assert.deepStrictEqual(src.runningPids, []);
    });

    it('kills the command on abort, and close() kills the rest', async () => {
      const src = commandSource({ command: nodeCmd('setInterval(() => {}, 1000)'), timeout: 60 });
      const ac = new AbortController();
      const first = rejection(src.grab(ac.signal, 5 * MB));
      const second = rejection(src.grab(new AbortController().signal, 5 * MB));
      const pids = await waitFor(() => src.runningPids.length === 2 && src.runningPids, { what: 'two commands' });
      ac.abort();
      assert.strictEqual((await first).code, 'ABORTED');
      await src.close();
      assert.strictEqual((await second).code, 'ABORTED');
      for (const pid of pids) assert.ok(!alive(pid));
      assert.strictEqual((await rejection(src.grab(new AbortController().signal, 5 * MB))).code, 'CLOSED');
    });

    describe('settings', () => {
      it('refuses shell operators, unclosed quotes and a relative output file, all in one error', () => {
        assert.throws(
          () => parseCommandSettings({ command: 'rpicam-still -o - | convert - out.jpg', output: 'file', file: 'out.jpg' }),
          (/** @type {Error} */ e) => /without a shell/.test(e.message) && /absolute path/.test(e.message),
        );
        assert.throws(() => parseCommandSettings({ command: 'rpicam-still --annotate "oops' }), /unclosed "/);
        assert.throws(() => parseCommandSettings({ command: '  ' }), /^Error: not configured: set the command$/);
        assert.doesNotThrow(() => parseCommandSettings({ command: 'fswebcam --title "a | b" --no-banner -' }));
      });

      it('splits a command line like a shell splits words, and no further', () => {
        assert.deepStrictEqual(splitCommandLine(`rpicam-still -n -o - --annotate "%Y-%m-%d \\"cam\\"" '$x'`).argv, [
          'rpicam-still',
          '-n',
          '-o',
          '-',
          '--annotate',
          '%Y-%m-%d "cam"',
          '$x',
        ]);
      });
    });
  });
});
