// Parsers for the kernel's dm-thin status lines (Documentation/admin-guide/device-mapper/thin-provisioning.rst).
// Pure; used by the engine and the doctor on both backends.

export interface PoolStatus {
  transactionId: number;
  metadataUsed: number; // 4 KiB metadata blocks
  metadataTotal: number;
  dataUsed: number; // data blocks of the pool's block size
  dataTotal: number;
  heldMetadataRoot: string | null;
  mode: 'rw' | 'ro' | 'out_of_data_space' | 'fail';
  discardPassdown: boolean;
  errorIfNoSpace: boolean;
  needsCheck: boolean;
}

export function parsePoolStatus(params: string): PoolStatus {
  const f = params.trim().split(/\s+/);
  if (f[0] === 'Fail') {
    return { transactionId: -1, metadataUsed: 0, metadataTotal: 0, dataUsed: 0, dataTotal: 0, heldMetadataRoot: null, mode: 'fail', discardPassdown: false, errorIfNoSpace: false, needsCheck: true };
  }
  const [mu, mt] = (f[1] ?? '0/0').split('/').map(Number);
  const [du, dt] = (f[2] ?? '0/0').split('/').map(Number);
  return {
    transactionId: Number(f[0]),
    metadataUsed: mu,
    metadataTotal: mt,
    dataUsed: du,
    dataTotal: dt,
    heldMetadataRoot: f[3] && f[3] !== '-' ? f[3] : null,
    mode: (f[4] as PoolStatus['mode']) ?? 'rw',
    discardPassdown: f[5] !== 'no_discard_passdown',
    errorIfNoSpace: f[6] === 'error_if_no_space',
    needsCheck: f[7] === 'needs_check',
  };
}

export interface ThinStatus {
  mappedSectors: number;
  highestMappedSector: number | null;
  failed: boolean;
}

export function parseThinStatus(params: string): ThinStatus {
  const f = params.trim().split(/\s+/);
  if (f[0] === 'Fail') return { mappedSectors: 0, highestMappedSector: null, failed: true };
  return { mappedSectors: Number(f[0]), highestMappedSector: f[1] === '-' || f[1] === undefined ? null : Number(f[1]), failed: false };
}
