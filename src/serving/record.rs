//! Recording what a variant's servers serve: each request to the `requests` table as it is done
//! ([`Recorder`]), and at the variant's end the `serving` rows from what was gathered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::backend::BackendKind;
use crate::clock::lock;
use crate::error::{Error, Result};
use crate::loadgen::metrics::Tally;
use crate::loadgen::{LoadSpec, Point, RequestRecord, Sink, Slo};
use crate::mode::SharingMode;
use crate::results::{
    JobRecord, RequestPlace, RequestRow, RequestTable, ServingRecord, ServingScope,
};

use super::servers::Served;
use super::ServingRun;

/// The variant the rows belong to.
pub struct VariantInfo<'a> {
    pub variant: &'a str,
    pub repetition: u32,
    pub mode: SharingMode,
    pub backend: BackendKind,
    pub price_per_hour: Option<f64>,
}

/// A variant repetition's requests as they are done: each one's row goes to the `requests`
/// table, and each measured one into the [`Tally`] of its server and of the variant at its
/// sweep point, so that nothing keeps the requests themselves.
pub struct Recorder {
    variant: String,
    repetition: u32,
    slo: Option<Slo>,
    table: RequestTable,
    gathered: Mutex<Gathered>,
}

#[derive(Default)]
struct Gathered {
    /// By server job and sweep point.
    servers: BTreeMap<(usize, Option<u32>), Tally>,
    /// By sweep point.
    variant: BTreeMap<Option<u32>, Tally>,
    /// Output tokens of every completed request but the warm-ups, measured or not (the
    /// variant's energy per token).
    output_tokens: u64,
    /// The first row that could not be written.
    error: Option<Error>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorder({} r{})", self.variant, self.repetition)
    }
}

/// Where a server's requests come from: its job, what it runs, and the round of load.
pub struct Source {
    pub job: usize,
    pub workload: String,
    /// `GPU` or the MIG profile.
    pub instance: String,
    pub round: u32,
}

impl Recorder {
    pub fn new(
        variant: &str,
        repetition: u32,
        load: Option<&LoadSpec>,
        table: RequestTable,
    ) -> Self {
        Recorder {
            variant: variant.to_string(),
            repetition,
            slo: load.and_then(|l| l.slo),
            table,
            gathered: Mutex::default(),
        }
    }

    /// Where the load generator puts the requests of one server's round.
    pub fn sink(self: &Arc<Self>, source: Source) -> Sink {
        let me = Arc::clone(self);
        Sink(Arc::new(
            move |r: RequestRecord, point: Option<Point>, measured: bool| {
                me.take(&source, r, point.map(|p| p.index), measured)
            },
        ))
    }

    fn take(&self, source: &Source, r: RequestRecord, point: Option<u32>, measured: bool) {
        {
            let mut g = lock(&self.gathered);
            if measured {
                let slo = self.slo.as_ref();
                g.servers
                    .entry((source.job, point))
                    .or_default()
                    .add(&r, slo);
                g.variant.entry(point).or_default().add(&r, slo);
            }
            if !r.warmup && r.completed() {
                g.output_tokens += u64::from(r.output_tokens);
            }
        }
        let place = RequestPlace {
            variant: &self.variant,
            repetition: self.repetition,
            job: source.job as u32,
            workload: &source.workload,
            instance: &source.instance,
            round: source.round,
            point,
        };
        let row = RequestRow::of(&place, &r);
        if let Err(e) = lock(&self.table).push(row) {
            lock(&self.gathered).error.get_or_insert(e);
        }
    }

    /// Output tokens of every completed request but the warm-ups.
    pub fn output_tokens(&self) -> u64 {
        lock(&self.gathered).output_tokens
    }

    /// Writes what is not on disk yet; the first row that could not be written fails it.
    pub fn flush(&self) -> Result<()> {
        if let Some(e) = lock(&self.gathered).error.take() {
            return Err(e);
        }
        lock(&self.table).flush()
    }
}

/// The `serving` rows of one variant repetition: a row per server job (also one that never
/// served: it shows the server's outcome) and one for the variant, per sweep point.
/// `server_jobs` are the positions of the variant's server jobs; `jobs` their records.
pub fn rows(
    info: &VariantInfo,
    server_jobs: &[usize],
    jobs: &[JobRecord],
    run: &ServingRun,
) -> Vec<ServingRecord> {
    let mut serving = Vec::new();
    if server_jobs.is_empty() {
        return serving;
    }
    // One set of rows per sweep point (one set without a sweep), in the order run.
    let mut points: Vec<Option<Point>> = Vec::new();
    for s in &run.served {
        if !points.iter().any(|p| same_point(p, &s.result.point)) {
            points.push(s.result.point);
        }
    }
    if points.is_empty() {
        points.push(None);
    }
    let empty = Gathered::default();
    let gathered = run.recorder.as_ref().map(|r| lock(&r.gathered));
    let gathered = gathered.as_deref().unwrap_or(&empty);
    for point in points {
        let served: Vec<&Served> = run
            .served
            .iter()
            .filter(|s| same_point(&point, &s.result.point))
            .collect();
        point_rows(
            info,
            server_jobs,
            jobs,
            run,
            (point, gathered),
            &served,
            &mut serving,
        );
    }
    serving
}

fn same_point(a: &Option<Point>, b: &Option<Point>) -> bool {
    a.map(|p| p.index) == b.map(|p| p.index)
}

/// The rows of one point: a row per server job and one for the variant.
fn point_rows(
    info: &VariantInfo,
    server_jobs: &[usize],
    jobs: &[JobRecord],
    run: &ServingRun,
    (point, gathered): (Option<Point>, &Gathered),
    served: &[&Served],
    serving: &mut Vec<ServingRecord>,
) {
    let index = point.map(|p| p.index);
    let none = Tally::default();
    let mut load = run.load.clone().unwrap_or_default();
    if let Some(p) = point {
        load.rate = p.rate;
        load.max_concurrency = p.max_concurrency;
    }
    let record_of = |job: usize| jobs.iter().find(|j| j.job as usize == job);
    let instance = |j: Option<&JobRecord>| {
        j.map(|j| j.instance_profile.clone().unwrap_or_else(|| "GPU".into()))
    };
    for &job in server_jobs {
        let record = record_of(job);
        let mine: Vec<&&Served> = served.iter().filter(|s| s.job == job).collect();
        let measured = gathered.servers.get(&(job, index)).unwrap_or(&none);
        let duration: f64 = mine.iter().map(|s| s.result.duration()).sum();
        let mut row = base_row(
            info,
            &load,
            ServingScope::Server,
            measured,
            duration,
            1,
            mine.len(),
        );
        row.point = index;
        row.job = Some(job as u32);
        row.workload = record.map(|j| j.workload.clone());
        row.model = mine.first().map(|s| s.model.clone());
        row.instance = instance(record);
        row.server_outcome = record.map(|j| j.outcome);
        serving.push(row);
    }
    let measured = gathered.variant.get(&index).unwrap_or(&none);
    // The time the rounds' measured load covers: each round from its first server's start to
    // its last one's end.
    let mut rounds: Vec<(u32, f64, f64)> = Vec::new();
    for s in served {
        let (start, end) = (s.result.start_s, s.result.end_s);
        match rounds.iter_mut().find(|r| r.0 == s.round) {
            Some(r) => *r = (r.0, r.1.min(start), r.2.max(end)),
            None => rounds.push((s.round, start, end)),
        }
    }
    let duration = covered(rounds.iter().map(|r| (r.1, r.2)).collect());
    let servers = served
        .iter()
        .map(|s| s.job)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut row = base_row(
        info,
        &load,
        ServingScope::Variant,
        measured,
        duration,
        servers,
        rounds.len(),
    );
    row.point = index;
    row.cost_per_million_output_tokens = info
        .price_per_hour
        .filter(|_| row.metrics.total_output_tokens > 0)
        .map(|price| price * duration / 3600.0 / (row.metrics.total_output_tokens as f64 / 1e6));
    serving.push(row);
}

fn base_row(
    info: &VariantInfo,
    load: &LoadSpec,
    scope: ServingScope,
    measured: &Tally,
    duration: f64,
    servers: usize,
    rounds: usize,
) -> ServingRecord {
    let good = load.slo.map(|_| measured.good() as usize);
    // DistServe's SLO attainment: the share of requests (failed ones too) within every SLO.
    let slo_attainment = good
        .filter(|_| measured.requests() > 0)
        .map(|g| g as f64 / measured.requests() as f64);
    ServingRecord {
        variant: info.variant.to_string(),
        repetition: info.repetition,
        mode: info.mode,
        backend: info.backend,
        scope,
        point: None,
        job: None,
        workload: None,
        model: None,
        instance: None,
        server_outcome: None,
        servers: servers as u32,
        rounds: rounds as u32,
        endpoint: load.endpoint.path().to_string(),
        request_rate: load.rate,
        max_concurrency: load.max_concurrency,
        metrics: measured.metrics(duration, good),
        slo_attainment,
        price_per_hour: info.price_per_hour,
        cost_per_million_output_tokens: None,
        note: None,
    }
}

/// Seconds covered by the union of `spans`: rounds one after another add up, rounds that
/// overlap (a server started later while others are still loaded) count once.
fn covered(mut spans: Vec<(f64, f64)>) -> f64 {
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

#[cfg(test)]
mod tests {
    use super::covered;

    #[test]
    fn rounds_in_sequence_add_up_and_overlapping_rounds_count_once() {
        assert_eq!(covered(vec![(0.0, 10.0), (20.0, 25.0)]), 15.0);
        assert_eq!(covered(vec![(5.0, 12.0), (0.0, 10.0), (11.0, 13.0)]), 13.0);
        assert_eq!(covered(vec![]), 0.0);
    }
}
