// Runs thinlayer's CLI from a bundle given as the first argument, exactly as bin/thinlayer.js runs
// dist/thinlayer.mjs. The kernel suite copies the bundle before it boots the VM, so that a source
// edit on the host during the run cannot send the guest's CLI back to compiling through tsx.
import { pathToFileURL } from 'node:url';

const [bundle, ...args] = process.argv.slice(2);
const { main } = await import(pathToFileURL(bundle).href);
process.exitCode = await main(args);
