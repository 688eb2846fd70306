'use strict';
// Node-RED's credentials file and the key it is encrypted with, for `npm start`.
//
// flows_cred.json is what Node-RED 4.1's runtime reads (@node-red/runtime/lib/nodes/credentials.js): the JSON of
// every node's credentials, {"<node id>": {"<name>": "<value>"}}, encrypted with AES-256-CTR under the SHA-256 of
// the settings' credentialSecret, written as {"$": "<16-byte IV in hex><cipher text in base64>"}. A credentialSecret
// of false means the file is that JSON in the clear.
//
// The key is a random 32-byte hex string made on the first start, kept in <data folder>/credential-secret (mode 0600,
// outside Node-RED's user folder, so a copy of that folder or of flows_cred.json alone decrypts nothing), unless
// UPLINK_CREDENTIAL_SECRET is set. Earlier versions of npm start fell back on a key printed in this repository;
// settings written by them are upgraded, and their credentials encrypted again under the new key.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ALGORITHM = 'aes-256-ctr';
/** The key every earlier `npm start` used when UPLINK_CREDENTIAL_SECRET was not set: published, so no key at all. */
const PUBLISHED_KEY = 'uplink-demo-change-me';
/** The credentialSecret line of settings written by earlier versions of npm start. */
const OLD_KEY_LINE = /^(\s*)\/\/ Credentials are encrypted with this key;[^\n]*\n(\s*)credentialSecret: process\.env\.UPLINK_CREDENTIAL_SECRET \|\| 'uplink-demo-change-me',[^\n]*\n/m;

function keyOf(secret) {
  return crypto.createHash('sha256').update(secret).digest();
}

/** The file's text for `credentials` under `secret` (false: in the clear, as Node-RED then writes it). */
function encrypt(secret, credentials) {
  const json = JSON.stringify(credentials);
  if (secret === false) return json;
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv(ALGORITHM, keyOf(secret), iv);
  return JSON.stringify({ $: iv.toString('hex') + cipher.update(json, 'utf8', 'base64') + cipher.final('base64') });
}

/** The credentials in a file's text; throws when `secret` is not its key (the result is not JSON). */
function decrypt(secret, text) {
  const stored = JSON.parse(text);
  if (!stored || typeof stored.$ !== 'string' || Object.keys(stored).length !== 1) return stored;
  if (secret === false) throw new Error('the file is encrypted, and the settings say it is not');
  const decipher = crypto.createDecipheriv(ALGORITHM, keyOf(secret), Buffer.from(stored.$.slice(0, 32), 'hex'));
  const json = decipher.update(stored.$.slice(32), 'base64', 'utf8') + decipher.final('utf8');
  return JSON.parse(json);
}

/**
 * The key npm start made for this data folder, made now (random, mode 0600, written durably) when there is none. A
 * key file others can read is made private again.
 */
async function ensureKeyFile(file, { writeFileDurably }) {
  let key = '';
  try {
    key = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if (e.code !== 'ENOENT') throw new Error(`cannot read the credential key ${file}: ${e.code || e.message}`);
  }
  if (key !== '') {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    return { key, made: false };
  }
  key = crypto.randomBytes(32).toString('hex');
  await writeFileDurably(file, `${key}\n`, { mode: 0o600 });
  return { key, made: true };
}

/**
 * Settings written by an earlier npm start, with the published key as their fallback: that line now falls back on
 * the key file instead, and the update-notification question is answered. Anything else in the file (a person may
 * have added to it) stays as it is. Null when the file is not such a one.
 */
function upgradeSettings(text) {
  if (!OLD_KEY_LINE.test(text)) return null;
  let out = text.replace(OLD_KEY_LINE, (_, a, b) => `${a}${KEY_COMMENT}\n${b}${KEY_LINE}\n`);
  if (!/\btelemetry\s*:/.test(out)) out = out.replace(/^(\s*)credentialSecret:.*\n/m, (line, indent) => `${line}${indent}${TELEMETRY_LINE}\n`);
  return out;
}

const KEY_COMMENT = '// flows_cred.json is encrypted with UPLINK_CREDENTIAL_SECRET, else with the random key npm start made (../credential-secret).';
const KEY_LINE = "credentialSecret: process.env.UPLINK_CREDENTIAL_SECRET || require('fs').readFileSync(require('path').join(__dirname, '..', 'credential-secret'), 'utf8').trim(),";
// The editor asks "Enable update notifications?" (it sends anonymous data to nodered.org) on the first open, over the
// flow: answered no here; the editor's User Settings > Update Notifications can still turn it on, and then wins.
const TELEMETRY_LINE = 'telemetry: { enabled: false },';

/** The settings file npm start writes when there is none. */
function settingsText() {
  return `module.exports = {
  flowFile: 'flows.json',
  ${KEY_COMMENT}
  ${KEY_LINE}
  uiHost: process.env.UPLINK_HOST || '127.0.0.1',
  logging: { console: { level: 'info', metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false }, tours: false },
  // Answers the editor's "Enable update notifications?" (which sends anonymous data to nodered.org): no. Turn it on
  // in the editor (User Settings > Update Notifications), which then wins over this.
  ${TELEMETRY_LINE}
};
`;
}

/**
 * Makes flows_cred.json readable under `secret`, the key Node-RED is about to use: when it is encrypted under another
 * key npm start knows of (`others`: the key file, UPLINK_CREDENTIAL_SECRET, the published key of earlier versions),
 * it is decrypted and written again under `secret`. Returns what was done, for the log.
 */
async function rekey(file, secret, others, { writeFileDurably }) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return { state: 'none' };
    throw e;
  }
  try {
    decrypt(secret, text);
    return { state: 'readable' };
  } catch {
    /* try the others */
  }
  for (const other of others) {
    if (other === undefined || other === secret) continue;
    let credentials;
    try {
      credentials = decrypt(other.key, text);
    } catch {
      continue;
    }
    await writeFileDurably(file, encrypt(secret, credentials), { mode: 0o600 });
    return { state: 'rekeyed', from: other.name };
  }
  return { state: 'unreadable' };
}

/** Adds `credentials` to flows_cred.json (made when missing), under `secret`; false when the file cannot be read. */
async function addCredentials(file, secret, credentials, { writeFileDurably }) {
  let existing = {};
  try {
    existing = decrypt(secret, fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code !== 'ENOENT') return false;
  }
  await writeFileDurably(file, encrypt(secret, { ...existing, ...credentials }), { mode: 0o600 });
  return true;
}

/** Node-RED's credentials file for a flow file: flows.json -> flows_cred.json. */
function credentialsFileOf(flowFile) {
  const ext = path.extname(flowFile);
  return path.join(path.dirname(flowFile), `${path.basename(flowFile, ext)}_cred${ext}`);
}

module.exports = { encrypt, decrypt, ensureKeyFile, upgradeSettings, settingsText, rekey, addCredentials, credentialsFileOf, PUBLISHED_KEY };
