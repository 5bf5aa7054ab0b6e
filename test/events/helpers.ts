// Shared by the event tests: private temporary state dirs, and second processes that run a snippet
// of TypeScript against the real modules (through tsx), to hold locks and append from outside.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { openStateDir, type StateDir } from '../../src/events/state-dir.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Absolute path of a module under src/events, for import() inside a child. */
export function eventsModule(name: string): string {
  return path.join(repoRoot, 'src/events', name);
}

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-events-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function tempStateDir(): Promise<StateDir> {
  return openStateDir(path.join(tempDir(), 'state'));
}

export interface Child {
  process: ChildProcessWithoutNullStreams;
  pid: number;
  /** Resolves with the first stdout line that starts with `prefix`. */
  line(prefix: string): Promise<string>;
  send(line: string): void;
  /** Resolves when the process has exited and been reaped. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Runs an ES module snippet in a new node process with tsx loaded; killed when the test ends. */
export function spawnSnippet(code: string): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  const lines: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (let nl = stdout.indexOf('\n'); nl !== -1; nl = stdout.indexOf('\n')) {
      const l = stdout.slice(0, nl);
      stdout = stdout.slice(nl + 1);
      lines.push(l);
      for (const w of waiters.filter((w) => l.startsWith(w.prefix))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return {
    process: child,
    pid: child.pid!,
    exited,
    send: (l) => child.stdin.write(`${l}\n`),
    line: (prefix) => {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve });
        void exited.then(({ code, signal, stderr }) => reject(new Error(`child exited (code ${code}, signal ${signal}) before printing ${prefix}: ${stderr}`)));
      });
    },
  };
}

/** A snippet's way to wait for the parent's next stdin line. */
export const READ_LINE_SNIPPET = `
import { createInterface } from 'node:readline';
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const nextLine = async () => (await stdinLines.next()).value;
`;
