/**
 * A real redis-server for tests: loopback only, a free port, its own temporary directory, AOF
 * persistence with fsync on every write (so a restart keeps every acknowledged job), noeviction
 * (BullMQ's requirement). `restart()` stops it and starts it again on the same port and directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { hasCommand, requireTool } from './system-tools.js';

/** True when the test should run (redis-server present); throws in CI when it is missing. */
export function redisAvailable(): boolean {
  return requireTool(hasCommand('redis-server'), 'redis-server');
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

export class RedisServer {
  readonly dir: string;
  readonly port: number;
  #child: ChildProcess | undefined;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-redis-')), await freePort());
    await server.#spawn();
    return server;
  }

  async #spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port', String(this.port),
        '--bind', '127.0.0.1',
        '--dir', this.dir,
        '--appendonly', 'yes',
        '--appendfsync', 'always',
        '--save', '',
        '--maxmemory-policy', 'noeviction',
        '--daemonize', 'no',
        '--logfile', '',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${String(code)}:\n${output}`));
      });
    });
    await ready;
  }

  /** Stops the server (SIGTERM: it fsyncs the AOF) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }

  /** Stops and starts again: same port, same directory, so the same AOF. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /** Stops the server and deletes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
