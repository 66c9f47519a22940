#!/usr/bin/env python3
"""Train the MONAI spleen_ct_segmentation bundle's UNet on spleen-trt phantoms: the recipe of the
package's demo model. Developer tooling only; the package itself never runs Python.

Needs MONAI 1.4.0 (its source on PYTHONPATH is enough), torch (Debian's python3-torch 1.13 on the
CPU works; a CUDA build is used when a GPU is present), nibabel and numpy.

What it reproduces from the bundle's configs/train.json (v0.5.x):
  network   UNet(3 dims, 1 -> 2 channels, channels 16-32-64-128-256, strides 2-2-2-2,
            num_res_units 2, batch norm): the same 148 state_dict keys as the bundle's model.pt
  transforms LoadImaged -> EnsureChannelFirstd -> Orientationd(RAS) -> Spacingd(1.5, 1.5, 2.0;
            bilinear / nearest) -> ScaleIntensityRanged(-57..164 -> 0..1, clip) -> EnsureTyped,
            cached; then RandCropByPosNegLabeld(96^3, pos 1, neg 1, num_samples 4,
            image_threshold 0) per draw (after a SpatialPadd to 96 for axes shorter than that)
  loss      DiceCELoss(include_background False, to_onehot_y, softmax, squared_pred, batch,
            smooth 1e-5, lambda_dice 0.5, lambda_ce 0.5)
  optimiser Adam, lr 1e-4; batch size 2 (x 4 crops = 8 patches per step)
  validation sliding window 96^3, sw_batch_size 4, overlap 0.5, softmax + argmax, mean Dice of
            the foreground on the preprocessed grid; the best model is kept
  output    a bare state_dict (what the bundle's CheckpointSaver writes as models/model.pt)
Differences: no AMP on the CPU; set_determinism(seed) as the bundle's "initialize" does.

Typical use (from the repository root):
  npm run build
  node dist/cli/main.js phantom -o data/phantoms-train --count 40 --seed 1
  node dist/cli/main.js phantom -o data/phantoms-val --count 10 --seed 2
  PYTHONPATH=/path/to/monai-1.4.0 python3 scripts/train/train_demo_model.py \
      --train data/phantoms-train --val data/phantoms-val -o out/model.pt --max-steps 4000
  node dist/cli/main.js import out/model.pt -o out/spleen-phantom-model
  node dist/cli/main.js phantom -o data/phantoms-test --count 10 --seed 3
  node dist/cli/main.js evaluate --images data/phantoms-test/images \
      --labels data/phantoms-test/labels --model out/spleen-phantom-model

A smoke test (a few steps, loss printed per step; no validation):
  PYTHONPATH=... python3 scripts/train/train_demo_model.py --train data/phantoms-train \
      -o /tmp/smoke.pt --max-steps 6 --cases 2

Cost: one step is 8 forward/backward passes of 96^3 patches, about 80 GFLOP; on 2 shared CPU
cores that is roughly 40-60 s, on a 16-core CPU about 5-10 s, on a GPU well under 1 s. The
bundle trained 10,080 steps on real CT; phantoms are easier, and a few thousand steps are expected
to reach a validation Dice of 0.90+ (hours on a many-core CPU or minutes on a GPU, not 2 cores).
"""
import argparse
import glob
import json
import math
import os
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--train', required=True, help='phantom directory with images/ and labels/ (spleen-trt phantom -o)')
    p.add_argument('--val', help='phantom directory for validation (skipped when absent)')
    p.add_argument('-o', '--output', required=True, help='where to save the best bare state_dict (model.pt)')
    p.add_argument('--max-steps', type=int, default=4000, help='optimiser steps (default 4000)')
    p.add_argument('--max-minutes', type=float, default=0, help='stop after this many minutes (0 = no limit)')
    p.add_argument('--val-every', type=int, default=200, help='validate every N steps (default 200)')
    p.add_argument('--cases', type=int, default=0, help='use only the first N training cases (0 = all)')
    p.add_argument('--val-cases', type=int, default=0, help='use only the first N validation cases (0 = all)')
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--num-samples', type=int, default=4, help='crops per image per draw (bundle: 4)')
    p.add_argument('--roi', type=int, default=96, help='crop edge in voxels (bundle: 96)')
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--cosine', action='store_true',
                   help='decay the learning rate to 0 along a cosine over --max-steps (not in the bundle; helps short CPU runs)')
    p.add_argument('--seed', type=int, default=123, help='set_determinism seed (bundle: 123)')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = torch default)')
    p.add_argument('--workers', type=int, default=0, help='DataLoader workers (default 0: crops are cheap next to the network)')
    p.add_argument('--resume', help='a .last.pt checkpoint to continue from')
    p.add_argument('--log', help='also append one JSON line per step / validation to this file')
    return p.parse_args(argv)


def case_list(directory, limit):
    images = sorted(p for p in glob.glob(os.path.join(directory, 'images', '*.nii*')) if not os.path.basename(p).startswith('.'))
    cases = []
    for image in images:
        label = os.path.join(directory, 'labels', os.path.basename(image))
        if not os.path.exists(label):
            sys.exit(f'error: no label for {image} (expected {label})')
        cases.append({'image': image, 'label': label})
    if not cases:
        sys.exit(f'error: no images in {directory}/images')
    return cases[:limit] if limit > 0 else cases


def main(argv):
    args = parse_args(argv)
    import torch
    import monai
    from monai.data import CacheDataset, DataLoader, decollate_batch
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceCELoss
    from monai.metrics import DiceMetric
    from monai.networks.nets import UNet
    from monai.transforms import (AsDiscrete, Compose, EnsureChannelFirstd, EnsureTyped, FgBgToIndicesd, LoadImaged, Orientationd,
                                  RandCropByPosNegLabeld, ScaleIntensityRanged, SpatialPadd, Spacingd)
    from monai.utils import set_determinism

    if monai.__version__ != '1.4.0':
        print(f'warning: MONAI {monai.__version__}; the recipe was written against 1.4.0', file=sys.stderr)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    set_determinism(seed=args.seed)
    device = torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')

    deterministic = [
        LoadImaged(keys=['image', 'label']),
        EnsureChannelFirstd(keys=['image', 'label']),
        Orientationd(keys=['image', 'label'], axcodes='RAS'),
        Spacingd(keys=['image', 'label'], pixdim=[1.5, 1.5, 2.0], mode=['bilinear', 'nearest']),
        ScaleIntensityRanged(keys='image', a_min=-57, a_max=164, b_min=0, b_max=1, clip=True),
        EnsureTyped(keys=['image', 'label']),
    ]
    # Not in the bundle's train.json (its CTs are all larger than the crop): zero-pad any axis
    # shorter than the crop, as sliding-window inference does, so RandCropByPosNegLabeld accepts it.
    pad = [SpatialPadd(keys=['image', 'label'], spatial_size=[args.roi] * 3)]
    # The foreground/background voxel lists are computed once and cached (MONAI's documented use of
    # FgBgToIndicesd): the same crops as computing them per draw, without scanning the volume each step.
    indices = [FgBgToIndicesd(keys='label', image_key='image', image_threshold=0)]
    random_crop = RandCropByPosNegLabeld(
        keys=['image', 'label'], label_key='label', spatial_size=[args.roi] * 3, pos=1, neg=1,
        num_samples=args.num_samples, image_key='image', image_threshold=0,
        fg_indices_key='label_fg_indices', bg_indices_key='label_bg_indices',
    )
    train_cases = case_list(args.train, args.cases)
    t0 = time.time()
    # copy_cache=False: the random crop reads the cached item without changing it, and deep-copying
    # the cached index lists every step would cost more than the crop.
    train_ds = CacheDataset(data=train_cases, transform=Compose(deterministic + pad + indices + [random_crop]), cache_rate=1.0,
                            num_workers=max(1, args.workers), copy_cache=False)
    train_loader = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
    val_loader = None
    if args.val:
        val_ds = CacheDataset(data=case_list(args.val, args.val_cases), transform=Compose(deterministic), cache_rate=1.0, num_workers=max(1, args.workers))
        val_loader = DataLoader(val_ds, batch_size=1, shuffle=False, num_workers=args.workers)
    print(f'cached {len(train_cases)} training case(s) in {time.time() - t0:.0f} s on {device}', flush=True)

    # The bundle's network_def, verbatim.
    model = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
                 num_res_units=2, norm='batch').to(device)
    loss_fn = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, squared_pred=True, batch=True,
                         smooth_nr=1e-5, smooth_dr=1e-5, lambda_dice=0.5, lambda_ce=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def learning_rate(at_step):
        if not args.cosine:
            return args.lr
        return 0.5 * args.lr * (1 + math.cos(math.pi * min(at_step, args.max_steps) / args.max_steps))
    step, best = 0, -1.0
    last_path = os.path.splitext(args.output)[0] + '.last.pt'
    if args.resume:
        state = torch.load(args.resume, map_location=device)
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        step, best = state['step'], state['best']
        print(f'resumed at step {step}, best Dice {best:.4f}', flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    log = open(args.log, 'a') if args.log else None

    def record(entry):
        print(json.dumps(entry), flush=True)
        if log:
            log.write(json.dumps(entry) + '\n')
            log.flush()

    post_pred = AsDiscrete(argmax=True, to_onehot=2)
    post_label = AsDiscrete(to_onehot=2)
    dice_metric = DiceMetric(include_background=False, reduction='mean')

    def validate():
        model.eval()
        with torch.no_grad():
            for batch in val_loader:
                image, label = batch['image'].to(device), batch['label'].to(device)
                logits = sliding_window_inference(image, [96, 96, 96], 4, model, overlap=0.5)
                preds = [post_pred(torch.softmax(x, 0)) for x in decollate_batch(logits)]
                labels = [post_label(y) for y in decollate_batch(label)]
                dice_metric(y_pred=preds, y=labels)
        value = dice_metric.aggregate().item()
        dice_metric.reset()
        model.train()
        return value

    started = time.time()
    model.train()
    done = False
    while not done:
        for batch in train_loader:
            step_started = time.time()
            image, label = batch['image'].to(device), batch['label'].to(device)
            for group in optimizer.param_groups:
                group['lr'] = learning_rate(step)
            optimizer.zero_grad()
            loss = loss_fn(model(image), label)
            loss.backward()
            optimizer.step()
            step += 1
            record({'step': step, 'loss': round(loss.item(), 5), 'step_s': round(time.time() - step_started, 2)})
            out_of_time = args.max_minutes > 0 and time.time() - started > args.max_minutes * 60
            last = step >= args.max_steps or out_of_time
            if val_loader is not None and (step % args.val_every == 0 or last):
                dice = validate()
                improved = dice > best
                if improved:
                    best = dice
                    # A bare state_dict, as the bundle's models/model.pt.
                    torch.save(model.state_dict(), args.output)
                record({'step': step, 'val_dice': round(dice, 5), 'best': round(best, 5), 'saved': improved})
            if step % 50 == 0 or last:
                torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict(), 'step': step, 'best': best}, last_path)
            if last:
                done = True
                break
    if val_loader is None:
        # Without validation the last weights are the result.
        torch.save(model.state_dict(), args.output)
    minutes = (time.time() - started) / 60
    print(f'{step} step(s) in {minutes:.1f} min ({60 * minutes / max(1, step):.1f} s/step); model: {args.output}'
          + (f', best validation Dice {best:.4f}' if best >= 0 else ''), flush=True)
    if log:
        log.close()


if __name__ == '__main__':
    main(sys.argv[1:])
