'use strict';
// Starts Node-RED with Uplink installed and the capture-to-cloud pipeline deployed, on embedded defaults: no camera
// (the test pattern) and no cloud account (a local S3-compatible store started here, unless UPLINK_S3_ENDPOINT is set).
//
//   UPLINK_PORT                Node-RED port (default 1880)
//   UPLINK_DATA_DIR            Node-RED's user folder, images, queue database and the embedded store (default ./.uplink-data)
//   UPLINK_CAMERA_URL          HTTP snapshot URL of a camera (default: the test pattern)
//   UPLINK_CAPTURE_INTERVAL_S  seconds between captures (default 10)
//   UPLINK_S3_ENDPOINT, UPLINK_S3_BUCKET, UPLINK_S3_REGION, UPLINK_S3_PATH_STYLE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//   UPLINK_FLOW                which shipped flow to start with: a file name in examples/ without .json (default
//                              capture-to-cloud; queue-demo is offline-queue-demo)
//   UPLINK_HOST                the address Node-RED listens on (default 127.0.0.1: only this machine)
//
// The flow is copied only when the user folder has none, so changes made in the editor survive a restart. It is read
// from examples/, the folder the editor's Import > Examples shows, so what starts here is what users import.
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
 * nothing a person wrote is lost, and the log says so.
 */
async function ensureFile(file, problem, make) {
  if (problem === null) return;
  if (problem !== undefined) {
    const aside = `${file}.broken-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(file, aside);
    console.warn(`Uplink: ${file} is ${problem}: kept aside as ${path.basename(aside)}, and written anew`);
  }
  await writeFileDurably(file, make());
}

/** Node-RED finds packages the way it finds ones installed from the palette: in <userDir>/node_modules. */
function link(name, target) {
  const at = path.join(userDir, 'node_modules', name);
  fs.rmSync(at, { force: true, recursive: false });
  fs.symlinkSync(target, at, 'dir');
}

async function embeddedStore() {
  let S3rver;
  try {
    S3rver = require('s3rver');
  } catch {
    console.error('No UPLINK_S3_ENDPOINT is set and the embedded store (s3rver) is not installed: run `npm install` in the repository, or set UPLINK_S3_ENDPOINT.');
    process.exit(2);
  }
  const directory = path.join(dataDir, 'embedded-s3');
  fs.mkdirSync(directory, { recursive: true });
  const bucket = env.UPLINK_S3_BUCKET || 'uplink';
  const server = new S3rver({ port: Number(env.UPLINK_S3_PORT || 0), address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const info = await server.run();
  return { server, endpoint: `http://127.0.0.1:${info.port}`, bucket, directory };
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
  await ensureFile(flowFile, problemWith(flowFile, flowProblem), () => fs.readFileSync(flowSource));
  const settingsFile = path.join(userDir, 'settings.js');
  await ensureFile(
    settingsFile,
    problemWith(settingsFile, () => settingsProblem(settingsFile)),
    () => `module.exports = {
  flowFile: 'flows.json',
  // Credentials are encrypted with this key; set UPLINK_CREDENTIAL_SECRET to your own before storing real secrets.
  credentialSecret: process.env.UPLINK_CREDENTIAL_SECRET || 'uplink-demo-change-me',
  uiHost: process.env.UPLINK_HOST || '127.0.0.1',
  logging: { console: { level: 'info', metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false }, tours: false },
};
`,
  );

  const childEnv = {
    ...env,
    UPLINK_CAMERA_URL: env.UPLINK_CAMERA_URL || '',
    UPLINK_CAPTURE_INTERVAL_S: env.UPLINK_CAPTURE_INTERVAL_S || '10',
    UPLINK_S3_REGION: env.UPLINK_S3_REGION || 'us-east-1',
    UPLINK_S3_BUCKET: env.UPLINK_S3_BUCKET || 'uplink',
    UPLINK_S3_PATH_STYLE: env.UPLINK_S3_PATH_STYLE || (env.UPLINK_S3_ENDPOINT ? 'false' : 'true'),
    UPLINK_DEMO_TARGET_URL: `http://127.0.0.1:${port}/uplink-demo/target`,
    UPLINK_DEMO_OUTBOX: path.join(userDir, 'uplink', 'outbox'),
  };
  let store;
  if (!env.UPLINK_S3_ENDPOINT) {
    store = await embeddedStore();
    childEnv.UPLINK_S3_ENDPOINT = store.endpoint;
    childEnv.UPLINK_S3_BUCKET = store.bucket;
    // The embedded store accepts its own fixed key only.
    childEnv.AWS_ACCESS_KEY_ID = 'S3RVER';
    childEnv.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  }

  const bin = path.join(root, 'node_modules', 'node-red', 'red.js');
  console.log(`Uplink: Node-RED user folder ${userDir}, flow ${flowName}`);
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  console.log(`Editor:  http://${shown}:${port}/`);
  if (flowName === 'capture-to-cloud') console.log(`Dashboard: http://${shown}:${port}/dashboard`);
  console.log(`Storage: ${childEnv.UPLINK_S3_ENDPOINT}/${childEnv.UPLINK_S3_BUCKET}${store ? ` (embedded, files in ${store.directory})` : ''}`);
  console.log(`Camera:  ${childEnv.UPLINK_CAMERA_URL ? childEnv.UPLINK_CAMERA_URL.replace(/\/\/[^@/]*@/, '//***@') : 'test pattern'}, every ${childEnv.UPLINK_CAPTURE_INTERVAL_S} s`);
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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
