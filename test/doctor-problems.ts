// What doctor reports beyond notes (errors and warnings), as `code: message` lines, read through the
// doctor use case itself (src/app/doctor.ts): the check tests make after a crash and a recovery.

import { doctor } from '../src/app/doctor.ts';
import { silentReporter } from '../src/messages/message-port.ts';

export async function doctorProblems(stateDir: string): Promise<string[]> {
  const report = await doctor({ stateDir, backend: 'sim', reporter: silentReporter });
  return report.findings.filter((f) => f.severity === 'error' || f.severity === 'warning').map((f) => `${f.code}: ${f.message}`);
}
