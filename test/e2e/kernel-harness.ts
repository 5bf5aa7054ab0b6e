// Shared set-up for the engine's end-to-end tests on the real kernel (inside the test VM).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { linuxKernelAvailable } from '../../src/kernel/linux/index.ts';
import * as api from '../../src/api/index.ts';

/** Fails (never skips) outside the VM: this tier needs device-mapper and root. */
export function requireKernel(): void {
  expect(linuxKernelAvailable(), 'needs /dev/mapper/control and root: run it with npm run test:kernel').toBe(true);
}

/** A private state dir and mount root; everything is destroyed after the test. */
export function kernelBox() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-k-'));
  const box = { root, stateDir: join(root, 'state'), mnt: join(root, 'mnt'), src: join(root, 'src') };
  onTestFinished(async () => {
    await api.destroy({ stateDir: box.stateDir, backend: 'kernel', yes: true }).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });
  return box;
}
