// Wall-clock time to the nanosecond. containerd compares a snapshot's created and updated times with
// its own clock at nanosecond precision: Date.now()'s milliseconds would put a time made just after
// containerd read its clock before it. The wall clock is read once, and the monotonic high-resolution
// clock carries it forward from there.

// Read at the moment the millisecond ticks over, so the origin is exact to a few microseconds rather
// than up to a millisecond late (a spin of at most 1 ms, once per process).
const [originWallNs, originHr] = ((): [bigint, bigint] => {
  const start = Date.now();
  let now = start;
  while (now === start) now = Date.now();
  return [BigInt(now) * 1_000_000n, process.hrtime.bigint()];
})();
let last = 0n;

/** Nanoseconds since the epoch, strictly increasing within the process. */
export function nowNs(): bigint {
  let t = originWallNs + (process.hrtime.bigint() - originHr);
  if (t <= last) t = last + 1n;
  last = t;
  return t;
}

/** As kept in the event log: decimal text (a JSON number cannot hold it exactly). */
export function nowText(): string {
  return nowNs().toString();
}

/** A google.protobuf.Timestamp. */
export function toTimestamp(ns: string): { seconds: string; nanos: number } {
  const n = BigInt(ns);
  return { seconds: (n / 1_000_000_000n).toString(), nanos: Number(n % 1_000_000_000n) };
}
