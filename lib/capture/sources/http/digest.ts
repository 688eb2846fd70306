import crypto from 'crypto';
import { CaptureError } from '../../types';
import type { HttpCameraSettings } from './settings';

// HTTP authentication of a camera: RFC 7235 challenges, RFC 7617 basic, RFC 7616 digest.

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** A digest login in use: one server nonce, counted up request by request until the camera calls it stale. */
interface DigestSession {
  realm: string;
  nonce: string;
  opaque?: string;
  /** The algorithm token as the camera wrote it (echoed back), and the hash it names. */
  algorithm?: string;
  hash: string;
  sess: boolean;
  qop?: 'auth' | 'auth-int';
  userhash: boolean;
  cnonce: string;
  nc: number;
}

/** What a request carried, to judge the 401 that may come back. */
export type Sent = { kind: 'none' } | { kind: 'basic' } | { kind: 'digest'; fresh: boolean };

/** Digest algorithms by strength; SHA-512-256 only where this Node's OpenSSL has it. */
const DIGEST_HASHES: Record<string, string> = { MD5: 'md5', 'SHA-256': 'sha256' };
if (crypto.getHashes().includes('sha512-256')) DIGEST_HASHES['SHA-512-256'] = 'sha512-256';
const DIGEST_PREFERENCE = ['SHA-512-256', 'SHA-256', 'MD5'];

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * The login of one camera source: what the next request carries (basic, or digest on the camera's current nonce), and
 * what a 401 means for the try after it. Kept across captures, so a known nonce or scheme saves a round trip.
 */
export class CameraLogin {
  private digest?: DigestSession;
  /** 'auto' met a Basic challenge: send Basic up front from now on, saving a round trip per capture. */
  private basicLearned = false;

  constructor(
    private readonly settings: Pick<HttpCameraSettings, 'auth' | 'username' | 'password'>,
    /** Camera-provided text as fit for a message (one line, short, without the password). */
    private readonly quote: (s: string) => string,
  ) {}

  /** The Authorization header for a GET of `url`, and what it carried. */
  authorization(url: URL): { header?: string; sent: Sent } {
    const { auth, username = '', password = '' } = this.settings;
    if (auth === 'none') return { sent: { kind: 'none' } };
    if (auth === 'basic' || (auth === 'auto' && this.basicLearned && !this.digest)) {
      return { header: `Basic ${basicCredentials(username, password)}`, sent: { kind: 'basic' } };
    }
    if (this.digest) {
      const fresh = this.digest.nc === 0;
      return { header: digestHeader(this.digest, username, password, 'GET', `${url.pathname}${url.search}`), sent: { kind: 'digest', fresh } };
    }
    return { sent: { kind: 'none' } };
  }

  /**
   * Takes up the camera's 401 challenge (from its WWW-Authenticate headers) for the next try, or throws AUTH when
   * another try cannot help. `said` is the status as the camera said it, for the message.
   */
  answerChallenge(rawHeaders: string[], said: string, sent: Sent): void {
    const { auth } = this.settings;
    const challenges = challengesOf(rawHeaders);
    const schemes = challenges.map((c) => c.scheme);
    const offered = schemes.length ? [...new Set(schemes)].map(schemeName).join(' or ') : 'no known';
    if (auth === 'none') {
      throw new CaptureError(
        `the camera asks for a user name and password (${said}, ${offered} authentication): choose an authentication method and fill them in`,
        'AUTH',
      );
    }
    const digest = bestDigest(challenges);
    if (sent.kind === 'basic') {
      this.basicLearned = false;
      if (auth === 'basic' && !schemes.includes('basic') && schemes.includes('digest')) {
        throw new CaptureError(`the camera refused the user name or password (${said}): it asks for digest authentication, choose digest or auto`, 'AUTH');
      }
      // A camera that switched from Basic to Digest (a firmware update) gets one digest answer.
      if (auth === 'auto' && digest) return this.startDigest(digest);
      throw loginRefused(said);
    }
    if (sent.kind === 'digest') {
      // An answer computed from a challenge of this capture that still fails is a wrong password, unless the nonce
      // merely went stale in between; a reused nonce may have expired however the camera says it.
      if (digest && (!sent.fresh || digest.params.stale?.toLowerCase() === 'true')) return this.startDigest(digest);
      this.digest = undefined;
      throw loginRefused(said);
    }
    if (digest) return this.startDigest(digest);
    if (auth === 'auto' && schemes.includes('basic')) {
      this.basicLearned = true;
      return;
    }
    const unsupported = challenges.find((c) => c.scheme === 'digest');
    if (unsupported) {
      const what = [`algorithm ${unsupported.params.algorithm ?? 'MD5'}`, unsupported.params.qop ? `qop ${unsupported.params.qop}` : ''].filter(Boolean).join(' and ');
      throw new CaptureError(`the camera asks for digest authentication with ${this.quote(what)}, which is not supported (MD5, SHA-256 and SHA-512-256 with qop auth are)`, 'AUTH');
    }
    if (auth === 'digest' && schemes.includes('basic')) {
      throw new CaptureError(`the camera asks for basic authentication, not digest (${said}): choose basic or auto`, 'AUTH');
    }
    throw new CaptureError(`the camera asks for ${offered} authentication (${said}), which is not supported`, 'AUTH');
  }

  private startDigest(c: Challenge): void {
    const alg = (c.params.algorithm ?? 'MD5').toUpperCase();
    const sess = alg.endsWith('-SESS');
    const qops = (c.params.qop ?? '').split(',').map((q) => q.trim().toLowerCase());
    this.digest = {
      realm: c.params.realm ?? '',
      nonce: c.params.nonce ?? '',
      opaque: c.params.opaque,
      algorithm: c.params.algorithm,
      hash: DIGEST_HASHES[sess ? alg.slice(0, -5) : alg],
      sess,
      qop: qops.includes('auth') ? 'auth' : qops.includes('auth-int') ? 'auth-int' : undefined,
      userhash: c.params.userhash?.toLowerCase() === 'true',
      cnonce: crypto.randomBytes(16).toString('hex'),
      nc: 0,
    };
  }

  /** That request never reached the camera (a stale kept-alive connection): its nc is counted again. */
  unsent(sent: Sent): void {
    if (sent.kind === 'digest' && this.digest) this.digest.nc--;
  }
}

/** The camera turned the login down: `said` is its status as it said it, `why` what else is known. */
export function loginRefused(said: string, why?: string): CaptureError {
  return new CaptureError(`the camera refused the user name or password (${said}${why ? `; ${why}` : ''})`, 'AUTH');
}

/** The user-pass of RFC 7617, base64: the Basic header's credentials. */
export function basicCredentials(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

function schemeName(s: string): string {
  return s === 'basic' ? 'Basic' : s === 'digest' ? 'Digest' : s;
}

/** Every challenge in every WWW-Authenticate header (a camera may send several, or several in one). */
function challengesOf(rawHeaders: string[]): Challenge[] {
  const out: Challenge[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === 'www-authenticate') out.push(...parseChallenges(rawHeaders[i + 1]));
  }
  return out;
}

/** `Basic realm="x", Digest realm="y", nonce="z", qop="auth,auth-int"` → challenges with lower-case names. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  const s = header;
  let i = 0;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i])) i++;
    return s.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < s.length) {
    ws();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (!name) {
      i++; // a stray character (a token68's "/"): skip it
      continue;
    }
    ws();
    if (s[i] === '=') {
      i++;
      ws();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        const start = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
        value = s.slice(start, i);
      }
      if (current) current.params[name.toLowerCase()] = value;
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
  }
  return out;
}

/** The strongest digest challenge this source can answer (qop auth, auth-int or none; a known algorithm). */
function bestDigest(challenges: Challenge[]): Challenge | undefined {
  let best: Challenge | undefined;
  let rank = Infinity;
  for (const c of challenges) {
    if (c.scheme !== 'digest' || !c.params.nonce) continue;
    const alg = (c.params.algorithm ?? 'MD5').toUpperCase().replace(/-SESS$/, '');
    const r = DIGEST_PREFERENCE.indexOf(alg);
    if (r < 0 || !DIGEST_HASHES[alg]) continue;
    if (c.params.qop !== undefined) {
      const qops = c.params.qop.split(',').map((q) => q.trim().toLowerCase());
      if (!qops.includes('auth') && !qops.includes('auth-int')) continue;
    }
    if (r < rank) {
      best = c;
      rank = r;
    }
  }
  return best;
}

/** The Authorization header for the next request on this nonce (nc counts up; the cnonce stays per nonce). */
function digestHeader(d: DigestSession, username: string, password: string, method: string, uri: string): string {
  const H = (v: string) => crypto.createHash(d.hash).update(v, 'utf8').digest('hex');
  d.nc++;
  const nc = d.nc.toString(16).padStart(8, '0');
  let ha1 = H(`${username}:${d.realm}:${password}`);
  if (d.sess) ha1 = H(`${ha1}:${d.nonce}:${d.cnonce}`);
  // A GET has an empty body, so auth-int's entity hash is the hash of nothing.
  const ha2 = d.qop === 'auth-int' ? H(`${method}:${uri}:${H('')}`) : H(`${method}:${uri}`);
  const response = d.qop ? H(`${ha1}:${d.nonce}:${nc}:${d.cnonce}:${d.qop}:${ha2}`) : H(`${ha1}:${d.nonce}:${ha2}`);
  const parts: string[] = [];
  if (d.userhash) parts.push(`username="${H(`${username}:${d.realm}`)}"`);
  else if (/^[\x20-\x7e]*$/.test(username)) parts.push(`username=${quoted(username)}`);
  else parts.push(`username*=UTF-8''${encodeURIComponent(username)}`);
  parts.push(`realm=${quoted(d.realm)}`, `nonce=${quoted(d.nonce)}`, `uri=${quoted(uri)}`);
  if (d.algorithm) parts.push(`algorithm=${d.algorithm}`);
  parts.push(`response="${response}"`);
  if (d.opaque !== undefined) parts.push(`opaque=${quoted(d.opaque)}`);
  if (d.qop) parts.push(`qop=${d.qop}`, `nc=${nc}`, `cnonce="${d.cnonce}"`);
  if (d.userhash) parts.push('userhash=true');
  return `Digest ${parts.join(', ')}`;
}

function quoted(v: string): string {
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
