import type { Node, NodeAPI } from 'node-red';
import { liveSlug, parseRecorderConfig, RecorderConfig } from '../../lib/recorder/config';
import { classifyRecorderInput } from '../../lib/recorder/input';
import { Recorder, RecorderEvents } from '../../lib/recorder/supervisor';
import { CAMERA_LOGIN, CameraLogin, Credentials, EditorConfig, refuseMisconfigured, registerNode, toNodeMessage, userDirOf, waitForConfiguration } from '../common/node';
import { NotConfiguredError } from '../../lib/util/settings';
import { boardOf, labelOf, offBoardOnClose } from '../common/board';
import { serveLive } from '../common/live';

/** The relay's login, beside the camera's. */
type RecorderCredentials = CameraLogin & { relayUsername?: string; relayPassword?: string };
const RECORDER_CREDENTIALS: Credentials<RecorderCredentials> = { ...CAMERA_LOGIN, relayUsername: { type: 'text' }, relayPassword: { type: 'password' } };

interface RecorderNode extends Node<RecorderCredentials> {
  recorder?: Recorder;
  ready?: Promise<Recorder | undefined>;
  /** Where this recorder's live view is served (/uplink/live/<slug>/), for the live widget; undefined with it off. */
  liveSlug?: string;
  /** The camera's name, as the live view's status names it. */
  liveCamera?: string;
  /** Why this recorder has no live view to show, for the live widget (not configured, live view off). */
  liveProblem?: string;
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
      node.liveProblem = `the recorder is ${e instanceof NotConfiguredError ? 'waiting' : 'not recording'} (${(e as Error).message})`;
      if (e instanceof NotConfiguredError) waitForConfiguration(node, e.message, { log: true });
      else refuseMisconfigured(node, (e as Error).message, 'not recording');
      return;
    }
    node.liveCamera = config.camera;
    if (config.live?.view) node.liveSlug = liveSlug(config.camera);
    else node.liveProblem = 'the recorder\'s live view is off (tick "Live view" in the recorder)';

    const events: RecorderEvents = {
      segment: (m) => node.send([toNodeMessage(m), null]),
      status: (s) => node.status(s),
      event: (e) => node.send([null, { topic: e.event, payload: e }]),
      warn: (t) => node.warn(t),
      log: (t) => node.log(t),
    };

    offBoardOnClose(node, boardOf(RED).addRecorder(node.id, { name: labelOf(node, def), folder: config.folder, snapshot: () => node.recorder?.snapshot() ?? null }));

    let closing = false;
    let unserve: (() => void) | undefined;
    let notStarted = 'the recorder has not started yet';
    const begin = (): void => {
      if (closing || node.ready) return;
      node.ready = Recorder.open(config, events).then(
        (rec) => {
          node.recorder = rec;
          // Closed while opening: the close handler has run already, nothing may be served after it.
          if (rec.live && config.live?.view && !closing) {
            try {
              unserve = serveLive(RED, liveSlug(config.camera), node.id, config.camera, rec.live);
            } catch (e) {
              // The recording goes on; only this camera's live view is missing (and the live widget says why).
              node.liveSlug = undefined;
              node.liveProblem = (e as Error).message;
              node.error((e as Error).message);
            }
          }
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
      unserve?.();
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

  registerNode(RED, TYPE, RecorderNodeCtor, RECORDER_CREDENTIALS);
};
