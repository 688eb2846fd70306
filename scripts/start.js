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
//
// The flow is copied only when the user folder has none, so changes made in the editor survive a restart. It is read
// from examples/, the folder the editor's Import > Examples shows, so what starts here is what users import.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const env = process.env;
const port = Number(env.UPLINK_PORT || 1880);
const dataDir = path.resolve(env.UPLINK_DATA_DIR || path.join(root, '.uplink-data'));
const userDir = path.join(dataDir, 'node-red');
const pkg = require(path.join(root, 'package.json'));
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
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  fs.mkdirSync(path.join(userDir, 'uplink', 'outbox'), { recursive: true });
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
  if (!fs.existsSync(flowFile)) fs.copyFileSync(flowSource, flowFile);
  const settingsFile = path.join(userDir, 'settings.js');
  if (!fs.existsSync(settingsFile)) {
    fs.writeFileSync(
      settingsFile,
      `module.exports = {
  flowFile: 'flows.json',
  // Credentials are encrypted with this key; set UPLINK_CREDENTIAL_SECRET to your own before storing real secrets.
  credentialSecret: process.env.UPLINK_CREDENTIAL_SECRET || 'uplink-demo-change-me',
  uiHost: process.env.UPLINK_HOST || '127.0.0.1',
  logging: { console: { level: 'info', metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false }, tours: false },
};
`,
    );
  }

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
  console.log(`Editor:  http://127.0.0.1:${port}/`);
  if (flowName === 'capture-to-cloud') console.log(`Dashboard: http://127.0.0.1:${port}/dashboard`);
  console.log(`Storage: ${childEnv.UPLINK_S3_ENDPOINT}/${childEnv.UPLINK_S3_BUCKET}${store ? ` (embedded, files in ${store.directory})` : ''}`);
  console.log(`Camera:  ${childEnv.UPLINK_CAMERA_URL ? childEnv.UPLINK_CAMERA_URL.replace(/\/\/[^@/]*@/, '//***@') : 'test pattern'}, every ${childEnv.UPLINK_CAPTURE_INTERVAL_S} s`);
  const child = spawn(process.execPath, [bin, '--userDir', userDir, '--settings', settingsFile, '--port', String(port)], {
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
