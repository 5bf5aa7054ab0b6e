// Units the kernel speaks: device-mapper tables and statuses, loop and block device sizes in sysfs,
// and a file's allocated blocks (st_blocks) all count 512-byte sectors, whatever the device's own
// block size.

export const SECTOR_BYTES = 512;
