//! NVIDIA's own nvidia-smi (535.261.03, Debian non-free) on the stand-in GPU of every catalog
//! model: what it prints is what migbench's parsers read (`smi_parse`), and the MIG rules it
//! shows are the driver's, decided by the stand-in NVML (examples/fake_nvml.rs). Also nodes of
//! several GPUs, and an MPS variant under a results folder deep enough that NVIDIA's daemon
//! could not make its sockets there.

mod common;

use common::fake_driver::FakeDriver;
use migbench::backend::nvml::smi_parse;
use migbench::catalog::{Catalog, GiProfile};
use serde_json::json;

/// nvidia-smi's output (stdout, then stderr) and exit status.
fn smi(gpu: &FakeDriver, args: &[&str]) -> (String, Option<i32>) {
    let out = gpu.smi_output(args);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code())
}

#[test]
fn every_catalog_gpu_lists_its_tables_and_instances_as_the_parsers_read_them() {
    for model in Catalog::builtin().gpus() {
        let Some(gpu) = FakeDriver::node(&model.key, json!({})) else {
            return;
        };
        let (listed, code) = smi(&gpu, &["-L"]);
        assert_eq!(code, Some(0), "{}: {listed}", model.key);
        assert!(
            listed.starts_with(&format!(
                "GPU 0: {} (UUID: {})",
                model.nvml_names[0], gpu.uuid
            )),
            "{listed}"
        );
        // MIG mode on: at once on Hopper and later; pending until a reset on Ampere, which a
        // stand-in test may grant by setting the mode it asked for.
        let (enabled, code) = smi(&gpu, &["-i", "0", "-mig", "1"]);
        assert_eq!(code, Some(0), "{}: {enabled}", model.key);
        if gpu.state()["mig_needs_reset"] == json!(true) {
            assert!(
                enabled.contains("pending enable"),
                "{}: {enabled}",
                model.key
            );
            let mut node = gpu.node_state();
            node["gpus"][0]["mig_current"] = json!(true);
            gpu.write_node(&node);
        } else {
            assert!(
                enabled.contains("Enabled MIG Mode"),
                "{}: {enabled}",
                model.key
            );
        }

        // The profile tables, parsed, are the catalog's.
        let profiles = smi_parse::parse_gpu_instance_profiles(&gpu.smi(&["mig", "-lgip"]))
            .unwrap_or_else(|e| panic!("{}: -lgip: {e}", model.key));
        let placements = smi_parse::parse_placements(&gpu.smi(&["mig", "-lgipp"]))
            .unwrap_or_else(|e| panic!("{}: -lgipp: {e}", model.key));
        // nvidia-smi 535 asks NVML only for the profile enums its version knows: the +gfx, -me
        // and +me.all variants of newer GPUs (NVML's enums 10 to 16) are not among them.
        let known: Vec<&GiProfile> = model
            .profiles
            .iter()
            .filter(|p| {
                !["+gfx", "-me", "+me.all"]
                    .iter()
                    .any(|v| p.name.ends_with(v))
            })
            .collect();
        assert_eq!(profiles.len(), known.len(), "{}", model.key);
        for p in &known {
            let listed = profiles.iter().find(|l| l.id == p.id).unwrap();
            assert_eq!(listed.name, p.name, "{}", model.key);
            assert!(
                (listed.memory_gib - p.memory_gib).abs() < 0.01,
                "{} {}",
                model.key,
                p.name
            );
            assert_eq!((listed.sm, listed.total), (p.sm, u32::from(p.instances)));
            let at = placements.iter().find(|l| l.profile_id == p.id).unwrap();
            assert_eq!((&at.starts, at.size), (&p.placements, p.memory_slices));
        }

        // The smallest profile as many times as it fits, each with its whole compute instance.
        let small = known.iter().max_by_key(|p| p.instances).unwrap();
        for _ in 0..small.instances {
            let (made, code) = smi(&gpu, &["mig", "-cgi", &small.id.to_string(), "-C"]);
            assert_eq!(code, Some(0), "{}: {made}", model.key);
        }
        // One more is the driver's refusal, in nvidia-smi's words.
        let (refused, code) = smi(&gpu, &["mig", "-cgi", &small.id.to_string()]);
        assert_eq!(code, Some(23), "{refused}");
        assert!(refused.contains("Insufficient Resources"), "{refused}");

        let gis = smi_parse::parse_gpu_instances(&gpu.smi(&["mig", "-lgi"])).unwrap();
        let cis = smi_parse::parse_compute_instances(&gpu.smi(&["mig", "-lci"])).unwrap();
        let state = gpu.state();
        let made = state["gis"].as_array().unwrap();
        assert_eq!(gis.len(), usize::from(small.instances), "{}", model.key);
        assert_eq!(cis.len(), gis.len());
        for (g, m) in gis.iter().zip(made) {
            assert_eq!(json!(g.instance_id), m["id"]);
            assert_eq!(json!(g.start), m["start"]);
            assert_eq!(g.size, small.memory_slices);
        }
        let (listed, _) = smi(&gpu, &["-L"]);
        assert_eq!(listed.matches("(UUID: MIG-").count(), gis.len(), "{listed}");
        // migbench's own reading of the GPU agrees: discover and --check-catalog.
        let checked = gpu
            .migbench()
            .args(["discover", "--check-catalog"])
            .output()
            .unwrap();
        // Exit 1 only where nvidia-smi 535 cannot list a profile (tests/check_catalog.rs).
        let expected = if known.len() == model.profiles.len() {
            0
        } else {
            1
        };
        assert_eq!(
            checked.status.code(),
            Some(expected),
            "{}: {}{}",
            model.key,
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

#[test]
fn a_node_of_eight_gpus_of_mixed_models_changes_only_the_gpu_named() {
    let Some(gpu) = FakeDriver::node("7xh100-80gb,a100-40gb", json!({})) else {
        return;
    };
    let (listed, code) = smi(&gpu, &["-L"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("GPU ")).count(),
        8,
        "{listed}"
    );
    assert!(listed.contains("GPU 7: NVIDIA A100-SXM4-40GB"), "{listed}");

    let (enabled, code) = smi(&gpu, &["-i", "3", "-mig", "1"]);
    assert_eq!(code, Some(0), "{enabled}");
    let node = gpu.node_state();
    let modes: Vec<bool> = node["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["mig_current"].as_bool().unwrap())
        .collect();
    assert_eq!(
        modes,
        [false, false, false, true, false, false, false, false]
    );
    // The A100 needs a reset: the change stays pending, and nvidia-smi says so.
    let (pending, code) = smi(&gpu, &["-i", "7", "-mig", "1"]);
    assert_eq!(code, Some(0), "{pending}");
    assert!(pending.contains("pending enable"), "{pending}");
    let a100 = &gpu.node_state()["gpus"][7];
    assert_eq!(
        (&a100["mig_current"], &a100["mig_pending"]),
        (&json!(false), &json!(true))
    );

    // migbench sees every GPU with its own model.
    let out = common::succeeds(gpu.migbench().args(["discover", "--format", "json"]));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let models: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["model"]["Ok"].as_str().unwrap())
        .collect();
    assert_eq!(models.len(), 8);
    assert_eq!(models[0], "h100-80gb");
    assert_eq!(models[7], "a100-40gb");
}

#[test]
fn an_mps_variant_runs_under_a_deep_results_folder_with_nvidias_daemon() {
    let Some(gpu) = FakeDriver::h100() else {
        return;
    };
    let scenario = gpu.dir.path().join("deep.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
[scenario]
name = "deep"
description = "an MPS variant under a deep --out"
source = "tests/nvidia_smi.rs"

[gpu]
model = "h100-80gb"

[workloads.probe]
name = "probe"
title = "holds 2 GiB"
kind = "batch"
unit = "job"
command = ["{}", "--gib", "2", "--seconds", "0.5"]
timeout_s = 60
memory = {{ constant_gib = 2, peak_gib = 2, source = "its arguments" }}
sim = {{ alpha = 1.0, peak_at = 0.0, peak_for = 0.0, source = "its arguments" }}

[[variants]]
name = "mps"
mode = "mps"
mps = {{ active_thread_percentage = 50 }}
jobs = [{{ workload = "probe", count = 2 }}]
"#,
            gpu.job()
        ),
    )
    .unwrap();
    // Deeper than a UNIX socket's path allows for the daemon's pipes in the run directory.
    let deep = gpu
        .dir
        .path()
        .join("a-results-folder-of-a-lab-with-a-long-name/nightly/2026-12-06");
    common::succeeds(
        gpu.migbench()
            .args(["run", "--quiet", "--sample-ms", "20", "--out"])
            .arg(&deep)
            .arg(&scenario),
    );
    let run = std::fs::read_dir(&deep)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log_dir = run.join("mps/mps/r1/d0/log");
    assert!(
        log_dir.join("control.log").as_os_str().len() > 107,
        "the test's folder is not deep enough: {}",
        log_dir.display()
    );
    let log = std::fs::read_to_string(log_dir.join("control.log")).unwrap();
    let socket = log
        .lines()
        .find_map(|l| l.split("Starting control daemon using socket ").nth(1))
        .expect(&log);
    assert!(
        socket.starts_with("/tmp/mb-") && socket.len() <= 107,
        "{socket}"
    );
    let jobs = std::fs::read_to_string(run.join("jobs.csv")).unwrap();
    assert_eq!(jobs.matches(",ok,").count(), 2, "{jobs}");
    // The daemon quit and its private pipe directory is gone.
    assert!(log.contains("Exit with status 0"), "{log}");
    let pipe = std::path::Path::new(socket).parent().unwrap();
    assert!(!pipe.exists(), "{} left behind", pipe.display());
}
