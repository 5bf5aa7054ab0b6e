// Boots Debian's kernel under qemu (software emulation: the host kernel has no device-mapper and
// KVM does not boot here) with the host root shared read-only over 9p and a persistent virtio disk,
// runs one shell command in the guest and reports how it ended. The kernel tier and its multi-boot
// scenarios (power cuts, reboots) are built from calls to bootVm.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { VmSetupError, ensureInitramfs, locateGuestKernel } from './initramfs.mjs';

export { VmSetupError };

const here = path.dirname(fileURLToPath(import.meta.url));
/** The checkout: the guest sees it at the same path, read-only, through the shared host root. */
export const repoRoot = path.resolve(here, '..', '..');
export const workDir = path.join(here, '.work');
export const defaultDisk = path.join(workDir, 'disk.img');
/** Where the guest mounts the persistent disk (inside its own tmpfs /run). */
export const guestDiskMount = '/run/tl-disk';
const DISK_BYTES = 16 * 2 ** 30; // sparse: costs only what the guest writes

const EXIT_LINE = /^TL-VM-EXIT (\d+)$/;
const FAIL_LINE = /^TL-VM-FAIL (.*)$/;
const READY_LINE = /^TL-VM: ready at ([\d.]+)s$/;
const PANIC_LINE = /Kernel panic|end Kernel panic/;

let bootCounter = 0;

function requireQemu() {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new VmSetupError('qemu-system-x86_64 not found: install the Debian package qemu-system-x86');
  }
}

/**
 * Boots the VM once.
 * @param {object} o
 * @param {string} o.command shell text run by /bin/sh in the guest, in the checkout's directory
 * @param {number} [o.timeoutMs] the whole boot, default 15 minutes; passing it throws
 * @param {boolean} [o.freshDisk] start from an empty disk (the guest formats it)
 * @param {RegExp|string} [o.killWhenOutputMatches] SIGKILL qemu (a power cut) when a guest line matches
 * @param {boolean} [o.echo] stream the guest console to this process's stdout (default true)
 * @param {string} [o.disk] the disk image (default test/vm/.work/disk.img)
 * @returns {Promise<{ exitCode: number|null, output: string, killed: boolean, readyAfterMs: number|null, tookMs: number }>}
 *   exitCode is the command's status (null when killed); throws when the VM cannot be set up,
 *   the boot fails, the guest reports a failure or the timeout passes.
 */
export async function bootVm({ command, timeoutMs = 15 * 60_000, freshDisk = false, killWhenOutputMatches, echo = true, disk = defaultDisk }) {
  if (typeof command !== 'string' || command === '') throw new TypeError('bootVm: command is required');
  if (/\s/.test(repoRoot)) throw new VmSetupError(`the checkout path must not contain whitespace (kernel command line): ${repoRoot}`);
  requireQemu();
  const kernel = locateGuestKernel();
  fs.mkdirSync(workDir, { recursive: true });
  const initramfs = ensureInitramfs(workDir, kernel.version);
  if (freshDisk && fs.existsSync(disk)) fs.rmSync(disk);
  if (!fs.existsSync(disk)) {
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, DISK_BYTES);
  }
  // The guest cannot see the host's /tmp, but it sees the checkout: the command goes there.
  const commandFile = path.join(workDir, `command-${process.pid}-${++bootCounter}.sh`);
  fs.writeFileSync(commandFile, `${command}\n`);
  const killPattern = typeof killWhenOutputMatches === 'string' ? new RegExp(escapeRegExp(killWhenOutputMatches)) : killWhenOutputMatches;

  const args = [
    '-accel',
    'tcg',
    '-cpu',
    'max',
    '-m',
    '2048',
    '-smp',
    '2',
    '-nographic',
    '-no-reboot',
    '-nic',
    'none',
    '-kernel',
    kernel.image,
    '-initrd',
    initramfs.path,
    '-append',
    `console=ttyS0 quiet panic=-1 tl.cmd=${commandFile} tl.cwd=${repoRoot}`,
    '-virtfs',
    'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
    '-drive',
    `file=${disk},format=raw,if=virtio,cache=writeback`,
  ];
  const started = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let exitCode = null;
  let guestFailure = null;
  let panicked = false;
  let killed = false;
  let timedOut = false;
  let readyAfterMs = null;
  let partial = '';
  const decoder = new StringDecoder('utf8'); // a character may straddle two chunks

  const onLine = (raw) => {
    // SeaBIOS and the kernel write terminal escapes (clear screen, wrap mode) before our lines.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are what is taken out
    const line = raw.replace(/\r$/, '').replace(/\x1b(\[[0-9;?]*[A-Za-z]|c)/g, '');
    lines.push(line);
    if (echo) process.stdout.write(`${line}\n`);
    const exit = EXIT_LINE.exec(line);
    const fail = exit ? null : FAIL_LINE.exec(line);
    if (exit) exitCode = Number(exit[1]);
    else if (fail) guestFailure = fail[1];
    else if (READY_LINE.test(line)) readyAfterMs = Date.now() - started;
    else if (PANIC_LINE.test(line)) panicked = true;
    if (killPattern && !killed && killPattern.test(line)) {
      killed = true;
      qemu.kill('SIGKILL');
    }
  };
  const onData = (chunk) => {
    partial += decoder.write(chunk);
    const parts = partial.split('\n');
    partial = parts.pop();
    for (const p of parts) onLine(p);
  };
  qemu.stdout.on('data', onData);
  let stderr = '';
  qemu.stderr.on('data', (c) => {
    stderr += c.toString('utf8');
    if (echo) process.stderr.write(c);
  });
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill('SIGKILL');
  }, timeoutMs);

  const status = await new Promise((resolve, reject) => {
    qemu.on('error', reject);
    qemu.on('close', (code, signal) => resolve({ code, signal }));
  }).finally(() => {
    clearTimeout(timer);
    fs.rmSync(commandFile, { force: true });
  });
  if (partial) onLine(partial);
  const output = lines.join('\n');
  const tookMs = Date.now() - started;
  const tail = () => lines.slice(-25).join('\n');

  if (killed) return { exitCode: null, output, killed: true, readyAfterMs, tookMs };
  if (timedOut) throw new Error(`VM timed out after ${timeoutMs} ms; last guest lines:\n${tail()}`);
  if (guestFailure !== null) throw new Error(`VM boot failed in the guest: ${guestFailure}\n${tail()}`);
  if (exitCode === null && /Failed to get "write" lock/.test(stderr)) {
    throw new VmSetupError(`the disk ${disk} is in use by another VM (another kernel tier run?); wait for it, or pass another disk`);
  }
  if (exitCode === null) {
    const why = panicked ? 'the guest kernel panicked' : `qemu ended (code ${status.code}, signal ${status.signal}) before the guest reported an exit status`;
    throw new Error(`VM boot failed: ${why}\n${stderr.trim() ? `qemu: ${stderr.trim()}\n` : ''}${tail()}`);
  }
  return { exitCode, output, killed: false, readyAfterMs, tookMs };
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
