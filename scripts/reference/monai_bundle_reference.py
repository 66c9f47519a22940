#!/usr/bin/env python3
"""Runs the MONAI bundle spleen_ct_segmentation inference pipeline (configs/inference.json of
bundle v0.5.9) on NIfTI files with given UNet weights, and saves every stage, so spleen-trt's
TypeScript pipeline can be compared against the real thing.

Developer tooling only; the package never needs Python. Needs MONAI 1.4.0, torch, nibabel:
    PYTHONPATH=<monai-1.4.0-source> python3 scripts/reference/monai_bundle_reference.py \
        --weights weights.bin --out <dir> ct1.nii.gz [ct2.nii.gz ...]
`weights.bin` is the format `node scripts/reference/export-weights.mjs` writes: a little-endian
uint32 JSON length, the JSON {name: {shape, offset}} (offsets in float32 elements), then float32 data.

For each input <name> it writes into <out>/<name>/:
  <name>_trans.nii.gz   the bundle's own output (SaveImaged: float32 {0,1}, original grid)
  preprocessed.nii.gz   the network input (RAS, 1.5x1.5x2 mm, intensity-windowed), its affine
  logits.bin            float32 [2][n0][n1][n2] C order on the preprocessed grid (pre-softmax)
  probability.bin       float32 foreground probability on the original grid, C order (i, j, k)
  stages.json           shapes and affines
"""
import argparse
import json
import os
import struct
import sys

import nibabel as nib
import numpy as np
import torch

from monai.data import decollate_batch
from monai.inferers import SlidingWindowInferer
from monai.networks.nets import UNet
from monai.transforms import (Activationsd, AsDiscreted, Compose, EnsureChannelFirstd, EnsureTyped, Invertd,
                              LoadImaged, Orientationd, SaveImaged, ScaleIntensityRanged, Spacingd)


def load_weights(path):
    with open(path, 'rb') as f:
        (length,) = struct.unpack('<I', f.read(4))
        index = json.loads(f.read(length).decode('utf-8'))
        blob = np.frombuffer(f.read(), dtype='<f4')
    return {name: torch.from_numpy(blob[e['offset']:e['offset'] + int(np.prod(e['shape']))].reshape(e['shape']).copy())
            for name, e in index.items()}


def bundle_network(weights):
    net = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
               strides=(2, 2, 2, 2), num_res_units=2, norm='batch')
    # The bundle's checkpoint keys are the UNet's own state_dict keys ("model.0.conv...").
    net.load_state_dict(weights, strict=True)
    return net.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--weights', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--mode', default='constant')
    parser.add_argument('inputs', nargs='+')
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    net = bundle_network(load_weights(args.weights))

    for path in args.inputs:
        run_case(path, net, args.out, args.mode, save=True)


def bundle_preprocessing():
    return Compose([
        LoadImaged(keys='image'),
        EnsureChannelFirstd(keys='image'),
        Orientationd(keys='image', axcodes='RAS'),
        Spacingd(keys='image', pixdim=[1.5, 1.5, 2.0], mode='bilinear'),
        ScaleIntensityRanged(keys='image', a_min=-57, a_max=164, b_min=0, b_max=1, clip=True),
        EnsureTyped(keys='image'),
    ])


def run_case(path, net, out_dir, mode='constant', save=True):
    """Runs one NIfTI through the bundle pipeline; returns the stages as numpy arrays."""
    preprocessing = bundle_preprocessing()
    inferer = SlidingWindowInferer(roi_size=[96, 96, 96], sw_batch_size=4, overlap=0.5, mode=mode)
    name = os.path.basename(path).replace('.nii.gz', '').replace('.nii', '')
    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    data = preprocessing({'image': path})
    image = data['image']
    with torch.no_grad():
        logits = inferer(image.unsqueeze(0), net)[0]
    pred = logits.clone()
    # MetaTensor carries the applied-operations stack that Invertd needs.
    pred.copy_meta_from(image)
    item = {'image': image, 'pred': pred}
    softmax = Activationsd(keys='pred', softmax=True)(item)
    probs = Invertd(keys='pred', transform=preprocessing, orig_keys='image', nearest_interp=False,
                    to_tensor=True)(softmax)['pred']
    mask = AsDiscreted(keys='pred', argmax=True)({'pred': probs.clone()})
    stages = {
        'preprocessed': np.asarray(image[0], dtype=np.float32),
        'preprocessedAffine': np.asarray(image.affine, dtype=np.float64),
        'logits': np.asarray(logits, dtype=np.float32),
        'probability': np.asarray(probs[1], dtype=np.float32),
        'mask': np.asarray(mask['pred'][0], dtype=np.float32),
        'maskAffine': np.asarray(mask['pred'].affine, dtype=np.float64),
    }
    if not save:
        return stages
    SaveImaged(keys='pred', output_dir=out_dir, output_ext='.nii.gz', output_dtype=np.float32,
               output_postfix='trans', separate_folder=True, print_log=False)(mask)

    import nibabel as nib
    pre_affine = np.asarray(image.affine, dtype=np.float64)
    nib.save(nib.Nifti1Image(np.asarray(image[0], dtype=np.float32), pre_affine),
             os.path.join(case_dir, 'preprocessed.nii.gz'))
    np.ascontiguousarray(np.asarray(logits, dtype='<f4')).tofile(os.path.join(case_dir, 'logits.bin'))
    np.ascontiguousarray(np.asarray(probs[1], dtype='<f4')).tofile(os.path.join(case_dir, 'probability.bin'))
    with open(os.path.join(case_dir, 'stages.json'), 'w') as f:
        json.dump({
            'preprocessedShape': list(image.shape[1:]),
            'preprocessedAffine': pre_affine.tolist(),
            'originalShape': list(probs.shape[1:]),
            'originalAffine': np.asarray(probs.affine, dtype=np.float64).tolist(),
            'maskVoxels': int(np.asarray(mask['pred']).sum()),
        }, f, indent=1)
    print(f'{name}: preprocessed {list(image.shape[1:])}, mask voxels {int(np.asarray(mask["pred"]).sum())}',
          file=sys.stderr)
    return stages


if __name__ == '__main__':
    main()
