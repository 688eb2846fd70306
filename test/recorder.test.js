'use strict';
const assert = require('assert');
const { execFileSync, spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const v8 = require('v8');
const { parseRecorderConfig } = require('../dist/lib/recorder/config');
const { recordingArgs, FRAGMENTED_MP4 } = require('../dist/lib/recorder/args');
const { planBudget } = require('../dist/lib/recorder/budget');
const { BudgetGuard } = require('../dist/lib/recorder/budget-guard');
const { ReconnectBackoff } = require('../dist/lib/util/backoff');
const { describeEnd } = require('../dist/lib/media/ffmpeg-reason');
const { renderFileName, validateFileTemplate } = require('../dist/lib/recorder/file-name');
const { Journal } = require('../dist/lib/recorder/journal');
const { parseListLine, parseList, ListTail } = require('../dist/lib/recorder/segment-list');
const { Recorder } = require('../dist/lib/recorder/supervisor');
const { classifyRecorderInput } = require('../dist/lib/recorder/input');
const { STATE_DIR, SegmentStore } = require('../dist/lib/recorder/store');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const { alive } = require('./support/procs');

const FAST_RECONNECT = { reconnect: { baseMs: 200, capMs: 1000, stableMs: 60000 }, pausePollMs: 200, killGraceMs: 3000 };

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function probeDuration(file) {
  return Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]).toString().trim());
}

/** What a recorder tells the outside world, kept for the test to read. */
function recorderEvents() {
  const got = { segments: [], statuses: [], events: [], warnings: [], logs: [] };
  got.handlers = {
    segment: (m) => got.segments.push(m),
    status: (s) => got.statuses.push(s),
    event: (e) => got.events.push(e),
    warn: (t) => got.warnings.push(t),
    log: (t) => got.logs.push(t),
  };
  return got;
}

function lavfiConfig(dir, extra = {}) {
  return parseRecorderConfig(
    { input: 'lavfi:testsrc=size=160x120:rate=10', camera: 'gate', segmentSeconds: 1, folder: path.join(dir, 'rec'), keepFreeMB: 0, ...extra },
    {},
    dir,
  );
}

function journalRecords(folder) {
  return fs
    .readFileSync(path.join(folder, STATE_DIR, 'journal'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

/** The mp4 files ffmpeg is writing (or left) in the state folder. */
function workingFiles(folder) {
  const dir = path.join(folder, STATE_DIR);
  return fs.readdirSync(dir).filter((n) => /^r.*-\d{6}\.mp4$/.test(n)).map((n) => path.join(dir, n));
}

/**
 * What a crash leaves behind: ffmpeg SIGKILLed, nothing flushed or journalled after. close() in the same tick marks
 * the recorder closed before it can see ffmpeg's exit, so it settles nothing; it waits for the exit and lets go of the
 * folder, as the end of the crashed process would.
 */
async function crash(rec) {
  process.kill(-rec.pid, 'SIGKILL');
  await rec.close();
}

function readable(file) {
  try {
    return probeDuration(file) > 0;
  } catch {
    return false;
  }
}

describe('recorder: pieces', function () {
  it('parses segment list lines as ffmpeg writes them, and nothing else', function () {
    assert.deepStrictEqual(parseListLine('r1-000000.mp4,0.000000,1.200000'), { file: 'r1-000000.mp4', start: 0, end: 1.2 });
    assert.deepStrictEqual(parseListLine('"a,""b"".mp4",1.5,2.5'), { file: 'a,"b".mp4', start: 1.5, end: 2.5 });
    for (const bad of ['', 'x.mp4', 'x.mp4,1', 'x.mp4,1,', 'x.mp4,2,1', ',1,2', 'x.mp4,a,b', '"x.mp4,1,2']) {
      assert.strictEqual(parseListLine(bad), undefined, bad);
    }
    assert.deepStrictEqual(parseList('a.mp4,0,1\nb.mp4,1,2\nc.mp4,2,'), [
      { file: 'a.mp4', start: 0, end: 1 },
      { file: 'b.mp4', start: 1, end: 2 },
    ]);
  });

  it('follows a growing list and never takes a line before its newline is written', async function () {
    const dir = tmpDir();
    try {
      const file = path.join(dir, 'run.csv');
      const tail = new ListTail(file);
      assert.deepStrictEqual(await tail.read(), [], 'no list yet');
      fs.writeFileSync(file, 'a.mp4,0.0,1.0\nb.mp4,1.0,2');
      assert.deepStrictEqual((await tail.read()).map((e) => e.file), ['a.mp4']);
      fs.appendFileSync(file, '.0\n');
      assert.deepStrictEqual(await tail.read(), [{ file: 'b.mp4', start: 1, end: 2 }]);
      assert.deepStrictEqual(await tail.read(), []);
      // More than one read's worth at once.
      const many = Array.from({ length: 300 }, (_, i) => `r-${String(i).padStart(6, '0')}.mp4,${i}.0,${i + 1}.0\n`);
      fs.appendFileSync(file, many.join(''));
      assert.deepStrictEqual((await tail.read()).map((e) => e.end), many.map((_, i) => i + 1));
      await tail.close();
      fs.appendFileSync(file, 'c.mp4,2.0,3.0\n');
      assert.deepStrictEqual(await tail.read(), [], 'nothing after close');
    } finally {
      rmrf(dir);
    }
  });

  it('keeps a journal that survives a torn last line, and compacts it in place', async function () {
    const dir = tmpDir();
    try {
      const file = path.join(dir, 'journal');
      let { journal, records } = await Journal.open(file);
      assert.deepStrictEqual(records, []);
      await journal.append({ t: 'sent', id: 'a' }, { t: 'sent', id: 'b' });
      await journal.close();
      fs.appendFileSync(file, '{"t":"sent","id":"c"'); // a crash in the middle of a write
      ({ journal, records } = await Journal.open(file));
      assert.deepStrictEqual(records.map((r) => /** @type {{ id: string }} */ (r).id), ['a', 'b']);
      await journal.append({ t: 'uploaded', id: 'a' });
      assert.deepStrictEqual(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).t), ['sent', 'sent', 'uploaded'], 'the torn line is gone, not glued to the next one');
      await journal.rewrite([{ t: 'meta', lastN: 7 }]);
      await journal.append({ t: 'sent', id: 'd' });
      await journal.close();
      ({ journal, records } = await Journal.open(file));
      assert.deepStrictEqual(records, [{ t: 'meta', lastN: 7 }, { t: 'sent', id: 'd' }]);
      await journal.close();
    } finally {
      rmrf(dir);
    }
  });

  it('frees space from uploaded recordings first, then pauses or drops the oldest unsent by policy', function () {
    const items = [
      { id: 'u1', bytes: 100, uploaded: true },
      { id: 's1', bytes: 100, uploaded: false },
      { id: 'u2', bytes: 100, uploaded: true },
      { id: 's2', bytes: 100, uploaded: false },
    ];
    /** @type {import('../dist/lib/recorder/budget').BudgetInput} */
    const base = { items, otherBytes: 0, limitBytes: 1000, freeBytes: 1e9, keepFreeBytes: 0, headroomBytes: 0, policy: 'keep-unsent' };
    assert.deepStrictEqual(planBudget(base), { deleteUploaded: [], dropUnsent: [], pause: false, overBytes: 0, unsent: 2 });
    const tight = planBudget({ ...base, limitBytes: 350 });
    assert.deepStrictEqual([tight.deleteUploaded, tight.dropUnsent, tight.pause], [['u1'], [], false]);
    const full = planBudget({ ...base, limitBytes: 150 });
    assert.deepStrictEqual([full.deleteUploaded, full.dropUnsent, full.pause, full.unsent], [['u1', 'u2'], [], true, 2]);
    const drop = planBudget({ ...base, limitBytes: 150, policy: 'drop-oldest-unsent' });
    assert.deepStrictEqual([drop.deleteUploaded, drop.dropUnsent, drop.pause, drop.unsent], [['u1', 'u2'], ['s1'], false, 1]);
    const disk = planBudget({ ...base, limitBytes: Infinity, freeBytes: 1000, keepFreeBytes: 1050, headroomBytes: 100 });
    assert.deepStrictEqual([disk.deleteUploaded, disk.pause], [['u1', 'u2'], false], 'keeps the disk\'s free space and room for the next segment');
  });

  it("counts the state folder's files anew when asked, when its count is old, and before it pauses or deletes", async function () {
    const dir = tmpDir();
    try {
      const folder = path.join(dir, 'rec');
      const store = await SegmentStore.open({ folder, camera: 'cam', nameTemplate: '{camera}_%Y%m%d_%H%M%S.mp4', ffprobePath: 'ffprobe', requestedS: 10, warn: () => undefined });
      const report = { log: () => undefined, warn: () => undefined, event: () => undefined };
      const guard = new BudgetGuard(folder, { bytes: 1_000_000, keepFreeBytes: 0, policy: 'keep-unsent' }, store, report, 300);
      const pause = async (recount) => (await guard.check(recount)).pause;
      try {
        assert.strictEqual(await pause(true), false);
        // A file ffmpeg left (a segment that could not be handed on) that alone exceeds the budget.
        const left = store.workingFile(store.newRun().run, 0);
        fs.writeFileSync(left, Buffer.alloc(1_200_000));
        assert.strictEqual(await pause(false), false, 'the check after a segment takes the count made within 300 ms');
        await new Promise((r) => setTimeout(r, 350));
        assert.strictEqual(await pause(false), true, 'an older count is made anew');
        // The count now says the budget is exceeded: a check counts anew before it pauses (or deletes) for that.
        fs.rmSync(left);
        assert.deepStrictEqual(await guard.check(false), { pause: false, resumed: true });
        fs.writeFileSync(left, Buffer.alloc(1_200_000));
        assert.strictEqual(await pause(true), true, 'a check asked to count anew does');
      } finally {
        await store.close();
      }
    } finally {
      rmrf(dir);
    }
  });

  it('waits 1 s, 2 s, 4 s… up to 30 s between reconnects, and from 1 s again after a stable minute', function () {
    const b = new ReconnectBackoff();
    assert.deepStrictEqual([1, 2, 3, 4, 5, 6, 7].map(() => b.next(100)), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    assert.strictEqual(b.next(61000), 1000);
    assert.strictEqual(b.next(10), 2000);
  });

  it('says why ffmpeg stopped, without the password', function () {
    const end = (stderr, code = 1) => describeEnd({ code, signal: null, stderr }, { mask: (s) => s.split('hunter2').join('***') });
    assert.strictEqual(end('[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized\nrtsp://u:hunter2@h/x: Server returned 401 Unauthorized (authorization failed)').text, '401 Unauthorized');
    assert.strictEqual(end('rtsp://127.0.0.1:1/x: Connection refused').code, 'REFUSED');
    assert.strictEqual(end('[tcp @ 0x1] Connection to tcp://h:554 failed: Connection timed out').code, 'TIMEOUT');
    assert.strictEqual(end('[rtsp @ 0x1] method DESCRIBE failed: 404 Not Found').code, 'NOT_FOUND');
    assert.strictEqual(end('rtsp://h/x: Invalid data found when processing input').code, 'BAD_STREAM');
    assert.strictEqual(end('', 0).text, 'the stream ended');
    assert.strictEqual(describeEnd({ code: null, signal: 'SIGKILL', stderr: '' }).code, 'KILLED');
    const missing = describeEnd({ code: null, signal: null, stderr: '', spawnError: Object.assign(new Error('spawn x ENOENT'), { code: 'ENOENT' }) });
    assert.deepStrictEqual([missing.code, missing.fatal], ['FFMPEG_MISSING', true]);
    const other = end('rtsp://u:hunter2@h/x: something odd');
    assert.match(other.text, /^ffmpeg exited with code 1: /);
    assert.ok(!other.text.includes('hunter2'), other.text);
    assert.strictEqual(describeEnd({ code: 1, signal: null, stderr: 'Cannot open video device /dev/video9: No such file or directory' }, { kind: 'v4l2', input: '/dev/video9' }).code, 'NO_DEVICE');
    // ffmpeg started through setpriv (lib/util/child-guard.ts): setpriv itself says that ffmpeg is missing.
    const wrapped = describeEnd({ code: 127, signal: null, stderr: 'setpriv: failed to execute /opt/ff/ffmpeg: No such file or directory' }, { kind: 'v4l2', input: '/dev/video0' });
    assert.deepStrictEqual([wrapped.code, wrapped.fatal], ['FFMPEG_MISSING', true]);
    assert.match(wrapped.text, /^ffmpeg not found at "\/opt\/ff\/ffmpeg": install it/);
    const notRunnable = describeEnd({ code: 126, signal: null, stderr: 'setpriv: failed to execute /opt/ff/ffmpeg: Permission denied' });
    assert.match(notRunnable.text, /cannot be run \(permission denied\)/);
  });

  it('reads what a message asks: a command, or an uploader result for one of its files', function () {
    assert.deepStrictEqual(classifyRecorderInput({ topic: 'Stop' }), { type: 'command', command: 'stop' });
    assert.deepStrictEqual(classifyRecorderInput({ payload: ' start ' }), { type: 'command', command: 'start' });
    const file = '/rec/gate_1.mp4';
    assert.deepStrictEqual(classifyRecorderInput({ topic: 'gate', payload: file, uplink: { file, ack: true, upload: { backend: 's3' } } }), { type: 'uploaded', file });
    // A failed upload, even one carrying an earlier attempt's upload facts, never marks the segment uploaded.
    assert.deepStrictEqual(classifyRecorderInput({ payload: file, uplink: { file, ack: false, upload: { backend: 's3' }, error: { message: '503' } } }), { type: 'upload-failed' });
    const other = classifyRecorderInput({ payload: 'record', uplink: { file } });
    assert.strictEqual(other.type, 'invalid');
    assert.match(other.error, /"start", "stop" or "status"/);
  });

  it('names segments from a strftime-like template, cleaned, always inside the folder and ending in .mp4', function () {
    const at = new Date(2026, 0, 2, 3, 4, 5);
    assert.strictEqual(renderFileName('{camera}_%Y%m%d_%H%M%S.mp4', { camera: 'gate', at, segment: 7 }), 'gate_20260102_030405.mp4');
    assert.strictEqual(renderFileName('{camera}/%F/%H%M%S-{segment}', { camera: 'gate', at, segment: 7 }), 'gate/2026-01-02/030405-7.mp4');
    for (const camera of ['../../etc', '/etc/passwd', '.uplink-recorder', 'a/../../b', '..']) {
      const name = renderFileName('{camera}/%S.mp4', { camera, at, segment: 1 });
      assert.ok(!name.split('/').some((s) => s.startsWith('.') || s === ''), `${camera} -> ${name}`);
      assert.ok(!path.isAbsolute(name));
    }
    assert.throws(() => validateFileTemplate('{camera}.mp4'), /must contain %S, %s or \{segment\}/);
    assert.throws(() => validateFileTemplate('{cam}_%S.mp4'), /unknown placeholder \{cam\}/);
    assert.throws(() => validateFileTemplate('%Q_%S.mp4'), /unknown time code %Q/);
    validateFileTemplate('{camera}_%Y%m%d_%H%M%S.mp4');
  });

  it('reads its settings once, keeping the login out of the URL and listing every problem', function () {
    const c = parseRecorderConfig(
      { input: 'rtsp://192.168.1.20:554/stream1', camera: 'gate', segmentSeconds: '5', folder: 'rec', budget: 2, budgetUnit: 'GB', metadata: [{ name: 'site', value: 'barn' }] },
      { username: 'admin', password: 'p@ss:w/rd' },
      '/home/pi/.node-red',
    );
    assert.strictEqual(c.folder, '/home/pi/.node-red/rec');
    assert.deepStrictEqual([c.source.kind, c.video, c.audio, c.segmentSeconds, c.budget.bytes, c.budget.policy], ['rtsp', 'copy', 'none', 5, 2 * 1024 ** 3, 'keep-unsent']);
    assert.deepStrictEqual(c.metadata, { site: 'barn' });
    assert.strictEqual(parseRecorderConfig({ input: 'lavfi:testsrc', budget: 10, budgetUnit: '%' }, {}, '/u').budget.percent, 10);
    const fromUrl = parseRecorderConfig({ input: 'rtsp://admin:secret@cam/x' }, {}, '/u').source;
    assert.deepStrictEqual([fromUrl.input, fromUrl.username, fromUrl.password], ['rtsp://cam/x', 'admin', 'secret']);
    assert.throws(
      () => parseRecorderConfig({ input: 'rtsp://admin:secret@cam/x', segmentSeconds: 0, nameTemplate: '{camera}.mp4', budget: 99, budgetUnit: '%' }, {}, '/u'),
      (/** @type {Error} */ e) => /Segment length/.test(e.message) && /File name/.test(e.message) && /at most 95 %/.test(e.message) && !e.message.includes('secret'),
    );
  });

  it("builds ffmpeg's segment muxer command: fragmented MP4 inside the segments, -timeout in µs, no stdin", function () {
    const c = parseRecorderConfig({ input: 'rtsp://cam/x', timeout: 5, segmentSeconds: 2 }, { username: 'a', password: 'b@c' }, '/u');
    const args = recordingArgs({ source: c.source, segmentSeconds: 2, video: c.video, audio: c.audio, listFile: '/r/run.csv', segmentPattern: '/r/run-%06d.mp4' });
    const after = (flag) => args[args.indexOf(flag) + 1];
    assert.deepStrictEqual(args.slice(0, 2), ['-nostdin', '-y']);
    assert.deepStrictEqual([after('-rtsp_transport'), after('-timeout'), after('-i')], ['tcp', '5000000', 'rtsp://a:b%40c@cam/x']);
    assert.deepStrictEqual([after('-c:v'), after('-f'), after('-segment_time'), after('-segment_format_options'), after('-reset_timestamps')], ['copy', 'segment', '2', FRAGMENTED_MP4, '1']);
    assert.match(FRAGMENTED_MP4, /movflags=\+frag_keyframe\+empty_moov\+default_base_moof/);
    assert.deepStrictEqual([after('-segment_list'), after('-segment_list_type'), args[args.length - 1]], ['/r/run.csv', 'csv', '/r/run-%06d.mp4']);
    assert.ok(args.includes('-an'));
  });

  it('holds thousands of segments in one shape, and weighs them oldest first even from a journal out of order', async function () {
    const dir = tmpDir();
    try {
      const folder = path.join(dir, 'rec');
      const run = `r${Date.now().toString(36).padStart(9, '0')}abcd`;
      const closed = (n, extra = {}) => ({
        t: 'closed', id: `${run}-${String(n).padStart(6, '0')}`, run, file: `cam_${n}.mp4`, bytes: 1000 + n, sha256: 'ab'.repeat(32),
        durationS: 10.04, codec: 'h264', width: 640, height: 360, capturedAt: new Date(1.7e12 + n * 10000).toISOString(),
        listStart: n * 10.04, n, requestedS: 10, state: 'sent', ...extra,
      });
      const records = Array.from({ length: 3000 }, (_, i) => closed(i + 1, i % 7 === 0 ? { partial: true } : i % 11 === 0 ? { gapBeforeS: 1.5 } : {}));
      fs.mkdirSync(path.join(folder, STATE_DIR), { recursive: true });
      fs.writeFileSync(path.join(folder, STATE_DIR, 'journal'), records.map((r) => JSON.stringify(r) + '\n').join(''));
      const store = await SegmentStore.open({ folder, camera: 'cam', nameTemplate: '{camera}_%Y%m%d_%H%M%S.mp4', ffprobePath: 'ffprobe', requestedS: 10, warn: () => undefined });
      try {
        // Spread from their records ({ ...record, path }), each segment had a hidden class of its own in V8, and every
        // pass over them (the budget's, after each segment) was many times slower.
        v8.setFlagsFromString('--allow-natives-syntax');
        const sameShape = new Function('a', 'b', 'return %HaveSameMap(a, b)');
        const segments = [...store['segments'].values()];
        assert.strictEqual(segments.length, 3000);
        assert.ok(segments.every((seg) => sameShape(seg, segments[0])), 'every segment in one shape');
        assert.deepStrictEqual(store.budgetItems().items.map((i) => i.bytes).slice(0, 3), [1001, 1002, 1003]);
        assert.deepStrictEqual(store.recentBytes(2), [3999, 4000]);
      } finally {
        await store.close();
      }
      // Records out of order (not what the recorder writes): still weighed oldest first.
      fs.writeFileSync(path.join(folder, STATE_DIR, 'journal'), [closed(5), closed(2), closed(9)].map((r) => JSON.stringify(r) + '\n').join(''));
      const again = await SegmentStore.open({ folder, camera: 'cam', nameTemplate: '{camera}_%Y%m%d_%H%M%S.mp4', ffprobePath: 'ffprobe', requestedS: 10, warn: () => undefined });
      try {
        assert.deepStrictEqual(again.budgetItems().items.map((i) => i.bytes), [1002, 1005, 1009]);
        assert.deepStrictEqual(again.recentBytes(2), [1005, 1009]);
      } finally {
        await again.close();
      }
    } finally {
      rmrf(dir);
    }
  });
});

describe('recorder: recording with ffmpeg', function () {
  this.timeout(60000);
  let dir;
  let open = [];
  beforeEach(() => {
    dir = tmpDir('uplink-rec-');
    open = [];
  });
  afterEach(async function () {
    for (const r of open) await r.close().catch(() => undefined);
    rmrf(dir);
  });

  async function start(config, got, options = FAST_RECONNECT) {
    const rec = await Recorder.open(config, got.handlers, options);
    open.push(rec);
    return rec;
  }

  it('records closed segments, each sent once with its facts, never the one being written', async function () {
    const config = lavfiConfig(dir, { metadata: [{ name: 'site', value: 'barn' }] });
    const got = recorderEvents();
    const rec = await start(config, got);
    await waitFor(() => got.segments.length >= 4, { timeout: 20000, what: 'four segments' });
    const pid = rec.pid;
    assert.ok(pid && alive(pid), 'ffmpeg runs while recording');
    assert.match(got.statuses[got.statuses.length - 1].text, /^recording · \d+ segments · last \d\.\d s$/);
    await rec.close();
    await waitFor(() => !alive(pid), { what: 'ffmpeg to be gone after close' });

    const segs = got.segments;
    assert.strictEqual(new Set(segs.map((m) => m.uplink.file)).size, segs.length, 'each file once');
    segs.forEach((m, i) => {
      const u = m.uplink;
      assert.strictEqual(m.payload, u.file);
      assert.ok(u.file.startsWith(config.folder + path.sep) && !u.file.includes(STATE_DIR), u.file);
      assert.strictEqual(fs.statSync(u.file).size, u.bytes);
      assert.strictEqual(sha256(u.file), u.sha256, 'the file did not change after it was sent');
      assert.deepStrictEqual([u.contentType, u.codec, u.width, u.height, u.camera, u.requestedS], ['video/mp4', 'h264', 160, 120, 'gate', 1]);
      assert.ok(Math.abs(probeDuration(u.file) - u.durationS) < 0.05, `${u.durationS} s`);
      assert.ok(u.durationS > 0.5 && u.durationS < 1.5, `${u.durationS} s for 1 s asked`);
      assert.strictEqual(u.recorder.segment, i + 1);
      assert.strictEqual(u.recorder.gapBeforeS, undefined);
      assert.strictEqual(u.partial, undefined);
      assert.deepStrictEqual([u.metadata, u.site], [{ site: 'barn' }, 'barn']);
      assert.match(path.basename(u.file), /^gate_\d{8}_\d{6}(_\d+)?\.mp4$/);
      assert.strictEqual(u.key, `gate/${u.capturedAt.slice(0, 10)}/${path.basename(u.file)}`);
      if (i > 0) {
        const prev = segs[i - 1].uplink;
        assert.ok(Math.abs(Date.parse(u.capturedAt) - Date.parse(prev.endedAt)) <= 2, 'segments of one run follow each other without a gap');
      }
    });
    const sent = journalRecords(config.folder).filter((r) => r.t === 'sent').map((r) => r.id);
    assert.strictEqual(new Set(sent).size, sent.length);
    assert.ok(sent.length >= segs.length);
  });

  it('finds closed segments by watching: with the backup poll an hour apart, each one still arrives', async function () {
    const config = lavfiConfig(dir);
    const got = recorderEvents();
    await start(config, got, { ...FAST_RECONNECT, listPollMs: 3_600_000 });
    // The first from the state folder's watch, the next ones from the watch on the list file alone.
    await waitFor(() => got.segments.length >= 3, { timeout: 20000, what: 'three segments without the poll' });
    assert.deepStrictEqual(
      got.segments.map((m) => m.uplink.recorder.segment),
      got.segments.map((_m, i) => i + 1),
    );
  });

  it('stops ffmpeg on close mid-segment, and the next start sends the segment it finished', async function () {
    const config = lavfiConfig(dir, { segmentSeconds: 2 });
    const got = recorderEvents();
    const rec = await start(config, got);
    await waitFor(() => got.segments.length >= 1, { timeout: 20000, what: 'a segment' });
    const pid = rec.pid;
    await rec.close();
    assert.ok(!alive(pid), 'ffmpeg is gone when close() resolves');
    assert.strictEqual(workingFiles(config.folder).length, 1, 'the segment ffmpeg finished on SIGTERM waits in the state folder');

    const again = recorderEvents();
    const rec2 = await start({ ...config, autoStart: false }, again);
    assert.strictEqual(again.segments.length, 1, 'sent while opening');
    const left = again.segments[0].uplink;
    assert.deepStrictEqual([left.recorder.recovered, left.partial, left.recorder.run], [true, undefined, got.segments[0].uplink.recorder.run]);
    assert.strictEqual(left.recorder.segment, got.segments[got.segments.length - 1].uplink.recorder.segment + 1);
    assert.ok(left.durationS > 0 && readable(left.file));
    assert.strictEqual(workingFiles(config.folder).length, 0);
    await rec2.close();

    const third = recorderEvents();
    const rec3 = await start({ ...config, autoStart: false }, third);
    assert.strictEqual(third.segments.length, 0, 'nothing is sent twice');
    await rec3.close();
  });

  it('after ffmpeg is killed (SIGKILL) sends the unsent closed segments once and the cut one as partial', async function () {
    const config = lavfiConfig(dir, { segmentSeconds: 3 });
    const got = recorderEvents();
    const rec = await start(config, got);
    await waitFor(() => got.segments.length >= 1, { timeout: 20000, what: 'a segment' });
    const pid = rec.pid;
    // Wait until the segment being written holds a fragment of video: a crash now leaves something readable.
    await waitFor(() => workingFiles(config.folder).some((f) => readable(f)), { timeout: 10000, what: 'a readable fragment' });
    await crash(rec);
    assert.ok(!alive(pid));
    // A crash before the last "sent" record reached the disk.
    const journal = path.join(config.folder, STATE_DIR, 'journal');
    const lines = fs.readFileSync(journal, 'utf8').split('\n').filter(Boolean);
    const dropped = JSON.parse(lines[lines.length - 1]);
    assert.strictEqual(dropped.t, 'sent');
    fs.writeFileSync(journal, lines.slice(0, -1).join('\n') + '\n');
    const droppedFile = got.segments.find((m) => journalRecords(config.folder).some((r) => r.t === 'closed' && r.id === dropped.id && path.join(config.folder, r.file) === m.uplink.file));
    assert.ok(droppedFile, 'the segment whose record was dropped');

    const again = recorderEvents();
    const rec2 = await start({ ...config, autoStart: false }, again);
    const files = again.segments.map((m) => m.uplink.file);
    assert.strictEqual(new Set(files).size, files.length);
    assert.deepStrictEqual(files.filter((f) => got.segments.some((m) => m.uplink.file === f)), [droppedFile.uplink.file], 'only the segment not journalled as sent is sent again');
    const resent = again.segments.find((m) => m.uplink.file === droppedFile.uplink.file).uplink;
    assert.deepStrictEqual([resent.key, resent.sha256, resent.recorder.segment], [droppedFile.uplink.key, droppedFile.uplink.sha256, droppedFile.uplink.recorder.segment], 'the same key and content');
    const partial = again.segments.filter((m) => m.uplink.partial);
    assert.strictEqual(partial.length, 1, 'the segment being written when ffmpeg was killed');
    const p = partial[0].uplink;
    assert.ok(p.durationS > 0 && p.durationS < 3, `${p.durationS} s`);
    assert.ok(Math.abs(probeDuration(p.file) - p.durationS) < 0.05);
    assert.deepStrictEqual([p.recorder.partial, p.recorder.recovered], [true, true]);
    await rec2.close();
    const rec3 = await start({ ...config, autoStart: false }, recorderEvents());
    assert.strictEqual(rec3.snapshot().segments, 0, 'nothing more to send');
    await rec3.close();
  });

  it('sets aside a leftover file without readable video, with a warning, and never deletes it', async function () {
    const config = lavfiConfig(dir);
    const state = path.join(config.folder, STATE_DIR);
    fs.mkdirSync(state, { recursive: true });
    const junk = path.join(state, `r${Date.now().toString(36).padStart(9, '0')}beef-000000.mp4`);
    fs.writeFileSync(junk, Buffer.from('not a video at all'));
    const got = recorderEvents();
    const rec = await start({ ...config, autoStart: false }, got);
    assert.deepStrictEqual(got.segments, []);
    assert.match(got.warnings.join('\n'), /holds no readable video .*moved to .*unreadable/);
    assert.strictEqual(fs.readFileSync(path.join(state, 'unreadable', path.basename(junk)), 'utf8'), 'not a video at all');
    assert.strictEqual(rec.snapshot().disk.unreadable, 1);
    await rec.close();
  });

  it('sends closed segments without ffprobe; a cut one ffprobe could not run on waits, and is sent once ffprobe works', async function () {
    // ffmpeg from a folder of its own, beside an ffprobe that cannot be run: the recorder finds ffprobe there.
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(execFileSync('sh', ['-c', 'command -v ffmpeg']).toString().trim(), path.join(bin, 'ffmpeg'));
    fs.writeFileSync(path.join(bin, 'ffprobe'), '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const config = lavfiConfig(dir, { ffmpegPath: path.join(bin, 'ffmpeg'), segmentSeconds: 3 });
    const got = recorderEvents();
    const rec = await start(config, got);
    // A closed segment's length is in ffmpeg's list, its codec and size in its MP4 header.
    await waitFor(() => got.segments.length >= 1, { timeout: 20000, what: 'a segment sent without ffprobe' });
    const u = got.segments[0].uplink;
    assert.deepStrictEqual([u.codec, u.width, u.height], ['h264', 160, 120]);
    assert.ok(Math.abs(probeDuration(u.file) - u.durationS) < 0.05, `${u.durationS} s`);
    // Cut short by a crash, the segment being written has no list entry: only ffprobe can say how long it is.
    await waitFor(() => workingFiles(config.folder).some((f) => readable(f)), { timeout: 10000, what: 'a readable fragment' });
    await crash(rec);
    const cut = recorderEvents();
    const rec2 = await start({ ...config, autoStart: false }, cut);
    assert.match(cut.warnings.join('\n'), /ffprobe at .* could not be run/);
    assert.ok(cut.segments.every((m) => !m.uplink.partial), 'the cut segment is not sent without its length');
    assert.deepStrictEqual(fs.readdirSync(path.join(config.folder, STATE_DIR, 'unreadable')), [], 'nothing set aside');
    const waiting = workingFiles(config.folder).length;
    assert.strictEqual(waiting, 1, 'the cut segment waits in the state folder');
    await rec2.close();

    fs.rmSync(path.join(bin, 'ffprobe'));
    fs.symlinkSync(execFileSync('sh', ['-c', 'command -v ffprobe']).toString().trim(), path.join(bin, 'ffprobe'));
    const again = recorderEvents();
    const rec3 = await start({ ...config, autoStart: false }, again);
    assert.strictEqual(again.segments.length, 1, 'the waiting segment is sent at the next start');
    const p = again.segments[0].uplink;
    assert.ok(p.partial && p.durationS > 0 && readable(p.file));
    assert.ok(Math.abs(probeDuration(p.file) - p.durationS) < 0.05);
    assert.strictEqual(workingFiles(config.folder).length, 0);
    await rec3.close();
  });

  it('asks ffprobe only where the MP4 header does not say: never for H.264, once per run for MJPEG, for each cut segment', async function () {
    // An ffprobe that counts its runs, then runs the real one.
    const count = path.join(dir, 'probes');
    const probe = path.join(dir, 'ffprobe');
    const real = execFileSync('sh', ['-c', 'command -v ffprobe']).toString().trim();
    fs.writeFileSync(probe, `#!/bin/sh\necho run >> '${count}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const probes = () => (fs.existsSync(count) ? fs.readFileSync(count, 'utf8').split('\n').filter(Boolean).length : 0);
    const folder = path.join(dir, 'rec');
    const store = await SegmentStore.open({ folder, camera: 'cam', nameTemplate: '{camera}_%Y%m%d_%H%M%S.mp4', ffprobePath: probe, requestedS: 1, warn: () => undefined });
    /** A run as the recorder has ffmpeg write it (segment muxer, fragmented MP4, CSV list), copying an encoded source. */
    const record = (codec, extra) => {
      const src = path.join(dir, `${codec}.mkv`);
      execFileSync('ffmpeg', ['-nostdin', '-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '3.5', '-c:v', codec, '-g', '10', ...extra, src]);
      const { run, listFile, pattern } = store.newRun();
      execFileSync('ffmpeg', ['-nostdin', '-y', '-loglevel', 'error', '-i', src, '-map', '0:v:0', '-c:v', 'copy', '-an', '-f', 'segment', '-segment_time', '1', '-segment_format', 'mp4', '-segment_format_options', FRAGMENTED_MP4, '-reset_timestamps', '1', '-segment_list', listFile, '-segment_list_type', 'csv', pattern]);
      const entries = parseList(fs.readFileSync(listFile, 'utf8'));
      assert.ok(entries.length >= 3, `${entries.length} segments`);
      return { run, entries };
    };
    const probedStream = (file) => {
      const st = JSON.parse(execFileSync(real, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', file]).toString()).streams[0];
      return [st.codec_name, st.width, st.height];
    };
    try {
      const h264 = record('libx264', ['-preset', 'ultrafast']);
      const placed = [];
      for (const entry of h264.entries) {
        const seg = await store.closeListed(h264.run, entry);
        placed.push(seg.path);
        assert.deepStrictEqual([seg.codec, seg.width, seg.height], probedStream(seg.path));
        assert.deepStrictEqual([seg.bytes, seg.sha256], [fs.statSync(seg.path).size, sha256(seg.path)]);
      }
      assert.strictEqual(probes(), 0, 'no ffprobe for H.264 segments');

      // MJPEG sits in an mp4v sample entry, which does not name its codec: ffprobe on the run's first segment says.
      const mjpeg = record('mjpeg', []);
      for (const entry of mjpeg.entries) {
        const seg = await store.closeListed(mjpeg.run, entry);
        assert.deepStrictEqual([seg.codec, seg.width, seg.height], ['mjpeg', 320, 240]);
      }
      assert.strictEqual(probes(), 1, 'one ffprobe for the whole MJPEG run');

      // A segment a crash cut short is never listed: ffprobe reads its length.
      const cut = store.newRun();
      fs.copyFileSync(placed[0], store.workingFile(cut.run, 0));
      const [partial] = await store.settleRun(cut.run);
      assert.ok(partial.partial && partial.durationS > 0);
      assert.deepStrictEqual([partial.codec, partial.width, partial.height], ['h264', 320, 240]);
      assert.strictEqual(probes(), 2, 'one ffprobe for the cut segment');
    } finally {
      await store.close();
    }
  });

  it('survives Node itself being SIGKILLed: ffmpeg dies with it, and every closed segment is sent exactly once', async function () {
    const config = lavfiConfig(dir, { segmentSeconds: 1 });
    const script = `
      const { parseRecorderConfig } = require(${JSON.stringify(path.resolve(__dirname, '../dist/lib/recorder/config'))});
      const { Recorder } = require(${JSON.stringify(path.resolve(__dirname, '../dist/lib/recorder/supervisor'))});
      const config = parseRecorderConfig(${JSON.stringify({ input: 'lavfi:testsrc=size=160x120:rate=10', camera: 'gate', segmentSeconds: 1, folder: config.folder, keepFreeMB: 0 })}, {}, '/');
      let rec;
      const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
      Recorder.open(config, {
        segment: (m) => say({ file: m.uplink.file }),
        status: (s) => { if (rec && rec.pid) say({ pid: rec.pid }); },
        event: () => {}, warn: () => {}, log: () => {},
      }).then((r) => { rec = r; });
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = [];
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop();
      for (const p of parts) lines.push(JSON.parse(p));
    });
    let ffmpegPid;
    try {
      await waitFor(() => lines.filter((l) => l.file).length >= 3, { timeout: 20000, what: 'three segments from the child' });
      ffmpegPid = lines.find((l) => l.pid).pid;
      assert.ok(alive(ffmpegPid));
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('exit', r));
    await waitFor(() => !alive(ffmpegPid), { what: 'ffmpeg to die with the Node process that started it' });
    const sentBefore = new Set(journalRecords(config.folder).filter((r) => r.t === 'sent').map((r) => r.id));
    const closedBefore = new Map(journalRecords(config.folder).filter((r) => r.t === 'closed').map((r) => [r.id, path.join(config.folder, r.file)]));
    const childFiles = lines.filter((l) => l.file).map((l) => l.file);

    const got = recorderEvents();
    const rec = await start({ ...config, autoStart: false }, got);
    await rec.close();
    const again = got.segments.map((m) => m.uplink.file);
    assert.strictEqual(new Set(again).size, again.length);
    for (const [id, file] of closedBefore) {
      if (sentBefore.has(id)) assert.ok(!again.includes(file), `${file} was journalled as sent: not sent again`);
      else assert.ok(again.includes(file), `${file} was closed but not journalled as sent: sent now`);
    }
    for (const f of childFiles) assert.ok(fs.existsSync(f));
    // Every file in the folder was sent by one of the two.
    const all = fs.readdirSync(config.folder).filter((n) => n.endsWith('.mp4')).map((n) => path.join(config.folder, n));
    for (const f of all) assert.ok(childFiles.includes(f) || again.includes(f), `${f} was sent`);
    assert.strictEqual(workingFiles(config.folder).length, 0, 'nothing left in the state folder');
  });

  it('gives up on a camera that accepts the connection and never answers, and stops ffmpeg at close', async function () {
    const rtsp = require('./support/rtsp-server');
    const silent = await rtsp.startSilentServer();
    try {
      const config = parseRecorderConfig({ input: silent.url, camera: 'hung', segmentSeconds: 1, timeout: 1, folder: path.join(dir, 'rec'), keepFreeMB: 0 }, {}, dir);
      const got = recorderEvents();
      const rec = await start(config, got);
      await waitFor(() => got.statuses.some((s) => /^reconnecting in [\d.]+ s: /.test(s.text)), { timeout: 15000, what: 'ffmpeg to give up' });
      assert.match(got.statuses.find((s) => /^reconnecting/.test(s.text)).text, /no valid stream|timeout/);
      await waitFor(() => rec.pid !== undefined, { timeout: 5000, what: 'the next attempt' });
      const pid = rec.pid;
      await rec.close();
      assert.ok(!alive(pid), 'ffmpeg stopped while it waited on the silent camera');
      assert.deepStrictEqual(got.segments, []);
    } finally {
      await silent.close();
    }
  });

  it('keeps within its disk budget: deletes uploaded segments first, pauses while the rest is not uploaded, resumes after uploads', async function () {
    // About 4 of these small segments fit.
    const config = lavfiConfig(dir, { budget: 0.07, budgetUnit: 'MB' });
    const limit = config.budget.bytes;
    // A leftover without video, set aside at the start: it waits for a person, the budget never deletes it.
    const state = path.join(config.folder, STATE_DIR);
    fs.mkdirSync(state, { recursive: true });
    const junk = `r${Date.now().toString(36).padStart(9, '0')}beef-000000.mp4`;
    fs.writeFileSync(path.join(state, junk), Buffer.from('not a video at all'));
    const got = recorderEvents();
    const rec = await start(config, got);
    await waitFor(() => rec.currentState === 'paused', { timeout: 30000, what: 'the budget pause' });
    await waitFor(() => rec.pid === undefined, { what: 'ffmpeg stopped by the pause' });
    const status = got.statuses[got.statuses.length - 1];
    assert.deepStrictEqual([status.fill, status.shape], ['red', 'ring']);
    assert.match(status.text, /^disk budget reached: \d+ segments not uploaded$/);
    assert.ok(got.events.some((e) => e.event === 'paused'));
    const onDisk = got.segments.filter((m) => fs.existsSync(m.uplink.file));
    assert.strictEqual(onDisk.length, got.segments.length, 'nothing unsent was deleted');
    assert.ok(onDisk.reduce((a, m) => a + m.uplink.bytes, 0) <= limit, 'within the budget');

    // The uploader reports the oldest as stored: recording resumes (once there is room for two more segments), and
    // those go first.
    const pausedRun = got.segments[got.segments.length - 1].uplink.recorder.run;
    const uploaded = got.segments.slice(0, got.segments.length - 1).map((m) => m.uplink.file);
    for (const f of uploaded) assert.strictEqual(await rec.uploaded(f), true);
    await waitFor(() => got.events.some((e) => e.event === 'resumed'), { timeout: 20000, what: 'recording to resume' });
    await waitFor(() => got.segments.some((m) => m.uplink.recorder.run > pausedRun), { timeout: 20000, what: 'a segment of the new run' });
    await waitFor(() => rec.currentState === 'paused', { timeout: 30000, what: 'the next pause' });
    const deleted = got.segments.filter((m) => !fs.existsSync(m.uplink.file)).map((m) => m.uplink.file);
    assert.ok(deleted.length > 0);
    assert.deepStrictEqual(deleted, uploaded.slice(0, deleted.length), 'only uploaded ones were deleted, oldest first');
    const kept = got.segments.filter((m) => fs.existsSync(m.uplink.file));
    assert.ok(kept.reduce((a, m) => a + m.uplink.bytes, 0) <= limit);
    assert.strictEqual(rec.snapshot().disk.deleted, deleted.length);

    // The queue deletes uploaded files itself: gone files count as freed.
    const resumed = got.events.filter((e) => e.event === 'resumed').length;
    for (const m of kept) fs.unlinkSync(m.uplink.file);
    await waitFor(() => got.events.filter((e) => e.event === 'resumed').length > resumed, { timeout: 20000, what: 'recording to resume once the files are gone' });
    assert.ok(fs.existsSync(path.join(state, 'unreadable', junk)), 'the file set aside is still there');
  });

  it('under "drop oldest unsent" deletes the oldest segments not uploaded, with a warning, and never pauses', async function () {
    const config = lavfiConfig(dir, { budget: 0.07, budgetUnit: 'MB', budgetPolicy: 'drop-oldest-unsent' });
    const got = recorderEvents();
    const rec = await start(config, got);
    await waitFor(() => rec.snapshot().disk.dropped >= 2, { timeout: 30000, what: 'two dropped segments' });
    assert.notStrictEqual(rec.currentState, 'paused');
    assert.match(got.warnings.join('\n'), /disk budget reached: deleted \d+ segments? not uploaded yet \(oldest first: gate_/);
    const gone = got.segments.filter((m) => !fs.existsSync(m.uplink.file)).map((m) => m.uplink.recorder.segment);
    assert.deepStrictEqual(gone, gone.map((_, i) => i + 1), 'the oldest went first');
    const kept = got.segments.filter((m) => fs.existsSync(m.uplink.file));
    assert.ok(kept.reduce((a, m) => a + m.uplink.bytes, 0) <= config.budget.bytes);
    assert.ok(got.events.some((e) => e.event === 'dropped'));
  });
});
