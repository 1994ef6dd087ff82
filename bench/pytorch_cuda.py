"""PyTorch/cuDNN on the GPU, the reference of bench/cuda_masked_conv2d.bench.ts and bench/cuda_resnet_step.bench.ts.

- Dense 3x3 stride-1 'same' convolution at ResNet-32's three stage shapes (batch 128): forward, input gradient and
  filter gradient, float32 in channels_last (NHWC, our layout), each with TF32 off (full float32, as our kernels
  compute) and on (PyTorch's default for convolutions), cudnn.benchmark on. Times in ms, minimum over --reps calls
  timed with CUDA events after warm-up.
- The ResNet-32 training step of bench/pytorch_resnet.py (same model, loss and optimizer) on the GPU: median step.

Run on the GPU machine: python3 bench/pytorch_cuda.py --out pytorch_cuda.json [--reps 20] [--steps 10]
"""
import argparse
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_resnet import PreActResNet, make_optimizer  # noqa: E402

SHAPES = [(128, 32, 32, 16), (128, 16, 16, 32), (128, 8, 8, 64)]


def time_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return min(times)


def conv_times(shape, reps, tf32):
    torch.backends.cudnn.allow_tf32 = tf32
    b, h, w, c = shape
    x = torch.randn(b, c, h, w, device='cuda').contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, c, 3, 3, device='cuda').contiguous(memory_format=torch.channels_last)
    dy = torch.randn(b, c, h, w, device='cuda').contiguous(memory_format=torch.channels_last)
    fwd = time_ms(lambda: F.conv2d(x, weight, padding=1), reps)
    bwd_input = time_ms(lambda: torch.nn.grad.conv2d_input(x.shape, weight, dy, padding=1), reps)
    bwd_filter = time_ms(lambda: torch.nn.grad.conv2d_weight(x, weight.shape, dy, padding=1), reps)
    return {'fwd': fwd, 'bwdInput': bwd_input, 'bwdFilter': bwd_filter, 'fwdBwd': fwd + bwd_input + bwd_filter}


def resnet_step(units, batch, steps, warmup):
    torch.manual_seed(0)
    torch.backends.cudnn.allow_tf32 = False
    model = PreActResNet(units).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 32, 32, device='cuda').contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device='cuda')
    optimizer = make_optimizer(model)
    model.train()
    times = []
    for i in range(warmup + steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # as our step reads its loss back
        end.record()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(end) / 1000)
    median = statistics.median(times)
    return {'model': f'ResNet-{6 * units + 2}', 'batch': batch, 'tf32': False, 'medianStepSeconds': median,
            'imagesPerSecond': batch / median, 'stepSeconds': times}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--units', type=int, default=5)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    conv = {}
    for shape in SHAPES:
        key = 'x'.join(str(v) for v in shape[1:])
        conv[key] = {'fp32': conv_times(shape, args.reps, False), 'tf32': conv_times(shape, args.reps, True)}
    result = {
        'torch': torch.__version__, 'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),
        'device': torch.cuda.get_device_name(0), 'reps': args.reps, 'conv': conv,
        'resnetStep': resnet_step(args.units, 128, args.steps, args.warmup),
    }
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ('torch', 'cuda', 'cudnn', 'device')}))
    for key, v in conv.items():
        print(key, {mode: {k: round(t, 4) for k, t in times.items()} for mode, times in v.items()})
    print('resnet step', round(result['resnetStep']['imagesPerSecond']), 'images/s')


if __name__ == '__main__':
    main()
