// The package as its users get it: `npm pack`, then `npm install <tarball>` into a fresh project
// that has no .npmrc of ours, with a PATH holding no compiler (node, npm, npx and sh only) and no
// network but the npm registry (the npm cache may serve it). Then `npx spleen-trt info` and a
// segmentation through the library, by `require` and by `import`, from that project.
//
// Two installs, for the two ways npm treats dependencies' install scripts:
// - "scripts": npm runs them (npm 10; npm 11 today, which only reports unreviewed ones). The
//   project denies onnxruntime-node's postinstall in package.json ("allowScripts", what
//   `npm deny-scripts onnxruntime-node` writes; the README's install section), which otherwise
//   downloads CUDA providers from api.nuget.org and fails offline. Our install script runs: it
//   must pick the shipped prebuild and compile nothing.
// - "no scripts": --ignore-scripts, as npm does for unreviewed packages once it blocks them: neither
//   our install script nor onnxruntime-node's runs, and everything must still work.
//
// The tarball is packed with --ignore-scripts after running `npm run prebuildify` (what prepack
// runs) directly: prepack's other half, `prepare` (tsc into dist/), would rewrite dist/ under the
// tests running beside this one; `npm test` has just built it.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoCpuBackend } from '../../src/inference/cpu-backend-choice.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const platformDir = `${process.platform}-${process.arch}`;
const work = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-pack-'));
const bin = path.join(work, 'bin');

/** npm's CLI script: the one running this test (npm test), else the one on PATH. */
function npmCli(): string {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm && /npm-cli\.js$/.test(fromNpm)) return fromNpm;
  const found = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  return realpathSync(found);
}

/** A bin directory with node, npm, npx and sh only: no cc, c++, g++, make, cmake, ninja. */
function makeBin(): void {
  mkdirSync(bin);
  const cli = npmCli();
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync(cli, path.join(bin, 'npm'));
  symlinkSync(path.join(path.dirname(cli), 'npx-cli.js'), path.join(bin, 'npx'));
  const sh = spawnSync('sh', ['-c', 'command -v sh'], { encoding: 'utf8' }).stdout.trim();
  symlinkSync(realpathSync(sh), path.join(bin, 'sh'));
}

/** The user's environment: HOME (for npm's cache), our PATH, nothing of this repository's. */
function userEnv(): NodeJS.ProcessEnv {
  return { HOME: process.env.HOME ?? os.homedir(), PATH: bin, LANG: 'C.UTF-8' };
}

function run(command: string, args: string[], cwd: string, timeoutMs = 240_000): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env: userEnv(), encoding: 'utf8', timeout: timeoutMs });
}

function check(result: SpawnSyncReturns<string>, what: string): string {
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0) throw new Error(`${what} failed (${result.status ?? result.signal}):\n${output}`);
  return output;
}

let tarball: string;
const projects: Record<'scripts' | 'noScripts', string> = { scripts: '', noScripts: '' };
const installOutput: Record<'scripts' | 'noScripts', string> = { scripts: '', noScripts: '' };

const CONSUMER = (load: string): string => `
${load}
async function main() {
  const spleen = await load();
  const { image, label } = spleen.makePhantom({ shape: [64, 64, 24], spacingMm: [2.5, 2.5, 5], seed: 3 });
  const segmenter = await spleen.Segmenter.create({ threads: 2 });
  try {
    const { mask, summary } = await segmenter.segment(image);
    const info = await spleen.getRuntimeInfo();
    process.stdout.write(JSON.stringify({
      dice: spleen.foregroundDice(mask.data, label.data),
      shape: mask.shape,
      volumeMl: summary.volumeMl,
      backend: segmenter.info.backend,
      addonPath: info.native.addonPath ?? null,
      cpuKernels: info.cpuKernels.native,
      errorClass: typeof spleen.SpleenTrtError,
    }));
  } finally {
    await segmenter.close();
  }
}
main().catch((error) => { console.error(error); process.exit(1); });
`;

function makeProject(name: string, packageJson: object): string {
  const directory = path.join(work, name);
  mkdirSync(directory);
  writeFileSync(path.join(directory, 'package.json'), `${JSON.stringify({ name, version: '1.0.0', private: true, ...packageJson }, null, 2)}\n`);
  writeFileSync(path.join(directory, 'segment.cjs'), CONSUMER("const load = async () => require('spleen-trt');"));
  writeFileSync(path.join(directory, 'segment.mjs'), CONSUMER("const load = () => import('spleen-trt');"));
  return directory;
}

beforeAll(() => {
  makeBin();
  // prepack's half that matters here: prebuilds/<platform>/ for this machine (incremental in build/prebuild).
  check(spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'prebuild.mjs')], { cwd: repoRoot, encoding: 'utf8', timeout: 600_000 }), 'npm run prebuildify');
  const pack = spawnSync(process.execPath, [npmCli(), 'pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
  check(pack, 'npm pack');
  const [{ filename }] = JSON.parse(pack.stdout) as [{ filename: string }];
  tarball = path.join(work, filename);

  projects.scripts = makeProject('service-scripts', { allowScripts: { 'onnxruntime-node': false } });
  installOutput.scripts = check(
    run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], projects.scripts),
    'npm install (scripts)',
  );
  projects.noScripts = makeProject('service-no-scripts', {});
  installOutput.noScripts = check(
    run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], projects.noScripts),
    'npm install (no scripts)',
  );
}, 900_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('the packed package, installed into a project with no compiler', () => {
  it('the PATH the installs ran with has no compiler or build tool', () => {
    const found = run('sh', ['-c', 'for t in cc c++ gcc g++ clang clang++ make cmake ninja; do command -v $t; done; true'], work);
    expect(found.stdout.trim()).toBe('');
  });

  it('ships the prebuild, the build sources, and no source maps or tests', () => {
    const installed = path.join(projects.noScripts, 'node_modules', 'spleen-trt');
    expect(readdirSync(path.join(installed, 'prebuilds', platformDir)).filter((f) => f.endsWith('.node'))).not.toEqual([]);
    expect(existsSync(path.join(installed, 'CMakeLists.txt'))).toBe(true);
    expect(existsSync(path.join(installed, 'test'))).toBe(false);
    expect(existsSync(path.join(installed, 'build'))).toBe(false);
    const maps = spawnSync('sh', ['-c', `find "${installed}/dist" -name '*.map' | head -1`], { encoding: 'utf8' }).stdout.trim();
    expect(maps).toBe('');
  });

  it("the install script takes the prebuild and compiles nothing; onnxruntime-node's download never ran", () => {
    expect(installOutput.scripts).toMatch(new RegExp(`spleen-trt: using prebuilds/${platformDir}/spleen-trt\\.\\w+\\.node \\(compiles nothing`));
    expect(installOutput.scripts).not.toContain('cmake-js compile');
    for (const project of [projects.scripts, projects.noScripts]) {
      const providers = path.join(project, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch);
      expect(readdirSync(providers).filter((f) => f.includes('providers_cuda'))).toEqual([]);
    }
  });

  for (const kind of ['scripts', 'noScripts'] as const) {
    it(`npx spleen-trt info reports the prebuilt addon (${kind})`, () => {
      const output = check(run('npx', ['--no-install', 'spleen-trt', 'info', '--json'], projects[kind], 60_000), 'spleen-trt info');
      const info = JSON.parse(output.slice(output.indexOf('{'))) as {
        native: { available: boolean; addonPath?: string; compiledWith?: { tensorrtHeaders: string | null } };
        onnxruntime: { available: boolean };
        cpuKernels: { native: boolean };
      };
      expect(info.native.available).toBe(true);
      expect(info.native.addonPath).toBe(
        path.join(realpathSync(projects[kind]), 'node_modules', 'spleen-trt', 'prebuilds', platformDir, path.basename(info.native.addonPath ?? '')),
      );
      expect(info.onnxruntime.available).toBe(true);
      expect(info.cpuKernels.native).toBe(true);
    });
  }

  it('segments through require() and through import() with the prebuilt addon', () => {
    for (const script of ['segment.cjs', 'segment.mjs']) {
      const segment = run('node', [script], projects.noScripts, 120_000);
      check(segment, script);
      // A CPU-only machine with the addon loaded: the CPU backend (oneDNN where libdnnl 2.x and
      // AVX-512 are there, else onnxruntime) is the right one, no warning.
      expect(segment.stderr, script).not.toContain('SPLEEN_TRT_FALLBACK');
      const result = JSON.parse(segment.stdout) as {
        dice: number;
        shape: number[];
        backend: string;
        addonPath: string;
        cpuKernels: boolean;
        errorClass: string;
      };
      expect(result.shape, script).toEqual([64, 64, 24]);
      expect(result.backend, script).toBe(autoCpuBackend().name);
      // The embedded model on its own kind of phantom: a real segmentation, not an empty mask.
      expect(result.dice, script).toBeGreaterThan(0.9);
      expect(result.addonPath, script).toContain(path.join('prebuilds', platformDir));
      expect(result.cpuKernels, script).toBe(true);
      expect(result.errorClass, script).toBe('function');
    }
  });

  it('without a compiler, a source build says plainly what to do and the install still works', () => {
    const plain = check(run('npm', ['rebuild', 'spleen-trt', '--foreground-scripts'], projects.scripts, 120_000), 'npm rebuild');
    expect(plain).toContain(`spleen-trt: using prebuilds/${platformDir}/`);
    const forced = spawnSync(
      'npm',
      ['rebuild', 'spleen-trt', '--foreground-scripts'],
      { cwd: projects.scripts, env: { ...userEnv(), SPLEEN_TRT_BUILD_FROM_SOURCE: '1' }, encoding: 'utf8', timeout: 120_000 },
    );
    const text = `${forced.stdout}${forced.stderr}`;
    expect(forced.status, text).toBe(0);
    expect(text).toContain('the source build asked for cannot run: cmake was not found on PATH');
    expect(text).toContain(`prebuilds/${platformDir}/`);
    expect(text).toContain('stays in use');
    expect(text).toContain('then run: npm rebuild spleen-trt --build-from-source');
    // The prebuild is still there and still loads.
    const info = check(run('npx', ['--no-install', 'spleen-trt', 'info'], projects.scripts, 60_000), 'spleen-trt info');
    expect(info).toMatch(new RegExp(`native addon: loaded from .*prebuilds/${platformDir}/`));
  });

  it('where no prebuild matches and nothing can compile, the install says what to do and the CPU path still runs', () => {
    // Last: it takes the prebuild away from this project.
    const installed = path.join(projects.noScripts, 'node_modules', 'spleen-trt');
    rmSync(path.join(installed, 'prebuilds'), { recursive: true, force: true });
    const rebuild = check(run('npm', ['rebuild', 'spleen-trt', '--foreground-scripts'], projects.noScripts, 120_000), 'npm rebuild');
    expect(rebuild).toContain(`spleen-trt: no native addon for ${platformDir}: this package has no prebuild that loads here`);
    expect(rebuild).toContain('then run: npm rebuild spleen-trt\n');
    const info = check(run('npx', ['--no-install', 'spleen-trt', 'info'], projects.noScripts, 60_000), 'spleen-trt info');
    expect(info).toMatch(/native addon: not loaded \(.*build it with `npm rebuild spleen-trt /);
    expect(info).toContain('cpu stages: TypeScript loops');
    const segment = run('node', ['segment.cjs'], projects.noScripts, 120_000);
    check(segment, 'segment.cjs without the addon');
    const result = JSON.parse(segment.stdout) as { dice: number; addonPath: string | null; cpuKernels: boolean };
    expect(result.addonPath).toBeNull();
    expect(result.cpuKernels).toBe(false);
    expect(result.dice).toBeGreaterThan(0.9);
    // Told once, with the fix: the first Segmenter.create warns.
    expect(segment.stderr).toContain('spleen-trt runs on onnxruntime (CPU) without its native addon');
    expect(segment.stderr).toContain('npm rebuild spleen-trt');
    expect(segment.stderr.match(/SPLEEN_TRT_FALLBACK/g)).toHaveLength(1);
  });
});
