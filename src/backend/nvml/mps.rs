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
            Some(MpsProcess {
                pid,
                program,
                pipe_dir,
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

/// How a found daemon is named in a [`crate::backend::GpuState`]: its pipe directory.
pub fn daemon_names() -> Vec<String> {
    let mut names: Vec<String> = processes()
        .into_iter()
        .filter(|p| p.program == "nvidia-cuda-mps-control")
        .map(|p| match p.pipe_dir {
            Some(dir) => format!("MPS daemon at {}", dir.display()),
            None => format!("MPS daemon pid {}", p.pid),
        })
        .collect();
    names.sort();
    names
}
