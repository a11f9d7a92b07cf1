//! The fleet commands from the outside: a report over two machines names them, `slurm submit
//! --print` shows the scripts and submits nothing, and bad input exits 2 with a message.

mod common;

use std::path::Path;

use assert_cmd::Command;
use predicates::str::contains;

fn migbench() -> Command {
    Command::cargo_bin("migbench").unwrap()
}

fn run(out: &Path, env: &[(&str, &str)]) {
    let mut cmd = migbench();
    cmd.args(["run", "--sim", "--quiet", "--out"])
        .arg(out)
        .arg("scenarios/h100-3x-ti2v.toml");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.assert().success();
}

#[test]
fn a_report_over_two_machines_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    run(
        &a,
        &[
            ("SLURM_JOB_ID", "71"),
            ("SLURM_ARRAY_JOB_ID", "70"),
            ("SLURM_ARRAY_TASK_ID", "1"),
        ],
    );
    run(&b, &[]);
    // The second run as if made on another node: its manifest names another host and GPU.
    let run_b = std::fs::read_dir(&b)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let manifest = run_b.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["slurm"], serde_json::Value::Null, "not run under Slurm");
    m["host"] = "node-b".into();
    m["gpu_uuid"] = "GPU-node-b".into();
    std::fs::write(&manifest, m.to_string()).unwrap();

    let report = dir.path().join("report");
    migbench()
        .arg("report")
        .args([&a, &b])
        .arg("--out")
        .arg(&report)
        .assert()
        .success()
        .stdout(contains("Machines"))
        .stdout(contains("node-b"));
    let runs = std::fs::read_to_string(report.join("runs.csv")).unwrap();
    let header = runs.lines().next().unwrap();
    assert!(header.ends_with(",host,gpu_uuid,slurm_job"), "{runs}");
    assert!(runs.contains(",node-b,GPU-node-b,-"), "{runs}");
    assert!(runs.contains(",70_1"), "{runs}");
    let hosts = std::fs::read_to_string(report.join("hosts.csv")).unwrap();
    // Four variants on two machines; identical simulated figures: no node is slower.
    assert_eq!(hosts.lines().count(), 1 + 8, "{hosts}");
    assert!(
        hosts.lines().skip(1).all(|l| l.ends_with(",0.0")),
        "{hosts}"
    );
    let variants = std::fs::read_to_string(report.join("variants.csv")).unwrap();
    assert!(variants.lines().next().unwrap().ends_with(",machines"));
    assert!(
        variants.lines().skip(1).all(|l| l.ends_with(",2")),
        "{variants}"
    );

    // One machine: no machine columns at all.
    let single = dir.path().join("single");
    migbench()
        .arg("report")
        .arg(&a)
        .arg("--out")
        .arg(&single)
        .assert()
        .success();
    assert!(!single.join("hosts.csv").exists());
    let runs = std::fs::read_to_string(single.join("runs.csv")).unwrap();
    assert!(
        runs.lines().next().unwrap().ends_with(",status,slurm_job"),
        "{runs}"
    );
}

#[test]
fn slurm_submit_print_shows_the_scripts_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    migbench()
        .args(["slurm", "submit", "--print", "--partition", "gpu"])
        .args(["--gres", "gpu:{gpu}:1", "--results"])
        .arg(&results)
        .args(["scenarios/h100-3x-ti2v.toml", "scenarios/b200-ti2v.toml"])
        .assert()
        .success()
        .stdout(contains("#SBATCH --exclusive"))
        .stdout(contains("#SBATCH --gres=gpu:h100-80gb:1"))
        .stdout(contains("#SBATCH --gres=gpu:b200-180gb:1"))
        .stdout(contains("#SBATCH --dependency=afterany:$RUN_JOBS"))
        .stdout(contains("# sbatch --parsable"));
    assert!(!results.exists(), "--print writes nothing");
}

/// A newline in a value that goes into a batch script made a line of its own there, which bash
/// ran (`--partition $'gpu\ntouch /tmp/X'`).
#[test]
fn slurm_submit_refuses_control_characters_in_what_reaches_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let touched = dir.path().join("touched");
    let injected = format!("gpu\ntouch {}", touched.display());
    let odd_results = dir.path().join("results\nid");
    for (option, value, results) in [
        ("--partition", injected.as_str(), dir.path().join("results")),
        ("--constraint", "{gpu}\r", dir.path().join("results")),
        ("--gres", "gpu:1\u{1b}[2J", dir.path().join("results")),
        ("--partition", "gpu", odd_results),
    ] {
        for print in [true, false] {
            let mut cmd = migbench();
            cmd.args(["slurm", "submit", option, value, "--results"])
                .arg(&results);
            if print {
                cmd.arg("--print");
            }
            cmd.arg("scenarios/h100-3x-ti2v.toml")
                .assert()
                .code(2)
                .stderr(contains("control character U+00"))
                .stderr(contains("values that go into a batch script may hold none"));
            assert!(!results.exists(), "{option}: nothing written");
        }
    }
    assert!(!touched.exists());
    // The printed sbatch line is quoted like every path in the scripts.
    let spaced = dir.path().join("my results");
    migbench()
        .args(["slurm", "submit", "--print", "--results"])
        .arg(&spaced)
        .arg("scenarios/h100-3x-ti2v.toml")
        .assert()
        .success()
        .stdout(contains(format!(
            "# sbatch --parsable '{}/",
            spaced.display()
        )));
}

/// A garbage, cut or empty report.json of the last night was "left out", the night before
/// judged, and `history` exited 0: the gate passed a night nobody looked at.
#[test]
fn the_nightly_gate_fails_when_the_last_night_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    run(&runs, &[]);
    let history = dir.path().join("history");
    let good = history.join("20260101T000000Z/report");
    migbench()
        .arg("report")
        .arg(&runs)
        .arg("--out")
        .arg(&good)
        .assert()
        .success();
    let report = std::fs::read(good.join("report.json")).unwrap();
    let night = |name: &str, bytes: &[u8]| {
        let d = history.join(name).join("report");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("report.json"), bytes).unwrap();
    };
    night("20260102T000000Z", &report);
    let judge = || {
        migbench()
            .arg("history")
            .arg(&history)
            .arg("--out")
            .arg(dir.path().join("judged"))
            .assert()
    };
    judge().success();
    // Garbage, cut short, empty.
    for bytes in [
        &b"\x00\xffnot json"[..],
        &report[..report.len() / 2],
        &b""[..],
    ] {
        night("20260103T000000Z", bytes);
        judge()
            .code(2)
            .stderr(contains("the last night cannot be judged: "))
            .stderr(contains("20260103T000000Z/report/report.json"));
        // An unreadable night before the last is left out, with a warning.
        night("20260104T000000Z", &report);
        judge()
            .success()
            .stdout(contains("20260103T000000Z/report/report.json"))
            .stdout(contains("left out"));
        std::fs::remove_dir_all(history.join("20260104T000000Z")).unwrap();
    }
    // A last night that has runs but no report is not judged either.
    std::fs::remove_dir_all(history.join("20260103T000000Z")).unwrap();
    std::fs::create_dir_all(history.join("20260105T000000Z/runs")).unwrap();
    judge()
        .code(2)
        .stderr(contains("20260105T000000Z: no report/report.json"));
}

/// 1,100 idle connections to `/metrics` under `ulimit -n 1024` took the file descriptors the run
/// needed, and it failed writing its jobs (exit 1). Here 600 under a limit of 256.
#[test]
fn idle_connections_to_the_metrics_endpoint_cannot_starve_the_run() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[scenario]\nname = \"fds\"\n[gpu]\nmodel = \"h100-80gb\"\n\n[[variants]]\nname = \"v\"\nmode = \"full\"\njobs = [{ workload = \"ti2v-5b\", count = 2 }]\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("migbench"));
    cmd.args(["run", "--sim", "--quiet", "--pace", "40"])
        .args(["--metrics-listen", "127.0.0.1:0", "--out"])
        .arg(dir.path().join("results"))
        .arg(&scenario)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut run = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let said = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    let endpoint = common::metrics_endpoint(&line);
    let idle: Vec<std::net::TcpStream> = (0..600)
        .filter_map(|_| std::net::TcpStream::connect(&endpoint).ok())
        .collect();
    let status = run.wait().unwrap();
    drop(idle);
    let said = said.join().unwrap();
    assert!(status.success(), "{status}: {said}");
}

#[test]
fn bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    migbench()
        .args(["history"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(2)
        .stderr(contains("expected a nightly history directory"));
    migbench()
        .arg("history")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains("no nights found"));
    migbench()
        .args(["history", "--baseline-nights", "0"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains(
            "--baseline-nights 0: a number of nights, 1 to 366",
        ));
    migbench()
        .args(["run", "--sim", "--metrics-listen", "localhost"])
        .arg("scenarios/h100-3x-ti2v.toml")
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains("expected IP:PORT"));
    migbench()
        .args(["slurm", "submit", "--print", "--results"])
        .arg(dir.path())
        .arg("missing.toml")
        .assert()
        .code(2);
}
