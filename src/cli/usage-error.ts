/** A command-line mistake: printed without a stack, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses a number option, or throws a UsageError naming the flag. */
export function parseNumberFlag(value: string | undefined, flag: string, check: (n: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`${flag} expects ${what}, got "${value}"`);
  return n;
}

/** Checks a string option against its allowed values. */
export function parseChoiceFlag<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`${flag} expects one of ${choices.join(', ')}, got "${value}"`);
  return value as T;
}
