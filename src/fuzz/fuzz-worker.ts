/**
 * One fuzz target's cases, run in a worker thread so that the parent can stop a case that hangs or
 * grows past the memory limit (it watches from outside) and carry on with the next one. Each case
 * is rebuilt from (seed, target, index) alone, so a finding can be replayed with `--only <index>`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorCode, SpleenTrtError } from '../errors.js';
import { fuzzTargets } from './fuzz-targets.js';
import { caseRandom } from './fuzz-case.js';

interface WorkerInput {
  target: string;
  seed: number;
  start: number;
  end: number;
}

const { target, seed, start, end } = workerData as WorkerInput;
const port = parentPort!;
const chosen = fuzzTargets().find((t) => t.name === target);
if (!chosen) throw new Error(`unknown fuzz target ${target}`);

for (let index = start; index < end; index++) {
  const input = chosen.make(caseRandom(seed, target, index));
  port.postMessage({ type: 'start', index });
  let outcome: 'ok' | 'coded' | 'uncoded';
  let code: string | undefined;
  let message: string | undefined;
  try {
    await chosen.run(input);
    outcome = 'ok';
  } catch (error) {
    code = errorCode(error);
    // Coded = a SpleenTrtError, or a caller-mistake error with its ERR_INVALID_ARG_* code.
    outcome = error instanceof SpleenTrtError || code !== 'ERR_UNEXPECTED' ? 'coded' : 'uncoded';
    message = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error);
  }
  port.postMessage({ type: 'done', index, outcome, code, message });
}
port.postMessage({ type: 'finished' });
