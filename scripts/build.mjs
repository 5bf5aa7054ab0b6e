// Bundles the CLI into dist/thinlayer.mjs with esbuild, so a command starts in a fraction of the
// time tsx needs to compile the sources. bin/thinlayer.js uses the bundle only while it is newer
// than every source file, and falls back to the sources through tsx otherwise: a stale bundle is
// never run. Runs on `npm ci` (prepare) and before the test tiers (test/global-setup.ts).

import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles `entry` into `outfile`: by default the CLI into dist/thinlayer.mjs. */
export async function buildBundle({ entry = join(root, 'src/cli/main.ts'), outfile = join(root, 'dist/thinlayer.mjs'), sourcemap = true } = {}) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // koffi is a native addon: it must be loaded from node_modules, not bundled.
    external: ['koffi'],
    // Some dependencies use require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __thinlayerRequire } from 'node:module'; const require = __thinlayerRequire(import.meta.url);" },
    logLevel: 'warning',
    sourcemap: sourcemap ? 'linked' : false,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildBundle();
