import path from 'path';
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import type { Request, Response } from 'express';
import { ConnectivityMonitor, ConnectivityState } from '../../lib/connectivity/monitor';
import { connectivityStatus } from '../../lib/connectivity/status';
import { describeProbe, parseConnectivityConfig, targetProbeSettings } from '../../lib/connectivity/config';
import type { TargetConfigNode } from '../common/target-config';
import { readUplink } from '../../lib/message/uplink';
import { EditorConfig, localHttpBase, refuseMisconfigured, registerNode, waitForConfiguration } from '../common/node';
import { LinkPublisher, LinkState, Watchers } from '../common/watch';
import { NotConfiguredError } from '../../lib/util/settings';
import { boardOf, labelOf, offBoardOnClose } from '../common/board';
import { OutageLog } from '../../lib/connectivity/outage-log';

interface ConnectivityNode extends Node, LinkPublisher {
  monitor?: ConnectivityMonitor;
  target?: string;
  /** The outage log, once open (undefined when off or it could not be opened). */
  outageLog?: Promise<OutageLog | undefined>;
  label?: string;
}

/**
 * Where the outage log is kept: the node's setting, relative to Node-RED's folder; blank for uplink/outages.db there.
 * A runtime with no user folder (an embedding host, a test harness) keeps none unless a file is given.
 */
function outageLogFile(def: EditorConfig, userDir: string | undefined): string | null {
  if (def.keepLog === false || def.keepLog === 'false') return null;
  const given = typeof def.logFile === 'string' ? def.logFile.trim() : '';
  if (!given && !userDir) return null;
  return path.resolve(userDir ?? process.cwd(), given || 'uplink/outages.db');
}

const TYPE = 'uplink-connectivity';

function stateMessage(state: ConnectivityState, target: string): NodeMessage & { payload: LinkState } {
  return {
    topic: 'connectivity',
    payload: { online: state.online, since: new Date(state.since).toISOString(), latency: state.latencyMs, reason: state.reason, target },
  };
}

export = function (RED: NodeAPI) {
  function ConnectivityNodeCtor(this: ConnectivityNode, def: EditorConfig<{ probeType: string; targetType: string }>) {
    RED.nodes.createNode(this, def);
    const node = this;
    const linkStates = (node.linkStates = new Watchers<LinkState>());
    node.on('close', () => linkStates.clear());
    let config;
    try {
      let raw: Record<string, unknown> = def;
      if (String(def.probeType ?? 'target') === 'target') {
        // Probe what the uploads will use: the endpoint of the chosen storage config node.
        const kind = def.targetType || 's3';
        const target = RED.nodes.getNode(String(def[kind] ?? '')) as TargetConfigNode | null;
        if (!target) throw new Error(`choose the ${kind} target whose endpoint to probe`);
        // Its config node has said so in the log: here only the status, and the state for the queue.
        if (target.notConfigured) return notConfigured(node, def, target.notConfigured, false);
        if (!target.target) throw new Error(`the ${kind} target "${target.name || target.id}" is not usable: ${target.configError ?? 'see its error'}`);
        raw = { ...def, ...targetProbeSettings(target.target.backend.endpoint()) };
      }
      config = parseConnectivityConfig(raw, { localBase: localHttpBase(RED) });
    } catch (e) {
      if (e instanceof NotConfiguredError) return notConfigured(node, def, e.message, true);
      refuseMisconfigured(node, (e as Error).message, 'not running');
      return;
    }
    const gate = config.gate;
    const target = describeProbe(config.probe);
    node.target = target;
    // Outputs: state changes only; or, as a gate, [online, offline, state changes].
    const toState = (msg: NodeMessage | null): (NodeMessage | null)[] => (gate ? [null, null, msg] : [msg]);

    const label = labelOf(node, def);
    node.label = label;
    const logFile = outageLogFile(def, RED.settings.userDir);
    const outageLog = logFile
      ? OutageLog.open(logFile).catch((e: Error) => {
          node.warn(`the outage log cannot be kept in ${logFile}: ${e.message}`);
          return undefined;
        })
      : Promise.resolve(undefined);
    node.outageLog = outageLog;
    // Changes are written one after another, in the order they happened.
    let written: Promise<unknown> = Promise.resolve();
    let lastChange: number | null = null;
    // Read after the changes already under way are written, so a reader told of a change finds it in the log.
    node.outagesOf = async (days) => {
      await written;
      return (await outageLog)?.summary({ monitor: label, days });
    };
    const monitor = new ConnectivityMonitor(config.probe, config.timing, {
      change: (state) => {
        const msg = stateMessage(state, target);
        node.send(toState(msg));
        linkStates.publish(msg.payload);
        node.log(`${target}: ${state.online ? 'online' : 'offline'} (${state.reason})`);
        if (state.online === null) return;
        const previousMs = lastChange === null ? null : state.since - lastChange;
        lastChange = state.since;
        const entry = { monitor: label, target, at: state.since, online: state.online, reason: state.reason, previousMs };
        written = written.then(() => outageLog).then((log) => log?.record(entry)).catch((e: Error) => node.warn(`outage log: ${e.message}`));
      },
      probed: (_result, state) => node.status(connectivityStatus(state, Date.now())),
    });
    node.monitor = monitor;
    offBoardOnClose(node, boardOf(RED).addLink(node.id, { name: labelOf(node, def), current: () => monitor.current(), changes: () => monitor.uptime().changes }));
    node.status(connectivityStatus(monitor.current(), Date.now()));
    monitor.start();

    node.on('input', (msg, send, done) => {
      const uplink = readUplink(msg);
      if (msg.topic === 'probe') {
        monitor.probeNow();
      } else if (msg.topic === 'history') {
        void historyOf(node).then(
          (payload) => send(toState({ topic: 'connectivity/history', payload })),
          (e: Error) => node.warn(`history: ${e.message}`),
        );
      } else if (uplink.ack !== undefined) {
        // An upload's outcome is evidence: a success proves the target answers; a failure that is not the item's own
        // fault (a network error, a timeout, a 5xx) is worth checking at once.
        const error = uplink.error ?? {};
        if (uplink.ack) monitor.report(true, 'upload succeeded');
        else if (error.class !== 'permanent' && error.class !== 'held' && error.permanent !== true) monitor.report(false, String(error.message ?? 'upload failed'));
      } else if (gate) {
        const online = monitor.current().online === true;
        send(online ? [msg, null, null] : [null, msg, null]);
      } else {
        monitor.probeNow();
      }
      done();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      monitor.stop();
      void written.then(() => outageLog).then((log) => log?.close()).then(done, done);
    });
  }

  /** The live history and, from the outage log, the outages of the last 30 days and the last changes. */
  async function historyOf(node: ConnectivityNode) {
    const m = node.monitor!;
    const log = await node.outageLog;
    const kept = log ? { outages: await log.summary({ monitor: node.label, days: 30 }), log: await log.entries({ monitor: node.label, limit: 100 }) } : {};
    return { target: node.target, state: m.current(), history: m.history(), uptime: m.uptime(), ...kept };
  }

  /**
   * Nothing to probe yet (the target's bucket, the URL… are blank): no request goes anywhere. Each time the flows have
   * started (after every deploy, so a queue restarted on its own hears it too), the wired queue is told the target is
   * offline and not configured, so it queues nothing meant for it; as a gate, every message leaves on output 2.
   */
  function notConfigured(node: ConnectivityNode, def: EditorConfig, why: string, log: boolean): void {
    const gate = def.gate === true || def.gate === 'true';
    const since = new Date().toISOString();
    const payload: LinkState = { online: false, configured: false, since, reason: why };
    const state: NodeMessage = { topic: 'connectivity', payload };
    node.linkStates?.publish(payload);
    const tell = () => node.send(gate ? [null, null, state] : [state]);
    RED.events.on('flows:started', tell);
    node.on('close', () => RED.events.removeListener('flows:started', tell));
    waitForConfiguration(node, why, {
      log,
      input: (msg, send, done) => {
        if (gate && msg.topic !== 'probe' && msg.topic !== 'history' && readUplink(msg).ack === undefined) send([null, msg, null]);
        done();
      },
    });
  }

  registerNode(RED, TYPE, ConnectivityNodeCtor);

  RED.httpAdmin.get('/uplink/connectivity/:id/history', RED.auth.needsPermission(`${TYPE}.read`), (req: Request, res: Response) => {
    const node = RED.nodes.getNode(String(req.params.id)) as ConnectivityNode | null;
    if (!node || node.type !== TYPE || !node.monitor) {
      res.status(404).json({ error: `no running connectivity node ${String(req.params.id)}` });
      return;
    }
    historyOf(node).then(
      (body) => res.json(body),
      (e: Error) => res.status(500).json({ error: e.message }),
    );
  });
};
