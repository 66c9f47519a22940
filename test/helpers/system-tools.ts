/**
 * Test helpers for external programs the tests use as real components or independent references
 * (redis-server, chromium, dcmtk, pydicom through Debian's python3...). They are listed in
 * .ci/system-packages.txt and installed by .ci/run. In CI (CI=true) a missing tool is a failure,
 * never a silent skip; elsewhere the test skips and says what to install.
 */
import { spawnSync } from 'node:child_process';

/** True when `command` resolves on PATH (or is an existing absolute path). */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { encoding: 'utf8' }).status === 0;
}

/** Debian's python3 (where python3-nibabel, python3-pydicom live), not a pyenv shim. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** True when Debian's python3 can import every module named. */
export function hasPythonModules(...modules: string[]): boolean {
  const code = modules.map((name) => `import ${name}`).join('; ');
  return spawnSync(SYSTEM_PYTHON, ['-c', code], { encoding: 'utf8' }).status === 0;
}

/**
 * Whether a test that needs `what` should run: true when present; false (skip) when absent outside
 * CI; throws in CI, where .ci/run must have installed it.
 */
export function requireTool(present: boolean, what: string): boolean {
  if (present) return true;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(`${what} is missing in CI: add its Debian package to .ci/system-packages.txt`);
  }
  console.warn(`skipping: ${what} is not installed (see .ci/system-packages.txt)`);
  return false;
}
