/**
 * The one module that loads the native addon: build/Release/spleen_trt.node (a source build), or the
 * prebuild for this platform shipped in prebuilds/ (made by prebuildify: `npm run prebuild`), chosen
 * by node-gyp-build's tag rules.
 *
 * The addon is optional: when it is missing or fails to load, loadAddon() returns null and keeps
 * the error for getNativeLoadError(), so callers can fall back to onnxruntime and say why.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One CUDA device as the driver reports it. */
export interface NativeCudaDevice {
  index: number;
  name: string;
  /** "major.minor", e.g. "9.0". */
  computeCapability: string;
  totalMemoryBytes: number;
  /** "domain:bus:device.function", e.g. "0000:3B:00.0". */
  pciBusId: string;
}

/** The CUDA driver's state: loaded, initialised, and the devices it sees. */
export interface NativeCudaInfo {
  /** True when libcuda loaded and cuInit succeeded. */
  driverAvailable: boolean;
  /** The CUDA version the driver supports, "major.minor" (known even when cuInit fails). */
  driverVersion?: string;
  libraryPath?: string;
  /** Why the driver is unavailable, or which device queries failed. */
  reason?: string;
  devices: NativeCudaDevice[];
}

/** TensorRT's libraries as found at run time. */
export interface NativeTensorRtInfo {
  /** libnvinfer loaded with its version and factory entry points. */
  available: boolean;
  /** "major.minor.patch" reported by getInferLibVersion(). */
  version?: string;
  major?: number;
  libraryPath?: string;
  reason?: string;
  parserAvailable: boolean;
  parserLibraryPath?: string;
  parserReason?: string;
  /** Whether the builder's resource library loads (needed to build engines, not to run them). */
  builderResourceAvailable: boolean;
  builderResourcePath?: string;
  builderResourceReason?: string;
  /** Once libnvinfer loaded: the oldest driver CUDA version some package of this TensorRT major runs on, "major.minor". */
  requiredDriverCudaVersion?: string;
  /** Once libnvinfer loaded: whether the driver's CUDA version (cuDriverGetVersion) reaches requiredDriverCudaVersion. */
  driverSufficient?: boolean;
  /** Why the driver does not suffice, or which TensorRT packages (CUDA 12.x / 13.x) it runs. */
  driverNote?: string;
}

/** What the addon's getRuntimeInfo returns. */
export interface NativeAddonRuntimeInfo {
  addonVersion: string;
  /** Node-API version of the running Node. */
  napiVersion: number;
  /** Node-API version the addon was built for. */
  napiBuildVersion: number;
  cuda: NativeCudaInfo;
  tensorrt: NativeTensorRtInfo;
  /** What the binary was compiled against (null: not found at build time). */
  compiledWith: { cudaToolkit: string | null; tensorrtHeaders: string | null };
}

/** The runtime info of a loaded addon, with where it was loaded from. */
export interface NativeRuntimeInfo extends NativeAddonRuntimeInfo {
  available: true;
  addonPath: string;
}

/** The native addon's exports. */
export interface NativeAddon {
  /** Blocks the event loop while probing (cuInit can take hundreds of ms); prefer the async one. */
  getRuntimeInfo(): NativeAddonRuntimeInfo;
  /** Probes on the libuv thread pool. */
  getRuntimeInfoAsync(): Promise<NativeAddonRuntimeInfo>;
}

/** The outcome of trying to load the addon from a list of candidate files. */
export type AddonLoadResult =
  | { addon: NativeAddon; path: string; error: null }
  | { addon: null; path: null; error: Error };

// dist/native/addon.js and src/native/addon.ts are both two levels below the package root.
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);

/** The parts of node-gyp-build (no types of its own) that pick a prebuild. */
interface PrebuildTags {
  file: string;
}
interface NodeGypBuild {
  parseTuple(name: string): { name: string } | undefined;
  matchTuple(platform: string, arch: string): (tuple: { name: string } | undefined) => boolean;
  compareTuples(a: { name: string }, b: { name: string }): number;
  parseTags(file: string): PrebuildTags | undefined;
  matchTags(runtime: string, abi: string): (tags: PrebuildTags | undefined) => boolean;
  compareTags(runtime: string): (a: PrebuildTags, b: PrebuildTags) => number;
}
const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;

function listDirectory(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}

/**
 * The prebuild node-gyp-build would pick for this process from prebuilds/<platform>-<arch>/, with
 * its own tag rules (prebuildify's names: spleen-trt.glibc.node, node.napi.node; abiNNN only for
 * this Node's ABI; libc, armv and uv tags when present), or null.
 */
export function matchingPrebuild(root: string = packageRoot): string | null {
  const prebuilds = path.join(root, 'prebuilds');
  const tuples = listDirectory(prebuilds)
    .map((name) => nodeGypBuild.parseTuple(name))
    .filter(nodeGypBuild.matchTuple(process.platform, process.arch)) as { name: string }[];
  const tuple = tuples.sort(nodeGypBuild.compareTuples)[0];
  if (tuple === undefined) return null;
  const directory = path.join(prebuilds, tuple.name);
  const flavours = listDirectory(directory)
    .map((file) => nodeGypBuild.parseTags(file))
    .filter(nodeGypBuild.matchTags('node', process.versions.modules)) as PrebuildTags[];
  const winner = flavours.sort(nodeGypBuild.compareTags('node'))[0];
  return winner === undefined ? null : path.join(directory, winner.file);
}

/**
 * Files the addon may be loaded from, in order: the local build (a source build, e.g. `npm rebuild
 * spleen-trt` with TensorRT headers, wins over the shipped prebuild, as in node-gyp-build), then
 * the matching prebuild. scripts/build-addon.mjs (the install script) applies the same rule.
 */
export function addonCandidates(root: string = packageRoot): string[] {
  const candidates = [path.join(root, 'build', 'Release', 'spleen_trt.node')];
  const prebuild = matchingPrebuild(root);
  if (prebuild !== null) candidates.push(prebuild);
  return candidates;
}

/**
 * The command that builds the addon from source here: `npm rebuild spleen-trt` where the package
 * is installed as a dependency (`npm run` scripts of a dependency cannot be run from the user's
 * project), `npm run build:addon` in a checkout of the repository.
 */
export function addonBuildCommand(root: string = packageRoot): string {
  const installed = root.split(/[\\/]/).includes('node_modules');
  return installed
    ? 'npm rebuild spleen-trt (needs cmake >= 3.18 and a C++17 compiler on PATH)'
    : 'npm run build:addon';
}

function isNativeAddon(value: unknown): value is NativeAddon {
  const candidate = value as Partial<NativeAddon> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.getRuntimeInfo === 'function' &&
    typeof candidate.getRuntimeInfoAsync === 'function'
  );
}

/**
 * Loads the first candidate that loads; never throws. The error, when none does, names every file
 * tried and why it failed. Uncached: loadAddon() is the cached entry point.
 */
export function tryLoadAddon(candidates: readonly string[]): AddonLoadResult {
  const failures: string[] = [];
  for (const file of candidates) {
    try {
      const exports: unknown = require(file);
      if (isNativeAddon(exports)) return { addon: exports, path: file, error: null };
      failures.push(`${file}: not a spleen-trt addon (getRuntimeInfo/getRuntimeInfoAsync missing)`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' ? `${file}: not found` : message);
    }
  }
  const detail = failures.length > 0 ? failures.join('; ') : 'no candidate files';
  return {
    addon: null,
    path: null,
    error: new Error(`The spleen-trt native addon could not be loaded (build it with \`${addonBuildCommand()}\`): ${detail}`),
  };
}

let cached: AddonLoadResult | undefined;

/** The native addon, loaded once per process; null (see getNativeLoadError) where it cannot load. */
export function loadAddon(): NativeAddon | null {
  cached ??= tryLoadAddon(addonCandidates());
  return cached.addon;
}

/** Why loadAddon() returned null; null when the addon loaded (or has not been asked for yet). */
export function getNativeLoadError(): Error | null {
  return cached?.error ?? null;
}

/** The file the addon was loaded from, or null. */
export function getNativeAddonPath(): string | null {
  loadAddon();
  return cached?.path ?? null;
}

/**
 * The CUDA driver, GPUs and TensorRT libraries as the addon sees them, probed off the JS thread.
 * Never rejects: without the addon it resolves `{ available: false, reason }`.
 * @example
 * const info = await getNativeRuntimeInfo();
 * if (info.available) console.log(info.cuda.devices.map((d) => d.name));
 */
export async function getNativeRuntimeInfo(): Promise<NativeRuntimeInfo | { available: false; reason: string }> {
  const addon = loadAddon();
  if (addon === null || cached?.path == null) {
    return { available: false, reason: getNativeLoadError()?.message ?? 'the native addon is not loaded' };
  }
  const addonPath = cached.path;
  try {
    const info = await addon.getRuntimeInfoAsync();
    return { available: true, addonPath, ...info };
  } catch (error) {
    // Only a bug (or exhausted memory) gets here: the probe reports missing pieces as data.
    return { available: false, reason: `getRuntimeInfoAsync failed: ${(error as Error).message}` };
  }
}
