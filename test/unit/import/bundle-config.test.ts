import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSpleenTrtError } from '../../../src/errors.js';
import { parseBundleConfig, readBundleConfig } from '../../../src/model/bundle-config.js';
import { BUNDLE_PIPELINE } from '../../../src/model/manifest.js';
import { DEFAULT_UNET_CONFIG } from '../../../src/model/unet-architecture.js';
import { fixtureBytes, TINY_BUNDLE, tinyConfig } from './import-fixtures.js';

// The tests edit parsed JSON freely; a precise type for every MONAI config shape would add nothing.
type Config = any;

const spleenInference = (): Config => JSON.parse(new TextDecoder().decode(fixtureBytes('spleen-configs/inference.json')));
const spleenMetadata = (): Config => JSON.parse(new TextDecoder().decode(fixtureBytes('spleen-configs/metadata.json')));

function refusal(mutate: (c: Config) => void): string {
  const config = spleenInference();
  mutate(config);
  try {
    parseBundleConfig(config, spleenMetadata(), 'inference.json');
  } catch (error) {
    if (isSpleenTrtError(error, 'ERR_MODEL_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected ERR_MODEL_INVALID');
}

function accepted(mutate: (c: Config) => void) {
  const config = spleenInference();
  mutate(config);
  return parseBundleConfig(config, spleenMetadata(), 'inference.json');
}

const pre = (c: Config) => c.preprocessing.transforms as Config[];
const post = (c: Config) => c.postprocessing.transforms as Config[];
const find = (list: Config[], name: string) => list.find((t) => t._target_ === name);

describe('parseBundleConfig', () => {
  it("reads the spleen bundle's own configs (v0.5.9) as the spec's pipeline and network", () => {
    const bundle = parseBundleConfig(spleenInference(), spleenMetadata(), 'inference.json');
    expect(bundle.pipeline).toEqual(BUNDLE_PIPELINE);
    expect(bundle.network).toEqual({ ...DEFAULT_UNET_CONFIG, channels: [...DEFAULT_UNET_CONFIG.channels], strides: [...DEFAULT_UNET_CONFIG.strides] });
    expect(bundle.labels).toEqual({ '0': 'background', '1': 'spleen' });
    expect(bundle).toMatchObject({ name: 'Spleen CT segmentation', version: '0.5.9', monaiVersion: '1.4.0' });
    expect(bundle.intendedUse).toBe('This is an example, not to be used for diagnostic purposes');
  });

  it('reads another bundle of the family with its own parameters (tiny test bundle on disk)', async () => {
    const bundle = await readBundleConfig(TINY_BUNDLE);
    expect(bundle.network).toEqual(tinyConfig());
    expect(bundle.pipeline).toEqual({
      pixdimMm: [1.25, 1.5, 2.5],
      intensity: { aMin: -100, aMax: 240, bMin: 0, bMax: 1, clip: true },
      roiSize: [64, 64, 48],
      swBatchSize: 2,
      overlap: 0.25,
      mode: 'constant',
    });
    expect(bundle).toMatchObject({ name: 'Tiny spleen test bundle', version: '0.0.3' });
  });

  it('refuses transforms outside the supported chain, naming them', () => {
    expect(refusal((c) => pre(c).splice(5, 0, { _target_: 'NormalizeIntensityd', keys: 'image' }))).toMatch(
      /preprocessing\[5\] is NormalizeIntensityd, which this package cannot reproduce/,
    );
    expect(refusal((c) => pre(c).splice(3, 0, { _target_: 'CropForegroundd', keys: 'image', source_key: 'image' }))).toMatch(/CropForegroundd/);
    expect(refusal((c) => post(c).splice(3, 0, { _target_: 'KeepLargestConnectedComponentd', keys: 'pred' }))).toMatch(
      /postprocessing\[3\] is KeepLargestConnectedComponentd/,
    );
    expect(refusal((c) => pre(c).splice(3, 2, pre(c)[4], pre(c)[3]))).toMatch(/Spacingd comes after ScaleIntensityRanged/);
    expect(refusal((c) => pre(c).splice(3, 1))).toMatch(/preprocessing has no Spacingd/);
  });

  it('refuses arguments that change the numbers, naming transform and value', () => {
    expect(refusal((c) => (find(pre(c), 'Orientationd').axcodes = 'LPS'))).toMatch(/Orientationd axcodes = "LPS"/);
    expect(refusal((c) => (find(pre(c), 'Spacingd').mode = 'nearest'))).toMatch(/Spacingd mode = "nearest"/);
    expect(refusal((c) => (find(pre(c), 'Spacingd').padding_mode = 'zeros'))).toMatch(/\(Spacingd\) sets padding_mode = "zeros"/);
    expect(refusal((c) => (find(pre(c), 'Spacingd').pixdim = [1.5, 1.5, -1]))).toMatch(/Spacingd pixdim/);
    expect(refusal((c) => (find(pre(c), 'ScaleIntensityRanged').b_min = null))).toMatch(/ScaleIntensityRanged needs "b_min"/);
    expect(refusal((c) => Object.assign(find(post(c), 'Activationsd'), { softmax: false, sigmoid: true }))).toMatch(/sets sigmoid = true/);
    expect(refusal((c) => delete find(post(c), 'Invertd').nearest_interp)).toMatch(/Invertd nearest_interp = true/);
    expect(refusal((c) => (find(post(c), 'AsDiscreted').threshold = 0.5))).toMatch(/\(AsDiscreted\) sets threshold = 0\.5/);
    expect(refusal((c) => (c.inferer.sigma_scale = 0.25))).toMatch(/sigma_scale/);
    expect(refusal((c) => (c.inferer = { _target_: 'SimpleInferer' }))).toMatch(/inferer is SimpleInferer; this package runs SlidingWindowInferer only/);
  });

  it('refuses networks it cannot build', () => {
    expect(refusal((c) => (c.network_def = { _target_: 'SegResNet', spatial_dims: 3 }))).toMatch(/network_def is SegResNet; this package runs MONAI's UNet only/);
    expect(refusal((c) => (c.network_def.norm = 'instance'))).toMatch(/norm = "instance"/);
    expect(refusal((c) => delete c.network_def.norm)).toMatch(/instance \(MONAI default\)/);
    expect(refusal((c) => (c.network_def.act = 'relu'))).toMatch(/act = "relu"/);
    expect(refusal((c) => (c.network_def.in_channels = 4))).toMatch(/in_channels is 4/);
    expect(refusal((c) => (c.network_def.strides = [2, 2]))).toMatch(/at least 4 strides/);
    expect(refusal((c) => (c.network_def.kernel_size = [3, 3, 1]))).toMatch(/only cubic kernels/);
  });

  it('accepts what does not change the numbers: eval-mode dropout, disabled transforms, full class paths, gaussian blending', () => {
    expect(accepted((c) => (c.network_def.dropout = 0.2)).network).toEqual(accepted(() => undefined).network);
    expect(accepted((c) => pre(c).splice(5, 0, { _target_: 'NormalizeIntensityd', keys: 'image', _disabled_: true })).pipeline).toEqual(BUNDLE_PIPELINE);
    expect(accepted((c) => (find(pre(c), 'Spacingd')._target_ = 'monai.transforms.Spacingd')).pipeline).toEqual(BUNDLE_PIPELINE);
    expect(accepted((c) => (c.inferer.mode = 'gaussian')).pipeline.mode).toBe('gaussian');
  });

  it('follows @ references and refuses $ expressions and reference cycles', () => {
    const withRefs = accepted((c) => {
      c.patch = [64, 80, 96];
      c.inferer.roi_size = '@patch';
      c.inferer.sw_batch_size = '@network_def::out_channels';
    });
    expect(withRefs.pipeline.roiSize).toEqual([64, 80, 96]);
    expect(withRefs.pipeline.swBatchSize).toBe(2);
    expect(refusal((c) => (c.inferer.overlap = '$0.25 * 2'))).toMatch(/inferer\.overlap is the Python expression "\$0\.25 \* 2"/);
    expect(
      refusal((c) => {
        c.a = '@b';
        c.b = '@a';
        c.inferer.overlap = '@a';
      }),
    ).toMatch(/reference cycle/);
    expect(refusal((c) => (c.inferer.overlap = '@nothing'))).toMatch(/reference "@nothing" points to nothing/);
  });
});

describe('readBundleConfig', () => {
  it('says what is missing: no bundle, or YAML configs', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spleen-trt-bundle-'));
    await expect(readBundleConfig(dir)).rejects.toMatchObject({ code: 'ERR_FILE_NOT_FOUND', message: expect.stringMatching(/a MONAI bundle directory\?/) });
    mkdirSync(path.join(dir, 'configs'));
    writeFileSync(path.join(dir, 'configs', 'inference.yaml'), 'network_def: {}\n');
    await expect(readBundleConfig(dir)).rejects.toMatchObject({ code: 'ERR_MODEL_INVALID', message: expect.stringMatching(/YAML bundle configs are not supported/) });
    writeFileSync(path.join(dir, 'configs', 'inference.json'), '{ "network_def": ');
    await expect(readBundleConfig(dir)).rejects.toMatchObject({ code: 'ERR_MODEL_INVALID', message: expect.stringMatching(/is not valid JSON/) });
  });
});
