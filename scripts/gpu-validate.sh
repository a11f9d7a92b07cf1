#!/usr/bin/env bash
# The validation kit: docs/validation.md's procedure in one command, for a lent GPU machine that
# has no Rust toolchain, no network and 15 minutes of GPU time (docs/validation.md, "The
# validation kit", says how to build and send it).
#
# Usage: scripts/gpu-validate.sh [OUT_DIR]          (default: $OUT, the folder the machine returns)
#
# Steps, each under its own time limit (`timeout`), all within GPU_VALIDATE_BUDGET_S (default 450
# s; packing takes a few more): a failing step is recorded and the next one runs.
#   record       uname, migbench --version, nvidia-smi's name/driver/MIG mode, PyTorch
#   discover     `migbench discover`; picks scenarios/validation/<gpu>-torch.toml (else
#                h100-torch.toml for the GPU found) and a MIG variant's layout for the dry run
#   dry-run      `migbench run --dry-run` of the scenario and of it plus mig and mig+mps variants
#   sampler      `migbench sample-cost`: NVML sample cost on the idle GPU, then with a probe job
#   mps-cycle    an MPS daemon with private directories: up, first client, quit, gone
#   scenarios    `migbench run --sample-ms 10` of the scenario (refused if its dry run shows any
#                nvidia-smi command: MIG is only ever dry-run here)
#   after        nothing left: MPS processes, compute processes, MIG mode as found, GPU lock
#   report       figures.json and summary.md, the section for docs/validation.md
# OUT_DIR gets 7 files (the lent machine returns at most 8): summary.md, figures.json,
# discover.json, dry-run.txt, jobs.csv, gpu-validate.log and logs.tar.gz (every step's log, the
# run directory without its Parquet copies, the guard's log, the MPS logs). summary.md is also
# printed at the end, so the command's output alone carries the figures.
#
# It never changes MIG mode or layout, compute mode, clocks, power limit or persistence, and never
# resets the GPU: migbench reaches nvidia-smi and nvidia-cuda-mps-control only through
# scripts/gpu-guard.sh, which passes on queries and MPS commands with private directories only.
#
# Environment:
#   MIGBENCH                 the migbench binary (default: .kit/migbench, target/release/migbench,
#                            then migbench on PATH); scripts/build-kit.sh makes .kit/migbench
#   GPU_VALIDATE_BUDGET_S    seconds for all steps (default 450)
#   GPU_VALIDATE_SCENARIO    the scenario to run instead of scenarios/validation/<gpu>-torch.toml
#   GPU_VALIDATE_JOB         the job program, words split on spaces, in place of
#                            `python3 scripts/gpu_workload.py` (tests: examples/fake_cuda_job)
#   GPU_VALIDATE_ITERATIONS  the probes' --iterations instead of the scenario's (shorter runs)
#   GPU_VALIDATE_KEEP        keep the work directory (its path is printed)
#   MIGBENCH_NVML_LIB, MIGBENCH_NVIDIA_SMI, MIGBENCH_MPS_CONTROL: as for migbench; the tests
#                            point them at the stand-in driver, the guard wraps the last two
#
# Exit status: 0 when every step passed, 1 when one failed (the files are written all the same),
# 2 for bad usage.
set -euo pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
root="$(cd "$(dirname "$self")/.." && pwd)"
helper="$root/scripts/gpu_validate.py"

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
say() { printf 'gpu-validate: %s\n' "$*" | tee -a "$GV_WORK/gpu-validate.log"; }
py() { python3 "$helper" "$@"; }
mb() { "$GV_MIGBENCH" "$@"; }

# The PIDs of MPS processes (control daemons and servers) whose pipe directory lies under $1,
# found as migbench finds them: by program name, then by CUDA_MPS_PIPE_DIRECTORY.
mps_pids_under() {
    local p exe state kv
    for p in /proc/[0-9]*; do
        exe="$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null | head -n 1)" || continue
        case "$(basename -- "${exe:-x}")" in nvidia-cuda-mps-*) ;; *) continue ;; esac
        state="$(awk '{ sub(/.*\) /, ""); print $1 }' "$p/stat" 2>/dev/null)" || continue
        [ "$state" != Z ] || continue
        while IFS= read -r -d '' kv; do
            case "$kv" in
                "CUDA_MPS_PIPE_DIRECTORY=$1"/* | "CUDA_MPS_PIPE_DIRECTORY=$1")
                    printf '%s\n' "${p#/proc/}"
                    ;;
            esac
        done <"$p/environ" 2>/dev/null || true
    done
}

# Waits up to $2 seconds for the command "${@:3}" to succeed, polling every 10 ms.
wait_for() {
    local deadline
    deadline="$(awk -v t="$(now)" -v d="$1" 'BEGIN { printf "%.3f", t + d }')"
    shift
    until "$@"; do
        awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t < d) }' || return 1
        sleep 0.01
    done
}

# shellcheck disable=SC2317 # called through wait_for and a trap
no_mps_under() { [ -z "$(mps_pids_under "$1")" ]; }

# --- the steps, each run as `gpu-validate.sh --step NAME` under `timeout` -------------------

step_record() {
    local uname version torch
    uname="$(uname -srm)"
    version="$(mb --version)"
    # What scripts/build-kit.sh built it from, when the binary is the kit's.
    if [ "$GV_MIGBENCH" = "$root/.kit/migbench" ] && [ -f "$root/.kit/build.txt" ]; then
        cat "$root/.kit/build.txt"
        version="$version, $(grep '^commit: ' "$root/.kit/build.txt" || true)"
    fi
    echo "$uname; $version"
    nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,mig.mode.current,mig.mode.pending \
        --format=csv
    # The plain table, for the record (the stand-in driver does not draw it).
    nvidia-smi || true
    torch="$(python3 -c 'import json, torch
print(json.dumps({"torch": torch.__version__, "torch_cuda": torch.version.cuda,
                  "cuda_available": torch.cuda.is_available()}))' 2>&1 | tail -n 1)" || true
    echo "PyTorch: $torch"
    python3 - "$uname" "$version" "$torch" >"$GV_WORK/record.json" <<'EOF'
import json, sys
try:
    torch = json.loads(sys.argv[3])
except ValueError:
    torch = {"torch": "not importable (%s)" % sys.argv[3]}
torch.update({"uname": sys.argv[1], "migbench": sys.argv[2]})
print(json.dumps(torch))
EOF
}

step_discover() {
    mb discover
    mb discover --format json >"$GV_WORK/discover.json"
    local model uuid src
    model="$(py get "$GV_WORK/discover.json" 0.model.Ok)"
    uuid="$(py get "$GV_WORK/discover.json" 0.uuid)"
    [ -n "$model" ] || {
        echo "GPU 0 is not in migbench's catalog: $(py get "$GV_WORK/discover.json" 0.model.Err)"
        return 1
    }
    printf '%s\n' "$uuid" >"$GV_WORK/gpu.uuid"
    src="${GPU_VALIDATE_SCENARIO:-}"
    if [ -z "$src" ]; then
        src="$root/scenarios/validation/${model%%-*}-torch.toml"
        [ -f "$src" ] || src="$root/scenarios/validation/h100-torch.toml"
    fi
    echo "GPU 0: $model ($uuid); scenario from $src"
    printf '%s\n' "${src#"$root"/}" >"$GV_WORK/scenario.name"
    # shellcheck disable=SC2086 # GPU_VALIDATE_JOB is words on purpose
    py scenario "$src" "$GV_WORK/scenario.toml" "$model" ${GPU_VALIDATE_JOB:-}
    mb layouts --gpu "$model" --format json >"$GV_WORK/layouts.json"
    py mig-dry "$GV_WORK/scenario.toml" "$GV_WORK/layouts.json" "$GV_WORK/mig-dry.toml"
}

step_dry_run() {
    mkdir -p "$GV_WORK/dry-run"
    mb run --dry-run "$GV_WORK/scenario.toml" | tee "$GV_WORK/dry-run/run.txt"
    mb run --dry-run "$GV_WORK/mig-dry.toml" | tee "$GV_WORK/dry-run/mig.txt"
    local changes
    changes="$(grep -v '^#' "$GV_WORK/dry-run/run.txt" | grep -c 'nvidia-smi' || true)"
    if [ "$changes" -gt 0 ]; then
        echo "the scenario's dry run has $changes nvidia-smi command(s): it would change MIG" \
            >"$GV_WORK/dry-run/refuse"
    fi
    grep -q 'nvidia-smi' "$GV_WORK/dry-run/mig.txt"
}

# PROBE: a probe job's command line, the scenario's program with small arguments, "$1"
# iterations; run it from the repository root, on GPU 0.
probe_command() {
    read -r -a PROBE <<<"${GPU_VALIDATE_JOB:-python3 scripts/gpu_workload.py}"
    PROBE+=(--constant-gib 2 --peak-gib 2 --matrix 4096 --iterations "$1")
}

step_sampler() {
    mb sample-cost --samples 2000 --format json >"$GV_WORK/sample-cost-idle.json"
    cat "$GV_WORK/sample-cost-idle.json"
    probe_command 1000000
    (cd "$root" && CUDA_VISIBLE_DEVICES="$(cat "$GV_WORK/gpu.uuid")" exec "${PROBE[@]}") \
        >"$GV_WORK/sampler-job.log" 2>&1 &
    JOB=$!
    trap 'kill "$JOB" 2>/dev/null || true' EXIT
    trap 'exit 143' TERM INT
    mb sample-cost --samples 2000 --wait-processes 1 --wait-s 25 --format json \
        >"$GV_WORK/sample-cost-job.json"
    cat "$GV_WORK/sample-cost-job.json"
    kill "$JOB" 2>/dev/null || true
    wait "$JOB" || true
}

step_mps_cycle() {
    local t0 started ready client_start client_end quit_at gone n left
    DIR="$GV_WORK/mps-cycle"
    local dir="$DIR"
    mkdir -p "$dir/pipe" "$dir/log"
    export CUDA_MPS_PIPE_DIRECTORY="$dir/pipe" CUDA_MPS_LOG_DIRECTORY="$dir/log"
    CUDA_VISIBLE_DEVICES="$(cat "$GV_WORK/gpu.uuid")"
    export CUDA_VISIBLE_DEVICES
    # Quit in any case, even when this step is cut short.
    trap 'no_mps_under "$DIR" || echo quit | nvidia-cuda-mps-control || true' EXIT
    trap 'exit 143' TERM INT
    t0="$(now)"
    nvidia-cuda-mps-control -d
    started="$(seconds_since "$t0")"
    wait_for 20 test -e "$dir/pipe/control"
    ready="$(seconds_since "$t0")"
    echo get_server_list | nvidia-cuda-mps-control
    client_start="$(now)"
    probe_command 10
    (cd "$root" && exec "${PROBE[@]}") >"$dir/client.log" 2>&1
    client_end="$(seconds_since "$client_start")"
    cat "$dir/client.log"
    n="$(mps_pids_under "$dir" | wc -l)"
    quit_at="$(now)"
    echo quit | nvidia-cuda-mps-control
    wait_for 20 no_mps_under "$dir" || true
    gone="$(seconds_since "$quit_at")"
    left="$(mps_pids_under "$dir" | wc -l)"
    echo "daemon: -d returned after $started s, up after $ready s; client $client_end s;" \
        "$n MPS process(es) before quit; gone $gone s after quit; $left left"
    python3 - "$started" "$ready" "$client_end" "$n" "$gone" "$left" "$dir/client.log" \
        >"$GV_WORK/mps-cycle.json" <<'EOF'
import json, sys
a = sys.argv
init = None
for line in open(a[7], errors="replace"):
    if "migbench-workload: " in line:
        init = json.loads(line.split("migbench-workload: ", 1)[1]).get("init_s")
print(json.dumps({"start_s": float(a[1]), "ready_s": float(a[2]), "client_s": float(a[3]),
                  "client_init_s": init, "processes_before_quit": int(a[4]),
                  "gone_s": float(a[5]), "left": int(a[6])}))
EOF
    [ "$left" -eq 0 ]
}

step_scenarios() {
    if [ -f "$GV_WORK/dry-run/refuse" ]; then
        echo "refused: $(cat "$GV_WORK/dry-run/refuse"); MIG is only dry-run on a lent machine"
        return 3
    fi
    if [ ! -s "$GV_WORK/dry-run/run.txt" ]; then
        echo "refused: no dry run of the scenario to check it against"
        return 3
    fi
    # migbench in this process's place, so that a timeout's SIGTERM reaches it and the kit waits
    # for its teardown (every finished variant is kept) before going on.
    exec "$GV_MIGBENCH" run --quiet --sample-ms 10 --samples-csv --out "$GV_WORK/results" "$GV_WORK/scenario.toml"
}

step_after() {
    local mps apps before after pid dir lock="${MIGBENCH_STATE_DIR:-/tmp/migbench}"
    mps="$(mps_pids_under "$GV_WORK" | wc -l)"
    if [ "$mps" -gt 0 ]; then
        # A daemon of the kit's outlived its quit: quit it again, then stop it by its PID.
        echo "left behind, stopped now: $(mps_pids_under "$GV_WORK" | tr '\n' ' ')"
        for pid in $(mps_pids_under "$GV_WORK"); do
            dir="$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
                sed -n 's/^CUDA_MPS_PIPE_DIRECTORY=//p')" || continue
            echo quit | CUDA_MPS_PIPE_DIRECTORY="$dir" \
                CUDA_MPS_LOG_DIRECTORY="$GV_WORK/after-quit" nvidia-cuda-mps-control || true
        done
        if ! wait_for 10 no_mps_under "$GV_WORK"; then
            for pid in $(mps_pids_under "$GV_WORK"); do kill "$pid" 2>/dev/null || true; done
        fi
    fi
    # Rows that start with a PID: a driver may print a sentence when there are none.
    apps="$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader |
        grep -c '^[0-9]' || true)"
    mb discover --format json >"$GV_WORK/after-discover.json"
    before="$(py get "$GV_WORK/discover.json" 0.mig_current)/$(py get "$GV_WORK/discover.json" 0.mig_pending)"
    after="$(py get "$GV_WORK/after-discover.json" 0.mig_current)/$(py get "$GV_WORK/after-discover.json" 0.mig_pending)"
    echo "MPS processes of the kit: $mps; compute processes: $apps; MIG mode (current/pending)" \
        "before $before, after $after; GPU lock directory $lock:"
    ls -la "$lock" 2>/dev/null || echo "(none)"
    printf '{"mps_processes": %d, "compute_processes": %d, "mig_before": "%s", "mig_after": "%s", "mig_as_found": %s}\n' \
        "$mps" "$apps" "$before" "$after" "$([ "$before" = "$after" ] && echo true || echo false)" \
        >"$GV_WORK/after.json"
    [ "$mps" -eq 0 ] && [ "$apps" -eq 0 ] && [ "$before" = "$after" ]
}

step_report() {
    py report "$GV_WORK" "$GV_WORK"
    cat "$GV_WORK/summary.md"
}

if [ "${1-}" = --step ]; then
    # The guard stands between every step and the NVIDIA tools.
    export PATH="$GV_WORK/guard:$PATH"
    case "${2-}" in
        record) step_record ;;
        discover) step_discover ;;
        dry-run) step_dry_run ;;
        sampler) step_sampler ;;
        mps-cycle) step_mps_cycle ;;
        scenarios) step_scenarios ;;
        after) step_after ;;
        report) step_report ;;
        *) echo "gpu-validate: no step '${2-}'" >&2 && exit 2 ;;
    esac
    exit
fi

# --- the kit ---------------------------------------------------------------------------------

out="${1:-${OUT:-}}"
if [ -z "$out" ] || [ "$#" -gt 1 ]; then
    echo "usage: scripts/gpu-validate.sh [OUT_DIR]   (default: \$OUT)" >&2
    exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Canonical, as migbench records the MPS directories it makes under it.
GV_WORK="$(cd "$(mktemp -d "${TMPDIR:-/tmp}/gpu-validate.XXXXXX")" && pwd -P)"
export GV_WORK
GV_MIGBENCH="${MIGBENCH:-}"
for candidate in "$root/.kit/migbench" "$root/target/release/migbench"; do
    if [ -z "$GV_MIGBENCH" ] && [ -f "$candidate" ]; then
        # A copy of the tree may not keep the mode bits.
        [ -x "$candidate" ] || chmod +x "$candidate"
        GV_MIGBENCH="$candidate"
    fi
done
GV_MIGBENCH="${GV_MIGBENCH:-$(command -v migbench || echo migbench)}"
export GV_MIGBENCH

# migbench and the steps reach the NVIDIA tools through the guard only.
mkdir -p "$GV_WORK/guard"
ln -s "$root/scripts/gpu-guard.sh" "$GV_WORK/guard/nvidia-smi"
ln -s "$root/scripts/gpu-guard.sh" "$GV_WORK/guard/nvidia-cuda-mps-control"
GPU_GUARD_SMI="${MIGBENCH_NVIDIA_SMI:-$(command -v nvidia-smi || echo nvidia-smi)}"
GPU_GUARD_MPS_CONTROL="${MIGBENCH_MPS_CONTROL:-$(command -v nvidia-cuda-mps-control ||
    echo nvidia-cuda-mps-control)}"
export GPU_GUARD_SMI GPU_GUARD_MPS_CONTROL GPU_GUARD_LOG="$GV_WORK/guard.log"
export GPU_GUARD_PRIVATE_ROOT="$GV_WORK"
export MIGBENCH_NVIDIA_SMI="$GV_WORK/guard/nvidia-smi"
export MIGBENCH_MPS_CONTROL="$GV_WORK/guard/nvidia-cuda-mps-control"

started="$(now)"
budget="${GPU_VALIDATE_BUDGET_S:-450}"
failed=0
say "work directory $GV_WORK, migbench $GV_MIGBENCH, budget $budget s, output $out"
: >"$GV_WORK/steps.tsv"

# step NAME LIMIT_S RESERVE_S: runs the step for at most LIMIT_S, and never into the last
# RESERVE_S of the budget, kept for the steps that must run whatever happened (after, report).
step() {
    local name="$1" limit="$2" reserve="$3" left rc=0 t0 secs status note=""
    left="$(awk -v b="$budget" -v r="$reserve" -v s="$(seconds_since "$started")" \
        'BEGIN { printf "%d", b - r - s }')"
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 5 ]; then
        printf '%s\tskipped\t-\t0\tno time left in the budget\n' "$name" >>"$GV_WORK/steps.tsv"
        say "$name: skipped, no time left"
        failed=1
        return
    fi
    t0="$(now)"
    timeout -k 20 "$limit" bash "$self" --step "$name" >"$GV_WORK/step-$name.log" 2>&1 || rc=$?
    secs="$(seconds_since "$t0")"
    case "$rc" in
        0) status=ok ;;
        3) status=refused note="$(tail -n 1 "$GV_WORK/step-$name.log")" ;;
        124 | 137) status=timeout note="cut off after $limit s" ;;
        *) status=failed note="$(tail -n 1 "$GV_WORK/step-$name.log" | cut -c1-160)" ;;
    esac
    note="${note//$'\t'/ }"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$note" >>"$GV_WORK/steps.tsv"
    say "$name: $status (exit $rc, $secs s)${note:+: $note}"
    [ "$rc" -eq 0 ] || failed=1
}

step record 15 35
step discover 15 35
step dry-run 15 35
step sampler 35 35
step mps-cycle 35 35
step scenarios 300 35
step after 15 20
step report 20 0

# --- packing: at most 8 files -----------------------------------------------------------------

# Nothing here may stop the packing: what was measured must come back.
run="$( (find "$GV_WORK/results" -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true) | sort |
    tail -n 1)"
if [ ! -s "$GV_WORK/summary.md" ]; then
    { echo "### gpu-validate: no report (the report step failed)"; echo
      sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$GV_WORK/steps.tsv"; } >"$GV_WORK/summary.md"
fi
cp "$GV_WORK/summary.md" "$out/summary.md"
for f in figures.json discover.json; do
    if [ -f "$GV_WORK/$f" ]; then cp "$GV_WORK/$f" "$out/$f"; fi
done
cat "$GV_WORK/dry-run/run.txt" "$GV_WORK/dry-run/mig.txt" >"$out/dry-run.txt" 2>/dev/null || true
if [ -n "$run" ] && [ -f "$run/jobs.csv" ]; then cp "$run/jobs.csv" "$out/jobs.csv"; fi
say "total $(seconds_since "$started") s; $(grep -c $'\tok\t' "$GV_WORK/steps.tsv" || true) of $(wc -l <"$GV_WORK/steps.tsv") steps ok"
tar -czf "$out/logs.tar.gz" -C "$GV_WORK" --exclude='*.parquet' --exclude=guard . ||
    say "packing logs.tar.gz failed"
if [ "$(stat -c %s "$out/logs.tar.gz" 2>/dev/null || echo 0)" -gt $((15 * 1024 * 1024)) ]; then
    say "logs.tar.gz over 15 MiB: packed again without samples.csv"
    tar -czf "$out/logs.tar.gz" -C "$GV_WORK" --exclude='*.parquet' --exclude=guard \
        --exclude=samples.csv . || say "packing logs.tar.gz failed"
fi
cp "$GV_WORK/gpu-validate.log" "$out/gpu-validate.log"
cat "$out/summary.md"
if [ -n "${GPU_VALIDATE_KEEP:-}" ]; then
    echo "gpu-validate: work directory kept: $GV_WORK"
else
    rm -rf "$GV_WORK"
fi
exit "$failed"
