// The `containerd-namespace` gRPC header read as containerd's own servers read it
// (namespaces.fromGRPCHeader: the first value): a client that sets the namespace twice sends several
// values, which arrive as several entries or as one string joined with commas.

import { describe, it, expect } from 'vitest';
import { Metadata } from '@grpc/grpc-js';
import { keySpaceOf, namespaceOf } from '../../src/snapshotter/server.ts';

describe('the namespace header', () => {
  it('reads the namespace header as containerd does: the first of several values, or of a comma-joined one', () => {
    const md = (...values: string[]) => {
      const m = new Metadata();
      for (const v of values) m.add('containerd-namespace', v);
      return m;
    };
    expect(namespaceOf(new Metadata())).toBe('');
    expect(namespaceOf(md('testsuite'))).toBe('testsuite');
    expect(namespaceOf(md('suite-1', 'testsuite'))).toBe('suite-1');
    expect(namespaceOf(md('suite-1, testsuite'))).toBe('suite-1');
    expect(namespaceOf(md('suite-1,testsuite'))).toBe('suite-1');
  });
});

describe("containerd's own keys with a header", () => {
  it("serves containerd's NS/SEQ/NAME keys in the empty namespace whatever the header, and other keys in the header's namespace", () => {
    const md = (ns?: string) => {
      const m = new Metadata();
      if (ns) m.add('containerd-namespace', ns);
      return m;
    };
    // containerd's CRI plugin calls in-process: its k8s.io header reaches the proxy with keys
    // containerd's metadata made, which ctr and the garbage collector send with no header.
    expect(keySpaceOf(md('k8s.io'), 'k8s.io/12/sha256:abc')).toBe('');
    expect(keySpaceOf(md(), 'k8s.io/12/sha256:abc')).toBe('');
    expect(keySpaceOf(md('k8s.io'), 'k8s.io/12/0123abcd')).toBe('');
    // Keys of a client that uses the header as its key space (containerd's snapshotter suite).
    expect(keySpaceOf(md('suite-1'), 'prepare-1')).toBe('suite-1');
    expect(keySpaceOf(md('suite-1'), 'suite-1/x')).toBe('suite-1');
    expect(keySpaceOf(md('k8s.io'), 'default/3/name')).toBe('k8s.io');
  });
});
