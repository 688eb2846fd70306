import crypto from 'crypto';
import { SettingsReader, text } from '../../../util/settings';
import { chooseLogin, maskUrlLogin, splitUrlLogin, urlLoginHint } from '../../../util/url-login';

export interface HttpCameraSettings {
  /**
   * The snapshot URL. Never carries a secret: a user name or password is in `username`/`password` (a login typed into
   * the URL is taken out of it), added at request time (an Authorization header, Reolink's `user`/`password` query
   * parameters, or a `{username}`/`{password}` placeholder in the query for cameras that only take them there).
   */
  url: string;
  auth: 'none' | 'basic' | 'digest' | 'auto';
  username?: string;
  password?: string;
  /** Accept a certificate that does not verify (the self-signed one most cameras make for themselves). */
  allowSelfSigned: boolean;
  timeoutMs: number;
}

const PASSWORD_PARAMS = /^(password|passwd|pwd|pass)$/i;
/** Where the URL takes the login in its query, for cameras that only take it there. */
export const PLACEHOLDER = /\{(username|password)\}/g;

/** Reolink's snapshot command; `user` and `password` are appended by the source when it asks, never stored here. */
export function reolinkUrl(host: string, channel: number, https: boolean): string {
  return `${https ? 'https' : 'http'}://${host}/cgi-bin/api.cgi?cmd=Snap&channel=${channel}&rs=${randomRs()}`;
}

/**
 * Reads an HTTP camera's settings once, at deploy, listing every problem. `raw.source` (or `raw.preset`) 'reolink'
 * builds the URL from host, channel and https; anything else takes `raw.url`. The login comes from `credentials`, or,
 * when they hold none, from the URL (`http://admin:pass@host/snap.jpg`), which is kept without it.
 */
export function parseHttpCameraSettings(raw: Record<string, unknown>, credentials: Record<string, unknown>): HttpCameraSettings {
  const r = new SettingsReader(raw);
  const reolink = r.str('source') === 'reolink' || r.str('preset') === 'reolink';
  const typed = reolink ? { url: '' } : splitUrlLogin(r.str('url'));
  const { username, password } = chooseLogin(
    // A password may legitimately start or end with a space: keep it as typed.
    { username: text(credentials.username), password: typeof credentials.password === 'string' ? credentials.password : '' },
    typed,
  );

  let url = '';
  let auth: HttpCameraSettings['auth'] = 'none';
  if (reolink) {
    const host = r.required('host', 'camera address', "Host is required (the camera's address, like 192.168.1.30 or 192.168.1.30:8080)");
    const channel = r.num('channel', 'Channel', 0, 0, 15, { integer: true });
    const secure = raw.https === true || raw.https === 'true';
    if (host === '') {
      /* not configured yet: check() says so */
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) r.error(`Host must be only the address, without ${host.split('//')[0]}// (got "${host}")`);
    else if (/[\s/?#@\\]/.test(host)) r.error(`Host must be a name or address with an optional :port, nothing else (got "${host}")`);
    else {
      try {
        const u = new URL(`http://${host}/`);
        if (!u.hostname) throw new Error('no host');
      } catch {
        r.error(`Host "${host}" is not a valid host name or address`);
      }
    }
    if (username === '') r.need('user name', 'A Reolink camera needs a user name (admin, or a user made for snapshots)');
    url = reolinkUrl(host, channel, secure);
  } else {
    url = typed.url;
    if (url === '') r.need('camera URL', "URL is required (the camera's snapshot address, like http://192.168.1.20/snapshot.jpg)");
    else {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url.replace(PLACEHOLDER, 'x'));
      } catch {
        r.error(`URL "${maskUrlLogin(r.str('url'))}" is not a valid URL${urlLoginHint(r.str('url'))}`);
      }
      if (parsed) {
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') r.error(`URL must start with http:// or https:// (got "${parsed.protocol}")`);
        const q = url.indexOf('?');
        const firstPlaceholder = url.search(PLACEHOLDER);
        if (firstPlaceholder >= 0 && (q < 0 || firstPlaceholder < q)) r.error('{username} and {password} may only appear in the query of the URL (after "?")');
        const withoutHash = url.split('#')[0];
        const query = withoutHash.includes('?') ? withoutHash.slice(withoutHash.indexOf('?') + 1) : '';
        for (const [k, v] of new URLSearchParams(query)) {
          if (PASSWORD_PARAMS.test(k) && v !== '{password}') {
            r.error(`URL must not carry the password (${k}=…): put it in the password field and write ${k}={password} in the URL`);
          }
        }
        if (url.includes('{password}') && username === '' && password === '') r.error('The URL uses {password}, but no password is set');
      }
    }
    auth = r.choice('auth', 'Authentication', ['none', 'basic', 'digest', 'auto'] as const, 'auto');
    // "As the camera asks" without a user name is a camera that asks for nothing; basic or digest need one.
    if (auth === 'auto' && username === '') auth = 'none';
    if ((auth === 'basic' || auth === 'digest') && username === '') r.error(`${auth === 'basic' ? 'Basic' : 'Digest'} authentication needs a user name`);
    if ((auth === 'basic' || auth === 'auto') && username.includes(':')) r.error('A user name for basic authentication cannot contain ":"');
  }
  const timeoutS = r.num('timeout', 'Timeout', 10, 1, 120, { unit: 'seconds' });
  r.check();
  const keepLogin = reolink || auth !== 'none' || /\{(username|password)\}/.test(url);
  return {
    url,
    auth,
    username: keepLogin ? username : undefined,
    password: keepLogin ? password : undefined,
    allowSelfSigned: raw.allowSelfSigned === true || raw.allowSelfSigned === 'true',
    timeoutMs: Math.round(timeoutS * 1000),
  };
}

/** Reolink's random cache-buster (`rs`), fresh for every request. */
export function randomRs(): string {
  return crypto.randomBytes(8).toString('hex');
}
