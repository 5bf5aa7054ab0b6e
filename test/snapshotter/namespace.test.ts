// The `containerd-namespace` gRPC header read as containerd's own servers read it
// (namespaces.fromGRPCHeader: the first value): a client that sets the namespace twice sends several
// values, which arrive as several entries or as one string joined with commas.

import { describe, it, expect } from 'vitest';
import { Metadata } from '@grpc/grpc-js';
import { namespaceOf } from '../../src/snapshotter/server.ts';

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
