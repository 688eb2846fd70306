'use strict';
// The package as a user gets it: `npm pack` (exactly the files package.json ships), unpacked into
// <userDir>/node_modules/node-red-contrib-uplink the way `npm install <tarball>` in ~/.node-red leaves it.
//
// Tests run offline, so npm cannot fetch the package's dependencies: each runtime dependency (package.json
// "dependencies", nothing else) is linked into <userDir>/node_modules from this repository's install instead, which is
// where a flat npm install would put them. A file the package needs but does not ship, or a devDependency it loads,
// fails here as it would for the user.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '../..');
const pkg = require(path.join(ROOT, 'package.json'));

/** Packs the repository (which must be built) into a temp folder; returns the tarball's path. */
function pack() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-pack-'));
  const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const [{ filename }] = JSON.parse(out);
  return path.join(dir, path.basename(filename));
}

/** Links a package of this repository's node_modules into a user folder's, as if installed from the palette. */
function linkModule(userDir, name) {
  const from = path.join(ROOT, 'node_modules', name);
  if (!fs.existsSync(from)) throw new Error(`${name} is not installed in ${ROOT} (npm install)`);
  const to = path.join(userDir, 'node_modules', name);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.symlinkSync(fs.realpathSync(from), to, 'dir');
}

/**
 * A fresh Node-RED user folder with the packed package installed (and `also`: other packages the user installed,
 * such as @flowfuse/node-red-dashboard). Returns the folder; the caller removes it.
 */
function userDirWithPackage(tarball, also = []) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-user-'));
  const target = path.join(userDir, 'node_modules', pkg.name);
  fs.mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1'], { timeout: 60_000 });
  for (const dep of Object.keys(pkg.dependencies)) linkModule(userDir, dep);
  for (const name of also) linkModule(userDir, name);
  const deps = Object.fromEntries([[pkg.name, pkg.version], ...also.map((n) => [n, '*'])]);
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true, dependencies: deps }, null, 2));
  return userDir;
}

module.exports = { pack, userDirWithPackage };
