import { parseStatusList, SettingsReader, text } from '../../util/settings';

export interface HttpSettings {
  /** http(s) URL; may contain `{key}` in its path (a PUT to a WebDAV folder or a bucket-like API). */
  url: string;
  method: 'POST' | 'PUT';
  mode: 'multipart' | 'raw';
  /** The multipart field that carries the file. */
  fieldName: string;
  /**
   * Multipart text fields sent before the file; values may use {key} {camera} {capturedAt} {itemId} {sha256} {bytes}
   * {durationS} {partial}, and {metadata.<name>} for the capture's metadata (session, court…).
   */
  extraFields: Record<string, string>;
  headers: Record<string, string>;
  auth: 'none' | 'bearer' | 'basic';
  token?: string;
  username?: string;
  password?: string;
  successCodes: number[];
  timeoutMs: number;
  concurrency: number;
}

export const FIELD_PLACEHOLDERS = ['key', 'camera', 'capturedAt', 'itemId', 'sha256', 'bytes', 'durationS', 'partial'] as const;
/** A placeholder in an extra field: a known name, or metadata.<name>. */
export const FIELD_PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)?)\}/g;
const knownPlaceholder = (p: string) => (FIELD_PLACEHOLDERS as readonly string[]).includes(p) || /^metadata\.[A-Za-z_][A-Za-z0-9_-]*$/.test(p);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers the uploader sets itself (from the item, or for framing); a second copy from the user would contradict it. */
const RESERVED_HEADERS: Record<string, string> = {
  'content-type': 'it comes from the item (raw) or is multipart/form-data',
  'content-length': 'the uploader computes it',
  'transfer-encoding': 'the uploader sends an exact Content-Length',
  host: 'it comes from the URL',
  connection: 'the uploader keeps connections alive itself',
  'idempotency-key': 'the uploader sets it to the object key',
  'x-uplink-key': 'the uploader sets it',
  'x-uplink-sha256': 'the uploader sets it',
};

type Raw = Record<string, unknown>;
const str = text;

/**
 * Reads the HTTP target's settings and credentials once, at deploy, listing every problem. Secrets (token, user name,
 * password) come only from `credentials`, so they never sit in the flow file.
 */
export function parseHttpSettings(raw: Raw, credentials: Raw): HttpSettings {
  const r = new SettingsReader(raw);
  const errors = r.errors;

  const url = r.required('url', 'URL', 'URL is required');
  if (url !== '') {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url.replace(/\{key\}/g, 'uplink-key'));
    } catch {
      errors.push(`URL "${url}" is not a valid URL`);
    }
    if (parsed) {
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') errors.push(`URL must start with http:// or https:// (got "${parsed.protocol}")`);
      if (parsed.username || parsed.password) errors.push('URL must not contain a user name or password: choose basic authentication and put them in its fields');
      const outsidePath = url.includes('{key}') && (parsed.host.includes('uplink-key') || parsed.search.includes('uplink-key') || parsed.hash.includes('uplink-key'));
      if (outsidePath) errors.push('{key} may only appear in the path of the URL');
      const unknown = [...url.matchAll(/\{([A-Za-z][A-Za-z0-9]*)\}/g)].map((m) => m[1]).filter((p) => p !== 'key');
      if (unknown.length) errors.push(`URL may only use the placeholder {key} (found ${unknown.map((u) => `{${u}}`).join(', ')})`);
    }
  }

  const method = (str(raw.method) || 'POST').toUpperCase();
  if (method !== 'POST' && method !== 'PUT') errors.push(`Method must be POST or PUT (got "${method}")`);
  const mode = str(raw.mode) || 'multipart';
  if (mode !== 'multipart' && mode !== 'raw') errors.push(`Body must be multipart or raw (got "${mode}")`);
  const fieldName = str(raw.fieldName) || 'file';
  if (/[\r\n]/.test(fieldName)) errors.push('File field name must be one line');

  const stringMap = (key: string, label: string): Record<string, string> => {
    const v = raw[key];
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) return {};
    let obj: unknown = v;
    if (typeof v === 'string') {
      try {
        obj = JSON.parse(v);
      } catch (e) {
        errors.push(`${label} must be a JSON object like {"name": "value"} (${(e as Error).message})`);
        return {};
      }
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      errors.push(`${label} must be a JSON object like {"name": "value"}`);
      return {};
    }
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(obj)) {
      if (typeof val !== 'string') errors.push(`${label}: the value of "${k}" must be a string (got ${val === null ? 'null' : typeof val})`);
      else out[k] = val;
    }
    return out;
  };

  const headers = stringMap('headers', 'Headers');
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) errors.push(`Header name "${name}" is not valid (letters, digits and !#$%&'*+-.^_\`|~ only)`);
    else if (lower === 'authorization' || lower === 'proxy-authorization') {
      errors.push(`Do not put ${name} in the headers: choose bearer or basic authentication, which keeps the secret in the credentials`);
    } else if (RESERVED_HEADERS[lower]) errors.push(`Header ${name} cannot be set: ${RESERVED_HEADERS[lower]}`);
    else if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) errors.push(`Header ${name} has a character a header value cannot carry (a line break or control character)`);
  }

  const extraFields = stringMap('extraFields', 'Extra fields');
  for (const [name, value] of Object.entries(extraFields)) {
    if (name === '') errors.push('Extra fields: a field name is empty');
    if (/[\r\n]/.test(name)) errors.push(`Extra fields: the name "${name}" must be one line`);
    if (mode === 'multipart' && name === fieldName) errors.push(`Extra fields: "${name}" is the file's field name`);
    const unknown = [...value.matchAll(FIELD_PLACEHOLDER)].map((m) => m[1]).filter((p) => !knownPlaceholder(p));
    if (unknown.length) {
      errors.push(`Extra fields: "${name}" uses unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `{${u}}`).join(', ')} (known: ${FIELD_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')} {metadata.<name>})`);
    }
  }

  const auth = str(raw.auth) || 'none';
  const token = str(credentials.token);
  const username = str(credentials.username);
  // A password may legitimately start or end with a space: keep it as typed.
  const password = typeof credentials.password === 'string' ? credentials.password : '';
  if (auth === 'bearer' && token === '') r.need('token', 'Bearer authentication needs a token');
  if (auth === 'bearer' && /[^\x21-\x7e]/.test(token)) errors.push('The token must be printable ASCII without spaces');
  if (auth === 'basic' && username === '') r.need('user name', 'Basic authentication needs a user name');
  if (auth === 'basic' && username.includes(':')) errors.push('A basic-authentication user name cannot contain ":"');
  if (auth !== 'none' && auth !== 'bearer' && auth !== 'basic') errors.push(`Authentication must be none, bearer or basic (got "${auth}")`);

  let successCodes = [...Array(100)].map((_, i) => 200 + i);
  const codesText = Array.isArray(raw.successCodes) ? raw.successCodes.join(',') : str(raw.successCodes);
  if (codesText !== '') {
    try {
      const list = parseStatusList(codesText);
      if (list.length) successCodes = list;
    } catch (e) {
      errors.push(`Success codes: ${(e as Error).message}`);
    }
  }

  const timeoutS = r.num('timeout', 'Timeout', 60, 1, 3600);
  const concurrency = r.num('concurrency', 'Concurrency', 4, 1, 64, { integer: true });

  r.check();
  return {
    url,
    method: method as HttpSettings['method'],
    mode: mode as HttpSettings['mode'],
    fieldName,
    extraFields,
    headers,
    auth: auth as HttpSettings['auth'],
    token: auth === 'bearer' ? token : undefined,
    username: auth === 'basic' ? username : undefined,
    password: auth === 'basic' ? password : undefined,
    successCodes,
    timeoutMs: Math.round(timeoutS * 1000),
    concurrency,
  };
}
