//! Scenario files: the shipped ones validate; bad ones are rejected at the right place.

mod common;

use std::path::Path;

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
    let files: Vec<_> = ["scenarios", "scenarios/validation", "scenarios/stand-in"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert_eq!(files.len(), 13, "{files:?}");
    common::migbench()
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
        e.starts_with(
            "test.toml:8:36: active_thread_percentage must be an integer from 1 to 100, found 150"
        ),
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
        e.starts_with("test.toml:13:12: workload mine: memory.peak_gib must be at least constant_gib (30), found 20"),
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
    common::migbench()
        .args(["validate", bad.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml:8:"))
        .stderr(predicate::str::contains(
            "invalid type: string \"three\", expected count: an integer from 1 to 1024",
        ));
}

const MIG_MPS: &str =
    "[[variants]]\nname = \"a\"\nmode = \"mig+mps\"\nlayout = [\"3g.40gb\", \"3g.40gb\"]\n";

#[test]
fn empty_instances_and_compute_lists_are_errors_at_their_place() {
    // It used to pass validate and then divide by zero spreading the jobs at run time.
    let e = error(&format!(
        "{MIG_MPS}jobs = [{{ workload = \"ti2v-5b\", count = 2, instances = [] }}]\n"
    ));
    assert!(
        e.starts_with("test.toml:9:56: instances = [] leaves these jobs nowhere to run: list slots from 0 to 1"),
        "{e}"
    );
    let e = error("[[variants]]\nname = \"a\"\nmode = \"mig\"\nlayout = [{ profile = \"3g.40gb\", compute = [] }]\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.starts_with(
            "test.toml:8:10: instance \"3g.40gb\": compute = [] lists no compute instance"
        ),
        "{e}"
    );
    let e = error(
        "[[variants]]\nname = \"a\"\nmode = \"mig\"\nlayout = []\njobs = [{ workload = \"ti2v-5b\" }]\n",
    );
    assert!(
        e.starts_with("test.toml:8:10: h100-80gb cannot take this layout: the layout is empty"),
        "{e}"
    );
}

/// `text` as a TOML basic string.
fn toml_str(text: &str) -> String {
    let escaped: String = text
        .chars()
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            c if c.is_control() => format!("\\u{:04X}", c as u32),
            c => c.to_string(),
        })
        .collect();
    format!("\"{escaped}\"")
}

fn with_names(scenario: &str, variant: &str) -> String {
    let (scenario, variant) = (toml_str(scenario), toml_str(variant));
    format!("[scenario]\nname = {scenario}\n[gpu]\nmodel = \"h100-80gb\"\n[[variants]]\nname = {variant}\nmode = \"full\"\njobs = [{{ workload = \"ti2v-5b\" }}]\n")
}

#[test]
fn names_never_make_paths_outside_the_run() {
    let allowed = "letters, digits, '.', '_' or '-', not starting with '.'";
    for bad in [
        "../../..",
        "/abs",
        "a/b",
        ".hidden",
        "",
        "a b",
        "tab\there",
        "nul\0byte",
    ] {
        let e = parse(&with_names(bad, "v")).unwrap_err().to_string();
        assert!(
            e.starts_with("test.toml:2:8: scenario name \""),
            "{bad:?}: {e}"
        );
        assert!(e.contains(allowed), "{e}");
        let e = parse(&with_names("s", bad)).unwrap_err().to_string();
        assert!(
            e.starts_with("test.toml:6:8: variant name \""),
            "{bad:?}: {e}"
        );
    }
    // A megabyte-long name is quoted cut short, with its length.
    let huge = "x".repeat(1 << 20);
    let e = parse(&with_names(&huge, "v")).unwrap_err().to_string();
    assert!(e.len() < 400, "{}", &e[..400]);
    assert!(e.contains("xxxx…\" (1048576 bytes)"), "{e}");
    let long = "y".repeat(65);
    assert!(parse(&with_names("s", &long)).is_err());
    assert!(parse(&with_names("s", &long[..64])).is_ok());
    // Workload names: in a job, and as an inline table's key.
    let e =
        error("[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{ workload = \"../x\" }]\n");
    assert!(
        e.starts_with("test.toml:8:22: workload name \"../x\" is not allowed"),
        "{e}"
    );
    let e = error("[workloads.\"../w\"]\nname = \"../w\"\ntitle = \"x\"\nkind = \"batch\"\nunit = \"video\"\ncommand = [\"x\"]\nmemory = { constant_gib = 1, peak_gib = 2, source = \"\" }\nsim = { alpha = 1, peak_at = 0, peak_for = 0, source = \"\" }\n[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert!(
        e.starts_with("test.toml:5:12: workload name \"../w\" is not allowed"),
        "{e}"
    );
}

#[test]
fn counts_are_bounded_and_say_their_key_and_range() {
    let group = |count: &str| {
        error(&format!(
            "[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"ti2v-5b\", count = {count} }}]\n"
        ))
    };
    let e = group("1000000000");
    assert_eq!(
        e,
        "test.toml:8:41: count must be an integer from 1 to 1024, found 1000000000"
    );
    assert!(group("0").contains("count must be an integer from 1 to 1024, found 0"));
    assert!(group("-3").contains("found -3"));
    let e = error("[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{ workload = \"ti2v-5b\", count = 1000 }, { workload = \"s2v-14b\", count = 25 }]\n");
    assert_eq!(
        e,
        "test.toml:6:8: variant 'a' has 1025 jobs over its groups; at most 1024 are allowed"
    );
    let e = error("[[variants]]\nname = \"a\"\nmode = \"full\"\nrepetitions = 101\njobs = [{ workload = \"ti2v-5b\" }]\n");
    assert_eq!(
        e,
        "test.toml:8:15: repetitions must be an integer from 1 to 100, found 101"
    );
    // MPS: 48 clients per device (Volta and later), fewer per MIG compute instance.
    let mps = |count: u32| {
        parse(&format!("{HEAD}[[variants]]\nname = \"a\"\nmode = \"mps\"\njobs = [{{ workload = \"ti2v-5b\", count = {count} }}]\n"))
    };
    assert!(mps(48).is_ok());
    let e = mps(49).unwrap_err().to_string();
    assert!(e.starts_with("test.toml:6:8: variant 'a' makes 49 jobs clients of the MPS server of the GPU; it takes at most 48 (on Volta and later"), "{e}");
    // Two 3g.40gb of 7 compute slices: 48 * 3 / 7 = 20 clients each; 41 jobs put 21 on slot 0.
    let mig_mps = |count: u32| {
        parse(&format!(
            "{HEAD}{MIG_MPS}jobs = [{{ workload = \"ti2v-5b\", count = {count} }}]\n"
        ))
    };
    assert!(mig_mps(40).is_ok());
    let e = mig_mps(41).unwrap_err().to_string();
    assert!(
        e.contains("makes 21 jobs clients of the MPS server of slot 0; it takes at most 20"),
        "{e}"
    );
    // Servers per variant.
    let load = "[load]\nrequests = 4\n";
    let servers = |count: u32| {
        parse(&format!("{HEAD}{load}[[variants]]\nname = \"a\"\nmode = \"timeslice\"\njobs = [{{ workload = \"qwen3-4b\", count = {count}, args = [\"--gpu-memory-utilization\", \"0.01\"] }}]\n"))
    };
    assert!(servers(64).is_ok(), "{:?}", servers(64).err());
    let e = servers(65).unwrap_err().to_string();
    assert!(
        e.contains("runs 65 model servers; at most 64 are allowed"),
        "{e}"
    );
}

/// A line of a job group, a value, and the message with its position.
fn group_error(key: &str, value: &str) -> String {
    error(&format!(
        "[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"ti2v-5b\", {key} = {value} }}]\n"
    ))
}

#[test]
fn start_times_and_timeouts_that_would_hang_a_run_are_rejected() {
    for key in ["stagger_s", "start_s"] {
        for value in ["inf", "nan", "1e308", "-1", "-0.5", "2592001"] {
            let e = group_error(key, value);
            assert!(e.starts_with("test.toml:8:"), "{key} = {value}: {e}");
            assert!(
                e.contains(&format!(
                    "{key} must be a number at least 0 and at most 2592000 (30 days), found "
                )),
                "{key} = {value}: {e}"
            );
        }
        assert!(parse(&format!("{HEAD}[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"ti2v-5b\", {key} = 2592000 }}]\n")).is_ok());
    }
    // The message names the key it is about, not the workload.
    assert_eq!(
        group_error("stagger_s", "-1"),
        "test.toml:8:45: stagger_s must be a number at least 0 and at most 2592000 (30 days), found -1"
    );
    assert!(group_error("stagger_s", "1e308").ends_with("found 1e308"));
    for value in ["0", "-1", "nan", "inf"] {
        let e = group_error("timeout_s", value);
        assert!(
            e.contains("timeout_s must be a number above 0 and at most 2592000"),
            "{e}"
        );
    }
    for value in ["nan", "0", "-1", "inf", "1025"] {
        let e = error(&format!("[[variants]]\nname = \"a\"\nmode = \"mps\"\nmps = {{ pinned_memory_limit_gib = {value} }}\njobs = [{{ workload = \"ti2v-5b\" }}]\n"));
        assert!(
            e.starts_with("test.toml:8:35: pinned_memory_limit_gib must be a number above 0 and at most 1024, found "),
            "{value}: {e}"
        );
    }
    let e = parse(&HEAD.replace(
        "model = \"h100-80gb\"",
        "model = \"h100-80gb\"\nprice_per_hour = nan",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("test.toml:5:18: price_per_hour must be a number at least 0"),
        "{e}"
    );
}

/// An inline workload with one line replaced, run in one variant.
fn workload_error(line: &str, replacement: &str) -> String {
    let wl = "[workloads.mine]\nname = \"mine\"\ntitle = \"x\"\nkind = \"batch\"\nunit = \"video\"\ncommand = [\"python\", \"x.py\"]\n[workloads.mine.memory]\nconstant_gib = 10.0\npeak_gib = 20.0\nsource = \"test\"\n[workloads.mine.timing]\nreference_gpu = \"h100-80gb\"\nfull_gpu_s = 100.0\nsource = \"test\"\n[workloads.mine.sim]\nalpha = 0.7\npeak_at = 0.5\npeak_for = 0.1\nsource = \"test\"\n";
    assert!(wl.contains(line), "{line}");
    let wl = wl.replace(line, replacement);
    match parse(&format!(
        "{HEAD}{wl}[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"mine\" }}]\n"
    )) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_workload_number_is_finite_and_in_its_range() {
    assert_eq!(workload_error("alpha = 0.7", "alpha = 0.7"), "");
    let cases = [
        (
            "full_gpu_s = 100.0",
            "inf",
            "full_gpu_s must be a number above 0 and at most 2592000",
        ),
        (
            "full_gpu_s = 100.0",
            "nan",
            "full_gpu_s must be a number above 0",
        ),
        (
            "full_gpu_s = 100.0",
            "0",
            "full_gpu_s must be a number above 0",
        ),
        (
            "full_gpu_s = 100.0",
            "-5",
            "full_gpu_s must be a number above 0",
        ),
        (
            "constant_gib = 10.0",
            "nan",
            "constant_gib must be a number at least 0 and at most 1024",
        ),
        (
            "constant_gib = 10.0",
            "-1",
            "constant_gib must be a number at least 0",
        ),
        (
            "peak_gib = 20.0",
            "inf",
            "peak_gib must be a number above 0 and at most 1024",
        ),
        ("peak_gib = 20.0", "1e308", "found 1e308"),
        (
            "alpha = 0.7",
            "0",
            "alpha must be a number above 0 and at most 10",
        ),
        (
            "alpha = 0.7",
            "nan",
            "alpha must be a number above 0 and at most 10",
        ),
        (
            "peak_at = 0.5",
            "1.5",
            "peak_at must be a number at least 0 and at most 1",
        ),
        (
            "peak_for = 0.1",
            "-0.1",
            "peak_for must be a number at least 0 and at most 1",
        ),
        (
            "peak_for = 0.1",
            "nan",
            "peak_for must be a number at least 0 and at most 1",
        ),
    ];
    for (line, value, expected) in cases {
        let key = line.split(' ').next().unwrap();
        let e = workload_error(line, &format!("{key} = {value}"));
        assert!(e.contains(expected), "{key} = {value}: {e}");
        let found_line = 4 + 1 + "[workloads.mine]\nname = \"mine\"\ntitle = \"x\"\nkind = \"batch\"\nunit = \"video\"\ncommand = [\"python\", \"x.py\"]\n[workloads.mine.memory]\nconstant_gib = 10.0\npeak_gib = 20.0\nsource = \"test\"\n[workloads.mine.timing]\nreference_gpu = \"h100-80gb\"\nfull_gpu_s = 100.0\nsource = \"test\"\n[workloads.mine.sim]\nalpha = 0.7\npeak_at = 0.5\npeak_for = 0.1\n"
            .lines()
            .position(|l| l == line)
            .unwrap();
        let column = key.len() + 4;
        assert!(
            e.starts_with(&format!("test.toml:{found_line}:{column}: ")),
            "{key} = {value}: {e}"
        );
    }
    // Rules across fields point at the key they are about.
    let e = workload_error("peak_for = 0.1", "peak_for = 0.6");
    assert!(
        e.starts_with(
            "test.toml:22:12: workload mine: sim.peak_at + sim.peak_for must be at most 1"
        ),
        "{e}"
    );
    // An unknown reference GPU made every job fail at run time.
    let e = workload_error(
        "reference_gpu = \"h100-80gb\"",
        "reference_gpu = \"h100-8gb\"",
    );
    assert!(
        e.starts_with(
            "test.toml:16:17: workload mine: timing.reference_gpu: unknown GPU 'h100-8gb'"
        ),
        "{e}"
    );
}

#[test]
fn load_numbers_are_in_range_at_their_key() {
    let load = |line: &str| {
        match parse(&format!("{HEAD}[load]\nrequests = 4\n{line}\n[[variants]]\nname = \"a\"\nmode = \"full\"\njobs = [{{ workload = \"qwen3-4b\" }}]\n")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(load("rate = 2.5"), "");
    for (line, expected) in [
        ("rate = inf", "test.toml:7:8: rate must be a number above 0 and at most 1000000, found inf"),
        ("rate = nan", "test.toml:7:8: rate must be a number above 0"),
        ("duration_s = 1e308", "test.toml:7:14: duration_s must be a number above 0 and at most 2592000 (30 days), found 1e308"),
        ("timeout_s = -1", "test.toml:7:13: timeout_s must be"),
        ("burstiness = 0", "test.toml:7:14: burstiness must be a number above 0 and at most 1000"),
        ("range_ratio = 1", "test.toml:7:15: range_ratio must be a number at least 0 and below 1"),
        ("slo = { ttft_ms = nan }", "test.toml:7:19: slo.ttft_ms must be a number above 0"),
        ("input_tokens = 4000000000", "test.toml:7:16: input_tokens must be an integer from 1 to 1048576, found 4000000000"),
        ("max_concurrency = 100000", "test.toml:7:19: max_concurrency must be an integer from 1 to 10000"),
    ] {
        let e = load(line);
        assert!(e.starts_with(expected), "{line}: {e}");
    }
}

#[test]
fn bytes_that_are_not_utf8_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let mut bytes = b"[scenario]\nname = \"ab".to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\"\n");
    std::fs::write(&bad, &bytes).unwrap();
    let e = Scenario::load(&bad).unwrap_err();
    assert_eq!((e.line, e.column), (2, 11), "{e}");
    assert!(e.message.contains("not UTF-8: byte 0xff"), "{e}");
}
