// `thinlayer sim reboot`: the simulated kernel loses its devices, loops and mounts, as after a reboot.

import type { CommandContext } from '../command-context.ts';

export async function run({ io, json, stateDir, backend }: CommandContext): Promise<number> {
  const { simReboot } = await import('../../app/sim-reboot.ts');
  await simReboot({ stateDir, backend });
  io.print(
    json
      ? JSON.stringify({ rebooted: true })
      : 'Simulated reboot: device-mapper devices, loop devices and mounts are gone; pool metadata and device contents remain. Run `thinlayer up`.',
  );
  return 0;
}
