//! Helpers shared by the integration tests: `mod common;` at the top of a test file.
//!
//! - the `migbench` binary under test, with or without a state directory of its own;
//! - running a scenario on the simulator and finding the run directory it wrote;
//! - reading a run's Parquet tables, and copying a run with one table edited ([`edit`]);
//! - the stand-in NVIDIA driver of examples/fake_*.rs ([`fake_driver`]).

#![allow(dead_code)] // each test file uses part of it

pub mod daemons;
pub mod edit;
pub mod fake_driver;

#[allow(unused_imports)] // the daemon tests use them
pub use daemons::{can_run, free_port, missing, Daemon};

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use polars::prelude::*;

/// Options that keep a simulated run quick: one VRAM sample every simulated second.
pub const SAMPLE_EVERY_SECOND: &[&str] = &["--sample-ms", "1000"];

/// A load-sweep scenario: one Qwen3-4B server with the whole A100 (`full`), and one on each of
/// two 3g.40gb MIG instances (`mig`), under the `[load]` table's lines `load`.
pub fn sweep_scenario(load: &str) -> String {
    format!(
        r#"[scenario]
name = "sweep"
[gpu]
model = "a100-80gb"
[load]
{load}
[[variants]]
name = "full"
mode = "full"
jobs = [{{ workload = "qwen3-4b" }}]
[[variants]]
name = "mig"
mode = "mig"
layout = ["3g.40gb", "3g.40gb"]
jobs = [{{ workload = "qwen3-4b", count = 2 }}]
"#
    )
}

/// `IP:PORT` of the `/metrics` endpoint a `run --metrics-listen` names in its first line of
/// standard error.
pub fn metrics_endpoint(first_line: &str) -> String {
    first_line
        .trim()
        .strip_prefix("metrics: http://")
        .and_then(|l| l.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address on stderr: {first_line:?}"))
        .to_string()
}

/// The `migbench` binary under test.
pub fn migbench() -> Command {
    Command::cargo_bin("migbench").unwrap()
}

/// `migbench` with its GPU locks and journals in `state_dir` rather than the user's.
pub fn migbench_in(state_dir: &Path) -> Command {
    let mut cmd = migbench();
    cmd.env("MIGBENCH_STATE_DIR", state_dir);
    cmd
}

/// Runs `cmd`, which must succeed, and returns its output.
pub fn succeeds(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd`, which must succeed, and returns its standard output.
pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(succeeds(cmd).stdout).unwrap()
}

/// `migbench run --sim --quiet OPTIONS --out OUT SCENARIO`, successful or not: the run directory
/// it wrote and its output.
pub fn run_sim_output(
    scenario: impl AsRef<Path>,
    out: &Path,
    options: &[&str],
) -> (PathBuf, Output) {
    let output = migbench()
        .args(["run", "--sim", "--quiet"])
        .args(options)
        .arg("--out")
        .arg(out)
        .arg(scenario.as_ref())
        .output()
        .unwrap();
    (run_dir(out), output)
}

/// Runs `scenario` on the simulator with `options` into `out`, which must succeed; returns the
/// run directory.
pub fn run_sim(scenario: impl AsRef<Path>, out: &Path, options: &[&str]) -> PathBuf {
    let (dir, output) = run_sim_output(scenario, out, options);
    ran(&output);
    dir
}

/// The standard output of a command that must have succeeded (its output shown if not).
pub fn ran(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The last run directory below `out` in name order (`<scenario>-<UTC time>`: the newest run of a
/// scenario). A run killed
/// early may have no manifest yet, so any directory counts.
pub fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop().expect("a run directory")
}

/// A Parquet file, read whole.
pub fn read_parquet(path: &Path) -> DataFrame {
    LazyFrame::scan_parquet(path, Default::default())
        .unwrap()
        .collect()
        .unwrap()
}

/// Table `name` (`jobs`, `variants`, `samples`, ...) of the run in `dir`, every part of a
/// streamed one.
pub fn table(dir: &Path, name: &str) -> DataFrame {
    let files = migbench::results::stream::table_files(dir, name);
    assert!(!files.is_empty(), "{}: no {name} table", dir.display());
    let parts: Vec<LazyFrame> = files
        .iter()
        .map(|f| LazyFrame::scan_parquet(f, Default::default()).unwrap())
        .collect();
    concat(parts, UnionArgs::default())
        .unwrap()
        .collect()
        .unwrap()
}

/// A float column.
pub fn floats(df: &DataFrame, column: &str) -> Float64Chunked {
    df.column(column).unwrap().f64().unwrap().clone()
}

/// A string column.
pub fn strs(df: &DataFrame, column: &str) -> StringChunked {
    df.column(column).unwrap().str().unwrap().clone()
}

/// `migbench report PATH --out OUT`; returns report.json.
pub fn report(path: &Path, out: &Path) -> serde_json::Value {
    migbench()
        .arg("report")
        .arg(path)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

/// `migbench compare BASELINE CANDIDATE`, to be asserted on.
pub fn compare(baseline: &Path, candidate: &Path) -> assert_cmd::assert::Assert {
    migbench()
        .arg("compare")
        .arg(baseline)
        .arg(candidate)
        .assert()
}

/// The serving scenario, run once per test binary for every test that needs it. It is written
/// below the target's directory for test files (a directory per test binary, as binaries run side
/// by side), replaced on every run of the tests.
pub fn serving_run() -> &'static Path {
    static RUN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}-serving", env!("CARGO_CRATE_NAME")));
        let _ = std::fs::remove_dir_all(&out);
        run_sim("scenarios/a100-qwen3.toml", &out, &[])
    })
}
