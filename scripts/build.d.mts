/**
 * Bundles `entry` (default src/cli/main.ts) into `outfile` (default dist/thinlayer.mjs), with the
 * parts it imports lazily as chunks beside it (`<outfile stem>-NAME-HASH.mjs`) unless `splitting`
 * is false; `minify` (default true) strips whitespace and folds syntax, keeping identifiers.
 * Resolves to the paths of the files written.
 */
export function buildBundle(opts?: { entry?: string; outfile?: string; sourcemap?: boolean; splitting?: boolean; minify?: boolean }): Promise<string[]>;

/**
 * Builds the library: dist/api.mjs (src/api/index.ts, dependencies left to node_modules) and its
 * type declarations under dist/types (tsconfig.build.json). Resolves to the two entry files.
 */
export function buildLibrary(opts?: { outdir?: string }): Promise<string[]>;

/**
 * Builds the program a host installs: `outdir` (default dist/standalone) with thinlayer.mjs (the
 * CLI and its JavaScript dependencies in one file, with a node shebang), koffi's native module for
 * this machine beside it and proto/. Resolves to the path of thinlayer.mjs.
 */
export function buildStandalone(opts?: { outdir?: string }): Promise<string[]>;
