//! Scenario files: the shipped ones validate; bad ones are rejected at the right place.

use std::path::Path;

use assert_cmd::Command;
use migbench::scenario::Scenario;
use predicates::prelude::*;

fn parse(text: &str) -> Result<Scenario, migbench::scenario::ScenarioError> {
    Scenario::parse(Path::new("test.toml"), text.to_string())
}

const HEAD: &str = "[scenario]\nname = \"t\"\n[gpu]\nmodel = \"h100-80gb\"\n";

fn error(body: &str) -> String {
    parse(&format!("{HEAD}{body}")).unwrap_err().to_string()
}

#[test]
fn every_shipped_scenario_validates() {
    let files: Vec<_> = ["scenarios", "scenarios/validation"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert_eq!(files.len(), 8, "{files:?}");
    Command::cargo_bin("migbench")
        .unwrap()
        .arg("validate")
        .args(&files)
        .assert()
        .success();
}

#[test]
fn unknown_keys_name_the_line_column_and_the_allowed_keys() {
    let e = error("[[variants]]\nname = \"a\"\nmode = \"full\"\nrepetition = 2\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.starts_with("test.toml:8:1: unknown field `repetition`"),
        "{e}"
    );
    assert!(e.contains("`repetitions`"), "{e}");
}

#[test]
fn unknown_mode_gpu_and_workload() {
    let e =
        error("[[variants]]\nname = \"a\"\nmode = \"mps2\"\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(e.starts_with("test.toml:7:8: unknown variant `mps2`, expected one of `full`, `timeslice`, `mps`, `mig`, `mig+mps`"), "{e}");
    let e = parse("[scenario]\nname = \"t\"\n[gpu]\nmodel = \"v100\"\n[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{ workload = \"ti2v-5b\" }]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test.toml:4:9: unknown GPU 'v100'; known GPUs: a100-40gb"),
        "{e}"
    );
    let e =
        error("[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{ workload = \"llama\" }]\n");
    assert!(
        e.starts_with("test.toml:8:22: unknown workload 'llama'; known workloads: ti2v-5b"),
        "{e}"
    );
}

#[test]
fn layouts_the_gpu_cannot_take_are_rejected_before_anything_runs() {
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mig\"\nlayout = [\"3g.40gb\", \"3g.40gb\", \"3g.40gb\"]\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.starts_with(
            "test.toml:8:10: h100-80gb cannot take this layout: 3 instances of 3g.40gb requested"
        ),
        "{e}"
    );
    let e =
        error("[[variants]]\nname = \"a\"\nmode = \"mig\"\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(e.contains("mode 'mig' needs a layout"), "{e}");
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mps\"\nlayout = [\"7g.80gb\"]\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.contains("a layout is only allowed with modes mig and mig+mps"),
        "{e}"
    );
    // A misspelt key in the table form of an instance is an error too.
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mig\"\nlayout = [{ profile = \"3g.40gb\", strat = 4 }]\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(e.starts_with("test.toml:8:"), "{e}");
}

#[test]
fn settings_that_do_not_belong_to_the_mode() {
    let e = error("[[variants]]\nname = \"a\"\nmode = \"full\"\nmps = { active_thread_percentage = 50 }\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.contains("mps settings are only allowed with modes mps and mig+mps"),
        "{e}"
    );
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mps\"\njobs = [{ workload = \"ti2v-5b\", instances = [0] }]\n");
    assert!(
        e.contains("instances are only allowed with modes mig and mig+mps"),
        "{e}"
    );
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mig\"\nlayout = [\"3g.40gb\"]\njobs = [{ workload = \"ti2v-5b\", instances = [1] }]\n");
    assert!(
        e.contains("instance 1 does not exist: the layout has 1"),
        "{e}"
    );
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mps\"\nmps = { active_thread_percentage = 150 }\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.contains("active_thread_percentage must be 1 to 100, found 150"),
        "{e}"
    );
}

#[test]
fn inline_workloads_are_checked() {
    let wl = "[workloads.mine]\nname = \"mine\"\ntitle = \"x\"\nkind = \"batch\"\nunit = \"video\"\ncommand = [\"python\", \"x.py\"]\n[workloads.mine.memory]\nconstant_gib = 30.0\npeak_gib = 20.0\nsource = \"test\"\n[workloads.mine.sim]\nalpha = 0.7\npeak_at = 0.5\npeak_for = 0.1\nsource = \"test\"\n";
    let e = error(&format!(
        "{wl}[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"mine\" }}]\n"
    ));
    assert!(
        e.starts_with("test.toml:5:1: workload mine: memory must satisfy"),
        "{e}"
    );
    let ok = wl.replace("constant_gib = 30.0", "constant_gib = 10.0");
    let s = parse(&format!("{HEAD}{ok}[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"mine\" }}]\n")).unwrap();
    assert_eq!(s.workload("mine").unwrap().memory.constant_gib, 10.0);
}

#[test]
fn validate_exits_2_with_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{HEAD}[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"ti2v-5b\", count = \"three\" }}]\n")).unwrap();
    Command::cargo_bin("migbench")
        .unwrap()
        .args(["validate", bad.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml:8:"))
        .stderr(predicate::str::contains(
            "invalid type: string \"three\", expected u32",
        ));
}
