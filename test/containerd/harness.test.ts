// The host side of the containerd scenarios and benchmark: reading the suite's cases from its
// source, its results from `go test -v` output, the benchmark's phase lines, and the OCI archive
// the scenarios import.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { parsePhaseLines } from '../../bench/suites/containerd.ts';
// @ts-expect-error: a plain .mjs module of the kernel tier, without types
import { caseResults, suiteCases, PASSES } from '../vm/scenarios/containerd-suite.mjs';
// @ts-expect-error: a plain .mjs module of the kernel tier, without types
import { writeOciArchive } from './oci-image.mjs';

let dir: string | null = null;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

test('the suite cases are read from t.Run(NAME, makeTest(...)) lines only', () => {
  const source = 't.Run("Basic", makeTest(name, fn, checkBasic))\n\tt.Run("other", func(t *testing.T) {})\n\tt.Run("128LayersMount", makeTest(name, fn, x))';
  expect(suiteCases(source)).toEqual(['Basic', '128LayersMount']);
});

test('case results come from the prefixed --- lines of go test -v, a FAIL kept as FAIL', () => {
  const output = [
    'TL-SUITE --- FAIL: TestSnapshotterConformance (0.16s)',
    'TL-SUITE     --- PASS: TestSnapshotterConformance/Basic (6.04s)',
    'TL-SUITE     --- FAIL: TestSnapshotterConformance/Chown (4.94s)',
    'TL-SUITE     --- SKIP: TestSnapshotterConformance/Rename (0.01s)',
    '    --- PASS: TestSnapshotterConformance/Unprefixed (1.00s)',
  ].join('\n');
  const r = caseResults(output);
  expect([...r.keys()]).toEqual(['Basic', 'Chown', 'Rename']);
  expect(r.get('Chown')).toEqual({ status: 'FAIL', seconds: 4.94 });
  expect(r.get('Rename').status).toBe('SKIP');
});

test('each pass of the suite (sequential, four in parallel) has its own results, read from its own prefix', () => {
  const output = [
    'TL-SUITE-seq     --- PASS: TestSnapshotterConformance/Basic (6.04s)',
    'TL-SUITE-par4     --- FAIL: TestSnapshotterConformance/Basic (2.00s)',
    'TL-SUITE-par4     --- PASS: TestSnapshotterConformance/Chown (1.00s)',
  ].join('\n');
  expect(caseResults(output, 'seq').get('Basic')).toEqual({ status: 'PASS', seconds: 6.04 });
  expect([...caseResults(output, 'seq').keys()]).toEqual(['Basic']);
  expect(caseResults(output, 'par4').get('Basic')).toEqual({ status: 'FAIL', seconds: 2 });
  expect(caseResults(output, 'par4').get('Chown')?.status).toBe('PASS');
  expect(PASSES.map((p: { parallel: number }) => p.parallel)).toEqual([1, 4]);
});

test('benchmark phase lines repeat by round and keep their fields', () => {
  const lines = parsePhaseLines(
    'noise\nTL-BENCH phase=import sn=thinlayer round=0 status=0 ms=12\nTL-BENCH phase=import sn=devmapper round=0 status=1 ms=30\nTL-BENCH-ERR x=y',
  );
  expect(lines).toEqual([
    { phase: 'import', sn: 'thinlayer', round: '0', status: '0', ms: '12' },
    { phase: 'import', sn: 'devmapper', round: '0', status: '1', ms: '30' },
  ]);
});

test('the OCI archive has an index naming the image, and layers whose digests are their content', () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-oci-'));
  const out = path.join(dir, 'img.tar');
  const image = writeOciArchive({ out, name: 'docker.io/library/t:1', layers: 2, message: 'hi', scratch: path.join(dir, 's'), salt: 'a', fillFiles: 1 });
  const unpacked = path.join(dir, 'u');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xf', out, '-C', unpacked]);
  const index = JSON.parse(fs.readFileSync(path.join(unpacked, 'index.json'), 'utf8'));
  expect(index.manifests[0].annotations['io.containerd.image.name']).toBe('docker.io/library/t:1');
  const manifestDigest = index.manifests[0].digest.replace('sha256:', '');
  const manifest = JSON.parse(fs.readFileSync(path.join(unpacked, 'blobs', 'sha256', manifestDigest), 'utf8'));
  expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(image.layers);
  const config = JSON.parse(fs.readFileSync(path.join(unpacked, 'blobs', 'sha256', manifest.config.digest.replace('sha256:', '')), 'utf8'));
  expect(config.rootfs.diff_ids).toEqual(image.layers);
  const first = execFileSync('tar', ['-tf', path.join(unpacked, 'blobs', 'sha256', image.layers[0].replace('sha256:', ''))], { encoding: 'utf8' });
  expect(first).toContain('./bin/busybox');
  expect(first).toContain('./etc/tl-salt-0');
  const last = execFileSync('tar', ['-xOf', path.join(unpacked, 'blobs', 'sha256', image.layers[1].replace('sha256:', '')), './etc/tl-message'], {
    encoding: 'utf8',
  });
  expect(last).toBe('hi\n');
});
