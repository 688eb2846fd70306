'use strict';
// The time-code decoder's source (test/support/timecode.js) run inside a real browser, as live-view tests will use it:
// Debian's Chromium driven by playwright-core plays an H.264 clip recorded from the camera stand-in (timecode: true),
// draws a frame into a canvas, and decodes the time from getImageData. Without /usr/bin/chromium (`apt-get install
// chromium`; .ci/run does it), playwright-core, ffmpeg or GStreamer's RTSP server, the test says why and skips.
const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { tmpDir, rmrf } = require('./support/tmp');
const { listenLocal } = require('./support/net');
const { available, unavailableReason, startRtspServer } = require('./support/rtsp-server');
const { timecodeDecoderSource } = require('./support/timecode');

const { chromiumMissing, launchChromium } = require('./support/chromium');

function missing() {
  const browser = chromiumMissing();
  if (browser) return browser;
  if (childProcess.spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status !== 0) return 'ffmpeg is not installed';
  if (!available()) return unavailableReason();
  return null;
}

describe('time code in frames: decoded in a browser', function () {
  this.timeout(120000);
  let dir;
  let camera;
  let server;
  let browser;

  before(function () {
    const why = missing();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await new Promise((resolve) => server.close(() => resolve(undefined)));
    if (camera) await camera.close();
    if (dir) rmrf(dir);
  });

  it('reads the time of a frame drawn from an H.264 <video> into a canvas, with the exported decoder source', async () => {
    dir = tmpDir();
    camera = await startRtspServer({ timecode: true });
    const clip = path.join(dir, 'clip.mp4');
    const recorded = Date.now();
    const r = childProcess.spawnSync('ffmpeg', ['-nostdin', '-y', '-v', 'error', '-rtsp_transport', 'tcp', '-timeout', '5000000', '-probesize', '32', '-i', camera.url, '-c', 'copy', '-t', '2', '-movflags', '+faststart', clip], { encoding: 'utf8', timeout: 30000 });
    assert.strictEqual(r.status, 0, r.stderr);
    const recordedEnd = Date.now();

    server = http.createServer((req, res) => {
      if (req.url === '/clip.mp4') {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        fs.createReadStream(clip).pipe(res);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><video id="v" src="/clip.mp4" muted playsinline></video><canvas id="c" width="640" height="360"></canvas>');
      }
    });
    const port = await listenLocal(server);

    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    const [width, height, ms] = await page.evaluate(`(async () => {
      const v = document.getElementById('v');
      if (v.readyState < 2) {
        await new Promise((resolve, reject) => {
          v.onloadeddata = resolve;
          v.onerror = () => reject(new Error('the video did not load: ' + (v.error && v.error.message)));
          setTimeout(() => reject(new Error('the video did not load within 10 s')), 10000);
        });
      }
      const ctx = document.getElementById('c').getContext('2d');
      ctx.drawImage(v, 0, 0, 640, 360);
      return [v.videoWidth, v.videoHeight, (${timecodeDecoderSource})(ctx.getImageData(0, 0, 640, 360).data, 640, 360)];
    })()`);
    assert.deepStrictEqual([width, height], [640, 360]);
    assert.notStrictEqual(ms, null, 'no time code read in the browser');
    assert.ok(ms >= recorded - 5000 && ms <= recordedEnd, `decoded ${ms}, clip recorded from ${recorded} to ${recordedEnd}`);
  });
});
