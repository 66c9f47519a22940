/**
 * Starts `spleen-trt <command>` (dist/, built by `npm test`) as a child process and resolves once
 * its stdout or stderr matches `ready` (a service's address line, a worker's ready event); bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname, '../../dist/cli/main.js');

export interface StartedCli {
  child: ChildProcess;
  /** The match of `ready`. */
  match: RegExpExecArray;
  /** Everything it printed so far. */
  output: () => string;
}

export function startCli(args: string[], ready: RegExp, timeoutMs = 60_000): Promise<StartedCli> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start within ${timeoutMs} ms: ${output}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited: ${output}`));
    });
  });
}

/** `spleen-trt serve --queue` on 127.0.0.1 without auth (loopback only): its base URL and process. */
export async function startServeQueue(redisUrl: string, dataDir: string): Promise<{ base: string; child: ChildProcess }> {
  const served = await startCli(['serve', '--queue', redisUrl, '--data-dir', dataDir, '--port', '0', '--no-auth', '--log-level', 'warn'], /spleen-trt serve: (http:\/\/\S+)/);
  return { base: served.match[1], child: served.child };
}
