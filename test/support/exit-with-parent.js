'use strict';
// Preloaded (node --require) into each node-red process that test/support/node-red-process.js starts. When the test
// process goes away without stopping it (mocha SIGKILLed, a crash), the stdin pipe it holds closes: node-red then
// deletes the temporary user folder made for it, if any, and kills itself, so nothing outlives the test run.
const fs = require('fs');

function orphaned() {
  const dir = process.env.UPLINK_E2E_TEMP_USERDIR;
  if (dir) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  process.kill(process.pid, 'SIGKILL');
}

process.stdin.on('end', orphaned);
process.stdin.on('error', orphaned);
process.stdin.resume();
