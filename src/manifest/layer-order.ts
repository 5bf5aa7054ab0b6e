// Layers form a forest: each is a snapshot of its parent, or of the base device when it has none.
// Snapshots can only be taken of what exists, so the engine needs parents before children, and a
// cycle (a snapshot of itself, at some remove) has to be refused with the cycle named.

export interface ParentLink {
  name: string;
  parent: string | null;
}

/**
 * Every cycle among the links, each listed from its first member in the given order and
 * following parents: [a, b] means a's parent is b and b's parent is a. Parents that name no
 * link end a chain (they are reported elsewhere), as does null.
 */
export function findCycles(links: readonly ParentLink[]): string[][] {
  const parentOf = new Map(links.map((l) => [l.name, l.parent]));
  const position = new Map(links.map((l, i) => [l.name, i]));
  const settled = new Set<string>();
  const cycles: string[][] = [];
  for (const start of links) {
    const chain: string[] = [];
    const onChain = new Map<string, number>();
    let current: string | null | undefined = start.name;
    while (current != null && parentOf.has(current) && !settled.has(current)) {
      if (onChain.has(current)) {
        const cycle = chain.slice(onChain.get(current));
        const first = cycle.reduce((best, n, i) => (position.get(n)! < position.get(cycle[best])! ? i : best), 0);
        cycles.push([...cycle.slice(first), ...cycle.slice(0, first)]);
        break;
      }
      onChain.set(current, chain.length);
      chain.push(current);
      current = parentOf.get(current);
    }
    for (const name of chain) settled.add(name);
  }
  return cycles;
}

/** `a -> b -> a` */
export function describeCycle(cycle: readonly string[]): string {
  return [...cycle, cycle[0]].join(' -> ');
}

/**
 * The links with every parent before its children; otherwise in the given order. The links must
 * be free of cycles and every parent must be one of them (check with findCycles first).
 */
export function parentsFirst<T extends ParentLink>(links: readonly T[]): T[] {
  const byName = new Map(links.map((l) => [l.name, l]));
  const placed = new Set<string>();
  const ordered: T[] = [];
  const place = (link: T): void => {
    if (placed.has(link.name)) return;
    placed.add(link.name);
    const parent = link.parent === null ? undefined : byName.get(link.parent);
    if (parent) place(parent);
    ordered.push(link);
  };
  links.forEach(place);
  return ordered;
}
