import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { Request, Response } from 'express';
import type { OfflineQueue } from '../../lib/queue/engine';
import type { QueueStats } from '../../lib/queue/status';
import type { Msg, Uplink } from '../../lib/message/uplink';
import { StatusBoard } from '../../lib/dashboard/board';
import { parseStatusWidgetConfig } from '../../lib/dashboard/config';
import { ActionError, parseStatusAction } from '../../lib/dashboard/actions';
import { FlowNodeDef, targetsFedBy } from '../../lib/dashboard/wiring';
import { describeDbError } from '../../lib/queue/status';
import { EditorConfig, registerNode } from '../common/node';
import { dashboardGroupOf, dashboardMiddleware, pushToBrowsers, registerWidget, sendImageFile, widgetConfigOf } from '../common/dashboard';
import type { QueueNode } from '../common/queue-node';
import type { CapturePublisher, LinkPublisher } from '../common/watch';
import type { TargetConfigNode } from '../common/target-config';

// The Uplink status widget for Node-RED Dashboard 2.0: this adapter watches the queue, connectivity and capture nodes
// picked in its editor (what they already publish, in-process), keeps the view in a StatusBoard and sends it to the
// dashboard's browsers; the Vue component (ui/, built into resources/) draws it. The dashboard is optional: this file
// loads without it, and a widget deployed without one says so in its status.

const TYPE = 'ui-uplink-status';
const QUEUE_TYPE = 'uplink-offline-queue';
/** Days of outages the widget lists. */
const OUTAGE_DAYS = 7;
/** Without changes in the queue, the budgets are drawn again this often (a new day starts, another queue sends). */
const BUDGET_REFRESH_MS = 60_000;
/** The Vue component, as package.json's "node-red-dashboard-2" section names it. */
const COMPONENT = { type: TYPE, component: 'UIUplinkStatus' };

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
    const group = dashboardGroupOf(RED, node, def.group);
    if (!group) return;
    const config = widgetConfigOf(node, () => parseStatusWidgetConfig(def));
    if (!config) return;
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
        pushToBrowsers(base, node, viewMessage());
      }, 50);
    };

    let queueNode: QueueNode | null = null;
    let queueName = config.queue;
    const setStatus = () => {
      const q = board.queueView();
      if (!q.running) node.status({ fill: 'yellow', shape: 'ring', text: (q.problem ?? '').slice(0, 80) });
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
    let budgeted = false;
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
      // The byte budgets drawn are those of the targets this queue's uploaders send to, as wired in the deployed flow.
      const defs: FlowNodeDef[] = [];
      RED.nodes.eachNode((d) => void defs.push(d as unknown as FlowNodeDef));
      const targets = targetsFedBy(config.queue, defs);
      budgeted = targets.length > 0;
      board.setBudgetSource(() =>
        targets.flatMap(({ config: id }) => {
          const target = RED.nodes.getNode(id) as TargetConfigNode | null;
          const budget = target?.target?.budget;
          return budget ? [{ target: target.name || target.id, figures: budget.snapshot() }] : [];
        }),
      );
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
    const budgetTimer = setInterval(() => {
      if (budgeted) push();
    }, BUDGET_REFRESH_MS);
    budgetTimer.unref();

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

    registerWidget(
      group,
      node,
      def,
      {
        // Messages wired in are errors to list (Catch, an uploader's failure output); what the browsers get is the view.
        beforeSend: (msg: NodeMessage) => {
          board.noteMessage(msg as Msg);
          return viewMessage();
        },
        onInput: (msg: NodeMessage) => base.stores.data.save(base, node, msg),
      },
      COMPONENT,
    );
    attach();

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      clearTimeout(pushTimer);
      clearInterval(budgetTimer);
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
  RED.httpNode?.get('/uplink-status/:id/capture', ...dashboardMiddleware(RED), (req: Request, res: Response) => {
    const u = statusNode(req)?.latestCapture;
    if (!u?.file || !/^image\//.test(u.contentType ?? '')) {
      res.status(404).end();
      return;
    }
    sendImageFile(res, u.file, u.contentType as string);
  });
};
