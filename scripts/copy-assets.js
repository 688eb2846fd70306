'use strict';
// Copies the editor files (.html) and locales of every node beside its compiled .js in dist/,
// because Node-RED loads a node's html and message catalogue from the folder of its .js file.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const src = path.join(root, 'nodes');
const dst = path.join(root, 'dist', 'nodes');

function copy(from, to) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, entry.name);
    const b = path.join(to, entry.name);
    if (entry.isDirectory()) {
      copy(a, b);
    } else if (!entry.name.endsWith('.ts')) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(a, b);
    }
  }
}

copy(src, dst);
fs.chmodSync(path.join(root, 'dist', 'bin', 'uplink-queue.js'), 0o755);
