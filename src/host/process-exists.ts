// Whether a process still exists, by its pid: kill(pid, 0) sends nothing, it only asks.

/** True unless the kernel says no such process (ESRCH); EPERM means it exists and is someone else's. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
