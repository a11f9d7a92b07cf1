//! Each [`Change`] as the `nvidia-smi` and `nvidia-cuda-mps-control` command lines that make it.
//!
//! This is the one place that knows the command language (docs/nvidia-smi.md): the NVML backend runs
//! these lines, and `migbench run --dry-run` prints them, so what a dry run shows is what a real
//! run does.

use std::collections::BTreeMap;
use std::fmt;

use crate::backend::Change;
use crate::error::{Error, Result};

pub const NVIDIA_SMI: &str = "nvidia-smi";
pub const MPS_CONTROL: &str = "nvidia-cuda-mps-control";

/// One external command: extra environment, argv (never through a shell) and its standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    /// Written to the command's stdin (the MPS control language reads commands there).
    pub stdin: Option<String>,
    /// What the command does, for messages ("create GPU instance 3g.40gb at slice 4").
    pub purpose: String,
    /// Needs root (MIG changes do; an MPS daemon of one's own does not).
    pub privileged: bool,
}

impl fmt::Display for CommandLine {
    /// As a shell line a person could paste: `echo quit | VAR=value nvidia-cuda-mps-control`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(input) = &self.stdin {
            write!(f, "echo {} | ", shell_word(input))?;
        }
        let words = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_word(v)))
            .chain(self.argv.iter().map(|a| shell_word(a)));
        write!(f, "{}", words.collect::<Vec<_>>().join(" "))
    }
}

/// Quotes a word for display when the shell would otherwise split or expand it.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%$".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The IDs the driver gave the instances migbench created: commands that touch an instance name
/// it by GPU-instance and compute-instance ID, while a [`Change`] names it by placement.
#[derive(Debug, Clone, Default)]
pub struct MigIds {
    gi: BTreeMap<u8, u32>,
    ci: BTreeMap<(u8, usize), u32>,
}

impl MigIds {
    pub fn set_gi(&mut self, start: u8, id: u32) {
        self.gi.insert(start, id);
    }

    pub fn set_ci(&mut self, gi_start: u8, index: usize, id: u32) {
        self.ci.insert((gi_start, index), id);
    }

    pub fn forget_gi(&mut self, start: u8) {
        self.gi.remove(&start);
    }

    pub fn forget_ci(&mut self, gi_start: u8, index: usize) {
        self.ci.remove(&(gi_start, index));
    }

    /// Every compute instance listed, as (GPU instance ID, compute instance ID).
    pub fn compute_instance_ids(&self) -> std::collections::BTreeSet<(u32, u32)> {
        self.ci
            .iter()
            .filter_map(|((start, _), ci)| Some((*self.gi.get(start)?, *ci)))
            .collect()
    }

    pub fn gi(&self, start: u8) -> Result<u32> {
        self.gi.get(&start).copied().ok_or_else(|| {
            Error::Harness(format!(
                "no GPU instance ID is known for the instance at slice {start}"
            ))
        })
    }

    pub fn ci(&self, gi_start: u8, index: usize) -> Result<u32> {
        self.ci.get(&(gi_start, index)).copied().ok_or_else(|| {
            Error::Harness(format!(
                "no compute instance ID is known for compute instance {index} of the GPU \
                 instance at slice {gi_start}"
            ))
        })
    }

    /// The GPU-instance ID a driver gives an instance of `size` memory slices at `start` on a
    /// GPU with 8 memory slices: the instances are numbered along a binary tree of the slices
    /// (0: all 8; 1–2: halves; 3–6: quarters; 7–14: eighths). This matches T's H100 listing
    /// (3g.40gb at 0:4 → ID 1, at 4:4 → ID 2) and S's A100 2g.20gb at slice 4 → ID 5
    /// (docs/nvidia-smi.md). Only a dry run uses it; a real run reads the IDs back from the driver.
    pub fn predicted_gi(start: u8, size: u8) -> u32 {
        let (first, width) = match size {
            8.. => (0, 8),
            4..=7 => (1, 4),
            2..=3 => (3, 2),
            _ => (7, 1),
        };
        first + u32::from(start) / width
    }
}

/// `nvidia-smi [mig] -i GPU ARGS...`: the GPU index goes after `mig` when there is one.
pub fn smi(gpu: u32, args: &[String], purpose: String, privileged: bool) -> CommandLine {
    let mut argv = vec![NVIDIA_SMI.to_string()];
    if args.first().is_some_and(|a| a == "mig") {
        argv.extend(["mig".into(), "-i".into(), gpu.to_string()]);
        argv.extend(args[1..].iter().cloned());
    } else {
        argv.extend(["-i".into(), gpu.to_string()]);
        argv.extend(args.iter().cloned());
    }
    CommandLine {
        env: Vec::new(),
        argv,
        stdin: None,
        purpose,
        privileged,
    }
}

fn mps_env(
    device: Option<&str>,
    pipe: &std::path::Path,
    log: &std::path::Path,
) -> Vec<(String, String)> {
    device
        .map(|d| ("CUDA_VISIBLE_DEVICES".to_string(), d.to_string()))
        .into_iter()
        .chain([
            ("CUDA_MPS_PIPE_DIRECTORY".into(), pipe.display().to_string()),
            ("CUDA_MPS_LOG_DIRECTORY".into(), log.display().to_string()),
        ])
        .collect()
}

fn mps_control(env: Vec<(String, String)>, input: Option<String>, purpose: String) -> CommandLine {
    let argv = match input {
        Some(_) => vec![MPS_CONTROL.to_string()],
        None => vec![MPS_CONTROL.to_string(), "-d".into()],
    };
    CommandLine {
        env,
        argv,
        stdin: input,
        purpose,
        privileged: false,
    }
}

/// The command lines that make `change` on GPU `gpu` (its index), in order.
pub fn command_lines(change: &Change, gpu: u32, ids: &MigIds) -> Result<Vec<CommandLine>> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    Ok(match change {
        Change::SetMigMode { enabled } => vec![smi(
            gpu,
            &s(&["-mig", if *enabled { "1" } else { "0" }]),
            format!("{} MIG mode", if *enabled { "enable" } else { "disable" }),
            true,
        )],
        Change::CreateGpuInstance {
            profile_id,
            profile,
            start,
        } => vec![smi(
            gpu,
            &s(&["mig", "-cgi", &format!("{profile_id}:{start}")]),
            format!("create GPU instance {profile} at slice {start}"),
            true,
        )],
        Change::DestroyGpuInstance { profile, start, .. } => vec![smi(
            gpu,
            &s(&["mig", "-gi", &ids.gi(*start)?.to_string(), "-dgi"]),
            format!("destroy GPU instance {profile} at slice {start}"),
            true,
        )],
        Change::CreateComputeInstance {
            gi_start,
            profile_id,
            profile,
            ..
        } => vec![smi(
            gpu,
            &s(&[
                "mig",
                "-gi",
                &ids.gi(*gi_start)?.to_string(),
                "-cci",
                &profile_id.to_string(),
            ]),
            format!("create compute instance {profile} in the GPU instance at slice {gi_start}"),
            true,
        )],
        Change::DestroyComputeInstance {
            gi_start,
            index,
            profile,
            ..
        } => vec![smi(
            gpu,
            &s(&[
                "mig",
                "-gi",
                &ids.gi(*gi_start)?.to_string(),
                "-ci",
                &ids.ci(*gi_start, *index)?.to_string(),
                "-dci",
            ]),
            format!("destroy compute instance {profile} in the GPU instance at slice {gi_start}"),
            true,
        )],
        Change::StartMps {
            device,
            pipe_dir,
            log_dir,
            active_thread_percentage,
            pinned_memory_limit_gib,
        } => {
            let env = mps_env(None, pipe_dir, log_dir);
            let mut lines = vec![mps_control(
                mps_env(Some(device), pipe_dir, log_dir),
                None,
                format!("start an MPS control daemon for {device}"),
            )];
            // Defaults apply to the next server the daemon starts: set them before any client.
            if let Some(p) = active_thread_percentage {
                lines.push(mps_control(
                    env.clone(),
                    Some(format!("set_default_active_thread_percentage {p}")),
                    format!("limit MPS clients of {device} to {p}% of the threads"),
                ));
            }
            if let Some(gib) = pinned_memory_limit_gib {
                // Device 0 is the only device the daemon sees (CUDA_VISIBLE_DEVICES).
                let mib = (gib * 1024.0).round() as u64;
                lines.push(mps_control(
                    env,
                    Some(format!("set_default_device_pinned_mem_limit 0 {mib}M")),
                    format!("limit MPS clients of {device} to {gib} GiB"),
                ));
            }
            lines
        }
        Change::StopMps {
            device,
            pipe_dir,
            log_dir,
        } => vec![mps_control(
            mps_env(None, pipe_dir, log_dir),
            Some("quit".into()),
            format!("quit the MPS control daemon of {device}"),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn lines(change: Change, ids: &MigIds) -> Vec<String> {
        command_lines(&change, 0, ids)
            .unwrap()
            .iter()
            .map(|l| l.to_string())
            .collect()
    }

    #[test]
    fn predicted_ids_follow_the_slice_tree() {
        assert_eq!(MigIds::predicted_gi(0, 8), 0);
        assert_eq!(MigIds::predicted_gi(0, 4), 1);
        assert_eq!(MigIds::predicted_gi(4, 4), 2);
        assert_eq!(MigIds::predicted_gi(4, 2), 5);
        assert_eq!(MigIds::predicted_gi(6, 1), 13);
    }

    #[test]
    fn mig_changes_name_instances_by_their_ids() {
        let mut ids = MigIds::default();
        ids.set_gi(4, 2);
        ids.set_ci(4, 0, 0);
        let create = Change::CreateGpuInstance {
            profile_id: 9,
            profile: "3g.40gb".into(),
            start: 4,
        };
        assert_eq!(
            lines(create.clone(), &ids),
            ["nvidia-smi mig -i 0 -cgi 9:4"]
        );
        assert_eq!(
            lines(create.inverse(), &ids),
            ["nvidia-smi mig -i 0 -gi 2 -dgi"]
        );
        let ci = Change::CreateComputeInstance {
            gi_start: 4,
            index: 0,
            profile_id: 2,
            profile: "3g.40gb".into(),
        };
        assert_eq!(
            lines(ci.clone(), &ids),
            ["nvidia-smi mig -i 0 -gi 2 -cci 2"]
        );
        assert_eq!(
            lines(ci.inverse(), &ids),
            ["nvidia-smi mig -i 0 -gi 2 -ci 0 -dci"]
        );
        assert_eq!(
            lines(Change::SetMigMode { enabled: true }, &ids),
            ["nvidia-smi -i 0 -mig 1"]
        );
    }

    #[test]
    fn an_unknown_instance_is_an_error_not_a_guess() {
        let err = command_lines(
            &Change::DestroyGpuInstance {
                profile_id: 9,
                profile: "3g.40gb".into(),
                start: 0,
            },
            0,
            &MigIds::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("slice 0"), "{err}");
    }

    #[test]
    fn mps_settings_are_set_before_clients_and_quoted_for_the_shell() {
        let start = Change::StartMps {
            device: "GPU-1".into(),
            pipe_dir: PathBuf::from("/r/my dir/pipe"),
            log_dir: PathBuf::from("/r/log"),
            active_thread_percentage: Some(50),
            pinned_memory_limit_gib: Some(20.5),
        };
        assert_eq!(
            lines(start.clone(), &MigIds::default()),
            [
                "CUDA_VISIBLE_DEVICES=GPU-1 CUDA_MPS_PIPE_DIRECTORY='/r/my dir/pipe' \
                 CUDA_MPS_LOG_DIRECTORY=/r/log nvidia-cuda-mps-control -d",
                "echo 'set_default_active_thread_percentage 50' | \
                 CUDA_MPS_PIPE_DIRECTORY='/r/my dir/pipe' CUDA_MPS_LOG_DIRECTORY=/r/log \
                 nvidia-cuda-mps-control",
                "echo 'set_default_device_pinned_mem_limit 0 20992M' | \
                 CUDA_MPS_PIPE_DIRECTORY='/r/my dir/pipe' CUDA_MPS_LOG_DIRECTORY=/r/log \
                 nvidia-cuda-mps-control",
            ]
        );
        assert_eq!(
            lines(start.inverse(), &MigIds::default()),
            ["echo quit | CUDA_MPS_PIPE_DIRECTORY='/r/my dir/pipe' CUDA_MPS_LOG_DIRECTORY=/r/log nvidia-cuda-mps-control"]
        );
    }
}
