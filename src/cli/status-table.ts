// `thinlayer status` for people: the pool, the layers and the devices, as lvs and kubectl print
// them. Devices are named by their stable /dev/mapper path (a /dev/dm-N changes across reboots);
// `-o wide` adds the rest, `-o custom-columns=…` (or --columns) picks the device columns, and
// `status NAME…` shows only the things named. --json and `-o json` bypass all of this.

import type { StatusView } from '../app/status-view.ts';
import { describeHolder } from '../events/holders.ts';
import { formatBytes, listOf, naturalCompare, plural } from '../messages/format.ts';
import { UserError } from '../errors/index.ts';

type Device = StatusView['devices'][number];

interface Column {
  header: string;
  value: (d: Device) => string;
}

const mapperPath = (d: Device) => d.stablePath ?? '-';

/** Every device column, by the name -o custom-columns and --columns take. */
export const DEVICE_COLUMNS: Record<string, Column> = {
  name: { header: 'DEVICE', value: (d) => d.name },
  layer: { header: 'LAYER', value: (d) => (d.layerDrift ? `${d.actualLayer ?? '?'} (!)` : d.layer) },
  state: { header: 'STATE', value: (d) => (d.state === d.desired ? d.state : `${d.state} (!)`) },
  desired: { header: 'DESIRED', value: (d) => d.desired },
  size: { header: 'SIZE', value: (d) => (d.sizeBytes === null ? '-' : formatBytes(d.sizeBytes)) },
  // Mapped bytes with their share of the device's size, the percentage's base being the SIZE beside it.
  used: {
    header: 'USED',
    value: (d) => (d.mappedBytes === null ? '-' : `${formatBytes(d.mappedBytes)}${d.mappedPercent === null ? '' : ` (${d.mappedPercent.toFixed(1)}%)`}`),
  },
  'thin-id': { header: 'THIN ID', value: (d) => (d.thinId === null ? '-' : String(d.thinId)) },
  mountpoint: { header: 'MOUNTPOINT', value: (d) => d.mountpoint ?? '-' },
  'seen-at': { header: 'SEEN AT', value: (d) => d.seenAt ?? '-' },
  dev: { header: 'DEV', value: mapperPath },
  'kernel-dev': { header: 'KERNEL DEV', value: (d) => d.devPath ?? '-' },
};

const DEFAULT_COLUMNS = ['name', 'layer', 'state', 'size', 'used', 'mountpoint', 'dev'];
const WIDE_COLUMNS = ['name', 'layer', 'state', 'desired', 'size', 'used', 'thin-id', 'mountpoint', 'seen-at', 'dev', 'kernel-dev'];

export interface StatusFormat {
  /** `-o`: wide, json, or custom-columns=A,B; --columns A,B is the last. */
  output?: string;
  columns?: string;
}

/** How status prints: json, or a table of these device columns (only the devices table when chosen by name). */
export type StatusLayout = { json: true } | { json: false; columns: string[]; custom: boolean };

export function statusLayout(f: StatusFormat, json: boolean): StatusLayout {
  const custom = f.columns ?? (f.output?.startsWith('custom-columns=') ? f.output.slice('custom-columns='.length) : undefined);
  if (f.output !== undefined && f.output !== 'wide' && f.output !== 'json' && !f.output.startsWith('custom-columns='))
    throw new UserError(
      `-o ${JSON.stringify(f.output)}: status prints wide, json or custom-columns=COLUMN,…`,
      { path: '--output', expected: 'wide, json or custom-columns=name,state,dev' },
      'E_USAGE',
    );
  if (json || f.output === 'json') return { json: true };
  if (custom === undefined) return { json: false, columns: f.output === 'wide' ? WIDE_COLUMNS : DEFAULT_COLUMNS, custom: false };
  const columns = custom
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter(Boolean);
  const unknown = columns.filter((c) => !Object.hasOwn(DEVICE_COLUMNS, c));
  if (columns.length === 0 || unknown.length > 0)
    throw new UserError(
      `${unknown.length ? `no column ${unknown.map((c) => JSON.stringify(c)).join(', ')}` : 'no columns given'}: the columns are ${Object.keys(DEVICE_COLUMNS).join(', ')}`,
      { path: f.columns !== undefined ? '--columns' : '--output', expected: Object.keys(DEVICE_COLUMNS).join(',') },
      'E_USAGE',
    );
  return { json: false, columns, custom: true };
}

/** The view with only the things `names` names (devices, layers, the pool); all of it without names. */
export function selectThings(view: StatusView, names: string[]): StatusView {
  if (names.length === 0) return view;
  const known = new Set([...view.devices.map((d) => d.name), ...view.layers.map((l) => l.name), ...(view.pool ? [view.pool.name] : [])]);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0)
    throw new UserError(
      `nothing named ${listOf(unknown)} is recorded in ${view.stateDir} (devices: ${view.devices.map((d) => d.name).join(', ') || 'none'}; layers: ${view.layers.map((l) => l.name).join(', ') || 'none'}; pool: ${view.pool?.name ?? 'none'})`,
      { path: 'NAME', expected: 'a device, layer or pool the manifest names' },
      'E_USAGE',
    );
  const wanted = new Set(names);
  return {
    ...view,
    pool: view.pool && wanted.has(view.pool.name) ? view.pool : null,
    layers: view.layers.filter((l) => wanted.has(l.name)),
    devices: view.devices.filter((d) => wanted.has(d.name)),
    snapshots: [],
    unwanted: [],
    holders: [],
  };
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join('\n');
}

function devicesTable(devices: Device[], columns: string[]): string {
  const sorted = [...devices].sort((a, b) => naturalCompare(a.name, b.name));
  const cols = columns.map((c) => DEVICE_COLUMNS[c]);
  return table(
    cols.map((c) => c.header),
    sorted.map((d) => cols.map((c) => c.value(d))),
  );
}

/** Used and total with the share, the percentage's base beside it: `17 MiB of 2 GiB (0.8%)`. */
function space(s: { usedBytes: number; totalBytes: number; percent: number }): string {
  return `${formatBytes(s.usedBytes)} of ${formatBytes(s.totalBytes)} (${s.percent}%)`;
}

export function renderStatus(s: StatusView, layout: StatusLayout = { json: false, columns: DEFAULT_COLUMNS, custom: false }, named = false): string {
  const columns = layout.json ? DEFAULT_COLUMNS : layout.columns;
  if (!layout.json && layout.custom) return devicesTable(s.devices, columns);
  const out: string[] = [];
  if (!s.pool && !named) return `No pool recorded in ${s.stateDir}: run \`thinlayer apply -f MANIFEST\`.`;
  const p = s.pool;
  if (p) {
    out.push(
      `Pool ${p.name} (/dev/mapper/${p.dmName}) on the ${s.backend === 'sim' ? 'simulated' : 'real'} kernel: ${p.active ? p.mode : 'inactive'}${p.needsCheck ? ', NEEDS CHECK' : ''}`,
    );
    if (p.data && p.metadata) out.push(`  data ${space(p.data)}, metadata ${space(p.metadata)}, transaction ${p.transactionId}`);
  }
  if (s.layers.length > 0) {
    if (out.length) out.push('');
    out.push(
      table(
        ['LAYER', 'PARENT', 'STATE', 'THIN ID', 'CHAIN ID', 'USED BY'],
        s.layers.map((l) => [
          l.name,
          l.parent ?? '(base)',
          l.state,
          l.thinId === null ? '-' : String(l.thinId),
          l.chainId ? l.chainId.slice(0, 19) : '-',
          [...l.usedBy].sort(naturalCompare).join(',') || '-',
        ]),
      ),
    );
  }
  if (s.devices.length > 0) {
    if (out.length) out.push('');
    out.push(devicesTable(s.devices, columns));
    const differing = s.devices.filter((d) => d.state !== d.desired);
    if (differing.length > 0) {
      const named = differing.slice(0, 5).map((d) => `${d.name} is ${d.state}, desired ${d.desired}`);
      const more = differing.length > named.length ? `; and ${differing.length - named.length} more` : '';
      out.push(`  STATE (!): ${named.join('; ')}${more}: \`thinlayer up\` or \`apply\` brings ${differing.length === 1 ? 'it' : 'them'} there`);
    }
    // Where the simulated kernel keeps a mount's files, when not at the mountpoint (default view only: -o wide has a column).
    if (!columns.includes('seen-at')) {
      const seen = s.devices.filter((d) => d.seenAt);
      if (seen.length > 0) out.push(`  (simulated kernel: mounts are seen under ${commonSeenRoot(seen) ?? 'the state dir'}; -o wide shows each)`);
    }
  }
  const drifted = s.devices.filter((d) => d.layerDrift);
  if (drifted.length > 0) {
    // A few named, the rest counted: after an interrupted change it can be most of the devices.
    const named = drifted.slice(0, 5).map((d) => `${d.name} is a snapshot of ${d.actualLayer ?? '?'}, desired ${d.layer}`);
    const more = drifted.length > named.length ? `; and ${drifted.length - named.length} more` : '';
    out.push(`  LAYER (!): ${named.join('; ')}${more}: \`thinlayer apply\` replaces ${drifted.length === 1 ? 'it' : 'them'}`);
  }
  if (s.snapshots && s.snapshots.length > 0) {
    out.push(
      '',
      table(
        ['SNAPSHOT (containerd)', 'KIND', 'PARENT', 'THIN ID', 'ACTIVE'],
        s.snapshots.map((x) => [`${x.namespace ? `${x.namespace}/` : ''}${x.key}`, x.kind, x.parent ?? '-', String(x.thinId ?? '-'), x.active ? 'yes' : 'no']),
      ),
    );
  }
  if (s.unwanted.length > 0) out.push('', `Not in the manifest any more (the next apply deletes them): ${[...s.unwanted].sort(naturalCompare).join(', ')}`);
  if (s.pendingSteps > 0)
    out.push('', `${plural(s.pendingSteps, 'step was', 'steps were')} interrupted: the next apply or up completes ${s.pendingSteps === 1 ? 'it' : 'them'}.`);
  for (const h of s.holders ?? []) out.push('', `Running: ${describeHolder(h)} (destroy and down refuse while it runs)`);
  if ((s.inFlightSteps ?? 0) > 0)
    out.push('', `${plural(s.inFlightSteps ?? 0, 'step', 'steps')} in flight: another thinlayer process (the snapshotter) is carrying them out.`);
  return out.join('\n');
}

/** The directory under which the simulated kernel shows every mount (`STATE/sim/mnt`), when they share one. */
function commonSeenRoot(devices: Device[]): string | null {
  const roots = new Set(devices.map((d) => (d.seenAt && d.mountpoint && d.seenAt.endsWith(d.mountpoint) ? d.seenAt.slice(0, -d.mountpoint.length) : null)));
  return roots.size === 1 ? ([...roots][0] ?? null) : null;
}
