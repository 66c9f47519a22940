/** Test helpers: await a promise that must reject, and hand back what it rejected with. */
import { SpleenTrtError } from '../../src/errors.js';

/** The SpleenTrtError a promise rejects with; anything else (or no rejection) fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<SpleenTrtError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SpleenTrtError) return error;
    throw error;
  }
  throw new Error('expected a SpleenTrtError');
}

/** Whatever a promise rejects with (TypeError, RangeError, SpleenTrtError...); no rejection fails. */
export async function anyRejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** The SpleenTrtError a synchronous call throws; anything else (or no throw) fails the test. */
export function thrownError(fn: () => unknown): SpleenTrtError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SpleenTrtError) return error;
    throw error;
  }
  throw new Error('expected a SpleenTrtError');
}
