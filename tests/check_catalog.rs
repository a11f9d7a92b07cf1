//! `migbench discover --check-catalog` on the stand-in driver: the profile tables its
//! `nvidia-smi` lists (`mig -lgip`, `mig -lgipp`) against the catalog. Exit status 0 when they
//! match, 1 with each difference named when a driver prints other names, GiB or placements
//! (as drivers do: docs/mig.md), 2 when no GPU can be checked.

mod common;

use std::process::Output;

use common::fake_driver::FakeDriver;
use serde_json::{json, Value};

/// `migbench discover --check-catalog OPTIONS` on the stand-in GPU.
fn check_catalog(gpu: &FakeDriver, options: &[&str]) -> Output {
    gpu.migbench()
        .args(["discover", "--check-catalog"])
        .args(options)
        .output()
        .unwrap()
}

/// An H100 80GB with MIG mode on, its driver's tables changed by `driver_profiles`.
fn mig_on(driver_profiles: Value) -> Option<FakeDriver> {
    FakeDriver::with(json!({
        "mig_current": true,
        "mig_pending": true,
        "driver_profiles": driver_profiles,
    }))
}

#[test]
fn a_driver_that_lists_the_catalogs_tables_matches_and_both_tables_are_read() {
    let Some(gpu) = mig_on(json!({})) else {
        return;
    };
    let out = check_catalog(&gpu, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("GPU 0 NVIDIA H100 80GB HBM3 (h100-80gb): the driver's profile tables match the catalog"),
        "{stdout}"
    );
    let calls = gpu.calls();
    for listing in ["mig -i 0 -lgip", "mig -i 0 -lgipp"] {
        assert!(
            calls.iter().any(|c| c == listing),
            "{listing} not run: {calls:?}"
        );
    }
}

#[test]
fn each_difference_is_named_and_the_status_is_1() {
    // 3g renamed and resized as drivers 535/545 print it on the A100 (docs/mig.md): the name is
    // accepted (same ID, slices and size) and said, the GiB differ; 2g named as no driver would
    // (twice its memory); a 4g placement the catalog does not have; the +me profile not listed.
    let Some(gpu) = mig_on(json!({
        "9": { "name": "3g.39gb", "memory_gib": 39.25 },
        "14": { "name": "2g.40gb" },
        "5": { "placements": [0, 4] },
        "20": { "absent": true },
    })) else {
        return;
    };
    let out = check_catalog(&gpu, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "the driver's MIG profile tables differ from the catalog on GPU 0 (4 difference(s))"
    ));
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, String, String, String)> = checks[0]["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("profile"), s("field"), s("catalog"), s("driver"))
        })
        .collect();
    let row = |p: &str, f: &str, c: &str, d: &str| (p.into(), f.into(), c.into(), d.into());
    assert_eq!(
        found,
        vec![
            row(
                "1g.10gb+me (ID 20)",
                "profile",
                "listed",
                "not listed by -lgip"
            ),
            row("2g.20gb (ID 14)", "name", "2g.20gb", "2g.40gb"),
            row("3g.40gb (ID 9)", "memory_gib", "39.50", "39.25"),
            row("4g.40gb (ID 5)", "placements", "{0}:4", "{0,4}:4"),
        ]
    );
    assert_eq!(
        checks[0]["driver_names"],
        json!([{ "profile": "3g.40gb (ID 9)", "driver": "3g.39gb", "accepted_as": "same ID, slices and size" }])
    );

    // The table names the same rows, and the name the driver used.
    let out = check_catalog(&gpu, &[]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("2g.40gb") && table.contains("{0,4}:4"),
        "{table}"
    );
    assert!(
        table.contains(
            "3g.40gb (ID 9): the driver calls it 3g.39gb (accepted: same ID, slices and size)"
        ),
        "{table}"
    );
    assert!(
        table.contains("4 difference(s) from the catalog"),
        "{table}"
    );
}

#[test]
fn with_mig_mode_off_nothing_can_be_checked_and_the_status_is_2() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let out = check_catalog(&gpu, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no GPU could be checked against the catalog: GPU 0: MIG mode is off"),
        "{stderr}"
    );
    assert!(
        gpu.calls().iter().all(|c| !c.contains("-lgip")),
        "{:?}",
        gpu.calls()
    );
}

#[test]
fn the_new_gpus_tables_read_back_through_nvidia_smi() {
    // The GB200 (a 7-slice GPU with aliases) matches whole; on the RTX PRO 6000 the 12-unit grid
    // reads back as the catalog has it ({0,3,6,9}:3, {0,6}:6, {0}:12).
    let Some(gpu) = FakeDriver::node("gb200-186gb", json!({ "mig_current": true })) else {
        return;
    };
    let out = check_catalog(&gpu, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(gpu) = FakeDriver::node("rtx-pro-6000-96gb", json!({ "mig_current": true })) else {
        return;
    };
    let out = check_catalog(&gpu, &["--format", "json"]);
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let differences = checks[0]["differences"].as_array().unwrap();
    // NVIDIA's nvidia-smi 535 asks NVML only for the profiles its version knows: the +gfx, -me
    // and +me.all variants (NVML's newer profile enums) are not listed, and nothing else differs.
    let unlisted: Vec<&str> = differences
        .iter()
        .map(|d| {
            assert_eq!(d["driver"], "not listed by -lgip", "{d}");
            d["profile"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        unlisted,
        [
            "1g.24gb+gfx (ID 47)",
            "1g.24gb+me.all (ID 65)",
            "1g.24gb-me (ID 67)",
            "2g.48gb+gfx (ID 35)",
            "2g.48gb+me.all (ID 64)",
            "2g.48gb-me (ID 66)",
            "4g.96gb+gfx (ID 32)"
        ]
    );
}
