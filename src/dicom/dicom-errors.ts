/** The two DICOM error codes, with the message shapes the DICOM modules share. */
import { SpleenTrtError } from '../errors.js';

/** Malformed input, or input that is not one consistent CT series. */
export function dicomInvalid(message: string, cause?: unknown): SpleenTrtError {
  return new SpleenTrtError('ERR_DICOM_INVALID', message, { cause });
}

/** Well-formed DICOM that this package does not read; the message names what (e.g. the transfer syntax UID). */
export function dicomUnsupported(message: string): SpleenTrtError {
  return new SpleenTrtError('ERR_DICOM_UNSUPPORTED', message);
}
