#!/usr/bin/env node
// Starts the CLI from the esbuild bundle (dist/thinlayer.mjs and the chunks beside it that it imports
// when a command needs them, made by `npm ci` or scripts/build.mjs) while it is newer than every
// source file; otherwise runs the TypeScript sources through tsx, so an edited checkout never runs
// stale code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist/thinlayer.mjs');

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let main;
if (existsSync(bundle) && statSync(bundle).mtimeMs >= newestSource(join(root, 'src'))) {
  ({ main } = await import(bundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
