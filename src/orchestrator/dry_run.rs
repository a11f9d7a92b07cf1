//! `migbench run --dry-run`: every setup and teardown step, printed instead of made.

use std::path::Path;

use super::variant::mps_root;
use super::{planned, setup};
use crate::backend::dry_run::DryRunBackend;
use crate::backend::Backend;
use crate::error::Result;
use crate::journal::Journal;
use crate::scenario::Scenario;

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
            setup::tear_down(backend, &mut journal)?;
        }
    }
    Ok(backend.take_lines())
}
