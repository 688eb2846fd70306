'use strict';
const assert = require('assert');
const https = require('https');
const net = require('net');
const { HttpCameraSource, parseHttpCameraSettings, reolinkUrl } = require('../dist/lib/capture/sources/http');
const { inspectImage } = require('../dist/lib/capture/image-info');
const { CaptureError } = require('../dist/lib/capture/types');
const { startCamera, selfSignedCert, authParams } = require('./support/camera-server');
const { listenLocal } = require('./support/net');
const { rmrf, waitFor } = require('./support/tmp');

const MB = 1024 * 1024;

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the capture to fail, it succeeded');
}

/**
 * Asserts a CaptureError with that code, and that nothing of the password leaks into its message.
 * @param {any} err what the capture threw
 * @param {string} code
 * @param {string} [password]
 * @returns {CaptureError & { bytesRead?: number }} the error (the HTTP source's TOO_LARGE also says how much it read)
 */
function assertFailure(err, code, password) {
  assert.ok(err instanceof CaptureError, `expected a CaptureError, got ${err && err.stack}`);
  assert.strictEqual(err.code, code, `code ${err.code}: ${err.message}`);
  if (password) {
    for (const form of [password, encodeURIComponent(password), new URLSearchParams({ p: password }).toString().slice(2)]) {
      assert.ok(!err.message.includes(form), `the message carries the password: ${err.message}`);
    }
    assert.ok(!/[?&](user|password)=/.test(err.message), `the message shows login parameters: ${err.message}`);
  }
  return err;
}

/** A port on 127.0.0.1 where nothing listens (bound, read, released). */
async function closedPort() {
  const srv = net.createServer();
  const port = await listenLocal(srv);
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

describe('HTTP camera source', function () {
  let camera;
  let sources = [];

  function source(url, overrides = {}) {
    const s = new HttpCameraSource({ url, auth: 'none', allowSelfSigned: false, timeoutMs: 5000, ...overrides });
    sources.push(s);
    return s;
  }
  const login = (auth, password = camera.password) => ({ auth, username: camera.username, password });
  const grab = (s, { maxBytes = MB, signal = AbortSignal.timeout(10000) } = {}) => s.grab(signal, maxBytes);
  const authHeaders = (from = 0) => camera.requests.slice(from).map((r) => r.headers.authorization);

  before(async function () {
    camera = await startCamera();
  });
  afterEach(async function () {
    await Promise.all(sources.map((s) => s.close()));
    sources = [];
  });
  after(async function () {
    if (camera) await camera.close();
  });

  describe('a plain snapshot URL', function () {
    it('returns the bytes the camera sent, a 16x16 JPEG, different each time, over one kept-alive connection', async function () {
      const s = source(camera.url('/snap.jpg'));
      const from = camera.requests.length;
      const first = await grab(s);
      const second = await grab(s);
      assert.ok(first.equals(camera.served.at(-2)), 'first image differs from what the camera sent');
      assert.ok(second.equals(camera.served.at(-1)), 'second image differs from what the camera sent');
      assert.ok(!first.equals(second), 'the fake camera numbers its frames');
      const info = inspectImage(first);
      assert.deepStrictEqual([info.format, info.width, info.height], ['jpeg', 16, 16]);
      const reqs = camera.requests.slice(from);
      assert.strictEqual(reqs.length, 2);
      assert.strictEqual(reqs[0].connection, reqs[1].connection, 'the second capture opened a new connection');
      assert.strictEqual(reqs[0].headers.authorization, undefined);
    });
  });

  describe('kept-alive connections', function () {
    it('repeats a request once on a fresh connection when the kept-alive one was dropped', async function () {
      const s = source(camera.url('/reset-reused.jpg'));
      const from = camera.requests.length;
      await grab(s);
      const img = await grab(s);
      assert.ok(img.equals(camera.served.at(-1)));
      const reqs = camera.requests.slice(from);
      assert.strictEqual(reqs.length, 3, 'first, dropped, repeated');
      assert.strictEqual(reqs[1].connection, reqs[0].connection);
      assert.notStrictEqual(reqs[2].connection, reqs[1].connection);
    });
  });

  describe('basic and digest login', function () {
    it('sends basic credentials up front', async function () {
      const from = camera.requests.length;
      const img = await grab(source(camera.url('/basic/snap.jpg'), login('basic')));
      assert.ok(img.equals(camera.served.at(-1)));
      assert.strictEqual(camera.requests.length - from, 1);
      assert.match(authHeaders(from)[0], /^Basic /);
    });

    for (const alg of ['md5', 'sha-256', 'md5-sess']) {
      it(`answers a ${alg.toUpperCase()} digest challenge, then reuses the nonce with nc=00000002`, async function () {
        const s = source(camera.url(`/digest/${alg}/snap.jpg`), login('digest'));
        const from = camera.requests.length;
        const first = await grab(s);
        const second = await grab(s);
        assert.ok(first.equals(camera.served.at(-2)) && second.equals(camera.served.at(-1)));
        const sent = authHeaders(from);
        assert.strictEqual(sent.length, 3, 'challenge, answer, then straight in on the next capture');
        assert.strictEqual(sent[0], undefined);
        const a1 = authParams(sent[1].slice(7));
        const a2 = authParams(sent[2].slice(7));
        assert.strictEqual(a1.algorithm.toLowerCase(), alg);
        assert.strictEqual(a1.qop, 'auth');
        assert.strictEqual(a1.nc, '00000001');
        assert.strictEqual(a2.nc, '00000002');
        assert.strictEqual(a2.nonce, a1.nonce);
        for (const h of sent.slice(1)) assert.ok(!h.includes(camera.password), 'digest must never send the password');
      });
    }

    it('picks SHA-256 when the camera offers SHA-256 and MD5', async function () {
      const from = camera.requests.length;
      await grab(source(camera.url('/digest/both/snap.jpg'), login('digest')));
      assert.strictEqual(authParams(authHeaders(from)[1].slice(7)).algorithm, 'SHA-256');
    });

    it('takes a new nonce when the camera calls the old one stale, and carries on', async function () {
      const s = source(camera.url('/digest/sha-256/snap.jpg'), login('digest'));
      await grab(s);
      const from = camera.requests.length;
      camera.expireNonces();
      const img = await grab(s);
      assert.ok(img.equals(camera.served.at(-1)));
      const sent = authHeaders(from).map((h) => authParams(h.slice(7)));
      assert.strictEqual(sent.length, 2, 'the stale answer, then one with the new nonce');
      assert.strictEqual(sent[0].nc, '00000002');
      assert.strictEqual(sent[1].nc, '00000001');
      assert.notStrictEqual(sent[1].nonce, sent[0].nonce);
      assert.ok(camera.nonces.get(sent[1].nonce).uses === 1);
    });

    it("'auto' answers a Basic challenge, and sends Basic up front from then on", async function () {
      const s = source(camera.url('/basic/snap.jpg'), login('auto'));
      const from = camera.requests.length;
      await grab(s);
      await grab(s);
      const sent = authHeaders(from);
      assert.strictEqual(sent.length, 3);
      assert.strictEqual(sent[0], undefined, 'auto sends nothing before it is asked');
      assert.match(sent[1], /^Basic /);
      assert.match(sent[2], /^Basic /);
    });

    it("'auto' answers Digest rather than Basic when the camera offers both", async function () {
      const from = camera.requests.length;
      const img = await grab(source(camera.url('/any/snap.jpg'), login('auto')));
      assert.ok(img.equals(camera.served.at(-1)));
      const sent = authHeaders(from);
      assert.strictEqual(sent.length, 2);
      assert.match(sent[1], /^Digest /);
    });

    it("'auto' answers a Digest challenge", async function () {
      const img = await grab(source(camera.url('/digest/md5/snap.jpg'), login('auto')));
      assert.ok(img.equals(camera.served.at(-1)));
    });

    for (const [auth, route] of [
      ['basic', '/basic/snap.jpg'],
      ['digest', '/digest/md5/snap.jpg'],
      ['auto', '/digest/sha-256/snap.jpg'],
      ['auto', '/basic/snap.jpg'],
    ]) {
      it(`a wrong password (${auth}, ${route}) is AUTH after one try, and the message does not carry it`, async function () {
        const wrong = 'Wr0ng p&ss';
        const from = camera.requests.length;
        const err = assertFailure(await rejection(grab(source(camera.url(route), login(auth, wrong)))), 'AUTH', wrong);
        assert.match(err.message, /the camera refused the user name or password/);
        assert.ok(!err.message.includes(camera.password));
        // A camera locks out after a few failures: no retrying in a loop.
        assert.ok(camera.requests.length - from <= 2, `${camera.requests.length - from} requests`);
      });
    }

    it('a camera that refuses every login is AUTH', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/deny/snap.jpg'), login('auto')))), 'AUTH', camera.password);
      assert.match(err.message, /refused the user name or password/);
    });

    it('a login asked for but not configured says to choose an authentication method', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/basic/snap.jpg')))), 'AUTH');
      assert.match(err.message, /choose an authentication method/);
    });

    it('digest chosen where the camera asks for basic says so, and sends nothing in clear', async function () {
      const from = camera.requests.length;
      const err = assertFailure(await rejection(grab(source(camera.url('/basic/snap.jpg'), login('digest')))), 'AUTH', camera.password);
      assert.match(err.message, /basic/);
      assert.deepStrictEqual(authHeaders(from), [undefined]);
    });

    it('403 is AUTH', async function () {
      assertFailure(await rejection(grab(source(camera.url('/forbidden.jpg'), login('basic')))), 'AUTH', camera.password);
    });
  });

  describe('failures', function () {
    it('404 is NOT_FOUND, naming the URL without its login', async function () {
      const s = source(`${camera.url('/missing.jpg')}?usr={username}&pwd={password}&x=1`, login('none'));
      const err = assertFailure(await rejection(grab(s)), 'NOT_FOUND', camera.password);
      assert.match(err.message, /no snapshot at this URL: check the path/);
      assert.ok(err.message.includes(`${camera.url('/missing.jpg')}?x=1`), err.message);
      assert.ok(!/usr=|pwd=/.test(err.message), err.message);
      // The placeholders were filled in for the camera.
      assert.strictEqual(camera.requests.at(-1).query.pwd, camera.password);
    });

    it('500 is CAMERA_ERROR with the status', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/error')))), 'CAMERA_ERROR');
      assert.match(err.message, /HTTP 500/);
    });

    it('a camera that never answers is stopped by the caller\'s timeout: TIMEOUT, socket closed', async function () {
      const from = camera.requests.length;
      const err = assertFailure(await rejection(grab(source(camera.url('/hang')), { signal: AbortSignal.timeout(300) })), 'TIMEOUT');
      assert.match(err.message, /^the camera did not answer within 0\.3 s$/);
      assert.strictEqual(camera.requests.slice(from).length, 1);
      await waitFor(() => camera.openSockets === 0, { timeout: 5000, what: 'the hanging connection to close' });
    });

    it('without a timeout from the caller, the source\'s own timeout stops a hang', async function () {
      const err = assertFailure(await rejection(source(camera.url('/hang'), { timeoutMs: 400 }).grab(new AbortController().signal, MB)), 'TIMEOUT');
      assert.match(err.message, /did not answer within 0\.4 s/);
    });

    it('a camera that stops half-way through the image is TIMEOUT, saying the image did not arrive whole', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/stall.jpg')), { signal: AbortSignal.timeout(300) })), 'TIMEOUT');
      assert.match(err.message, /did not send the whole image within/);
    });

    it('a cancelled capture is ABORTED at once', async function () {
      const ac = new AbortController();
      const p = grab(source(camera.url('/hang')), { signal: ac.signal });
      await waitFor(() => camera.requests.at(-1).path === '/hang', { timeout: 5000, what: 'the request' });
      ac.abort();
      assertFailure(await rejection(p), 'ABORTED');
    });

    it('close() stops a capture in flight', async function () {
      const s = source(camera.url('/hang'));
      const from = camera.requests.length;
      const p = grab(s);
      await waitFor(() => camera.requests.length > from, { timeout: 5000, what: 'the request' });
      await s.close();
      assertFailure(await rejection(p), 'ABORTED');
      assertFailure(await rejection(grab(s)), 'ABORTED');
    });

    it('an endless answer is TOO_LARGE once past maxBytes: memory stays bounded and the socket is closed', async function () {
      const maxBytes = 256 * 1024;
      const err = assertFailure(await rejection(grab(source(camera.url('/endless')), { maxBytes })), 'TOO_LARGE');
      assert.match(err.message, /256 KB \(262144 bytes\)/);
      assert.ok(err.bytesRead > maxBytes, `read ${err.bytesRead}`);
      assert.ok(err.bytesRead <= maxBytes + 64 * 1024, `read ${err.bytesRead} bytes for a limit of ${maxBytes}`);
      await waitFor(() => camera.endless.closed, { timeout: 5000, what: 'the camera to see the connection close' });
      const written = camera.endless.written;
      await new Promise((r) => setTimeout(r, 100));
      assert.strictEqual(camera.endless.written, written, 'the camera is still sending');
    });

    it('an answer announced larger than maxBytes is TOO_LARGE before reading it', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/huge.jpg')))), 'TOO_LARGE');
      assert.match(err.message, /50 MB/);
      assert.strictEqual(err.bytesRead, 0);
    });

    it('a web page is returned as it came, and the image check calls it a web page', async function () {
      const body = await grab(source(camera.url('/login.html')));
      assert.match(body.toString(), /IP Camera login/);
      assert.throws(() => inspectImage(body), (e) => e instanceof CaptureError && e.code === 'NOT_AN_IMAGE' && /a web page/.test(e.message));
    });

    it('a connection dropped in the middle of the image is CUT_SHORT', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/cut.jpg')))), 'CUT_SHORT');
      assert.match(err.message, /in the middle of the image/);
    });

    it('an image cut short without a length is returned, and the image check refuses it', async function () {
      const body = await grab(source(camera.url('/cut-close.jpg')));
      assert.ok(body.length > 0 && body.length < camera.served.at(-1).length);
      assert.throws(() => inspectImage(body), (e) => e instanceof CaptureError && e.code === 'BAD_IMAGE');
    });

    it('a closed port is UNREACHABLE, with the reason', async function () {
      const port = await closedPort();
      const err = assertFailure(await rejection(grab(source(`http://127.0.0.1:${port}/snap.jpg`))), 'UNREACHABLE');
      assert.match(err.message, /connection refused/);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    });
  });

  describe('redirects', function () {
    it('follows up to 3 redirects on the same host', async function () {
      const img = await grab(source(camera.url('/redirect/3')));
      assert.ok(img.equals(camera.served.at(-1)));
    });

    it('refuses a 4th', async function () {
      const err = assertFailure(await rejection(grab(source(camera.url('/redirect/4')))), 'CAMERA_ERROR');
      assert.match(err.message, /more than 3 times/);
    });

    it('never follows a redirect to another host (the login would go with it)', async function () {
      const from = camera.requests.length;
      const err = assertFailure(await rejection(grab(source(camera.url('/redirect-away'), login('basic')))), 'CAMERA_ERROR', camera.password);
      assert.match(err.message, /another host \(http:\/\/localhost:/);
      assert.strictEqual(camera.requests.length - from, 1);
    });
  });

  describe('Reolink', function () {
    const reolink = (channel, password = camera.password) => source(reolinkUrl(`127.0.0.1:${camera.port}`, channel, false), { auth: 'none', username: camera.username, password });

    it('builds the Snap URL with a random rs and no login in it', function () {
      const a = reolinkUrl('192.168.1.30:8080', 2, true);
      assert.match(a, /^https:\/\/192\.168\.1\.30:8080\/cgi-bin\/api\.cgi\?cmd=Snap&channel=2&rs=[0-9a-z]{8,}$/i);
      assert.match(reolinkUrl('cam.local', 0, false), /^http:\/\/cam\.local\/cgi-bin\/api\.cgi\?cmd=Snap&channel=0&rs=/);
      assert.notStrictEqual(reolinkUrl('h', 0, false), reolinkUrl('h', 0, false));
    });

    it('sends user and password (URL-encoded) at request time, with a fresh rs each capture', async function () {
      const s = reolink(0);
      const from = camera.requests.length;
      const img = await grab(s);
      await grab(s);
      assert.ok(inspectImage(img).width === 16);
      const [r1, r2] = camera.requests.slice(from);
      assert.deepStrictEqual([r1.query.cmd, r1.query.channel, r1.query.user, r1.query.password], ['Snap', '0', camera.username, camera.password]);
      assert.ok(r1.url.includes(`password=${encodeURIComponent(camera.password)}`), r1.url);
      assert.notStrictEqual(r1.query.rs, r2.query.rs);
      assert.ok(!s.settings.url.includes('password'), 'the settings URL must not hold the password');
    });

    it('a wrong password (HTTP 200 with a JSON error) is AUTH, "please login first", without the password', async function () {
      const wrong = 'n0t it&=?';
      const err = assertFailure(await rejection(grab(reolink(0, wrong))), 'AUTH', wrong);
      assert.strictEqual(err.message, 'the camera refused the user name or password (please login first)');
    });

    it('a camera error that quotes the password has it blotted out', async function () {
      const wrong = 'typo pass';
      const err = assertFailure(await rejection(grab(reolink(9, wrong))), 'AUTH', wrong);
      assert.match(err.message, /bad password \*\*\*/);
    });
  });

  describe('https with a self-signed certificate', function () {
    let tlsCamera;
    let cert;

    before(async function () {
      cert = selfSignedCert();
      if (cert.skip) {
        console.log(`      (skipping the https tests: ${cert.skip})`);
        this.skip();
      }
      tlsCamera = await startCamera({ tls: /** @type {{ key: Buffer, cert: Buffer }} */ (cert) });
    });
    after(async function () {
      if (tlsCamera) await tlsCamera.close();
      if (cert && cert.dir) rmrf(cert.dir);
    });

    it('is refused by default (TLS), suggesting the self-signed option', async function () {
      const from = tlsCamera.requests.length;
      const err = assertFailure(await rejection(grab(source(tlsCamera.url('/basic/snap.jpg'), login('basic')))), 'TLS', camera.password);
      assert.match(err.message, /self-signed/);
      assert.strictEqual(tlsCamera.requests.length, from, 'nothing may be sent over an unverified connection');
    });

    it('is accepted with allowSelfSigned, login included', async function () {
      const s = source(tlsCamera.url('/digest/sha-256/snap.jpg'), { ...login('auto'), password: tlsCamera.password, allowSelfSigned: true });
      const img = await grab(s);
      assert.ok(img.equals(tlsCamera.served.at(-1)));
      assert.strictEqual(inspectImage(img).width, 16);
    });

    it('turning on allowSelfSigned for one camera does not turn off verification for others', async function () {
      const lax = source(tlsCamera.url('/snap.jpg'), { allowSelfSigned: true });
      await grab(lax);
      assertFailure(await rejection(grab(source(tlsCamera.url('/snap.jpg')))), 'TLS');
      // Node's global agent still verifies too.
      const plain = await rejection(
        new Promise((resolve, reject) => {
          https.get(tlsCamera.url('/snap.jpg'), (res) => resolve(res.resume())).on('error', reject);
        }),
      );
      assert.strictEqual(plain.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    });
  });
});

describe('HTTP camera settings', function () {
  const parse = (raw, credentials = {}) => parseHttpCameraSettings(raw, credentials);
  const problems = (raw, credentials) => {
    try {
      parse(raw, credentials);
    } catch (e) {
      return e.message;
    }
    throw new Error('expected the settings to be refused');
  };

  it('reads a snapshot URL with its login from the credentials', function () {
    const s = parse({ url: 'http://192.168.1.20/snapshot.jpg', auth: 'digest', allowSelfSigned: false, timeout: '5' }, { username: 'admin', password: ' secret ' });
    assert.deepStrictEqual(s, { url: 'http://192.168.1.20/snapshot.jpg', auth: 'digest', username: 'admin', password: ' secret ', allowSelfSigned: false, timeoutMs: 5000 });
  });

  it("takes 'auto' without a user name as no login, and defaults the timeout to 10 s", function () {
    const s = parse({ url: 'https://cam/snap.jpg', auth: 'auto', allowSelfSigned: true });
    assert.strictEqual(s.auth, 'none');
    assert.strictEqual(s.username, undefined);
    assert.strictEqual(s.password, undefined);
    assert.strictEqual(s.allowSelfSigned, true);
    assert.strictEqual(s.timeoutMs, 10000);
  });

  it('builds a Reolink URL from host, channel and https, keeping the login out of it', function () {
    const s = parse({ source: 'reolink', host: '192.168.1.30:8443', channel: 3, https: true, url: 'ignored' }, { username: 'admin', password: 'pw' });
    assert.match(s.url, /^https:\/\/192\.168\.1\.30:8443\/cgi-bin\/api\.cgi\?cmd=Snap&channel=3&rs=\w+$/);
    assert.deepStrictEqual([s.auth, s.username, s.password], ['none', 'admin', 'pw']);
    assert.match(parse({ preset: 'reolink', host: 'cam.local' }, { username: 'admin' }).url, /^http:\/\/cam\.local\/cgi-bin\/api\.cgi\?cmd=Snap&channel=0&/);
  });

  it('lists every problem of a snapshot URL in one error', function () {
    const m = problems({ url: 'http://admin:hunter2@cam/snap.jpg?pwd=hunter2', auth: 'basic', timeout: 0.5 }, { username: 'a:b' });
    assert.ok(!m.includes('hunter2'), m);
    assert.match(m, /must not carry the password \(pwd=…\).*pwd=\{password\}/);
    assert.match(m, /cannot contain ":"/);
    assert.match(m, /Timeout must be a number of seconds from 1 to 120 \(got "0\.5"\)/);
  });

  it('refuses other schemes, bad URLs, missing user names, unknown methods and long timeouts', function () {
    assert.match(problems({ url: 'ftp://cam/snap.jpg' }), /must start with http:\/\/ or https:\/\//);
    assert.match(problems({ url: 'not a url' }), /is not a valid URL/);
    assert.match(problems({ url: '' }), /^not configured: set the camera URL$/);
    assert.match(problems({ url: '${UPLINK_CAMERA_URL}' }), /^not configured: set the camera URL$/);
    assert.match(problems({ url: 'http://cam/x', auth: 'digest' }), /Digest authentication needs a user name/);
    assert.match(problems({ url: 'http://cam/x', auth: 'ntlm' }, { username: 'u' }), /Authentication must be one of none, basic, digest, auto/);
    assert.match(problems({ url: 'http://cam/x', timeout: 121 }), /from 1 to 120/);
    assert.match(problems({ url: 'http://cam/{password}/x' }, { password: 'p' }), /only appear in the query/);
  });

  it('refuses a Reolink host with a scheme or path, a channel out of 0-15, and no user name', function () {
    const m = problems({ source: 'reolink', host: 'http://192.168.1.30', channel: 16 });
    assert.match(m, /Host must be only the address, without http:\/\//);
    assert.match(m, /Channel must be a whole number from 0 to 15 \(got "16"\)/);
    assert.match(m, /needs a user name/);
    assert.match(problems({ source: 'reolink', host: '192.168.1.30/cgi-bin' }, { username: 'admin' }), /Host must be a name or address/);
    assert.match(problems({ source: 'reolink', host: '' }, { username: 'admin' }), /^not configured: set the camera address$/);
    assert.match(problems({ source: 'reolink', host: '', channel: 16 }, { username: 'admin' }), /Channel must be.*; Host is required/);
    assert.match(problems({ source: 'reolink', host: 'cam:99999' }, { username: 'admin' }), /not a valid host/);
  });

  it('accepts {username} and {password} placeholders in the query', function () {
    const s = parse({ url: 'http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr={username}&pwd={password}', auth: 'none' }, { username: 'u', password: 'p' });
    assert.strictEqual(s.password, 'p');
    assert.ok(s.url.includes('{password}'));
  });
});
