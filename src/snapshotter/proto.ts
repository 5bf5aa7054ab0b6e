// The service definition, loaded from the .proto files in the package's proto/ directory
// (containerd's API, written out in this repository). Found by walking up from this module, so it
// works from the sources (src/snapshotter) and from the bundle (dist/), which ships beside proto/.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { InternalError } from '../errors/index.ts';

export const SNAPSHOTS_PROTO = 'containerd/services/snapshots/v1/snapshots.proto';

export function protoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'proto', SNAPSHOTS_PROTO))) return join(dir, 'proto');
    const up = dirname(dir);
    if (up === dir) throw new InternalError(`proto/${SNAPSHOTS_PROTO} not found above ${fileURLToPath(import.meta.url)}: the package is incomplete`);
    dir = up;
  }
}

/** The Snapshots service (the server's side) and the package (clients in tests). */
export function loadSnapshotsService(): { service: ServiceDefinition; pkg: any } {
  const root = protoRoot();
  const definition = loadSync(join(root, SNAPSHOTS_PROTO), {
    includeDirs: [root],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(definition) as any;
  return { service: pkg.containerd.services.snapshots.v1.Snapshots.service, pkg };
}
