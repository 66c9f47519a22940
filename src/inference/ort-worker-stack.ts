/**
 * The stack the onnxruntime worker thread needs.
 *
 * onnxruntime-node (1.2x-1.30 on Linux) bundles Microsoft's 1DS telemetry SDK, whose Linux layer
 * reads `/proc/self/cmdline` when the first OrtEnv is created and matches it with a libstdc++
 * `std::regex`. That matcher recurses a few frames per character (about 280 bytes of stack per
 * byte of command line), so `spleen-trt infer *.nii.gz` on a big folder (14.5 KB of paths) overflowed
 * the worker's default 4 MiB stack and the process died with SIGSEGV inside libonnxruntime.
 * The worker is given a stack sized from the command line instead: virtual memory, reserved but only
 * touched as deep as the match goes.
 */
import { readFileSync } from 'node:fs';

/** Stack bytes reserved per byte of command line (measured ~280; doubled for margin). */
const STACK_BYTES_PER_CMDLINE_BYTE = 576;
/** Node's default worker stack, kept as the floor. */
const BASE_STACK_MB = 4;

/** Bytes of this process's command line as the kernel shows it (argv estimate where /proc is absent). */
export function commandLineBytes(): number {
  try {
    return readFileSync('/proc/self/cmdline').length;
  } catch {
    return [process.argv0, ...process.execArgv, ...process.argv.slice(1)].reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
  }
}

/** `resourceLimits.stackSizeMb` for a worker that may create the process's first OrtEnv. */
export function ortWorkerStackMb(cmdlineBytes: number = commandLineBytes()): number {
  return BASE_STACK_MB + Math.ceil((cmdlineBytes * STACK_BYTES_PER_CMDLINE_BYTE) / (1 << 20));
}
