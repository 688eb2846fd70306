'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

/** A fresh temp folder per test, removed afterwards. */
function tmpDir(prefix = 'uplink-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function rmrf(dir) {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** Polls fn until it returns a truthy value; bounded in time, never asserts a duration. */
async function waitFor(fn, { timeout = 10000, interval = 20, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

module.exports = { tmpDir, rmrf, waitFor };
