#!/usr/bin/env python3
"""A real GPU job that follows a migbench workload's sim profile, for checking the NVML backend
without Wan2.2 weights: hold a constant amount of VRAM, spike to a peak for part of the run, keep
the SMs busy with matrix products for a fixed amount of work (so sharing the GPU makes it slower,
as it does a real model), and run out of memory on request.

At the end it prints one line, `migbench-workload: {json}`, with PyTorch's own view of its memory
(`torch.cuda.max_memory_reserved()` and friends) and its timing, to compare with what migbench
measured through NVML: `wall_s` from the script's first line (before PyTorch is imported) to the
report, `init_s` of it spent importing PyTorch and creating the CUDA context, `elapsed_s` the work.
Out of memory, it dies the way Wan2.2 does: torch.OutOfMemoryError, exit 1.

    python3 scripts/gpu_workload.py --constant-gib 4 --peak-gib 6 --peak-at 0.5 --peak-for 0.2 \
        --iterations 2000
"""

import time

LAUNCHED = time.monotonic()

import argparse  # noqa: E402 (after the first timestamp, so that wall_s covers the imports)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

GIB = 1024**3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--constant-gib", type=float, required=True,
                   help="VRAM held for the whole run")
    p.add_argument("--peak-gib", type=float, required=True,
                   help="VRAM at the peak (at least the constant)")
    p.add_argument("--peak-at", type=float, default=0.5,
                   help="fraction of the work done when the peak starts")
    p.add_argument("--peak-for", type=float, default=0.1,
                   help="fraction of the work the peak lasts")
    p.add_argument("--iterations", type=int, default=1000,
                   help="matrix products to compute: the fixed amount of work")
    p.add_argument("--matrix", type=int, default=4096,
                   help="side of the square matrices multiplied")
    p.add_argument("--exceed", action="store_true",
                   help="at the peak, ask for more memory than the device has")
    return p.parse_args()


def allocate(gib):
    """A block of `gib` GiB, written so the driver really backs it."""
    block = torch.empty(int(gib * GIB), dtype=torch.uint8, device="cuda")
    block.fill_(1)
    return block


def main(args):
    if args.peak_gib < args.constant_gib:
        sys.exit("--peak-gib must be at least --constant-gib")
    if not torch.cuda.is_available():
        sys.exit("no CUDA device is visible (CUDA_VISIBLE_DEVICES=%s)"
                 % os.environ.get("CUDA_VISIBLE_DEVICES"))
    device = torch.cuda.current_device()
    total_gib = torch.cuda.get_device_properties(device).total_memory / GIB
    torch.cuda.synchronize()  # the CUDA context exists from here on
    started = time.monotonic()

    a = torch.randn(args.matrix, args.matrix, device="cuda", dtype=torch.float16)
    b = torch.randn(args.matrix, args.matrix, device="cuda", dtype=torch.float16)
    operands_gib = 3 * a.numel() * a.element_size() / GIB
    held = allocate(max(args.constant_gib - operands_gib, 0.0))
    peak = None
    peak_start = int(args.peak_at * args.iterations)
    peak_end = int((args.peak_at + args.peak_for) * args.iterations)

    first_product = None
    for i in range(args.iterations):
        if i == peak_start and peak is None:
            extra = (total_gib + 1.0) if args.exceed else args.peak_gib - args.constant_gib
            peak = allocate(extra)  # raises torch.OutOfMemoryError when it cannot fit
        if i == peak_end and peak is not None:
            del peak
            peak = False
            # Give the memory back to the driver, so NVML sees the level drop as it would.
            torch.cuda.empty_cache()
        c = a @ b
        if first_product is None:
            torch.cuda.synchronize()
            first_product = time.monotonic()
    torch.cuda.synchronize()
    ended = time.monotonic()
    del c, held

    report = {
        "device": torch.cuda.get_device_name(device),
        "pid": os.getpid(),
        "torch": torch.__version__,
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "total_gib": round(total_gib, 3),
        "max_memory_reserved_gib": round(torch.cuda.max_memory_reserved(device) / GIB, 3),
        "max_memory_allocated_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 3),
        "iterations": args.iterations,
        "elapsed_s": round(ended - started, 3),
        "startup_s": round(first_product - started, 3),
        "init_s": round(started - LAUNCHED, 3),
        "wall_s": round(time.monotonic() - LAUNCHED, 3),
        "tflops": round(2 * args.matrix**3 * args.iterations / (ended - first_product) / 1e12, 2),
    }
    print("migbench-workload: " + json.dumps(report), flush=True)


if __name__ == "__main__":
    ARGS = parse_args()
    import torch  # imported after parsing, so --help works without PyTorch

    main(ARGS)
