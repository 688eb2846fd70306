'use strict';
// Copies the editor files (.html) and locales of every node beside its compiled .js in dist/,
// because Node-RED loads a node's html and message catalogue from the folder of its .js file.
//
// Editor parts that several nodes show (the ffmpeg source rows, the metadata rows, a target's limits, the shared
// editor script) are written once, as partials in nodes/common/editor/, and put into each html here: a line that
// holds only `<!-- include: NAME -->` becomes the partial NAME (file name with its extension), indented as the line
// was. Partials may include partials. A missing partial, an include cycle, or an include marker left anywhere else
// stops the build, so dist/ never ships a half-made editor.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const src = path.join(root, 'nodes');
const dst = path.join(root, 'dist', 'nodes');
const partials = path.join(src, 'common', 'editor');

const INCLUDE_LINE = /^([ \t]*)<!-- include: ([\w.-]+) -->[ \t]*$/;
const ANY_INCLUDE = /<!--\s*include\b/;

/**
 * The text of `file` with every include line replaced by the partial of that name in `from`; `chain` is the includes
 * that led here.
 */
function expand(file, from = partials, chain = []) {
  const text = fs.readFileSync(file, 'utf8');
  return text
    .split('\n')
    .map((line, i) => {
      const where = `${path.relative(root, file)}:${i + 1}`;
      const m = INCLUDE_LINE.exec(line);
      if (!m) {
        if (ANY_INCLUDE.test(line)) throw new Error(`${where}: an include must be a line of its own, exactly <!-- include: NAME -->`);
        return line;
      }
      const [, indent, name] = m;
      const partial = path.join(from, name);
      if (!fs.existsSync(partial) || !fs.statSync(partial).isFile()) throw new Error(`${where}: there is no partial ${path.relative(root, partial)}`);
      if (chain.includes(partial)) throw new Error(`${where}: ${name} includes itself (${[...chain, partial].map((p) => path.basename(p)).join(' -> ')})`);
      return expand(partial, from, [...chain, partial])
        .replace(/\n$/, '')
        .split('\n')
        .map((l) => (l === '' ? l : indent + l))
        .join('\n');
    })
    .join('\n');
}

function copy(from, to) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const a = path.join(from, entry.name);
    const b = path.join(to, entry.name);
    if (entry.isDirectory()) {
      // Partials live only inside the html files that include them.
      if (a !== partials) copy(a, b);
    } else if (entry.name.endsWith('.html')) {
      fs.mkdirSync(to, { recursive: true });
      fs.writeFileSync(b, expand(a));
    } else if (!entry.name.endsWith('.ts')) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(a, b);
    }
  }
}

if (require.main === module) {
  try {
    copy(src, dst);
  } catch (e) {
    console.error(`copy-assets: ${e.message}`);
    process.exit(1);
  }
  fs.chmodSync(path.join(root, 'dist', 'bin', 'uplink-queue.js'), 0o755);
}

module.exports = { expand };
