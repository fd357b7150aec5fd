#!/usr/bin/python3
"""bench/torch_threads.py - PyTorch's fastest CPU EMA of model weights, per thread count.

The reference row beside bench/threads.c: for each parameter count, 64
float32 tensors of equal length (values uniform in [-1, 1), seed 1), and the
EMA update as timm and ema-pytorch write it, timed with
torch.set_num_threads(N) for each N:

  torch-lerp          shadow.lerp_(param, 1 - decay) per tensor
  torch-foreach-lerp  torch._foreach_lerp_(shadows, params, 1 - decay), one
                      call for every tensor (PyTorch >= 2.0; left out where
                      torch has no _foreach_lerp_)

LitEma's decay is 0.9999 with the num_updates warmup, which changes the
weight from step to step but not the work: here the weight is fixed at
1 - 0.9999, which times the same.

Each row: 3 untimed then --repeats timed updates (time.perf_counter_ns), one
element of every parameter moved by 2^-10 before each, outside timing, as
bench/bench_util.h's touch_arrays does. One JSON line per row on stdout, as
bench/threads.c prints them:

  {"work":"torch-lerp","params":16777216,"threads":1,"medianMs":…,"minMs":…,"samples":20}

Run it with Debian's /usr/bin/python3 and python3-torch (apt-get install
python3-torch); without torch it prints one line {"skipped": …} and exits 0.
bench/lib/threads-native.mjs runs it.
"""

import argparse
import json
import statistics
import sys
import time

TENSORS = 64
DECAY = 0.9999
WARMUP = 3
SEED = 1


def parse_counts(text, suffixes):
    """A comma-separated list of positive counts; with `suffixes`, K = 2^10 and M = 2^20."""
    counts = []
    for item in text.split(','):
        scale = 1
        if suffixes and item[-1:] in ('K', 'k', 'M', 'm'):
            scale = 1 << (10 if item[-1] in 'Kk' else 20)
            item = item[:-1]
        try:
            value = int(item) * scale
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a count: '{item}'")
        if value <= 0:
            raise argparse.ArgumentTypeError(f'not positive: {value}')
        counts.append(value)
    return counts


def parse_params(text):
    counts = parse_counts(text, suffixes=True)
    for count in counts:
        if count % TENSORS != 0:
            raise argparse.ArgumentTypeError(f'{count} is not a multiple of {TENSORS}')
    return counts


def parse_arguments():
    parser = argparse.ArgumentParser(
        description="PyTorch's CPU EMA update (lerp_, _foreach_lerp_) per thread count; "
        'one JSON line per row. See the top of bench/torch_threads.py.'
    )
    parser.add_argument('--params', type=parse_params, default='16M,64M',
                        help='parameter counts, K = 2^10, M = 2^20, each a multiple of 64 (default 16M,64M)')
    parser.add_argument('--threads', type=lambda text: parse_counts(text, suffixes=False), default='1,2',
                        help='torch.set_num_threads values (default 1,2)')
    parser.add_argument('--repeats', type=int, default=20, help='timed updates per row (default 20)')
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error('--repeats must be at least 1')
    return arguments


def make_model(torch, total):
    """64 parameters of total / 64 floats each, and their shadows (copies, as every EMA starts)."""
    generator = torch.Generator().manual_seed(SEED)
    length = total // TENSORS
    params = [torch.rand(length, generator=generator) * 2 - 1 for _ in range(TENSORS)]
    shadows = [param.clone() for param in params]
    return params, shadows


def touch(params, iteration):
    """One element of every parameter moves by 2^-10: a training step's write, outside timing."""
    for param in params:
        index = (iteration * 7919) % param.numel()
        param[index] += 1.0 / 1024.0


def lerp_each(torch, shadows, params, weight):
    for shadow, param in zip(shadows, params):
        shadow.lerp_(param, weight)


def lerp_foreach(torch, shadows, params, weight):
    torch._foreach_lerp_(shadows, params, weight)


def time_work(torch, update, params, shadows, threads, repeats, iteration):
    torch.set_num_threads(threads)
    weight = 1.0 - DECAY
    samples = []
    for i in range(WARMUP + repeats):
        touch(params, iteration + i)
        start = time.perf_counter_ns()
        update(torch, shadows, params, weight)
        elapsed = time.perf_counter_ns() - start
        if i >= WARMUP:
            samples.append(elapsed / 1e6)
    return statistics.median(samples), min(samples)


def main():
    arguments = parse_arguments()
    try:
        import torch
    except ImportError:
        print(json.dumps({'skipped': 'python3-torch is not installed (apt-get install python3-torch)'}))
        return 0
    works = [('torch-lerp', lerp_each)]
    if hasattr(torch, '_foreach_lerp_'):
        works.append(('torch-foreach-lerp', lerp_foreach))
    else:
        print(f'torch_threads.py: torch {torch.__version__} has no _foreach_lerp_; '
              'torch-foreach-lerp left out', file=sys.stderr)
    iteration = 0
    for total in arguments.params:
        params, shadows = make_model(torch, total)
        for name, update in works:
            for threads in arguments.threads:
                median, fastest = time_work(torch, update, params, shadows, threads, arguments.repeats, iteration)
                iteration += WARMUP + arguments.repeats
                print(json.dumps({'work': name, 'params': total, 'threads': threads,
                                  'medianMs': round(median, 3), 'minMs': round(fastest, 3),
                                  'samples': arguments.repeats}, separators=(',', ':')), flush=True)
        del params, shadows
    return 0


if __name__ == '__main__':
    sys.exit(main())
