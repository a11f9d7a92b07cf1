//! Finding MPS processes (control daemons and servers) on this machine, by their pipe directory:
//! that is how migbench tells its own daemons from anyone else's, checks that `quit` left no
//! server behind, and records the daemons it found.

use std::path::{Path, PathBuf};

use crate::procfs;

/// Where MPS puts its pipes when `CUDA_MPS_PIPE_DIRECTORY` is not set (MPS documentation).
const DEFAULT_PIPE_DIR: &str = "/tmp/nvidia-mps";

/// An MPS process seen in /proc.
#[derive(Debug, Clone, PartialEq)]
pub struct MpsProcess {
    pub pid: u32,
    /// `nvidia-cuda-mps-control` or `nvidia-cuda-mps-server`.
    pub program: String,
    /// Its pipe directory, when its environment is readable.
    pub pipe_dir: Option<PathBuf>,
    /// Its `CUDA_VISIBLE_DEVICES`: None when unset (it serves every GPU) or unreadable.
    pub visible_devices: Option<String>,
}

/// Every MPS control daemon and server running now.
pub fn processes() -> Vec<MpsProcess> {
    procfs::pids()
        .into_iter()
        .filter_map(|pid| {
            let argv0 = procfs::cmdline(pid)?.into_iter().next()?;
            let program = Path::new(&argv0).file_name()?.to_str()?.to_string();
            if !program.starts_with("nvidia-cuda-mps-") || !procfs::is_running(pid) {
                return None;
            }
            let pipe_dir = procfs::env_var(pid, "CUDA_MPS_PIPE_DIRECTORY")
                .map(|dir| dir.unwrap_or_else(|| PathBuf::from(DEFAULT_PIPE_DIR)));
            let visible_devices = procfs::env_var(pid, "CUDA_VISIBLE_DEVICES")
                .flatten()
                .map(|v| v.to_string_lossy().into_owned());
            Some(MpsProcess {
                pid,
                program,
                pipe_dir,
                visible_devices,
            })
        })
        .collect()
}

/// MPS processes serving `pipe_dir`.
pub fn using(pipe_dir: &Path) -> Vec<MpsProcess> {
    processes()
        .into_iter()
        .filter(|p| p.pipe_dir.as_deref() == Some(pipe_dir))
        .collect()
}

/// How the control daemons serving one of `devices` (a GPU's index and UUID, and its MIG
/// devices' UUIDs, as `CUDA_VISIBLE_DEVICES` names them) are named in a
/// [`crate::backend::GpuState`]: by pipe directory. A daemon without `CUDA_VISIBLE_DEVICES`
/// serves every GPU, so it counts too; daemons of other GPUs do not.
pub fn daemon_names(devices: &[String]) -> Vec<String> {
    let mut names: Vec<String> = processes()
        .into_iter()
        .filter(|p| p.program == "nvidia-cuda-mps-control")
        .filter(|p| serves(p.visible_devices.as_deref(), devices))
        .map(|p| match p.pipe_dir {
            Some(dir) => format!("MPS daemon at {}", dir.display()),
            None => format!("MPS daemon pid {}", p.pid),
        })
        .collect();
    names.sort();
    names
}

/// Whether a daemon with this `CUDA_VISIBLE_DEVICES` (None: unset) serves one of `devices`.
fn serves(visible: Option<&str>, devices: &[String]) -> bool {
    visible.is_none_or(|v| v.split(',').any(|d| devices.iter().any(|x| x == d.trim())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_daemon_serves_the_gpus_its_visible_devices_name_or_all_when_unset() {
        let ours = ["0".to_string(), "GPU-aa".to_string(), "MIG-bb".to_string()];
        assert!(super::serves(None, &ours));
        assert!(super::serves(Some("GPU-aa"), &ours));
        assert!(super::serves(Some("1, MIG-bb"), &ours));
        assert!(super::serves(Some("0"), &ours));
        assert!(!super::serves(Some("1"), &ours));
        assert!(!super::serves(Some("GPU-aab"), &ours));
    }
}
