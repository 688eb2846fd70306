'use strict';
// What `npm start` does to a shipped flow and a data folder before Node-RED starts (scripts/start/): which settings it
// binds to variables, the values unset variables get, and how it upgrades settings that fell back on a published key.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const variables = require('../scripts/start/variables');
const credentials = require('../scripts/start/credentials');
const { writeFileDurably } = require('../dist/lib/util/fs-durable');
const { tmpDir, rmrf } = require('./support/tmp');

const EXAMPLES = path.join(__dirname, '..', 'examples');
const shipped = (name) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, `${name}.json`), 'utf8'));

describe('npm start: variables and credentials', function () {
  it('binds a shipped flow\'s camera and target to variables, secrets only in its credentials', function () {
    const { flow, credentials: creds } = variables.bindFlow(shipped('capture-to-supabase'));
    const capture = flow.find((n) => n.type === 'uplink-capture');
    const cfg = flow.find((n) => n.type === 'uplink-supabase-config');
    assert.deepStrictEqual([capture.source, capture.url], ['auto', '${UPLINK_CAMERA_URL}']);
    assert.deepStrictEqual([cfg.url, cfg.bucket, cfg.table], ['${UPLINK_SUPABASE_URL}', '${UPLINK_SUPABASE_BUCKET}', '${UPLINK_SUPABASE_TABLE}']);
    assert.deepStrictEqual(creds[cfg.id], { key: '${UPLINK_SUPABASE_KEY}' });
    assert.deepStrictEqual(creds[capture.id], { username: '${UPLINK_CAMERA_USER}', password: '${UPLINK_CAMERA_PASSWORD}' });
    assert.ok(!JSON.stringify(flow).includes('UPLINK_SUPABASE_KEY'), 'the key is no field of the flow');
    // Nothing else of the flow changes.
    const before = shipped('capture-to-supabase');
    for (const node of flow.filter((n) => !['uplink-capture', 'uplink-supabase-config'].includes(n.type))) {
      assert.deepStrictEqual(node, before.find((n) => n.id === node.id));
    }
  });

  it('gives unset variables the shipped flow\'s own values, but never an address the user did not give', function () {
    const all = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')));
    // A shipped value a person could mistake for theirs: an example address in the Supabase node.
    const flow = shipped('capture-to-supabase').map((n) => (n.type === 'uplink-supabase-config' ? { ...n, url: 'https://your-project.supabase.co' } : n));
    const shippedValues = variables.shippedValues([...all, flow]);
    const bound = variables.bindFlow(flow);
    const read = variables.variablesRead(bound.flow, bound.credentials);
    const cfg = flow.find((n) => n.type === 'uplink-supabase-config');
    const values = variables.variableValues(read, {}, shippedValues);
    assert.strictEqual(values.UPLINK_SUPABASE_URL, '', 'no default address');
    assert.strictEqual(values.UPLINK_SUPABASE_BUCKET, cfg.bucket || '');
    assert.strictEqual(values.UPLINK_SUPABASE_KEY, '');
    assert.strictEqual(values.UPLINK_CAMERA_URL, '');
    const set = variables.variableValues(read, { UPLINK_SUPABASE_BUCKET: 'mine', UPLINK_SUPABASE_TABLE: '' }, shippedValues);
    assert.strictEqual(set.UPLINK_SUPABASE_BUCKET, 'mine');
    assert.strictEqual(set.UPLINK_SUPABASE_TABLE, cfg.table || '', 'an empty variable is an unset one');
  });

  it('logs in to an HTTP API the way the variables given say', function () {
    const bound = variables.bindFlow(shipped('capture-to-http'));
    const read = variables.variablesRead(bound.flow, bound.credentials);
    const auth = (env) => variables.variableValues(read, env, new Map()).UPLINK_HTTP_AUTH;
    assert.strictEqual(auth({ UPLINK_HTTP_TOKEN: 't' }), 'bearer');
    assert.strictEqual(auth({ UPLINK_HTTP_USER: 'u', UPLINK_HTTP_PASSWORD: 'p' }), 'basic');
    assert.strictEqual(auth({}), 'none');
    assert.strictEqual(auth({ UPLINK_HTTP_TOKEN: 't', UPLINK_HTTP_AUTH: 'none' }), 'none');
  });

  it('upgrades settings an earlier npm start wrote, keeping what a person added', function () {
    const old = `module.exports = {
  flowFile: 'flows.json',
  // Credentials are encrypted with this key; set UPLINK_CREDENTIAL_SECRET to your own before storing real secrets.
  credentialSecret: process.env.UPLINK_CREDENTIAL_SECRET || 'uplink-demo-change-me',
  uiHost: process.env.UPLINK_HOST || '127.0.0.1',
  httpNodeAuth: { user: 'me', pass: '$2b$08$abc' },
};
`;
    const upgraded = credentials.upgradeSettings(old);
    assert.ok(!upgraded.includes('uplink-demo-change-me'));
    assert.match(upgraded, /httpNodeAuth: \{ user: 'me', pass: '\$2b\$08\$abc' \}/);
    assert.match(upgraded, /telemetry: \{ enabled: false \}/);
    assert.strictEqual(credentials.upgradeSettings(upgraded), null, 'once');
    assert.strictEqual(credentials.upgradeSettings("module.exports = { credentialSecret: 'mine' };\n"), null, 'a file of the user\'s own');
    assert.strictEqual(credentials.upgradeSettings(credentials.settingsText()), null);
  });

  describe('the key and flows_cred.json', function () {
    let dir;
    beforeEach(() => (dir = tmpDir('uplink-start-key-')));
    afterEach(() => rmrf(dir));

    it('makes one random key per data folder, private, and keeps it', async function () {
      const file = path.join(dir, 'credential-secret');
      const first = await credentials.ensureKeyFile(file, { writeFileDurably });
      assert.strictEqual(first.made, true);
      assert.match(first.key, /^[0-9a-f]{64}$/);
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600);
      fs.chmodSync(file, 0o644);
      const again = await credentials.ensureKeyFile(file, { writeFileDurably });
      assert.deepStrictEqual(again, { key: first.key, made: false });
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600, 'made private again');
      const other = await credentials.ensureKeyFile(path.join(dir, 'other'), { writeFileDurably });
      assert.notStrictEqual(other.key, first.key);
    });

    it('re-encrypts credentials found under another known key, and says when none opens them', async function () {
      const file = path.join(dir, 'flows_cred.json');
      fs.writeFileSync(file, credentials.encrypt('uplink-demo-change-me', { a: { key: 's' } }));
      const r = await credentials.rekey(file, 'new-key', [{ name: 'old', key: 'uplink-demo-change-me' }], { writeFileDurably });
      assert.deepStrictEqual(r, { state: 'rekeyed', from: 'old' });
      assert.deepStrictEqual(credentials.decrypt('new-key', fs.readFileSync(file, 'utf8')), { a: { key: 's' } });
      assert.deepStrictEqual(await credentials.rekey(file, 'new-key', [], { writeFileDurably }), { state: 'readable' });
      assert.deepStrictEqual(await credentials.rekey(file, 'third', [{ name: 'old', key: 'uplink-demo-change-me' }], { writeFileDurably }), { state: 'unreadable' });
      assert.deepStrictEqual(await credentials.rekey(path.join(dir, 'none.json'), 'k', [], { writeFileDurably }), { state: 'none' });
    });
  });
});
