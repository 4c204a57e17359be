"""Speed of the nucleus patch CNN: training form against the inference form the pipeline runs.

Times :func:`immunodig.nuclei.patch_net.predict_patch_net` (four rot90 views per patch) on random
32 x 32 patches with the network as trained (batch norm, contiguous NCHW, batches of 1,024) and in
its :func:`~immunodig.nuclei.patch_net.inference_net` form (batch norm folded, channels-last,
batches of 128), and checks that both give the same probabilities. Usage::

    python benchmarks/bench_patch_net.py [--patches 2048] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from immunodig.nuclei.patch_net import PATCH_PX, build_patch_net, inference_net, predict_patch_net

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = build_patch_net(5).eval()
    fast = inference_net(net)
    patches = np.random.default_rng(0).integers(0, 256, (args.patches, PATCH_PX, PATCH_PX, 3), dtype=np.uint8)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, {args.threads} thread(s)")

    def best(f) -> float:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    slow = best(lambda: predict_patch_net(net, patches, batch_size=1024))
    quick = best(lambda: predict_patch_net(fast, patches))
    diff = np.abs(predict_patch_net(net, patches, batch_size=1024) - predict_patch_net(fast, patches)).max()
    n = args.patches
    print(f"training form:  {slow:.2f} s for {n} patches x 4 views ({n / slow:.0f} patches/s)")
    print(f"inference form: {quick:.2f} s ({n / quick:.0f} patches/s), {slow / quick:.2f}x; "
          f"max |p difference| {diff:.1e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
