import path from 'path';
import { uplinkWithMetadata } from '../message/metadata';
import { renderKey } from '../message/object-key';
import { RecorderConfig } from './config';
import { Segment } from './store';

/** What the recorder sends for one closed segment: the file's path, and what msg.uplink says about it. */
export type SegmentMessage = {
  topic: string;
  payload: string;
  uplink: Record<string, unknown>;
};

/**
 * The message a closed segment becomes. Its object key comes from the journalled segment (start time, number, hash),
 * so a segment sent again after a crash goes to the same key. `recovered`: sent while opening, left by an earlier run.
 */
export function segmentMessage(seg: Segment, config: Pick<RecorderConfig, 'camera' | 'keyTemplate' | 'metadata'>, recovered: boolean): SegmentMessage {
  const name = path.basename(seg.path);
  const key = renderKey(config.keyTemplate, { camera: config.camera, capturedAt: seg.capturedAt, width: seg.width, height: seg.height, id: seg.n, name, ext: 'mp4', sha256: seg.sha256 });
  const endedAt = new Date(Date.parse(seg.capturedAt) + seg.durationS * 1000).toISOString();
  const facts = {
    file: seg.path,
    bytes: seg.bytes,
    sha256: seg.sha256,
    contentType: 'video/mp4',
    width: seg.width,
    height: seg.height,
    codec: seg.codec,
    durationS: seg.durationS,
    requestedS: seg.requestedS,
    camera: config.camera,
    capturedAt: seg.capturedAt,
    endedAt,
    key,
    ...(seg.partial ? { partial: true } : {}),
    recorder: {
      segment: seg.n,
      run: seg.run,
      ...(seg.gapBeforeS !== undefined ? { gapBeforeS: seg.gapBeforeS } : {}),
      ...(seg.partial ? { partial: true } : {}),
      ...(recovered ? { recovered: true } : {}),
    },
  };
  return { topic: config.camera, payload: seg.path, uplink: uplinkWithMetadata(undefined, facts, { ...config.metadata }) };
}
