import type { Node, NodeAPI } from 'node-red';
import type { NextFunction, Request, Response } from 'express';
import { parseMonitorConfig } from '../../lib/monitor/config';
import { DeviceMonitor } from '../../lib/monitor/device-monitor';
import { EditorConfig, refuseMisconfigured, registerNode } from '../common/node';
import { boardOf } from '../common/board';

const TYPE = 'uplink-monitor';

interface MonitorNode extends Node {
  monitor?: DeviceMonitor;
}

/** The monitor that answers /uplink/health and /uplink/metrics: the first one deployed (one per Node-RED). */
let serving: MonitorNode | undefined;

export = function (RED: NodeAPI) {
  const board = boardOf(RED);

  function MonitorNodeCtor(this: MonitorNode, def: EditorConfig) {
    RED.nodes.createNode(this, def);
    const node = this;
    let config;
    try {
      config = parseMonitorConfig(def);
    } catch (e) {
      refuseMisconfigured(node, (e as Error).message, 'not watching');
      return;
    }
    const show = (v: { status: string; reasons: string[] }) => {
      const fill = v.status === 'healthy' ? 'green' : v.status === 'degraded' ? 'yellow' : 'red';
      node.status({ fill, shape: fill === 'green' ? 'dot' : 'ring', text: [v.status, v.reasons[0]].filter(Boolean).join(': ').slice(0, 100) });
    };
    const monitor = new DeviceMonitor(
      board,
      config,
      (alert) => {
        node.send({ topic: `uplink/alert/${alert.alert}`, payload: alert });
        const line = `${alert.state === 'raised' ? 'alert' : 'alert cleared'}: ${alert.message}`;
        if (alert.state === 'raised' && alert.severity === 'critical') node.warn(line);
        else node.log(line);
      },
      undefined,
      show,
    );
    node.monitor = monitor;

    const paths = [config.health ? '/uplink/health' : '', config.metrics ? '/uplink/metrics' : ''].filter(Boolean);
    if (serving && serving !== node) {
      node.warn(`another device monitor ("${serving.name || serving.id}") answers ${paths.join(' and ') || 'health and metrics'}: this one only sends alerts`);
    } else {
      serving = node;
      board.metrics.verdict = () => monitor.verdict();
      if (config.metrics) board.metrics.withProcessMetrics();
      if (paths.length && !RED.httpNode) node.warn(`${paths.join(' and ')} cannot be served: HTTP nodes are off (httpNodeRoot is false)`);
    }
    node.status({ fill: 'grey', shape: 'dot', text: `watching${paths.length ? ` · ${paths.join(', ')}` : ''}` });
    monitor.start();
    // A first look soon after every flow has started (queues open, links probed), then every check interval.
    const firstLook = setTimeout(() => void monitor.check().then(show, () => {}), 1000);

    node.on('input', (msg, send, done) => {
      // Any message asks for a look now; the answer is the health body, on the same output as the alerts.
      void monitor.health().then(
        (h) => {
          show(h.body);
          send({ ...msg, topic: 'uplink/health', payload: h.body });
          done();
        },
        (e: Error) => done(e),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearTimeout(firstLook);
      monitor.stop();
      if (serving === node) {
        serving = undefined;
        board.metrics.verdict = undefined;
      }
      done();
    });
  }

  registerNode(RED, TYPE, MonitorNodeCtor);

  // The endpoints are registered once, on the HTTP node server (httpNodeAuth and httpNodeMiddleware apply, as for an
  // http in node); while no device monitor serves them, they fall through to Node-RED's 404.
  const app = RED.httpNode as unknown as { get?: (path: string, h: (req: Request, res: Response, next: NextFunction) => void) => void } | undefined;
  if (!app?.get) return;
  app.get('/uplink/health', (_req: Request, res: Response, next: NextFunction) => {
    const m = serving?.monitor;
    if (!m || !m.config.health) return next();
    m.health().then(
      (h) => {
        res.set('Cache-Control', 'no-store');
        res.status(h.code).json(h.body);
      },
      (e: Error) => res.status(500).json({ status: 'unhealthy', reasons: [`the health check failed: ${e.message}`] }),
    );
  });
  app.get('/uplink/metrics', (_req: Request, res: Response, next: NextFunction) => {
    const m = serving?.monitor;
    if (!m || !m.config.metrics) return next();
    board.metrics.text().then(
      (t) => {
        res.set('Content-Type', t.contentType);
        res.set('Cache-Control', 'no-store');
        res.send(t.body);
      },
      (e: Error) => res.status(500).type('text/plain').send(`# metrics failed: ${e.message}\n`),
    );
  });
};
