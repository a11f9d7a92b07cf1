#!/usr/bin/env bash
# A stand-in GPU for trying migbench's GPU path without a GPU (docs/validation.md).
#
#   eval "$(scripts/stand-in-gpu.sh h100-80gb /tmp/g)"
#   nvidia-smi -L
#   migbench run scenarios/stand-in/h100-all-modes.toml
#
# MODEL is a catalog GPU (`migbench gpus`), N of them (`8xh100-80gb`) or several
# (`2xh100-80gb,a100-40gb`); DIR gets the node's state, the stand-in libnvidia-ml.so.1 and the
# stand-in CUDA job. It prints the `export` lines that point NVIDIA's own nvidia-smi (through
# LD_LIBRARY_PATH) and migbench at them; nothing else on the machine changes. NVIDIA's tools
# come from Debian's non-free component: `apt-get install nvidia-smi nvidia-cuda-mps`.
# Building the stand-in the first time takes a few minutes (`cargo build --examples`).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 MODEL DIR   (MODEL: h100-80gb, 8xh100-80gb, 2xh100-80gb,a100-40gb, ...)" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
# Quietly: what this prints is evaluated by the caller's shell.
(cd "$root" && cargo build --quiet --examples) >&2
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "stand-in-gpu: NVIDIA's nvidia-smi is not installed (apt-get install nvidia-smi nvidia-cuda-mps, from Debian's non-free component)" >&2
fi
exec "$target/debug/examples/stand_in_gpu" "$1" "$2"
