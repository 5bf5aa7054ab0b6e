// `thinlayer doctor`: pool health and the log compared with the kernel. Reads only (no lock, no event).
// Exit code: 0 healthy (warnings allowed), 1 when any finding is an error.

import type { CommandContext } from '../command-context.ts';
import type { KernelPort } from '../../kernel/kernel-port.ts';
import type { BackendChoice } from '../../kernel/select.ts';
import { doctor } from '../../app/doctor.ts';
import { renderDoctor } from '../../doctor/report-text.ts';
import { TerminalReporter } from '../render.ts';

export interface DoctorCommandOptions {
  stateDir: string;
  backend: BackendChoice;
  json: boolean;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Use this kernel instead of choosing one (tests). */
  kernel?: KernelPort;
}

export function printer(out: NodeJS.WritableStream): (text: string) => void {
  return (text) => void out.write(text.endsWith('\n') ? text : `${text}\n`);
}

export async function doctorCommand(opts: DoctorCommandOptions): Promise<number> {
  const reporter = new TerminalReporter(opts.err, opts.json);
  const report = await doctor({ stateDir: opts.stateDir, backend: opts.backend, reporter, kernel: opts.kernel });
  printer(opts.out)(opts.json ? JSON.stringify(report) : renderDoctor(report));
  return report.exitCode;
}

export async function run({ io, json, stateDir, backend }: CommandContext): Promise<number> {
  return doctorCommand({ stateDir, backend, json, out: io.out, err: io.err });
}
