/**
 * Deterministic pseudo-random UNet weights: the embedded demo model and the test fixtures.
 *
 * PRNG: mulberry32 (32-bit counter `a += 0x6D2B79F5`, then an xorshift-multiply hash of the
 * counter), one stream for the whole network, drawn in state_dict order and C order within each
 * tensor; u = hash / 2^32 in [0, 1). Every value is `low + (high - low) * u` in float64, rounded
 * once to float32. Only +, *, / and sqrt are involved, all correctly rounded in IEEE 754, so a
 * port to another language (scripts/fixtures/make_unet_fixtures.py) reproduces the bits exactly.
 *
 * Distributions (variance 1 / fanIn, LeCun-uniform: with the residual additions this keeps the
 * bundle network's logits near unit scale, std ~0.7 for inputs in [0, 1); He's 2 / fanIn grows
 * them to ~10, where float32 summation-order noise alone nears the 1e-4 parity tolerance):
 * - conv weight: U(-b, b), b = sqrt(3 / fanIn), fanIn = inChannels * k^3, divided by stride^3 for
 *   transposed convs (each output voxel sees only 1/stride^3 of the kernel taps on average);
 * - conv bias, BN bias, BN running_mean: U(-0.1, 0.1);
 * - BN weight: U(0.8, 1.2); BN running_var: U(0.5, 1.5); num_batches_tracked: 0 (no draw);
 * - PReLU slope: U(0.15, 0.35) (PyTorch's default is 0.25).
 * Random BN statistics, rather than the identity, make BN folding and BN ordering observable.
 */
import { expectedRange, expectedType } from '../errors.js';
import {
  DEFAULT_UNET_CONFIG,
  unetModules,
  type ConvolutionModule,
  type UnetConfig,
  type UnetModule,
} from './unet-architecture.js';

/** mulberry32 as a function of its counter: returns the next u in [0, 1) and advances. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Draw = { name: string; count: number; low: number; high: number } | { name: string; count: number; zero: true };

function convDraws(m: ConvolutionModule, out: Draw[]): void {
  const k3 = m.kernel ** 3;
  const fanIn = m.transposed ? (m.inChannels * k3) / m.stride ** 3 : m.inChannels * k3;
  const b = Math.sqrt(3 / fanIn);
  out.push({ name: `${m.prefix}.conv.weight`, count: m.inChannels * m.outChannels * k3, low: -b, high: b });
  out.push({ name: `${m.prefix}.conv.bias`, count: m.outChannels, low: -0.1, high: 0.1 });
  if (!m.normAct) return;
  const n = `${m.prefix}.adn.N`;
  const c = m.outChannels;
  out.push({ name: `${n}.weight`, count: c, low: 0.8, high: 1.2 });
  out.push({ name: `${n}.bias`, count: c, low: -0.1, high: 0.1 });
  out.push({ name: `${n}.running_mean`, count: c, low: -0.1, high: 0.1 });
  out.push({ name: `${n}.running_var`, count: c, low: 0.5, high: 1.5 });
  out.push({ name: `${n}.num_batches_tracked`, count: 1, zero: true });
  out.push({ name: `${m.prefix}.adn.A.weight`, count: 1, low: 0.15, high: 0.35 });
}

function collectDraws(m: UnetModule, out: Draw[]): void {
  switch (m.kind) {
    case 'convolution':
      convDraws(m, out);
      return;
    case 'residualUnit': {
      for (const unit of m.units) convDraws(unit, out);
      const r = m.residual;
      if (r) {
        const k3 = r.kernel ** 3;
        const b = Math.sqrt(3 / (r.inChannels * k3));
        out.push({ name: `${r.prefix}.weight`, count: r.outChannels * r.inChannels * k3, low: -b, high: b });
        out.push({ name: `${r.prefix}.bias`, count: r.outChannels, low: -0.1, high: 0.1 });
      }
      return;
    }
    case 'sequential':
      for (const item of m.items) collectDraws(item, out);
      return;
    case 'skip':
      collectDraws(m.submodule, out);
  }
}

/**
 * The full state_dict (all keys of `unetStateDictSpec(config)`, num_batches_tracked included) filled
 * deterministically from `seed` (an integer, taken modulo 2^32).
 */
export function seededUnetWeights(seed: number, config: UnetConfig = DEFAULT_UNET_CONFIG): Map<string, Float32Array> {
  if (typeof seed !== 'number') throw expectedType('an integer', 'seed', seed);
  if (!Number.isSafeInteger(seed)) throw expectedRange('a safe integer', 'seed', seed);
  const draws: Draw[] = [];
  collectDraws(unetModules(config), draws);
  const next = mulberry32(seed);
  const weights = new Map<string, Float32Array>();
  for (const d of draws) {
    const values = new Float32Array(d.count);
    if (!('zero' in d)) {
      const span = d.high - d.low;
      for (let i = 0; i < d.count; i++) values[i] = d.low + span * next();
    }
    weights.set(d.name, values);
  }
  return weights;
}
