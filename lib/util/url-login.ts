/**
 * A login inside a URL: `http://admin:pass@192.168.1.20/snapshot.jpg`, the way most people paste a camera's address.
 * It is taken out at deploy, so that the URL can be shown, logged and kept in a flow file, and the login goes where
 * logins belong (the node's credentials, or a request's Authorization header).
 */

export interface UrlLogin {
  /** The URL without its login, otherwise exactly as it was given. */
  url: string;
  /** Decoded (`%40` is `@`); undefined when the URL carries none. */
  username?: string;
  password?: string;
}

/** `scheme://` and the authority after it, which ends at the first `/`, `?` or `#` (a login with those is encoded). */
const AUTHORITY = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i;

/**
 * Splits `user:password@` off a URL. The login ends at the last `@` of the authority and the user name at its first
 * `:`, as URL parsers read them, so an `@` or a `:` typed as it is in a password survives; `/ ? # %` must be
 * percent-encoded (`%2F %3F %23 %25`), as in any URL. A URL without a login comes back as it was.
 */
export function splitUrlLogin(input: string): UrlLogin {
  const m = AUTHORITY.exec(input);
  if (!m) return { url: input };
  const authority = m[2];
  const at = authority.lastIndexOf('@');
  if (at < 0) return { url: input };
  const login = authority.slice(0, at);
  const colon = login.indexOf(':');
  const url = m[1] + authority.slice(at + 1) + input.slice(m[0].length);
  if (colon < 0) return { url, username: decode(login) };
  return { url, username: decode(login.slice(0, colon)), password: decode(login.slice(colon + 1)) };
}

/** Percent-decoding that keeps a lone `%` (typed in a password, not encoded) as it is. */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A login as a node uses it: its own credentials when it has any (a user name or a password), otherwise the one
 * found in its URL. Mixing the two (the user name of one, the password of the other) would send a login nobody typed.
 */
export function chooseLogin(own: { username: string; password: string }, fromUrl: UrlLogin): { username: string; password: string } {
  if (own.username !== '' || own.password !== '') return own;
  return { username: fromUrl.username ?? '', password: fromUrl.password ?? '' };
}

/** What to add to "is not a valid URL" when the text has a login: one typed with `/ ? #` in it ends the address early. */
export function urlLoginHint(input: string): string {
  return input.includes('@') ? ' (a password with / ? # or % in it is written %2F %3F %23 %25 in a URL, or typed into the Password field)' : '';
}

/**
 * Every URL in a text (a log line, an error, ffmpeg's output) with the password of its login replaced by `***`: from
 * `scheme://` to the last `@` before the next space or quote, so a password typed with a raw `@`, `/` or `#` in it is
 * hidden whole. The user name stays, to say which login was used.
 */
export function maskUrlLogin(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s"'<>]*)@/gi, (whole, scheme: string, login: string) => {
    const colon = login.indexOf(':');
    if (colon < 0) return whole;
    return `${scheme}${login.slice(0, colon)}:***@`;
  });
}
