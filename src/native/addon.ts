/**
 * The one module that loads the native addon (build/Release/spleen_trt.node, or a prebuild).
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

function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header !== undefined && !report.header.glibcVersionRuntime;
}

/**
 * Files the addon may be loaded from, in order: the local build, then prebuildify's layout
 * (prebuilds/<platform>-<arch>/<name>.<tags>.node with a "napi" tag and, if tagged, this libc);
 * scripts/build-addon.mjs applies the same rule.
 */
export function addonCandidates(root: string = packageRoot): string[] {
  const candidates = [path.join(root, 'build', 'Release', 'spleen_trt.node')];
  const directory = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  let files: string[] = [];
  try {
    files = readdirSync(directory).sort();
  } catch {
    // no prebuilds for this platform
  }
  const musl = files.length > 0 && isMusl();
  for (const file of files) {
    if (!file.endsWith('.node')) continue;
    const tags = file.slice(0, -'.node'.length).split('.');
    if (!tags.includes('napi')) continue;
    const libcTagged = tags.includes('musl') || tags.includes('glibc');
    if (libcTagged && tags.includes('musl') !== musl) continue;
    candidates.push(path.join(directory, file));
  }
  return candidates;
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
    error: new Error(`The spleen-trt native addon could not be loaded (build it with \`npm run build:addon\`): ${detail}`),
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
