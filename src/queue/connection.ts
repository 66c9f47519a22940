/**
 * Redis connection options for the two roles (BullMQ's "going to production" guide):
 * - workers block on Redis and must ride out a restart: `maxRetriesPerRequest: null` keeps their
 *   commands waiting across reconnects instead of failing the job;
 * - producers answer an HTTP request: `enableOfflineQueue: false` makes a command fail at once
 *   while Redis is down, so the service can say 503 instead of hanging the client.
 * ioredis reconnects by itself (retryStrategy); the delay is capped so a restarted Redis is found
 * again within about a second.
 */
import type { ConnectionOptions } from 'bullmq';
import { expectedType } from '../errors.js';

/** ioredis options parsed from `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS). */
export interface RedisAddress {
  host: string;
  port: number;
  db?: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
}

/** Parses a Redis URL; TypeError for anything else. */
export function parseRedisUrl(url: string): RedisAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw expectedType('a redis:// URL', 'queue', url);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw expectedType('a redis:// URL', 'queue', url);
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? undefined : Number(dbText);
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw expectedType('a database number in the URL path', 'queue', url);
  const address: RedisAddress = { host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
  if (db !== undefined) address.db = db;
  if (parsed.username) address.username = decodeURIComponent(parsed.username);
  if (parsed.password) address.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') address.tls = {};
  return address;
}

/** Reconnect delay in ms after the n-th failed attempt: 50, 100, ... capped at 1 s, never giving up. */
function reconnectDelayMs(times: number): number {
  return Math.min(times * 50, 1000);
}

/** A URL or ready ioredis options. */
export type RedisTarget = string | RedisAddress;

function address(target: RedisTarget): RedisAddress {
  return typeof target === 'string' ? parseRedisUrl(target) : target;
}

/** Options for a worker's connection: commands wait across reconnects. */
export function workerConnection(target: RedisTarget): ConnectionOptions {
  return { ...address(target), maxRetriesPerRequest: null, retryStrategy: reconnectDelayMs };
}

/** Options for a producer's connection: commands fail at once while Redis is down. */
export function producerConnection(target: RedisTarget): ConnectionOptions {
  return { ...address(target), enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: reconnectDelayMs };
}
