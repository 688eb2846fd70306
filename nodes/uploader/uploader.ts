import type { Node, NodeAPI, NodeMessageInFlow } from 'node-red';
import { DEFAULT_KEY_TEMPLATE, KeyTemplateError, validateKeyTemplate } from '../../lib/message/object-key';
import { Uploader } from '../../lib/upload/uploader';
import { BackendKind, isBackendKind } from '../../lib/upload/registry';
import { fmtBytes } from '../../lib/util/format';
import type { TargetConfigNode } from '../common/target-config';
import type { QueueNode } from '../common/queue-node';
import { Done, EditorConfig, refuseMisconfigured, registerNode, Send, toNodeMessage, waitForConfiguration } from '../common/node';
import { boardOf, labelOf, offBoardOnClose } from '../common/board';
import { uploadFailureKind } from '../../lib/monitor/metrics';
import { CaptureTimes } from '../../lib/message/clock';
import { readUplink } from '../../lib/message/uplink';
import { systemClock } from '../../lib/capture/system-clock';

const TYPE = 'uplink-uploader';

interface UploaderNode extends Node {
  uploader?: Uploader;
}

type UploaderConfig = EditorConfig<{ backend: string; keyTemplate: string }>;

export = function (RED: NodeAPI) {
  function UploaderNodeCtor(this: UploaderNode, def: UploaderConfig) {
    RED.nodes.createNode(this, def);
    const node = this;
    const fail = (why: string) => refuseMisconfigured(node, why, 'not uploading', { status: why.slice(0, 60) });

    const backend: BackendKind = isBackendKind(def.backend) ? def.backend : 's3';
    const config = RED.nodes.getNode(String(def[backend] ?? '')) as TargetConfigNode | null;
    if (!config) return fail(`choose a ${backend} target (config node)`);
    // Its config node has said so in the log; items that reach this node anyway go back to their queue when their
    // lease runs out, and are sent once the target is configured.
    if (config.notConfigured) return waitForConfiguration(node, config.notConfigured);
    if (!config.target) return fail(`the ${backend} target "${config.name || config.id}" is not usable: ${config.configError ?? 'see its error'}`);
    const template = typeof def.keyTemplate === 'string' && def.keyTemplate.trim() !== '' ? def.keyTemplate.trim() : DEFAULT_KEY_TEMPLATE;
    try {
      validateKeyTemplate(template);
    } catch (e) {
      return fail(`key template: ${(e as KeyTemplateError).message}`);
    }

    const uploader = new Uploader(config.target, template);
    node.uploader = uploader;
    // The queue that delivered an item keeps its upload progress: found by the id it put into msg.uplink.item.queue.
    uploader.findQueue = (id) => {
      const queue = (RED.nodes.getNode(id) as QueueNode | null)?.queue;
      return queue?.isOpen ? queue.itemProgress() : undefined;
    };
    const { tally, remove } = boardOf(RED).uploader(node.id, labelOf(node, def), backend);
    offBoardOnClose(node, remove);
    tally.budget = () => config.target?.budget?.snapshot();
    const closing = new AbortController();
    let last = 'ready';
    let lastFill: 'green' | 'yellow' | 'red' | 'grey' = 'grey';
    const show = () => {
      const n = uploader.active;
      const big = uploader.progress.find((p) => p.bytes > 0 && p.sent < p.bytes);
      const moving = big ? ` · ${big.key.split('/').pop()} ${Math.floor((big.sent / big.bytes) * 100)}% of ${fmtBytes(big.bytes)}` : '';
      node.status({ fill: lastFill, shape: lastFill === 'green' || lastFill === 'grey' ? 'dot' : 'ring', text: `${last}${n > 0 ? ` · ${n} in flight` : ''}${moving}` });
    };
    show();
    // Progress of a large upload shows in the status, at most once a second.
    let progressTimer: NodeJS.Timeout | undefined;
    uploader.onProgress = () => {
      progressTimer ??= setTimeout(() => {
        progressTimer = undefined;
        show();
      }, 1000);
    };
    uploader.onWarning = (text) => node.warn(text);

    // Captures taken before the clock was right get their time and key corrected before the key is made.
    const times = new CaptureTimes(systemClock(), { trustedUrl: config.target.backend.endpoint() });
    // The flow says whether the link is metered (an LTE modem's state, a second connectivity probe): a budget's
    // "large items only on an unmetered link" follows it.
    const metered = (msg: { topic?: unknown; payload?: unknown }): boolean => {
      if (msg.topic !== 'metered') return false;
      const budget = config.target?.budget;
      const v = msg.payload === true || msg.payload === 'true' ? true : msg.payload === false || msg.payload === 'false' ? false : null;
      if (budget) budget.metered = v;
      else node.warn('msg.topic "metered" has no effect: the target has no budget and no unmetered-only size set');
      // Items that waited for an unmetered link go now, not at their next look.
      if (budget && v === false) {
        for (const id of queuesSeen) {
          const queue = (RED.nodes.getNode(id) as QueueNode | null)?.queue;
          if (queue?.isOpen) void queue.wakeWaiting().catch((e: Error) => node.warn(`waking the queue: ${e.message}`));
        }
      }
      return true;
    };
    const queuesSeen = new Set<string>();
    const handle = (input: NodeMessageInFlow, send: Send, done: Done) => void times.settle(input, closing.signal).then(({ msg, log }) => {
      if (log) node.log(log);
      const from = readUplink(msg).item?.queue;
      if (typeof from === 'string') queuesSeen.add(from);
      const started = Date.now();
      const p = uploader.upload(msg, closing.signal);
      show();
      void p.then((out) => {
        if (closing.signal.aborted) {
          // The flow is stopping: the queue sends this item again after its lease; say nothing that looks like a verdict.
          done();
          return;
        }
        if (out.ok && out.result) {
          last = `${out.result.key.split('/').pop()} · ${fmtBytes(out.result.bytes)}`;
          lastFill = 'green';
          tally.uploaded(Date.now(), out.result.bytes, (Date.now() - started) / 1000);
          send([toNodeMessage(out.msg), null]);
          done();
        } else {
          const e = out.error!;
          last = `${e.errorClass === 'permanent' ? 'failed' : e.errorClass === 'held' ? 'held' : 'will retry'}: ${e.message}`;
          lastFill = e.errorClass === 'permanent' ? 'red' : 'yellow';
          if (e.errorClass === 'retryable') tally.retried(uploadFailureKind(e.code, e.status));
          send([null, toNodeMessage(out.msg)]);
          // Routine, retryable failures (the link is down) are for the queue; a permanent one needs a person.
          if (e.errorClass === 'permanent') done(new Error(`upload failed: ${e.message}`));
          else done();
        }
        show();
      });
    });
    node.on('input', (input, send, done) => {
      if (metered(input)) return done();
      handle(input, send, done);
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing.abort();
      if (progressTimer) clearTimeout(progressTimer);
      done();
    });
  }

  registerNode(RED, TYPE, UploaderNodeCtor);
};
