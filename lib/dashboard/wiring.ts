// Which uploaders a queue feeds, read from the deployed flow: everything its first output reaches, through any nodes
// in between (a resize, an encrypt step, a user's function) and through link nodes, up to an uploader. Another queue
// on the way starts its own pipeline: what lies past it is not this queue's. The widget draws the byte budgets of the
// targets found here.

/** A node of the deployed flow, as Node-RED's flow configuration holds it (the parts read here). */
export interface FlowNodeDef {
  id: string;
  type: string;
  wires?: unknown;
  /** Link out and link call nodes: the link in nodes they send to. */
  links?: unknown;
  mode?: unknown;
  [key: string]: unknown;
}

export interface FedTarget {
  /** The storage config node (its id), the budget's owner. */
  config: string;
  /** The uploader nodes that send to it from this queue. */
  uploaders: string[];
}

const QUEUE_TYPE = 'uplink-offline-queue';
const UPLOADER_TYPE = 'uplink-uploader';
/** Nodes looked at, at most: a flow larger than this is cut short rather than walked for long. */
const MAX_NODES = 5000;

function ids(v: unknown): string[] {
  return Array.isArray(v) ? v.flatMap((x) => (Array.isArray(x) ? x : [x])).filter((x): x is string => typeof x === 'string') : [];
}

/** The storage targets (config node ids) of the uploaders that `queueId`'s releases reach, each once, in flow order. */
export function targetsFedBy(queueId: string, defs: Iterable<FlowNodeDef>): FedTarget[] {
  const byId = new Map<string, FlowNodeDef>();
  for (const d of defs) if (d && typeof d.id === 'string') byId.set(d.id, d);
  const queue = byId.get(queueId);
  if (!queue) return [];
  const out = new Map<string, string[]>();
  const seen = new Set<string>([queueId]);
  // The queue's first output carries the items; its others (rejected, stats) do not.
  const first = Array.isArray(queue.wires) ? ids([queue.wires[0]]) : [];
  const todo = [...first];
  while (todo.length > 0 && seen.size < MAX_NODES) {
    const id = todo.shift() as string;
    if (seen.has(id)) continue;
    seen.add(id);
    const d = byId.get(id);
    if (!d || d.d === true) continue;
    if (d.type === QUEUE_TYPE) continue;
    if (d.type === UPLOADER_TYPE) {
      const backend = typeof d.backend === 'string' && d.backend ? d.backend : 's3';
      const config = d[backend];
      if (typeof config === 'string' && config) out.set(config, [...(out.get(config) ?? []), id]);
      continue;
    }
    todo.push(...ids(d.wires));
    if (d.type === 'link out' && d.mode !== 'return') todo.push(...ids(d.links));
    if (d.type === 'link call') todo.push(...ids(d.links));
  }
  return [...out].map(([config, uploaders]) => ({ config, uploaders }));
}
