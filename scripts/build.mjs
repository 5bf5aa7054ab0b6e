// Builds the library (buildLibrary), the program to install on a host (buildStandalone) and bundles
// the CLI into dist/thinlayer.mjs with esbuild, so a command starts in a fraction of the time tsx
// needs to compile the sources. bin/thinlayer.js uses the bundle only while it is newer
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
// (The standalone program, buildStandalone, bundles koffi's JavaScript and keeps its native module
// and proto/ beside itself.)
//
// `--clean --no-standalone` (npm pack's prepack) empties dist/ first, so the tarball holds this
// build's chunks and no older ones, and leaves out dist/standalone, which the tarball does not
// hold. npm runs `prepare` after `prepack` when it packs: that second build is skipped.

import { build } from 'esbuild';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
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

/**
 * The library (`import { apply, status } from 'thinlayer'`): dist/api.mjs, one ES module with the
 * dependencies left to node_modules, and its type declarations in dist/types (package.json's
 * `exports` names both). The declarations come from tsc (tsconfig.build.json).
 */
export async function buildLibrary({ outdir = join(root, 'dist') } = {}) {
  await build({
    entryPoints: [{ in: join(root, 'src/api/index.ts'), out: 'api' }],
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: false,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    sourcemap: 'linked',
  });
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${result.stdout}${result.stderr}`);
  return [join(outdir, 'api.mjs'), join(outdir, 'types/api/index.d.ts')];
}

/** How a source loads koffi only when first called (src/host/libc.ts). */
const LAZY_KOFFI = "createRequire(import.meta.url)('koffi')";

/** Node's name for this machine's architecture, as koffi names its prebuilt native modules. */
const KOFFI_ARCH = { x64: 'x64', arm64: 'arm64', ia32: 'ia32', arm: 'armhf', riscv64: 'riscv64d', loong64: 'loong64' };

/**
 * The program a host installs (docs/operations.md#installing): `outdir` (dist/standalone) holds
 *   thinlayer.mjs                  one ES module with a node shebang: the CLI and every JavaScript
 *                                  dependency, koffi's loader included, without splitting;
 *   koffi/<platform>_<arch>/koffi.node   koffi's native part for this machine, as koffi's npm
 *                                  package ships it (the bundle requires it beside itself);
 *   proto/                         containerd's API, read by `thinlayer snapshotter` at start.
 * The directory is copied whole (to /usr/local/lib/thinlayer) and /usr/local/bin/thinlayer is a
 * symlink to thinlayer.mjs: Node runs a symlinked script from its real path, so the native module
 * and proto/ are found beside it, and the `.mjs` makes it an ES module on every Node 20. Node.js 20
 * is all it needs: no node_modules. Built for this machine's architecture only.
 */
export async function buildStandalone({ outdir = join(root, 'dist/standalone') } = {}) {
  fs.rmSync(outdir, { recursive: true, force: true });
  const outfile = join(outdir, 'thinlayer.mjs');
  await build({
    stdin: {
      contents: "import { main } from './src/cli/main.ts';\nprocess.exitCode = await main(process.argv.slice(2));\n",
      resolveDir: root,
      sourcefile: 'thinlayer-standalone.ts',
      loader: 'ts',
    },
    outfile,
    bundle: true,
    splitting: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minifyWhitespace: true,
    minifySyntax: true,
    // koffi's CommonJS code asks for require, __dirname and __filename, which an ES module lacks.
    banner: {
      js: [
        '#!/usr/bin/env node',
        "import { createRequire as __thinlayerRequire } from 'node:module';",
        "import { fileURLToPath as __thinlayerPath } from 'node:url';",
        'const require = __thinlayerRequire(import.meta.url);',
        'const __filename = __thinlayerPath(import.meta.url);',
        "const __dirname = __thinlayerPath(new URL('.', import.meta.url));",
      ].join('\n'),
    },
    // koffi requires its native module for each platform by a path inside its package
    // (./build/koffi/<triplet>/koffi.node): left as a require of ./koffi/<triplet>/koffi.node beside the bundle.
    plugins: [
      {
        name: 'koffi-in-the-bundle',
        setup(b) {
          b.onResolve({ filter: /koffi\.node$/ }, (args) => ({ path: args.path.replace(/^\.\/build\/koffi\//, './koffi/'), external: true }));
          // A source that loads koffi lazily at run time (src/host/libc.ts) names it in a call
          // esbuild cannot follow, which would look for koffi in a node_modules the host has not:
          // made a plain require of it, which esbuild bundles and still runs only when called.
          b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
            const text = fs.readFileSync(args.path, 'utf8');
            if (!text.includes(LAZY_KOFFI)) return undefined;
            return { contents: text.replaceAll(LAZY_KOFFI, "require('koffi')"), loader: 'ts' };
          });
        },
      },
    ],
    logLevel: 'warning',
  });
  // koffi named at run time (a require or import of it the build did not bundle) would be looked
  // for in a node_modules the host has not.
  if (/\(\s*["']koffi["']\s*\)/.test(fs.readFileSync(outfile, 'utf8'))) {
    throw new Error(`${outfile} loads koffi at run time from node_modules: a source names it in a way this build does not bundle (see LAZY_KOFFI)`);
  }
  fs.chmodSync(outfile, 0o755);
  const koffi = join(root, 'node_modules/koffi');
  const arch = KOFFI_ARCH[process.arch] ?? process.arch;
  const triplets = [`${process.platform}_${arch}`, ...(process.platform === 'linux' ? [`musl_${arch}`] : [])];
  const present = triplets.filter((t) => fs.existsSync(join(koffi, 'build/koffi', t, 'koffi.node')));
  if (present.length === 0) throw new Error(`koffi has no native module for ${triplets[0]} in ${koffi}/build/koffi`);
  for (const t of present) {
    fs.mkdirSync(join(outdir, 'koffi', t), { recursive: true });
    fs.copyFileSync(join(koffi, 'build/koffi', t, 'koffi.node'), join(outdir, 'koffi', t, 'koffi.node'));
  }
  fs.copyFileSync(join(koffi, 'LICENSE.txt'), join(outdir, 'koffi/LICENSE.txt'));
  fs.cpSync(join(root, 'proto'), join(outdir, 'proto'), { recursive: true });
  return [outfile];
}

/** npm runs `prepare` after `prepack` when it packs or publishes: prepack's clean build is the one. */
function builtByPrepack() {
  return process.env.npm_lifecycle_event === 'prepare' && ['pack', 'publish'].includes(process.env.npm_command ?? '');
}

if (process.argv[1] === fileURLToPath(import.meta.url) && !builtByPrepack()) {
  if (process.argv.includes('--clean')) fs.rmSync(join(root, 'dist'), { recursive: true, force: true });
  await buildBundle();
  await buildLibrary();
  // The tarball holds no standalone program: a host that has npm installs the package instead.
  if (!process.argv.includes('--no-standalone')) await buildStandalone();
}
