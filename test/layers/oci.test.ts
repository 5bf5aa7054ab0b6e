import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LayerContentError, applyLayer, chainId, resolveLayerSource } from '../../src/layers/index.ts';
import { parseOciSource } from '../../src/layers/oci-layout.ts';
import { UserError } from '../../src/errors/index.ts';
import { buildTar, gzip, sha256, zstd } from './tar-builder.ts';
import { workspace } from './helpers.ts';

const HOST_ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

interface Layout {
  dir: string;
  manifestDigest: string;
  layerDigests: string[];
  diffIds: string[];
  configDigest: string;
}

function writeBlob(dir: string, data: Buffer | string): { digest: string; size: number } {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const digest = sha256(bytes);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** An OCI image layout with one image of three layers (gzip, zstd, plain), tagged `tag`. */
function buildLayout(
  base: string,
  opts: { tag?: string; diffIdOverride?: (ids: string[]) => string[]; multiPlatform?: boolean; hostile?: boolean } = {},
): Layout {
  const dir = join(base, 'image');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tars = [
    buildTar([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/os-release', content: 'ID=test\n' },
      { name: 'bin/app', content: 'v1', mode: 0o755 },
    ]),
    buildTar([{ name: 'bin/app', content: 'v2', mode: 0o755 }, { name: 'etc/.wh.os-release' }]),
    buildTar([
      { name: 'srv/index.html', content: '<h1>hi</h1>' },
      ...(opts.hostile ? [{ name: 'srv/up', type: 'symlink' as const, linkname: '../../..' }] : []),
    ]),
  ];
  const stored = [gzip(tars[0]), zstd(tars[1]), tars[2]];
  const mediaTypes = ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar'];
  const layers = stored.map((blob, i) => ({ mediaType: mediaTypes[i], ...writeBlob(dir, blob) }));
  const realDiffIds = tars.map((t) => sha256(t));
  const diffIds = opts.diffIdOverride ? opts.diffIdOverride(realDiffIds) : realDiffIds;
  const config = writeBlob(dir, JSON.stringify({ architecture: HOST_ARCH, os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest = writeBlob(
    dir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers,
    }),
  );
  let top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest };
  if (opts.multiPlatform) {
    // Another platform's manifest first: the host's must be picked, not the first.
    const other = writeBlob(
      dir,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [],
      }),
    );
    const index = writeBlob(
      dir,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...other, platform: { os: 'linux', architecture: 's390x' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: { os: 'linux', architecture: HOST_ARCH } },
        ],
      }),
    );
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...index };
  }
  const other = writeBlob(
    dir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [],
    }),
  );
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { ...top, annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'v1' } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...other, annotations: { 'org.opencontainers.image.ref.name': 'empty' } },
      ],
    }),
  );
  return { dir, manifestDigest: top.digest, layerDigests: layers.map((l) => l.digest), diffIds: realDiffIds, configDigest: config.digest };
}

describe('OCI image layouts as layer sources', () => {
  it('parses oci:PATH:TAG and oci:PATH@sha256:HEX', () => {
    const hex = 'a'.repeat(64);
    expect(parseOciSource('oci:./img:v1.2')).toEqual({ layout: './img', tag: 'v1.2', digest: null });
    expect(parseOciSource(`oci:/x/img@sha256:${hex}`)).toEqual({ layout: '/x/img', tag: null, digest: `sha256:${hex}` });
    expect(parseOciSource('oci:img')).toEqual({ layout: 'img', tag: null, digest: null });
    expect(parseOciSource('oci:img@sha256:short')).toBeNull();
    expect(parseOciSource('oci::v1')).toBeNull();
    expect(parseOciSource('img.tar')).toBeNull();
  });

  it('resolves a tag and a digest into the image chain, checking every digest, and applies it', async () => {
    const ws = workspace();
    const layout = buildLayout(ws.base);
    const byTag = await resolveLayerSource('oci:../image:v1', ws.sources);
    expect(byTag.map((l) => l.diffId)).toEqual(layout.diffIds);
    expect(byTag.map((l) => l.kind)).toEqual(['tar', 'tar', 'tar']);
    expect(byTag.map((l) => l.path)).toEqual(layout.layerDigests.map((d) => join(layout.dir, 'blobs', 'sha256', d.slice(7))));
    expect(byTag.map((l) => l.compressedDigest)).toEqual([layout.layerDigests[0], layout.layerDigests[1], undefined]);
    expect(byTag[1].label).toBe(`oci:../image:v1 layer 2/3 (${layout.layerDigests[1]})`);

    const byDigest = await resolveLayerSource(`oci:${layout.dir}@${layout.manifestDigest}`, '/');
    expect(byDigest.map((l) => l.diffId)).toEqual(layout.diffIds);

    let parent: string | null = null;
    for (const layer of byTag) {
      await applyLayer(layer, ws.root);
      parent = chainId(parent, layer.diffId);
    }
    expect(readFileSync(join(ws.root, 'bin/app'), 'utf8')).toBe('v2');
    expect(() => readFileSync(join(ws.root, 'etc/os-release'))).toThrow(/ENOENT/);
    expect(readFileSync(join(ws.root, 'srv/index.html'), 'utf8')).toBe('<h1>hi</h1>');
    expect(parent).toBe(chainId(chainId(layout.diffIds[0], layout.diffIds[1]), layout.diffIds[2]));
  });

  it('picks the manifest for this machine from a multi-platform index', async () => {
    const ws = workspace();
    const layout = buildLayout(ws.base, { multiPlatform: true, tag: 'multi' });
    const layers = await resolveLayerSource(`oci:${layout.dir}:multi`, '/');
    expect(layers.map((l) => l.diffId)).toEqual(layout.diffIds);
    // A manifest not listed in index.json is found by digest among the blobs.
    const index = JSON.parse(readFileSync(join(layout.dir, 'blobs', 'sha256', layout.manifestDigest.slice(7)), 'utf8'));
    const inner = index.manifests[1].digest;
    expect(JSON.parse(readFileSync(join(layout.dir, 'index.json'), 'utf8')).manifests.map((d: { digest: string }) => d.digest)).not.toContain(inner);
    expect((await resolveLayerSource(`oci:${layout.dir}@${inner}`, '/')).map((l) => l.diffId)).toEqual(layout.diffIds);
  });

  it('refuses a tampered blob, naming it', async () => {
    const ws = workspace();
    const layout = buildLayout(ws.base);
    const blob = join(layout.dir, 'blobs', 'sha256', layout.layerDigests[2].slice(7));
    const bytes = readFileSync(blob);
    bytes[600] ^= 1;
    writeFileSync(blob, bytes);
    const error = await resolveLayerSource(`oci:${layout.dir}:v1`, '/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LayerContentError);
    expect((error as Error).message).toContain(`the layer blob ${layout.layerDigests[2]} has digest sha256:`);
    expect((error as LayerContentError).code).toBe('E_OCI_LAYOUT');
  });

  it("checks each layer blob's content as it verifies it: a hostile layer with good digests is refused", async () => {
    const base = workspace().base;
    const layout = buildLayout(base, { hostile: true });
    const error = await resolveLayerSource(`oci:${layout.dir}:v1`, base, {}, undefined, { maxBytes: 1 << 20 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 2, entry: 'srv/up' });
    expect((error as Error).message).toMatch(/layer 3\/3 .*leads outside the layer root/);
    const small = await resolveLayerSource(`oci:${buildLayout(workspace().base).dir}:v1`, base, {}, undefined, { maxBytes: 2048 }).catch((e: unknown) => e);
    expect((small as Error).message).toMatch(/larger than the 2048 bytes its device holds/);
  });

  it('refuses a layer whose content is not the diff id the config lists', async () => {
    const ws = workspace();
    const wrong = sha256('something else');
    const layout = buildLayout(ws.base, { diffIdOverride: (ids) => [ids[0], wrong, ids[2]] });
    await expect(resolveLayerSource(`oci:${layout.dir}:v1`, '/')).rejects.toThrow(
      `the layer blob ${layout.layerDigests[1]} uncompresses to ${layout.diffIds[1]}, but the config's diff_id is ${wrong}`,
    );
  });

  it('refuses unknown tags, hostile digests and what is not a layout', async () => {
    const ws = workspace();
    const layout = buildLayout(ws.base);
    await expect(resolveLayerSource(`oci:${layout.dir}:v2`, '/')).rejects.toThrow('no image tagged "v2" in the layout (tags: v1, empty)');
    await expect(resolveLayerSource(`oci:${layout.dir}`, '/')).rejects.toThrow(/holds 2 images: name one/);
    await expect(resolveLayerSource(`oci:${layout.dir}@sha256:${'0'.repeat(64)}`, '/')).rejects.toThrow(/no manifest or blob/);
    // A digest that would be a path outside the blobs directory.
    const index = JSON.parse(readFileSync(join(layout.dir, 'index.json'), 'utf8'));
    index.manifests[0].digest = 'sha256:../../../sentinel/keep';
    writeFileSync(join(layout.dir, 'index.json'), JSON.stringify(index));
    await expect(resolveLayerSource(`oci:${layout.dir}:v1`, '/')).rejects.toThrow(/only sha256 digests are supported/);
    await expect(resolveLayerSource(`oci:${ws.sources}:v1`, '/')).rejects.toThrow(/is not an OCI image layout/);
  });

  it('names the manifest path of a missing source', async () => {
    const ws = workspace();
    const manifestFile = join(ws.sources, 'thinlayer.yaml');
    for (const [source, layer, path] of [
      ['missing.tar.gz', 'web', 'layers.web.source'],
      ['oci:./nowhere:v1', 'my.layer', 'layers["my.layer"].source'],
    ]) {
      const error = await resolveLayerSource(source, ws.sources, { manifestFile, layer }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect(error).toMatchObject({ code: 'E_LAYER_SOURCE_MISSING', exitCode: 2, detail: { file: manifestFile, path } });
      expect((error as Error).message).toMatch(new RegExp(`^${manifestFile}: ${path.replace(/[[\].]/g, '\\$&')}: the .* does not exist$`));
    }
  });
});

describe('chainId', () => {
  it('is the diff id for a bottom layer, and sha256 of "parent diff" above it', () => {
    const d0 = `sha256:${'1'.repeat(64)}`;
    const d1 = `sha256:${'2'.repeat(64)}`;
    expect(chainId(null, d0)).toBe(d0);
    const expected = `sha256:${createHash('sha256').update(`${d0} ${d1}`).digest('hex')}`;
    expect(chainId(d0, d1)).toBe(expected);
    // Computed by hand: printf '%s %s' "$d0" "$d1" | sha256sum
    expect(chainId(d0, d1)).toBe('sha256:9932074217c35353d2e03a3f5a86549f7c67bfeb0ba53e23d69f4d4c8f7958f5');
  });
});
