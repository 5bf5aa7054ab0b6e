#!/usr/bin/env node
// Starts the CLI from the esbuild bundle (dist/thinlayer.mjs and the chunks beside it that it imports
// when a command needs them, made by `npm run build`, `npm ci` or `npm pack`). An installed package
// has no src/: it always runs the bundle. A checkout runs the bundle while it is newer than every
// source file, and otherwise the TypeScript sources through tsx (a devDependency), so an edited
// checkout never runs stale code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist/thinlayer.mjs');
const sources = join(root, 'src');

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let main;
if (!existsSync(sources)) {
  ({ main } = await import(bundle));
} else if (existsSync(bundle) && statSync(bundle).mtimeMs >= newestSource(sources)) {
  ({ main } = await import(bundle));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
