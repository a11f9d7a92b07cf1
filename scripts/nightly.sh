#!/usr/bin/env bash
# The nightly regression gate: runs a list of scenarios, writes their report, compares it with
# the last accepted night, judges it against the median of the nights before (migbench history),
# and keeps every night in a history directory.
#
# Usage: scripts/nightly.sh [SCENARIO.toml ...]     (default: scenarios/*.toml)
#
# Environment:
#   MIGBENCH            the migbench binary (default: migbench on PATH)
#   NIGHTLY_HISTORY     the history directory (default: nightly)
#   NIGHTLY_BACKEND     sim (default: the simulated GPU) or gpu (a real one)
#   NIGHTLY_THRESHOLD   change that counts as a regression (default: 5%)
#   NIGHTLY_BASELINE_NIGHTS  the history's baseline is the median of this many nights (default: 5)
#   NIGHTLY_ALLOW_DIFFERENT  1: compare with the baseline even when a scenario file, the
#                       backend or the GPU model changed (migbench compare --allow-different);
#                       otherwise such a night exits 2 and says what differs
#
# On the simulator, simulated time advances by events: a night's figures depend only on its
# scenarios, so two nights of the same migbench agree exactly.
#
# History:
#   $NIGHTLY_HISTORY/<UTC time>/runs/          the night's run directories
#   $NIGHTLY_HISTORY/<UTC time>/report/        its report (report.html, report.json, ...), and
#                                              migbench.prom (OpenMetrics, for node_exporter)
#   $NIGHTLY_HISTORY/<UTC time>/history/       the trends of every night so far (history.html)
#   $NIGHTLY_HISTORY/<UTC time>/compare.md     the comparison with the baseline
#   $NIGHTLY_HISTORY/baseline -> <UTC time>    the last accepted night
#
# The gate is `migbench history`: the night regressed when a figure moved the bad way beyond the
# threshold against the median of the NIGHTLY_BASELINE_NIGHTS nights before it (one odd night
# moves no median). compare.md is the change against the last accepted night, for reading.
# A night with no regression becomes the baseline; the first night accepts itself. A night
# that regressed stays in the history but the baseline does not move; to accept it on purpose
# (an expected change), point the link at it: ln -sfn <UTC time> "$NIGHTLY_HISTORY/baseline".
#
# Exit status: 0 when nothing regressed, 1 when a variant regressed beyond the threshold,
# 2 for bad input, and migbench's status when a run or the report failed.
set -euo pipefail

migbench="${MIGBENCH:-migbench}"
history="${NIGHTLY_HISTORY:-nightly}"
backend="${NIGHTLY_BACKEND:-sim}"
threshold="${NIGHTLY_THRESHOLD:-5%}"
baseline_nights="${NIGHTLY_BASELINE_NIGHTS:-5}"

fail() {
    printf 'nightly: %s\n' "$1" >&2
    exit 2
}

if ! command -v "$migbench" >/dev/null 2>&1; then
    fail "cannot run '$migbench': put migbench on PATH (cargo install --path .) or set MIGBENCH"
fi

run_args=(run --quiet)
case "$backend" in
    sim) run_args+=(--sim) ;;
    gpu) ;;
    *) fail "NIGHTLY_BACKEND must be sim or gpu, found '$backend'" ;;
esac

if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    scenarios=()
    for file in scenarios/*.toml; do
        [ -f "$file" ] && scenarios+=("$file")
    done
    [ "${#scenarios[@]}" -gt 0 ] || fail "no scenarios given and none in scenarios/*.toml"
fi
for scenario in "${scenarios[@]}"; do
    [ -f "$scenario" ] || fail "scenario '$scenario' does not exist"
done

mkdir -p "$history"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
night="$history/$stamp"
n=1
while [ -e "$night" ]; do
    n=$((n + 1))
    night="$history/$stamp-$n"
done
stamp="$(basename "$night")"
mkdir -p "$night/runs"

for scenario in "${scenarios[@]}"; do
    printf 'nightly: running %s\n' "$scenario"
    "$migbench" "${run_args[@]}" --out "$night/runs" "$scenario" >"$night/runs/$(basename "$scenario" .toml).txt"
done
"$migbench" report "$night/runs" --out "$night/report" \
    --openmetrics "$night/report/migbench.prom" >/dev/null
printf 'nightly: report in %s\n' "$night/report"

status=0
"$migbench" history "$history" --out "$night/history" --threshold "$threshold" \
    --baseline-nights "$baseline_nights" --format md >"$night/history.md" || status=$?
cat "$night/history.md"
[ "$status" -le 1 ] || exit "$status"

baseline="$history/baseline"
if [ ! -e "$baseline/report/report.json" ]; then
    ln -sfn "$stamp" "$baseline"
    printf 'nightly: no baseline yet; %s is the baseline now\n' "$stamp"
    exit "$status"
fi

compare_args=(compare "$baseline/report" "$night/report" --threshold "$threshold" --format md)
[ "${NIGHTLY_ALLOW_DIFFERENT:-0}" = 1 ] && compare_args+=(--allow-different)
compared=0
"$migbench" "${compare_args[@]}" >"$night/compare.md" || compared=$?
cat "$night/compare.md"
[ "$compared" -le 1 ] || exit "$compared"
case "$status" in
    0)
        ln -sfn "$stamp" "$baseline"
        printf 'nightly: no regression; %s is the baseline now\n' "$stamp"
        ;;
    1)
        printf 'nightly: regression against the median of the nights before (history.md); the baseline stays at %s\n' \
            "$(readlink "$baseline")" >&2
        ;;
esac
exit "$status"
