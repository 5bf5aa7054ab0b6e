// `npm run bench -- [--quick] [--only NAME]... [--no-vm]`: measures thinlayer against what users
// would use instead, writes bench/results/*.json and docs/benchmarks.md. Benchmarks are not tests:
// nothing here fails on a slow figure; a missed target is reported as missed.

import path from 'node:path';
import { ThinlayerError } from '../src/errors/index.ts';
import { repoRoot, runBench } from './bench.ts';
import { parseBenchArgs, USAGE } from './options.ts';

async function main(): Promise<number> {
  const opts = parseBenchArgs(process.argv.slice(2), {
    resultsDir: path.join(repoRoot, 'bench', 'results'),
    docFile: path.join(repoRoot, 'docs', 'benchmarks.md'),
  });
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { results } = await runBench(opts);
  const failed = results.filter((r) => r.status === 'failed');
  // A suite that could not run (a VM that did not boot) is a failed run, said at the end too.
  for (const r of failed) process.stdout.write(`[bench] FAILED: ${r.suite}: ${r.reason?.split('\n')[0]}\n`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`bench: ${e instanceof ThinlayerError ? e.message : ((e as Error)?.stack ?? e)}\n`);
    process.exitCode = e instanceof ThinlayerError ? e.exitCode : 1;
  },
);
