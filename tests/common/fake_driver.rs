//! The stand-in NVIDIA driver of examples/fake_*.rs, set up for one test: a GPU in a temporary
//! directory and the environment that points migbench at it. Shared by the tests that run the
//! NVML backend (nvml_backend.rs) and the validation kit (gpu_kit.rs) on it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{json, Value};

/// A stand-in GPU in a temporary directory, and the environment that points migbench at it.
pub struct FakeDriver {
    pub dir: tempfile::TempDir,
    pub examples: PathBuf,
    /// Each test its own GPU, as tests run side by side.
    pub uuid: String,
}

impl FakeDriver {
    pub fn h100() -> FakeDriver {
        FakeDriver::with(json!({}))
    }

    /// An H100 80GB with `overrides` merged into its state.
    pub fn with(overrides: Value) -> FakeDriver {
        let examples = Path::new(env!("CARGO_BIN_EXE_migbench"))
            .parent()
            .unwrap()
            .join("examples");
        assert!(
            examples.join("libfake_nvml.so").exists(),
            "the stand-in driver is not built: `cargo test` builds it, or `cargo build --examples`"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("gpu")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        // migbench knows MPS processes by program name, as the real ones are called.
        std::os::unix::fs::symlink(
            examples.join("fake_mps_control"),
            dir.path().join("bin/nvidia-cuda-mps-control"),
        )
        .unwrap();
        static GPUS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = GPUS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uuid = format!(
            "GPU-{:04x}{n:04x}-9d17-0af6-ba0b-82402cce84b5",
            std::process::id() & 0xffff
        );
        let mut state = json!({
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": uuid,
            "memory_mib": 81559,
            "driver": "550.54.15",
            "cuda": 12040,
        });
        for (k, v) in overrides.as_object().unwrap() {
            state[k] = v.clone();
        }
        let driver = FakeDriver {
            dir,
            examples,
            uuid,
        };
        driver.write_state(&state);
        driver
    }

    pub fn gpu_dir(&self) -> PathBuf {
        self.dir.path().join("gpu")
    }

    pub fn write_state(&self, state: &Value) {
        std::fs::write(
            self.gpu_dir().join("gpu.json"),
            serde_json::to_string_pretty(state).unwrap(),
        )
        .unwrap();
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.gpu_dir().join("gpu.json")).unwrap())
            .unwrap()
    }

    /// The nvidia-smi calls made so far, one per line.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.gpu_dir().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn job(&self) -> String {
        self.examples.join("fake_cuda_job").display().to_string()
    }

    /// The environment that points migbench at the stand-in driver.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("MIGBENCH_NVML_LIB", self.examples.join("libfake_nvml.so")),
            ("MIGBENCH_NVIDIA_SMI", self.examples.join("fake_nvidia_smi")),
            (
                "MIGBENCH_MPS_CONTROL",
                self.dir.path().join("bin/nvidia-cuda-mps-control"),
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

    /// Runs nvidia-smi (the stand-in) directly, as an administrator would.
    pub fn smi(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(self.examples.join("fake_nvidia_smi"))
            .args(args)
            .env("MIGBENCH_FAKE_GPU", self.gpu_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// MPS processes (daemons and servers) whose pipe directory lies under `root`.
/// The pipe directories of the MPS control processes below `root`: one per daemon, however many
/// short-lived `nvidia-cuda-mps-control` clients (commands sent to it) run at the moment.
pub fn mps_daemon_pipes_under(root: &Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    migbench::backend::nvml::mps::processes()
        .into_iter()
        .filter(|p| p.program == "nvidia-cuda-mps-control")
        .filter_map(|p| p.pipe_dir)
        .filter(|d| d.starts_with(root))
        .collect()
}

pub fn mps_processes_under(root: &Path) -> Vec<String> {
    migbench::backend::nvml::mps::processes()
        .into_iter()
        .filter(|p| p.pipe_dir.as_deref().is_some_and(|d| d.starts_with(root)))
        .map(|p| format!("{} {}", p.program, p.pid))
        .collect()
}
