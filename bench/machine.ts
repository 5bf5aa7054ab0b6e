// The machine a figure was measured on, as docs/benchmarks.md shows it beside every figure.

import fs from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  /** `model name` from /proc/cpuinfo (os.cpus() where there is none). */
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  /** Kernel release of the host (the VM suite names its guest kernel in its own notes). */
  kernel: string;
  node: string;
}

export function cpuModelFromCpuinfo(text: string): string | null {
  const line = text.split('\n').find((l) => /^model name\s*:/.test(l));
  return line ? line.slice(line.indexOf(':') + 1).trim() : null;
}

export function describeMachine(): MachineInfo {
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: os.cpus() below
  }
  const cpus = os.cpus();
  return {
    cpuModel: cpuModelFromCpuinfo(cpuinfo) ?? cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    node: process.version,
  };
}

export function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB memory, Linux ${m.kernel}, Node ${m.node}`;
}
