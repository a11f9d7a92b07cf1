//! MIG mode: read through NVML, changed through nvidia-smi, never by a reset.

use nvml_wrapper::error::NvmlError;

use super::commands::{command_lines, MigIds};
use super::library::{nvml_error, without_nvml};
use super::{exec, NvmlBackend};
use crate::backend::Change;
use crate::error::{Error, Result};

impl NvmlBackend {
    /// MIG mode: (current, pending).
    pub(super) fn mig_mode(&self) -> Result<(bool, bool)> {
        match self.device()?.mig_mode() {
            Ok(m) => Ok((m.current == 1, m.pending == 1)),
            // A GPU without MIG support is a GPU with MIG off.
            Err(NvmlError::NotSupported) => Ok((false, false)),
            Err(e) => Err(nvml_error("the MIG mode")(e)),
        }
    }

    /// Runs nvidia-smi's lines for a MIG mode change with NVML let go (see
    /// [`without_nvml`]): what nvidia-smi printed.
    fn run_mode_change(&self, change: &Change) -> Result<String> {
        let lines = command_lines(change, self.index, &MigIds::default())?;
        without_nvml(self.nvml, || {
            lines
                .iter()
                .map(exec::run)
                .collect::<Result<Vec<String>>>()
                .map(|out| out.concat())
        })
    }

    pub(super) fn set_mig_mode(&self, change: &Change, enabled: bool) -> Result<()> {
        let said = self.run_mode_change(change)?;
        let (current, pending) = self.mig_mode()?;
        if current != enabled {
            // Put the pending mode back, so nothing changes at the next reset or reboot, then
            // say what the GPU shows now: the revert itself may not have taken.
            let reverted = self.run_mode_change(&change.inverse());
            let now = match self.mig_mode() {
                Ok((c, p)) => format!(
                    "now {} with {} pending",
                    if c { "enabled" } else { "disabled" },
                    if p { "enable" } else { "disable" }
                ),
                Err(e) => format!("and its mode cannot be read now: {e}"),
            };
            let revert = match reverted {
                Ok(_) => "the pending change was taken back".to_string(),
                Err(e) => format!("taking the pending change back failed: {e}"),
            };
            let words = said.trim().replace('\n', " | ");
            return Err(Error::Input(format!(
                "MIG mode on GPU {} stayed {} ({} pending): the change needs a GPU reset \
                 (`nvidia-smi --gpu-reset -i {}`) or a reboot, which migbench never does \
                 (nvidia-smi said: {words}); {revert}, {now}",
                self.index,
                if current { "enabled" } else { "disabled" },
                if pending { "enable" } else { "disable" },
                self.index
            )));
        }
        Ok(())
    }
}
