// `doctor`: pool health and the log compared with the kernel, as one report. Reads only (no lock, no event).

import { inspect } from '../doctor/inspect.ts';
import { diagnose, type DoctorReport } from '../doctor/diagnose.ts';
import { settleInFlight } from '../doctor/in-flight.ts';
import { readLogAgain } from '../doctor/second-look.ts';
import { withSession, type CommonOptions } from './options.ts';

/** The report; its exitCode is 0 when healthy (warnings allowed), 1 when any finding is an error. */
export async function doctor(opts: CommonOptions): Promise<DoctorReport> {
  return withSession(opts, false, 'doctor', async (session) => {
    const facts = await inspect(session);
    // Read the log again after the kernel: what changed in between is work under way, not a fault.
    const second = await readLogAgain(session.stateDir, facts.state.lastSeq);
    const report = diagnose(facts, session.stateDir.root);
    return second ? settleInFlight(report, facts, second) : report;
  });
}
