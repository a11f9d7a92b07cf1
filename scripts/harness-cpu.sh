#!/usr/bin/env bash
# migbench's own CPU during a real-GPU run, measured against the stand-in GPU
# (scripts/stand-in-gpu.sh): one 30 s job on the whole GPU, VRAM sampled through NVML every 100 ms.
# The figure is the migbench process's own user + system time (not its job's) over 20 s in
# the middle of the run, as a share of one core. The target is under 1 %.
#
# Usage: scripts/harness-cpu.sh [SAMPLE_MS]      (default 100; builds what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
sample_ms="${1:-100}"

cargo build --release --locked --quiet
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
# A stand-in H100 that NVIDIA's nvidia-smi and MPS tools drive (docs/validation.md).
eval "$(scripts/stand-in-gpu.sh h100-80gb "$dir/gpu")"
export MIGBENCH_STATE_DIR="$dir/state"
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
command = ["stand-in-cuda-job", "--gib", "4", "--seconds", "30"]
memory = { constant_gib = 4, peak_gib = 4, source = "its arguments" }
sim = { alpha = 1.0, peak_at = 0.0, peak_for = 0.0, source = "its arguments" }
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "hold" }]
EOF

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
