//! `migbench slurm submit`: writes the batch scripts of a night (see [`crate::fleet::slurm`])
//! and submits them with `sbatch`, the report job depending on the run arrays.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::SlurmSubmitArgs;
use crate::error::{Error, Result};
use crate::fleet::slurm::{self, Script, Submission, DEPENDENCY};
use crate::scenario::Scenario;

pub fn submit(args: &SlurmSubmitArgs) -> Result<String> {
    let mut scenarios = Vec::new();
    for file in &args.scenarios {
        let scenario = Scenario::load(file).map_err(|e| Error::Input(e.to_string()))?;
        let absolute = absolute(file)?;
        scenarios.push((absolute, scenario.gpu.key.clone()));
    }
    let history = absolute(&args.results)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut night = history.join(&stamp);
    let mut n = 1;
    while night.exists() {
        n += 1;
        night = history.join(format!("{stamp}-{n}"));
    }
    let migbench = match &args.migbench {
        Some(m) => absolute(m)?,
        None => std::env::current_exe()
            .map_err(|e| Error::Harness(format!("cannot tell where migbench is: {e}")))?,
    };
    let submission = Submission {
        scenarios,
        night: night.clone(),
        history,
        partition: args.partition.clone(),
        constraint: args.constraint.clone(),
        gres: args.gres.clone(),
        sim: args.sim,
        migbench,
    };
    submission.check().map_err(Error::Input)?;
    let (arrays, report) = submission.scripts();
    let dir = night.join("slurm");
    if args.print {
        let mut out = String::new();
        for script in arrays.iter().chain([&report]) {
            let path = dir.join(&script.name);
            out.push_str(&format!(
                "# {}\n{}\n# sbatch --parsable {}\n\n",
                path.display(),
                script.text,
                slurm::quote(&path.display().to_string())
            ));
        }
        return Ok(out);
    }
    std::fs::create_dir_all(night.join("runs"))
        .and_then(|()| std::fs::create_dir_all(&dir))
        .map_err(|e| Error::Harness(format!("cannot create {}: {e}", dir.display())))?;
    let mut ids = Vec::new();
    let mut out = String::new();
    for script in &arrays {
        let id = sbatch(&dir, script)?;
        out.push_str(&format!(
            "submitted job array {id}: {} scenario(s), one node each\n",
            script.tasks
        ));
        ids.push(id);
    }
    let report = Script {
        text: report.text.replace(DEPENDENCY, &slurm::dependency(&ids)),
        ..report
    };
    let id = sbatch(&dir, &report)?;
    out.push_str(&format!(
        "submitted job {id}: the report and the history, after jobs {}\nresults: {}\n",
        ids.join(", "),
        night.display()
    ));
    Ok(out)
}

/// Writes `script` into `dir` and submits it; its job ID.
fn sbatch(dir: &Path, script: &Script) -> Result<String> {
    let path = dir.join(&script.name);
    std::fs::write(&path, &script.text)
        .map_err(|e| Error::Harness(format!("cannot write {}: {e}", path.display())))?;
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .map_err(|e| {
            Error::Harness(format!(
                "cannot run sbatch: {e}; submit from a node with Slurm's client, or see the scripts with --print"
            ))
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match slurm::parse_job_id(&stdout) {
        Some(id) if output.status.success() => Ok(id),
        _ => Err(Error::Harness(format!(
            "sbatch {} failed ({}): {}{}",
            path.display(),
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// `path` made absolute against the current directory: the jobs run elsewhere.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::Input(format!("{}: cannot make it absolute: {e}", path.display())))
}
