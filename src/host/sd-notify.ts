// Telling systemd a Type=notify service is ready: sd_notify(3) from libsystemd, through koffi, from
// this process itself. Node has no unix datagram sockets, and a message from a helper such as
// systemd-notify(1) may reach systemd after the helper exited, when systemd before v254 can no
// longer tell which unit it came from and drops it. Loaded only when called (under systemd).

import { createRequire } from 'node:module';
import { KernelError } from '../errors/index.ts';

/** Sends `state` (e.g. READY=1) to the NOTIFY_SOCKET systemd gave this process; a KernelError with sd_notify's errno when it fails. */
export function sdNotify(state: string): void {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const notify = koffi.load('libsystemd.so.0').func('int sd_notify(int unset_environment, const char *state)');
  const sent = notify(0, state) as number;
  if (sent < 0) throw new KernelError('sd_notify', process.env.NOTIFY_SOCKET ?? 'NOTIFY_SOCKET', -sent);
}
