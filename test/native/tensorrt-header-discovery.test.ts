// Where a source build finds TensorRT's headers (CMakeLists.txt, "optional TensorRT headers"):
// configure only, with stand-in header directories (NvInferVersion.h carries the version CMake
// reads; the other headers are only looked for). The places NVIDIA's packages use
// (/usr/include/<triplet>, /usr/local/tensorrt, the CUDA toolkit) are searched after
// TENSORRT_SEARCH_DIRS, so a machine with a real TensorRT does not change what these tests see as
// long as the stand-in comes first.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasCommand, requireTool } from '../helpers/system-tools.js';
import { makeTempDir, repoRoot } from './native-test-helpers.js';

const run = requireTool(hasCommand('cmake'), 'cmake');
const tempDirs: string[] = [];
afterAll(() => {
  for (const directory of tempDirs) rmSync(directory, { recursive: true, force: true });
});

function headerDir(files: { parser: boolean }, version = '10.16.0'): string {
  const directory = path.join(makeTempDir('trt-headers'), 'include');
  tempDirs.push(path.dirname(directory));
  mkdirSync(directory, { recursive: true });
  const [major, minor, patch] = version.split('.');
  writeFileSync(
    path.join(directory, 'NvInferVersion.h'),
    `#define NV_TENSORRT_MAJOR ${major}\n#define NV_TENSORRT_MINOR ${minor}\n#define NV_TENSORRT_PATCH ${patch}\n`,
  );
  writeFileSync(path.join(directory, 'NvInfer.h'), '');
  if (files.parser) writeFileSync(path.join(directory, 'NvOnnxParser.h'), '');
  return directory;
}

/** Runs CMake's configure step in a fresh directory; returns its combined output. */
function configure(env: Record<string, string>): { status: number | null; output: string } {
  const build = makeTempDir('trt-configure');
  tempDirs.push(build);
  const clean = { ...process.env };
  for (const name of ['TENSORRT_ROOT', 'TENSORRT_INCLUDE_DIR', 'TENSORRT_PARSER_INCLUDE_DIR', 'TENSORRT_SEARCH_DIRS', 'SPLEEN_TRT_FIND_TENSORRT']) {
    delete clean[name];
  }
  const result = spawnSync('cmake', ['-S', repoRoot, '-B', build, '-DSPLEEN_TRT_BUILD_TESTS=OFF'], {
    encoding: 'utf8',
    env: { ...clean, ...env },
    timeout: 60_000,
  });
  // CMake wraps warnings at 80 columns: compare with runs of whitespace made one space.
  return { status: result.status, output: `${result.stdout}\n${result.stderr}`.replace(/\s+/g, ' ') };
}

describe.runIf(run)('TensorRT header discovery (source builds)', () => {
  it('uses headers found in a searched place and says where', () => {
    const include = headerDir({ parser: true });
    const { status, output } = configure({ TENSORRT_SEARCH_DIRS: `/nonexistent:${include}` });
    expect(status, output).toBe(0);
    if (output.includes('spleen_trt: no CUDA toolkit found')) {
      // NvInfer.h needs the CUDA headers: without a toolkit the build goes on without TensorRT.
      expect(output).toContain(`TensorRT headers in ${include} but no CUDA toolkit`);
    } else {
      expect(output).toContain(`spleen_trt: TensorRT headers 10.16.0 at ${include} (found in ${include})`);
    }
  });

  it('TENSORRT_ROOT wins over the search, and is named as the source', () => {
    const searched = headerDir({ parser: true }, '10.14.1');
    const root = path.dirname(headerDir({ parser: true }, '10.15.2'));
    const { status, output } = configure({ TENSORRT_SEARCH_DIRS: searched, TENSORRT_ROOT: root });
    if (output.includes('spleen_trt: no CUDA toolkit found')) {
      expect(status).not.toBe(0); // given explicitly, a TensorRT that cannot be built is an error
      expect(output).toContain('TensorRT support needs the CUDA toolkit');
    } else {
      expect(status, output).toBe(0);
      expect(output).toContain(`spleen_trt: TensorRT headers 10.15.2 at ${path.join(root, 'include')} (TENSORRT_ROOT)`);
    }
    expect(output).not.toContain('10.14.1');
  });

  it('headers without the ONNX parser are used for running engines, with a warning that building needs it', () => {
    const include = headerDir({ parser: false });
    const { status, output } = configure({ TENSORRT_SEARCH_DIRS: include });
    if (output.includes('spleen_trt: no CUDA toolkit found')) {
      expect(status, output).toBe(0);
      expect(output).not.toContain('spleen_trt: TensorRT headers 10.16.0');
    } else {
      expect(status, output).toBe(0);
      expect(output).toContain(`spleen_trt: TensorRT headers 10.16.0 at ${include} (found in ${include})`);
      expect(output).toContain(`no NvOnnxParser.h in ${include}: the addon will run TensorRT engines but not build them`);
    }
  });

  it('SPLEEN_TRT_FIND_TENSORRT=0 skips the search', () => {
    const include = headerDir({ parser: true });
    const { status, output } = configure({ TENSORRT_SEARCH_DIRS: include, SPLEEN_TRT_FIND_TENSORRT: '0' });
    expect(status, output).toBe(0);
    expect(output).toContain('SPLEEN_TRT_FIND_TENSORRT is off');
    expect(output).not.toContain('spleen_trt: TensorRT headers');
  });
});
