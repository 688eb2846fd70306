'use strict';
// The shipped capture-to-cloud flow in a real `node-red` whose clock lies as a Raspberry Pi's does after boot without
// a battery: it reads 1970 (libfaketime, Debian's `faketime` package, shifts the wall clock of the node-red process
// only; the monotonic clock is left alone, as NTP leaves it). Captures taken then are uploaded under their true time:
// - once the clock is set (the faked clock jumps to the real time while the store is down, as NTP would), from the
//   offset between the monotonic and the wall clock;
// - while the clock stays wrong, from the time the store's HTTP answers carry (Date).
// No key in the bucket ever carries 1970.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { until } = require('./support/http-client');

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

/** libfaketime's preload library, as Debian installs it (any architecture), or undefined. */
function libfaketime() {
  for (const dir of ['/usr/lib', ...fs.readdirSync('/usr/lib').filter((d) => d.endsWith('-linux-gnu')).map((d) => path.join('/usr/lib', d))]) {
    const f = path.join(dir, 'faketime', 'libfaketimeMT.so.1');
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** The time a key of the default template carries: camera1/2026-03-04_05-06-07.250_640_360.png. */
function keyTime(key) {
  const m = /(\d{4}-\d\d-\d\d)_(\d\d)-(\d\d)-(\d\d)(\.\d+)?_/.exec(key);
  return m ? Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}${m[5] || ''}Z`) : NaN;
}

describe('a real Node-RED whose clock reads 1970 after boot', function () {
  this.timeout(120000);
  let lib;
  let dir;
  let s3;
  const reds = [];

  before(function () {
    lib = libfaketime();
    if (!lib) {
      console.log('      skipped: libfaketime is not installed (apt-get install faketime)');
      this.skip();
    }
  });

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-clock-'));
    s3 = await new S3Server({ buckets: ['clock'] }).start();
  });

  afterEach(async function () {
    for (const r of reds.splice(0)) await r.stop().catch(() => undefined);
    await s3?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the shipped flow with its clock read from `rc` (libfaketime's timestamp file, read again at every call). */
  async function start(rc) {
    const flows = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'examples', 'capture-to-cloud.json'), 'utf8'));
    const userDir = path.join(dir, 'red');
    fs.mkdirSync(userDir);
    const red = await startNodeRed({
      userDir,
      flows,
      env: {
        LD_PRELOAD: lib,
        FAKETIME_TIMESTAMP_FILE: rc,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
        UPLINK_CAPTURE_INTERVAL_S: '1',
        UPLINK_S3_ENDPOINT: s3.endpoint,
        UPLINK_S3_BUCKET: 'clock',
        UPLINK_S3_REGION: 'us-east-1',
        UPLINK_S3_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      },
      startTimeoutMs: 40_000,
    });
    reds.push(red);
    return { red, userDir };
  }

  const stats = async (red) => {
    const res = await fetch(`${red.url}/uplink/queue/c2c-queue/stats`, { signal: AbortSignal.timeout(5000) });
    return res.status === 200 ? { ok: true, value: await res.json() } : { ok: false, value: res.status };
  };

  /** Every image on disk, by checksum, with its file name (which carries the clock it was taken with). */
  function capturesOnDisk(userDir) {
    const images = path.join(userDir, 'uplink', 'images');
    return walk(images).map((f) => ({ file: path.relative(images, f), sha: sha(fs.readFileSync(f)) }));
  }

  async function bucketBySha() {
    const out = new Map();
    for (const o of await s3.list('clock')) out.set(sha((await s3.get(o.key, 'clock')).body), o.key);
    return out;
  }

  it('captures queued while the clock read 1970 get their true time in the key once the clock is set', async function () {
    const rc = path.join(dir, 'faketime.rc');
    fs.writeFileSync(rc, '@1970-01-01 00:00:00\n');
    const port = s3.port;
    await s3.stop(); // the link is down at boot: nothing goes out, and NTP cannot be reached either
    const before = Date.now();
    const { red, userDir } = await start(rc);
    await until('captures taken at 1970, queued', async () => {
      const s = await stats(red);
      return { ok: s.ok && s.value.pending >= 3, value: s.value };
    }, 40000);
    // NTP sets the clock, then the link returns.
    fs.writeFileSync(rc, '+0\n');
    const setAt = Date.now();
    const early = capturesOnDisk(userDir).filter((c) => c.file.includes('1970-01-01'));
    assert.ok(early.length >= 3, `captures named by the 1970 clock (${early.length})`);
    await s3.start(port);
    const uploaded = await until('the 1970 captures in the bucket', async () => {
      const bySha = await bucketBySha();
      return { ok: early.every((c) => bySha.has(c.sha)), value: bySha };
    }, 60000);
    for (const c of early) {
      const key = uploaded.get(c.sha);
      assert.ok(!key.includes('1970'), `${c.file} went up as ${key}`);
      const t = keyTime(key);
      // Taken by the real clock between the start of node-red and the moment the clock was set.
      assert.ok(t >= before - 1000 && t <= setAt + 1000, `${key}: ${new Date(t).toISOString()} within ${new Date(before).toISOString()}..${new Date(setAt).toISOString()}`);
    }
    for (const key of uploaded.values()) assert.ok(!key.includes('1970'), key);
    const meta = (await s3.get(uploaded.get(early[0].sha), 'clock')).metadata;
    assert.ok(!String(meta['captured-at']).startsWith('1970'), `object metadata captured-at ${meta['captured-at']}`);
  });

  it('while the clock stays at 1970, the store\'s Date answer gives the captures their time', async function () {
    const rc = path.join(dir, 'faketime.rc');
    fs.writeFileSync(rc, '@1970-01-01 00:00:00\n');
    const before = Date.now();
    const { red, userDir } = await start(rc);
    const uploaded = await until('three captures in the bucket', async () => {
      const bySha = await bucketBySha();
      return { ok: bySha.size >= 3, value: bySha };
    }, 60000);
    const after = Date.now();
    const onDisk = capturesOnDisk(userDir);
    const first = onDisk.filter((c) => uploaded.has(c.sha));
    assert.ok(first.length >= 3);
    // The first capture was taken (and named on disk) by the 1970 clock; once the store's Date was seen, later
    // captures take their time from it, and are named right from the start.
    assert.ok(first.some((c) => c.file.includes('1970-01-01')), `a capture named by the 1970 clock: ${first.map((c) => c.file).join(', ')}`);
    for (const c of first) {
      const key = uploaded.get(c.sha);
      assert.ok(!key.includes('1970'), `${c.file} went up as ${key}`);
      const t = keyTime(key);
      // The Date header has a resolution of one second.
      assert.ok(t >= before - 2000 && t <= after + 2000, `${key}: ${new Date(t).toISOString()}`);
    }
    const s = await stats(red);
    assert.strictEqual(s.value.failed, 0);
  });
});
