// The event log's own condition, apart from the kernel: torn writes that a crash left. A torn last
// line (no newline) is cut off by the next command that writes, after its bytes are kept whole under
// torn/ in the state dir (src/events/torn-tail.ts). Each kept file stays a finding until someone has
// looked at it and removed it; a tail not yet cut (no command that writes has run since the crash)
// is one too. Pure: inspect.ts gathers the facts.

import path from 'node:path';
import type { KeptTornTail } from '../events/torn-tail.ts';
import type { Finding } from './finding.ts';

export interface LogFacts {
  /** Torn tails kept under torn/, by name. */
  keptTornTails: KeptTornTail[];
  /** A torn tail still at the end of the log (a read-only look finds it; a command that writes keeps and cuts it). */
  unrepairedTornTail: { offset: number; bytes: number } | null;
}

/**
 * `writerLive`: another live process holds the state dir's lock. A log that ends without a newline
 * then most likely shows an append under way (a snapshotter's batch half read), not a crash: it is
 * not reported, and a later doctor finds it whole, or torn for real once that process is gone.
 */
export function logFindings(log: LogFacts, stateDir: string, writerLive = false): Finding[] {
  const findings: Finding[] = [];
  for (const kept of log.keptTornTails) {
    const file = path.join(stateDir, kept.file);
    findings.push({
      code: 'log.torn-tail',
      severity: 'warning',
      subject: `log:${kept.file}`,
      message: `the event log once ended in a torn line (a write a crash cut short, ${kept.bytes} bytes); it was cut off and its bytes kept in ${file}. No step acted on it: every step waits for its intent to be on disk`,
      repair: `inspect ${file} (what was being written when the crash came), then remove it: rm ${file}`,
    });
  }
  const pending = log.unrepairedTornTail;
  if (pending && !writerLive) {
    findings.push({
      code: 'log.torn-tail',
      severity: 'warning',
      subject: 'log',
      message: `the event log ends in a torn line (${pending.bytes} bytes at byte ${pending.offset}, a write a crash cut short); the next command that writes keeps it under ${path.join(stateDir, 'torn')} and cuts it off`,
      repair: 'thinlayer up (it keeps the line under torn/ and cuts it off), then inspect the kept file and remove it',
    });
  }
  return findings;
}
