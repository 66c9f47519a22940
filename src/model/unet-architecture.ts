/**
 * The MONAI `UNet` family (monai.networks.nets.UNet, MONAI 1.4.0) as plain data: the module tree
 * the ONNX builder walks and the exact state_dict keys and shapes it expects.
 *
 * Covered: `UNet(spatial_dims=3, in_channels, out_channels, channels, strides, kernel_size,
 * up_kernel_size, num_res_units, norm='batch', act='prelu', bias=True, dropout=0)`, adn_ordering
 * "NDA". The tree mirrors MONAI's `_create_block` recursion, so the key names and their order are
 * the ones `model.state_dict()` produces (checked against the real network in the tests).
 */
import { expectedRange, expectedType } from '../errors.js';

/** Hyper-parameters of a MONAI UNet (3-D, BatchNorm, PReLU, bias on every conv). */
export interface UnetConfig {
  inChannels: number;
  outChannels: number;
  /** Feature channels per level, top first; at least 2 entries (the last is the bottom). */
  channels: readonly number[];
  /** Down-sampling stride per level; entries beyond `channels.length - 1` are ignored, as MONAI does. */
  strides: readonly number[];
  /** Encoder conv kernel (odd). */
  kernelSize: number;
  /** Decoder transposed-conv kernel (odd). */
  upKernelSize: number;
  /** Residual units per encoder level; 0 means plain convolutions. */
  numResUnits: number;
}

/** The spleen_ct_segmentation bundle's network (spec section 6). */
export const DEFAULT_UNET_CONFIG: Readonly<UnetConfig> = Object.freeze({
  inChannels: 1,
  outChannels: 2,
  channels: Object.freeze([16, 32, 64, 128, 256]),
  strides: Object.freeze([2, 2, 2, 2]),
  kernelSize: 3,
  upKernelSize: 3,
  numResUnits: 2,
});

/** MONAI `Convolution`: conv (or transposed conv) then optionally BatchNorm + PReLU ("NDA"). */
export interface ConvolutionModule {
  kind: 'convolution';
  /** state_dict prefix: keys are `<prefix>.conv.weight`, `<prefix>.adn.N.*`, `<prefix>.adn.A.weight`. */
  prefix: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
  /** Transposed only: MONAI uses `stride - 1`, so the output is exactly `stride * input`. */
  outputPadding: number;
  transposed: boolean;
  /** False for MONAI's `conv_only` (the network's very last conv): no norm, no activation. */
  normAct: boolean;
}

/** The plain Conv3d MONAI's ResidualUnit uses to match the conv path's channels and stride. */
export interface ResidualConv {
  /** Keys `<prefix>.weight`, `<prefix>.bias`. */
  prefix: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** MONAI `ResidualUnit`: `conv(x) + residual(x)`, residual = identity when null. */
export interface ResidualUnitModule {
  kind: 'residualUnit';
  prefix: string;
  units: ConvolutionModule[];
  residual: ResidualConv | null;
}

/** `nn.Sequential`: modules applied in order. */
export interface SequentialModule {
  kind: 'sequential';
  prefix: string;
  items: UnetModule[];
}

/** MONAI `SkipConnection` (mode "cat", dim 1): `cat([x, submodule(x)], channel axis)`. */
export interface SkipModule {
  kind: 'skip';
  prefix: string;
  submodule: UnetModule;
}

export type UnetModule = ConvolutionModule | ResidualUnitModule | SequentialModule | SkipModule;

/** One state_dict entry; `buffer` entries (BN running stats, counters) are not parameters. */
export interface StateDictEntry {
  name: string;
  shape: number[];
  kind: 'parameter' | 'buffer';
}

function checkPositiveInt(value: unknown, name: string): void {
  if (typeof value !== 'number') throw expectedType('a positive integer', name, value);
  if (!Number.isInteger(value) || value < 1) throw expectedRange('a positive integer', name, value);
}

/** Validates a config the way MONAI's constructor does (plus odd kernels, which "same" padding needs). */
export function checkUnetConfig(config: UnetConfig): void {
  if (typeof config !== 'object' || config === null) throw expectedType('a UNet config object', 'config', config);
  checkPositiveInt(config.inChannels, 'config.inChannels');
  checkPositiveInt(config.outChannels, 'config.outChannels');
  if (!Array.isArray(config.channels)) throw expectedType('an array of channel counts', 'config.channels', config.channels);
  if (config.channels.length < 2) throw expectedRange('at least 2 levels', 'config.channels', config.channels);
  config.channels.forEach((c, i) => checkPositiveInt(c, `config.channels[${i}]`));
  if (!Array.isArray(config.strides)) throw expectedType('an array of strides', 'config.strides', config.strides);
  if (config.strides.length < config.channels.length - 1) {
    throw expectedRange(`at least ${config.channels.length - 1} strides`, 'config.strides', config.strides);
  }
  config.strides.forEach((s, i) => checkPositiveInt(s, `config.strides[${i}]`));
  for (const key of ['kernelSize', 'upKernelSize'] as const) {
    checkPositiveInt(config[key], `config.${key}`);
    if (config[key] % 2 !== 1) throw expectedRange('an odd kernel size', `config.${key}`, config[key]);
  }
  if (typeof config.numResUnits !== 'number') throw expectedType('a non-negative integer', 'config.numResUnits', config.numResUnits);
  if (!Number.isInteger(config.numResUnits) || config.numResUnits < 0) {
    throw expectedRange('a non-negative integer', 'config.numResUnits', config.numResUnits);
  }
}

function convolution(
  prefix: string,
  inChannels: number,
  outChannels: number,
  kernel: number,
  stride: number,
  transposed: boolean,
  normAct: boolean,
): ConvolutionModule {
  return {
    kind: 'convolution',
    prefix,
    inChannels,
    outChannels,
    kernel,
    stride,
    // MONAI: padding = same_padding(kernel) = (k - 1) / 2; output_padding = stride - 1.
    padding: (kernel - 1) / 2,
    outputPadding: transposed ? stride - 1 : 0,
    transposed,
    normAct,
  };
}

function residualUnit(
  prefix: string,
  inChannels: number,
  outChannels: number,
  stride: number,
  kernel: number,
  subunits: number,
  lastConvOnly: boolean,
): ResidualUnitModule {
  const count = Math.max(1, subunits);
  const units: ConvolutionModule[] = [];
  for (let su = 0; su < count; su++) {
    // Only the first subunit changes channels and stride.
    units.push(
      convolution(
        `${prefix}.conv.unit${su}`,
        su === 0 ? inChannels : outChannels,
        outChannels,
        kernel,
        su === 0 ? stride : 1,
        false,
        !(lastConvOnly && su === count - 1),
      ),
    );
  }
  let residual: ResidualConv | null = null;
  if (stride !== 1 || inChannels !== outChannels) {
    // A channel-only change uses a 1x1x1 conv without padding; otherwise the conv path's kernel.
    const rKernel = stride === 1 ? 1 : kernel;
    residual = {
      prefix: `${prefix}.residual`,
      inChannels,
      outChannels,
      kernel: rKernel,
      stride,
      padding: stride === 1 ? 0 : (kernel - 1) / 2,
    };
  }
  return { kind: 'residualUnit', prefix, units, residual };
}

/** The module tree of `UNet(...).model`, prefixes as in its state_dict. */
export function unetModules(config: UnetConfig = DEFAULT_UNET_CONFIG): UnetModule {
  checkUnetConfig(config);
  const { kernelSize, upKernelSize, numResUnits } = config;

  const downLayer = (prefix: string, inc: number, outc: number, stride: number): UnetModule =>
    numResUnits > 0
      ? residualUnit(prefix, inc, outc, stride, kernelSize, numResUnits, false)
      : convolution(prefix, inc, outc, kernelSize, stride, false, true);

  const upLayer = (prefix: string, inc: number, outc: number, stride: number, isTop: boolean): UnetModule => {
    if (numResUnits === 0) return convolution(prefix, inc, outc, upKernelSize, stride, true, !isTop);
    return {
      kind: 'sequential',
      prefix,
      items: [
        convolution(`${prefix}.0`, inc, outc, upKernelSize, stride, true, true),
        residualUnit(`${prefix}.1`, outc, outc, 1, kernelSize, 1, isTop),
      ],
    };
  };

  // MONAI's _create_block: Sequential(down, SkipConnection(subblock), up), recursing to the bottom.
  const createBlock = (prefix: string, inc: number, outc: number, level: number, isTop: boolean): UnetModule => {
    const c = config.channels[level];
    const s = config.strides[level];
    const subPrefix = `${prefix}.1.submodule`;
    let sub: UnetModule;
    let upc: number;
    if (config.channels.length - level > 2) {
      sub = createBlock(subPrefix, c, c, level + 1, false);
      upc = c * 2;
    } else {
      const bottom = config.channels[level + 1];
      sub = downLayer(subPrefix, c, bottom, 1);
      upc = c + bottom;
    }
    return {
      kind: 'sequential',
      prefix,
      items: [
        downLayer(`${prefix}.0`, inc, c, s),
        { kind: 'skip', prefix: `${prefix}.1`, submodule: sub },
        upLayer(`${prefix}.2`, upc, outc, s, isTop),
      ],
    };
  };

  return createBlock('model', config.inChannels, config.outChannels, 0, true);
}

function convolutionEntries(m: ConvolutionModule, out: StateDictEntry[]): void {
  const k = m.kernel;
  // PyTorch: Conv3d weight (out, in, k, k, k); ConvTranspose3d weight (in, out, k, k, k).
  const weightShape = m.transposed ? [m.inChannels, m.outChannels, k, k, k] : [m.outChannels, m.inChannels, k, k, k];
  out.push({ name: `${m.prefix}.conv.weight`, shape: weightShape, kind: 'parameter' });
  out.push({ name: `${m.prefix}.conv.bias`, shape: [m.outChannels], kind: 'parameter' });
  if (!m.normAct) return;
  const n = `${m.prefix}.adn.N`;
  out.push({ name: `${n}.weight`, shape: [m.outChannels], kind: 'parameter' });
  out.push({ name: `${n}.bias`, shape: [m.outChannels], kind: 'parameter' });
  out.push({ name: `${n}.running_mean`, shape: [m.outChannels], kind: 'buffer' });
  out.push({ name: `${n}.running_var`, shape: [m.outChannels], kind: 'buffer' });
  out.push({ name: `${n}.num_batches_tracked`, shape: [], kind: 'buffer' });
  // PReLU with one shared slope (MONAI's Act.PRELU default num_parameters=1).
  out.push({ name: `${m.prefix}.adn.A.weight`, shape: [1], kind: 'parameter' });
}

function collectEntries(m: UnetModule, out: StateDictEntry[]): void {
  switch (m.kind) {
    case 'convolution':
      convolutionEntries(m, out);
      return;
    case 'residualUnit':
      for (const unit of m.units) convolutionEntries(unit, out);
      if (m.residual) {
        const r = m.residual;
        const k = r.kernel;
        out.push({ name: `${r.prefix}.weight`, shape: [r.outChannels, r.inChannels, k, k, k], kind: 'parameter' });
        out.push({ name: `${r.prefix}.bias`, shape: [r.outChannels], kind: 'parameter' });
      }
      return;
    case 'sequential':
      for (const item of m.items) collectEntries(item, out);
      return;
    case 'skip':
      collectEntries(m.submodule, out);
      return;
  }
}

/** Every state_dict key of the UNet with its shape, in `model.state_dict()` order. */
export function unetStateDictSpec(config: UnetConfig = DEFAULT_UNET_CONFIG): StateDictEntry[] {
  const out: StateDictEntry[] = [];
  collectEntries(unetModules(config), out);
  return out;
}

/** Number of trainable parameters (4,808,917 for the default config). */
export function unetParameterCount(config: UnetConfig = DEFAULT_UNET_CONFIG): number {
  let total = 0;
  for (const e of unetStateDictSpec(config)) {
    if (e.kind === 'parameter') total += e.shape.reduce((a, b) => a * b, 1);
  }
  return total;
}

/** Element count of a state_dict shape (a 0-d tensor such as num_batches_tracked has 1). */
export function shapeElementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
