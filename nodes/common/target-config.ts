import type { Node, NodeAPI } from 'node-red';
import { UploadTarget } from '../../lib/upload/target';
import { BackendEntry } from '../../lib/upload/registry';
import { NotConfiguredError, SettingsReader } from '../../lib/util/settings';
import { hasBudget, readBudget, TargetBudget } from '../../lib/upload/budget';
import { BudgetLedger } from '../../lib/upload/budget-ledger';
import path from 'path';
import { EditorConfig, registerNode, userDirOf } from './node';

/** A storage config node at runtime: the target it owns, or why it could not be made. */
export interface TargetConfigNode extends Node<Record<string, unknown>> {
  target?: UploadTarget;
  configError?: string;
  /** Settings still blank ("not configured: set the bucket"): the nodes using it wait, and nothing is sent. */
  notConfigured?: string;
}

/**
 * Registers a storage config node. The node owns one UploadTarget (client, kept-alive connections, concurrency slots,
 * bandwidth budget) shared by every uploader that uses it, and releases it on close. Secrets arrive through
 * `credentials` only, declared here for the runtime as well as in the editor.
 */
export function registerTargetConfig(RED: NodeAPI, type: string, backend: BackendEntry): void {
  function TargetConfig(this: TargetConfigNode, def: EditorConfig) {
    RED.nodes.createNode(this, def);
    const node = this;
    let releaseLedger: (() => Promise<void>) | undefined;
    try {
      // The budget's settings are checked with the target's: a wrong one is a configuration error like any other.
      const r = new SettingsReader(def);
      const budget = readBudget(r);
      r.check();
      node.target = backend.createTarget(def, node.credentials ?? {}, { userDir: userDirOf(RED) });
      if (hasBudget(budget)) {
        const b = new TargetBudget(node.id, budget);
        node.target.setBudget(b);
        const file = path.resolve(userDirOf(RED), 'uplink', 'budget.db');
        releaseLedger = () => releaseShared(file);
        openShared(file).then(
          (ledger) => b.attach(ledger),
          (e: Error) => node.warn(`the byte budget's count cannot be kept in ${file} (it counts in memory until a restart): ${e.message}`),
        );
      }
    } catch (e) {
      if (e instanceof NotConfiguredError) {
        // The one line in the log: the uploader and connectivity nodes using this target only show it in their status.
        node.notConfigured = e.message;
        node.warn(`${e.message}: the nodes using this target wait until it is`);
      } else {
        node.configError = (e as Error).message;
        node.error(`configuration error: ${node.configError}`);
      }
    }
    node.on('close', (_removed: boolean, done: () => void) => {
      const t = node.target;
      node.target = undefined;
      const closed = t ? t.close() : Promise.resolve();
      void closed.catch(() => undefined).then(() => releaseLedger?.()).then(done, done);
    });
  }
  const credentials = Object.fromEntries(Object.entries(backend.credentials).map(([name, kind]) => [name, { type: kind }]));
  registerNode(RED, type, TargetConfig, credentials);
}

/** One ledger per file for every target of this Node-RED, closed when the last one using it closes. */
const ledgers = new Map<string, { ledger: Promise<BudgetLedger>; users: number }>();

function openShared(file: string): Promise<BudgetLedger> {
  let entry = ledgers.get(file);
  if (!entry) {
    entry = { ledger: BudgetLedger.open(file), users: 0 };
    ledgers.set(file, entry);
    entry.ledger.catch(() => ledgers.delete(file));
  }
  entry.users++;
  return entry.ledger;
}

async function releaseShared(file: string): Promise<void> {
  const entry = ledgers.get(file);
  if (!entry || --entry.users > 0) return;
  ledgers.delete(file);
  await (await entry.ledger.catch(() => undefined))?.close();
}
