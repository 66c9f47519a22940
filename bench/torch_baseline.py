#!/usr/bin/env python3
"""The MONAI bundle's torch columns for `npm run bench -- --merge <json>`.

Times the bundle's UNet in PyTorch the way the bundle's speed table did: batch 1, the input
already on the GPU, CUDA events around the forward pass, the mean of 500 runs after warm-up;
fp32 and AMP (autocast float16) on the same weights that spleen-trt runs. Batch 4 (per window) is
timed too. Writes a JSON document that `spleen-trt bench --merge` adds as columns.

Developer tooling only (the package never needs Python). Needs torch (CUDA build for the bundle's
columns; `--device cpu` gives a CPU-only reference) and numpy. The network is
`monai.networks.nets.UNet` when MONAI is importable, otherwise a self-contained definition of
the same architecture (spec section 6) that loads the same 148 state_dict keys strictly.

    node scripts/reference/export-weights.mjs weights.bin model.pt  # a state_dict (the default's came from
                                                                    # scripts/train; without model.pt: seeded)
    python3 bench/torch_baseline.py --weights weights.bin --out torch.json
    npm run bench -- --merge torch.json

    # once, on a machine with MONAI: the self-contained UNet must match MONAI's on the CPU
    PYTHONPATH=<monai-src> python3 bench/torch_baseline.py --weights weights.bin --check
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import struct
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

CHANNELS = (16, 32, 64, 128, 256)
STRIDES = (2, 2, 2, 2)
ROI = (96, 96, 96)


def load_weights(path):
    """The export-weights.mjs format: uint32 LE JSON length, JSON {name: {shape, offset}}, float32 LE data."""
    with open(path, 'rb') as f:
        (length,) = struct.unpack('<I', f.read(4))
        index = json.loads(f.read(length).decode('utf-8'))
        blob = np.frombuffer(f.read(), dtype='<f4')
    weights = OrderedDict()
    for name, entry in index.items():
        count = int(np.prod(entry['shape'])) if entry['shape'] else 1
        array = blob[entry['offset']:entry['offset'] + count].reshape(entry['shape'])
        # num_batches_tracked is an int64 counter in torch; eval mode never reads it.
        dtype = torch.int64 if name.endswith('num_batches_tracked') else torch.float32
        weights[name] = torch.from_numpy(array.copy()).to(dtype)
    return weights


# ---------------------------------------------------------------- the architecture (spec section 6)

class Convolution(nn.Sequential):
    """conv (or transposed conv), then BatchNorm and a shared-slope PReLU unless conv_only.
    Submodule names `conv`, `adn.N`, `adn.A` are the bundle's state_dict keys."""

    def __init__(self, cin, cout, stride, transposed=False, conv_only=False, kernel=3):
        super().__init__()
        pad = (kernel - 1) // 2
        if transposed:
            self.conv = nn.ConvTranspose3d(cin, cout, kernel, stride=stride, padding=pad, output_padding=stride - 1)
        else:
            self.conv = nn.Conv3d(cin, cout, kernel, stride=stride, padding=pad)
        if not conv_only:
            self.adn = nn.Sequential(OrderedDict(N=nn.BatchNorm3d(cout), A=nn.PReLU(num_parameters=1)))


class ResidualUnit(nn.Module):
    """`subunits` Convolutions (the first with the stride) plus a residual path: identity when
    the shape is kept, else a conv (kernel 3 when strided, 1 when not)."""

    def __init__(self, cin, cout, stride, subunits, last_conv_only=False):
        super().__init__()
        units = OrderedDict()
        c, s = cin, stride
        for i in range(subunits):
            units[f'unit{i}'] = Convolution(c, cout, s, conv_only=last_conv_only and i == subunits - 1)
            c, s = cout, 1
        self.conv = nn.Sequential(units)
        if stride != 1 or cin != cout:
            k = 3 if stride != 1 else 1
            self.residual = nn.Conv3d(cin, cout, k, stride=stride, padding=(k - 1) // 2)
        else:
            self.residual = nn.Identity()

    def forward(self, x):
        return self.conv(x) + self.residual(x)


class SkipConnection(nn.Module):
    def __init__(self, submodule):
        super().__init__()
        self.submodule = submodule

    def forward(self, x):
        return torch.cat([x, self.submodule(x)], dim=1)


def level(cin, cout, channels, strides, is_top):
    """down -> skip(deeper levels) -> up, for one resolution level (num_res_units = 2)."""
    c, s = channels[0], strides[0]
    if len(channels) > 2:
        deeper = level(c, c, channels[1:], strides[1:], False)
        up_in = c * 2
    else:
        deeper = ResidualUnit(c, channels[1], 1, 2)  # the bottom
        up_in = c + channels[1]
    down = ResidualUnit(cin, c, s, 2)
    up = nn.Sequential(Convolution(up_in, cout, s, transposed=True), ResidualUnit(cout, cout, 1, 1, last_conv_only=is_top))
    return nn.Sequential(down, SkipConnection(deeper), up)


class BundleUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = level(1, 2, CHANNELS, STRIDES, True)

    def forward(self, x):
        return self.model(x)


def build_network(weights, impl):
    """The UNet with `weights` loaded strictly (every one of the 148 keys, nothing else)."""
    if impl in ('auto', 'monai'):
        try:
            from monai.networks.nets import UNet
            net = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=CHANNELS, strides=STRIDES,
                       num_res_units=2, norm='batch')
            impl = 'monai'
        except ImportError:
            if impl == 'monai':
                raise
            net, impl = BundleUNet(), 'builtin'
    else:
        net = BundleUNet()
    keys = list(net.state_dict().keys())
    if len(keys) != 148:
        raise SystemExit(f'expected 148 state_dict keys, the {impl} UNet has {len(keys)}')
    net.load_state_dict(weights, strict=True)
    return net.eval(), impl


# ---------------------------------------------------------------- statistics (as src/bench/sample-stats.ts)

def summarize(samples):
    s = sorted(samples)
    n = len(s)
    mean = sum(s) / n
    median = s[(n - 1) // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    stdev = math.sqrt(sum((x - mean) ** 2 for x in s) / (n - 1)) if n > 1 else 0.0
    rank = lambda p: s[min(n, max(1, math.ceil(p / 100 * n))) - 1]  # nearest rank
    return {'count': n, 'mean': mean, 'median': median, 'p90': rank(90), 'p95': rank(95), 'p99': rank(99),
            'min': s[0], 'max': s[-1], 'stdev': stdev, 'cv': stdev / mean if mean else 0.0}


def time_forward(net, x, iterations, warmup, amp, device):
    """Per-call ms: CUDA events on the current stream around the forward pass (input on the GPU),
    or perf_counter on the CPU. Warm-up calls are timed but not counted."""
    cuda = device.type == 'cuda'

    def once():
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            with torch.autocast('cuda', dtype=torch.float16, enabled=amp):
                net(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        net(x)
        return (time.perf_counter() - t0) * 1000

    with torch.inference_mode():
        warm = [once() for _ in range(warmup)]
        samples = [once() for _ in range(iterations)]
    return samples, warm


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def check_against_monai(weights):
    """The self-contained UNet against MONAI's, same weights, same input, on the CPU."""
    try:
        import monai  # noqa: F401
    except ImportError:
        raise SystemExit('--check needs MONAI importable (PYTHONPATH=<monai-src>)')
    ours, _ = build_network(weights, 'builtin')
    theirs, _ = build_network(weights, 'monai')
    if list(ours.state_dict().keys()) != list(theirs.state_dict().keys()):
        raise SystemExit('state_dict keys differ from MONAI UNet')
    torch.manual_seed(0)
    x = torch.rand(2, 1, *ROI)
    with torch.inference_mode():
        a, b = ours(x), theirs(x)
    diff = (a - b).abs().max().item()
    print(f'builtin vs MONAI UNet: 148 keys loaded strictly by both, output {tuple(a.shape)}, max |diff| = {diff:.3g}')
    if diff > 1e-5:
        raise SystemExit('the self-contained UNet does not match MONAI')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--weights', required=True, help='weights.bin from scripts/reference/export-weights.mjs')
    parser.add_argument('--out', help='JSON to write (default: print)')
    parser.add_argument('--device', default='cuda', help='cuda (default), cuda:N or cpu')
    parser.add_argument('--iterations', type=int, help='timed runs per case (default 500 on CUDA, 20 on CPU)')
    parser.add_argument('--warmup', type=int, help='warm-up runs (default 50 on CUDA, 2 on CPU)')
    parser.add_argument('--impl', choices=['auto', 'monai', 'builtin'], default='auto')
    parser.add_argument('--batches', default='1,4', help='comma-separated batch sizes (1 and 4 are table rows)')
    parser.add_argument('--threads', type=int, help='CPU threads for torch (default: all cores; this torch build defaults to 1)')
    parser.add_argument('--cudnn-benchmark', action='store_true', help='torch.backends.cudnn.benchmark = True')
    parser.add_argument('--no-tf32', action='store_true', help='disable TF32 in cuDNN convolutions (torch enables it by default)')
    parser.add_argument('--check', action='store_true', help='compare the self-contained UNet with MONAI on the CPU and exit')
    args = parser.parse_args()

    weights = load_weights(args.weights)
    if args.check:
        check_against_monai(weights)
        return

    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    if cuda and not torch.cuda.is_available():
        raise SystemExit('CUDA is not available to torch here (use --device cpu for a CPU reference)')
    # Some torch builds start with 1 thread; the bundle's CPU figures use every core.
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
    iterations = args.iterations or (500 if cuda else 20)
    warmup = args.warmup if args.warmup is not None else (50 if cuda else 2)
    net, impl = build_network(weights, args.impl)
    net = net.to(device)

    with open(args.weights, 'rb') as f:
        weights_sha = hashlib.sha256(f.read()).hexdigest()
    precisions = [('fp32', False)] + ([('amp', True)] if cuda else [])
    kind = 'CUDA' if cuda else 'CPU'
    columns = []
    for name, amp in precisions:
        rows = {}
        for batch in [int(b) for b in args.batches.split(',')]:
            x = torch.rand(batch, 1, *ROI, generator=torch.Generator().manual_seed(7)).to(device)
            samples, warm = time_forward(net, x, iterations, warmup, amp, device)
            per_window = [s / batch for s in samples]
            row = 'model-b1' if batch == 1 else 'model-b4' if batch == 4 else f'model-b{batch}'
            rows[row] = {'stats': summarize(per_window), 'samples': per_window,
                         'warmup': {'iterations': len(warm), 'totalMs': sum(warm), 'firstMs': warm[0] if warm else 0}}
            print(f'torch {kind} {name} batch {batch}: mean {rows[row]["stats"]["mean"]:.3f} ms per window, '
                  f'CV {rows[row]["stats"]["cv"] * 100:.1f} % ({iterations} runs)', file=sys.stderr)
        rows['end2end'] = {'unavailable': 'torch_baseline.py times the network only'}
        columns.append({'id': f'torch-{kind.lower()}-{name}', 'label': f'torch {kind} {name}', 'rows': rows,
                        'note': f'{impl} UNet, batch input on {device}, {"CUDA events" if cuda else "perf_counter"}'})

    if cuda:
        props = torch.cuda.get_device_properties(device)
        device_info = {'type': 'cuda', 'name': props.name, 'capability': f'{props.major}.{props.minor}',
                       'memoryBytes': props.total_memory}
    else:
        device_info = {'type': 'cpu', 'name': cpu_name(), 'threads': torch.get_num_threads()}
    doc = {
        'tool': 'bench/torch_baseline.py',
        'schema': 1,
        'createdAt': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version() if cuda else None,
        'device': device_info,
        'implementation': impl,
        'weights': {'file': args.weights, 'sha256': weights_sha},
        'settings': {'iterations': iterations, 'warmup': warmup, 'cudnn_benchmark': torch.backends.cudnn.benchmark,
                     'cudnn_allow_tf32': torch.backends.cudnn.allow_tf32,
                     'matmul_allow_tf32': torch.backends.cuda.matmul.allow_tf32},
        'columns': columns,
    }
    text = json.dumps(doc, indent=1)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
        print(f'wrote {args.out}', file=sys.stderr)
    else:
        print(text)


if __name__ == '__main__':
    main()
