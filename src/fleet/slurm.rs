//! Slurm: the IDs of the job a run ran in, and the batch scripts of `migbench slurm submit`.

use serde::{Deserialize, Serialize};

/// The Slurm job a run ran in, from the variables `sbatch` sets in a job's environment
/// (`SLURM_JOB_ID`, `SLURM_ARRAY_JOB_ID`, `SLURM_ARRAY_TASK_ID`, `SLURM_JOB_NODELIST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmIds {
    pub job_id: String,
    /// The array's job ID, for a task of a job array.
    pub array_job_id: Option<String>,
    pub array_task_id: Option<String>,
    /// The nodes the job was given.
    pub nodelist: Option<String>,
}

impl SlurmIds {
    /// The IDs of the Slurm job this process runs in; `None` outside Slurm.
    pub fn from_env() -> Option<SlurmIds> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<SlurmIds> {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        Some(SlurmIds {
            job_id: get("SLURM_JOB_ID")?,
            array_job_id: get("SLURM_ARRAY_JOB_ID"),
            array_task_id: get("SLURM_ARRAY_TASK_ID"),
            nodelist: get("SLURM_JOB_NODELIST"),
        })
    }

    /// `123` or, for an array task, `120_3` (as `squeue` and `sacct` show it).
    pub fn display(&self) -> String {
        match (&self.array_job_id, &self.array_task_id) {
            (Some(array), Some(task)) => format!("{array}_{task}"),
            _ => self.job_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_job_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(SlurmIds::from_vars(env(&[])), None);
        let plain = SlurmIds::from_vars(env(&[("SLURM_JOB_ID", "42")])).unwrap();
        assert_eq!(plain.display(), "42");
        let task = SlurmIds::from_vars(env(&[
            ("SLURM_JOB_ID", "43"),
            ("SLURM_ARRAY_JOB_ID", "40"),
            ("SLURM_ARRAY_TASK_ID", "3"),
        ]))
        .unwrap();
        assert_eq!(task.display(), "40_3");
        assert_eq!(task.job_id, "43");
    }
}
