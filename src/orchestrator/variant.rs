//! One repetition of one variant: check it can fit, set the GPU up, run its jobs with the
//! sampler going, tear down whatever happened, and record it all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::panics::panicked_error;
use super::record::{attach_vram, jobs_outside_mps, unattributed_vram};
use super::{energy, jobs, planned, setup, RunOptions};
use crate::backend::Backend;
use crate::clock::Actor;
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::mode::SharingMode;
use crate::progress::Progress;
use crate::results::{JobRecord, Outcome, RunDir, Tables, VariantStatus};
use crate::sampler::{SampleOut, SampleTable, Sampler, Summary};
use crate::scenario::{Scenario, Variant};

/// Where the MPS daemons of one repetition of a variant keep their pipes and logs.
pub(super) fn mps_root(run_dir: &Path, variant: &str, repetition: u32) -> PathBuf {
    run_dir
        .join("mps")
        .join(variant)
        .join(format!("r{repetition}"))
}

/// One repetition of one variant.
pub(super) struct VariantRun<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) variant: &'a Variant,
    pub(super) repetition: u32,
    pub(super) backend: Arc<dyn Backend>,
    pub(super) t0: f64,
    pub(super) options: &'a RunOptions,
    pub(super) stop: &'a AtomicBool,
    pub(super) progress: &'a Progress,
    /// The orchestrator, on the run's clock.
    pub(super) actor: &'a Actor,
}

impl VariantRun<'_> {
    pub(super) fn name(&self) -> &str {
        self.variant.name.get_ref()
    }

    pub(super) fn mode(&self) -> SharingMode {
        *self.variant.mode.get_ref()
    }

    /// Runs the repetition and records it. `Ok(Some(error))`: setting the GPU up failed, the
    /// setup was undone, and the variant is recorded as `setup_failed` with its jobs `not_run`.
    pub(super) fn run(
        &self,
        run: &mut RunDir,
        journal: &mut Journal,
        records: &mut Tables,
        samples_table: &SampleTable,
    ) -> Result<Option<Error>> {
        let backend = self.backend.as_ref();
        let layout = self.scenario.layout(self.variant);
        let planned = planned::expand(self.scenario, self.variant)?;
        let layout_text = layout.as_ref().map(|l| l.to_string());
        run.event(
            backend.now() - self.t0,
            "variant_start",
            serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "mode": self.mode(), "layout": layout_text }),
        )?;

        if let Some(reason) =
            planned::infeasible(self.scenario, self.variant, layout.as_ref(), &planned)
                .or_else(|| backend.mode_refusal(self.mode()))
        {
            run.event(
                backend.now() - self.t0,
                "variant_infeasible",
                serde_json::json!({ "variant": self.name(), "reason": reason }),
            )?;
            let why = Some(reason.clone());
            let outcome = (Outcome::Infeasible, why);
            self.record_not_run(
                records,
                &planned,
                layout_text,
                outcome,
                VariantStatus::Infeasible,
                reason,
            );
            return Ok(None);
        }

        let mps_root = mps_root(&run.path, self.name(), self.repetition);
        let out = SampleOut {
            table: Arc::clone(samples_table),
            variant: self.name().to_string(),
            repetition: self.repetition,
        };
        let sampler = Sampler::start(
            Arc::clone(&self.backend),
            self.options.sample_interval,
            self.t0,
            out,
        );
        if let Some(live) = &self.options.live {
            sampler.watch(Arc::clone(live));
        }
        let setup_result =
            setup::set_up(backend, journal, self.variant, layout.as_ref(), &mps_root).and_then(
                |()| {
                    let refresh = self.options.cdi_refresh.as_deref();
                    setup::cdi_ready(backend, journal, self.scenario, &planned, refresh)
                },
            );
        let changed = !journal.all_undone();
        let mut energy_window = energy::EnergyWindow::open(backend, self.t0, &sampler);
        let (mut finished, served, jobs_result) = match &setup_result {
            // A panic in here unwinds through the runner, whose running jobs are then killed
            // (see `jobs::Running`'s drop), and ends as an error: the teardown below still runs.
            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if changed {
                    crate::fault::panic_at("after-setup");
                }
                jobs::Runner::new(self, run, journal).map(|r| r.run_all(&planned, &sampler))
            }))
            .unwrap_or_else(|panic| Err(panicked_error(&panic)))
            .unwrap_or_else(|e| (Vec::new(), Default::default(), Err(e))),
            Err(_) => (Vec::new(), Default::default(), Ok(())),
        };
        energy_window.close(backend, self.t0, &sampler);
        // Tear down whatever happened: the GPU is left as found.
        let teardown = setup::tear_down(backend, journal);
        // A table that could not be written fails the variant once what ran is recorded.
        let (samples, samples_written) = match sampler.stop() {
            Ok(summary) => (summary, Ok(())),
            Err(e) => (Summary::default(), Err(e)),
        };
        if let Err(e) = setup_result {
            teardown?;
            let reason = format!("GPU setup failed and was undone: {e}");
            let event = run.event(
                backend.now() - self.t0,
                "variant_setup_failed",
                serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "reason": reason }),
            );
            let outcome = (Outcome::NotRun, None);
            self.record_not_run(
                records,
                &planned,
                layout_text,
                outcome,
                VariantStatus::SetupFailed,
                reason,
            );
            // A journal that could not be written is the harness failing, not the setup.
            return match journal.broken() {
                Some(why) => Err(Error::Harness(why.to_string())),
                None => event.map(|()| Some(e)),
            };
        }

        // What ran is recorded whatever failed since.
        attach_vram(&mut finished, &samples);
        let energy = energy_window.energy(backend.kind(), &samples.power);
        let energy_split = energy.as_ref().and_then(|energy| {
            energy::share(&mut finished, self.scenario.gpu, energy, &samples.activity)
        });
        let mps = matches!(self.mode(), SharingMode::Mps | SharingMode::MigMps);
        let outside: Vec<String> = if mps {
            jobs_outside_mps(&finished, &samples)
                .iter()
                .map(u32::to_string)
                .collect()
        } else {
            Vec::new()
        };
        let outside = (!outside.is_empty()).then(|| {
            format!(
                "job(s) {} ran without MPS: NVML listed them as plain compute processes, never \
                 as MPS clients (a CUDA client that cannot reach its MPS daemon runs on its own)",
                outside.join(", ")
            )
        });
        for warning in unattributed_vram(&finished, &samples, mps)
            .into_iter()
            .chain(outside)
        {
            eprintln!("migbench: warning: variant {}: {warning}", self.name());
            // A failed write shows again at the variant's end event, which is not ignored.
            let _ = run.event(
                backend.now() - self.t0,
                "attribution_warning",
                serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "warning": warning }),
            );
        }
        let interrupted = self.stop.load(Ordering::Relaxed);
        let first = records.jobs.len();
        records.jobs.extend(finished);
        records.serving.extend(jobs::serving_rows(
            self,
            &planned,
            &records.jobs[first..],
            &served,
        ));
        // The requests' last rows go to disk before the tables (serving.json reads them back).
        let requests_written = served.recorder.as_ref().map_or(Ok(()), |r| r.flush());
        records.instances.extend(self.instance_peaks(&samples));
        let jobs_result = jobs_result.and(samples_written).and(requests_written);
        let status = match (&jobs_result, interrupted) {
            (Err(_), _) => VariantStatus::Failed,
            (Ok(()), true) => VariantStatus::Interrupted,
            (Ok(()), false) => VariantStatus::Ran,
        };
        let reason = jobs_result.as_ref().err().map(|e| e.to_string());
        let mut summary = self.variant_record(
            layout_text,
            &records.jobs[first..],
            samples.gpu_peak,
            status,
            reason,
        );
        if let Some(energy) = energy {
            let output_tokens = served.recorder.as_ref().map_or(0, |r| r.output_tokens());
            summary.record_energy(&energy, output_tokens);
            summary.energy.energy_split = energy_split;
        }
        let event = run.event(
            backend.now() - self.t0,
            "variant_end",
            serde_json::json!({ "variant": self.name(), "repetition": self.repetition, "status": status, "makespan_s": summary.makespan_s }),
        );
        records.variants.push(summary);
        jobs_result?;
        teardown?;
        event.map(|()| None)
    }

    /// Records a repetition that ran no job: each planned job with `outcome` (and its reason),
    /// the variant with `status` and `reason`.
    fn record_not_run(
        &self,
        records: &mut Tables,
        planned: &[planned::PlannedJob],
        layout: Option<String>,
        (outcome, job_reason): (Outcome, Option<String>),
        status: VariantStatus,
        reason: String,
    ) {
        let not_run: Vec<JobRecord> = planned
            .iter()
            .map(|job| self.job_record(job, outcome, job_reason.clone()))
            .collect();
        self.progress.skip(planned.len());
        let summary = self.variant_record(layout, &not_run, None, status, Some(reason));
        records.variants.push(summary);
        records.jobs.extend(not_run);
    }
}
