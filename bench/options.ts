// `npm run bench -- [options]`: which suites, at which sizes, written where.

import { UserError } from '../src/errors/index.ts';

export interface BenchOptions {
  /** Small sizes: for the smoke test and a quick look. Figures from --quick are marked as such. */
  quick: boolean;
  /** Run only these suites (--only NAME, repeatable); null: all. */
  only: string[] | null;
  /** Skip the suite that boots the kernel VM. */
  vm: boolean;
  resultsDir: string;
  docFile: string;
  help: boolean;
}

export const USAGE = `npm run bench -- [--quick] [--only NAME]... [--no-vm] [--results-dir DIR] [--doc FILE]

  --quick            small sizes (seconds): for the smoke test and a quick look
  --only NAME        run one suite (repeatable): event-log, reconcile, space, tar, snapshotter, kernel, containerd
  --no-vm            skip the kernel and containerd suites (each boots a VM under software emulation: minutes)
  --results-dir DIR  where the suites' JSON goes (default bench/results)
  --doc FILE         the document written from bench/template.md (default docs/benchmarks.md)`;

export function parseBenchArgs(argv: readonly string[], defaults: { resultsDir: string; docFile: string }): BenchOptions {
  const opts: BenchOptions = { quick: false, only: null, vm: true, resultsDir: defaults.resultsDir, docFile: defaults.docFile, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UserError(`${flag} needs a value`, { path: flag });
      return v;
    };
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--only':
        opts.only = [...(opts.only ?? []), value()];
        break;
      case '--no-vm':
        opts.vm = false;
        break;
      case '--results-dir':
        opts.resultsDir = value();
        break;
      case '--doc':
        opts.docFile = value();
        break;
      case '-h':
      case '--help':
        opts.help = true;
        break;
      default:
        throw new UserError(`unknown bench option ${arg}\n${USAGE}`, { path: arg });
    }
  }
  return opts;
}
