//! The validation kit (scripts/gpu-validate.sh) against the stand-in driver of examples/fake_*.rs,
//! run as the lent GPU machine runs it, with the real validation scenario (only the job program
//! swapped for the stand-in CUDA job, which takes gpu_workload.py's arguments): so that on the day
//! it runs on hardware, only hardware can surprise it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::fake_driver::{mps_processes_under, nvidia_tool, FakeDriver};

/// What the machine sends back: at most 8 files, plain names, each under 16 MiB.
const MAX_FILES: usize = 8;
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the kit on `gpu` into `out`, with `env` on top of the stand-in's environment.
fn kit(gpu: &FakeDriver, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg("scripts/gpu-validate.sh")
        .arg(out)
        .envs(gpu.env())
        .env("MIGBENCH", env!("CARGO_BIN_EXE_migbench"))
        .env("GPU_VALIDATE_JOB", gpu.job())
        // The work directory inside the test's own, so nothing outlives it.
        .env("TMPDIR", gpu.dir.path())
        .env_remove("OUT")
        .env_remove("GPU_VALIDATE_SCENARIO");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The summary's figure table: figure name → value.
fn figures(summary: &str) -> BTreeMap<String, String> {
    summary
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (cells.len() == 3 && l.starts_with("| ")).then(|| {
                (
                    cells[0].trim_start_matches("| ").to_string(),
                    cells[1].to_string(),
                )
            })
        })
        .collect()
}

/// logs.tar.gz unpacked into a directory of its own.
fn unpack(out: &Path) -> PathBuf {
    let dir = out.with_extension("logs");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(out.join("logs.tar.gz"))
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// Lines of the guard's log: (tool, event, detail).
fn guard_log(logs: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(logs.join("guard.log"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            (f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

/// Whether an nvidia-smi call (its arguments) only reads the GPU.
fn is_query(args: &str) -> bool {
    args.split_whitespace().all(|w| {
        matches!(w, "-L" | "-q" | "mig" | "-lgi" | "-lci" | "-i" | "0")
            || w.starts_with("--query-gpu=")
            || w.starts_with("--query-compute-apps=")
            || w.starts_with("--format=")
    })
}

#[test]
fn the_kit_runs_the_whole_procedure_on_the_stand_in_and_sends_back_at_most_8_files() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let out = gpu.dir.path().join("out");
    let found = gpu.state();
    let started = std::time::Instant::now();
    let run = kit(&gpu, &out, &[]);
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{said}");
    assert!(
        started.elapsed().as_secs() < 60,
        "the kit took {:?}",
        started.elapsed()
    );

    // What comes back: at most 8 plain files with names the machine accepts.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(
                e.file_type().unwrap().is_file(),
                "{:?} is not a file",
                e.path()
            );
            assert!(
                e.metadata().unwrap().len() < MAX_FILE_BYTES,
                "{:?}",
                e.path()
            );
            e.file_name().to_string_lossy().into_owned()
        })
        .collect();
    names.sort();
    assert!(names.len() <= MAX_FILES, "{names:?}");
    for name in &names {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{name}"
        );
    }
    assert_eq!(
        names,
        [
            "discover.json",
            "dry-run.txt",
            "figures.json",
            "gpu-validate.log",
            "jobs.csv",
            "logs.tar.gz",
            "summary.md"
        ]
    );

    // The section for docs/validation.md: date, GPU, driver and CUDA, and every figure a number.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let heading = summary.lines().next().unwrap();
    assert!(
        heading
            .starts_with("### On a GPU: NVIDIA H100 80GB HBM3, driver 535.261.03, CUDA 12.2 (20"),
        "{heading}"
    );
    assert!(said.contains(heading), "the summary is printed too");
    let figs = figures(&summary);
    let expected = [
        "NVML peak − PyTorch reserved, full",
        "NVML peak − PyTorch reserved, timeslice",
        "NVML peak − PyTorch reserved, mps",
        "NVML peak − PyTorch reserved, mps-oom",
        "harness overhead per job, full",
        "harness overhead per job, all",
        "sample cost, idle GPU",
        "sample cost, one job",
        "sample interval at 10 ms",
        "MPS daemon up",
        "MPS first client",
        "MPS quit to gone",
        "setup and teardown, mps",
        "OOM job",
        "per-process VRAM, mps",
        "energy, full",
        "energy, mps",
        "power samples",
        "MIG dry run",
        "left behind",
        "GPU changes attempted",
        "kit time",
    ];
    for name in expected {
        let value = figs
            .get(name)
            .unwrap_or_else(|| panic!("no figure {name:?} in\n{summary}"));
        assert!(
            value.chars().any(|c| c.is_ascii_digit()) && !value.contains("not measured"),
            "{name}: {value}"
        );
    }
    // The pairing is of the right figures: the stand-in's CUDA context is 0.5 GiB exactly.
    for variant in ["full", "timeslice", "mps", "mps-oom"] {
        let value = &figs[&format!("NVML peak − PyTorch reserved, {variant}")];
        assert!(
            value.starts_with("0.50 GiB mean, sd 0.00"),
            "{variant}: {value}"
        );
    }
    assert_eq!(figs["OOM job"], "oom, exit 1; others ok: 2 of 2");
    // Energy from the GPU's counter, power between the stand-in H100's idle and board power.
    assert!(
        figs["energy, full"].contains("J (counter)"),
        "{}",
        figs["energy, full"]
    );
    let power: f64 = figs["power samples"]
        .split(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap();
    assert!((70.0..=700.0).contains(&power), "{}", figs["power samples"]);
    assert_eq!(
        figs["left behind"],
        "0 MPS process(es), 0 compute process(es), MIG mode as found"
    );
    assert_eq!(figs["GPU changes attempted"], "0");
    assert!(
        figs["sample cost, one job"].contains("1 process(es)"),
        "{}",
        figs["sample cost, one job"]
    );
    // One row per job of the scenario, each with migbench's and the job's own figures.
    let job_rows = summary
        .lines()
        .filter(|l| l.contains(" | probe | ok | 6.00 | 5.50 | 0.50 | "))
        .count();
    assert_eq!(job_rows, 11, "{summary}");

    // figures.json has the same, for a machine to read.
    let fig: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("figures.json")).unwrap()).unwrap();
    assert_eq!(fig["jobs"].as_array().unwrap().len(), 12);
    assert_eq!(fig["gpu"], "NVIDIA H100 80GB HBM3");
    assert!(fig["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "ok"));

    // The dry runs were captured: the scenario's MPS lines, and the MIG variants' nvidia-smi ones.
    let dry = std::fs::read_to_string(out.join("dry-run.txt")).unwrap();
    assert!(dry.contains("nvidia-cuda-mps-control -d"), "{dry}");
    assert!(dry.contains("nvidia-smi -i 0 -mig 1"), "{dry}");
    assert!(dry.contains("nvidia-smi mig -i 0 -cgi"), "{dry}");
    assert!(dry.contains("variant mig-mps-dry"), "{dry}");

    // No GPU change reached the driver: the stand-in nvidia-smi saw queries only, and the GPU is
    // as found.
    let calls = gpu.calls();
    assert!(
        !calls.is_empty(),
        "the kit records the GPU through nvidia-smi"
    );
    for call in &calls {
        assert!(
            is_query(call),
            "the kit ran `nvidia-smi {call}`: {calls:#?}"
        );
    }
    assert_eq!(gpu.state(), found);

    // Every MPS daemon had private pipe and log directories under the kit's work directory, and
    // each was sent `quit`; none is left.
    let logs = unpack(&out);
    let guard = guard_log(&logs);
    let mut daemons = Vec::new();
    for (i, (tool, event, detail)) in guard.iter().enumerate() {
        if tool == "nvidia-cuda-mps-control" && event == "call" && detail == "-d" {
            let (_, event, env) = &guard[i + 1];
            assert_eq!(event, "env");
            let pipe = env
                .strip_prefix("pipe=")
                .and_then(|e| e.split(' ').next())
                .unwrap()
                .to_string();
            // The kit's own cycle keeps its pipes in its work directory; migbench's runs in
            // their private /tmp/mb-<hash>/dN; both log in the work directory.
            assert!(
                pipe.contains("/gpu-validate.") || pipe.starts_with("/tmp/mb-"),
                "{env}"
            );
            assert!(
                env.contains(" log=") && env.contains("/gpu-validate."),
                "{env}"
            );
            daemons.push(pipe);
        }
    }
    assert_eq!(
        daemons.len(),
        3,
        "the kit's MPS cycle, mps and mps-oom: {guard:#?}"
    );
    for pipe in &daemons {
        let quit = guard.windows(3).any(|w| {
            w[0].1 == "call"
                && w[1].2.starts_with(&format!("pipe={pipe} "))
                && w[2]
                    == (
                        "nvidia-cuda-mps-control".into(),
                        "stdin".into(),
                        "quit".into(),
                    )
        });
        assert!(quit, "no quit for {pipe}: {guard:#?}");
    }
    assert!(
        guard.iter().all(|(_, event, _)| event != "refused"),
        "{guard:#?}"
    );
    let control = std::fs::read_to_string(
        std::fs::read_dir(logs.join("results"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("mps/mps/r1/d0/log/control.log"),
    )
    .unwrap();
    assert!(
        control.contains("Starting control daemon") && control.contains("Exit with status 0"),
        "{control}"
    );
    assert_eq!(mps_processes_under(gpu.dir.path()), Vec::<String>::new());
}

#[test]
fn a_scenario_that_would_change_mig_is_refused_before_it_runs() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let scenario = gpu.dir.path().join("mig.toml");
    let validation = std::fs::read_to_string("scenarios/validation/h100-torch.toml").unwrap();
    std::fs::write(
        &scenario,
        validation
            + "\n[[variants]]\nname = \"mig\"\nmode = \"mig\"\nlayout = [\"3g.40gb\", \"3g.40gb\"]\n\
               jobs = [{ workload = \"probe\", count = 2 }]\n",
    )
    .unwrap();
    let out = gpu.dir.path().join("out");
    let found = gpu.state();
    let run = kit(
        &gpu,
        &out,
        &[("GPU_VALIDATE_SCENARIO", scenario.to_str().unwrap())],
    );
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(1), "{said}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let refused = summary
        .lines()
        .find(|l| l.starts_with("| scenarios | "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        refused.starts_with("| scenarios | refused |") && refused.contains("would change MIG"),
        "{refused}"
    );
    // Nothing ran: no run directory, no job table, and the driver saw no change.
    assert!(!out.join("jobs.csv").exists());
    for call in gpu.calls() {
        assert!(is_query(&call), "the kit ran `nvidia-smi {call}`");
    }
    assert_eq!(gpu.state(), found);
    // The other steps still ran, and their figures came back.
    let figs = figures(&summary);
    assert!(
        figs["sample cost, idle GPU"].contains("ms median"),
        "{summary}"
    );
}

/// Runs the guard installed as `tool` with `args`, `stdin` and `env`.
fn guard(gpu: &FakeDriver, tool: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let bin = gpu.dir.path().join("guard");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join(tool);
    if !link.exists() {
        let script = std::fs::canonicalize("scripts/gpu-guard.sh").unwrap();
        std::os::unix::fs::symlink(script, &link).unwrap();
    }
    let mut cmd = Command::new(&link);
    cmd.args(args)
        .env("MIGBENCH_FAKE_GPU", gpu.gpu_dir())
        .env("GPU_GUARD_LOG", gpu.dir.path().join("guard.log"))
        .env("GPU_GUARD_SMI", gpu.dir.path().join("bin/nvidia-smi"))
        .env("LD_LIBRARY_PATH", gpu.gpu_dir().join("lib"))
        .env(
            "GPU_GUARD_MPS_CONTROL",
            nvidia_tool("nvidia-cuda-mps-control"),
        )
        .env("GPU_GUARD_PRIVATE_ROOT", gpu.dir.path().join("private"))
        .env_remove("CUDA_MPS_PIPE_DIRECTORY")
        .env_remove("CUDA_MPS_LOG_DIRECTORY")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_guard_passes_queries_on_and_refuses_every_gpu_change() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let listed = guard(&gpu, "nvidia-smi", &["-L"], "", &[]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(text(&listed.stdout).contains(&gpu.uuid));
    assert_eq!(gpu.calls(), ["-L"]);

    for change in [
        &["-i", "0", "-mig", "1"][..],
        &["mig", "-i", "0", "-cgi", "9"],
        &["mig", "-i", "0", "-dgi"],
        &["-i", "0", "-c", "EXCLUSIVE_PROCESS"],
        &["-pm", "1"],
        &["-i", "0", "-pl", "300"],
        &["-lgc", "1000,1500"],
        &["-r"],
        &["--gpu-reset"],
        &["-i", "-mig", "1"],
    ] {
        let refused = guard(&gpu, "nvidia-smi", change, "", &[]);
        assert_eq!(refused.status.code(), Some(4), "{change:?}");
        assert!(text(&refused.stderr).contains("refused"), "{change:?}");
    }
    assert_eq!(gpu.calls(), ["-L"], "no change reached the driver");

    // MPS only with private directories under the kit's own.
    let private = gpu.dir.path().join("private/mps");
    let (pipe, log) = (private.join("pipe"), private.join("log"));
    std::fs::create_dir_all(&pipe).unwrap();
    let shared = [
        vec![],
        vec![("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")],
        vec![
            ("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps"),
            ("CUDA_MPS_LOG_DIRECTORY", "/var/log/nvidia-mps"),
        ],
        vec![
            ("CUDA_MPS_PIPE_DIRECTORY", pipe.to_str().unwrap()),
            ("CUDA_MPS_LOG_DIRECTORY", "/tmp/elsewhere"),
        ],
    ];
    for env in &shared {
        let refused = guard(&gpu, "nvidia-cuda-mps-control", &["-d"], "", env);
        assert_eq!(refused.status.code(), Some(4), "{env:?}");
    }
    let own = [
        ("CUDA_MPS_PIPE_DIRECTORY", pipe.to_str().unwrap()),
        ("CUDA_MPS_LOG_DIRECTORY", log.to_str().unwrap()),
    ];
    let foreground = guard(&gpu, "nvidia-cuda-mps-control", &["-f"], "", &own);
    assert_eq!(foreground.status.code(), Some(4));
    assert!(mps_processes_under(gpu.dir.path()).is_empty());
    let started = guard(&gpu, "nvidia-cuda-mps-control", &["-d"], "", &own);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pipe.join("control").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never came up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let unknown = guard(
        &gpu,
        "nvidia-cuda-mps-control",
        &[],
        "terminate_client 1 2\n",
        &own,
    );
    assert_eq!(unknown.status.code(), Some(4));
    let quit = guard(&gpu, "nvidia-cuda-mps-control", &[], "quit\n", &own);
    assert!(quit.status.success(), "{}", text(&quit.stderr));
    while !mps_processes_under(gpu.dir.path()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never went"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // NVIDIA's daemon logs every command it is sent.
    let commands = std::fs::read_to_string(log.join("control.log")).unwrap();
    assert!(commands.contains("Cmd:quit"), "{commands}");
    assert!(
        !commands.contains("terminate_client"),
        "the refused command never reached the daemon: {commands}"
    );

    let log = std::fs::read_to_string(gpu.dir.path().join("guard.log")).unwrap();
    assert_eq!(log.matches("\trefused\t").count(), 10 + 4 + 2, "{log}");
}

#[test]
fn a_run_cut_off_by_the_budget_is_stopped_and_still_reported_with_nothing_left() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let out = gpu.dir.path().join("out");
    // Probes of 30 s: the scenario needs minutes, and the budget leaves it at most 65 s (100 s
    // less the 35 s kept for `after` and `report`, less the steps before: it runs if they take
    // < 60 s, as they do on a loaded 2-core machine, where the sampler step alone takes 20 s).
    let run = kit(
        &gpu,
        &out,
        &[
            ("GPU_VALIDATE_ITERATIONS", "300000"),
            ("GPU_VALIDATE_BUDGET_S", "100"),
        ],
    );
    let said = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(1), "{said}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let step = |name: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | ")))
            .unwrap_or_else(|| panic!("no step {name} in\n{summary}"))
            .to_string()
    };
    assert!(
        step("scenarios").starts_with("| scenarios | timeout |"),
        "{summary}"
    );
    // migbench was stopped, not killed: it recorded the job it stopped, and put everything back.
    let jobs = std::fs::read_to_string(out.join("jobs.csv")).unwrap();
    assert!(jobs.contains(",interrupted,"), "{jobs}");
    assert!(step("after").starts_with("| after | ok |"), "{summary}");
    assert_eq!(
        figures(&summary)["left behind"],
        "0 MPS process(es), 0 compute process(es), MIG mode as found"
    );
    assert!(std::fs::read_dir(&out).unwrap().count() <= MAX_FILES);
}
