// What a plan does, counted in things people name (devices, layers, the base, the pool) rather than
// in steps: a destroy of 40 devices is "delete 40 devices, 2 layers, the base and the pool", not
// "84 steps, 83 to update". Each thing counts once, under the worst impact of its steps; what the
// plan deletes with its data (plan.deletes, e.g. devices that go with the pool's files) counts as deleted.

import type { Impact, Plan } from '../model/step-contract.ts';
import { IMPACT_ORDER } from '../model/step-contract.ts';
import { listOf, plural } from './format.ts';

type Verb = 'create' | 'update' | 'destroy';
const VERBS: Verb[] = ['create', 'update', 'destroy'];
const PRESENT: Record<Verb, string> = { create: 'create', update: 'change', destroy: 'delete' };
const PAST: Record<Verb, string> = { create: 'created', update: 'changed', destroy: 'deleted' };

/** Kinds in the order they are said, with their singular and plural nouns. */
const KINDS: Array<{ prefix: string; one: string; many: string }> = [
  { prefix: 'device', one: 'device', many: 'devices' },
  { prefix: 'snapshot', one: 'containerd snapshot', many: 'containerd snapshots' },
  { prefix: 'layer', one: 'layer', many: 'layers' },
  { prefix: 'thin', one: 'thin id', many: 'thin ids' },
  { prefix: 'dm', one: 'device-mapper device', many: 'device-mapper devices' },
];

/** Each thing a plan touches (by its target key: `device:web1`, `pool`) and the impact it has. */
export function thingImpacts(plan: Pick<Plan, 'steps' | 'deletes'>): Map<string, Impact> {
  const out = new Map<string, Impact>();
  for (const s of plan.steps) {
    const was = out.get(s.target) ?? 'none';
    if (IMPACT_ORDER[s.impact] > IMPACT_ORDER[was]) out.set(s.target, s.impact);
    else if (!out.has(s.target)) out.set(s.target, was);
  }
  const d = plan.deletes;
  if (d) {
    for (const name of d.devices) out.set(`device:${name}`, 'destroy');
    // Deleted layers are named by the manifest, their steps by chain id: counted by name, their step keys dropped.
    if (d.layers.length > 0) {
      for (const key of [...out.keys()]) if (key.startsWith('layer:')) out.delete(key);
      for (const name of d.layers) out.set(`layer:${name}`, 'destroy');
    }
    if (d.base) out.set('base', 'destroy');
    if (d.pool) out.set('pool', 'destroy');
  }
  return out;
}

function describe(keys: string[]): string {
  const parts: string[] = [];
  for (const k of KINDS) {
    const n = keys.filter((key) => key.startsWith(`${k.prefix}:`)).length;
    if (n > 0) parts.push(plural(n, k.one, k.many));
  }
  const known = new Set(['base', 'pool']);
  const other = keys.filter((key) => !known.has(key) && !KINDS.some((k) => key.startsWith(`${k.prefix}:`))).length;
  if (other > 0) parts.push(plural(other, 'other thing', 'other things'));
  if (keys.includes('base')) parts.push('the base');
  if (keys.includes('pool')) parts.push('the pool');
  return listOf(parts);
}

/** `create 3 devices, 2 layers, the base and the pool; delete 1 device` (past: `created …`); '' for nothing. */
export function describePlanThings(plan: Pick<Plan, 'steps' | 'deletes'>, tense: 'present' | 'past' = 'present'): string {
  const impacts = thingImpacts(plan);
  const words = tense === 'present' ? PRESENT : PAST;
  return VERBS.map((verb) => {
    const keys = [...impacts].filter(([, impact]) => impact === verb).map(([key]) => key);
    return keys.length > 0 ? `${words[verb]} ${describe(keys)}` : '';
  })
    .filter(Boolean)
    .join('; ');
}
