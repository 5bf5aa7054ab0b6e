// The shape of the code, checked: no import circles anywhere in src (type-only imports count too:
// a circle of types is a circle of concepts), every import goes down the floors (or stays on its
// own floor), and the pure core (the planner and the projection) imports nothing that does I/O.

import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every module a file imports or re-exports, static or dynamic: relative ones resolved to files, others by name. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*'([^']+)'/g), ...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]);
  return specs.map((s) => (s.startsWith('.') ? path.resolve(path.dirname(file), s) : s));
}

/**
 * The floors of src, bottom to top (docs/architecture.md lists the same): a folder may import from
 * its own floor and the floors below it, never from one above.
 */
const FLOORS: readonly (readonly string[])[] = [
  ['errors'],
  ['model'],
  ['domain', 'messages'],
  ['manifest', 'events', 'lifecycle', 'kernel', 'host'],
  ['layers', 'plan'],
  ['engine', 'actions'],
  ['reconcile', 'doctor'],
  ['app'],
  ['api', 'watch', 'snapshotter'],
  ['cli'],
];

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => i.startsWith(SRC))]));
const rel = (f: string) => path.relative(SRC, f);

/** The circles in the graph, each as the files around it (Tarjan's strongly connected components). */
function circles(): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(rel(w));
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return found;
}

/** The floor of a file under src by its top folder (-1: on none). */
function floorOf(file: string): number {
  const top = rel(file).split(path.sep)[0];
  return FLOORS.findIndex((floor) => floor.includes(top));
}

/** Every import from a lower floor to a higher one, as `file -> file`. */
function upward(): string[] {
  return files.flatMap((f) => (graph.get(f) ?? []).filter((d) => floorOf(d) > floorOf(f)).map((d) => `${rel(f)} -> ${rel(d)}`));
}

describe('imports', () => {
  it('every relative import names a file that exists', () => {
    const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !fs.existsSync(d)).map((d) => `${rel(f)} -> ${rel(d)}`));
    expect(missing).toEqual([]);
  });

  it('form no circles in src', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(circles()).toEqual([]);
  });

  it('finds a circle when there is one (the check itself works)', () => {
    const a = path.join(SRC, 'a.ts');
    const b = path.join(SRC, 'b.ts');
    graph.set(a, [b]);
    graph.set(b, [a]);
    files.push(a, b);
    try {
      expect(circles()).toEqual([['a.ts', 'b.ts']]);
    } finally {
      graph.delete(a);
      graph.delete(b);
      files.splice(files.indexOf(a), 2);
    }
  });

  it('every folder of src is on a floor', () => {
    const folders = new Set(files.map((f) => rel(f).split(path.sep)[0]).filter((top) => !top.endsWith('.ts')));
    expect([...folders].filter((folder) => floorOf(path.join(SRC, folder, 'x.ts')) < 0)).toEqual([]);
    expect(files.filter((f) => !rel(f).includes(path.sep)).map(rel)).toEqual([]);
  });

  it('go down the floors: no file imports from a floor above its own', () => {
    expect(upward()).toEqual([]);
  });

  it('finds an import that goes up a floor (the check itself works)', () => {
    const low = path.join(SRC, 'errors', 'low.ts');
    const high = path.join(SRC, 'cli', 'high.ts');
    graph.set(low, [high]);
    graph.set(high, [low]);
    files.push(low, high);
    try {
      // The way up is reported, the way down (cli/high.ts -> errors/low.ts) is not.
      expect(upward().filter((line) => line.includes('low.ts') || line.includes('high.ts'))).toEqual(['errors/low.ts -> cli/high.ts']);
    } finally {
      graph.delete(low);
      graph.delete(high);
      files.splice(files.indexOf(low), 2);
    }
  });

  it('the planner and the projection do no I/O: they import no file, process, network or kernel module', () => {
    const core = files.filter((f) => rel(f).startsWith('plan/') || rel(f).startsWith('lifecycle/'));
    const reach = new Set<string>();
    const walk = (f: string): void => {
      if (reach.has(f)) return;
      reach.add(f);
      for (const d of importsOf(f)) if (d.startsWith(SRC)) walk(d);
    };
    core.forEach(walk);
    // node:module: its createRequire is how the libc binding (src/host/libc.ts) loads koffi, on first use.
    const io = /^(node:)?(fs|fs\/promises|child_process|net|http|https|dgram|worker_threads|module)$|koffi|lowdb/;
    const offenders = [...reach].flatMap((f) =>
      importsOf(f)
        .filter((d) => !d.startsWith(SRC) && io.test(d))
        .map((d) => `${rel(f)} imports ${d}`),
    );
    expect(offenders).toEqual([]);
  });

  it("give no two files under src the same name (a folder's index.ts, types.ts and errors.ts aside)", () => {
    const byName = new Map<string, string[]>();
    for (const f of files.filter((f) => fs.existsSync(f))) {
      const name = path.basename(f);
      if (['index.ts', 'types.ts', 'errors.ts'].includes(name)) continue;
      byName.set(name, [...(byName.get(name) ?? []), rel(f)]);
    }
    const repeated = [...byName].filter(([, where]) => where.length > 1).map(([name, where]) => `${name}: ${where.join(', ')}`);
    expect(repeated).toEqual([]);
  });
});
