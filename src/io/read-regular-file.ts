/**
 * Opening and reading input files without hanging or crashing on hostile paths: FIFOs (an open for
 * reading blocks until a writer appears, a read forever), devices (`/dev/zero` never ends), symlink
 * loops, unreadable files and NUL bytes in names all end in a coded SpleenTrtError, and a file's
 * size is checked against a limit before any buffer for it is allocated.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { SpleenTrtError } from '../errors.js';
import { uninitializedBytes } from '../volume/uninitialized.js';

function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** A file-system failure on an input as the package's error: missing, or there but unreadable. */
export function inputFileError(error: unknown, file: string, what = 'File'): SpleenTrtError {
  const errno = errnoOf(error);
  if (errno === 'ENOENT' || errno === 'ENOTDIR') return new SpleenTrtError('ERR_FILE_NOT_FOUND', `${what} not found: ${file}`, { cause: error });
  const why =
    errno === 'EACCES' || errno === 'EPERM'
      ? 'permission denied'
      : errno === 'ELOOP'
        ? 'a symbolic link loop'
        : errno === 'ENAMETOOLONG'
          ? 'its name is too long'
          : `${errno ?? 'error'}: ${(error as Error)?.message ?? String(error)}`;
  return new SpleenTrtError('ERR_FILE_UNREADABLE', `${what} ${file} cannot be read (${why})`, { cause: error });
}

export interface OpenRegularFileOptions {
  /** Noun for messages ('NIfTI file', 'model ONNX'). */
  what?: string;
  /** The error for a directory (default ERR_FILE_UNREADABLE). */
  directoryError?: (file: string) => Error;
}

/**
 * Opens `file` for reading and returns its handle and size, or rejects with a coded error for
 * anything but a regular file. O_NONBLOCK makes opening a FIFO return at once (it has no effect
 * on regular files), so the type check after fstat is reached.
 */
export async function openRegularFile(file: string, options: OpenRegularFileOptions = {}): Promise<{ handle: FileHandle; size: number }> {
  const what = options.what ?? 'File';
  if (typeof file === 'string' && file.includes('\0')) {
    throw new SpleenTrtError('ERR_FILE_UNREADABLE', `${what} path ${JSON.stringify(file)} contains a NUL byte`);
  }
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw inputFileError(error, file, what);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) {
      throw options.directoryError?.(file) ?? new SpleenTrtError('ERR_FILE_UNREADABLE', `${what} ${file} is a directory`);
    }
    if (!info.isFile()) {
      const kind = info.isFIFO() ? 'a FIFO' : info.isCharacterDevice() || info.isBlockDevice() ? 'a device' : info.isSocket() ? 'a socket' : 'not a regular file';
      throw new SpleenTrtError('ERR_FILE_UNREADABLE', `${what} ${file} is ${kind}; only regular files are read`);
    }
    return { handle, size: info.size };
  } catch (error) {
    await handle.close();
    throw error instanceof SpleenTrtError ? error : inputFileError(error, file, what);
  }
}

/** Reads `length` bytes from the start of an open file; a file that shrank meanwhile is an error. */
export async function readExactly(handle: FileHandle, length: number, file: string): Promise<Uint8Array> {
  // Not zero-filled: every byte is read into, or the read fails.
  const buffer = uninitializedBytes(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  if (done < length) throw new SpleenTrtError('ERR_FILE_UNREADABLE', `${file} shrank while being read`);
  return buffer;
}

export interface ReadRegularFileOptions extends OpenRegularFileOptions {
  /** Refuse files larger than this (ERR_INPUT_TOO_LARGE), decided from the size before reading. */
  maxBytes: number;
}

/** The whole of a regular file, at most `maxBytes` of it (checked before anything is allocated). */
export async function readRegularFile(file: string, options: ReadRegularFileOptions): Promise<Uint8Array> {
  const what = options.what ?? 'File';
  const { handle, size } = await openRegularFile(file, options);
  try {
    if (size > options.maxBytes) {
      throw new SpleenTrtError('ERR_INPUT_TOO_LARGE', `${what} ${file} is ${size} bytes, more than the limit of ${options.maxBytes}`);
    }
    return await readExactly(handle, size, file);
  } catch (error) {
    throw error instanceof SpleenTrtError ? error : inputFileError(error, file, what);
  } finally {
    await handle.close();
  }
}
