#!/usr/bin/env python3
"""Times MONAI's own CPU pipeline for the bundle spleen_ct_segmentation, end to end per volume, for
`node bench/monai-end2end.mjs` (which interleaves it with spleen-trt's end2end in the same run).

One run = the bundle's configs/inference.json on one NIfTI: LoadImaged -> EnsureChannelFirstd ->
Orientationd(RAS) -> Spacingd(1.5, 1.5, 2) -> ScaleIntensityRanged -> SlidingWindowInferer(96^3,
sw_batch_size 4, overlap 0.5) -> softmax -> Invertd -> AsDiscreted(argmax) -> SaveImaged(.nii.gz,
float32), the transforms built by scripts/reference/monai_bundle_reference.py (the parity
reference), so both time the same pipeline. Only the file stages that the reference saves for
comparison (logits, probability) are left out.

Developer tooling only (the package never needs Python). Needs MONAI's source (no pip here):
    PYTHONPATH=<monai-1.4.0-source> python3 bench/monai_pipeline_timing.py \
        --weights weights.bin --input ct.nii.gz --out <dir> [--threads 2]
It reads commands from stdin, one per line: `run` times one volume and prints
{"ms": ..., "maskVoxels": ...} as one JSON line; end of input ends it. The first line it prints is
{"ready": true, "monai": ..., "torch": ..., "threads": ...}.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'reference'))
from monai_bundle_reference import bundle_network, bundle_preprocessing, load_weights  # noqa: E402

import monai  # noqa: E402
from monai.inferers import SlidingWindowInferer  # noqa: E402
from monai.transforms import Activationsd, AsDiscreted, Invertd, SaveImaged  # noqa: E402


def run_once(path, net, out_dir):
    """The bundle's inference on one file, from reading it to the saved mask; returns mask voxels."""
    preprocessing = bundle_preprocessing()
    inferer = SlidingWindowInferer(roi_size=[96, 96, 96], sw_batch_size=4, overlap=0.5, mode='constant')
    image = preprocessing({'image': path})['image']
    with torch.no_grad():
        logits = inferer(image.unsqueeze(0), net)[0]
    logits.copy_meta_from(image)
    item = Activationsd(keys='pred', softmax=True)({'image': image, 'pred': logits})
    probs = Invertd(keys='pred', transform=preprocessing, orig_keys='image', nearest_interp=False,
                    to_tensor=True)(item)['pred']
    mask = AsDiscreted(keys='pred', argmax=True)({'pred': probs})
    SaveImaged(keys='pred', output_dir=out_dir, output_ext='.nii.gz', output_dtype=np.float32,
               output_postfix='trans', separate_folder=False, print_log=False)(mask)
    return int(np.asarray(mask['pred']).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--weights', required=True, help='weights.bin from scripts/reference/export-weights.mjs')
    parser.add_argument('--input', required=True, help='the NIfTI to segment')
    parser.add_argument('--out', required=True, help='directory for the saved masks')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='torch threads (default: all cores)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = bundle_network(load_weights(args.weights))
    os.makedirs(args.out, exist_ok=True)
    print(json.dumps({'ready': True, 'monai': monai.__version__, 'torch': torch.__version__,
                      'threads': torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() != 'run':
            continue
        start = time.perf_counter()
        voxels = run_once(args.input, net, args.out)
        ms = (time.perf_counter() - start) * 1000
        print(json.dumps({'ms': ms, 'maskVoxels': voxels}), flush=True)


if __name__ == '__main__':
    main()
