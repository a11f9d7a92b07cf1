#!/usr/bin/env bash
# Shows that a simulated run's figures depend only on its scenario: every shipped scenario runs
# twice — once with the release build on an otherwise idle machine, once with the debug build
# while two CPU-burning processes run beside it — and the jobs, variants, instances, serving and
# requests tables must be identical, apart from a run's identity (directory, timestamps, job
# PIDs, and the UUID of its simulated GPU, which is its own so that runs never share one).
#
# Usage: scripts/sim-determinism.sh [SCENARIO.toml ...]   (default: scenarios/*.toml)
# Exit status: 0 when every table agrees, 1 when one differs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
cargo build --locked --quiet
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(scenarios/*.toml)
out="$(mktemp -d)"
burners=()
stop_burners() {
    for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
    burners=()
}
trap 'stop_burners; rm -rf "$out"' EXIT

# A table as CSV with the run's identity taken out.
masked() {
    python3 - "$1" "$2" <<'EOF'
import csv, json, os, sys
run, table = sys.argv[1], sys.argv[2]
uuid = json.load(open(os.path.join(run, "manifest.json")))["gpu_uuid"]
path = os.path.join(run, table + ".csv")
if not os.path.exists(path):
    sys.exit(0)
rows = list(csv.reader(open(path)))
drop = {i for i, name in enumerate(rows[0]) if name == "pid"}
for row in rows:
    print(",".join(v.replace(uuid, "<gpu>") for i, v in enumerate(row) if i not in drop))
EOF
}

status=0
for scenario in "${scenarios[@]}"; do
    name="$(basename "$scenario" .toml)"
    target/release/migbench run --sim --quiet --out "$out/$name/idle" "$scenario" >/dev/null
    for _ in 1 2; do
        sh -c 'while :; do :; done' &
        burners+=("$!")
    done
    target/debug/migbench run --sim --quiet --out "$out/$name/busy" "$scenario" >/dev/null
    stop_burners
    idle="$(echo "$out/$name/idle"/*)"
    busy="$(echo "$out/$name/busy"/*)"
    for table in jobs variants instances serving requests; do
        [ -f "$idle/$table.csv" ] || continue
        rows=$(($(wc -l <"$idle/$table.csv") - 1))
        if diff <(masked "$idle" "$table") <(masked "$busy" "$table") >/dev/null; then
            printf '%-20s %-10s %6d rows  identical\n' "$name" "$table" "$rows"
        else
            printf '%-20s %-10s %6d rows  DIFFERENT\n' "$name" "$table" "$rows"
            status=1
        fi
    done
done
exit "$status"
