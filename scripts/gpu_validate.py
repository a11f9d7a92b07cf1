#!/usr/bin/env python3
"""The validation kit's text and figure work, for scripts/gpu-validate.sh (which documents the
kit): standard library only, Python 3.6 or later, as a lent GPU machine's Python may be old.

    gpu_validate.py scenario SRC DEST MODEL [JOB...]   the scenario to run: SRC for this GPU
    gpu_validate.py mig-dry SCENARIO LAYOUTS DEST      SCENARIO plus MIG variants, to dry-run
    gpu_validate.py report WORK OUT                    figures.json and summary.md from WORK
    gpu_validate.py get FILE PATH                      a value of a JSON file: `0.model.Ok`

`report` never fails for a missing part: a figure that could not be measured says why.
"""

import csv
import datetime
import glob
import json
import os
import re
import statistics
import sys

WORKLOAD_LINE = "migbench-workload: "


# --- scenarios -----------------------------------------------------------------------------


def derive_scenario(src, dest, model, job, iterations):
    """SRC made runnable from DEST on a GPU of catalog MODEL: relative workdirs made absolute,
    the job program swapped for JOB (words) when given, the probes' iterations replaced."""
    with open(src) as f:
        text = f.read()
    src_dir = os.path.dirname(os.path.abspath(src))

    def absolute(m):
        return 'workdir = "%s"' % os.path.normpath(os.path.join(src_dir, m.group(1)))

    text = re.sub(r'^workdir = "([^"/][^"]*)"', absolute, text, flags=re.M)
    text = re.sub(r'^(\[gpu\][^\[]*?^model = )"[^"]*"', r'\g<1>"%s"' % model, text,
                  count=1, flags=re.M | re.S)
    if job:
        words = ", ".join(json.dumps(w) for w in job)
        text = text.replace('"python3", "scripts/gpu_workload.py"', words)
    if iterations:
        text = re.sub(r'"--iterations", "\d+"', '"--iterations", "%d"' % int(iterations), text)
    with open(dest, "w") as f:
        f.write(text)


def mig_dry_scenario(scenario, layouts_json, dest):
    """SCENARIO plus a `mig` and a `mig+mps` variant on the best layout of two or more instances
    (from `migbench layouts --format json`): only ever dry-run, never run."""
    with open(layouts_json) as f:
        layouts = json.load(f)
    layout = next((l["layout"] for l in layouts if len(l["layout"]) >= 2), layouts[0]["layout"])
    profiles = [p.split("@")[0] for p in layout]
    with open(scenario) as f:
        text = f.read()
    for name, mode in (("mig-dry", "mig"), ("mig-mps-dry", "mig+mps")):
        text += '\n[[variants]]\nname = "%s"\nmode = "%s"\nlayout = %s\n' % (
            name, mode, json.dumps(profiles))
        text += 'jobs = [{ workload = "probe", count = %d }]\n' % len(profiles)
    with open(dest, "w") as f:
        f.write(text)


# --- reading what the kit left -------------------------------------------------------------


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def workload_line(text):
    """The last `migbench-workload: {json}` line of a job's log, as a dict."""
    found = None
    for line in text.splitlines():
        i = line.find(WORKLOAD_LINE)
        if i >= 0:
            try:
                found = json.loads(line[i + len(WORKLOAD_LINE):])
            except ValueError:
                pass
    return found


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    s = sorted(values)
    return {
        "n": len(s),
        "mean": statistics.mean(s),
        "sd": statistics.stdev(s) if len(s) > 1 else 0.0,
        "min": s[0],
        "median": statistics.median(s),
        "p99": s[min(len(s) - 1, int(round((len(s) - 1) * 0.99)))],
        "max": s[-1],
    }


def run_dir(work):
    runs = sorted(glob.glob(os.path.join(work, "results", "*", "jobs.csv")))
    return os.path.dirname(runs[-1]) if runs else None


def steps(work):
    rows = []
    for line in read_text(os.path.join(work, "steps.tsv")).splitlines():
        f = line.split("\t")
        if len(f) >= 4:
            rows.append({"step": f[0], "status": f[1], "exit": f[2], "seconds": number(f[3]),
                         "note": f[4] if len(f) > 4 else ""})
    return rows


def guard_log(work):
    rows = []
    for line in read_text(os.path.join(work, "guard.log")).splitlines():
        f = line.split("\t")
        if len(f) >= 4:
            rows.append({"t": number(f[0]), "tool": f[1], "event": f[2], "detail": f[3]})
    return rows


def mps_calls(guard):
    """migbench's MPS control calls, in order: what each did and how long it took."""
    calls, current = [], None
    for r in guard:
        if r["tool"] != "nvidia-cuda-mps-control":
            continue
        if r["event"] == "call":
            current = {"args": r["detail"], "stdin": [], "env": "", "refused": None}
            calls.append(current)
        elif current is not None and r["event"] == "env":
            current["env"] = r["detail"]
        elif current is not None and r["event"] == "stdin":
            current["stdin"].append(r["detail"])
        elif current is not None and r["event"] == "refused":
            current["refused"] = r["detail"]
        elif current is not None and r["event"] == "exit":
            rc, secs = (r["detail"].split() + ["", ""])[:2]
            current["exit"], current["seconds"] = rc, number(secs)
    return calls


# --- figures -------------------------------------------------------------------------------


def job_figures(run):
    """One row per job: jobs.csv paired with the job's own `migbench-workload:` line."""
    jobs = []
    for j in read_csv(os.path.join(run, "jobs.csv")):
        own = workload_line(read_text(os.path.join(run, j.get("log") or ""))) or {}
        peak, reserved = number(j.get("vram_peak_gib")), number(own.get("max_memory_reserved_gib"))
        duration, wall = number(j.get("duration_s")), number(own.get("wall_s"))
        jobs.append({
            "variant": j["variant"], "job": j["job"], "workload": j["workload"],
            "outcome": j["outcome"], "exit_code": j.get("exit_code"), "pid": j.get("pid"),
            "vram_peak_gib": peak, "max_memory_reserved_gib": reserved,
            "nvml_minus_reserved_gib": peak - reserved
            if peak is not None and reserved is not None else None,
            "duration_s": duration, "wall_s": wall, "elapsed_s": number(own.get("elapsed_s")),
            "init_s": number(own.get("init_s")),
            "overhead_s": duration - wall if duration is not None and wall is not None else None,
            "reason": j.get("reason") or "",
        })
    return jobs


def sample_intervals(run):
    """Milliseconds between consecutive samples, within each variant's repetition."""
    times = {}
    for r in read_csv(os.path.join(run, "samples.csv")):
        t = number(r["t_s"])
        if t is not None:
            times.setdefault((r["variant"], r["repetition"]), set()).add(t)
    gaps = []
    for ts in times.values():
        s = sorted(ts)
        gaps += [(b - a) * 1000.0 for a, b in zip(s, s[1:])]
    return stats(gaps)


def gpu_power(run):
    """The whole GPU's power over every sample that has it, in W."""
    return stats([number(r.get("power_w")) for r in read_csv(os.path.join(run, "samples.csv"))
                  if r.get("scope") == "gpu" and number(r.get("power_w")) is not None])


def attribution(run, jobs):
    """Per variant: the most memory NVML gave the jobs' processes and any other process (under
    MPS, the server if NVML attributes client memory to it)."""
    pids = {}
    for j in jobs:
        pids.setdefault(j["variant"], set()).add(j["pid"])
    out = {}
    for r in read_csv(os.path.join(run, "samples.csv")):
        if r["scope"] != "process":
            continue
        v = out.setdefault(r["variant"], {"job_max_gib": 0.0, "other_max_gib": 0.0,
                                          "other_pids": set()})
        used = number(r["used_gib"]) or 0.0
        if r["id"] in pids.get(r["variant"], ()):
            v["job_max_gib"] = max(v["job_max_gib"], used)
        else:
            v["other_max_gib"] = max(v["other_max_gib"], used)
            v["other_pids"].add(r["id"])
    for v in out.values():
        v["other_pids"] = len(v["other_pids"])
    return out


def variant_timing(run):
    """Per variant: seconds from its start to its first job (setup: MPS daemons) and from its
    last job's end to its end (teardown), on the run's clock."""
    events = []
    for line in read_text(os.path.join(run, "events.jsonl")).splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    out = {}
    for e in events:
        v = out.setdefault(e.get("variant"), {})
        t = e.get("t")
        if e["event"] == "variant_start":
            v["start"] = t
        elif e["event"] == "job_start":
            v["first_job"] = min(v.get("first_job", t), t)
        elif e["event"] == "job_end":
            v["last_end"] = max(v.get("last_end", t), t)
        elif e["event"] == "variant_end":
            v["end"] = t
    timing = {}
    for name, v in out.items():
        if name and {"start", "first_job", "last_end", "end"} <= set(v):
            timing[name] = {"setup_s": v["first_job"] - v["start"],
                            "teardown_s": v["end"] - v["last_end"]}
    return timing


def figures(work):
    discover = read_json(os.path.join(work, "discover.json")) or []
    gpu = discover[0] if discover else {}
    run = run_dir(work)
    jobs = job_figures(run) if run else []
    guard = guard_log(work)
    smi_changes = [r["detail"] for r in guard
                   if r["tool"] == "nvidia-smi" and r["event"] in ("call", "refused")
                   and not is_query(r["detail"])]
    dry = read_text(os.path.join(work, "dry-run", "mig.txt"))
    fig = {
        "work": work,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "gpu": gpu.get("name"),
        "model": (gpu.get("model") or {}).get("Ok"),
        "driver": gpu.get("driver"),
        "cuda": gpu.get("cuda"),
        "memory_gib": gpu.get("memory_gib"),
        "mig_current": gpu.get("mig_current"),
        "record": read_json(os.path.join(work, "record.json")) or {},
        "scenario": read_text(os.path.join(work, "scenario.name")).strip() or None,
        "run_dir": os.path.basename(run) if run else None,
        "steps": steps(work),
        "jobs": jobs,
        "variants": read_csv(os.path.join(run, "variants.csv")) if run else [],
        "variant_timing": variant_timing(run) if run else {},
        "nvml_minus_reserved_gib": {},
        "overhead_s": stats([j["overhead_s"] for j in jobs if j["outcome"] == "ok"]),
        "overhead_full_s": stats([j["overhead_s"] for j in jobs
                                  if j["outcome"] == "ok" and j["variant"] == "full"]),
        "sample_interval_ms": sample_intervals(run) if run else None,
        "power_w": gpu_power(run) if run else None,
        "sample_cost_idle": read_json(os.path.join(work, "sample-cost-idle.json")),
        "sample_cost_job": read_json(os.path.join(work, "sample-cost-job.json")),
        "mps_cycle": read_json(os.path.join(work, "mps-cycle.json")),
        "mps_calls": mps_calls(guard),
        "attribution": attribution(run, jobs) if run else {},
        "oom": [j for j in jobs if j["workload"] == "probe-oom"],
        "dry_run_lines": len([l for l in dry.splitlines() if l and not l.startswith("#")]),
        "dry_run_mig_lines": len([l for l in dry.splitlines() if "nvidia-smi" in l
                                  and not l.startswith("#")]),
        "smi_changes_attempted": smi_changes,
        "after": read_json(os.path.join(work, "after.json")) or {},
    }
    for variant in sorted({j["variant"] for j in jobs}):
        fig["nvml_minus_reserved_gib"][variant] = stats(
            [j["nvml_minus_reserved_gib"] for j in jobs if j["variant"] == variant])
    return fig


def is_query(args):
    words = args.split()
    return all(w in ("-L", "-q", "mig", "-lgi", "-lci", "-lgip", "-lcip", "-i")
               or re.match(r"^(\d+|GPU-.*|MIG-.*|--id=.*|--format=.*|--query-(gpu|compute-apps)=.*)$", w)
               for w in words)


# --- the Markdown section ------------------------------------------------------------------


def f2(v, unit="", digits=2):
    return "n/a" if v is None else ("%.*f%s" % (digits, v, unit))


def spread(s, unit, digits=2, scale=1.0):
    if not s:
        return None
    g = lambda k: "%.*f" % (digits, s[k] * scale)  # noqa: E731
    return "%s%s mean, sd %s, min %s, max %s (n = %d)" % (
        g("mean"), unit, g("sd"), g("min"), g("max"), s["n"])


def cost(c):
    if not c:
        return None
    return "%.3f ms median, p99 %.3f ms, max %.3f ms (%d samples of %d rows, %d process(es))" % (
        c["median_ms"], c["p99_ms"], c["max_ms"], c["samples"], c["rows"], c["processes"])


def summary(fig):
    rows = []  # (figure, value or None, how)

    def add(name, value, how):
        rows.append((name, value, how))

    for variant, s in sorted(fig["nvml_minus_reserved_gib"].items()):
        add("NVML peak − PyTorch reserved, %s" % variant, spread(s, " GiB"),
            "`vram_peak_gib` (jobs.csv) − the job's `max_memory_reserved_gib`")
    add("harness overhead per job, full", spread(fig["overhead_full_s"], " ms", 1, 1000.0),
        "`duration_s` − the job's `wall_s` (process start to its report), jobs one at a time")
    add("harness overhead per job, all", spread(fig["overhead_s"], " ms", 1, 1000.0),
        "as above, every job that completed")
    add("sample cost, idle GPU", cost(fig["sample_cost_idle"]),
        "`migbench sample-cost`: one `NvmlBackend::sample`")
    add("sample cost, one job", cost(fig["sample_cost_job"]),
        "the same with a probe job on the GPU")
    si = fig["sample_interval_ms"]
    add("sample interval at 10 ms", si and "%.2f ms median, p99 %.2f ms, max %.2f ms (n = %d)"
        % (si["median"], si["p99"], si["max"], si["n"]), "gaps between `t_s` in samples.csv")
    m = fig["mps_cycle"] or {}
    add("MPS daemon up", m.get("ready_s") is not None and "%.3f s (`-d` returned after %.3f s)"
        % (m["ready_s"], m["start_s"]) or None, "`-d` until its `control` pipe exists")
    add("MPS first client", m.get("client_s") is not None and "%.3f s start to exit, %s s init"
        % (m["client_s"], f2(m.get("client_init_s"), "", 3)) or None,
        "a tiny probe under the fresh daemon (its server starts for it)")
    add("MPS quit to gone", m.get("gone_s") is not None and "%.3f s, %d MPS process(es) left"
        % (m["gone_s"], m.get("left", -1)) or None, "`quit` until no process has the pipe")
    for name, t in sorted(fig["variant_timing"].items()):
        add("setup and teardown, %s" % name, "%.3f s setup, %.3f s teardown"
            % (t["setup_s"], t["teardown_s"]), "events.jsonl: variant start to first job, "
            "last job to variant end")
    oom = fig["oom"]
    if oom:
        others = [j for j in fig["jobs"] if j["variant"] == oom[0]["variant"]
                  and j["workload"] != "probe-oom"]
        add("OOM job", "%s, exit %s; others ok: %d of %d" % (
            oom[0]["outcome"], oom[0]["exit_code"], len([j for j in others if j["outcome"] == "ok"]),
            len(others)), "`probe-oom` in jobs.csv")
    else:
        add("OOM job", None, "`probe-oom` in jobs.csv")
    for variant, a in sorted(fig["attribution"].items()):
        add("per-process VRAM, %s" % variant, "jobs' processes up to %.2f GiB; %d other "
            "process(es) up to %.2f GiB" % (a["job_max_gib"], a["other_pids"], a["other_max_gib"]),
            "process rows of samples.csv")
    for v in fig["variants"]:
        joules, watts = number(v.get("energy_j")), number(v.get("mean_power_w"))
        add("energy, %s" % v.get("variant"), joules is not None and "%.1f J (%s), mean %.1f W, "
            "%s J per unit" % (joules, v.get("energy_source") or "?", watts or 0.0,
                               f2(number(v.get("energy_per_unit_j")), "", 1)) or None,
            "variants.csv: the GPU's energy counter (nvmlDeviceGetTotalEnergyConsumption) "
            "around the variant's jobs")
    power = fig["power_w"]
    add("power samples", power and spread(power, " W", 1),
        "`power_w` of the GPU rows of samples.csv (nvmlDeviceGetPowerUsage)")
    add("MIG dry run", "%d command lines, %d of them nvidia-smi (printed, not run)"
        % (fig["dry_run_lines"], fig["dry_run_mig_lines"]) if fig["dry_run_lines"] else None,
        "`migbench run --dry-run` with a mig and a mig+mps variant")
    after = fig["after"]
    add("left behind", after and "%d MPS process(es), %d compute process(es), MIG mode %s"
        % (after.get("mps_processes", -1), after.get("compute_processes", -1),
           "as found" if after.get("mig_as_found") else "CHANGED") or None,
        "after the run: /proc, `nvidia-smi --query-compute-apps`, `migbench discover`")
    add("GPU changes attempted", "%d" % len(fig["smi_changes_attempted"]),
        "nvidia-smi calls other than queries, through the kit's guard")
    total = sum(s["seconds"] or 0 for s in fig["steps"])
    add("kit time", "%.0f s in %d steps" % (total, len(fig["steps"])),
        "steps.tsv, the steps before this report")

    rec = fig["record"]
    lines = [
        "### On a GPU: %s, driver %s, CUDA %s (%s)" % (
            fig["gpu"] or "unknown GPU", fig["driver"] or "?", fig["cuda"] or "?", fig["date"]),
        "",
        "Measured by `scripts/gpu-validate.sh` (scenario `%s`, run `%s`): %s GiB, MIG %s; "
        "PyTorch %s; %s; host %s." % (
            fig["scenario"] or "?", fig["run_dir"] or "none", f2(fig["memory_gib"]),
            {True: "on", False: "off"}.get(fig["mig_current"], "?"), rec.get("torch", "?"),
            rec.get("migbench", "?"), rec.get("uname", "?")),
        "",
        "| figure | value | how |",
        "|---|---|---|",
    ]
    for name, value, how in rows:
        lines.append("| %s | %s | %s |" % (name, value or "not measured", how))
    lines += ["", "| variant | job | workload | outcome | NVML peak GiB | reserved GiB | "
              "difference GiB | duration s | wall s | overhead ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for j in fig["jobs"]:
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            j["variant"], j["job"], j["workload"], j["outcome"], f2(j["vram_peak_gib"]),
            f2(j["max_memory_reserved_gib"]), f2(j["nvml_minus_reserved_gib"]),
            f2(j["duration_s"], "", 3), f2(j["wall_s"], "", 3),
            f2(j["overhead_s"] and j["overhead_s"] * 1000, "", 1)))
    lines += ["", "| step | status | seconds | note |", "|---|---|---|---|"]
    for s in fig["steps"]:
        lines.append("| %s | %s | %s | %s |" % (s["step"], s["status"], f2(s["seconds"], "", 1),
                                                 s["note"]))
    calls = fig["mps_calls"]
    if calls:
        lines += ["", "MPS control calls through the kit's guard (`$WORK` is the work directory; "
                  "first the kit's own MPS cycle, then migbench's variants):", ""]
        for c in calls:
            lines.append("- `%snvidia-cuda-mps-control%s` (%s): exit %s in %s s%s" % (
                "echo %s | " % "; ".join(c["stdin"]) if c["stdin"] else "",
                " " + c["args"] if c["args"] else "", c["env"].replace(fig["work"], "$WORK"),
                c.get("exit", "?"), f2(c.get("seconds"), "", 3),
                ", REFUSED: " + c["refused"] if c["refused"] else ""))
    return "\n".join(lines) + "\n"


def get(path, keys):
    """The value at `keys` (dot-separated, list indices as numbers) of a JSON file, as text: JSON
    for booleans and null, nothing when it is not there."""
    value = read_json(path)
    for key in keys.split("."):
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, ValueError, TypeError):
            return ""
    return value if isinstance(value, str) else json.dumps(value)


def main(argv):
    if len(argv) == 3 and argv[0] == "get":
        print(get(argv[1], argv[2]))
    elif len(argv) >= 4 and argv[0] == "scenario":
        derive_scenario(argv[1], argv[2], argv[3], argv[4:],
                        os.environ.get("GPU_VALIDATE_ITERATIONS"))
    elif len(argv) == 4 and argv[0] == "mig-dry":
        mig_dry_scenario(argv[1], argv[2], argv[3])
    elif len(argv) == 3 and argv[0] == "report":
        fig = figures(argv[1])
        with open(os.path.join(argv[2], "figures.json"), "w") as f:
            json.dump(fig, f, indent=1, sort_keys=True)
        with open(os.path.join(argv[2], "summary.md"), "w") as f:
            f.write(summary(fig))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
