//! Slurm: the IDs of the job a run ran in, and the batch scripts of `migbench slurm submit`.
//!
//! A submission is one night of the nightly layout (`scripts/nightly.sh`'s), below the shared
//! results directory: `DIR/<UTC time>/runs/` (run directories), `report/` and `history/`, and
//! `slurm/` (the batch scripts and the jobs' output). Scenarios that ask for the same node (the
//! same `--constraint` and `--gres` once `{gpu}` is replaced by the scenario's GPU model) go in
//! one job array, each task running `migbench run` on a node of its own (`--exclusive`); one last
//! job, `--dependency=afterany` on them all, writes the report and the history.

use std::path::{Path, PathBuf};

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

/// What a submission asks of Slurm.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The scenario files (absolute) and the catalog key of each one's GPU.
    pub scenarios: Vec<(PathBuf, String)>,
    /// The night's directory, `DIR/<UTC time>` (absolute, on a shared filesystem).
    pub night: PathBuf,
    /// The nightly history the night is in.
    pub history: PathBuf,
    pub partition: Option<String>,
    /// `{gpu}` becomes the scenario's GPU model (`h100-80gb`).
    pub constraint: Option<String>,
    pub gres: Option<String>,
    pub sim: bool,
    /// The migbench the jobs run.
    pub migbench: PathBuf,
}

/// What a run array asks of a node: `--constraint` and `--gres`.
type NodeRequest = (Option<String>, Option<String>);

/// One batch script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// File name in the night's `slurm/` directory.
    pub name: String,
    pub text: String,
    /// Scenarios it runs (a run array) or none (the report job).
    pub tasks: usize,
}

impl Submission {
    /// Refuses a value with a control character: every value goes into a batch script, an
    /// `#SBATCH` line unquoted (sbatch reads those itself), so a newline in `--partition` would
    /// start a line of its own that bash runs.
    pub fn check(&self) -> Result<(), String> {
        let paths = self
            .scenarios
            .iter()
            .map(|(f, _)| ("a scenario path", f.display().to_string()))
            .chain([
                ("--results", self.night.display().to_string()),
                ("--migbench", self.migbench.display().to_string()),
            ]);
        let options = [
            ("--partition", &self.partition),
            ("--constraint", &self.constraint),
            ("--gres", &self.gres),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v.clone())));
        for (name, value) in options.chain(paths) {
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                return Err(format!(
                    "{name} {}: holds the control character U+{:04X}; values that go into a \
                     batch script may hold none (no newline, tab or escape)",
                    crate::bounds::quote(&value),
                    c as u32
                ));
            }
        }
        Ok(())
    }

    /// The run arrays, one per distinct node request, then the report job's script, whose
    /// `--dependency` names `DEPENDENCY` until the arrays' IDs are known.
    pub fn scripts(&self) -> (Vec<Script>, Script) {
        let mut groups: Vec<(NodeRequest, Vec<&Path>)> = Vec::new();
        for (file, gpu) in &self.scenarios {
            let fill = |o: &Option<String>| o.as_ref().map(|v| v.replace("{gpu}", gpu));
            let request = (fill(&self.constraint), fill(&self.gres));
            match groups.iter_mut().find(|(r, _)| *r == request) {
                Some((_, files)) => files.push(file),
                None => groups.push((request, vec![file])),
            }
        }
        let slurm = self.night.join("slurm");
        let runs = self.night.join("runs");
        let arrays = groups
            .iter()
            .enumerate()
            .map(|(i, ((constraint, gres), files))| {
                let mut text = header(&format!("migbench-run-{i}"));
                text.push_str(&directive("--exclusive", None));
                text.push_str(&directive("--nodes", Some("1")));
                text.push_str(&directive("--ntasks", Some("1")));
                text.push_str(&directive(
                    "--array",
                    Some(&format!("0-{}", files.len() - 1)),
                ));
                text.push_str(&self.placement(constraint.as_deref(), gres.as_deref()));
                let output = slurm.join(format!("run-{i}-%A_%a.out"));
                text.push_str(&directive("--output", Some(&output.display().to_string())));
                text.push_str("\nset -euo pipefail\nscenarios=(");
                for f in files {
                    text.push(' ');
                    text.push_str(&quote(&f.display().to_string()));
                }
                text.push_str(" )\n");
                let mut argv = vec![self.migbench.display().to_string(), "run".into()];
                argv.push("--quiet".into());
                if self.sim {
                    argv.push("--sim".into());
                }
                argv.extend(["--out".into(), runs.display().to_string()]);
                text.push_str("exec");
                for a in &argv {
                    text.push(' ');
                    text.push_str(&quote(a));
                }
                text.push_str(" \"${scenarios[$SLURM_ARRAY_TASK_ID]}\"\n");
                Script {
                    name: format!("run-{i}.sbatch"),
                    text,
                    tasks: files.len(),
                }
            })
            .collect();
        let mut text = header("migbench-report");
        text.push_str(&directive("--dependency", Some(DEPENDENCY)));
        text.push_str(&directive("--nodes", Some("1")));
        text.push_str(&directive("--ntasks", Some("1")));
        if let Some(p) = &self.partition {
            text.push_str(&directive("--partition", Some(p)));
        }
        let output = slurm.join("report-%j.out");
        text.push_str(&directive("--output", Some(&output.display().to_string())));
        text.push_str("\nset -euo pipefail\n");
        let m = quote(&self.migbench.display().to_string());
        let report = self.night.join("report");
        text.push_str(&format!(
            "{m} report {} --out {} --openmetrics {}\n",
            quote(&runs.display().to_string()),
            quote(&report.display().to_string()),
            quote(&report.join("migbench.prom").display().to_string()),
        ));
        // Exit status 1 when the night regressed: the job then shows FAILED in sacct.
        text.push_str(&format!(
            "exec {m} history {} --out {}\n",
            quote(&self.history.display().to_string()),
            quote(&self.night.join("history").display().to_string()),
        ));
        let report = Script {
            name: "report.sbatch".into(),
            text,
            tasks: 0,
        };
        (arrays, report)
    }

    fn placement(&self, constraint: Option<&str>, gres: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(p) = &self.partition {
            out.push_str(&directive("--partition", Some(p)));
        }
        if let Some(c) = constraint {
            out.push_str(&directive("--constraint", Some(c)));
        }
        if let Some(g) = gres {
            out.push_str(&directive("--gres", Some(g)));
        }
        out
    }
}

/// Where the report job's script names the run jobs, replaced when they are submitted.
pub const DEPENDENCY: &str = "afterany:$RUN_JOBS";

/// The report job's dependency on the run arrays.
pub fn dependency(job_ids: &[String]) -> String {
    format!("afterany:{}", job_ids.join(":"))
}

/// The job ID in `sbatch --parsable`'s answer (`123` or `123;cluster`).
pub fn parse_job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

fn header(name: &str) -> String {
    format!("#!/bin/bash\n{}", directive("--job-name", Some(name)))
}

fn directive(option: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("#SBATCH {option}={v}\n"),
        None => format!("#SBATCH {option}\n"),
    }
}

/// `text` as one word for bash: in single quotes, each `'` closed, escaped and reopened.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(gpus: &[&str]) -> Submission {
        Submission {
            scenarios: gpus
                .iter()
                .enumerate()
                .map(|(i, g)| (PathBuf::from(format!("/s/{i}.toml")), g.to_string()))
                .collect(),
            night: "/shared/nightly/20260101T000000Z".into(),
            history: "/shared/nightly".into(),
            partition: Some("gpu".into()),
            constraint: Some("{gpu}".into()),
            gres: Some("gpu:1".into()),
            sim: true,
            migbench: "/opt/migbench".into(),
        }
    }

    #[test]
    fn scenarios_on_one_gpu_model_share_an_array() {
        let (arrays, report) = submission(&["h100-80gb", "a100-80gb", "h100-80gb"]).scripts();
        assert_eq!(arrays.len(), 2);
        assert_eq!(arrays[0].tasks, 2);
        let h100 = &arrays[0].text;
        assert!(h100.contains("#SBATCH --array=0-1\n"), "{h100}");
        assert!(h100.contains("#SBATCH --exclusive\n"), "{h100}");
        assert!(h100.contains("#SBATCH --constraint=h100-80gb\n"), "{h100}");
        assert!(h100.contains("#SBATCH --gres=gpu:1\n"), "{h100}");
        assert!(
            h100.contains("scenarios=( '/s/0.toml' '/s/2.toml' )"),
            "{h100}"
        );
        assert!(
            h100.contains("exec '/opt/migbench' 'run' '--quiet' '--sim' '--out' '/shared/nightly/20260101T000000Z/runs' \"${scenarios[$SLURM_ARRAY_TASK_ID]}\""),
            "{h100}"
        );
        assert!(arrays[1].text.contains("--constraint=a100-80gb"));
        assert!(report
            .text
            .contains(&format!("#SBATCH --dependency={DEPENDENCY}\n")));
        assert!(
            report.text.contains(
                "history '/shared/nightly' --out '/shared/nightly/20260101T000000Z/history'"
            ),
            "{}",
            report.text
        );
        assert_eq!(dependency(&["12".into(), "13".into()]), "afterany:12:13");
    }

    proptest::proptest! {
        /// Whatever the options hold, either they are refused or each is a value inside its
        /// own `#SBATCH` line: the scripts have the lines they always have, no more.
        #[test]
        fn no_option_adds_a_line_to_a_script(
            partition in "(?s).{0,12}",
            constraint in "(?s).{0,12}",
            gres in "[a-z:\n\r\t\u{0}\u{1b}'\"$;` ]{0,12}",
        ) {
            let plain = submission(&["h100-80gb"]);
            let given = Submission {
                partition: Some(partition.clone()),
                constraint: Some(constraint.clone()),
                gres: Some(gres.clone()),
                ..plain.clone()
            };
            let control = [&partition, &constraint, &gres]
                .iter()
                .any(|v| v.chars().any(char::is_control));
            proptest::prop_assert_eq!(given.check().is_err(), control);
            if !control {
                let lines = |s: &Submission| {
                    let (arrays, report) = s.scripts();
                    arrays.iter().chain([&report]).map(|s| s.text.lines().count()).collect::<Vec<_>>()
                };
                proptest::prop_assert_eq!(lines(&given), lines(&plain));
            }
        }
    }

    #[test]
    fn quoting_and_job_ids() {
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(parse_job_id("123\n"), Some("123".into()));
        assert_eq!(parse_job_id("124;cluster\n"), Some("124".into()));
        assert_eq!(parse_job_id("sbatch: error"), None);
    }

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
