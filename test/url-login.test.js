'use strict';
// A camera URL pasted with its login in it (`http://admin:pass@192.168.1.20/snapshot.jpg`): the login is taken out
// and used as the node's credentials (its own credentials win), the URL is kept without it, and every text that shows
// a URL shows its password as ***. Passwords here carry the characters URLs treat specially, percent-encoded.
//
// Needs `npm run build` first (it reads dist/lib).
const assert = require('assert');
const { splitUrlLogin, maskUrlLogin, chooseLogin } = require('../dist/lib/util/url-login');
const { parseHttpCameraSettings } = require('../dist/lib/capture/sources/http');
const { HttpCameraSource } = require('../dist/lib/capture/sources/http');
const { parseFfmpegSettings, urlWithCredentials, maskCredentials } = require('../dist/lib/media/ffmpeg-input');
const { parseRecorderConfig } = require('../dist/lib/recorder/config');
const { startCamera } = require('./support/camera-server');
const { tmpDir, rmrf } = require('./support/tmp');

/** Passwords with every character a URL gives a meaning to, and the way each is written inside a URL. */
const HARD_PASSWORDS = ['p@ss', 'pa:ss:word', 'a/b', 'fifty%', 'no#tag', 'q?uery', 'sp ace', 'é&=+;,$!', '@:/%#?'];

describe('a login inside a camera URL', function () {
  describe('splitUrlLogin', function () {
    it('takes user and password out of the URL and keeps the rest exactly as given', function () {
      assert.deepStrictEqual(splitUrlLogin('http://admin:pass@192.168.1.20/snapshot.jpg'), {
        url: 'http://192.168.1.20/snapshot.jpg',
        username: 'admin',
        password: 'pass',
      });
      assert.deepStrictEqual(splitUrlLogin('rtsp://admin:pass@192.168.1.20:554/Streaming/Channels/101?transport=tcp#x'), {
        url: 'rtsp://192.168.1.20:554/Streaming/Channels/101?transport=tcp#x',
        username: 'admin',
        password: 'pass',
      });
      // A placeholder in the query is not touched (the HTTP source fills it in per request).
      assert.strictEqual(splitUrlLogin('http://a:b@cam/snap?u={username}&p={password}').url, 'http://cam/snap?u={username}&p={password}');
    });

    it('decodes percent-encoded passwords with @ : / % # ? and spaces', function () {
      for (const password of HARD_PASSWORDS) {
        const url = `rtsp://${encodeURIComponent('cam user')}:${encodeURIComponent(password)}@10.0.0.2:554/h264`;
        assert.deepStrictEqual(splitUrlLogin(url), { url: 'rtsp://10.0.0.2:554/h264', username: 'cam user', password }, url);
      }
    });

    it('reads an @ or : typed as it is in a password the way URL parsers do (last @, first :)', function () {
      assert.deepStrictEqual(splitUrlLogin('http://admin:p@ss:w@rd@cam/snap.jpg'), { url: 'http://cam/snap.jpg', username: 'admin', password: 'p@ss:w@rd' });
      // The WHATWG parser agrees.
      const u = new URL('http://admin:p@ss:w@rd@cam/snap.jpg');
      assert.strictEqual(decodeURIComponent(u.password), 'p@ss:w@rd');
      // A lone % (typed, not an escape) stays a %.
      assert.strictEqual(splitUrlLogin('http://admin:100%@cam/').password, '100%');
    });

    it('gives a user name alone, an empty password, and URLs without a login unchanged', function () {
      assert.deepStrictEqual(splitUrlLogin('rtsp://admin@cam/x'), { url: 'rtsp://cam/x', username: 'admin' });
      assert.deepStrictEqual(splitUrlLogin('rtsp://admin:@cam/x'), { url: 'rtsp://cam/x', username: 'admin', password: '' });
      for (const url of ['http://cam/snap.jpg', 'http://cam/a@b', 'http://cam/?mail=a@b', '/dev/video0', 'lavfi:testsrc', '', 'not a url']) {
        assert.deepStrictEqual(splitUrlLogin(url), { url }, url);
      }
    });
  });

  describe('maskUrlLogin', function () {
    it('hides the password of every URL in a text, keeping the user name', function () {
      assert.strictEqual(
        maskUrlLogin('rtsp://admin:s3cr%40t@10.0.0.2:554/x: Connection refused, then http://u:pw@cam/snap.jpg failed'),
        'rtsp://admin:***@10.0.0.2:554/x: Connection refused, then http://u:***@cam/snap.jpg failed',
      );
      assert.strictEqual(maskUrlLogin('URL "http://admin:pw@cam/x" is not valid'), 'URL "http://admin:***@cam/x" is not valid');
      assert.strictEqual(maskUrlLogin('http://cam/snap.jpg and mail@example.com'), 'http://cam/snap.jpg and mail@example.com');
      assert.strictEqual(maskUrlLogin('rtsp://admin@cam/x'), 'rtsp://admin@cam/x');
    });

    it('hides passwords however they are written: encoded, or typed with @ / # in them', function () {
      for (const password of HARD_PASSWORDS) {
        for (const written of [encodeURIComponent(password), password.replace(/ /g, '%20')]) {
          const masked = maskUrlLogin(`error at rtsp://admin:${written}@10.0.0.2/h264: 401`);
          assert.strictEqual(masked, 'error at rtsp://admin:***@10.0.0.2/h264: 401', written);
        }
      }
    });
  });

  it('chooseLogin: the node\'s own login wins whole, never half of each', function () {
    const url = { url: 'x', username: 'url-user', password: 'url-pw' };
    assert.deepStrictEqual(chooseLogin({ username: '', password: '' }, url), { username: 'url-user', password: 'url-pw' });
    assert.deepStrictEqual(chooseLogin({ username: 'own', password: '' }, url), { username: 'own', password: '' });
    assert.deepStrictEqual(chooseLogin({ username: '', password: 'own-pw' }, url), { username: '', password: 'own-pw' });
    assert.deepStrictEqual(chooseLogin({ username: '', password: '' }, { url: 'x' }), { username: '', password: '' });
  });

  describe('HTTP snapshot source', function () {
    it('takes the login from the URL into its settings; the URL it keeps has none', function () {
      const password = '@:/%#?';
      const s = parseHttpCameraSettings({ url: `http://admin:${encodeURIComponent(password)}@192.168.1.20/snapshot.jpg` }, {});
      assert.deepStrictEqual([s.url, s.auth, s.username, s.password], ['http://192.168.1.20/snapshot.jpg', 'auto', 'admin', password]);
    });

    it('uses its own credentials when it has them, and the URL still loses its login', function () {
      const s = parseHttpCameraSettings({ url: 'http://admin:from-url@cam/snap.jpg', auth: 'digest' }, { username: 'viewer', password: 'own' });
      assert.deepStrictEqual([s.url, s.username, s.password], ['http://cam/snap.jpg', 'viewer', 'own']);
    });

    it('says how to write a password that breaks the URL, without showing it', function () {
      assert.throws(
        () => parseHttpCameraSettings({ url: 'http://admin:pa/ss#zq9@cam:80/snap.jpg' }, {}),
        (/** @type {Error} */ e) => /is not a valid URL .*%2F %3F %23 %25/.test(e.message) && !/pa\/ss|zq9/.test(e.message),
      );
    });

    it('logs in with digest to a real camera, the login given only in the URL', async function () {
      const password = 'p@ss:w/rd%#é';
      const camera = await startCamera({ username: 'cam admin', password });
      const url = `http://${encodeURIComponent('cam admin')}:${encodeURIComponent(password)}@127.0.0.1:${camera.port}/digest/sha-256/snap.jpg`;
      const source = new HttpCameraSource(parseHttpCameraSettings({ url, timeout: 5 }, {}));
      try {
        const image = await source.grab(AbortSignal.timeout(10000), 1024 * 1024);
        assert.deepStrictEqual(image.subarray(0, 2), Buffer.from([0xff, 0xd8]), 'a JPEG');
        // The wrong password (from the URL) fails with a message that shows neither form of it.
        const wrong = new HttpCameraSource(parseHttpCameraSettings({ url: url.replace(encodeURIComponent(password), 'wrong%40pw'), timeout: 5 }, {}));
        const err = await wrong.grab(AbortSignal.timeout(10000), 1024 * 1024).then(
          () => assert.fail('a wrong password was accepted'),
          (/** @type {Error} */ e) => e,
        );
        await wrong.close();
        assert.match(err.message, /refused the user name or password/);
        assert.ok(!/wrong|%40pw|@pw/.test(err.message), err.message);
      } finally {
        await source.close();
        await camera.close();
      }
    });
  });

  describe('ffmpeg source (capture and recorder)', function () {
    it('takes the login out of an RTSP or MJPEG URL and gives it to ffmpeg only in its argv, encoded', function () {
      for (const password of HARD_PASSWORDS) {
        const input = `rtsp://admin:${encodeURIComponent(password)}@10.0.0.2:554/h264`;
        const s = parseFfmpegSettings({ input }, {});
        assert.deepStrictEqual([s.input, s.username, s.password], ['rtsp://10.0.0.2:554/h264', 'admin', password]);
        const argvUrl = urlWithCredentials(s);
        assert.deepStrictEqual(splitUrlLogin(argvUrl), { url: 'rtsp://10.0.0.2:554/h264', username: 'admin', password }, 'ffmpeg decodes it back');
        assert.strictEqual(maskCredentials(`[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized ${argvUrl}`, s), '[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized rtsp://admin:***@10.0.0.2:554/h264');
      }
      const mjpeg = parseFfmpegSettings({ input: 'http://viewer:pw@cam/video.mjpg' }, {});
      assert.deepStrictEqual([mjpeg.kind, mjpeg.input, mjpeg.username, mjpeg.password], ['mjpeg', 'http://cam/video.mjpg', 'viewer', 'pw']);
    });

    it('prefers the node\'s own credentials, and leaves devices and test sources alone', function () {
      const s = parseFfmpegSettings({ input: 'rtsp://admin:from-url@cam/x' }, { username: 'own', password: 'own-pw' });
      assert.deepStrictEqual([s.input, s.username, s.password], ['rtsp://cam/x', 'own', 'own-pw']);
      assert.strictEqual(parseFfmpegSettings({ input: '/dev/video0' }, {}).input, '/dev/video0');
      assert.strictEqual(parseFfmpegSettings({ input: 'lavfi:testsrc=size=64x48' }, {}).input, 'lavfi:testsrc=size=64x48');
    });

    it('masks the password in every error it lists', function () {
      assert.throws(
        () => parseFfmpegSettings({ input: 'rtsp://admin:top/secret@cam:554/x', rtspTransport: 'sctp' }, {}),
        (/** @type {Error} */ e) => /RTSP transport/.test(e.message) && /rtsp:\/\/admin:\*\*\*@cam:554\/x/.test(e.message) && !/top|secret/.test(e.message),
      );
      assert.throws(
        () => parseFfmpegSettings({ input: 'admin:hunter2@192.168.1.20:554/h264', kind: 'rtsp' }, {}),
        (/** @type {Error} */ e) => /starting with rtsp:\/\//.test(e.message) && !e.message.includes('hunter2'),
      );
    });

    it('the recorder reads the login from its URL the same way', function () {
      const dir = tmpDir('uplink-url-login-');
      try {
        const c = parseRecorderConfig({ input: `rtsp://admin:${encodeURIComponent('p@ss/#')}@cam:8554/live` }, {}, dir);
        assert.deepStrictEqual([c.source.input, c.source.username, c.source.password], ['rtsp://cam:8554/live', 'admin', 'p@ss/#']);
      } finally {
        rmrf(dir);
      }
    });
  });
});
