// Runs the addon's raw TensorRT entry points in a child Node whose LD_LIBRARY_PATH is exactly the
// given directories (fake TensorRT libraries, or none), and reports what each call did.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const childScript = `
const addon = require(process.env.SPLEEN_TRT_TEST_ADDON);
const request = { onnx: new Uint8Array([8, 1]), precision: 'fp16', inputName: 'input_0', batchMin: 1, batchOpt: 4,
  batchMax: 8, spatialShape: [96, 96, 96], workspaceBytes: 0, optLevel: 3, versionCompatible: false,
  hardwareCompat: 'none', device: 0 };
// A plan header (magic "ftrt", TensorRT version at bytes 24..27) from the major under test.
const plan = new Uint8Array(64);
plan.set([0x66, 0x74, 0x72, 0x74]);
plan[24] = Number(process.env.SPLEEN_TRT_TEST_PLAN_MAJOR);
plan[25] = 1;
const settle = (p) => p.then(() => ({ ok: true }), (e) => ({ code: e.code, message: e.message, details: e.details }));
(async () => {
  const status = await addon.getTensorRtStatusAsync();
  const build = await settle(addon.buildEngine(request, null).promise);
  const loadPlan = await settle(addon.loadEngine(plan, 0, 1, true));
  const loadGarbage = await settle(addon.loadEngine(new Uint8Array(100), 0, 1, true));
  process.stdout.write(JSON.stringify({ status, build, loadPlan, loadGarbage }));
})();
`;

export interface ChildOutcome {
  ok?: boolean;
  code?: string;
  message?: string;
  details?: string[];
}

export interface ChildReport {
  status: { available: boolean; version?: string; reason?: string };
  build: ChildOutcome;
  /** loadEngine on a 64-byte plan header of `planMajor` (no engine behind it). */
  loadPlan: ChildOutcome;
  /** loadEngine on 100 zero bytes. */
  loadGarbage: ChildOutcome;
}

export function runTensorRtChild(addon: string, libraryDirs: readonly string[], planMajor = 10): ChildReport {
  const result = spawnSync(process.execPath, ['-e', childScript], {
    encoding: 'utf8',
    env: {
      ...process.env,
      LD_LIBRARY_PATH: libraryDirs.join(path.delimiter),
      SPLEEN_TRT_TEST_ADDON: addon,
      SPLEEN_TRT_TEST_PLAN_MAJOR: String(planMajor),
    },
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`child exited with ${result.status ?? result.signal}: ${result.stderr}`);
  return JSON.parse(result.stdout) as ChildReport;
}
