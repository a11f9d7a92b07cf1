//! What a person at the terminal sees while a run goes: an overall bar and a line per running
//! job, drawn on stderr only when it is a terminal. The orchestrator reports to it as jobs start
//! and end; it decides nothing (the runner apart from its reporter, as in cargo-nextest).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::scenario::Scenario;

/// Progress on stderr: an overall bar and a line per running job.
pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
}

impl Progress {
    pub(crate) fn new(enabled: bool, scenario: &Scenario) -> Progress {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(planned_jobs(scenario)));
        overall.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} jobs  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix(scenario.name().to_string());
        Progress { multi, overall }
    }

    /// A line for one running job.
    pub(crate) fn job_line(&self, label: String) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix} {msg}").expect("valid template"),
        );
        bar.set_prefix(label);
        bar
    }

    /// The run's clock reads `t` seconds after the run started (simulated seconds if
    /// `simulated`).
    pub(crate) fn at(&self, t: f64, simulated: bool) {
        let (h, m, s) = ((t / 3600.0) as u64, (t / 60.0) as u64 % 60, t as u64 % 60);
        let what = if simulated { " simulated" } else { "" };
        self.overall
            .set_message(format!("t = {h:02}:{m:02}:{s:02}{what}"));
    }

    pub(crate) fn job_done(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.multi.remove(bar);
        self.overall.inc(1);
    }

    pub(crate) fn skip(&self, n: usize) {
        self.overall.inc(n as u64);
    }

    pub(crate) fn finish(&self) {
        self.overall.finish();
    }
}

/// Jobs the scenario plans, over every variant and repetition.
pub fn planned_jobs(scenario: &Scenario) -> u64 {
    scenario
        .file
        .variants
        .iter()
        .map(|v| u64::from(v.repetitions) * v.jobs.iter().map(|g| u64::from(g.count)).sum::<u64>())
        .sum()
}
