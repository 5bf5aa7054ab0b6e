// Wall-clock time to the nanosecond. containerd compares a snapshot's created and updated times with
// its own clock at nanosecond precision: Date.now()'s milliseconds would put a time made just after
// containerd read its clock before it. The wall clock is read once, and the monotonic high-resolution
// clock carries it forward from there.

const originWallNs = BigInt(Date.now()) * 1_000_000n;
const originHr = process.hrtime.bigint();
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
