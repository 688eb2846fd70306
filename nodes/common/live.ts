import type { NodeAPI } from 'node-red';
import type { NextFunction, Request, Response } from 'express';
import type { LiveStream } from '../../lib/live/stream';

// Live views are served on Node-RED's HTTP node server, so httpNodeAuth and httpNodeMiddleware apply as they do to an
// http in node: /uplink/live/<camera>/index.m3u8, its init-<n>.mp4 and seg-<n>.m4s, still.jpg (the last picture) and
// status (JSON for players).
// Everything comes from memory; nothing a browser asks for touches the disk.

interface Entry {
  nodeId: string;
  camera: string;
  stream: LiveStream;
}

const streams = new Map<string, Entry>();
const served = new WeakSet<object>();

/** The longest viewer id a player may send (the dashboard's player sends a random one per page). */
const VIEWER_ID_MAX = 64;

/**
 * Puts a recorder's live stream at /uplink/live/<slug>/. Two recorders cannot share a path: the second is refused with
 * a message naming the first. Returns how to take it off again.
 */
export function serveLive(RED: NodeAPI, slug: string, nodeId: string, camera: string, stream: LiveStream): () => void {
  const taken = streams.get(slug);
  if (taken && taken.nodeId !== nodeId) {
    throw new Error(`the live view /uplink/live/${slug}/ is already served by the recorder of camera "${taken.camera}": give this camera another name`);
  }
  registerRoutes(RED);
  const entry = { nodeId, camera, stream };
  streams.set(slug, entry);
  return () => {
    if (streams.get(slug) === entry) streams.delete(slug);
  };
}

function registerRoutes(RED: NodeAPI): void {
  const app = RED.httpNode as unknown as { get?: (path: string, h: (req: Request, res: Response, next: NextFunction) => void) => void } | undefined;
  if (!app?.get || served.has(app)) return;
  served.add(app);
  const find = (req: Request, res: Response, next: NextFunction): Entry | undefined => {
    const e = streams.get(String(req.params.camera ?? ''));
    if (!e) next();
    else res.set('Cache-Control', 'no-store');
    return e;
  };
  app.get('/uplink/live/:camera/index.m3u8', (req, res, next) => {
    const e = find(req, res, next);
    if (!e) return;
    const viewer = typeof req.query.viewer === 'string' && req.query.viewer !== '' ? req.query.viewer.slice(0, VIEWER_ID_MAX) : `${req.ip ?? ''}|${req.get('user-agent') ?? ''}`;
    e.stream.viewers.saw(viewer);
    const playlist = e.stream.stats().state === 'live' ? e.stream.window.playlist() : undefined;
    if (!playlist) {
      // A player retries; the dashboard's shows the last picture (still.jpg) meanwhile.
      res.status(503).set('Retry-After', '2').type('text/plain').send(`camera "${e.camera}" is not streaming now\n`);
      return;
    }
    // An ETag of our own: express would otherwise hash every answer's body to make one.
    res.set('ETag', `"${e.stream.window.id}-p${e.stream.window.stats().sequence}"`);
    res.type('application/vnd.apple.mpegurl').send(playlist);
  });
  app.get('/uplink/live/:camera/init-:id.mp4', (req, res, next) => {
    const e = find(req, res, next);
    if (!e) return;
    const init = e.stream.window.init(Number(req.params.id));
    if (!init) return void res.status(404).type('text/plain').send('no such initialization segment\n');
    res.set('ETag', `"${e.stream.window.id}-i${Number(req.params.id)}"`);
    res.type('video/mp4').send(init.data);
  });
  app.get('/uplink/live/:camera/seg-:seq.m4s', (req, res, next) => {
    const e = find(req, res, next);
    if (!e) return;
    const f = /^\d{1,15}$/.test(String(req.params.seq)) ? e.stream.window.fragment(Number(req.params.seq)) : undefined;
    if (!f) return void res.status(404).type('text/plain').send('no such segment (it may have left the live window)\n');
    res.set('ETag', `"${e.stream.window.id}-s${f.seq}"`);
    res.type('video/iso.segment').send(f.data);
  });
  // The last picture the camera sent, from memory: what a dashboard shows while the camera is down.
  app.get('/uplink/live/:camera/still.jpg', (req, res, next) => {
    const e = find(req, res, next);
    if (!e) return;
    e.stream.lastFrame().then(
      (f) => {
        if (!f) return void res.status(404).type('text/plain').send('no picture from this camera yet\n');
        res.set('ETag', `"${f.key}"`);
        res.set('Last-Modified', new Date(f.at).toUTCString());
        res.type('image/jpeg').send(f.jpeg);
      },
      (err: Error) => res.status(500).type('text/plain').send(`${err.message}\n`),
    );
  });
  app.get('/uplink/live/:camera/status', (req, res, next) => {
    const e = find(req, res, next);
    if (!e) return;
    const s = e.stream.stats();
    res.json({
      camera: e.camera,
      state: s.state,
      viewers: s.viewers,
      bitrate: s.bitrate,
      sequence: s.sequence,
      // This server's clock, so a browser shows the times above in its own zone, corrected for its own clock.
      now: new Date().toISOString(),
      ...(s.lastFrameAt !== undefined ? { lastFrameAt: new Date(s.lastFrameAt).toISOString(), still: `uplink/live/${String(req.params.camera)}/still.jpg?v=${s.sequence}` } : {}),
      ...(s.mime ? { mime: s.mime } : {}),
      ...(s.relay ? { relay: { state: s.relay.state, since: new Date(s.relay.since).toISOString(), reconnects: s.relay.reconnects } } : {}),
    });
  });
}
