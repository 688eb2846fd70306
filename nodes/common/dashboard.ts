import fs from 'fs';
import path from 'path';
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { RequestHandler, Response } from 'express';

// What the Dashboard 2.0 widgets (ui-uplink-status, ui-uplink-live) share: finding the ui-group a widget shows in,
// registering with it under the widget's own Vue component, sending a view to the browsers, and the dashboard's
// middleware and image answers for the widgets' HTTP endpoints. The dashboard is optional: nothing here loads it.

const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const PACKAGE_NAME = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string }).name;

/** The parts of Dashboard 2.0's ui-group and ui-base nodes a widget uses (their documented widget API). */
export interface DashboardBase {
  emit(event: string, msg: NodeMessage, node: Node): void;
  stores: { data: { save(base: DashboardBase, node: Node, msg: NodeMessage): void } };
  ui?: { widgets?: Map<string, { src?: unknown }> };
}
export interface DashboardGroup extends Node {
  register(node: Node, config: object, events: object): void;
  getBase(): DashboardBase;
}

/** How a widget reacts to the dashboard: what the browsers get for a message, and what to keep of one sent in. */
export interface WidgetEvents {
  beforeSend: (msg: NodeMessage) => NodeMessage;
  onInput: (msg: NodeMessage) => void;
}

/**
 * The ui-group picked in the widget's editor, or null (the node's status and log say why) when Dashboard 2.0 is not
 * installed or no group is deployed.
 */
export function dashboardGroupOf(RED: NodeAPI, node: Node, groupId: unknown): DashboardGroup | null {
  const group = RED.nodes.getNode(String(groupId ?? '')) as DashboardGroup | null;
  if (!group || typeof group.register !== 'function' || typeof group.getBase !== 'function') {
    node.status({ fill: 'red', shape: 'ring', text: 'needs Dashboard 2.0 and a ui-group' });
    node.error('this widget needs Node-RED Dashboard 2.0 (@flowfuse/node-red-dashboard) and a ui-group to show it in');
    return null;
  }
  return group;
}

/** The widget's settings as `parse` reads them, or null (the node's status and log say why) when they are wrong. */
export function widgetConfigOf<T>(node: Node, parse: () => T): T | null {
  try {
    return parse();
  } catch (e) {
    node.status({ fill: 'red', shape: 'ring', text: 'configuration error' });
    node.error(`configuration error: ${(e as Error).message}`);
    return null;
  }
}

/** A widget's Vue component: its node type (built to resources/<type>.umd.js) and the component's name. */
export interface WidgetComponent {
  type: string;
  component: string;
}

/**
 * Registers the widget with its group. Dashboard 2.0 finds third-party widgets only in packages named
 * node-red-dashboard-2-*: this names the widget's Vue component (as package.json's "node-red-dashboard-2" section
 * names it) itself, in the form the dashboard gives the ones it finds (Node-RED serves resources/ at
 * /resources/<package>/).
 */
export function registerWidget(group: DashboardGroup, node: Node, def: object, events: WidgetEvents, { type, component }: WidgetComponent): void {
  group.register(node, def, events);
  const entry = group.getBase().ui?.widgets?.get(node.id);
  if (entry && !entry.src) entry.src = { package: PACKAGE_NAME, path: PACKAGE_ROOT, name: type, src: `${type}.umd.js`, component };
}

/** Keeps `msg` as the widget's latest (what a page opened later gets) and sends it to the browsers showing it. */
export function pushToBrowsers(base: DashboardBase, node: Node, msg: NodeMessage): void {
  base.stores.data.save(base, node, msg);
  base.emit(`msg-input:${node.id}`, msg, node);
}

/** The dashboard's own middleware, where settings.js gives one, for the widgets' endpoints on the HTTP node server. */
export function dashboardMiddleware(RED: NodeAPI): RequestHandler[] {
  const settings = RED.settings as unknown as { dashboard?: { middleware?: unknown }; ui?: { middleware?: unknown } };
  const extra = settings.dashboard?.middleware ?? settings.ui?.middleware;
  return (typeof extra === 'function' ? [extra] : Array.isArray(extra) ? extra : []) as RequestHandler[];
}

/** Answers with an image file a capture node reported (never a path from the browser); 404 when it has gone. */
export function sendImageFile(res: Response, file: string, contentType: string): void {
  res.set('Cache-Control', 'no-store');
  res.type(contentType);
  res.sendFile(path.resolve(file), (err) => {
    if (err && !res.headersSent) res.status(404).end();
  });
}
