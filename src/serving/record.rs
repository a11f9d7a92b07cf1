//! Turning what a variant's servers served into rows of the `requests` and `serving` tables.

use crate::backend::BackendKind;
use crate::loadgen::metrics::{self, ServingMetrics};
use crate::loadgen::{LoadSpec, Point, RequestRecord};
use crate::mode::SharingMode;
use crate::results::{JobRecord, RequestPlace, RequestRow, ServingRecord, ServingScope};

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

/// The rows of one variant repetition: every request, a `serving` row per server job (also one
/// that never served: it shows the server's outcome) and one for the variant. `server_jobs` are
/// the positions of the variant's server jobs; `jobs` their records.
pub fn rows(
    info: &VariantInfo,
    server_jobs: &[usize],
    jobs: &[JobRecord],
    run: &ServingRun,
) -> (Vec<RequestRow>, Vec<ServingRecord>) {
    let (mut requests, mut serving) = (Vec::new(), Vec::new());
    if server_jobs.is_empty() {
        return (requests, serving);
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
            point,
            &served,
            &mut requests,
            &mut serving,
        );
    }
    (requests, serving)
}

fn same_point(a: &Option<Point>, b: &Option<Point>) -> bool {
    a.map(|p| p.index) == b.map(|p| p.index)
}

/// The rows of one point: its requests, a row per server job and one for the variant.
#[allow(clippy::too_many_arguments)]
fn point_rows(
    info: &VariantInfo,
    server_jobs: &[usize],
    jobs: &[JobRecord],
    run: &ServingRun,
    point: Option<Point>,
    served: &[&Served],
    requests: &mut Vec<RequestRow>,
    serving: &mut Vec<ServingRecord>,
) {
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
        let measured: Vec<&RequestRecord> = mine.iter().flat_map(|s| s.result.measured()).collect();
        let duration: f64 = mine.iter().map(|s| s.result.duration()).sum();
        let mut row = base_row(
            info,
            &load,
            ServingScope::Server,
            &measured,
            duration,
            1,
            mine.len(),
        );
        row.point = point.map(|p| p.index);
        row.job = Some(job as u32);
        row.workload = record.map(|j| j.workload.clone());
        row.model = mine.first().map(|s| s.model.clone());
        row.instance = instance(record);
        row.server_outcome = record.map(|j| j.outcome);
        serving.push(row);
        for s in &mine {
            let workload = record.map_or_else(String::new, |j| j.workload.clone());
            let instance = instance(record).unwrap_or_default();
            let place = RequestPlace {
                variant: info.variant,
                repetition: info.repetition,
                job: job as u32,
                workload: &workload,
                instance: &instance,
                round: s.round,
                point: point.map(|p| p.index),
            };
            requests.extend(s.result.records.iter().map(|r| RequestRow::of(&place, r)));
        }
    }
    let measured: Vec<&RequestRecord> = served.iter().flat_map(|s| s.result.measured()).collect();
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
        &measured,
        duration,
        servers,
        rounds.len(),
    );
    row.point = point.map(|p| p.index);
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
    measured: &[&RequestRecord],
    duration: f64,
    servers: usize,
    rounds: usize,
) -> ServingRecord {
    let good = load
        .slo
        .map(|slo| measured.iter().filter(|r| metrics::meets(&slo, r)).count());
    // DistServe's SLO attainment: the share of requests (failed ones too) within every SLO.
    let slo_attainment = good
        .filter(|_| !measured.is_empty())
        .map(|g| g as f64 / measured.len() as f64);
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
        metrics: ServingMetrics::compute(measured, duration, good),
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
