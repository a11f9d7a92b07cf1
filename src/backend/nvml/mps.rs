//! Finding MPS processes (control daemons and servers) on this machine, by their pipe directory:
//! that is how migbench tells its own daemons from anyone else's, checks that `quit` left no
//! server behind, and records the daemons it found.

use std::path::{Path, PathBuf};

use crate::procfs;

/// Where MPS puts its pipes when `CUDA_MPS_PIPE_DIRECTORY` is not set (MPS documentation).
const DEFAULT_PIPE_DIR: &str = "/tmp/nvidia-mps";

/// Where the MPS daemon of device `n` keeps its pipes: a private directory under /tmp named by a
/// hash of the run's MPS directory, `/tmp/mb-<12 hex>/dN`. Not in the run directory: the
/// daemon's `control` and `control_privileged` are UNIX sockets, whose paths may not exceed 107
/// bytes, and NVIDIA's daemon does not start under a deep results folder (docs/mps.md). Its
/// logs stay in the run directory, beside the other results.
pub fn pipe_dir(mps_root: &Path, n: usize) -> PathBuf {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(mps_root.as_os_str().as_encoded_bytes());
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from("/tmp")
        .join(format!("{PIPE_PREFIX}{hex}"))
        .join(format!("d{n}"))
}

/// The name every MPS pipe directory's parent begins with, so that `restore` and a teardown
/// remove only directories migbench made.
pub const PIPE_PREFIX: &str = "mb-";

/// The longest name the daemon gives a socket in its pipe directory.
const LONGEST_SOCKET: &str = "control_privileged";

/// The most bytes a UNIX socket's path may have (`sun_path` is 108 bytes with its NUL).
pub const SOCKET_PATH_MAX: usize = 107;

/// Why NVIDIA's daemon cannot make its sockets in `pipe_dir`, if it cannot: the path of its
/// longest socket is past [`SOCKET_PATH_MAX`].
pub fn socket_path_problem(pipe_dir: &Path) -> Option<String> {
    let socket = pipe_dir.join(LONGEST_SOCKET);
    let len = socket.as_os_str().len();
    (len > SOCKET_PATH_MAX).then(|| {
        format!(
            "its socket {} would be {len} bytes long, and a UNIX socket's path may have at most {SOCKET_PATH_MAX}",
            socket.display()
        )
    })
}

/// Removes a pipe directory migbench made (`/tmp/mb-…/dN`) once its daemon is gone, and its
/// parent when that is empty; any other directory is left alone.
pub fn remove_pipe_dir(pipe_dir: &Path) {
    let Some(parent) = pipe_dir.parent() else {
        return;
    };
    let ours = parent
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PIPE_PREFIX));
    if ours {
        let _ = std::fs::remove_dir_all(pipe_dir);
        // Fails, as it should, while another device's pipe directory is still there.
        let _ = std::fs::remove_dir(parent);
    }
}

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
    /// Its `CUDA_MPS_LOG_DIRECTORY`, when set and readable: migbench's daemons log in the run
    /// directory, while their pipes are under /tmp.
    pub log_dir: Option<PathBuf>,
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
            let log_dir = procfs::env_var(pid, "CUDA_MPS_LOG_DIRECTORY").flatten();
            Some(MpsProcess {
                pid,
                program,
                pipe_dir,
                visible_devices,
                log_dir,
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
        // The daemon (`-d`), not a command being sent to one, which runs without
        // CUDA_VISIBLE_DEVICES and would look for a moment like a daemon serving every GPU.
        .filter(|p| procfs::cmdline(p.pid).is_some_and(|argv| argv.iter().any(|a| a == "-d")))
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
    use std::path::Path;

    #[test]
    fn pipe_directories_are_short_private_and_one_per_run_variant_and_device() {
        let deep = Path::new("/a/results/folder/deep/enough/that/a/socket/could/not/live/there/scenario-20261206T000000Z/mps/mps-together/r1");
        let d0 = super::pipe_dir(deep, 0);
        let text = d0.display().to_string();
        assert!(
            text.starts_with("/tmp/mb-") && text.ends_with("/d0"),
            "{text}"
        );
        assert_eq!(text.len(), "/tmp/mb-".len() + 12 + "/d0".len());
        assert_eq!(super::pipe_dir(deep, 0), d0, "the same run finds it again");
        assert_eq!(super::pipe_dir(deep, 1).parent(), d0.parent());
        assert_ne!(
            super::pipe_dir(&deep.with_file_name("r2"), 0).parent(),
            d0.parent(),
            "another repetition, another directory"
        );
        assert_eq!(super::socket_path_problem(&d0), None);
    }

    #[test]
    fn a_pipe_directory_too_long_for_a_unix_socket_is_named_with_the_length() {
        // 95 characters: NVIDIA's daemon exits 1 with such a directory (issue 22).
        let long = format!("/tmp/{}", "x".repeat(90));
        let problem = super::socket_path_problem(Path::new(&long)).unwrap();
        assert!(
            problem.contains("control_privileged would be 114 bytes long"),
            "{problem}"
        );
        assert!(problem.contains("at most 107"), "{problem}");
        // 88 characters and the longest socket name fit exactly.
        let fits = format!("/tmp/{}", "x".repeat(83));
        assert_eq!(super::socket_path_problem(Path::new(&fits)), None);
    }

    #[test]
    fn only_pipe_directories_migbench_made_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let ours = root.path().join("mb-0123456789ab/d0");
        let theirs = root.path().join("someone/d0");
        for d in [&ours, &theirs] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("control_lock"), "").unwrap();
        }
        super::remove_pipe_dir(&ours);
        super::remove_pipe_dir(&theirs);
        assert!(!ours.parent().unwrap().exists());
        assert!(theirs.join("control_lock").exists());
    }

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
