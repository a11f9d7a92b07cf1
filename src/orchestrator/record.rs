//! Turning what happened in a variant into rows: each job's record, its VRAM from the samples,
//! the peaks of the GPU and its instances, and the variant's row.

use super::planned;
use super::variant::VariantRun;
use crate::results::{
    InstanceRecord, JobRecord, Outcome, VariantEnergy, VariantRecord, VariantStatus,
};
use crate::sampler::Summary;

impl VariantRun<'_> {
    /// The peak of the whole GPU and of each MIG instance over the variant.
    pub(super) fn instance_peaks(&self, samples: &Summary) -> Vec<InstanceRecord> {
        samples
            .instances
            .iter()
            .map(|p| InstanceRecord {
                variant: self.name().to_string(),
                repetition: self.repetition,
                instance: p.label.clone(),
                uuid: p.uuid.clone(),
                capacity_gib: p.capacity_gib,
                vram_peak_gib: p.peak_gib,
            })
            .collect()
    }

    /// The record of `job` with `outcome`: all a job that did not run has; the runner adds the
    /// times, process and log of one that did.
    pub(super) fn job_record(
        &self,
        job: &planned::PlannedJob,
        outcome: Outcome,
        reason: Option<String>,
    ) -> JobRecord {
        JobRecord {
            variant: self.name().to_string(),
            repetition: self.repetition,
            job: job.index as u32,
            mode: self.mode(),
            workload: job.workload.name.clone(),
            unit: job.workload.unit.clone(),
            instance_profile: None,
            instance_uuid: None,
            start_s: None,
            end_s: None,
            duration_s: None,
            exit_code: None,
            pid: None,
            outcome,
            vram_peak_gib: None,
            vram_constant_gib: None,
            energy_j: None,
            reason,
            log: None,
        }
    }

    /// The variant's row, from its jobs' records and its samples.
    pub(super) fn variant_record(
        &self,
        layout: Option<String>,
        jobs: &[JobRecord],
        gpu_peak: Option<f64>,
        status: VariantStatus,
        reason: Option<String>,
    ) -> VariantRecord {
        let count = |o: Outcome| jobs.iter().filter(|j| j.outcome == o).count() as u32;
        let start = jobs
            .iter()
            .filter_map(|j| j.start_s)
            .fold(f64::INFINITY, f64::min);
        let end = jobs
            .iter()
            .filter_map(|j| j.end_s)
            .fold(f64::NEG_INFINITY, f64::max);
        let makespan = (end > start).then_some(end - start);
        // A server's unit is a request: the serving table counts those, not the server jobs.
        let batch = |j: &&JobRecord| {
            self.scenario
                .workload(&j.workload)
                .is_ok_and(|w| w.kind != crate::workload::WorkloadKind::Server)
        };
        let has_batch = jobs.iter().any(|j| batch(&j));
        let units = jobs
            .iter()
            .filter(batch)
            .filter(|j| j.outcome == Outcome::Ok)
            .count() as u32;
        VariantRecord {
            variant: self.name().to_string(),
            repetition: self.repetition,
            mode: self.mode(),
            layout,
            backend: self.backend.kind(),
            status,
            reason,
            jobs: jobs.len() as u32,
            jobs_ok: count(Outcome::Ok),
            jobs_oom: count(Outcome::Oom),
            jobs_failed: count(Outcome::Failed)
                + count(Outcome::Timeout)
                + count(Outcome::NotReady),
            makespan_s: makespan,
            units,
            time_per_unit_s: makespan.filter(|_| units > 0).map(|m| m / f64::from(units)),
            units_per_hour: makespan
                .filter(|m| *m > 0.0 && has_batch)
                .map(|m| f64::from(units) * 3600.0 / m),
            gpu_vram_peak_gib: gpu_peak,
            energy: VariantEnergy::default(),
        }
    }
}

impl VariantRecord {
    /// Adds the variant's energy, and per unit: per unit completed (batch jobs), per 1,000
    /// output tokens (servers).
    pub(super) fn record_energy(&mut self, energy: &super::energy::Energy, output_tokens: u64) {
        let units = self.units;
        let e = &mut self.energy;
        e.energy_j = Some(energy.joules);
        e.energy_source = Some(energy.source);
        e.mean_power_w = energy.mean_power_w();
        e.energy_per_unit_j = (units > 0).then(|| energy.joules / f64::from(units));
        e.energy_per_kilotoken_j =
            (output_tokens > 0).then(|| energy.joules * 1000.0 / output_tokens as f64);
    }
}

/// Fills each job's peak and constant VRAM from its processes' samples while it ran.
pub(super) fn attach_vram(jobs: &mut [JobRecord], samples: &Summary) {
    for job in jobs.iter_mut() {
        let (Some(pid), Some(_), Some(_)) = (job.pid, job.start_s, job.end_s) else {
            continue;
        };
        if let Some((peak, constant)) = samples.job_vram(pid) {
            job.vram_peak_gib = Some(peak);
            job.vram_constant_gib = Some(constant);
        }
    }
}

/// Why none of a variant's jobs got a VRAM figure although samples were taken while they ran,
/// if so: NVML listed none of their PIDs. In a container NVML may report the host's PIDs
/// (nvidia-docker#1483): run migbench with `--pid=host`. Under MPS the memory may be booked to
/// the MPS server rather than to its clients (docs/nvidia-smi.md).
pub(super) fn unattributed_vram(
    jobs: &[JobRecord],
    samples: &Summary,
    mps: bool,
) -> Option<String> {
    let ran: Vec<&JobRecord> = jobs
        .iter()
        .filter(|j| j.start_s.is_some() && j.end_s.is_some())
        .filter(|j| j.pid.is_some_and(|pid| samples.sampled_while_running(pid)))
        .collect();
    if ran.is_empty() || ran.iter().any(|j| j.vram_peak_gib.is_some()) {
        return None;
    }
    Some(if mps && !samples.process_rows {
        format!(
            "NVML listed no client process of the MPS server while {} job(s) ran: their memory \
             is booked to the server, so the jobs have no VRAM figures of their own",
            ran.len()
        )
    } else {
        format!(
            "NVML never listed the PID of any of the {} job(s) that ran, so they have no VRAM \
             figures: if migbench runs in a container, NVML reports the host's PIDs; run it \
             with --pid=host",
            ran.len()
        )
    })
}

/// The jobs (by number) of an MPS variant that NVML listed only as plain compute processes,
/// never as MPS clients: CUDA ran them without MPS, as it does, silently, when a client cannot
/// reach its daemon (`nvidia-cuda-mps-control(1)`).
pub(super) fn jobs_outside_mps(jobs: &[JobRecord], samples: &Summary) -> Vec<u32> {
    jobs.iter()
        .filter(|job| job.pid.is_some_and(|pid| samples.only_outside_mps(pid)))
        .map(|job| job.job)
        .collect()
}
