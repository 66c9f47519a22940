// Runs the C++ tests of native/core (test/native/cpp/core_test.cc) through ctest, after an
// incremental build of their target in the cmake-js build directory.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureAddonBuilt, repoRoot, withBuildLock } from './native-test-helpers.js';

const buildDir = path.join(repoRoot, 'build');
const hasCmake = spawnSync('cmake', ['--version']).status === 0 && spawnSync('ctest', ['--version']).status === 0;

describe.runIf(hasCmake)('native/core C++ tests', () => {
  beforeAll(() => {
    ensureAddonBuilt();
  });

  it('pass under ctest', () => {
    let built = false;
    withBuildLock(
      () => built,
      () => {
        const build = spawnSync('cmake', ['--build', buildDir, '--target', 'spleen_trt_core_test'], { encoding: 'utf8' });
        expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
        built = true;
      },
    );
    expect(existsSync(path.join(buildDir, 'CTestTestfile.cmake'))).toBe(true);

    const run = spawnSync('ctest', ['--test-dir', buildDir, '--output-on-failure'], { encoding: 'utf8' });

    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('100% tests passed');
    expect(run.stdout).toContain('spleen_trt_core_test');
  });
});
