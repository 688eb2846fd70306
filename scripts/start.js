'use strict';
// Starts Node-RED with Uplink installed and the demo flow deployed, on embedded defaults: no camera, no cloud account.
//   UPLINK_PORT      Node-RED port (default 1880)
//   UPLINK_DATA_DIR  where Node-RED keeps its user folder, the queue database and the outbox (default ./.uplink-data)
// The flow is copied only when the user folder has none, so changes made in the editor survive a restart.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const port = Number(process.env.UPLINK_PORT || 1880);
const dataDir = path.resolve(process.env.UPLINK_DATA_DIR || path.join(root, '.uplink-data'));
const userDir = path.join(dataDir, 'node-red');
const pkg = require(path.join(root, 'package.json'));

if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`UPLINK_PORT must be a port number, not "${process.env.UPLINK_PORT}"`);
  process.exit(2);
}

fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
fs.mkdirSync(path.join(userDir, 'uplink', 'outbox'), { recursive: true });
// Node-RED finds the package the way it finds one installed from the palette: in <userDir>/node_modules.
const link = path.join(userDir, 'node_modules', pkg.name);
fs.rmSync(link, { force: true, recursive: false });
fs.symlinkSync(root, link, 'dir');

const flowFile = path.join(userDir, 'flows.json');
if (!fs.existsSync(flowFile)) fs.copyFileSync(path.join(root, 'flows', 'queue-demo.json'), flowFile);

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

const bin = path.join(root, 'node_modules', 'node-red', 'red.js');
console.log(`Uplink demo: Node-RED user folder ${userDir}`);
console.log(`Editor: http://127.0.0.1:${port}/  (queue database: ${path.join(userDir, 'uplink', 'queue.db')})`);
const child = spawn(process.execPath, [bin, '--userDir', userDir, '--settings', settingsFile, '--port', String(port)], {
  cwd: userDir,
  stdio: 'inherit',
  // The demo's connectivity node probes a stand-in target served by the flow itself.
  env: {
    ...process.env,
    UPLINK_DEMO_TARGET_URL: `http://127.0.0.1:${port}/uplink-demo/target`,
    UPLINK_DEMO_OUTBOX: path.join(userDir, 'uplink', 'outbox'),
  },
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
