// The one y/N question the CLI asks: on a terminal only, and never with --json (a program reading
// the output cannot answer). Without a terminal the answer is no.

/** Whether a question can be asked at all. */
export function canAsk(json: boolean): boolean {
  return process.stdin.isTTY === true && !json;
}

/** Asks `question [y/N]` on stderr; true for y or yes. No when it cannot be asked. */
export async function askYesNo(question: string, json: boolean): Promise<boolean> {
  if (!canAsk(json)) return false;
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
