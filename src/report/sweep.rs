//! Load sweeps: the serving figures of each variant at each point of its sweep (pooled over
//! repetitions, like the serving table), and each variant's capacity within its SLO.
//!
//! Capacity within SLO is DistServe's per-GPU goodput, as `vllm bench sweep serve_sla` searches
//! for it: the highest load at which the share of requests meeting every SLO (the SLO
//! attainment) is still at least the target (`sweep.attainment`, 0.9 by default). Points are
//! ordered by the requests per second they carried; walking up from the lightest, the capacity
//! is the request throughput of the last point before the first one below the target. A
//! variant whose lightest point already misses the target has none.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::load::{Origin, Results};
use super::stats::Summary;
use super::table::{Column, Kind, Role, Shown, Table, Value};

/// The figures a sweep point keeps, by their `serving` column names.
pub const POINT_FIGURES: &[&str] = &[
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "median_ttft_ms",
    "p99_ttft_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "p99_e2el_ms",
    "slo_attainment",
];

/// The attainment target when a run's scenario cannot be read.
const DEFAULT_ATTAINMENT: f64 = 0.9;

/// One point of one variant's sweep on one GPU model and backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub mode: String,
    /// In the order run.
    pub point: u32,
    /// The load on each server: requests per second (none: as fast as the users send them)
    /// and users.
    pub rate: Option<f64>,
    pub max_concurrency: Option<u32>,
    pub servers: u32,
    pub repetitions: usize,
    /// Each of [`POINT_FIGURES`] over repetitions (`None` where no repetition has it).
    pub figures: BTreeMap<String, Option<Summary>>,
    /// The SLO attainment a point needs to count as within the SLO.
    pub attainment_target: f64,
    /// The scenario's SLO in milliseconds, `(ttft, tpot, e2el)`.
    pub slo_ms: (Option<f64>, Option<f64>, Option<f64>),
}

impl SweepPoint {
    pub fn figure(&self, key: &str) -> Option<Summary> {
        self.figures.get(key).copied().flatten()
    }

    pub fn heading(&self) -> String {
        super::summary::heading(&self.scenario, &self.origin)
    }

    /// Whether the point met the attainment target (mean over repetitions).
    pub fn within_slo(&self) -> bool {
        self.figure("slo_attainment")
            .is_some_and(|a| a.mean >= self.attainment_target)
    }
}

/// A variant's capacity within its SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub mode: String,
    pub servers: u32,
    /// Requests per second of the whole variant (its one GPU) at the highest point within the
    /// SLO, and that point; `None` when its lightest point already misses it.
    pub requests_per_s: Option<f64>,
    pub point: Option<u32>,
    pub attainment_target: f64,
}

impl Capacity {
    pub fn per_server(&self) -> Option<f64> {
        Some(self.requests_per_s? / f64::from(self.servers.max(1)))
    }

    /// Per GPU: a scenario runs on one GPU.
    pub fn per_gpu(&self) -> Option<f64> {
        self.requests_per_s
    }
}

/// The sweep points of every variant that ran one, grouped by scenario, GPU, backend and
/// variant in the order of the runs, each variant's points by their index.
pub fn points(results: &Results) -> Vec<SweepPoint> {
    let mut out: Vec<SweepPoint> = Vec::new();
    let mut reps: Vec<Vec<usize>> = Vec::new();
    for (i, row) in results.serving.iter().enumerate() {
        let Some(point) = row.point else { continue };
        let m = &results.runs[row.run].manifest;
        let origin = m.origin();
        let found = out.iter().position(|p| {
            p.scenario == m.scenario
                && p.variant == row.variant
                && p.origin == origin
                && p.point == point
        });
        match found {
            Some(k) => reps[k].push(i),
            None => {
                let load = results.runs[row.run].scenario.as_ref().and_then(|s| {
                    let v = s
                        .file
                        .variants
                        .iter()
                        .find(|v| *v.name.get_ref() == row.variant)?;
                    s.load_for(v).cloned()
                });
                let slo = load.as_ref().and_then(|l| l.slo).unwrap_or_default();
                out.push(SweepPoint {
                    scenario: m.scenario.clone(),
                    variant: row.variant.clone(),
                    origin,
                    mode: row.mode.as_str().to_string(),
                    point,
                    rate: row.request_rate,
                    max_concurrency: row.max_concurrency,
                    servers: row.servers,
                    repetitions: 0,
                    figures: BTreeMap::new(),
                    attainment_target: load
                        .and_then(|l| l.sweep)
                        .map_or(DEFAULT_ATTAINMENT, |s| s.attainment),
                    slo_ms: (slo.ttft_ms, slo.tpot_ms, slo.e2el_ms),
                });
                reps.push(vec![i]);
            }
        }
    }
    for (p, rows) in out.iter_mut().zip(&reps) {
        let rows: Vec<_> = rows.iter().map(|&i| &results.serving[i]).collect();
        p.repetitions = rows.len();
        p.servers = rows.iter().map(|r| r.servers).max().unwrap_or_default();
        p.figures = POINT_FIGURES
            .iter()
            .map(|&key| {
                let values: Vec<f64> = rows
                    .iter()
                    .filter_map(|r| match key {
                        "slo_attainment" => r.slo_attainment,
                        _ => r.figure(key),
                    })
                    .collect();
                (key.to_string(), Summary::of(&values))
            })
            .collect();
    }
    out.sort_by(|a, b| {
        let key = |p: &SweepPoint| (p.heading(), p.variant.clone());
        key(a).cmp(&key(b)).then(a.point.cmp(&b.point))
    });
    out
}

/// The points of each variant, from the lightest load (fewest requests per second) up.
pub fn by_variant(points: &[SweepPoint]) -> Vec<Vec<&SweepPoint>> {
    let mut groups: Vec<Vec<&SweepPoint>> = Vec::new();
    for p in points {
        match groups.last_mut() {
            Some(g) if g[0].heading() == p.heading() && g[0].variant == p.variant => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    for g in &mut groups {
        g.sort_by(|a, b| throughput(a).total_cmp(&throughput(b)));
    }
    groups
}

fn throughput(p: &SweepPoint) -> f64 {
    p.figure("request_throughput").map_or(0.0, |s| s.mean)
}

/// Each variant's capacity within its SLO (see the module's documentation).
pub fn capacities(points: &[SweepPoint]) -> Vec<Capacity> {
    by_variant(points)
        .into_iter()
        .map(|g| {
            let within: Vec<&&SweepPoint> = g.iter().take_while(|p| p.within_slo()).collect();
            let last = within.last();
            Capacity {
                scenario: g[0].scenario.clone(),
                variant: g[0].variant.clone(),
                origin: g[0].origin.clone(),
                mode: g[0].mode.clone(),
                servers: g.iter().map(|p| p.servers).max().unwrap_or_default(),
                requests_per_s: last.map(|p| throughput(p)),
                point: last.map(|p| p.point),
                attainment_target: g[0].attainment_target,
            }
        })
        .collect()
}

/// The sweep table: one row per variant and point, lightest load first.
pub fn table(points: &[SweepPoint]) -> Table {
    use Kind::*;
    use Role::*;
    let stat = |digits| Stat {
        shown: Shown::MeanSd,
        digits,
    };
    let mut columns = vec![
        Column::new("scenario", "Scenario", Text, Group),
        Column::new("gpu", "GPU", Text, Group),
        Column::new("backend", "Backend", Text, Group),
        Column::new("variant", "Variant", Text, Brief),
        Column::new("mode", "Mode", Text, Brief),
        Column::new("point", "Point", Count, Detail),
        Column::new("load", "Load per\nserver", Text, Brief),
    ];
    let shown: [(&str, &str, usize, Role); 9] = [
        ("request_throughput", "Req/s", 2, Brief),
        ("request_goodput", "Goodput\nreq/s", 2, Detail),
        ("output_throughput", "Output\ntok/s", 0, Brief),
        ("median_ttft_ms", "TTFT ms\nmedian", 0, Detail),
        ("p99_ttft_ms", "TTFT ms\np99", 0, Brief),
        ("median_tpot_ms", "TPOT ms\nmedian", 1, Detail),
        ("p99_tpot_ms", "TPOT ms\np99", 1, Brief),
        ("p99_e2el_ms", "E2E ms\np99", 0, Detail),
        ("slo_attainment", "Within\nSLO", 3, Brief),
    ];
    for (key, header, digits, role) in shown {
        columns.push(Column::new(key, header, stat(digits), role));
    }
    let mut rows = Vec::new();
    for g in by_variant(points) {
        for p in g {
            let load = match (p.rate, p.max_concurrency) {
                (Some(r), Some(c)) => format!("{r:.2} req/s, ≤{c} users"),
                (Some(r), None) => format!("{r:.2} req/s"),
                (None, Some(c)) => format!("{c} users"),
                (None, None) => "all at once".into(),
            };
            let mut row = vec![
                Value::Text(p.scenario.clone()),
                Value::Text(p.origin.gpu.clone()),
                Value::Text(p.origin.provenance()),
                Value::Text(p.variant.clone()),
                Value::Text(p.mode.clone()),
                Value::Count(u64::from(p.point)),
                Value::Text(load),
            ];
            row.extend(shown.iter().map(|(key, ..)| Value::Stat(p.figure(key))));
            rows.push(row);
        }
    }
    Table {
        name: "sweep",
        title: "Load sweep".into(),
        columns,
        rows,
        notes: vec![
            "One row per variant and sweep point, from the lightest load up: figures as `vllm bench serve` computes them over the point's steady window (the first and last `trim` share of its requests, by when they ended, left out as ramp-up and drain), all of a variant's servers together.".into(),
            "Within SLO: the share of requests (failed ones too) that met every SLO of the scenario (DistServe's SLO attainment).".into(),
        ],
        terminal: false,
    }
}

/// The capacity table: one row per variant that ran a sweep.
pub fn capacity_table(capacities: &[Capacity]) -> Table {
    use Kind::*;
    use Role::*;
    let value = Value::Number;
    let stat = Number { digits: 2 };
    let rows = capacities
        .iter()
        .map(|c| {
            vec![
                Value::Text(c.scenario.clone()),
                Value::Text(c.origin.gpu.clone()),
                Value::Text(c.origin.provenance()),
                Value::Text(c.variant.clone()),
                Value::Text(c.mode.clone()),
                Value::Count(u64::from(c.servers)),
                value(c.per_gpu()),
                value(c.per_server()),
                Value::Text(c.point.map_or("-".into(), |p| p.to_string())),
            ]
        })
        .collect();
    Table {
        name: "capacity",
        title: "Capacity within SLO".into(),
        columns: vec![
            Column::new("scenario", "Scenario", Text, Group),
            Column::new("gpu", "GPU", Text, Group),
            Column::new("backend", "Backend", Text, Group),
            Column::new("variant", "Variant", Text, Brief),
            Column::new("mode", "Mode", Text, Brief),
            Column::new("servers", "Servers", Count, Brief),
            Column::new("per_gpu", "Req/s per GPU\nwithin SLO", stat, Brief),
            Column::new("per_server", "Req/s per server\nwithin SLO", stat, Brief),
            Column::new("point", "At point", Text, Detail),
        ],
        rows,
        notes: vec![
            "Capacity within SLO (DistServe's per-GPU goodput, as `vllm bench sweep serve_sla` searches for it): the requests per second of the heaviest sweep point such that it and every lighter point had at least the scenario's SLO attainment target (`sweep.attainment`, 0.9 by default) of requests within every SLO; '-' when the lightest point already missed it.".into(),
        ],
        terminal: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(variant: &str, index: u32, rps: f64, attainment: f64) -> SweepPoint {
        let figures = [("request_throughput", rps), ("slo_attainment", attainment)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Summary::of(&[v])))
            .collect();
        SweepPoint {
            scenario: "s".into(),
            variant: variant.into(),
            origin: Origin {
                gpu_model: "a100-80gb".into(),
                gpu: "A100 80GB".into(),
                backend: "sim".into(),
                simulated: true,
            },
            mode: "mig".into(),
            point: index,
            rate: None,
            max_concurrency: Some(1 << index),
            servers: 2,
            repetitions: 1,
            figures,
            attainment_target: 0.9,
            slo_ms: (Some(500.0), None, None),
        }
    }

    #[test]
    fn capacity_is_the_heaviest_point_before_the_first_below_the_target() {
        // Run out of order; a point past the first miss that meets the target again does not
        // count (the attainment must stay at the target all the way up).
        let points = vec![
            point("a", 2, 9.0, 0.80),
            point("a", 0, 2.0, 1.0),
            point("a", 1, 5.0, 0.95),
            point("a", 3, 11.0, 0.99),
            point("b", 0, 1.0, 0.5),
            point("b", 1, 3.0, 0.95),
        ];
        let caps = capacities(&points);
        assert_eq!(caps.len(), 2);
        assert_eq!(
            (caps[0].requests_per_s, caps[0].point),
            (Some(5.0), Some(1))
        );
        assert_eq!(caps[0].per_server(), Some(2.5));
        assert_eq!((caps[1].requests_per_s, caps[1].point), (None, None));
        let t = capacity_table(&caps);
        assert!(t.rows.iter().all(|r| r.len() == t.columns.len()));
        let t = table(&points);
        assert_eq!(t.rows.len(), 6);
        // Lightest load first within a variant.
        let rps = t
            .columns
            .iter()
            .position(|c| c.key == "request_throughput")
            .unwrap();
        assert_eq!(t.display(rps, &t.rows[0][rps]), "2.00");
        assert_eq!(t.display(rps, &t.rows[3][rps]), "11.00");
    }
}
