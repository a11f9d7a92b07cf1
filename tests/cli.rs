//! The `migbench` command line as a user types it.

mod common;

use common::migbench;
use predicates::prelude::*;
use serde_json::Value;

fn json(args: &[&str]) -> Value {
    let out = migbench().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn profiles_table_reads_like_lgip_with_placements() {
    migbench()
        .args(["profiles", "--gpu", "h100-80gb"])
        .assert()
        .success()
        .stdout(predicate::str::contains("MIG 3g.40gb"))
        .stdout(predicate::str::contains("{0,4}:4"))
        .stdout(predicate::str::contains("81559 MiB, 132 SMs"));
}

#[test]
fn profiles_marks_assumed_values() {
    migbench()
        .args(["profiles", "--gpu", "h200-141gb"])
        .assert()
        .success()
        .stdout(predicate::str::contains("{0,4}:4*"))
        .stdout(predicate::str::contains("* assumed placements"));
}

#[test]
fn profiles_json_is_one_object_per_profile() {
    let v = json(&["profiles", "--gpu", "b200-180gb", "--format", "json"]);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 7);
    let p = arr.iter().find(|p| p["name"] == "3g.90gb").unwrap();
    assert_eq!(p["id"], 9);
    assert_eq!(p["memory_gib"], 89.0);
    assert_eq!(p["placements"], serde_json::json!([0, 4]));
    assert!(p["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "placements"));
}

#[test]
fn layouts_with_the_documented_profiles_lists_19() {
    let profiles = "1g.10gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb";
    let v = json(&[
        "layouts",
        "--gpu",
        "h100-80gb",
        "--profiles",
        profiles,
        "--format",
        "json",
    ]);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 19);
    assert_eq!(arr[0]["layout"], serde_json::json!(["7g.80gb@0"]));
    assert_eq!(arr[0]["rank"], 1);
    let three_three = arr
        .iter()
        .find(|l| l["summary"] == "3g.40gb + 3g.40gb")
        .unwrap();
    assert_eq!(three_three["sm_available"], 120);
    assert_eq!(three_three["compute_slices_unused"], 1);

    let v = json(&[
        "layouts",
        "--gpu",
        "h100-80gb",
        "--profiles",
        profiles,
        "--full-only",
        "--format",
        "json",
    ]);
    assert_eq!(v.as_array().unwrap().len(), 6);

    migbench()
        .args(["layouts", "--gpu", "h100-80gb", "--profiles", profiles])
        .assert()
        .success()
        .stdout(predicate::str::contains("19 maximal layouts"))
        .stdout(predicate::str::contains("4g.40gb@0 3g.40gb@4"));
}

#[test]
fn plan_table_and_json() {
    migbench()
        .args(["plan", "--gpu", "h100-80gb", "--workload", "ti2v-5b"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4g.40gb + 3g.40gb"))
        .stdout(predicate::str::contains("mps"));
    let v = json(&[
        "plan",
        "--gpu",
        "h100-80gb",
        "--workload",
        "ti2v-5b",
        "--headroom",
        "10%",
        "--format",
        "json",
    ]);
    let mps = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "mps")
        .unwrap();
    assert_eq!(
        (mps["max_together"].as_u64(), mps["max_staggered"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn plan_explains_an_impossible_request_without_failing() {
    migbench()
        .args(["plan", "--gpu", "a30-24gb", "--workload", "s2v-14b"])
        .assert()
        .success()
        .stdout(predicate::str::contains("cannot run on this GPU"));
}

#[test]
fn unknown_gpu_exits_2_listing_the_known_ones() {
    migbench()
        .args(["profiles", "--gpu", "v100"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown GPU 'v100'"))
        .stderr(predicate::str::contains("h100-80gb"));
}

#[test]
fn unknown_profile_exits_2_listing_the_allowed_ones() {
    migbench()
        .args([
            "layouts",
            "--gpu",
            "h100-80gb",
            "--profiles",
            "3g.40gb,5g.50gb",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown MIG profile '5g.50gb'"))
        .stderr(predicate::str::contains("allowed: 1g.10gb"));
}

/// Runs migbench with `args` and expects bad-input exit status 2 with `message` on stderr.
fn rejects(args: &[&str], message: &str) {
    migbench()
        .args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(message));
}

#[test]
fn unknown_workload_and_bad_headroom_exit_2() {
    let plan = ["plan", "--gpu", "h100-80gb", "--workload"];
    rejects(
        &[&plan[..], &["llama"]].concat(),
        "known workloads: ti2v-5b",
    );
    rejects(
        &[&plan[..], &["ti2v-5b", "--headroom", "150%"]].concat(),
        "below 100%",
    );
    rejects(
        &[&plan[..], &["ti2v-5b", "--format", "yaml"]].concat(),
        "possible values: table, json",
    );
}
