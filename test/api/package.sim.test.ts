// The library as another package uses it: `import … from 'thinlayer'` through package.json's
// exports, type-checked against the built declarations and run on the simulated kernel. The
// program is docs/api.md's example, copied out of the page, so the documented example is the one
// that works.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildLibrary } from '../../scripts/build.mjs';
import { REPO, webManifest } from '../e2e/cli-harness.ts';
import { writeManifest } from '../builders/manifest.ts';

function docExample(): string {
  const page = readFileSync(join(REPO, 'docs/api.md'), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(page);
  if (!block) throw new Error('docs/api.md has no ```ts example');
  return block[1];
}

describe('thinlayer as a library', () => {
  it("runs docs/api.md's example from another package, type-checked against the built declarations", async () => {
    await buildLibrary();
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-consumer-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    // A package of its own, with thinlayer (and @types/node) in its node_modules.
    mkdirSync(join(root, 'node_modules/@types'), { recursive: true });
    symlinkSync(REPO, join(root, 'node_modules/thinlayer'));
    symlinkSync(join(REPO, 'node_modules/@types/node'), join(root, 'node_modules/@types/node'));
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    writeFileSync(
      join(root, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] },
        include: ['example.ts'],
      }),
    );
    writeFileSync(join(root, 'example.ts'), docExample());
    const mnt = join(root, 'mnt');
    mkdirSync(mnt);
    writeManifest(join(root, 'web.yaml'), webManifest(mnt));

    const tsc = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', root], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    // tsx, from thinlayer's own node_modules, runs the TypeScript; 'thinlayer' resolves from the consumer's.
    const tsx = pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;
    const run = spawnSync(process.execPath, ['--import', tsx, join(root, 'example.ts'), join(root, 'web.yaml')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, THINLAYER_STATE_DIR: join(root, 'state') },
      timeout: 90_000,
    });
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^plan: \d+ steps, impact create$/);
    expect(lines.find((l) => l.startsWith('device web1'))).toMatch(/^device web1: mounted \(desired mounted\), \d+ of 268435456 bytes mapped$/);
    expect(lines.find((l) => l.startsWith('apply:'))).toMatch(/^apply: converged after \d+ steps/);
    expect(lines.find((l) => l.startsWith('refused:'))).toMatch(/cannot read the manifest/);
    expect(lines.at(-1)).toMatch(/^destroy: converged after \d+ steps$/);
  }, 240_000);
});
