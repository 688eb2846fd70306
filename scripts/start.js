'use strict';
// Starts Node-RED with Uplink installed and the capture-to-cloud pipeline deployed, on embedded defaults: no camera
// (the test pattern) and no cloud account (a local S3-compatible store started here, unless UPLINK_S3_ENDPOINT is set).
//
//   UPLINK_PORT                Node-RED port (default 1880)
//   UPLINK_DATA_DIR            Node-RED's user folder, images, queue database, the credential key and the embedded
//                              store (default ./.uplink-data)
//   UPLINK_FLOW                which shipped flow to start with: a file name in examples/ without .json (default
//                              capture-to-cloud; queue-demo is offline-queue-demo)
//   UPLINK_HOST                the address Node-RED listens on (default 127.0.0.1: only this machine)
//   UPLINK_CREDENTIAL_SECRET   the key of flows_cred.json (default: a random key made on the first start, in
//                              <data folder>/credential-secret)
//   and the flow's own: UPLINK_CAMERA_URL, UPLINK_CAMERA_USER, UPLINK_CAMERA_PASSWORD, UPLINK_CAPTURE_INTERVAL_S,
//   UPLINK_S3_*, UPLINK_SUPABASE_*, UPLINK_HTTP_* (start/variables.js says where each goes; the README lists them).
//
// The flow is copied only when the user folder has none, so changes made in the editor survive a restart. It is read
// from examples/, the folder the editor's Import > Examples shows, so what starts here is what users import, with the
// settings above bound to the variables. Only what the running flow reads is printed, and the embedded store starts
// only for a flow that uses it.
//
// Every file written here goes through a temp file, fsync, rename and a sync of its folder (dist/lib/util/fs-durable):
// a power cut within ext4's half-minute write-back after the first start would otherwise leave flows.json and
// settings.js empty, and Node-RED would run an empty settings file (its own credential key, listening on every
// interface) with an empty flow of its own, capturing nothing and saying nothing. For the same reason an empty,
// unreadable or unusable flows.json or settings.js is set aside (named in the log) and written anew, and the address
// is given on Node-RED's command line too, so that no settings file can make it listen on every interface.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const credentials = require('./start/credentials');
const variables = require('./start/variables');

const root = path.resolve(__dirname, '..');
const env = process.env;
const port = Number(env.UPLINK_PORT || 1880);
const dataDir = path.resolve(env.UPLINK_DATA_DIR || path.join(root, '.uplink-data'));
const userDir = path.join(dataDir, 'node-red');
const pkg = require(path.join(root, 'package.json'));
const host = env.UPLINK_HOST || '127.0.0.1';
/** Names the shipped flows had before they lived only in examples/, so a command someone saved still works. */
const FLOW_ALIASES = { 'queue-demo': 'offline-queue-demo' };
const flowName = (Object.hasOwn(FLOW_ALIASES, env.UPLINK_FLOW ?? '') && FLOW_ALIASES[env.UPLINK_FLOW]) || env.UPLINK_FLOW || 'capture-to-cloud';

if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`UPLINK_PORT must be a port number, not "${env.UPLINK_PORT}"`);
  process.exit(2);
}
const flowSource = path.join(root, 'examples', `${flowName}.json`);
if (!fs.existsSync(flowSource)) {
  console.error(`UPLINK_FLOW: there is no examples/${flowName}.json`);
  process.exit(2);
}

/** The durable file steps the capture code uses, from the build (`npm start` builds first). */
function durableSteps() {
  try {
    return require(path.join(root, 'dist', 'lib', 'util', 'fs-durable.js'));
  } catch (e) {
    console.error(`Uplink is not built (${e.code || e.message}): run \`npm start\`, which builds it, or \`npm run build\` first.`);
    process.exit(2);
  }
}
const { writeFileDurably, makeFolderDurably } = durableSteps();
const { maskUrlLogin } = require(path.join(root, 'dist', 'lib', 'util', 'url-login.js'));

/** Why the file at `file` cannot be used (empty, unreadable, or what `check` finds), null when it can, undefined when there is none. */
function problemWith(file, check) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    return `unreadable (${e.code || e.message})`;
  }
  if (text.trim() === '') return 'empty';
  return check(text);
}

function flowProblem(text) {
  try {
    return Array.isArray(JSON.parse(text)) ? null : 'not a JSON array of nodes';
  } catch (e) {
    return `not JSON (${e.message})`;
  }
}

/** Loads the settings as Node-RED will: a module that must export an object. */
function settingsProblem(file) {
  try {
    delete require.cache[require.resolve(file)];
    const settings = require(file);
    return settings !== null && typeof settings === 'object' && !Array.isArray(settings) ? null : 'not a module exporting a settings object';
  } catch (e) {
    return `not loadable (${String(e.message).split('\n')[0]})`;
  }
}

/**
 * Writes `file` with what `make` gives when it is missing or unusable; an unusable one is renamed aside first, so
 * nothing a person wrote is lost, and the log says so. True when it wrote the file.
 */
async function ensureFile(file, problem, make) {
  if (problem === null) return false;
  if (problem !== undefined) setAside(file, problem);
  await writeFileDurably(file, make());
  return true;
}

function setAside(file, problem) {
  const aside = `${file}.broken-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  fs.renameSync(file, aside);
  console.warn(`Uplink: ${file} is ${problem}: kept aside as ${path.basename(aside)}, and written anew`);
}

/** Every shipped flow, for the values their fields had (the defaults of the variables bound to them). */
function shippedFlows() {
  const dir = path.join(root, 'examples');
  const out = [];
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    try {
      const flow = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
      if (Array.isArray(flow)) out.push(flow);
    } catch {
      /* not a flow */
    }
  }
  return out;
}

/** Node-RED finds packages the way it finds ones installed from the palette: in <userDir>/node_modules. */
function link(name, target) {
  const at = path.join(userDir, 'node_modules', name);
  fs.rmSync(at, { force: true, recursive: false });
  fs.symlinkSync(target, at, 'dir');
}

async function embeddedStore(bucket) {
  let S3rver;
  try {
    S3rver = require('s3rver');
  } catch {
    console.error('No UPLINK_S3_ENDPOINT is set and the embedded store (s3rver) is not installed: run `npm install` in the repository, or set UPLINK_S3_ENDPOINT.');
    process.exit(2);
  }
  const directory = path.join(dataDir, 'embedded-s3');
  fs.mkdirSync(directory, { recursive: true });
  const server = new S3rver({ port: Number(env.UPLINK_S3_PORT || 0), address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const info = await server.run();
  return { server, endpoint: `http://127.0.0.1:${info.port}`, bucket, directory };
}

/** The key Node-RED will encrypt flows_cred.json with, as it decides: the settings' credentialSecret, else its own. */
function credentialKey(settingsFile) {
  delete require.cache[require.resolve(settingsFile)];
  const secret = require(settingsFile).credentialSecret;
  if (typeof secret === 'string' || secret === false) return { key: secret, known: true, name: "the settings' credentialSecret" };
  try {
    const own = JSON.parse(fs.readFileSync(path.join(userDir, '.config.runtime.json'), 'utf8'))._credentialSecret;
    if (typeof own === 'string') return { key: own, known: true, name: "Node-RED's own key" };
  } catch {
    /* none yet: Node-RED makes one at its first start */
  }
  return { key: null, known: false };
}

/**
 * The credential key, settings and flows_cred.json as this version wants them: a random key for this data folder,
 * settings of an earlier npm start moved off the published key, and the credentials readable with the key Node-RED
 * will use (encrypted again when they were under another key npm start knows of).
 */
async function prepareCredentials(settingsFile, credFile) {
  const made = await credentials.ensureKeyFile(path.join(dataDir, 'credential-secret'), { writeFileDurably });
  const upgraded = credentials.upgradeSettings(fs.readFileSync(settingsFile, 'utf8'));
  if (upgraded !== null) {
    await writeFileDurably(settingsFile, upgraded);
    console.log(`Uplink: ${settingsFile} fell back on a key printed in Uplink's source; it now falls back on ${path.join(dataDir, 'credential-secret')}`);
  }
  const { key, known, name } = credentialKey(settingsFile);
  if (!known) return { key: null };
  const using = env.UPLINK_CREDENTIAL_SECRET && key === env.UPLINK_CREDENTIAL_SECRET ? 'UPLINK_CREDENTIAL_SECRET' : key === made.key ? `the key in ${path.join(dataDir, 'credential-secret')}` : name;
  const others = [
    { name: `the key in ${path.join(dataDir, 'credential-secret')}`, key: made.key },
    { name: 'UPLINK_CREDENTIAL_SECRET', key: env.UPLINK_CREDENTIAL_SECRET || undefined },
    { name: "the key earlier versions of npm start printed in their source (anyone could decrypt them)", key: credentials.PUBLISHED_KEY },
  ].filter((o) => o.key !== undefined && o.key !== key);
  const r = await credentials.rekey(credFile, key, others, { writeFileDurably });
  if (r.state === 'rekeyed') console.log(`Uplink: flows_cred.json was encrypted with ${r.from}; it is now encrypted with ${using}`);
  if (r.state === 'unreadable') {
    console.warn(
      `Uplink: flows_cred.json cannot be decrypted with ${using}, nor with any other key npm start knows of: Node-RED will run the flows without their credentials. Start with the UPLINK_CREDENTIAL_SECRET it was written with, or enter them again in the editor.`,
    );
  }
  return { key };
}

async function main() {
  await makeFolderDurably(path.join(userDir, 'node_modules'));
  await makeFolderDurably(path.join(userDir, 'uplink', 'outbox'));
  link(pkg.name, root);
  // The pipeline's GPIO button: on a machine without GPIO the node loads and says so in its status.
  const gpio = path.join(root, 'node_modules', 'node-red-node-pi-gpio');
  if (fs.existsSync(gpio)) link('node-red-node-pi-gpio', gpio);
  // The pipeline's dashboard at /dashboard (Dashboard 2.0, a devDependency; a scoped package, so its @flowfuse folder first).
  const dashboard = path.join(root, 'node_modules', '@flowfuse', 'node-red-dashboard');
  if (fs.existsSync(dashboard)) {
    fs.mkdirSync(path.join(userDir, 'node_modules', '@flowfuse'), { recursive: true });
    link('@flowfuse/node-red-dashboard', dashboard);
  }

  const flowFile = path.join(userDir, 'flows.json');
  const credFile = credentials.credentialsFileOf(flowFile);
  let bound;
  const copied = await ensureFile(flowFile, problemWith(flowFile, flowProblem), () => {
    bound = variables.bindFlow(JSON.parse(fs.readFileSync(flowSource, 'utf8')));
    return `${JSON.stringify(bound.flow, null, 4)}\n`;
  });
  const settingsFile = path.join(userDir, 'settings.js');
  await ensureFile(settingsFile, problemWith(settingsFile, () => settingsProblem(settingsFile)), credentials.settingsText);
  const { key } = await prepareCredentials(settingsFile, credFile);

  // The secrets a copied flow reads (the key, a token, the camera's password) are references to variables in its
  // credentials: with no key known, they go in the clear (they are no secret), and Node-RED encrypts them when it next saves.
  if (copied && Object.keys(bound.credentials).length > 0) {
    if (!(await credentials.addCredentials(credFile, key ?? false, bound.credentials, { writeFileDurably }))) {
      setAside(credFile, 'encrypted with a key npm start does not know');
      await credentials.addCredentials(credFile, key ?? false, bound.credentials, { writeFileDurably });
    }
  }

  const flow = JSON.parse(fs.readFileSync(flowFile, 'utf8'));
  let creds = {};
  try {
    creds = credentials.decrypt(key ?? false, fs.readFileSync(credFile, 'utf8'));
  } catch {
    /* none, or not readable here: the fields still say what the flow reads */
  }
  const read = variables.variablesRead(flow, creds);
  const values = variables.variableValues(read, env, variables.shippedValues(shippedFlows()));
  if (read.has('UPLINK_S3_PATH_STYLE') && !env.UPLINK_S3_PATH_STYLE) values.UPLINK_S3_PATH_STYLE = env.UPLINK_S3_ENDPOINT ? 'false' : 'true';
  const childEnv = {
    ...env,
    ...values,
    UPLINK_DEMO_TARGET_URL: `http://127.0.0.1:${port}/uplink-demo/target`,
    UPLINK_DEMO_OUTBOX: path.join(userDir, 'uplink', 'outbox'),
  };
  let store;
  if (read.has('UPLINK_S3_ENDPOINT') && !env.UPLINK_S3_ENDPOINT) {
    store = await embeddedStore(values.UPLINK_S3_BUCKET || 'uplink');
    childEnv.UPLINK_S3_ENDPOINT = store.endpoint;
    // The embedded store accepts its own fixed key only.
    childEnv.AWS_ACCESS_KEY_ID = 'S3RVER';
    childEnv.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  }

  const bin = path.join(root, 'node_modules', 'node-red', 'red.js');
  console.log(`Uplink: Node-RED user folder ${userDir}, flow ${flowName}`);
  if (!copied && env.UPLINK_FLOW) {
    const shipped = new Set(JSON.parse(fs.readFileSync(flowSource, 'utf8')).map((n) => n.id));
    if (!flow.some((n) => shipped.has(n.id))) {
      console.warn(`Uplink: UPLINK_FLOW=${env.UPLINK_FLOW}, but ${flowFile} holds another flow, which runs as it is: the shipped flow is copied only into a user folder without one (another UPLINK_DATA_DIR, or move flows.json away)`);
    }
  }
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  console.log(`Editor:   http://${shown}:${port}/`);
  if (flow.some((n) => typeof n.type === 'string' && n.type.startsWith('ui-'))) console.log(`Dashboard: http://${shown}:${port}/dashboard`);
  for (const line of summary(read, childEnv, store)) console.log(line);
  for (const name of variables.names()) {
    if (env[name] && !read.has(name)) {
      console.warn(
        `Uplink: ${name} is set, but the flow in ${flowFile} does not read it (the README lists what each shipped flow reads; a flow copied by an earlier version, or whose setting was changed in the editor, keeps its own)`,
      );
    }
  }
  // uiHost on the command line as well: a settings file without it would have Node-RED listen on every interface.
  const child = spawn(process.execPath, [bin, '--userDir', userDir, '--settings', settingsFile, '--port', String(port), '-D', `uiHost=${host}`], {
    cwd: userDir,
    stdio: 'inherit',
    env: childEnv,
  });
  const stop = (sig) => child.kill(sig);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  child.on('exit', (code, signal) => {
    const done = () => process.exit(code ?? (signal ? 1 : 0));
    if (store) store.server.close().then(done, done);
    else done();
  });
}

/** What the running flow gets from the variables, one line per thing it uses; logins and keys are never printed. */
function summary(read, v, store) {
  const lines = [];
  if (read.has('UPLINK_CAMERA_URL')) {
    const url = v.UPLINK_CAMERA_URL;
    const pattern = read.get('UPLINK_CAMERA_URL').some((n) => n.type === 'uplink-capture' && n.source === 'auto');
    let camera = url ? maskUrlLogin(url) : pattern ? 'test pattern' : 'not set: set UPLINK_CAMERA_URL';
    if (url && read.has('UPLINK_CAMERA_USER') && v.UPLINK_CAMERA_USER) camera += ` (login: UPLINK_CAMERA_USER ${v.UPLINK_CAMERA_USER})`;
    else if (url && /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url)) camera += ' (login from the URL)';
    if (read.has('UPLINK_CAPTURE_INTERVAL_S')) camera += `, every ${v.UPLINK_CAPTURE_INTERVAL_S} s`;
    lines.push(`Camera:   ${camera}`);
  }
  if (read.has('UPLINK_S3_ENDPOINT')) {
    lines.push(`Storage:  S3 ${v.UPLINK_S3_ENDPOINT}/${v.UPLINK_S3_BUCKET}${store ? ` (embedded, files in ${store.directory})` : ''}`);
  }
  if (read.has('UPLINK_SUPABASE_URL')) {
    const missing = ['UPLINK_SUPABASE_URL', 'UPLINK_SUPABASE_KEY'].filter((n) => read.has(n) && !v[n]);
    const table = read.has('UPLINK_SUPABASE_TABLE') && v.UPLINK_SUPABASE_TABLE ? `, a row per item in table ${v.UPLINK_SUPABASE_TABLE}` : '';
    const where = v.UPLINK_SUPABASE_URL ? `${v.UPLINK_SUPABASE_URL}, bucket ${v.UPLINK_SUPABASE_BUCKET}${table}` : 'not configured';
    lines.push(`Storage:  Supabase ${where}${missing.length ? `: set ${missing.join(' and ')}` : ''}`);
  }
  if (read.has('UPLINK_HTTP_URL')) {
    const logins = { bearer: 'a bearer token (UPLINK_HTTP_TOKEN)', basic: `basic login (UPLINK_HTTP_USER ${v.UPLINK_HTTP_USER})`, none: 'no login' };
    const login = read.has('UPLINK_HTTP_AUTH') ? ` with ${logins[v.UPLINK_HTTP_AUTH] ?? `${v.UPLINK_HTTP_AUTH} login`}` : '';
    lines.push(`Storage:  HTTP ${v.UPLINK_HTTP_URL ? `to ${maskUrlLogin(v.UPLINK_HTTP_URL)}${login}` : 'not configured: set UPLINK_HTTP_URL'}`);
  }
  return lines;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
