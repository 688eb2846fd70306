import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { Request, Response } from 'express';
import { parseQueueConfig, QueueConfig } from '../../lib/queue/config';
import { InputError, OfflineQueue } from '../../lib/queue/engine';
import { describeDbError } from '../../lib/queue/status';
import { COMMANDS, Command, classifyInput } from '../../lib/queue/input';
import { Done, EditorConfig, refuseMisconfigured, registerNode, Send, toNodeMessage, userDirOf } from '../common/node';
import type { QueueNode } from '../common/queue-node';
import { confirmQueued } from '../common/journal-owner';
import { boardOf, labelOf, offBoardOnClose } from '../common/board';
import path from 'path';
import { Watchers } from '../common/watch';

const TYPE = 'uplink-offline-queue';

export = function (RED: NodeAPI) {
  function OfflineQueueNode(this: QueueNode, def: EditorConfig) {
    RED.nodes.createNode(this, def);
    const node = this;

    // While the queue cannot run, an item is handed back on output 2 with the reason, like any item not queued.
    const refuse = (msg: NodeMessageInFlow, send: Send, done: Done, err: Error) => {
      if (classifyInput(msg).type === 'item') send([null, rejected(msg, err), null]);
      done(err);
    };
    const rejected = (msg: NodeMessage, err: Error): NodeMessage => ({ ...msg, error: { message: err.message, source: { id: node.id, type: TYPE } } });

    let config: QueueConfig;
    try {
      // The uploader finds this queue by its node id, which each delivered message carries.
      config = { ...parseQueueConfig(def, userDirOf(RED)), token: node.id };
    } catch (e) {
      refuseMisconfigured(node, (e as Error).message, 'not running', { refuse });
      return;
    }

    node.status({ fill: 'yellow', shape: 'ring', text: 'opening queue…' });
    const statsWatchers = (node.statsWatchers = new Watchers());
    node.ready = OfflineQueue.start(
      config,
      {
        deliver: (msg) => node.send([toNodeMessage(msg), null, null]),
        stats: (stats) => {
          node.send([null, null, { topic: 'stats', payload: stats }]);
          statsWatchers.publish(stats);
        },
        status: (s) => node.status(s),
        warn: (text) => node.warn(text),
        log: (text) => node.log(text),
      },
      `queue node "${def.name || node.id}"`,
    ).then(
      (queue) => {
        node.queue = queue;
        // The device monitor reads the same stats as output 3 and the admin endpoint.
        const remove = boardOf(RED).addQueue(node.id, { name: labelOf(node, def), folder: path.dirname(config.dbFile), stats: () => queue.stats() });
        offBoardOnClose(node, remove);
        if (queue.store.movedAside) node.error(`the queue database was corrupt: it was moved to ${queue.store.movedAside} and a fresh one started (${queue.store.salvaged} queued items recovered from it)`);
        return queue;
      },
      (e: Error) => {
        node.status({ fill: 'red', shape: 'ring', text: describeDbError(e).slice(0, 120) });
        node.error(`cannot start the queue: ${describeDbError(e)}`);
        return undefined;
      },
    );

    node.on('input', (msg, send, done) => {
      void (async () => {
        const queue = await node.ready;
        if (!queue) {
          refuse(msg, send, done, new Error('not running: the queue database could not be opened (see the error at deploy)'));
          return;
        }
        try {
          const r = await queue.handle(msg);
          if (r.kind === 'queued') confirmQueued(RED, msg);
          done();
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          if (e instanceof InputError && e.rejectedMsg) {
            send([null, rejected(msg, err), null]);
          }
          done(err);
        }
      })();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      statsWatchers.clear();
      void (async () => {
        const queue = await node.ready;
        try {
          await queue?.close();
        } catch (e) {
          node.warn(`closing the queue database: ${(e as Error).message}`);
        }
        done();
      })();
    });
  }

  registerNode(RED, TYPE, OfflineQueueNode);

  // Admin endpoints, behind Node-RED's admin permissions (read for looking, write for changing).
  const read = RED.auth.needsPermission(`${TYPE}.read`);
  const write = RED.auth.needsPermission(`${TYPE}.write`);

  const withQueue =
    (fn: (q: OfflineQueue, req: Request, res: Response) => Promise<unknown>) =>
    (req: Request, res: Response): void => {
      const node = RED.nodes.getNode(String(req.params.id)) as QueueNode | null;
      if (!node || node.type !== TYPE) {
        res.status(404).json({ error: `no offline-queue node ${req.params.id} is deployed` });
        return;
      }
      void (node.ready ?? Promise.resolve(undefined)).then(async (q) => {
        if (!q) {
          res.status(503).json({ error: 'the queue is not running (see its status)' });
          return;
        }
        try {
          res.json(await fn(q, req, res));
        } catch (e) {
          res.status(500).json({ error: describeDbError(e) });
        }
      });
    };

  RED.httpAdmin.get('/uplink/queue/:id/stats', read, withQueue((q) => q.stats()));
  RED.httpAdmin.get(
    '/uplink/queue/:id/failed',
    read,
    withQueue((q, req) => q.listFailed(Number(req.query.limit) || 100, Number(req.query.after) || 0)),
  );
  RED.httpAdmin.post(
    '/uplink/queue/:id/:command',
    write,
    (req: Request, res: Response, next: () => void) => {
      const command = String(req.params.command);
      if ((COMMANDS as readonly string[]).includes(command) && command !== 'stats') next();
      else res.status(400).json({ error: `unknown command "${command}" (pause, resume, retry-failed, purge-failed)` });
    },
    withQueue(async (q, req) => {
      const command = String(req.params.command) as Command;
      const body = (req.body ?? {}) as { ids?: unknown; deleteFiles?: unknown };
      const ids = Array.isArray(body.ids) ? body.ids.map(Number).filter((n) => Number.isInteger(n) && n > 0) : undefined;
      return { result: await q.command(command, ids, body.deleteFiles === true) };
    }),
  );
};
