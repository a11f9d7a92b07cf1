#!/usr/bin/env bash
# migbench's own CPU during a real-GPU run, measured against the stand-in driver
# (examples/fake_*): one 30 s job on the whole GPU, VRAM sampled through NVML every 100 ms.
# The figure is the migbench process's own user + system time (not its job's) over 20 s in
# the middle of the run, as a share of one core. The target is under 1 %.
#
# Usage: scripts/harness-cpu.sh [SAMPLE_MS]      (default 100; builds what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
sample_ms="${1:-100}"

cargo build --release --locked --quiet
cargo build --examples --locked --quiet
examples="$PWD/target/debug/examples"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/gpu" "$dir/bin"
# migbench knows MPS processes by program name, as the real ones are called.
ln -s "$examples/fake_mps_control" "$dir/bin/nvidia-cuda-mps-control"
cat >"$dir/gpu/gpu.json" <<EOF
{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-c0ffee00-9d17-0af6-ba0b-82402cce84b5",
 "memory_mib": 81559, "driver": "550.54.15", "cuda": 12040}
EOF
cat >"$dir/scenario.toml" <<EOF
[scenario]
name = "harness-cpu"
[gpu]
model = "h100-80gb"
[workloads.hold]
name = "hold"
title = "holds 4 GiB for 30 s"
kind = "batch"
unit = "job"
command = ["$examples/fake_cuda_job", "--gib", "4", "--seconds", "30"]
memory = { constant_gib = 4, peak_gib = 4, source = "its arguments" }
sim = { alpha = 1.0, peak_at = 0.0, peak_for = 0.0, source = "its arguments" }
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "hold" }]
EOF

export MIGBENCH_NVML_LIB="$examples/libfake_nvml.so"
export MIGBENCH_NVIDIA_SMI="$examples/fake_nvidia_smi"
export MIGBENCH_MPS_CONTROL="$dir/bin/nvidia-cuda-mps-control"
export MIGBENCH_FAKE_GPU="$dir/gpu"
export MIGBENCH_STATE_DIR="$dir/state"

target/release/migbench run --quiet --sample-ms "$sample_ms" --out "$dir/out" \
    "$dir/scenario.toml" >/dev/null &
pid=$!
# utime + stime of the migbench process itself, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
sleep 5
before=$(ticks)
sleep 20
after=$(ticks)
wait "$pid"
awk -v a="$before" -v b="$after" -v hz="$(getconf CLK_TCK)" -v ms="$sample_ms" \
    'BEGIN { printf "migbench CPU at %d ms sampling: %.2f %% of a core (%d ticks of 1/%d s in 20 s)\n", ms, 100 * (b - a) / hz / 20, b - a, hz }'
