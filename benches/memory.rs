//! Peak memory of `migbench run --sim --sample-ms 10` over about 1, 10 and 24 simulated hours, of
//! a variant of a thousand jobs, and of two servers loaded with 40,000 requests: samples and
//! requests go to disk as they are taken, so the peak must not grow with the run's length or its
//! request count (issue 26: under 300 MB for any shipped scenario). Each run is a
//! child process whose peak resident set the kernel reports when it is reaped (`wait4`'s
//! `ru_maxrss`); the bench fails if one is over the bound.
//!
//! `cargo bench --bench memory` (all four runs, release: a few minutes);
//! `cargo bench --bench memory -- one-hour` runs the scenarios whose name contains the argument.

use std::path::Path;
use std::process::Command;

/// The bound: issue 26's 300 MB.
const BOUND_MB: f64 = 300.0;

const SCENARIOS: &[&str] = &[
    "benches/scenarios/one-hour.toml",
    "benches/scenarios/ten-hours.toml",
    "benches/scenarios/twenty-four-hours.toml",
    "benches/scenarios/thousand-jobs.toml",
    "benches/scenarios/many-requests.toml",
];

fn main() {
    // `cargo bench` passes `--bench`; a plain word picks scenarios.
    let pick: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let out = tempfile::tempdir().unwrap();
    println!(
        "{:<42} {:>12} {:>12} {:>10} {:>8} {:>12}",
        "scenario (--sim --sample-ms 10)",
        "simulated h",
        "sample rows",
        "requests",
        "wall s",
        "peak RSS MB"
    );
    let mut over = Vec::new();
    for scenario in SCENARIOS {
        if !pick.is_empty() && !pick.iter().any(|p| scenario.contains(p.as_str())) {
            continue;
        }
        let dir = out.path().join(Path::new(scenario).file_stem().unwrap());
        let start = std::time::Instant::now();
        // Reaped by `reap` (wait4), which also gives its peak memory.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(env!("CARGO_BIN_EXE_migbench"))
            .args(["run", "--sim", "--quiet", "--sample-ms", "10", "--out"])
            .arg(&dir)
            .arg(scenario)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (ok, peak_kib) = reap(child.id());
        let wall = start.elapsed().as_secs_f64();
        assert!(ok, "{scenario}: migbench run failed");
        let run = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let peak_mb = peak_kib as f64 * 1024.0 / 1e6;
        println!(
            "{:<42} {:>12.1} {:>12} {:>10} {:>8.1} {:>12.0}",
            scenario,
            simulated_s(&run) / 3600.0,
            rows(&run, "samples"),
            rows(&run, "requests"),
            wall,
            peak_mb
        );
        if peak_mb > BOUND_MB {
            over.push(format!("{scenario}: {peak_mb:.0} MB"));
        }
        // Runs of hours of samples take disk: one at a time.
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(
        over.is_empty(),
        "peak RSS over {BOUND_MB} MB: {}",
        over.join(", ")
    );
}

/// Waits for child `pid`; whether it succeeded, and its peak resident set in KiB.
fn reap(pid: u32) -> (bool, i64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 writes one for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(
        reaped,
        pid as i32,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, usage.ru_maxrss)
}

/// The run's simulated span: the instant of its last event.
fn simulated_s(run: &Path) -> f64 {
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    last["t"].as_f64().unwrap()
}

/// Rows of a streamed table of the run (`samples`, `requests`), from its parts' footers.
fn rows(run: &Path, table: &str) -> usize {
    use polars::prelude::*;
    migbench::results::stream::table_files(run, table)
        .iter()
        .map(|f| {
            ParquetReader::new(std::fs::File::open(f).unwrap())
                .num_rows()
                .unwrap()
        })
        .sum()
}
