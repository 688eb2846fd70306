import fs from 'fs';
import path from 'path';
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { Request, RequestHandler, Response } from 'express';
import type { Uplink } from '../../lib/message/uplink';
import { isStill, LiveSource, liveView, parseLiveWidgetConfig, LiveWidgetConfig } from '../../lib/dashboard/live';
import { EditorConfig, registerNode } from '../common/node';
import type { CapturePublisher } from '../common/watch';

// The live camera widget for Node-RED Dashboard 2.0: this adapter finds the recorder picked in its editor (where its
// live view is served, /uplink/live/<camera>/) and, optionally, a capture node whose latest image may be the still,
// and sends the browsers where to play from; the Vue component (ui/, built into resources/ with HLS.js) plays the
// stream, and while the camera is not streaming shows the newer of the live view's last frame (its still.jpg) and
// that image (lib/dashboard/live.ts picks). The video itself never passes through this node: the recorder's ffmpeg
// reads the camera once, whatever the number of viewers. The dashboard is optional: this file loads without it.

const TYPE = 'ui-uplink-live';
const RECORDER_TYPE = 'uplink-recorder';
/** The Vue component, as package.json's "node-red-dashboard-2" section names it. */
const COMPONENT = { name: TYPE, src: `${TYPE}.umd.js`, component: 'UIUplinkLive' };
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const PACKAGE_NAME = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string }).name;

/** The parts of Dashboard 2.0's ui-group and ui-base nodes a widget uses (their documented widget API). */
interface DashboardBase {
  emit(event: string, msg: NodeMessage, node: Node): void;
  stores: { data: { save(base: DashboardBase, node: Node, msg: NodeMessage): void } };
  ui?: { widgets?: Map<string, { src?: unknown }> };
}
interface DashboardGroup extends Node {
  register(node: Node, config: object, events: object): void;
  getBase(): DashboardBase;
}

/** What a recorder node publishes about its live view (nodes/recorder/recorder.ts). */
interface RecorderNode extends Node {
  liveSlug?: string;
  liveCamera?: string;
  liveProblem?: string;
}

interface LiveNode extends Node {
  /** The capture node's latest image, its file and type, for the image endpoint (never sent to a browser). */
  latestCapture?: Uplink;
}

export = function (RED: NodeAPI) {
  function UplinkLiveNode(this: LiveNode, def: EditorConfig<{ group: string }>) {
    RED.nodes.createNode(this, def);
    const node = this;
    const group = RED.nodes.getNode(String(def.group ?? '')) as DashboardGroup | null;
    if (!group || typeof group.register !== 'function' || typeof group.getBase !== 'function') {
      node.status({ fill: 'red', shape: 'ring', text: 'needs Dashboard 2.0 and a ui-group' });
      node.error('this widget needs Node-RED Dashboard 2.0 (@flowfuse/node-red-dashboard) and a ui-group to show it in');
      return;
    }
    let config: LiveWidgetConfig;
    try {
      config = parseLiveWidgetConfig(def);
    } catch (e) {
      node.status({ fill: 'red', shape: 'ring', text: 'configuration error' });
      node.error(`configuration error: ${(e as Error).message}`);
      return;
    }
    const base = group.getBase();
    let source: LiveSource | null = null;
    let closed = false;
    const viewMessage = (): NodeMessage => ({ topic: 'uplink-live', payload: liveView(source, node.latestCapture) });
    const push = () => {
      if (closed) return;
      const msg = viewMessage();
      base.stores.data.save(base, node, msg);
      base.emit(`msg-input:${node.id}`, msg, node);
    };

    // Picks up the nodes again after every deploy: a redeployed recorder is a new node, maybe with another camera.
    let unwatch: (() => void)[] = [];
    const attach = () => {
      for (const u of unwatch) u();
      unwatch = [];
      const r = RED.nodes.getNode(config.recorder) as RecorderNode | null;
      if (!r || r.type !== RECORDER_TYPE) source = null;
      else source = { ...(r.liveSlug ? { slug: r.liveSlug } : {}), ...(r.liveCamera ? { camera: r.liveCamera } : {}), ...(r.liveProblem ? { problem: r.liveProblem } : {}) };
      if (source?.slug) node.status({ fill: 'green', shape: 'dot', text: `showing ${source.camera ?? source.slug}` });
      else node.status({ fill: 'yellow', shape: 'ring', text: liveView(source, undefined).problem?.slice(0, 80) ?? '' });
      const camera = config.capture ? (RED.nodes.getNode(config.capture) as (Node & CapturePublisher) | null) : null;
      if (camera?.captures) {
        unwatch.push(
          camera.captures.watch((u) => {
            if (!isStill(u)) return;
            node.latestCapture = u;
            push();
          }),
        );
      }
      push();
    };
    RED.events.on('flows:started', attach);

    group.register(node, def, {
      beforeSend: () => viewMessage(),
      onInput: (msg: NodeMessage) => base.stores.data.save(base, node, msg),
    });
    // As the status widget does: Dashboard 2.0 finds third-party widgets only in packages named node-red-dashboard-2-*,
    // so this one names its component itself (Node-RED serves resources/ at /resources/<package>/).
    const entry = base.ui?.widgets?.get(node.id);
    if (entry && !entry.src) entry.src = { package: PACKAGE_NAME, path: PACKAGE_ROOT, ...COMPONENT };
    attach();

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      RED.events.removeListener('flows:started', attach);
      for (const u of unwatch) u();
      unwatch = [];
      done();
    });
  }

  registerNode(RED, TYPE, UplinkLiveNode);

  // The capture node's image, by widget id (the file is the one the capture node reported, never a path from the browser), behind the
  // dashboard's own middleware where settings.js gives one (httpNodeAuth applies anyway).
  const settings = RED.settings as unknown as { dashboard?: { middleware?: unknown }; ui?: { middleware?: unknown } };
  const extra = settings.dashboard?.middleware ?? settings.ui?.middleware;
  const middleware = (typeof extra === 'function' ? [extra] : Array.isArray(extra) ? extra : []) as RequestHandler[];
  RED.httpNode?.get('/uplink-live/:id/still', ...middleware, (req: Request, res: Response) => {
    const n = RED.nodes.getNode(String(req.params.id)) as LiveNode | null;
    const u = n && n.type === TYPE ? n.latestCapture : undefined;
    if (!isStill(u)) {
      res.status(404).end();
      return;
    }
    res.set('Cache-Control', 'no-store');
    res.type(u.contentType as string);
    res.sendFile(path.resolve(u.file), (err) => {
      if (err && !res.headersSent) res.status(404).end();
    });
  });
};
