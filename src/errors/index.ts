// One error taxonomy, turned into exit codes only by the CLI entry point (src/cli/main.ts).
//   UserError     - bad input (manifest, flag): exit 2; names the file and the path inside it.
//   KernelError   - a kernel operation failed: carries the operation, the device and the errno.
//   StateError    - the state directory cannot be used as asked (locked, corrupt, not private).
//   InternalError - a bug in thinlayer: says so.
// A failed apply (exit 1) is any KernelError or StateError that ends a run.
// Every error has one of the codes below (ErrorCode); callers match by class and code (hasCode),
// never by a string they spell themselves.

/** The host's refusals of a file that HOST_FS_FIXES has a remedy for (systemCallError: E_HOST_<errno>). */
type HostFsErrno = 'EACCES' | 'EPERM' | 'EROFS' | 'ENOSPC' | 'EDQUOT';

/** Every error code thinlayer gives, as `--json` failures, the library API and the log's step.failed show them. */
export type ErrorCode =
  // UserError: the input at fault (exit 2)
  | 'E_USER'
  | 'E_USAGE'
  | 'E_MANIFEST'
  | 'E_MANIFEST_UNTRUSTED'
  | 'E_NOT_STATE_DIR'
  | 'E_NOT_CONFIRMED'
  | 'E_LAYER_SOURCE'
  | 'E_LAYER_SOURCE_MISSING'
  | 'E_LAYER_CONTENT'
  | 'E_LAYER_DIGEST'
  | 'E_OCI_LAYOUT'
  | 'E_POOL_CHANGE'
  | 'E_POOL_NAME'
  | 'E_POOL_SIZE'
  | 'E_BASE_SIZE'
  | 'E_DEVICE_SIZE'
  | 'E_MOUNTPOINT'
  | 'E_STATE_PATH'
  | 'E_BACKEND'
  | 'E_BACKEND_MISMATCH'
  | 'E_SOCKET'
  | 'E_NO_SUCH_DEVICE'
  // StateError: the state directory, the pool or the host cannot be used as asked (exit 1)
  | 'E_STATE'
  | 'E_STATE_DIR'
  | 'E_STATE_LOCKED'
  | 'E_LOCKED'
  | 'E_LOCK_BROKEN'
  | 'E_LOCK_WAIT_STOPPED'
  | 'E_HELD'
  | 'E_HOLDER_RUNNING'
  | 'E_HOLDER_WAIT_STOPPED'
  | 'E_NO_LOG'
  | 'E_LOG_CORRUPT'
  | 'E_LOG_TORN'
  | 'E_LOG_WRITE'
  | 'E_LOG_FOREIGN'
  | 'E_LOG_REPLACED'
  | 'E_LOG_CLOSED'
  | 'E_NO_POOL'
  | 'E_POOL'
  | 'E_POOL_GROW'
  | 'E_NOT_OWNED'
  | 'E_THIN_ID_COLLISION'
  | 'E_THIN_IDS'
  | 'E_BLOCKED'
  | 'E_NOT_CONVERGED'
  | 'E_HOST'
  | `E_HOST_${HostFsErrno}`
  // KernelError and InternalError
  | 'E_KERNEL'
  | 'E_INTERNAL';

export abstract class ThinlayerError extends Error {
  abstract readonly code: ErrorCode;
  /** The exit code the CLI maps this error to. */
  abstract readonly exitCode: number;
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message };
  }
}

export interface UserErrorDetail {
  file?: string; // the file at fault
  path?: string; // the path inside the document, e.g. `devices.web1.state`
  expected?: string; // what was expected there
}

export class UserError extends ThinlayerError {
  readonly code: ErrorCode;
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly detail: UserErrorDetail = {},
    code: ErrorCode = 'E_USER',
  ) {
    super(message);
    this.name = 'UserError';
    this.code = code;
  }
  override toJSON() {
    return { ...super.toJSON(), ...this.detail };
  }
}

/** Errno names for the codes the engine reasons about. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  ELOOP: 40,
  ENODATA: 61,
  EOPNOTSUPP: 95,
} as const;
export type ErrnoName = keyof typeof ERRNO;

export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(ERRNO)) if (value === errno) return name;
  return `errno ${errno}`;
}

export class KernelError extends ThinlayerError {
  readonly code = 'E_KERNEL';
  readonly exitCode = 1;
  constructor(
    readonly operation: string, // e.g. 'dm.create', 'dm.message create_thin 3', 'loop.attach', 'mount'
    readonly device: string, // dm name, loop path, mountpoint or file
    readonly errno: number,
    detail?: string,
  ) {
    super(`${operation} ${device}: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`);
    this.name = 'KernelError';
  }
  is(name: ErrnoName): boolean {
    return this.errno === ERRNO[name];
  }
  override toJSON() {
    return { ...super.toJSON(), operation: this.operation, device: this.device, errno: this.errno, errnoName: errnoName(this.errno) };
  }
}

export class StateError extends ThinlayerError {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly code: ErrorCode = 'E_STATE',
  ) {
    super(message);
    this.name = 'StateError';
  }
}

export class InternalError extends ThinlayerError {
  readonly code = 'E_INTERNAL';
  readonly exitCode = 1;
  constructor(message: string) {
    super(`internal error (a bug in thinlayer, please report it): ${message}`);
    this.name = 'InternalError';
  }
}

/** What to do about a file the host refuses to write, by errno. */
const HOST_FS_FIXES: Record<HostFsErrno, (where: string) => string> = {
  EACCES: (where) =>
    `permission denied: run thinlayer as the user that owns ${where} (root for the real kernel), and check its mode and attributes (\`lsattr\`: an immutable or append-only file refuses even root)`,
  EPERM: (where) =>
    `operation not permitted: check the attributes of ${where} (\`lsattr\`: an immutable or append-only file refuses even root) and that thinlayer runs as its owner`,
  EROFS: (where) =>
    `the filesystem holding ${where} is read-only: remount it read-write, or give --state-dir (or THINLAYER_STATE_DIR) a directory on a writable filesystem`,
  ENOSPC: (where) =>
    `no space left on the filesystem holding ${where}: free some space there (\`df\`) and run the command again; what was recorded before stays valid`,
  EDQUOT: (where) =>
    `the disk quota of the filesystem holding ${where} is used up: free some space under that quota (\`quota\`) and run the command again; what was recorded before stays valid`,
};

/**
 * A failed system call on a file (the state dir's log, a layer source, a pool file) as a StateError
 * saying what happened and what to do (exit 1), instead of an internal error with a stack trace:
 * the host's trouble, not a bug. Null for anything that is not a failed system call.
 */
export function systemCallError(e: unknown): StateError | null {
  if (e instanceof ThinlayerError || !(e instanceof Error)) return null;
  const x = e as NodeJS.ErrnoException;
  if (typeof x.code !== 'string' || (typeof x.syscall !== 'string' && typeof x.errno !== 'number')) return null;
  const file = x.path ?? (x as { dest?: string }).dest;
  const where = file ? file : 'the state directory';
  const hostErrno = Object.hasOwn(HOST_FS_FIXES, x.code) ? (x.code as HostFsErrno) : undefined;
  const fix = hostErrno && HOST_FS_FIXES[hostErrno];
  const what = `${x.syscall ?? 'a system call'}${file ? ` ${file}` : ''} failed with ${x.code}`;
  return new StateError(fix ? `${what}: ${fix(where)}` : `${what} (${x.message})`, hostErrno ? `E_HOST_${hostErrno}` : 'E_HOST');
}

/** Names `file` in a failed system call that names none (a write through a descriptor), and rethrows it. */
export function inFile(file: string): (e: unknown) => never {
  return (e: unknown) => {
    const x = e as NodeJS.ErrnoException;
    if (e instanceof Error && !(e instanceof ThinlayerError) && typeof x.code === 'string' && x.path === undefined) x.path = file;
    throw e;
  };
}

/** Whether `e` is thinlayer's error with one of these codes (its class is the code's: see ErrorCode). */
export function hasCode(e: unknown, ...codes: ErrorCode[]): e is ThinlayerError {
  return e instanceof ThinlayerError && codes.includes(e.code);
}

export function isKernelError(e: unknown, name?: ErrnoName): e is KernelError {
  return e instanceof KernelError && (name === undefined || e.is(name));
}

/** How a failed step's error is written into the event log. */
export function errorRecord(e: unknown): { code: ErrorCode; message: string; errno?: number } {
  if (e instanceof KernelError) return { code: e.code, message: e.message, errno: e.errno };
  if (e instanceof ThinlayerError) return { code: e.code, message: e.message };
  return { code: 'E_INTERNAL', message: String((e as Error)?.message ?? e) };
}
