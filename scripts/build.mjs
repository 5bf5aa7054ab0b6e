// Bundles the CLI into dist/thinlayer.mjs with esbuild, so a command starts in a fraction of the
// time tsx needs to compile the sources. bin/thinlayer.js uses the bundle only while it is newer
// than every source file, and falls back to the sources through tsx otherwise: a stale bundle is
// never run. Runs on `npm ci` (prepare) and before the test tiers (test/global-setup.ts).
//
// Start-up is most of a short command's cost, and under software emulation (the kernel tier and
// benchmark VMs) V8 compiles source text some 40 times slower than here, so the bundle is split and
// minified:
// - splitting: what main.ts (and the kernel selection) import with `await import()` lands in chunks
//   of its own beside the entry (dist/thinlayer-NAME-HASH.mjs), read and compiled only by the
//   commands that import them: `--help` reads the small entry alone, `plan` skips watch mode (rxjs),
//   doctor and the Linux backend;
// - minify whitespace and syntax: less text for V8 to scan and compile. Identifiers are left as
//   they are, so stack traces name the real functions (mangling them would save a little more
//   text, but esbuild's keepNames, which would put the names back, costs more than it saves); the
//   linked source map leads back to the sources.
//
// Not in the bundle: koffi (a native addon, loaded from node_modules) and the .proto files of
// containerd's API in proto/, which `thinlayer snapshotter` reads at start from the package root
// (found by walking up from the bundle: src/snapshotter/proto.ts), so the package ships proto/.

import { build } from 'esbuild';
import fs from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A chunk of an earlier build that this build no longer writes is deleted once it is this old: a
 * command that started from the earlier entry may still be about to import it.
 */
const STALE_CHUNK_AGE_MS = 10 * 60 * 1000;

/**
 * Bundles `entry` into `outfile` (by default the CLI into dist/thinlayer.mjs), its lazily imported
 * parts into chunks beside it named after it (`<outfile stem>-NAME-HASH.mjs`). `splitting: false`
 * makes the one self-contained file of earlier versions. Resolves to the paths written.
 */
export async function buildBundle({
  entry = join(root, 'src/cli/main.ts'),
  outfile = join(root, 'dist/thinlayer.mjs'),
  sourcemap = true,
  splitting = true,
  minify = true,
} = {}) {
  const outdir = dirname(outfile);
  const ext = extname(outfile) || '.js';
  const stem = basename(outfile, ext);
  const result = await build({
    entryPoints: [{ in: entry, out: stem }],
    outdir,
    outExtension: { '.js': ext },
    chunkNames: `${stem}-[name]-[hash]`,
    splitting,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minifyWhitespace: minify,
    minifySyntax: minify,
    // koffi is a native addon: it must be loaded from node_modules, not bundled.
    external: ['koffi'],
    // Some dependencies use require(); give the ESM bundle (each chunk: the banner heads every file) one.
    banner: { js: "import { createRequire as __thinlayerRequire } from 'node:module'; const require = __thinlayerRequire(import.meta.url);" },
    logLevel: 'warning',
    sourcemap: sourcemap ? 'linked' : false,
    metafile: true,
  });
  const written = Object.keys(result.metafile.outputs).map((file) => resolve(file));
  removeStaleChunks(outdir, stem, ext, new Set(written));
  return written;
}

/** Chunks (and their maps) named after this entry that this build did not write, once old enough. */
function removeStaleChunks(outdir, stem, ext, written) {
  const now = Date.now();
  for (const name of fs.readdirSync(outdir)) {
    const path = join(outdir, name);
    if (!name.startsWith(`${stem}-`) || !(name.endsWith(ext) || name.endsWith(`${ext}.map`)) || written.has(path)) continue;
    try {
      if (now - fs.statSync(path).mtimeMs > STALE_CHUNK_AGE_MS) fs.rmSync(path, { force: true });
    } catch {
      // gone already, or another build is cleaning up too
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildBundle();
