'use strict';
// The shapes Node-RED's editor (4.1) draws for a flow, computed from the flow file alone: each node's box from its
// label, its ports, each wire as the curve the editor draws, and each group's box. Used to check that shipped flows
// read cleanly: no node on another, no wire through a node, groups around their nodes and apart.
//
// Sizes follow the editor's view.js: a node is max(100, 20*ceil((labelWidth + 50 + (inputs ? 7 : 0)) / 20)) wide and
// max(30, 15 * outputs) high, centred on (x, y); link nodes hide their label and are 30 x 30; an inject node's button
// sticks out 25 px on the left, a debug node's 26 px on the right. A wire leaves output port i at
// (x + w/2, y + 13 * (i - (outputs - 1) / 2)) and enters at (x - w/2, y), as a cubic Bézier curve. A group's box is
// its nodes' boxes grown by 26 px (and 20 px more on the side of a button).

/**
 * Label widths at 14 px in DejaVu Sans, the font Chromium uses for the editor's "Helvetica Neue, Arial, Helvetica,
 * sans-serif" on Debian and Raspberry Pi OS without those fonts; it is wider than Helvetica and Arial, so a layout that
 * fits here fits where they are installed. Measured in Chromium (getBoundingClientRect of each character).
 */
const CHAR_WIDTH = {
  ' ': 4.45, '!': 5.61, '"': 6.44, '#': 11.73, $: 8.91, '%': 13.3, '&': 10.92, "'": 3.85, '(': 5.46, ')': 5.46, '*': 7,
  '+': 11.73, ',': 4.45, '-': 5.05, '.': 4.45, '/': 4.72, ':': 4.72, ';': 4.72, '<': 11.73, '=': 11.73, '>': 11.73,
  '?': 7.43, '@': 14, A: 9.93, B: 9.6, C: 9.78, D: 10.78, E: 8.85, F: 8.05, G: 10.85, H: 10.53, I: 4.13, J: 4.13,
  K: 9.18, L: 7.8, M: 12.08, N: 10.47, O: 11.02, P: 8.44, Q: 11.02, R: 9.73, S: 8.89, T: 8.33, U: 10.25, V: 9.58,
  W: 13.84, X: 9.59, Y: 8.55, Z: 9.59, '[': 5.46, '\\': 4.72, ']': 5.46, '^': 11.73, _: 7, '`': 7, a: 8.58, b: 8.89,
  c: 7.7, d: 8.89, e: 8.61, f: 4.82, g: 8.89, h: 8.87, i: 3.89, j: 3.89, k: 8.11, l: 3.89, m: 13.64, n: 8.87, o: 8.57,
  p: 8.89, q: 8.89, r: 5.53, s: 7.3, t: 5.49, u: 8.87, v: 8.29, w: 11.45, x: 8.29, y: 8.29, z: 7.35, '{': 8.91,
  '|': 4.72, '}': 8.91, '~': 11.73, '·': 4.45, '…': 14, '—': 14, '–': 7, '→': 11.73, '↻': 11.73, '¹': 5.63, '\t': 4.45,
};
for (let d = 0; d <= 9; d++) CHAR_WIDTH[String(d)] = 8.91;

/** The width of a label in pixels, as the editor measures it (a span's offsetWidth, rounded). */
function labelWidth(text) {
  let w = 0;
  for (const ch of String(text)) w += CHAR_WIDTH[ch] ?? 14;
  return Math.round(w);
}

const GRID = 20;
const NODE_HEIGHT = 30;
const PORT_SPACING = 13;
const GROUP_MARGIN = 26;
const BUTTON_LEFT = 25;
const BUTTON_RIGHT = 26;

/**
 * What the editor's node definitions say about each type shipped flows use: inputs, outputs (a number, or a function
 * of the node), the side of its button, and whether its label is hidden.
 */
const TYPES = {
  inject: { inputs: 0, outputs: 1, button: 'left' },
  debug: { inputs: 1, outputs: 0, button: 'right' },
  function: { inputs: 1, outputs: (n) => Number(n.outputs ?? 1) },
  change: { inputs: 1, outputs: 1 },
  switch: { inputs: 1, outputs: (n) => Number(n.outputs ?? 1) },
  catch: { inputs: 0, outputs: 1 },
  status: { inputs: 0, outputs: 1 },
  comment: { inputs: 0, outputs: 0 },
  'link in': { inputs: 0, outputs: 1, hidden: true },
  'link out': { inputs: 1, outputs: 0, hidden: true },
  'http in': { inputs: 0, outputs: 1 },
  'http response': { inputs: 1, outputs: 0 },
  'file in': { inputs: 1, outputs: 1 },
  'rpi-gpio in': { inputs: 0, outputs: 1 },
  'ui-button': { inputs: 1, outputs: 1 },
  'ui-text': { inputs: 1, outputs: 0 },
  'ui-template': { inputs: 1, outputs: 1 },
  'ui-chart': { inputs: 1, outputs: 1 },
  'uplink-capture': { inputs: 1, outputs: 1 },
  'uplink-recorder': { inputs: 1, outputs: 2 },
  'uplink-offline-queue': { inputs: 1, outputs: 3 },
  'uplink-connectivity': { inputs: 1, outputs: (n) => (n.gate === true || n.gate === 'true' ? 3 : 1) },
  'uplink-uploader': { inputs: 1, outputs: 2 },
  'ui-uplink-status': { inputs: 1, outputs: 0 },
  'uplink-monitor': { inputs: 1, outputs: 1 },
  'mqtt out': { inputs: 1, outputs: 0 },
  'http request': { inputs: 1, outputs: 1 },
};

/** Nodes drawn on the canvas: everything with a position except tabs, groups and config nodes. */
function isDrawn(n) {
  return n.type !== 'tab' && n.type !== 'group' && typeof n.x === 'number' && typeof n.y === 'number';
}

function typeOf(n) {
  const t = TYPES[n.type];
  if (!t) throw new Error(`no editor geometry known for type "${n.type}" (node ${n.id}): add it to TYPES`);
  return { ...t, outputs: typeof t.outputs === 'function' ? t.outputs(n) : t.outputs };
}

/**
 * The label the editor shows: the node's name (shipped flows name every node whose label shows), and for an inject
 * node the mark its label function adds: a tab and ↻ when it repeats, " ¹" when it fires once at start.
 */
function labelOf(n) {
  const name = typeof n.name === 'string' ? n.name : '';
  if (n.type !== 'inject' || name === '') return name;
  if ((n.repeat && Number(n.repeat) !== 0) || n.crontab) return `${name}\t↻`;
  return n.once ? `${name} ¹` : name;
}

/** The node's own rectangle (without its button), centred on (x, y). */
function bodyOf(n) {
  const t = typeOf(n);
  const hidden = n.l === false || (t.hidden && n.l !== true);
  const w = hidden ? NODE_HEIGHT : Math.max(100, GRID * Math.ceil((labelWidth(labelOf(n)) + 50 + (t.inputs > 0 ? 7 : 0)) / GRID));
  const h = Math.max(NODE_HEIGHT, t.outputs * 15);
  return { x0: n.x - w / 2, y0: n.y - h / 2, x1: n.x + w / 2, y1: n.y + h / 2, w, h };
}

/** Everything the node draws: its rectangle and its button. */
function boxOf(n) {
  const b = bodyOf(n);
  const button = typeOf(n).button;
  return { ...b, x0: b.x0 - (button === 'left' ? BUTTON_LEFT : 0), x1: b.x1 + (button === 'right' ? BUTTON_RIGHT : 0) };
}

function outputPort(n, port) {
  const b = bodyOf(n);
  const outputs = typeOf(n).outputs || 1;
  return { x: b.x1, y: n.y + PORT_SPACING * (port - (outputs - 1) / 2) };
}

function inputPort(n) {
  return { x: bodyOf(n).x0, y: n.y };
}

/**
 * Points along a wire as the editor draws a forward one (its generateLinkPath): a cubic Bézier whose control points
 * lie 75 px (less for short wires) to the right of the start and to the left of the end.
 */
function wirePoints(from, to, steps = 64) {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const delta = Math.hypot(dx, dy);
  const scale = delta < 100 ? 0.75 - 0.75 * ((100 - delta) / 100) : 0.75;
  const c1 = { x: from.x + 100 * scale, y: from.y };
  const c2 = { x: to.x - 100 * scale, y: to.y };
  const pts = [];
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const u = 1 - t;
    pts.push({
      x: u * u * u * from.x + 3 * u * u * t * c1.x + 3 * u * t * t * c2.x + t * t * t * to.x,
      y: u * u * u * from.y + 3 * u * u * t * c1.y + 3 * u * t * t * c2.y + t * t * t * to.y,
    });
  }
  return pts;
}

/** Every wire of a flow: source node, port, target node. */
function wiresOf(flow) {
  const byId = new Map(flow.map((n) => [n.id, n]));
  const out = [];
  for (const n of flow.filter(isDrawn)) {
    (n.wires || []).forEach((targets, port) => {
      for (const id of targets) {
        const to = byId.get(id);
        if (to) out.push({ from: n, port, to });
      }
    });
  }
  return out;
}

/** The box the editor gives a group: its members' boxes grown by the margin (the button side by 20 px more). */
function groupBoxOf(group, flow) {
  const members = flow.filter((n) => n.g === group.id && isDrawn(n));
  if (members.length === 0) return null;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const n of members) {
    const b = bodyOf(n);
    const button = typeOf(n).button;
    x0 = Math.min(x0, b.x0 - GROUP_MARGIN - (button === 'left' ? 20 : 0));
    y0 = Math.min(y0, b.y0 - GROUP_MARGIN);
    x1 = Math.max(x1, b.x1 + GROUP_MARGIN + (button === 'right' ? 20 : 0));
    y1 = Math.max(y1, b.y1 + GROUP_MARGIN);
  }
  return { x0, y0, x1, y1, w: x1 - x0, h: y1 - y0 };
}

const overlaps = (a, b, gap = 0) => a.x0 < b.x1 + gap && b.x0 < a.x1 + gap && a.y0 < b.y1 + gap && b.y0 < a.y1 + gap;
const inside = (p, b) => p.x > b.x0 && p.x < b.x1 && p.y > b.y0 && p.y < b.y1;
const contains = (outer, inner) => outer.x0 <= inner.x0 && outer.y0 <= inner.y0 && outer.x1 >= inner.x1 && outer.y1 >= inner.y1;

/**
 * Everything in a flow that does not read cleanly, one sentence each: nodes on one another, wires that run backwards
 * or through a node, groups that do not hold their nodes or lie on each other, nodes without a label. Empty when the
 * flow is tidy.
 */
function layoutProblems(flow) {
  const problems = [];
  const name = (n) => `${n.type} "${labelOf(n) || n.id}"`;
  const byTab = new Map();
  for (const n of flow.filter((n) => isDrawn(n) || n.type === 'group')) {
    if (!byTab.has(n.z)) byTab.set(n.z, []);
    byTab.get(n.z).push(n);
  }
  for (const items of byTab.values()) {
    const nodes = items.filter(isDrawn);
    const groups = items.filter((n) => n.type === 'group');
    for (const n of nodes) {
      const t = typeOf(n);
      if (!(t.hidden && n.l !== true) && n.l !== false && labelOf(n).trim() === '') problems.push(`${n.type} ${n.id} has no name: its label would be the editor's guess`);
      if (/\\n /.test(labelOf(n))) problems.push(`${name(n)} has a label of several lines`);
    }
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        if (overlaps(boxOf(nodes[i]), boxOf(nodes[j]), 10)) problems.push(`${name(nodes[i])} and ${name(nodes[j])} overlap (or are closer than 10 px)`);
      }
    }
    for (const { from, port, to } of wiresOf(nodes)) {
      const a = outputPort(from, port);
      const b = inputPort(to);
      if (b.x - a.x < 20) {
        problems.push(`the wire from ${name(from)} to ${name(to)} runs backwards (feed it back through link nodes)`);
        continue;
      }
      const pts = wirePoints(a, b);
      for (const n of nodes) {
        if (n === from || n === to) continue;
        const box = boxOf(n);
        const grown = { x0: box.x0 - 4, y0: box.y0 - 4, x1: box.x1 + 4, y1: box.y1 + 4 };
        if (pts.some((p) => inside(p, grown))) problems.push(`the wire from ${name(from)} to ${name(to)} passes through ${name(n)}`);
      }
    }
    const boxes = new Map();
    for (const g of groups) {
      if (!g.name) problems.push(`group ${g.id} has no name`);
      const want = groupBoxOf(g, flow);
      if (!want) {
        problems.push(`group "${g.name}" is empty`);
        continue;
      }
      const stored = { x0: g.x, y0: g.y, x1: g.x + g.w, y1: g.y + g.h };
      if (!contains(stored, want)) problems.push(`group "${g.name}" does not hold its nodes: stored ${JSON.stringify(stored)}, needs ${JSON.stringify(want)}`);
      boxes.set(g, { ...want, x0: Math.min(want.x0, stored.x0), y0: Math.min(want.y0, stored.y0), x1: Math.max(want.x1, stored.x1), y1: Math.max(want.y1, stored.y1) });
      if (!nodes.some((n) => n.g === g.id && n.type === 'comment')) problems.push(`group "${g.name}" has no comment saying what to change`);
    }
    const list = [...boxes.entries()];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        if (overlaps(list[i][1], list[j][1])) problems.push(`groups "${list[i][0].name}" and "${list[j][0].name}" overlap`);
      }
    }
    for (const n of nodes) {
      for (const [g, box] of boxes) {
        if (n.g !== g.id && overlaps(boxOf(n), box)) problems.push(`${name(n)} lies on group "${g.name}" without being in it`);
      }
    }
  }
  return problems;
}

module.exports = { labelWidth, bodyOf, boxOf, outputPort, inputPort, wirePoints, wiresOf, groupBoxOf, layoutProblems, isDrawn, TYPES };
