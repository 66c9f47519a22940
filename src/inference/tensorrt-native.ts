/**
 * The TensorRT modules' one way to the native TensorRT layer (src/native/tensorrt.ts): its types,
 * and a loader every TensorRT module goes through, so tests inject a fake and a machine without
 * TensorRT gets a SpleenTrtError saying why.
 *
 * The native module is imported lazily, on first use: importing the package never loads the addon.
 */
import { SpleenTrtError } from '../errors.js';
import { getNativeRuntimeInfo, type NativeRuntimeInfo } from '../native/addon.js';
import type * as NativeTensorRt from '../native/tensorrt.js';

export type {
  TensorRtPrecision,
  NativeBuildOptions,
  NativeBuildResult,
  NativeEngine,
  NativeEngineInfo,
  NativeRunResult,
} from '../native/tensorrt.js';

/** An optimization profile's batch sizes. */
export type BatchProfile = NativeTensorRt.NativeBuildOptions['profile'];
/** What the native builder reports while it works. */
export type NativeBuildProgress = Parameters<NonNullable<NativeTensorRt.NativeBuildOptions['onProgress']>>[0];
/** Options of loadEngineNative. */
export type NativeLoadOptions = NonNullable<Parameters<typeof NativeTensorRt.loadEngineNative>[1]>;
/** getTensorRtLibraryStatus's answer. */
export type TensorRtLibraryStatus = Awaited<ReturnType<typeof NativeTensorRt.getTensorRtLibraryStatus>>;

/** The functions of src/native/tensorrt.ts this package uses (a fake implements the same). */
export interface TensorRtNativeApi {
  buildEngineNative: typeof NativeTensorRt.buildEngineNative;
  loadEngineNative: typeof NativeTensorRt.loadEngineNative;
  getTensorRtLibraryStatus: typeof NativeTensorRt.getTensorRtLibraryStatus;
}

/** What the addon reports about the machine (GPUs, driver): getNativeRuntimeInfo's result. */
export type MachineInfo = NativeRuntimeInfo | { available: false; reason: string };

/**
 * Injection points of the TensorRT modules: tests pass fakes, everything else takes the defaults
 * (the native module and the addon's runtime probe).
 */
export interface TensorRtDependencies {
  native?: TensorRtNativeApi | (() => Promise<TensorRtNativeApi>);
  machineInfo?: () => Promise<MachineInfo>;
}

let nativeModule: Promise<TensorRtNativeApi> | undefined;

function defaultNative(): Promise<TensorRtNativeApi> {
  nativeModule ??= import('../native/tensorrt.js').catch((error: unknown) => {
    nativeModule = undefined;
    throw new SpleenTrtError('ERR_TENSORRT_UNAVAILABLE', `The TensorRT support module cannot be loaded: ${(error as Error).message ?? String(error)}`, {
      cause: error,
    });
  });
  return nativeModule;
}

/** The native TensorRT functions (injected, or the real module); ERR_TENSORRT_UNAVAILABLE if absent. */
export async function resolveTensorRtNative(deps: TensorRtDependencies = {}): Promise<TensorRtNativeApi> {
  if (deps.native === undefined) return defaultNative();
  return typeof deps.native === 'function' ? deps.native() : deps.native;
}

/** The machine's GPUs and driver as the addon sees them (injected, or the real probe). */
export function resolveMachineInfo(deps: TensorRtDependencies = {}): Promise<MachineInfo> {
  return (deps.machineInfo ?? getNativeRuntimeInfo)();
}

/** TensorRT's library status; never rejects (a missing native module is `available: false`). */
export async function tensorRtLibraryStatus(deps: TensorRtDependencies = {}): Promise<TensorRtLibraryStatus> {
  try {
    const native = await resolveTensorRtNative(deps);
    return await native.getTensorRtLibraryStatus();
  } catch (error) {
    return { available: false, reason: (error as Error).message };
  }
}

/**
 * The native TensorRT functions and the loaded library's version, or ERR_TENSORRT_UNAVAILABLE with
 * the most specific reason known: the library status, else (when the support module itself cannot
 * load) the addon's own probe of the TensorRT libraries.
 */
export async function requireTensorRt(deps: TensorRtDependencies = {}): Promise<{ native: TensorRtNativeApi; version: string }> {
  let native: TensorRtNativeApi;
  try {
    native = await resolveTensorRtNative(deps);
  } catch (error) {
    const info = await resolveMachineInfo(deps).catch(() => null);
    if (info && !('cuda' in info)) {
      throw new SpleenTrtError('ERR_TENSORRT_UNAVAILABLE', `the native addon is not loaded: ${info.reason}`, { cause: error });
    }
    if (info && 'cuda' in info && !info.tensorrt.available) {
      throw new SpleenTrtError('ERR_TENSORRT_UNAVAILABLE', info.tensorrt.reason ?? 'TensorRT libraries not found', { cause: error });
    }
    throw error;
  }
  let status: TensorRtLibraryStatus;
  try {
    status = await native.getTensorRtLibraryStatus();
  } catch (error) {
    throw new SpleenTrtError('ERR_TENSORRT_UNAVAILABLE', `cannot query TensorRT: ${(error as Error).message}`, { cause: error });
  }
  if (!status.available || !status.version) {
    throw new SpleenTrtError('ERR_TENSORRT_UNAVAILABLE', status.reason ?? 'TensorRT is not available (no reason given)');
  }
  return { native, version: status.version };
}

/** The GPU a build or engine runs on; ERR_NO_GPU when there is none with that index. */
export interface GpuIdentity {
  index: number;
  name: string;
  computeCapability: string;
  driverVersion?: string;
  cudaToolkit?: string | null;
}

/** The device `index` from the machine info, or ERR_NO_GPU saying why there is none. */
export function selectGpu(info: MachineInfo, index: number): GpuIdentity {
  if (!('cuda' in info)) throw new SpleenTrtError('ERR_NO_GPU', `No GPU: the native addon is not loaded (${info.reason})`);
  if (!info.cuda.driverAvailable) throw new SpleenTrtError('ERR_NO_GPU', `No GPU: no CUDA driver (${info.cuda.reason ?? 'unknown reason'})`);
  const device = info.cuda.devices.find((d) => d.index === index);
  if (!device) {
    const count = info.cuda.devices.length;
    throw new SpleenTrtError('ERR_NO_GPU', count === 0 ? 'No CUDA GPU found' : `No CUDA GPU with index ${index} (${count} found)`);
  }
  return {
    index,
    name: device.name,
    computeCapability: device.computeCapability,
    driverVersion: info.cuda.driverVersion,
    cudaToolkit: info.compiledWith.cudaToolkit,
  };
}
