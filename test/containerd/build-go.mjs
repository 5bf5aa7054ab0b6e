// Builds the Go programs of the containerd tests on the host, offline, from Debian's packages:
// golang-go and the containerd source in golang-github-containerd-containerd-dev
// (/usr/share/gocode), in GOPATH mode with no module proxy and no cgo, so the static binaries run
// in the VM from the read-only shared root. Outputs go to test/vm/.work (the guest sees the
// checkout, and the directory is not committed) and are rebuilt when a source, go or the
// containerd package changes.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.resolve(here, '..', 'vm', '.work');
export const GOPATH = '/usr/share/gocode';
const CONTAINERD_SRC = `${GOPATH}/src/github.com/containerd/containerd`;

export class GoBuildSetupError extends Error {}

function packageVersion(name) {
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format field, not a template
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', name], { encoding: 'utf8' }).trim();
  } catch {
    return 'none';
  }
}

function requireToolchain() {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
  } catch {
    throw new GoBuildSetupError('go not found: install the Debian package golang-go');
  }
  if (!fs.existsSync(path.join(CONTAINERD_SRC, 'snapshots', 'testsuite'))) {
    throw new GoBuildSetupError(`${CONTAINERD_SRC}/snapshots/testsuite not found: install the Debian package golang-github-containerd-containerd-dev`);
  }
}

function goEnv() {
  return {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH,
    GOPROXY: 'off',
    GOFLAGS: '',
    CGO_ENABLED: '0',
    GOCACHE: path.join(workDir, 'gocache'),
  };
}

/**
 * Builds `go test -c` (test: true) or `go build` of one directory of this repository.
 * @param {{ dir: string, output: string, test?: boolean }} o dir relative to test/containerd
 * @returns {string} the binary's absolute path
 */
export function buildGo({ dir, output, test = false }) {
  requireToolchain();
  const src = path.resolve(here, dir); // relative to test/containerd, or absolute
  const files = fs
    .readdirSync(src)
    .filter((f) => f.endsWith('.go'))
    .sort();
  const hash = crypto.createHash('sha256');
  hash.update(execFileSync('go', ['version'], { encoding: 'utf8' }));
  hash.update(packageVersion('golang-github-containerd-containerd-dev'));
  hash.update(String(test));
  for (const f of files) hash.update(f).update(fs.readFileSync(path.join(src, f)));
  const stamp = hash.digest('hex').slice(0, 16);
  fs.mkdirSync(workDir, { recursive: true });
  const binary = path.join(workDir, output);
  const stampFile = `${binary}.stamp`;
  if (fs.existsSync(binary) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) return binary;
  const args = test ? ['test', '-c', '-o', binary, '.'] : ['build', '-o', binary, '.'];
  try {
    execFileSync('go', args, { cwd: src, env: goEnv(), stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    throw new Error(`go ${args.join(' ')} in ${src} failed:\n${e.stderr || e.message}`);
  }
  fs.writeFileSync(stampFile, stamp);
  return binary;
}

/** containerd's snapshotter suite through the proxy client (test/containerd/suite). */
export function buildSuite() {
  return buildGo({ dir: 'suite', output: 'snapshotter-suite.test', test: true });
}
