// The log's own findings: a kept torn tail is always reported; an unterminated end of the log is a
// crash's torn line only when no live process holds the lock (else an append may be half read).

import { describe, it, expect } from 'vitest';
import { logFindings } from '../../src/doctor/log-findings.ts';

const tail = { offset: 4096, bytes: 37 };

describe('log findings', () => {
  it('reports a log that ends in a torn line when no other process is writing', () => {
    const findings = logFindings({ keptTornTails: [], unrepairedTornTail: tail }, '/state');
    expect(findings.map((f) => [f.code, f.subject, f.severity])).toEqual([['log.torn-tail', 'log', 'warning']]);
  });

  it('does not take an append under way (a live lock holder) for a torn line, but still reports kept tails', () => {
    const kept = { file: 'torn/4096-1.ndjson', bytes: 37 };
    const findings = logFindings({ keptTornTails: [kept], unrepairedTornTail: tail }, '/state', true);
    expect(findings.map((f) => f.subject)).toEqual(['log:torn/4096-1.ndjson']);
  });
});
