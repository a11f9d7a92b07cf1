//! The stand-in GPU set up for one test: the stand-in NVML (examples/fake_nvml.rs) on a node
//! prepared by examples/stand_in_gpu.rs in a temporary directory, driven by NVIDIA's own
//! `nvidia-smi` and `nvidia-cuda-mps-control`, and the environment that points migbench at it.
//! Shared by the tests that run the NVML backend (nvml_backend.rs, check_catalog.rs, gpu_kit.rs,
//! nvidia_smi.rs).
//!
//! NVIDIA's programs come from Debian's non-free component (`apt-get install nvidia-smi
//! nvidia-cuda-mps`, docs/validation.md). Without them [`FakeDriver::try_new`] says "skipped"
//! and the test returns, unless `MIGBENCH_REQUIRE_NVIDIA_TOOLS` is set, as `.ci/run` sets it.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::{json, Value};

/// NVIDIA's programs the stand-in GPU is driven by.
pub const NVIDIA_TOOLS: [&str; 2] = ["nvidia-smi", "nvidia-cuda-mps-control"];

/// A stand-in GPU in a temporary directory, and the environment that points migbench at it.
pub struct FakeDriver {
    pub dir: tempfile::TempDir,
    pub examples: PathBuf,
    /// GPU 0's UUID: each test its own GPU, as tests run side by side.
    pub uuid: String,
}

/// Whether NVIDIA's programs are here: true, or "skipped" (false), or a failure where required.
pub fn nvidia_tools() -> bool {
    let missing = super::missing(&NVIDIA_TOOLS);
    super::can_run(
        "MIGBENCH_REQUIRE_NVIDIA_TOOLS",
        &if missing.is_empty() {
            String::new()
        } else {
            format!("NVIDIA's {} not installed", missing.join(" and "))
        },
        "apt-get install nvidia-smi nvidia-cuda-mps, from Debian's non-free component",
    )
}

/// Where NVIDIA's `tool` is on the PATH.
pub fn nvidia_tool(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|f| f.is_file())
        })
        .unwrap_or_else(|| panic!("{tool} is not on the PATH"))
}

impl FakeDriver {
    /// An H100 80GB, or None (the test is skipped) without NVIDIA's programs.
    pub fn h100() -> Option<FakeDriver> {
        FakeDriver::with(json!({}))
    }

    /// An H100 80GB with `overrides` merged into its state: GPU fields (`mig_current`,
    /// `mig_needs_reset`, `not_root`, `name`, ...) and `driver_profiles`, the profiles this
    /// driver lists differently from the catalog, by ID (`name`, `memory_gib`, `placements`,
    /// or `absent`).
    pub fn with(overrides: Value) -> Option<FakeDriver> {
        FakeDriver::node("h100-80gb", overrides)
    }

    /// A node of `models` (as `stand_in_gpu` takes them: `8xh100-80gb`, `h100-80gb,a100-40gb`)
    /// with `overrides` merged into GPU 0.
    pub fn node(models: &str, overrides: Value) -> Option<FakeDriver> {
        if !nvidia_tools() {
            return None;
        }
        let examples = Path::new(env!("CARGO_BIN_EXE_migbench"))
            .parent()
            .unwrap()
            .join("examples");
        assert!(
            examples.join("libfake_nvml.so").exists() && examples.join("stand_in_gpu").exists(),
            "the stand-in GPU is not built: `cargo test` builds it, or `cargo build --examples`"
        );
        let dir = tempfile::tempdir().unwrap();
        let gpu_dir = dir.path().join("gpu");
        let out = std::process::Command::new(examples.join("stand_in_gpu"))
            .arg(models)
            .arg(&gpu_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // nvidia-smi as migbench runs it, each call logged first: what migbench asked of it. By
        // its full path: a PATH may lead to a wrapper (the validation kit's guard) that leads
        // back here.
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let logger = bin.join("nvidia-smi");
        std::fs::write(
            &logger,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                gpu_dir.join("calls.log").display(),
                nvidia_tool("nvidia-smi").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755)).unwrap();

        let driver = FakeDriver {
            dir,
            examples,
            uuid: String::new(),
        };
        let mut node = driver.node_state();
        let gpu = &mut node["gpus"][0];
        for (k, v) in overrides.as_object().unwrap() {
            if k == "driver_profiles" {
                for (id, change) in v.as_object().unwrap() {
                    edit_profile(gpu, id.parse().unwrap(), change);
                }
            } else {
                gpu[k] = v.clone();
            }
        }
        driver.write_node(&node);
        Some(FakeDriver {
            uuid: node["gpus"][0]["uuid"].as_str().unwrap().to_string(),
            ..driver
        })
    }

    pub fn gpu_dir(&self) -> PathBuf {
        self.dir.path().join("gpu")
    }

    pub fn node_state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.gpu_dir().join("node.json")).unwrap())
            .unwrap()
    }

    pub fn write_node(&self, node: &Value) {
        std::fs::write(
            self.gpu_dir().join("node.json"),
            serde_json::to_string_pretty(node).unwrap(),
        )
        .unwrap();
    }

    /// GPU 0's state.
    /// GPU 0's configuration as the driver keeps it; its energy counter, which only moves while
    /// time passes, is left out.
    pub fn state(&self) -> Value {
        let mut gpu = self.node_state()["gpus"][0].clone();
        if let Some(fields) = gpu.as_object_mut() {
            // Counters that advance with time, not state a run changes.
            for counter in ["energy_mj", "energy_at_ms", "busy_sm_ms", "gi_busy_sm_ms"] {
                fields.remove(counter);
            }
        }
        gpu
    }

    /// The nvidia-smi calls migbench made so far, one per line.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.gpu_dir().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The stand-in CUDA job, as scenarios run it.
    pub fn job(&self) -> String {
        self.gpu_dir()
            .join("bin/stand-in-cuda-job")
            .display()
            .to_string()
    }

    /// The environment that points migbench, and NVIDIA's programs it runs, at the stand-in.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            (
                "MIGBENCH_NVML_LIB",
                self.gpu_dir().join("lib/libnvidia-ml.so.1"),
            ),
            ("LD_LIBRARY_PATH", self.gpu_dir().join("lib")),
            (
                "MIGBENCH_NVIDIA_SMI",
                self.dir.path().join("bin/nvidia-smi"),
            ),
            ("MIGBENCH_FAKE_GPU", self.gpu_dir()),
            ("MIGBENCH_STATE_DIR", self.dir.path().join("state")),
        ]
    }

    pub fn migbench(&self) -> Command {
        let mut cmd = super::migbench();
        cmd.envs(self.env());
        cmd
    }

    /// Runs NVIDIA's nvidia-smi on the stand-in directly, as an administrator would: its output,
    /// successful or not.
    pub fn smi_output(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("nvidia-smi")
            .args(args)
            .env("LD_LIBRARY_PATH", self.gpu_dir().join("lib"))
            .env("MIGBENCH_FAKE_GPU", self.gpu_dir())
            .output()
            .unwrap()
    }

    /// As [`FakeDriver::smi_output`], which must succeed: its standard output.
    pub fn smi(&self, args: &[&str]) -> String {
        let out = self.smi_output(args);
        assert!(
            out.status.success(),
            "nvidia-smi {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Scenarios run on the stand-in GPU.
impl FakeDriver {
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    /// A scenario of the stand-in job's workloads (probe, engine, greedy) and `variants`.
    pub fn write_scenario(&self, variants: &str) -> PathBuf {
        let job = self.job();
        let text = format!(
            r#"
[scenario]
name = "fake-driver"
description = "the NVML backend against the stand-in driver"
source = "tests/nvml_backend.rs"

[gpu]
model = "h100-80gb"

[workloads.probe]
name = "probe"
title = "holds 4 GiB, 6 GiB at its peak"
kind = "batch"
unit = "job"
command = ["{job}", "--gib", "4", "--peak-gib", "6", "--seconds", "1"]
timeout_s = 60
memory = {{ constant_gib = 4, peak_gib = 6, source = "its arguments" }}
sim = {{ alpha = 1.0, peak_at = 0.4, peak_for = 0.2, source = "its arguments" }}

[workloads.engine]
name = "engine"
title = "as probe, with the memory held by a child process"
kind = "batch"
unit = "job"
command = ["{job}", "--gib", "4", "--peak-gib", "6", "--seconds", "1", "--child"]
timeout_s = 60
memory = {{ constant_gib = 4, peak_gib = 6, source = "its arguments" }}
sim = {{ alpha = 1.0, peak_at = 0.4, peak_for = 0.2, source = "its arguments" }}

[workloads.greedy]
name = "greedy"
title = "asks for more than the device has at its peak"
kind = "batch"
unit = "job"
command = ["{job}", "--gib", "4", "--seconds", "1", "--exceed"]
timeout_s = 60
memory = {{ constant_gib = 4, peak_gib = 6, source = "its arguments" }}
sim = {{ alpha = 1.0, peak_at = 0.4, peak_for = 0.0, fail_at = 0.4, source = "its arguments" }}
{variants}"#
        );
        let path = self.dir.path().join("scenario.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `migbench run` of `scenario` on the stand-in GPU, sampling every 10 ms.
    pub fn run(&self, scenario: &Path, extra: &[&str]) -> Output {
        self.migbench()
            .args(["run", "--quiet", "--sample-ms", "10", "--out"])
            .arg(self.out())
            .args(extra)
            .arg(scenario)
            .output()
            .unwrap()
    }

    /// The GPU is as a run found it: MIG off, no instances, no MPS process of the test's.
    pub fn assert_as_found(&self) {
        let state = self.state();
        assert_eq!(state["mig_current"], json!(false), "{state}");
        assert_eq!(state["gis"], json!([]), "{state}");
        assert_eq!(mps_processes_under(self.dir.path()), Vec::<String>::new());
    }

    /// Writes a scenario of `variants` ([`FakeDriver::write_scenario`]) and runs it.
    pub fn run_variants(&self, variants: &str) -> Output {
        let scenario = self.write_scenario(variants);
        self.run(&scenario, &[])
    }

    /// The one run directory under the results.
    pub fn run_dir(&self) -> PathBuf {
        std::fs::read_dir(self.out())
            .unwrap()
            .next()
            .expect("a run directory")
            .unwrap()
            .path()
    }
}

/// One variant: one probe job on the whole GPU.
pub const ONE_FULL_JOB: &str = r#"
[[variants]]
name = "full"
mode = "full"
jobs = [{ workload = "probe" }]
"#;

/// Changes profile `id` of a GPU's driver table as another driver lists it.
fn edit_profile(gpu: &mut Value, id: u64, change: &Value) {
    let profiles = gpu["profiles"].as_array_mut().unwrap();
    if change["absent"] == json!(true) {
        profiles.retain(|p| p["id"] != json!(id));
        return;
    }
    let p = profiles
        .iter_mut()
        .find(|p| p["id"] == json!(id))
        .expect("a profile of the catalog");
    if let Some(name) = change.get("name") {
        p["name"] = name.clone();
    }
    if let Some(gib) = change.get("memory_gib").and_then(Value::as_f64) {
        p["memory_mib"] = json!((gib * 1024.0).round() as u64);
    }
    if let Some(placements) = change.get("placements") {
        p["placements"] = placements.clone();
    }
}

/// The pipe directories of the MPS control daemons whose logs are under `root` (a test's run
/// directory): one per daemon, however many short-lived `nvidia-cuda-mps-control` clients
/// (commands sent to it) run at the moment.
pub fn mps_daemon_pipes_under(root: &Path) -> std::collections::BTreeSet<PathBuf> {
    migbench::backend::nvml::mps::processes()
        .into_iter()
        .filter(|p| p.program == "nvidia-cuda-mps-control")
        .filter(|p| p.log_dir.as_deref().is_some_and(|d| d.starts_with(root)))
        .filter_map(|p| p.pipe_dir)
        .collect()
}

/// MPS processes whose logs are under `root`, as "program pid".
pub fn mps_processes_under(root: &Path) -> Vec<String> {
    migbench::backend::nvml::mps::processes()
        .into_iter()
        .filter(|p| p.log_dir.as_deref().is_some_and(|d| d.starts_with(root)))
        .map(|p| format!("{} {}", p.program, p.pid))
        .collect()
}
