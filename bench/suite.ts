// The shape of a benchmark suite. A suite measures; bench.ts stamps what it returns with the
// machine, the date and the reproducing command, and writes it.

import type { SuiteResult } from './result.ts';

export interface SuiteContext {
  /** Small sizes (the smoke test, a quick look). */
  quick: boolean;
  /** A private temporary directory for this suite, removed when it ends. */
  scratch: string;
  /** The checkout (the VM suite runs the guest there). */
  repoRoot: string;
  /** Progress for the person watching: suites that take long print as they go. */
  log(line: string): void;
}

export type SuiteOutput = Pick<SuiteResult, 'metrics' | 'tables' | 'targets' | 'notes'> & {
  /** Set when the suite could not finish: the result is `failed`, and what was measured is kept. */
  failure?: string;
};

export interface Suite {
  name: string;
  title: string;
  /** Boots the kernel VM: skipped with --no-vm. */
  needsVm?: boolean;
  run(ctx: SuiteContext): Promise<SuiteOutput>;
}

export function emptyOutput(): SuiteOutput {
  return { metrics: {}, tables: [], targets: [], notes: [] };
}
