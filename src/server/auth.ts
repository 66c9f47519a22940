/**
 * Bearer-token auth. Tokens are compared in constant time (both sides hashed to 32 bytes first, so
 * neither the length nor the content leaks through timing, and every configured token is tried).
 * Without auth the service answers only requests that arrived on a loopback address, whatever
 * address it was told to listen on.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { AuthOptions } from './server-options.js';
import { ServiceError } from './service-error.js';

/** Shortest accepted token: below this a token can be guessed. */
export const MIN_TOKEN_LENGTH = 16;

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Tokens from a file: one per line; blank lines and lines starting with '#' are skipped. */
export function parseTokens(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export function readTokenFile(file: string): string[] {
  return parseTokens(readFileSync(file, 'utf8'));
}

export function checkTokens(tokens: readonly string[]): void {
  if (tokens.length === 0) throw new RangeError('Expected at least one token but received none');
  for (const token of tokens) {
    if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      throw new RangeError(`Expected tokens of at least ${MIN_TOKEN_LENGTH} characters without spaces but received one of ${token.length}`);
    }
  }
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (plain === '::1') return true;
  return isIP(plain) === 4 && plain.startsWith('127.');
}

/** Checks a request's Authorization header and local address; throws 401 / 403. */
export function makeAuthCheck(auth: AuthOptions): (authorization: string | undefined, localAddress: string | undefined) => void {
  if (auth === false) {
    return (_authorization, localAddress) => {
      if (!isLoopback(localAddress)) {
        throw new ServiceError('ERR_FORBIDDEN', 'Auth is off, so only loopback connections are served');
      }
    };
  }
  let cachedSource: readonly string[] | undefined;
  let digests: Buffer[] = [];
  const current = (): Buffer[] => {
    const tokens = typeof auth.tokens === 'function' ? auth.tokens() : auth.tokens;
    if (tokens !== cachedSource) {
      cachedSource = tokens;
      digests = tokens.map(digest);
    }
    return digests;
  };
  return (authorization) => {
    const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
    const given = digest(match ? match[1] : '');
    let ok = false;
    for (const expected of current()) ok = timingSafeEqual(given, expected) || ok;
    if (!match || !ok) throw new ServiceError('ERR_UNAUTHORIZED', 'A valid bearer token is required');
  };
}

/**
 * Who a request comes from, for per-client caps: a short digest of its bearer token (never the
 * token itself, which would then sit in Redis), or 'anonymous'.
 */
export function clientIdOf(authorization: string | undefined): string {
  const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
  return match ? `token-${createHash('sha256').update(match[1]).digest('hex').slice(0, 16)}` : 'anonymous';
}
