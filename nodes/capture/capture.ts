import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { Capturer, CaptureResult } from '../../lib/capture/capture';
import { parseCaptureConfig } from '../../lib/capture/capture-config';
import { createSource } from '../../lib/capture/sources';
import { TriggerGate } from '../../lib/capture/trigger';
import { CaptureError } from '../../lib/capture/types';
import { fmtBytes } from '../../lib/queue-store';

type Msg = Record<string, unknown>;

interface CaptureNode extends Node {
  capturer?: Capturer;
}

export = function (RED: NodeAPI) {
  function CaptureNodeCtor(this: CaptureNode, def: NodeDef & Record<string, unknown>) {
    RED.nodes.createNode(this, def);
    const node = this;
    const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
    let config;
    let capturer: Capturer;
    try {
      config = parseCaptureConfig(def, userDir);
      const source = createSource(String(def.source || 'test-pattern'), def, (node.credentials ?? {}) as Record<string, unknown>, config.camera);
      capturer = new Capturer(source, config);
    } catch (e) {
      node.status({ fill: 'red', shape: 'ring', text: 'configuration error' });
      node.error(`configuration error: ${(e as Error).message}`);
      node.on('input', (_msg, _send, done) => done(new Error(`not capturing: configuration error: ${(e as Error).message}`)));
      return;
    }
    node.capturer = capturer;
    type Job = { msg: Msg; send: (m: NodeMessage) => void; done: (err?: Error) => void };
    const gate = new TriggerGate<Job>(config.trigger);
    const closing = new AbortController();
    const fromMessage = capturer.source.kind === 'message';
    node.status({ fill: 'grey', shape: 'dot', text: `ready · ${capturer.source.kind}` });

    const output = (trigger: Msg, r: CaptureResult, data?: Buffer): NodeMessage => {
      const uplink = { ...((trigger.uplink as Msg) ?? {}), ...r };
      return { ...trigger, payload: config.includeBuffer && data ? data : r.file, uplink } as NodeMessage;
    };

    const run = async (msg: Msg, send: (m: NodeMessage) => void, done: (err?: Error) => void): Promise<void> => {
      node.status({ fill: 'blue', shape: 'dot', text: 'capturing…' });
      const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(config.timeoutMs)]);
      try {
        let given: Buffer | undefined;
        if (fromMessage) {
          if (!Buffer.isBuffer(msg.payload)) throw new CaptureError('msg.payload must be the image as a Buffer (a JPEG or PNG)', 'NO_IMAGE');
          given = msg.payload;
        }
        const r = await capturer.capture(signal, given);
        const t = new Date(r.capturedAt);
        node.status({ fill: 'green', shape: 'dot', text: `${t.toTimeString().slice(0, 8)} · ${fmtBytes(r.bytes)}` });
        send(output(msg, r, config.includeBuffer ? (given ?? undefined) : undefined));
        done();
      } catch (e) {
        if (closing.signal.aborted) return done();
        const err = e instanceof CaptureError ? e : new CaptureError((e as Error).message, 'ERROR');
        const why = signal.aborted && err.code !== 'TIMEOUT' ? `no image within ${config.timeoutMs / 1000} s (${err.message})` : err.message;
        node.status({ fill: 'red', shape: 'ring', text: why.slice(0, 60) });
        done(Object.assign(new Error(`capture failed: ${why}`), { code: err.code }));
      }
    };

    // One capture at a time; a kept trigger runs when the one before it has finished.
    const start = (job: Job): void => {
      void run(job.msg, job.send, job.done).finally(() => {
        const queued = gate.finished();
        if (queued) start(queued);
      });
    };

    node.on('input', (msg, send, done) => {
      const job: Job = { msg: msg as unknown as Msg, send: send as (m: NodeMessage) => void, done };
      const verdict = gate.offer(job.msg, Date.now(), job);
      if (verdict === 'capture') start(job);
      else if (verdict !== 'queued') {
        if (verdict === 'busy-skipped' || verdict === 'queue-full') {
          node.status({ fill: 'yellow', shape: 'ring', text: `trigger ${verdict === 'queue-full' ? 'dropped: queue full' : 'skipped: still capturing'}` });
        }
        done();
      }
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing.abort();
      for (const job of gate.drain()) job.done();
      capturer.source.close().then(done, done);
    });
  }

  RED.nodes.registerType('uplink-capture', CaptureNodeCtor as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: { username: { type: 'text' }, password: { type: 'password' } },
  } as never);
};
