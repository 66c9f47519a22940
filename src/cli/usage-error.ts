/** A command-line mistake: printed without a stack, exit code 2. */
export class UsageError extends Error {
  /** Every error leaving the CLI has a code; a usage mistake's is ERR_USAGE (exit 2). */
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A strict decimal number: `0x0`, `1e1`, `0b1`, ` 4 ` and the like are refused (Number() accepts
 * them all, which made `--overlap 0x0` and `--sw-batch-size 1e1` pass).
 */
const DECIMAL = /^-?(\d+\.?\d*|\.\d+)$/;

/** Parses a number option, or throws a UsageError naming the flag. */
export function parseNumberFlag(value: string | undefined, flag: string, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!DECIMAL.test(value) || !Number.isFinite(n) || !check(n)) throw new UsageError(`${flag} expects ${what}, got "${value}"`);
  return n;
}

/** Checks a string option against its allowed values. */
export function parseChoiceFlag<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`${flag} expects one of ${choices.join(', ')}, got "${value}"`);
  return value as T;
}

/**
 * `--threads -1` as `--threads=-1`: parseArgs takes a value that starts with a dash for a flag and
 * says only "argument is ambiguous"; joined, the number check can say what is wrong with it.
 */
export function joinNegativeNumbers(argv: string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (flags.includes(argv[i]) && i + 1 < argv.length && /^-[\d.]/.test(argv[i + 1])) {
      out.push(`${argv[i]}=${argv[i + 1]}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}
