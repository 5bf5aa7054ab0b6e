// How long to wait before retrying a failed reconcile: doubling from a base delay up to a ceiling,
// so a kernel that keeps failing is not hammered, and a transient failure is retried soon.
// Pure: the jitter is a parameter (a number in [0, 1)), so tests need no randomness.

export interface BackoffPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** The delay never grows beyond this. */
  maxMs: number;
  /** Growth per further consecutive failure (2: doubling). */
  factor: number;
  /** Fraction of the delay that is randomised (0: none), so several watchers do not retry in step. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 5 * 60_000, factor: 2, jitter: 0.1 };

/** A policy scaled to a drift interval: first retry well within one interval, never waiting much longer than a few. */
export function backoffForInterval(intervalMs: number): BackoffPolicy {
  const baseMs = Math.max(10, Math.min(DEFAULT_BACKOFF.baseMs, Math.round(intervalMs / 10)));
  const maxMs = Math.max(baseMs, Math.min(DEFAULT_BACKOFF.maxMs, intervalMs * 4));
  return { ...DEFAULT_BACKOFF, baseMs, maxMs };
}

/**
 * The delay before retry number `failures` (1 after the first failure). `random` in [0, 1) spreads
 * the delay by up to ±jitter/2 of itself; 0.5 gives the delay unjittered.
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random = 0.5): number {
  if (failures <= 0) return 0;
  // Exponent capped so that a watcher that has failed for days does not overflow to Infinity.
  const raw = policy.baseMs * policy.factor ** Math.min(failures - 1, 64);
  const capped = Math.min(policy.maxMs, raw);
  const spread = capped * policy.jitter * (random - 0.5);
  return Math.max(0, Math.round(Math.min(policy.maxMs, capped + spread)));
}
