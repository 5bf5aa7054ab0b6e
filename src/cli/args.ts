// A small, strict argument parser: unknown flags are user errors (exit 2) that name the flag.

import { UserError } from '../errors/index.ts';

export interface FlagSpec {
  name: string; // long name without dashes
  short?: string;
  takesValue: boolean;
  repeat?: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean | string[]>;
}

export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const out: ParsedArgs = { positionals: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const [name, value] = arg.slice(2).split(/=(.*)/s, 2);
      spec = byLong.get(name);
      inline = value;
      if (!spec) throw new UserError(`unknown option --${name} (see --help)`, { path: `--${name}` }, 'E_USAGE');
    } else if (arg.startsWith('-') && arg.length > 1) {
      spec = byShort.get(arg.slice(1));
      if (!spec) throw new UserError(`unknown option ${arg} (see --help)`, { path: arg }, 'E_USAGE');
    } else {
      out.positionals.push(arg);
      continue;
    }
    if (!spec.takesValue) {
      if (inline !== undefined) throw new UserError(`--${spec.name} takes no value`, { path: `--${spec.name}` }, 'E_USAGE');
      out.flags[spec.name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UserError(`--${spec.name} needs a value`, { path: `--${spec.name}` }, 'E_USAGE');
    if (spec.repeat) out.flags[spec.name] = [...((out.flags[spec.name] as string[]) ?? []), value];
    else out.flags[spec.name] = value;
  }
  return out;
}
