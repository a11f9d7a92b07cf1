#!/usr/bin/env bash
# How fast the simulator runs: simulated seconds per real second on three scenarios — the
# README's main job, over ten simulated hours of batch jobs (several variants, three
# repetitions each), and a thousand serving requests. Simulated time advances by events, so
# the figures of each run are the same whatever the machine; only the wall time here varies.
#
# Usage: scripts/sim-speed.sh            (builds the release binary first)
# Environment: MIGBENCH (a migbench binary to use instead of target/release/migbench)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${MIGBENCH:-}" ]; then
    cargo build --release --locked --quiet
    MIGBENCH=target/release/migbench
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

printf '%-40s %12s %10s %14s\n' scenario "simulated s" "wall s" "sim s per s"
for scenario in scenarios/h100-3x-ti2v.toml benches/scenarios/ten-hours.toml \
    benches/scenarios/serving-1000.toml; do
    dir="$out/$(basename "$scenario" .toml)"
    start=$(date +%s.%N)
    "$MIGBENCH" run --sim --quiet --out "$dir" "$scenario" >/dev/null
    end=$(date +%s.%N)
    # The run's simulated span: the instant of its last event.
    simulated=$(tail -n 1 "$dir"/*/events.jsonl | sed -n 's/.*"t":\([0-9.e+-]*\).*/\1/p')
    awk -v s="$scenario" -v sim="$simulated" -v a="$start" -v b="$end" \
        'BEGIN { w = b - a; printf "%-40s %12.0f %10.2f %14.0f\n", s, sim, w, sim / w }'
done
