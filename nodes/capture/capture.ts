import type { NodeAPI, NodeMessage } from 'node-red';
import { Capturer, CaptureResult } from '../../lib/capture/still';
import { parseCaptureConfig } from '../../lib/capture/config';
import { ClipRecorder, ClipResult, createClipRecorder, requestedLength } from '../../lib/capture/clip';
import { MetadataError, mergeMetadata, uplinkWithMetadata } from '../../lib/message/metadata';
import { createSource } from '../../lib/capture/sources/index';
import { TriggerGate } from '../../lib/capture/trigger';
import { CaptureError, CaptureSource } from '../../lib/capture/types';
import { CaptureJournal, carriedOf } from '../../lib/capture/journal';
import { systemClock } from '../../lib/capture/system-clock';
import { loadSharp } from '../../lib/capture/transform';
import { correctCapture } from '../../lib/message/clock';
import { fmtBytes } from '../../lib/util/format';
import { Msg, readUplink, Uplink } from '../../lib/message/uplink';
import { CAMERA_LOGIN, CameraLogin, Done, EditorConfig, refuseMisconfigured, registerNode, userDirOf, waitForConfiguration } from '../common/node';
import type { JournalOwnerNode } from '../common/journal-owner';
import { NotConfiguredError } from '../../lib/util/settings';
import { boardOf, labelOf, offBoardOnClose } from '../common/board';
import { CapturePublisher, Watchers } from '../common/watch';

interface CaptureNode extends JournalOwnerNode<CameraLogin>, CapturePublisher {
  capturer?: Capturer;
  clipRecorder?: ClipRecorder;
}

export = function (RED: NodeAPI) {
  function CaptureNodeCtor(this: CaptureNode, def: EditorConfig) {
    RED.nodes.createNode(this, def);
    const node = this;
    let config;
    let capturer: Capturer | undefined;
    let clips: ClipRecorder | undefined;
    let source: CaptureSource;
    try {
      config = parseCaptureConfig(def, userDirOf(RED));
      source = createSource(config.source, def, node.credentials ?? {}, config.camera);
      // At deploy, not at the first capture: a transform that cannot run here is a setting to change.
      if (config.transform) loadSharp();
      if (config.mode === 'clip') clips = createClipRecorder(source, config);
      else capturer = new Capturer(source, config);
    } catch (e) {
      if (e instanceof NotConfiguredError) waitForConfiguration(node, e.message, { log: true });
      else refuseMisconfigured(node, (e as Error).message, 'not capturing');
      return;
    }
    node.capturer = capturer;
    node.clipRecorder = clips;
    const taker = clips ?? capturer!;
    // Captures taken before the clock is right keep what corrects their time later (lib/message/clock.ts).
    const clock = systemClock();
    taker.clock = clock;
    const { tally, remove } = boardOf(RED).capture(node.id, labelOf(node, def), config.camera, config.imagesFolder);
    offBoardOnClose(node, remove);
    taker.onWarning = (text) => node.warn(text);
    // Files written and not yet committed by a queue, so that one killed in between is sent again at the next start.
    const journalReady: Promise<CaptureJournal | undefined> = CaptureJournal.open(config.imagesFolder, node.id, {
      warn: (text) => node.warn(text),
      log: (text) => node.log(text),
    }).then(
      (journal) => (taker.journal = journal),
      (e: Error) => {
        node.warn(`capturing without a journal (a capture killed before a queue commits it will not be sent again): ${e.message}`);
        return undefined;
      },
    );
    // The queue tells this node (found by its id in msg.uplink.journal) which files it has committed.
    node.queued = (entry) => {
      void journalReady.then((j) => j?.queued(entry)).catch((e: Error) => node.warn(`capture journal: ${e.message}`));
    };
    type Job = { msg: Msg; send: (m: NodeMessage) => void; done: Done };
    const gate = new TriggerGate<Job>(config.trigger);
    const closing = new AbortController();
    const fromMessage = source.kind === 'message';
    node.status({ fill: 'grey', shape: 'dot', text: `ready · ${source.kind}${clips ? ' clip' : ''}` });

    const captures = (node.captures = new Watchers<Uplink>());
    const output = (trigger: Msg, r: CaptureResult, metadata: Msg, data?: Buffer): NodeMessage => {
      const uplink = uplinkWithMetadata(trigger.uplink, r, metadata);
      captures.publish(readUplink({ uplink }));
      return { ...trigger, payload: config.includeBuffer && data ? data : r.file, uplink };
    };

    const fail = (e: unknown, signal: AbortSignal | undefined, done: (err?: Error) => void): void => {
      if (closing.signal.aborted) return done();
      const err = e instanceof CaptureError ? e : new CaptureError((e as Error).message, e instanceof MetadataError ? e.code : 'ERROR');
      const why = signal?.aborted && err.code !== 'TIMEOUT' ? `no image within ${config.timeoutMs / 1000} s (${err.message})` : err.message;
      node.status({ fill: 'red', shape: 'ring', text: why.slice(0, 60) });
      tally.failedWith(Date.now(), why);
      done(Object.assign(new Error(`${clips ? 'clip' : 'capture'} failed: ${why}`), { code: err.code }));
    };

    const still = async (c: Capturer, msg: Msg, send: (m: NodeMessage) => void, done: (err?: Error) => void): Promise<void> => {
      node.status({ fill: 'blue', shape: 'dot', text: 'capturing…' });
      const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(config.timeoutMs)]);
      try {
        const metadata = mergeMetadata(config.metadata, msg.metadata);
        let given: Buffer | undefined;
        if (fromMessage) {
          if (!Buffer.isBuffer(msg.payload)) throw new CaptureError('msg.payload must be the image as a Buffer (a JPEG or PNG)', 'NO_IMAGE');
          given = msg.payload;
        }
        await journalReady;
        const r = await c.capture(signal, given, carriedOf(msg, metadata));
        const t = new Date(r.capturedAt);
        const unsynced = r.clockSynced === false;
        node.status({ fill: unsynced ? 'yellow' : 'green', shape: 'dot', text: `${t.toTimeString().slice(0, 8)} · ${fmtBytes(r.bytes)}${unsynced ? ' · clock not synchronized' : ''}` });
        tally.succeeded(Date.parse(r.capturedAt) || Date.now());
        send(output(msg, r, metadata, config.includeBuffer ? (given ?? undefined) : undefined));
        done();
      } catch (e) {
        fail(e, signal, done);
      }
    };

    // A clip has its own deadline (its length + the timeout + a grace period, in ClipRecorder): only closing stops it.
    const clip = async (c: ClipRecorder, msg: Msg, send: (m: NodeMessage) => void, done: (err?: Error) => void): Promise<void> => {
      try {
        const metadata = mergeMetadata(config.metadata, msg.metadata);
        const lengthS = requestedLength(msg, config.clip);
        node.status({ fill: 'blue', shape: 'dot', text: `recording ${lengthS} s…` });
        await journalReady;
        const r: ClipResult = await c.record(closing.signal, lengthS, carriedOf(msg, metadata));
        tally.succeeded(Date.parse(r.capturedAt) || Date.now());
        if (r.partial) {
          const text = `partial clip ${r.durationS.toFixed(1)} s of ${r.requestedS} s: ${r.partialReason ?? 'cut short'}`;
          node.status({ fill: 'yellow', shape: 'ring', text: text.slice(0, 80) });
          node.warn(`${text} (kept: ${r.file})`);
        } else {
          const t = new Date(r.capturedAt);
          node.status({ fill: 'green', shape: 'dot', text: `${t.toTimeString().slice(0, 8)} · ${r.durationS.toFixed(1)} s · ${fmtBytes(r.bytes)}` });
        }
        send(output(msg, r, metadata));
        done();
      } catch (e) {
        fail(e, undefined, done);
      }
    };

    // One capture at a time; a kept trigger runs when the one before it has finished.
    const start = (job: Job): void => {
      const running = clips ? clip(clips, job.msg, job.send, job.done) : still(capturer!, job.msg, job.send, job.done);
      void running.finally(() => {
        const queued = gate.finished();
        if (queued) start(queued);
      });
    };

    node.on('input', (msg, send, done) => {
      const job: Job = { msg, send, done };
      const verdict = gate.offer(job.msg, Date.now(), job);
      if (verdict === 'capture') start(job);
      else if (verdict !== 'queued') {
        if (verdict === 'busy-skipped' || verdict === 'queue-full') {
          const what = clips ? 'recording' : 'capturing';
          node.status({ fill: 'yellow', shape: 'ring', text: `trigger ${verdict === 'queue-full' ? 'dropped: queue full' : `skipped: still ${what}`}` });
        }
        done();
      }
    });

    // Captures the last run wrote and no queue committed go out again, once every flow has started (the queue may be
    // on another tab, created after this node).
    const resend = (): void => {
      void journalReady.then(async (journal) => {
        if (!journal || closing.signal.aborted) return;
        const recovered = journal.takeRecovered();
        if (recovered.length === 0) return;
        const now = await clock.read();
        for (const { result, carry } of recovered) {
          const msg = output(carry?.msg ?? {}, result, carry?.metadata ?? {});
          // Taken before the clock was right: corrected now when it is (same boot), flagged when it cannot be (rebooted).
          const c = correctCapture(msg, now);
          if (c.kind === 'settled') node.log(c.text);
          node.send(c.kind === 'settled' ? c.msg : msg);
        }
        node.log(`sent again ${recovered.length} capture(s) the last run wrote but no queue had committed`);
        await journal.resent(recovered.map((r) => r.result.journal));
      }).catch((e: Error) => node.warn(`capture journal: ${e.message}`));
    };
    const runtimeEvents = RED.events;
    runtimeEvents.once('flows:started', resend);

    node.on('close', (_removed: boolean, done: () => void) => {
      closing.abort();
      captures.clear();
      runtimeEvents.removeListener('flows:started', resend);
      for (const job of gate.drain()) job.done();
      const finish = () => void journalReady.then((j) => j?.close()).then(done, done);
      (clips ?? source).close().then(finish, finish);
    });
  }

  registerNode(RED, 'uplink-capture', CaptureNodeCtor, CAMERA_LOGIN);
};
