// Before the tiers that run the CLI as a child process: bring the bundle up to date, so that each
// spawned command starts fast and runs exactly the sources under test.
import { buildBundle } from '../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await buildBundle();
}
