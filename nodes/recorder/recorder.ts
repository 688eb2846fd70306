import type { Node, NodeAPI } from 'node-red';
import { parseRecorderConfig, RecorderConfig } from '../../lib/recorder/config';
import { classifyRecorderInput } from '../../lib/recorder/input';
import { Recorder, RecorderEvents } from '../../lib/recorder/supervisor';
import { CAMERA_LOGIN, CameraLogin, EditorConfig, refuseMisconfigured, registerNode, toNodeMessage, userDirOf, waitForConfiguration } from '../common/node';
import { NotConfiguredError } from '../../lib/util/settings';
import { boardOf, labelOf, offBoardOnClose } from '../common/board';

interface RecorderNode extends Node<CameraLogin> {
  recorder?: Recorder;
  ready?: Promise<Recorder | undefined>;
}

const TYPE = 'uplink-recorder';

export = function (RED: NodeAPI) {
  function RecorderNodeCtor(this: RecorderNode, def: EditorConfig) {
    RED.nodes.createNode(this, def);
    const node = this;
    let config: RecorderConfig;
    try {
      config = parseRecorderConfig(def, node.credentials ?? {}, userDirOf(RED));
    } catch (e) {
      if (e instanceof NotConfiguredError) waitForConfiguration(node, e.message, { log: true });
      else refuseMisconfigured(node, (e as Error).message, 'not recording');
      return;
    }

    const events: RecorderEvents = {
      segment: (m) => node.send([toNodeMessage(m), null]),
      status: (s) => node.status(s),
      event: (e) => node.send([null, { topic: e.event, payload: e }]),
      warn: (t) => node.warn(t),
      log: (t) => node.log(t),
    };

    offBoardOnClose(node, boardOf(RED).addRecorder(node.id, { name: labelOf(node, def), folder: config.folder, snapshot: () => node.recorder?.snapshot() ?? null }));

    let closing = false;
    let notStarted = 'the recorder has not started yet';
    const begin = (): void => {
      if (closing || node.ready) return;
      node.ready = Recorder.open(config, events).then(
        (rec) => {
          node.recorder = rec;
          return rec;
        },
        (e: Error) => {
          notStarted = `cannot start recording: ${e.message}`;
          node.status({ fill: 'red', shape: 'ring', text: e.message.slice(0, 80) });
          node.error(notStarted);
          return undefined;
        },
      );
    };
    // Segments left by an earlier run are sent as soon as the recorder opens: wait until every flow has started, or
    // a message could reach a node that does not exist yet (the queue on another tab) and be lost.
    const runtimeEvents = RED.events;
    runtimeEvents.once('flows:started', begin);
    node.status({ fill: 'grey', shape: 'ring', text: 'starting…' });

    node.on('input', (msg, send, done) => {
      const input = classifyRecorderInput(msg);
      if (input.type === 'invalid') return done(new Error(input.error));
      if (input.type === 'upload-failed') return done();
      void (async () => {
        const rec = await (node.ready ?? Promise.resolve(undefined));
        if (!rec) return done(new Error(`not recording: ${notStarted}`));
        try {
          if (input.type === 'uploaded') await rec.uploaded(input.file);
          else if (input.command === 'start') rec.start();
          else if (input.command === 'stop') await rec.stop();
          else send([null, { topic: 'stats', payload: rec.snapshot() }]);
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

  registerNode(RED, TYPE, RecorderNodeCtor, CAMERA_LOGIN);
};
