// One error taxonomy, turned into exit codes only by the CLI entry point (src/cli/main.ts).
//   UserError     - bad input (manifest, flag): exit 2; names the file and the path inside it.
//   KernelError   - a kernel operation failed: carries the operation, the device and the errno.
//   StateError    - the state directory cannot be used as asked (locked, corrupt, not private).
//   InternalError - a bug in thinlayer: says so.
// A failed apply (exit 1) is any KernelError or StateError that ends a run.

export abstract class ThinlayerError extends Error {
  abstract readonly code: string;
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
  readonly code: string;
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly detail: UserErrorDetail = {},
    code = 'E_USER',
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
    readonly code = 'E_STATE',
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

export function isKernelError(e: unknown, name?: ErrnoName): e is KernelError {
  return e instanceof KernelError && (name === undefined || e.is(name));
}

/** How a failed step's error is written into the event log. */
export function errorRecord(e: unknown): { code: string; message: string; errno?: number } {
  if (e instanceof KernelError) return { code: e.code, message: e.message, errno: e.errno };
  if (e instanceof ThinlayerError) return { code: e.code, message: e.message };
  return { code: 'E_INTERNAL', message: String((e as Error)?.message ?? e) };
}
