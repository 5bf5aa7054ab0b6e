// Finds the guest kernel and builds the test VM's initramfs: the static busybox, /init (init.sh),
// /dev/console, and the kernel modules the tier needs, in load order. The archive is cached in
// test/vm/.work and rebuilt only when an input changes (kernel, modules, busybox, init.sh, this code).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpioNewc } from './cpio.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** What the guest must be able to do: virtio disk and 9p, ext4 and xfs, thin pools, loop devices. */
const ROOT_MODULES = ['virtio_pci', 'virtio_blk', '9pnet_virtio', '9p', 'ext4', 'xfs', 'dm-thin-pool', 'loop'];
/** Loaded first: libcrc32c asks the crypto API for "crc32c", which needs a provider and no modprobe runs. */
const PRELOAD_MODULES = ['crc32c_generic'];

export class VmSetupError extends Error {
  constructor(message) {
    super(message);
    this.name = 'VmSetupError';
  }
}

/** The newest /boot/vmlinuz-* whose modules include dm-thin-pool, or TL_VM_KERNEL_VERSION. */
export function locateGuestKernel() {
  const wanted = process.env.TL_VM_KERNEL_VERSION;
  const versions = fs.existsSync('/boot')
    ? fs
        .readdirSync('/boot')
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice('vmlinuz-'.length))
    : [];
  const usable = versions
    .filter((v) => !wanted || v === wanted)
    .filter((v) => hasModule(v, 'dm-thin-pool'))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  if (usable.length === 0) {
    throw new VmSetupError(
      `no guest kernel: need /boot/vmlinuz-<version> with dm-thin-pool in /lib/modules/<version>` +
        `${wanted ? ` (TL_VM_KERNEL_VERSION=${wanted})` : ''}; install the Debian package linux-image-amd64`,
    );
  }
  const version = usable[0];
  return { version, image: `/boot/vmlinuz-${version}` };
}

function hasModule(version, name) {
  try {
    return modinfo(version, 'filename', name) !== '';
  } catch {
    return false;
  }
}

function modinfo(version, field, name) {
  return execFileSync('modinfo', ['-k', version, '-F', field, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Module names in an order where every module follows its dependencies. */
function moduleLoadOrder(version) {
  const order = [];
  const visiting = new Set();
  const visit = (name) => {
    const key = name.replace(/-/g, '_');
    if (order.some((m) => m.key === key)) return;
    if (visiting.has(key)) throw new VmSetupError(`module dependency cycle at ${name}`);
    visiting.add(key);
    let file;
    try {
      file = modinfo(version, 'filename', name);
    } catch (e) {
      throw new VmSetupError(`kernel module ${name} not found for ${version}: ${e.stderr ?? e.message}`);
    }
    if (file === '(builtin)') return;
    for (const dep of modinfo(version, 'depends', name).split(',').filter(Boolean)) visit(dep);
    order.push({ key, name, file });
  };
  for (const name of [...PRELOAD_MODULES, ...ROOT_MODULES]) visit(name);
  return order;
}

/** The module's bytes, decompressed: busybox insmod wants a plain .ko. */
function moduleBytes(file) {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  const tool = file.endsWith('.xz')
    ? ['xz', ['-dc', file]]
    : file.endsWith('.zst')
      ? ['zstd', ['-dcq', file]]
      : file.endsWith('.gz')
        ? ['gzip', ['-dc', file]]
        : null;
  if (!tool) throw new VmSetupError(`unknown module compression: ${file}`);
  return execFileSync(tool[0], tool[1], { maxBuffer: 256 << 20 });
}

function findStaticBusybox() {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    if (!fs.existsSync(candidate)) continue;
    const head = fs.readFileSync(candidate).subarray(0, 4096);
    // A dynamic executable names its interpreter in a PT_INTERP segment; a static one has none.
    if (!head.includes('/lib64/ld-linux')) return candidate;
  }
  throw new VmSetupError('no static busybox at /bin/busybox: install the Debian package busybox-static');
}

/**
 * Builds (or reuses) the initramfs for the given kernel version.
 * @returns {{ path: string, rebuilt: boolean, modules: string[] }}
 */
export function ensureInitramfs(workDir, version) {
  const busybox = findStaticBusybox();
  const modules = moduleLoadOrder(version);
  const initScript = fs.readFileSync(path.join(here, 'init.sh'));
  const key = createHash('sha256');
  for (const file of [busybox, ...modules.map((m) => m.file)]) {
    const st = fs.statSync(file);
    key.update(`${file}\0${st.size}\0${st.mtimeMs}\n`);
  }
  key.update(initScript);
  key.update(fs.readFileSync(fileURLToPath(import.meta.url)));
  key.update(fs.readFileSync(path.join(here, 'cpio.mjs')));
  const digest = key.digest('hex').slice(0, 16);
  const target = path.join(workDir, `initramfs-${version}-${digest}.cpio`);
  const names = modules.map((m) => path.basename(m.file).replace(/\.(xz|zst|gz)$/, ''));
  if (fs.existsSync(target)) return { path: target, rebuilt: false, modules: names };

  const entries = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'dev' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'dir', path: 'mnt' },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'modules' },
    { type: 'file', path: 'bin/busybox', data: fs.readFileSync(busybox), mode: 0o755 },
    { type: 'file', path: 'init', data: initScript, mode: 0o755 },
    { type: 'file', path: 'modules/order', data: Buffer.from(`${names.join('\n')}\n`) },
    ...modules.map((m, i) => ({ type: 'file', path: `modules/${names[i]}`, data: moduleBytes(m.file) })),
  ];
  fs.mkdirSync(workDir, { recursive: true });
  for (const stale of fs.readdirSync(workDir).filter((f) => f.startsWith('initramfs-'))) fs.rmSync(path.join(workDir, stale));
  const tmp = `${target}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, cpioNewc(entries));
  fs.renameSync(tmp, target);
  return { path: target, rebuilt: true, modules: names };
}
