import type { EventEmitter } from 'events';
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { parseRecorderConfig, RecorderConfig } from '../../lib/recorder/config';
import { Recorder, RecorderEvents } from '../../lib/recorder/recorder';

type Msg = Record<string, unknown>;

interface RecorderNode extends Node {
  recorder?: Recorder;
  ready?: Promise<Recorder | undefined>;
}

const TYPE = 'uplink-recorder';
const COMMANDS = ['start', 'stop', 'status'] as const;

function obj(v: unknown): Msg | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) ? (v as Msg) : undefined;
}

/** "start" / "stop" / "status" in msg.topic or msg.payload. */
function commandOf(msg: Msg): (typeof COMMANDS)[number] | undefined {
  for (const v of [msg.topic, msg.payload]) {
    const t = typeof v === 'string' ? v.trim().toLowerCase() : '';
    if ((COMMANDS as readonly string[]).includes(t)) return t as (typeof COMMANDS)[number];
  }
  return undefined;
}

export = function (RED: NodeAPI) {
  function RecorderNodeCtor(this: RecorderNode, def: NodeDef & Record<string, unknown>) {
    RED.nodes.createNode(this, def);
    const node = this;
    const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
    let config: RecorderConfig;
    try {
      config = parseRecorderConfig(def, (node.credentials ?? {}) as Msg, userDir);
    } catch (e) {
      node.status({ fill: 'red', shape: 'ring', text: 'configuration error' });
      node.error(`configuration error: ${(e as Error).message}`);
      node.on('input', (_msg, _send, done) => done(new Error(`not recording: configuration error: ${(e as Error).message}`)));
      return;
    }

    const events: RecorderEvents = {
      segment: (m) => node.send([m as unknown as NodeMessage, null]),
      status: (s) => node.status(s),
      event: (e) => node.send([null, { topic: e.event, payload: e } as unknown as NodeMessage]),
      warn: (t) => node.warn(t),
      log: (t) => node.log(t),
    };

    let closing = false;
    const begin = (): void => {
      if (closing || node.ready) return;
      node.ready = Recorder.open(config, events).then(
        (rec) => {
          node.recorder = rec;
          return rec;
        },
        (e: Error) => {
          node.status({ fill: 'red', shape: 'ring', text: e.message.slice(0, 80) });
          node.error(`cannot start recording: ${e.message}`);
          return undefined;
        },
      );
    };
    // Segments left by an earlier run are sent as soon as the recorder opens: wait until every flow has started, or
    // a message could reach a node that does not exist yet (the queue on another tab) and be lost.
    const runtimeEvents = (RED as unknown as { events: EventEmitter }).events;
    runtimeEvents.once('flows:started', begin);
    node.status({ fill: 'grey', shape: 'ring', text: 'starting…' });

    node.on('input', (m, send, done) => {
      const msg = m as unknown as Msg;
      void (async () => {
        const rec = await (node.ready ?? Promise.resolve(undefined));
        if (!rec) return done(new Error('not recording: the recorder did not start (see its status)'));
        try {
          const uplink = obj(msg.uplink);
          if (uplink && obj(uplink.upload) && typeof uplink.file === 'string') {
            await rec.uploaded(uplink.file);
            return done();
          }
          switch (commandOf(msg)) {
            case 'start':
              rec.start();
              break;
            case 'stop':
              await rec.stop();
              break;
            case 'status':
              send([null, { topic: 'stats', payload: rec.snapshot() } as unknown as NodeMessage]);
              break;
            default:
              break;
          }
          done();
        } catch (e) {
          done(e instanceof Error ? e : new Error(String(e)));
        }
      })();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      runtimeEvents.removeListener('flows:started', begin);
      void (async () => {
        try {
          const rec = await node.ready;
          await rec?.close();
        } catch (e) {
          node.warn(`closing the recorder: ${(e as Error).message}`);
        }
        done();
      })();
    });
  }

  RED.nodes.registerType(TYPE, RecorderNodeCtor as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: { username: { type: 'text' }, password: { type: 'password' } },
  } as never);
};
