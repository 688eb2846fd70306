'use strict';
// The environment variables `npm start` gives a shipped flow, where each one goes, and what start prints about them.
//
// When a shipped flow is copied into the user folder (the first start), the settings below are set to `${NAME}` in
// its nodes, by node type, so Node-RED reads the variable at every start: in a field of the flow file, or in the
// node's credentials (flows_cred.json, encrypted) for a secret, which then holds only the reference, never the value.
// A field changed in the editor no longer names the variable, and the change wins. The flows in examples/ stay as a
// user imports them from the editor's menu.
//
// A variable left unset gets the value the shipped flow had in that field (found by node id in examples/), else a
// fallback below, else nothing: Node-RED keeps a `${NAME}` it cannot resolve as it is, so each is always given. An
// address is never taken from a shipped flow: what the flow reaches out to is only ever what the user gave.

const CAMERA_LOGIN = { username: 'UPLINK_CAMERA_USER', password: 'UPLINK_CAMERA_PASSWORD' };

/** Where each variable goes: node type, which nodes of it, fields set to `${NAME}`, and credentials. */
const BINDINGS = [
  // A test-pattern camera becomes "the URL when set, else the test pattern".
  { type: 'uplink-capture', when: (n) => ['test-pattern', 'auto', '', undefined].includes(n.source), set: { source: 'auto' }, fields: { url: 'UPLINK_CAMERA_URL' }, credentials: CAMERA_LOGIN },
  { type: 'uplink-capture', when: (n) => n.source === 'ffmpeg', fields: { input: 'UPLINK_CAMERA_URL' }, credentials: CAMERA_LOGIN },
  { type: 'uplink-recorder', fields: { input: 'UPLINK_CAMERA_URL' }, credentials: CAMERA_LOGIN },
  { type: 'uplink-s3-config', fields: { endpoint: 'UPLINK_S3_ENDPOINT', region: 'UPLINK_S3_REGION', bucket: 'UPLINK_S3_BUCKET', forcePathStyle: 'UPLINK_S3_PATH_STYLE' } },
  { type: 'uplink-supabase-config', fields: { url: 'UPLINK_SUPABASE_URL', bucket: 'UPLINK_SUPABASE_BUCKET', table: 'UPLINK_SUPABASE_TABLE' }, credentials: { key: 'UPLINK_SUPABASE_KEY' } },
  {
    type: 'uplink-http-config',
    fields: { url: 'UPLINK_HTTP_URL', auth: 'UPLINK_HTTP_AUTH' },
    credentials: { token: 'UPLINK_HTTP_TOKEN', username: 'UPLINK_HTTP_USER', password: 'UPLINK_HTTP_PASSWORD' },
  },
];

/** Variables that name a machine to reach: unset is empty, whatever a shipped flow shows as an example. */
const ADDRESSES = new Set(['UPLINK_CAMERA_URL', 'UPLINK_S3_ENDPOINT', 'UPLINK_SUPABASE_URL', 'UPLINK_HTTP_URL']);

/** Values for variables the shipped flow gives none (capture-to-cloud names the S3 ones in its own fields). */
const FALLBACKS = { UPLINK_S3_REGION: 'us-east-1', UPLINK_S3_BUCKET: 'uplink', UPLINK_CAPTURE_INTERVAL_S: '10' };

const REF = /^\$\{(UPLINK_[A-Z0-9_]+)\}$/;
const ref = (name) => '${' + name + '}';

function bindingsFor(node) {
  return BINDINGS.filter((b) => b.type === node.type && (!b.when || b.when(node)));
}

/**
 * The shipped `flow` as npm start copies it: bound fields set to `${NAME}`, and the credentials (references only) to
 * add for its nodes.
 */
function bindFlow(flow) {
  const credentials = {};
  const nodes = flow.map((node) => {
    const bound = bindingsFor(node);
    if (bound.length === 0) return node;
    const out = { ...node };
    for (const b of bound) {
      Object.assign(out, b.set);
      for (const [field, name] of Object.entries(b.fields)) out[field] = ref(name);
      if (b.credentials) credentials[node.id] = Object.fromEntries(Object.entries(b.credentials).map(([field, name]) => [field, ref(name)]));
    }
    return out;
  });
  return { flow: nodes, credentials };
}

/** Every UPLINK_ variable the nodes of `flow` (and their `credentials`) read, with the nodes that read it. */
function variablesRead(flow, credentials = {}) {
  const read = new Map();
  const note = (name, node) => {
    if (!read.has(name)) read.set(name, []);
    read.get(name).push(node);
  };
  const scan = (value, node) => {
    if (typeof value === 'string') {
      const m = REF.exec(value);
      if (m) note(m[1], node);
    } else if (value && typeof value === 'object') for (const v of Object.values(value)) scan(v, node);
  };
  for (const node of flow) {
    scan(node, node);
    if (credentials[node.id]) scan(credentials[node.id], node);
  }
  return read;
}

/** What each bound field held in the shipped flows, by node id and field: the defaults of their variables. */
function shippedValues(examples) {
  const values = new Map();
  for (const flow of examples) {
    for (const node of flow) {
      for (const b of BINDINGS.filter((x) => x.type === node.type)) {
        for (const field of Object.keys(b.fields)) {
          const v = node[field];
          if (typeof v === 'string' && v.trim() !== '' && !REF.test(v.trim())) values.set(`${node.id} ${field}`, v);
        }
      }
    }
  }
  return values;
}

/**
 * The environment Node-RED gets: every variable the flow reads, set (an unset or empty one to its default, or ''), so
 * that no `${NAME}` is left in place.
 */
function variableValues(read, env, shipped) {
  const out = {};
  for (const [name, nodes] of read) {
    if (env[name]) {
      out[name] = env[name];
      continue;
    }
    let value;
    for (const node of ADDRESSES.has(name) ? [] : nodes) {
      for (const [field, v] of Object.entries(node)) {
        if (v === ref(name) && shipped.has(`${node.id} ${field}`)) value ??= shipped.get(`${node.id} ${field}`);
      }
    }
    out[name] = value ?? FALLBACKS[name] ?? '';
  }
  // How the HTTP target logs in follows from what is given, unless it is said.
  if (read.has('UPLINK_HTTP_AUTH') && !env.UPLINK_HTTP_AUTH) {
    out.UPLINK_HTTP_AUTH = env.UPLINK_HTTP_TOKEN ? 'bearer' : env.UPLINK_HTTP_USER ? 'basic' : 'none';
  }
  return out;
}

/** Every variable a flow may read under npm start. */
function names() {
  const all = new Set(['UPLINK_CAPTURE_INTERVAL_S']);
  for (const b of BINDINGS) for (const name of [...Object.values(b.fields), ...Object.values(b.credentials ?? {})]) all.add(name);
  return [...all];
}

module.exports = { BINDINGS, FALLBACKS, bindFlow, variablesRead, shippedValues, variableValues, names };
