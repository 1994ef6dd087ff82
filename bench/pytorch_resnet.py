"""PyTorch twin of src/models/resnet.ts + src/train/step.ts, timed the same way as bench/resnet_step.bench.ts.

The same pre-activation CIFAR ResNet (1x1 stride-2 projection of the pre-activated input in the first unit of
stages 2 and 3, no conv biases, BN epsilon 1e-5 and momentum 0.1 = our 0.9), softmax cross-entropy, SGD with
momentum 0.9, learning rate 0.1, weight decay 1e-4 on the convolution and linear weights only.

Run with Debian's PyTorch: /usr/bin/python3 bench/pytorch_resnet.py --batch 128 --steps 5 --threads 2
Prints one JSON line: images/s (median step) for each memory layout tried, and the faster one.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class PreActUnit(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5, momentum=0.1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        needs_projection = stride != 1 or in_channels != out_channels
        self.projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if needs_projection else None

    def forward(self, u):
        preact = F.relu(self.bn1(u))
        shortcut = u if self.projection is None else self.projection(preact)
        residual = self.conv2(F.relu(self.bn2(self.conv1(preact))))
        return shortcut + residual


class PreActResNet(nn.Module):
    def __init__(self, units_per_stage, num_classes=10, widths=(16, 32, 64)):
        super().__init__()
        self.stem = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        units, channels = [], widths[0]
        for s, width in enumerate(widths):
            for u in range(units_per_stage):
                units.append(PreActUnit(channels, width, 2 if s > 0 and u == 0 else 1))
                channels = width
        self.units = nn.Sequential(*units)
        self.final_bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.dense = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='relu')

    def forward(self, x):
        u = self.units(self.stem(x))
        return self.dense(F.relu(self.final_bn(u)).mean(dim=(2, 3)))


def make_optimizer(model, weight_decay=1e-4):
    decayed = [p for n, p in model.named_parameters() if n.endswith('weight') and p.dim() > 1]
    others = [p for n, p in model.named_parameters() if not (n.endswith('weight') and p.dim() > 1)]
    return torch.optim.SGD([{'params': decayed, 'weight_decay': weight_decay}, {'params': others, 'weight_decay': 0}],
                           lr=0.1, momentum=0.9)


def time_steps(units, batch, size, steps, warmup, channels_last):
    torch.manual_seed(0)
    model = PreActResNet(units)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = make_optimizer(model)
    model.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
    median = statistics.median(times)
    return {'medianStepSeconds': median, 'imagesPerSecond': batch / median, 'stepSeconds': times}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--units', type=int, default=5)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--layouts', default='contiguous,channels_last')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layouts = {}
    for layout in args.layouts.split(','):
        layouts[layout] = time_steps(args.units, args.batch, args.size, args.steps, args.warmup,
                                     layout == 'channels_last')
    best = max(layouts, key=lambda k: layouts[k]['imagesPerSecond'])
    print(json.dumps({'torch': torch.__version__, 'threads': args.threads,
                      'mkldnn': torch.backends.mkldnn.is_available(), 'layouts': layouts, 'best': best,
                      'imagesPerSecond': layouts[best]['imagesPerSecond']}))


if __name__ == '__main__':
    main()
