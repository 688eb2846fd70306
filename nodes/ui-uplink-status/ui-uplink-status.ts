import fs from 'fs';
import path from 'path';
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { Request, RequestHandler, Response } from 'express';
import type { OfflineQueue } from '../../lib/queue/engine';
import type { QueueStats } from '../../lib/queue/status';
import type { Msg, Uplink } from '../../lib/message/uplink';
import { StatusBoard } from '../../lib/dashboard/board';
import { parseStatusWidgetConfig, StatusWidgetConfig } from '../../lib/dashboard/config';
import { ActionError, parseStatusAction } from '../../lib/dashboard/actions';
import { describeDbError } from '../../lib/queue/status';
import { EditorConfig, registerNode } from '../common/node';
import type { QueueNode } from '../common/queue-node';
import type { CapturePublisher, LinkPublisher } from '../common/watch';

// The Uplink status widget for Node-RED Dashboard 2.0: this adapter watches the queue, connectivity and capture nodes
// picked in its editor (what they already publish, in-process), keeps the view in a StatusBoard and sends it to the
// dashboard's browsers; the Vue component (ui/, built into resources/) draws it. The dashboard is optional: this file
// loads without it, and a widget deployed without one says so in its status.

const TYPE = 'ui-uplink-status';
const QUEUE_TYPE = 'uplink-offline-queue';
/** The Vue component, as package.json's "node-red-dashboard-2" section names it. */
/** Days of outages the widget lists. */
const OUTAGE_DAYS = 7;
const COMPONENT = { name: TYPE, src: `${TYPE}.umd.js`, component: 'UIUplinkStatus' };
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

interface StatusNode extends Node {
  /** Retry or purge, asked by a browser through the admin endpoint below; resolves to what the queue did. */
  act?: (action: string, body: unknown) => Promise<string>;
  /** The latest capture's file and type, for the image endpoint (never sent to a browser). */
  latestCapture?: Uplink;
}

export = function (RED: NodeAPI) {
  function UplinkStatusNode(this: StatusNode, def: EditorConfig<{ group: string }>) {
    RED.nodes.createNode(this, def);
    const node = this;
    const group = RED.nodes.getNode(String(def.group ?? '')) as DashboardGroup | null;
    if (!group || typeof group.register !== 'function' || typeof group.getBase !== 'function') {
      node.status({ fill: 'red', shape: 'ring', text: 'needs Dashboard 2.0 and a ui-group' });
      node.error('this widget needs Node-RED Dashboard 2.0 (@flowfuse/node-red-dashboard) and a ui-group to show it in');
      return;
    }
    let config: StatusWidgetConfig;
    try {
      config = parseStatusWidgetConfig(def);
    } catch (e) {
      node.status({ fill: 'red', shape: 'ring', text: 'configuration error' });
      node.error(`configuration error: ${(e as Error).message}`);
      return;
    }
    const base = group.getBase();
    const board = new StatusBoard(config.actions, config.failedShown);
    const viewMessage = (): NodeMessage => ({ topic: 'uplink-status', payload: board.view() });

    // Changes arrive in bursts (stats, a capture, an error): one view goes out for each burst.
    let pushTimer: NodeJS.Timeout | undefined;
    let closed = false;
    const push = () => {
      if (pushTimer || closed) return;
      pushTimer = setTimeout(() => {
        pushTimer = undefined;
        if (closed) return;
        const msg = viewMessage();
        base.stores.data.save(base, node, msg);
        base.emit(`msg-input:${node.id}`, msg, node);
      }, 50);
    };

    let queueNode: QueueNode | null = null;
    let queueName = config.queue;
    const setStatus = () => {
      const v = board.view();
      if (!v.queue.running) node.status({ fill: 'yellow', shape: 'ring', text: (v.queue.problem ?? '').slice(0, 80) });
      else node.status({ fill: 'green', shape: 'dot', text: `showing "${queueName}"` });
    };

    // The failed items are read again only when their count changes (or after an action), one read at a time.
    let reading = false;
    let readAgain = false;
    const readFailed = async (queue: OfflineQueue, total: number) => {
      if (reading) {
        readAgain = true;
        return;
      }
      reading = true;
      try {
        board.setFailed(await queue.listFailed(config.failedShown, 0), total);
        push();
      } catch (e) {
        if (!closed) node.warn(`reading the failed items: ${describeDbError(e)}`);
      } finally {
        reading = false;
        if (readAgain && !closed) {
          readAgain = false;
          void queue.stats().then((s) => readFailed(queue, s.failed + s.expired), () => undefined);
        }
      }
    };
    const onStats = (q: QueueNode, s: QueueStats) => {
      if (closed || q !== queueNode) return;
      const failedChanged = board.setStats(s);
      if (failedChanged && q.queue) void readFailed(q.queue, s.failed + s.expired);
      setStatus();
      push();
    };

    // Picks up the nodes again after every deploy: a redeployed queue is a new node with a new queue.
    let unwatch: (() => void)[] = [];
    const attach = () => {
      for (const u of unwatch) u();
      unwatch = [];
      const q = RED.nodes.getNode(config.queue) as QueueNode | null;
      queueNode = q && q.type === QUEUE_TYPE ? q : null;
      if (!queueNode) {
        board.setProblem('the offline queue picked in this widget is not deployed');
      } else {
        const picked = queueNode;
        queueName = picked.name || picked.id;
        if (picked.statsWatchers) unwatch.push(picked.statsWatchers.watch((s) => onStats(picked, s)));
        void (picked.ready ?? Promise.resolve(undefined)).then(async (queue) => {
          if (closed || picked !== queueNode) return;
          if (!queue) {
            board.setProblem('the queue is not running (see its status)');
            setStatus();
            push();
            return;
          }
          const s = await queue.stats();
          onStats(picked, s);
          void readFailed(queue, s.failed + s.expired);
        }).catch((e: unknown) => node.warn(`reading the queue's stats: ${describeDbError(e)}`));
      }
      const link = config.connectivity ? (RED.nodes.getNode(config.connectivity) as (Node & LinkPublisher) | null) : null;
      if (link?.linkStates) {
        // Each change of the link is also a new row in its outage log: read the list again then.
        const readOutages = () =>
          void link.outagesOf?.(OUTAGE_DAYS).then(
            (s) => {
              board.setOutages(OUTAGE_DAYS, s ?? null);
              push();
            },
            (e: Error) => node.warn(`reading the outage log: ${e.message}`),
          );
        unwatch.push(
          link.linkStates.watch((state) => {
            board.setLink(state);
            push();
            readOutages();
          }),
        );
      }
      const camera = config.capture ? (RED.nodes.getNode(config.capture) as (Node & CapturePublisher) | null) : null;
      if (camera?.captures) {
        unwatch.push(
          camera.captures.watch((u) => {
            node.latestCapture = u;
            board.setCapture(u);
            push();
          }),
        );
      }
      setStatus();
      push();
    };
    RED.events.on('flows:started', attach);

    node.act = async (action, body) => {
      if (config.actions !== 'permission') throw new ActionError('retry and purge are turned off on this widget', 403);
      const parsed = parseStatusAction(action, body);
      const picked = queueNode;
      const queue = picked ? await picked.ready : undefined;
      if (!picked || !queue) throw new ActionError('the queue is not running (see its status)', 503);
      for (const id of parsed.ids ?? []) {
        const [row] = await queue.listFailed(1, id - 1);
        if (row?.id !== id) throw new ActionError(`item ${id} is not a failed item of queue "${queueName}"`, 404);
      }
      const result = await queue.command(parsed.command, parsed.ids, false);
      node.log(`${result} (${parsed.command}${parsed.ids ? ` of item ${parsed.ids.join(', ')}` : ''}, from the dashboard)`);
      const s = await queue.stats();
      void readFailed(queue, s.failed + s.expired);
      return result;
    };

    group.register(node, def, {
      // Messages wired in are errors to list (Catch, an uploader's failure output); what the browsers get is the view.
      beforeSend: (msg: NodeMessage) => {
        board.noteMessage(msg as Msg);
        return viewMessage();
      },
      onInput: (msg: NodeMessage) => base.stores.data.save(base, node, msg),
    });
    // Dashboard 2.0 finds third-party widgets only in packages named node-red-dashboard-2-*: this one names its
    // component itself, in the form the dashboard gives the ones it finds (Node-RED serves resources/ at
    // /resources/<package>/).
    const entry = base.ui?.widgets?.get(node.id);
    if (entry && !entry.src) entry.src = { package: PACKAGE_NAME, path: PACKAGE_ROOT, ...COMPONENT };
    attach();

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      clearTimeout(pushTimer);
      RED.events.removeListener('flows:started', attach);
      for (const u of unwatch) u();
      unwatch = [];
      done();
    });
  }

  registerNode(RED, TYPE, UplinkStatusNode);

  const statusNode = (req: Request): StatusNode | null => {
    const node = RED.nodes.getNode(String(req.params.id)) as StatusNode | null;
    return node && node.type === TYPE ? node : null;
  };

  // Retry and purge, from the widget's buttons: the queue's own write permission, as for its admin endpoints. Only the
  // queue picked in the widget, only items that are failed items of it.
  RED.httpAdmin.post('/uplink/ui-uplink-status/:id/:action', RED.auth.needsPermission(`${QUEUE_TYPE}.write`), (req: Request, res: Response) => {
    const node = statusNode(req);
    if (!node?.act) {
      res.status(404).json({ error: `no Uplink status widget ${String(req.params.id)} is deployed` });
      return;
    }
    node.act(String(req.params.action), req.body).then(
      (result) => res.json({ result }),
      (e: unknown) => {
        if (e instanceof ActionError) res.status(e.status).json({ error: e.message });
        else res.status(500).json({ error: describeDbError(e) });
      },
    );
  });

  // The latest capture's image, by widget id (the file is the one the capture node reported, never a path from the
  // browser), behind the dashboard's own middleware where settings.js gives one (httpNodeAuth applies anyway).
  const settings = RED.settings as unknown as { dashboard?: { middleware?: unknown }; ui?: { middleware?: unknown } };
  const extra = settings.dashboard?.middleware ?? settings.ui?.middleware;
  const middleware = (typeof extra === 'function' ? [extra] : Array.isArray(extra) ? extra : []) as RequestHandler[];
  RED.httpNode?.get('/uplink-status/:id/capture', ...middleware, (req: Request, res: Response) => {
    const u = statusNode(req)?.latestCapture;
    if (!u?.file || !/^image\//.test(u.contentType ?? '')) {
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
