import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { Request, Response } from 'express';
import type { Uplink } from '../../lib/message/uplink';
import { isStill, LiveSource, liveView, parseLiveWidgetConfig } from '../../lib/dashboard/live';
import { EditorConfig, registerNode } from '../common/node';
import { dashboardGroupOf, dashboardMiddleware, pushToBrowsers, registerWidget, sendImageFile, widgetConfigOf } from '../common/dashboard';
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
const COMPONENT = { type: TYPE, component: 'UIUplinkLive' };

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
    const group = dashboardGroupOf(RED, node, def.group);
    if (!group) return;
    const config = widgetConfigOf(node, () => parseLiveWidgetConfig(def));
    if (!config) return;
    const base = group.getBase();
    let source: LiveSource | null = null;
    let closed = false;
    const viewMessage = (): NodeMessage => ({ topic: 'uplink-live', payload: liveView(source, node.latestCapture) });
    const push = () => {
      if (closed) return;
      pushToBrowsers(base, node, viewMessage());
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

    registerWidget(
      group,
      node,
      def,
      {
        beforeSend: () => viewMessage(),
        onInput: (msg: NodeMessage) => base.stores.data.save(base, node, msg),
      },
      COMPONENT,
    );
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
  RED.httpNode?.get('/uplink-live/:id/still', ...dashboardMiddleware(RED), (req: Request, res: Response) => {
    const n = RED.nodes.getNode(String(req.params.id)) as LiveNode | null;
    const u = n && n.type === TYPE ? n.latestCapture : undefined;
    if (!isStill(u)) {
      res.status(404).end();
      return;
    }
    sendImageFile(res, u.file, u.contentType as string);
  });
};
