// Placement constraints (swarmkit manager/constraint): "key==value" or "key!=value" over
// node.id, node.hostname, node.role, node.platform.os|arch, node.labels.<k>, engine.labels.<k>.
// Values compare case-insensitively, as swarmkit's Match.
import { invalid } from '../core/errors';
import type { NodeRecord } from './store';

export interface Constraint {
  key: string;
  equal: boolean;
  value: string;
}

const KEYS = /^(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|node\.labels\.[^=!]+|engine\.labels\.[^=!]+)$/i;

/** swarmkit's constraint.Parse, with its messages (InvalidArgument: 400) */
export function parseConstraints(list: readonly string[]): Constraint[] {
  return list.map((c) => {
    const m = /^(.*?)(==|!=)(.*)$/.exec(c);
    if (!m || m[3].includes('==') || m[3].includes('!=')) throw invalid('rpc error: code = InvalidArgument desc = constraint expected one operator from ==, !=');
    const key = m[1].trim();
    if (!KEYS.test(key)) throw invalid(`rpc error: code = InvalidArgument desc = constraint key '${key}' is invalid`);
    return { key, equal: m[2] === '==', value: m[3].trim() };
  });
}

/** a node's value for a constraint or spread key (node.labels.X, engine.labels.X, node.role…) */
export function labelValue(n: NodeRecord, key: string): string | undefined {
  return nodeValue(n, key);
}

function nodeValue(n: NodeRecord, key: string): string | undefined {
  const k = key.toLowerCase();
  if (k === 'node.id') return n.id;
  if (k === 'node.hostname') return n.hostname;
  if (k === 'node.role') return n.spec.Role;
  if (k === 'node.platform.os') return 'linux';
  if (k === 'node.platform.arch') return 'x86_64';
  if (k.startsWith('node.labels.')) return n.spec.Labels[key.slice('node.labels.'.length)];
  // engine labels: the daemon's --label flags, as the node reported them
  if (k.startsWith('engine.labels.')) return n.engineLabels?.[key.slice('engine.labels.'.length)];
  return undefined;
}

export function matches(n: NodeRecord, cs: readonly Constraint[]): boolean {
  return cs.every((c) => {
    const v = nodeValue(n, c.key);
    const same = v !== undefined && v.toLowerCase() === c.value.toLowerCase();
    return c.equal ? same : !same;
  });
}
