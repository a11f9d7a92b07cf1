#!/usr/bin/env bash
# The validation kit's guard between migbench and the NVIDIA tools of a lent GPU machine. It is
# installed (by scripts/gpu-validate.sh) as two links, `nvidia-smi` and `nvidia-cuda-mps-control`,
# that migbench runs through $MIGBENCH_NVIDIA_SMI and $MIGBENCH_MPS_CONTROL; it passes on only
# what the lent machines' rules allow and logs every call with the time, so that the kit's
# record says what ran and for how long.
#
#   nvidia-smi: queries only (`-L`, `-q`, `--query-*`, `mig -lgi/-lci/-lgip/-lcip`, no
#     arguments). Anything else — MIG mode or instances, compute mode, clocks, power limit,
#     persistence, reset — is refused with exit status 4, without reaching the driver.
#   nvidia-cuda-mps-control: only with private CUDA_MPS_PIPE_DIRECTORY and
#     CUDA_MPS_LOG_DIRECTORY (set, not the system defaults, under $GPU_GUARD_PRIVATE_ROOT when
#     that is set, or for the pipes migbench's own /tmp/mb-<hash>/dN); `-d` to start a daemon,
#     or control commands on stdin.
#
# Environment: GPU_GUARD_LOG (the log, required), GPU_GUARD_SMI and GPU_GUARD_MPS_CONTROL (the
# tools guarded, by default those on PATH), GPU_GUARD_PRIVATE_ROOT.
#
# Log lines, tab-separated: <unix time, s> <tool> <event> <details>; events are `call` (the
# arguments), `env` (MPS directories), `stdin` (an MPS command), `refused` (why) and `exit`
# (status and seconds taken).
set -euo pipefail

tool="$(basename "$0")"
log="${GPU_GUARD_LOG:?GPU_GUARD_LOG must name the guard log}"

now() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        printf '%s' "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}

record() {
    printf '%s\t%s\t%s\t%s\n' "$(now)" "$tool" "$1" "$2" >>"$log"
}

refuse() {
    record refused "$1"
    printf 'gpu-validate guard: refused %s %s: %s\n' "$tool" "$args" "$1" >&2
    exit 4
}

# Runs the guarded tool and logs its exit status and time; stdin is "$1" when given.
pass() {
    local started rc=0 input="${1-}"
    shift
    started="$(now)"
    if [ -n "$input" ]; then
        printf '%s\n' "$input" | "$@" || rc=$?
    else
        "$@" </dev/null || rc=$?
    fi
    record exit "$rc $(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.4f", b - a }')"
    exit "$rc"
}

args="$*"
record call "$args"

case "$tool" in
    nvidia-smi)
        real="${GPU_GUARD_SMI:-nvidia-smi}"
        after_i=0
        for a in "$@"; do
            if [ "$after_i" = 1 ]; then
                after_i=0
                case "$a" in
                    [0-9]* | GPU-* | MIG-*) continue ;;
                    *) refuse "-i takes a GPU index or UUID, not '$a'" ;;
                esac
            fi
            case "$a" in
                -i) after_i=1 ;;
                -L | -q | mig | -lgi | -lci | -lgip | -lcip | --id=* | --format=*) ;;
                --query-gpu=* | --query-compute-apps=*) ;;
                *) refuse "'$a' is not a query; the lent machine's rules allow no GPU change" ;;
            esac
        done
        pass "" "$real" "$@"
        ;;
    nvidia-cuda-mps-control)
        real="${GPU_GUARD_MPS_CONTROL:-nvidia-cuda-mps-control}"
        pipe="${CUDA_MPS_PIPE_DIRECTORY:-}"
        logs="${CUDA_MPS_LOG_DIRECTORY:-}"
        record env "pipe=$pipe log=$logs visible=${CUDA_VISIBLE_DEVICES-<unset>}"
        for dir in "$pipe" "$logs"; do
            case "$dir" in
                "") refuse "CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY must both be set" ;;
                /tmp/nvidia-mps | /tmp/nvidia-mps/ | /var/log/nvidia-mps | /var/log/nvidia-mps/)
                    refuse "$dir is the system's MPS directory; use private ones"
                    ;;
            esac
            root="${GPU_GUARD_PRIVATE_ROOT:-}"
            # migbench's own pipe directories, /tmp/mb-<hash>/dN, are private too: they are
            # outside the run directory only because a UNIX socket's path is short.
            if [ "$dir" = "$pipe" ] && [[ "$dir" =~ ^/tmp/mb-[0-9a-f]{12}/d[0-9]+$ ]]; then
                continue
            fi
            if [ -n "$root" ] && [ "${dir#"$root"/}" = "$dir" ]; then
                refuse "$dir is not under the kit's private directory $root"
            fi
        done
        case "$args" in
            -d) pass "" "$real" -d ;;
            "")
                input="$(cat)"
                while IFS= read -r line; do
                    [ -n "$line" ] || continue
                    record stdin "$line"
                    case "$line" in
                        quit | get_server_list | ps | get_default_* | set_default_active_thread_percentage\ * | set_default_device_pinned_mem_limit\ *) ;;
                        *) refuse "MPS command '$line' is not one the kit uses" ;;
                    esac
                done <<<"$input"
                pass "$input" "$real"
                ;;
            *) refuse "only -d or commands on stdin" ;;
        esac
        ;;
    *)
        record refused "unknown tool"
        printf 'gpu-validate guard: installed as %s, which it does not guard\n' "$tool" >&2
        exit 4
        ;;
esac
