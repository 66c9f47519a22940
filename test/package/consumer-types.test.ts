// The package's declarations as a TypeScript consumer sees them, under `module`/`moduleResolution`
// node16 and nodenext, from an ES module (.mts: import) and a CommonJS file (.cts: require), with
// the repository's TypeScript and skipLibCheck off (the .d.ts files themselves are checked too).
// Reads dist/ (npm test builds it first) through node_modules/spleen-trt -> the repository, so
// "exports" decides which declarations each file gets. bad.mts is the control: a mistake the types
// must catch, so a resolution that silently degraded to `any` would fail here.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const project = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-types-'));
afterAll(() => rmSync(project, { recursive: true, force: true }));

mkdirSync(path.join(project, 'node_modules'));
symlinkSync(repoRoot, path.join(project, 'node_modules', 'spleen-trt'), 'dir');
writeFileSync(path.join(project, 'package.json'), '{ "name": "consumer", "private": true }\n');

const USE = `
async function run(path: string): Promise<number> {
  const segmenter: Segmenter = await Segmenter.create({ backend: 'onnxruntime', threads: 2 });
  try {
    const { volume } = await readNifti(path);
    const result: SegmentResult = await segmenter.segment(volume);
    await writeNifti('mask.nii.gz', result.mask);
    return result.summary.volumeMl;
  } catch (error) {
    if (isSpleenTrtError(error)) console.error(error.code satisfies ErrorCode);
    throw error;
  } finally {
    await segmenter.close();
  }
}
void run;
`;
writeFileSync(
  path.join(project, 'esm.mts'),
  `import { Segmenter, readNifti, writeNifti, isSpleenTrtError, type ErrorCode, type SegmentResult } from 'spleen-trt';\n${USE}`,
);
writeFileSync(
  path.join(project, 'cjs.cts'),
  `import spleen = require('spleen-trt');\nconst { Segmenter, readNifti, writeNifti, isSpleenTrtError } = spleen;\ntype Segmenter = spleen.Segmenter;\ntype ErrorCode = spleen.ErrorCode;\ntype SegmentResult = spleen.SegmentResult;\n${USE}`,
);
writeFileSync(
  path.join(project, 'bad.mts'),
  `import { Segmenter } from 'spleen-trt';\nexport const s = Segmenter.create({ backend: 'cuda' });\n`,
);

function typecheck(mode: 'node16' | 'nodenext'): string {
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(
    process.execPath,
    [
      tsc, '--noEmit', '--pretty', 'false', '--strict', '--skipLibCheck', 'false',
      '--module', mode, '--moduleResolution', mode, '--target', 'es2022',
      '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules', '@types'),
      'esm.mts', 'cjs.cts', 'bad.mts',
    ],
    { cwd: project, encoding: 'utf8', timeout: 120_000 },
  );
  return `${result.stdout}${result.stderr}`.trim();
}

describe('the declarations in a consumer project', () => {
  for (const mode of ['node16', 'nodenext'] as const) {
    it(`type-check under ${mode} for import and require; the control mistake is caught`, () => {
      const errors = typecheck(mode).split('\n').filter(Boolean);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^bad\.mts\(2,\d+\): error TS2322: Type '"cuda"' is not assignable/);
    });
  }
});
