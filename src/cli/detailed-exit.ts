/** Exit codes of --detailed-exitcode (terraform's convention). */
export const DETAILED = { converged: 0, failed: 1, changes: 2 } as const;
