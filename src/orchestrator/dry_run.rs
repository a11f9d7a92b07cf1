//! `migbench run --dry-run`: every setup and teardown step, printed instead of made.

use std::path::Path;

use super::jobs::container_launch;
use super::planned::{allowed_slots, PlannedJob};
use super::variant::mps_root;
use super::{planned, setup};
use crate::backend::dry_run::DryRunBackend;
use crate::backend::Backend;
use crate::error::Result;
use crate::journal::Journal;
use crate::mode::SharingMode;
use crate::scenario::Scenario;
use crate::scenario::Variant;

/// What `migbench run --dry-run` prints: the setup and teardown of every repetition of every
/// variant, made on `backend` (which prints instead of changing anything) by the same code a
/// real run uses. MPS directories are shown below `$RUN_DIR`, the run directory a real run makes.
pub fn dry_run(scenario: &Scenario, backend: &DryRunBackend) -> Result<Vec<String>> {
    let mut journal = Journal::disabled();
    let info = backend.info();
    backend.comment(&format!(
        "migbench dry run of {}: GPU {} ({}), assumed in its default state (MIG off, no \
         instances, no MPS); nothing is changed",
        scenario.path.display(),
        scenario.file.gpu.index.unwrap_or(0),
        info.name
    ));
    backend.comment(
        "instance IDs are those a driver gives on an empty GPU; a real run reads them back",
    );
    for variant in &scenario.file.variants {
        let name = variant.name.get_ref();
        let layout = scenario.layout(variant);
        let planned = planned::expand(scenario, variant)?;
        let layout_text = layout
            .as_ref()
            .map(|l| format!(", layout {l}"))
            .unwrap_or_default();
        if let Some(reason) = planned::infeasible(scenario, variant, layout.as_ref(), &planned) {
            backend.comment(&format!("variant {name}: infeasible, skipped: {reason}"));
            continue;
        }
        for repetition in 1..=variant.repetitions {
            backend.comment(&format!(
                "variant {name} (mode {}{layout_text}), repetition {repetition}: set up",
                variant.mode.get_ref()
            ));
            let mps_root = mps_root(Path::new("$RUN_DIR"), name, repetition);
            setup::set_up(backend, &mut journal, variant, layout.as_ref(), &mps_root)?;
            backend.comment(&format!(
                "variant {name}, repetition {repetition}: {} job(s) run, then tear down",
                planned.len()
            ));
            container_lines(scenario, backend, name, variant, repetition, &planned)?;
            setup::tear_down(backend, &mut journal)?;
        }
    }
    Ok(backend.take_lines())
}

/// The engine command line of each container job of a variant repetition, on the device it
/// would be given first (jobs of a variant with more jobs than devices wait for a free one;
/// `{port}` is the free port a run picks for each server). `<run>` stands for the run
/// directory's name, which a real run's containers carry.
fn container_lines(
    scenario: &Scenario,
    backend: &DryRunBackend,
    name: &str,
    variant: &Variant,
    repetition: u32,
    planned: &[PlannedJob],
) -> Result<()> {
    if planned.iter().all(|j| j.workload.image.is_none()) {
        return Ok(());
    }
    let devices = backend.devices()?;
    let mig_mps = *variant.mode.get_ref() == SharingMode::MigMps;
    for (k, job) in planned.iter().enumerate() {
        let allowed = allowed_slots(job, devices.len());
        let Some(&slot) = allowed.get(if mig_mps { k } else { job.index } % allowed.len().max(1))
        else {
            continue;
        };
        let device = &devices[slot];
        let mut env = device.job_env();
        env.extend(job.workload.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(c) =
            container_launch(scenario, name, repetition, "<run>", None, job, device, &env)?
        {
            backend.comment(&format!(
                "job {} ({}) on {}:",
                job.index, job.workload.name, device.label
            ));
            backend.line(
                &c.argv
                    .iter()
                    .map(|a| quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    }
    Ok(())
}

/// An argument as one word for a POSIX shell: as it is when it holds nothing a shell would
/// read, else in single quotes.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%{}".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
