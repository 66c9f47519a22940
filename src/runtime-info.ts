/**
 * What this machine can run: the native addon's view (CUDA driver, GPUs, TensorRT libraries) plus
 * onnxruntime's. Never throws for a missing piece: it says why instead.
 */
import { autoCpuBackend, type CpuBackendChoice } from './inference/cpu-backend-choice.js';
import { onednnInfo, type OnednnInfo } from './native/onednn.js';
import os from 'node:os';
import { createRequire } from 'node:module';
import { resolveMachineInfo, tensorRtLibraryStatus, type TensorRtDependencies } from './inference/tensorrt-native.js';
import { getNativeRuntimeInfo, type NativeRuntimeInfo } from './native/addon.js';
import { gzipCodecStatus, type GzipCodecStatus } from './native/gzip-codec.js';
import { volumeKernelsStatus } from './native/volume-kernels.js';

export interface RuntimeInfo {
  packageVersion: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number };
  onnxruntime: { available: boolean; version?: string; reason?: string };
  native: NativeRuntimeInfo | { available: false; reason: string };
  /** Whether the CPU stages (transposes, resampling, stitching...) run the addon's C++ kernels. */
  cpuKernels: { native: boolean; reason: string };
  /** Whether .nii.gz files are inflated by ISA-L (streamed into the decode), libdeflate (both through the addon) or zlib. */
  gzip: GzipCodecStatus;
  /** oneDNN 2.x for `backend: 'onednn'` (opened at run time). */
  onednn: OnednnInfo;
  /** The CPU backend `backend: 'auto'` runs without TensorRT here, and why. */
  cpuBackend: CpuBackendChoice;
  tensorrt: TensorRtStatus;
}

export interface TensorRtStatus {
  /** True when the TensorRT backend can run here. */
  usable: boolean;
  /** Why not; or, when usable, what it would run on. */
  reason: string;
  /** The loaded TensorRT library's version, when it loads. */
  version?: string;
  /** The CUDA version the driver supports (cuDriverGetVersion), "major.minor", when known. */
  driverCudaVersion?: string;
  /** Whether that driver can run the loaded TensorRT (the addon links no CUDA runtime of its own). */
  driverSufficient?: boolean;
}

const require = createRequire(import.meta.url);

function packageVersion(): string {
  try {
    return (require('../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function onnxRuntimeInfo(): Promise<RuntimeInfo['onnxruntime']> {
  try {
    const ort = await import('onnxruntime-node');
    return { available: true, version: ort.env.versions?.node ?? ort.env.versions?.common };
  } catch (error) {
    return { available: false, reason: (error as Error).message };
  }
}

/**
 * Whether the TensorRT backend can run, and why not: the addon, a CUDA driver, a GPU, the TensorRT
 * libraries (as the addon's probe found them) and the TensorRT support module must all be there.
 */
export async function getTensorRtStatus(native?: RuntimeInfo['native'], deps: TensorRtDependencies = {}): Promise<TensorRtStatus> {
  const info = native ?? (await resolveMachineInfo(deps));
  if (!('cuda' in info)) return { usable: false, reason: `native addon not loaded: ${info.reason}` };
  if (!info.cuda.driverAvailable) return { usable: false, reason: `no CUDA driver: ${info.cuda.reason ?? 'unknown'}` };
  if (info.cuda.devices.length === 0) return { usable: false, reason: 'no CUDA GPU found' };
  if (!info.tensorrt.available) return { usable: false, reason: `no TensorRT: ${info.tensorrt.reason ?? 'unknown'}` };
  const driver = { driverCudaVersion: info.cuda.driverVersion, driverSufficient: info.tensorrt.driverSufficient };
  if (info.tensorrt.driverSufficient === false && info.cuda.driverVersion !== undefined) {
    return { usable: false, reason: `CUDA driver too old: ${info.tensorrt.driverNote ?? 'unknown'}`, version: info.tensorrt.version, ...driver };
  }
  const library = await tensorRtLibraryStatus(deps);
  if (!library.available || !library.version) {
    return { usable: false, reason: `no TensorRT: ${library.reason ?? 'the TensorRT support module reports it unavailable'}`, version: library.version, ...driver };
  }
  const gpu = info.cuda.devices[0];
  const cuda = info.cuda.driverVersion === undefined ? '' : `, driver CUDA ${info.cuda.driverVersion}`;
  return { usable: true, reason: `TensorRT ${library.version} on ${gpu.name} (compute ${gpu.computeCapability}${cuda})`, version: library.version, ...driver };
}

/** Versions, backends available (and why not), threads, GPUs. */
export async function getRuntimeInfo(): Promise<RuntimeInfo> {
  const native = await getNativeRuntimeInfo();
  const cpus = os.cpus();
  return {
    packageVersion: packageVersion(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: cpus[0]?.model ?? 'unknown', cores: os.availableParallelism() },
    onnxruntime: await onnxRuntimeInfo(),
    native,
    cpuKernels: volumeKernelsStatus(),
    gzip: gzipCodecStatus(),
    onednn: onednnInfo(),
    cpuBackend: autoCpuBackend(),
    tensorrt: await getTensorRtStatus(native),
  };
}
