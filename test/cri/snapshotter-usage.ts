// thinlayer's own figures, read at the snapshotter's socket (not through containerd): the
// snapshots of one containerd namespace and their Usage. containerd's proxy sends no namespace
// header, so its keys arrive as `NAMESPACE/SEQ/NAME` in the snapshotter's empty namespace.

import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSnapshotsService } from '../../src/snapshotter/proto.ts';

export interface SnapshotFigures {
  key: string;
  kind: string;
  usedBytes: number;
}

/** Every snapshot containerd keeps in `namespace` on the snapshotter at `socket`, with its Usage. */
export async function snapshotterUsage(socket: string, namespace: string): Promise<SnapshotFigures[]> {
  const { pkg } = loadSnapshotsService();
  const c = new pkg.containerd.services.snapshots.v1.Snapshots(`unix://${socket}`, credentials.createInsecure());
  const deadline = () => ({ deadline: Date.now() + 120_000 });
  try {
    const infos: { name: string; kind: string }[] = await new Promise((resolve, reject) => {
      const all: { name: string; kind: string }[] = [];
      const stream = c.List({ snapshotter: 'thinlayer', filters: [] }, new Metadata(), deadline());
      stream.on('data', (m: { info: { name: string; kind: string }[] }) => all.push(...m.info));
      stream.on('error', reject);
      stream.on('end', () => resolve(all));
    });
    const mine = infos.filter((i) => i.name.startsWith(`${namespace}/`));
    const figures: SnapshotFigures[] = [];
    for (const i of mine) {
      const usage: { size: string } = await new Promise((resolve, reject) =>
        c.Usage({ snapshotter: 'thinlayer', key: i.name }, new Metadata(), deadline(), (err: ServiceError | null, out: { size: string }) =>
          err ? reject(err) : resolve(out),
        ),
      );
      figures.push({ key: i.name, kind: i.kind, usedBytes: Number(usage.size) });
    }
    return figures;
  } finally {
    c.close();
  }
}
