//! The fleet commands from the outside: a report over two machines names them, `slurm submit
//! --print` shows the scripts and submits nothing, and bad input exits 2 with a message.

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
