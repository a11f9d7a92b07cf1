//! Simulated time advances by events, so a simulated run's figures depend only on its scenario:
//! the same scenario run twice gives the same tables, value for value, whatever the machine is
//! doing meanwhile. Only a run's identity differs (its directory, timestamps, the PIDs of its
//! jobs, and the UUID of its simulated GPU, which is its own so that runs never share one).

mod common;

use std::path::Path;

use common::run_sim;
use polars::prelude::*;

/// A VRAM sample every half simulated second.
const SAMPLE_MS: &[&str] = &["--sample-ms", "500"];

/// A table of a run, its identity taken out: PIDs dropped (the `pid` column, and the samples'
/// `id`, which is a process row's PID), the simulated GPU's UUID replaced by a placeholder.
fn table(run: &Path, name: &str) -> DataFrame {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    let uuid = manifest["gpu_uuid"].as_str().unwrap().to_string();
    let df = common::table(run, name);
    let columns: Vec<Column> = df
        .get_columns()
        .iter()
        .filter(|c| c.name().as_str() != "pid" && !(name == "samples" && c.name().as_str() == "id"))
        .map(|c| match c.str() {
            Ok(s) => {
                let masked: StringChunked = s
                    .into_iter()
                    .map(|v| v.map(|v| v.replace(&uuid, "<gpu>")))
                    .collect();
                masked.with_name(c.name().clone()).into_column()
            }
            Err(_) => c.clone(),
        })
        .collect();
    DataFrame::new(columns).unwrap()
}

fn assert_same_tables(scenario: impl AsRef<Path>, tables: &[&str]) {
    let scenario = scenario.as_ref();
    let dir = tempfile::tempdir().unwrap();
    let first = run_sim(scenario, &dir.path().join("first"), SAMPLE_MS);
    let second = run_sim(scenario, &dir.path().join("second"), SAMPLE_MS);
    for name in tables {
        let (a, b) = (table(&first, name), table(&second, name));
        let scenario = scenario.display();
        assert!(a.height() > 0, "{scenario}: {name} is empty");
        assert!(
            a.equals_missing(&b),
            "{scenario}: the {name} tables differ\n{a}\n{b}"
        );
    }
}

#[test]
fn a_mig_and_mps_scenario_gives_the_same_tables_twice() {
    // Whole GPU, MPS (with an out-of-memory error and staggered starts) and MIG with a queue.
    assert_same_tables(
        "scenarios/h100-3x-ti2v.toml",
        &["jobs", "variants", "instances", "samples"],
    );
}

#[test]
fn a_serving_scenario_gives_the_same_tables_twice() {
    // Servers under the whole GPU, MPS and MIG, driven in a closed loop by the load generator.
    assert_same_tables(
        "scenarios/a100-qwen3.toml",
        &["jobs", "variants", "instances", "serving", "requests"],
    );
}

#[test]
fn a_serving_sweep_whose_requests_arrive_together_gives_the_same_tables_twice() {
    // Up to 128 users per server with short replies and long prompts: several requests reach a
    // server at one simulated instant and compete for its prefill budget, in the order the
    // load generator sent them, whichever connection the server happens to read first.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("together.toml");
    std::fs::write(
        &scenario,
        common::sweep_scenario(
            r#"endpoint = "chat"
requests = 120
warmup_requests = 1
input_tokens = 1024
output_tokens = 32
range_ratio = 0.25
ignore_eos = true
slo = { ttft_ms = 500, tpot_ms = 50 }
sweep = { concurrencies = [32, 128], trim = 0.1 }"#,
        ),
    )
    .unwrap();
    assert_same_tables(&scenario, &["serving", "requests"]);
}
