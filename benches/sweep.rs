//! The shipped load sweep on the simulator, timed once: scenarios/a100-qwen3-sweep.toml (six
//! variants, eight points, 200 requests per server and point) run by the migbench binary as a
//! user runs it. Prints the wall time and the requests it simulated per second. One run, not
//! criterion's samples: a run takes seconds, and its figures are the same on every machine
//! (simulated time advances by events), only its wall time varies.

use std::process::Command;
use std::time::Instant;

const SCENARIO: &str = "scenarios/a100-qwen3-sweep.toml";

fn main() {
    // `cargo test --benches` runs this without --bench: building it is the test.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let out = std::env::temp_dir().join(format!("migbench-sweep-bench-{}", std::process::id()));
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_migbench"))
        .args(["run", "--sim", "--quiet", "--out"])
        .arg(&out)
        .arg(SCENARIO)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("migbench runs");
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "migbench run failed: {status}");
    let requests = std::fs::read_dir(&out)
        .expect("a run directory")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("requests.csv")).ok())
        .map(|text| text.lines().count().saturating_sub(1))
        .sum::<usize>();
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "{SCENARIO}: {wall:.1} s wall, {requests} simulated requests ({:.0} per second)",
        requests as f64 / wall
    );
}
