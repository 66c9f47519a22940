import { describe, expect, it } from 'vitest';
import {
  DEFAULT_UNET_CONFIG,
  unetModules,
  unetParameterCount,
  unetStateDictSpec,
  type UnetConfig,
} from '../../../src/model/unet-architecture.js';
import { stateDictFixtures, toUnetConfig } from './unet-fixtures.js';

describe('unetStateDictSpec', () => {
  const fixtures = stateDictFixtures();

  it('has the 148 keys and 4,808,917 parameters the spec states for the bundle', () => {
    const spec = unetStateDictSpec(DEFAULT_UNET_CONFIG);
    expect(spec).toHaveLength(148);
    expect(unetParameterCount(DEFAULT_UNET_CONFIG)).toBe(4_808_917);
    expect(spec[0]).toEqual({ name: 'model.0.conv.unit0.conv.weight', shape: [16, 1, 3, 3, 3], kind: 'parameter' });
    // ConvTranspose3d weights are (in, out, k, k, k): 256 + 128 concatenated channels in.
    expect(spec.find((e) => e.name === 'model.1.submodule.1.submodule.1.submodule.2.0.conv.weight')?.shape).toEqual([
      384, 64, 3, 3, 3,
    ]);
  });

  for (const [name, fixture] of Object.entries(fixtures)) {
    it(`matches the real MONAI UNet state_dict, in order (${name})`, () => {
      const config = toUnetConfig(fixture.config);
      const ours = unetStateDictSpec(config).map((e) => [e.name, e.shape]);
      expect(ours).toEqual(fixture.keys);
      expect(unetParameterCount(config)).toBe(fixture.parameterCount);
    });
  }

  it('is the bundle config by default', () => {
    expect(unetStateDictSpec()).toEqual(unetStateDictSpec(toUnetConfig(fixtures.bundle.config)));
  });

  it('marks BatchNorm statistics as buffers, not parameters', () => {
    const kinds = new Map(unetStateDictSpec().map((e) => [e.name, e.kind]));
    expect(kinds.get('model.0.conv.unit0.adn.N.running_var')).toBe('buffer');
    expect(kinds.get('model.0.conv.unit0.adn.N.num_batches_tracked')).toBe('buffer');
    expect(kinds.get('model.0.conv.unit0.adn.N.weight')).toBe('parameter');
    expect(kinds.get('model.0.conv.unit0.adn.A.weight')).toBe('parameter');
  });

  it('describes the top of the network as MONAI builds it', () => {
    const model = unetModules();
    expect(model.kind).toBe('sequential');
    if (model.kind !== 'sequential') return;
    const [down, skip, up] = model.items;
    expect(down).toMatchObject({ kind: 'residualUnit', residual: { kernel: 3, stride: 2, padding: 1 } });
    expect(skip.kind).toBe('skip');
    // The last conv is conv_only (no BN/PReLU) and its residual unit adds the identity.
    expect(up).toMatchObject({
      kind: 'sequential',
      items: [
        { kind: 'convolution', transposed: true, stride: 2, outputPadding: 1, normAct: true, inChannels: 32, outChannels: 2 },
        { kind: 'residualUnit', residual: null, units: [{ normAct: false, inChannels: 2, outChannels: 2 }] },
      ],
    });
  });

  it('rejects configs MONAI rejects', () => {
    const bad = (patch: Partial<UnetConfig>) => () => unetStateDictSpec({ ...DEFAULT_UNET_CONFIG, ...patch });
    expect(bad({ channels: [16] })).toThrow(RangeError);
    expect(bad({ strides: [2, 2, 2] })).toThrow(/Expected at least 4 strides for config.strides/);
    expect(bad({ kernelSize: 4 })).toThrow(/odd kernel size/);
    expect(bad({ numResUnits: -1 })).toThrow(RangeError);
    expect(bad({ inChannels: 1.5 })).toThrow(/Expected a positive integer for config.inChannels but received 1.5/);
    expect(bad({ channels: 'abc' as unknown as number[] })).toThrow(TypeError);
  });

  it('ignores strides beyond the levels, as MONAI does', () => {
    const extra = { ...DEFAULT_UNET_CONFIG, strides: [2, 2, 2, 2, 2, 2] };
    expect(unetStateDictSpec(extra)).toEqual(unetStateDictSpec());
  });
});
