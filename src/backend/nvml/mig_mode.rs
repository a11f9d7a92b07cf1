//! MIG mode: read through NVML, changed through nvidia-smi, never by a reset.

use nvml_wrapper::error::NvmlError;

use super::commands::{command_lines, MigIds};
use super::library::nvml_error;
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

    pub(super) fn set_mig_mode(&self, change: &Change, enabled: bool) -> Result<()> {
        for line in command_lines(change, self.index, &MigIds::default())? {
            exec::run(&line)?;
        }
        let (current, pending) = self.mig_mode()?;
        if current != enabled {
            // Put the pending mode back, so nothing changes at the next reset or reboot.
            let _ = command_lines(&change.inverse(), self.index, &MigIds::default())
                .map(|lines| lines.iter().map(exec::run).collect::<Vec<_>>());
            return Err(Error::Input(format!(
                "MIG mode on GPU {} stays {} ({} pending): the change needs a GPU reset \
                 (`nvidia-smi --gpu-reset -i {}`) or a reboot, which migbench never does; \
                 the pending change was taken back",
                self.index,
                if current { "enabled" } else { "disabled" },
                if pending { "enable" } else { "disable" },
                self.index
            )));
        }
        Ok(())
    }
}
