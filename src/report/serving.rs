//! The serving table's data: one row per scenario variant with model servers, pooled like the
//! main table (runs of the same scenario, variant, GPU and backend), from the variant rows of
//! each run's `serving` table. Each figure is summarised over repetitions: a variant's p99 TTFT
//! is the mean of its repetitions' p99s (the requests of different repetitions are not mixed).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::load::{Origin, Results, ServingRow};
use super::stats::Summary;
use super::summary::{variant_cells, variant_columns, VariantSummary};
use super::table::{Column, Kind, Role, Shown, Table, Value};

/// The serving figures of a scenario variant on one GPU model and backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingSummary {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub mode: String,
    pub layout: Option<String>,
    /// Run directories and variant runs (repetitions over all of them) that went in.
    pub runs: usize,
    pub repetitions: usize,
    /// The most servers that served in one repetition.
    pub servers: u32,
    /// Server jobs that ran out of memory, over all repetitions.
    pub servers_oom: u32,
    /// Measured requests (warm-ups left out), over all repetitions.
    pub completed: u64,
    pub failed: u64,
    /// Each figure under `vllm bench serve`'s key, over repetitions; `None` when no repetition
    /// has it (`request_goodput` without SLOs, the cost without a price).
    pub figures: BTreeMap<String, Option<Summary>>,
    /// The currency of `cost_per_million_output_tokens`, from the scenario of its runs
    /// (`price_per_hour`, `currency`); absent without a price or a readable `scenario.toml`.
    #[serde(default)]
    pub currency: Option<String>,
}

impl ServingSummary {
    /// The figure under `key` (`output_throughput`, `p99_ttft_ms`, ...).
    pub fn figure(&self, key: &str) -> Option<Summary> {
        self.figures.get(key).copied().flatten()
    }

    /// The same heading as the main table's rows.
    pub fn heading(&self) -> String {
        super::summary::heading(&self.scenario, &self.origin)
    }
}

/// The figures of `serving` a report summarises, by their columns' names (`vllm bench serve`'s
/// keys, and the cost).
pub const SERVING_FIGURES: &[&str] = &[
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "median_ttft_ms",
    "p99_ttft_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "median_itl_ms",
    "median_e2el_ms",
    "cost_per_million_output_tokens",
];

/// One row per variant of `variants` (the main table's rows, in their order) that served.
pub fn summarize(results: &Results, variants: &[VariantSummary]) -> Vec<ServingSummary> {
    let mut of: HashMap<(&str, &str, Origin), Vec<&ServingRow>> = HashMap::new();
    // Sweep points are the sweep table's ([`super::sweep`]).
    for row in results.serving.iter().filter(|r| r.point.is_none()) {
        let m = &results.runs[row.run].manifest;
        of.entry((m.scenario.as_str(), row.variant.as_str(), m.origin()))
            .or_default()
            .push(row);
    }
    variants
        .iter()
        .filter_map(|v| {
            let key = (v.scenario.as_str(), v.variant.as_str(), v.origin.clone());
            let reps = of.get(&key)?;
            let mut runs: Vec<usize> = reps.iter().map(|r| r.run).collect();
            runs.dedup();
            let figures = SERVING_FIGURES
                .iter()
                .map(|name| {
                    let values: Vec<f64> = reps.iter().filter_map(|r| r.figure(name)).collect();
                    (name.to_string(), Summary::of(&values))
                })
                .collect();
            let currency = super::cost::pooled_currency(reps.iter().filter_map(|r| {
                let gpu = &results.runs[r.run].scenario.as_ref()?.file.gpu;
                gpu.price_per_hour.as_ref()?;
                Some(gpu.currency())
            }));
            Some(ServingSummary {
                currency,
                scenario: v.scenario.clone(),
                variant: v.variant.clone(),
                origin: v.origin.clone(),
                mode: v.mode.clone(),
                layout: v.layout.clone(),
                runs: runs.len(),
                repetitions: reps.len(),
                servers: reps.iter().map(|r| r.servers).max().unwrap_or_default(),
                servers_oom: v.jobs_oom,
                completed: reps.iter().map(|r| r.metrics.completed).sum(),
                failed: reps.iter().map(|r| r.metrics.failed).sum(),
                figures,
            })
        })
        .collect()
}

/// The notes of the serving rows (a simulated server that fell behind its clock), as warnings.
pub fn warnings(results: &Results) -> Vec<String> {
    results
        .serving
        .iter()
        .filter_map(|r| {
            let m = &results.runs[r.run].manifest;
            Some(format!(
                "{} · {} (run of {}, repetition {}): {}",
                m.scenario,
                r.variant,
                m.started_at,
                r.repetition,
                r.note.as_deref()?
            ))
        })
        .collect()
}

/// A figure column of the serving table.
struct FigureColumn {
    key: &'static str,
    header: &'static str,
    digits: usize,
    role: Role,
    /// Left out when no row has it.
    optional: bool,
    /// Said under the table when the column is there.
    note: Option<&'static str>,
}

const fn figure(
    key: &'static str,
    header: &'static str,
    digits: usize,
    role: Role,
) -> FigureColumn {
    FigureColumn {
        key,
        header,
        digits,
        role,
        optional: false,
        note: None,
    }
}

/// The figures the table shows, in order; each key is one of [`SERVING_FIGURES`].
const FIGURE_COLUMNS: [FigureColumn; 11] = [
    // Not in the terminal, which keeps to 100 columns: output throughput says more.
    figure("request_throughput", "Req/s", 2, Role::Detail),
    figure("output_throughput", "Output\ntok/s", 0, Role::Brief),
    figure("total_token_throughput", "Total\ntok/s", 0, Role::Detail),
    FigureColumn {
        optional: true,
        note: Some("Goodput: requests per second that met every SLO of the scenario (vLLM's goodput)."),
        ..figure("request_goodput", "Goodput\nreq/s", 2, Role::Detail)
    },
    figure("median_ttft_ms", "TTFT ms\nmedian", 0, Role::Detail),
    figure("p99_ttft_ms", "TTFT ms\np99", 0, Role::Detail),
    figure("median_tpot_ms", "TPOT ms\nmedian", 1, Role::Detail),
    figure("p99_tpot_ms", "TPOT ms\np99", 1, Role::Detail),
    figure("median_itl_ms", "ITL ms\nmedian", 1, Role::Detail),
    figure("median_e2el_ms", "E2E ms\nmedian", 0, Role::Detail),
    FigureColumn {
        optional: true,
        note: Some("Cost per M output tok: the scenario's price per GPU-hour over the load's duration, per million output tokens, in the scenario's currency (price_per_hour = \"1.89 EUR\" or currency; USD when it names none)."),
        ..figure(
            "cost_per_million_output_tokens",
            "Cost per M\noutput tok",
            2,
            Role::Brief,
        )
    },
];

/// Compact forms for the terminal, `(key, header, digits, median key, p99 key)`, each placed
/// before the figure whose key is the median's.
const TERMINAL_PAIRS: [(&str, &str, usize, &str, &str); 2] = [
    (
        "ttft_ms",
        "TTFT ms\np50/p99",
        0,
        "median_ttft_ms",
        "p99_ttft_ms",
    ),
    (
        "tpot_ms",
        "TPOT ms\np50/p99",
        1,
        "median_tpot_ms",
        "p99_tpot_ms",
    ),
];

/// The serving table: one row per scenario variant with servers.
pub fn table(rows: &[ServingSummary]) -> Table {
    use Kind::*;
    use Role::*;
    let mut columns = variant_columns();
    columns.extend([
        Column::new("repetitions", "Runs", Count, Detail),
        Column::new("servers", "Servers", Count, Brief),
        Column::new("completed", "Requests\nok", Count, Detail),
        Column::new("failed", "Requests\nfailed", Count, Detail),
        Column::new("requests", "Requests\nok/failed", Text, Terminal),
    ]);
    let mut cells: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            let mut cells = variant_cells(
                &r.scenario,
                &r.origin,
                &r.variant,
                &r.mode,
                r.layout.as_deref(),
            );
            cells.extend([
                Value::Count(r.repetitions as u64),
                Value::Count(u64::from(r.servers)),
                Value::Count(r.completed),
                Value::Count(r.failed),
                Value::Text(format!("{}/{}", r.completed, r.failed)),
            ]);
            cells
        })
        .collect();
    let mut notes = vec![
        "Figures as `vllm bench serve` computes them, over all of a variant's servers at once (measured requests only, warm-ups left out); with several repetitions, the mean ± standard deviation over repetitions (a p99 is the mean of the repetitions' p99s).".to_string(),
        "Throughputs per second of load on the backend's clock (simulated seconds on the simulator), for the whole GPU. TTFT: time to first token; TPOT: time per output token after the first; ITL: gap between chunks of text; E2E: a request's latency.".to_string(),
    ];
    let mean = |s: Option<Summary>, digits: usize| {
        s.map_or("-".into(), |s| format!("{:.digits$}", s.mean))
    };
    for f in &FIGURE_COLUMNS {
        if f.optional && rows.iter().all(|r| r.figure(f.key).is_none()) {
            continue;
        }
        notes.extend(f.note.map(str::to_string));
        if let Some((key, header, digits, median, p99)) = TERMINAL_PAIRS
            .iter()
            .find(|(.., median, _)| *median == f.key)
        {
            columns.push(Column::new(key, header, Text, Terminal));
            for (row, r) in cells.iter_mut().zip(rows) {
                row.push(Value::Text(format!(
                    "{}/{}",
                    mean(r.figure(median), *digits),
                    mean(r.figure(p99), *digits)
                )));
            }
        }
        let stat = Stat {
            shown: Shown::MeanSd,
            digits: f.digits,
        };
        if f.key == COST {
            push_cost(&mut columns, &mut cells, rows, f, stat);
            continue;
        }
        columns.push(Column::new(f.key, f.header, stat, f.role));
        for (row, r) in cells.iter_mut().zip(rows) {
            row.push(Value::Stat(r.figure(f.key)));
        }
    }
    Table {
        name: "serving",
        title: "Serving".into(),
        columns,
        rows: cells,
        notes,
        terminal: true,
    }
}

const COST: &str = "cost_per_million_output_tokens";

/// The cost column, then its currency's ([`super::cost`]).
fn push_cost(
    columns: &mut Vec<Column>,
    cells: &mut [Vec<Value>],
    rows: &[ServingSummary],
    f: &FigureColumn,
    stat: Kind,
) {
    let cost = super::cost::CostColumn {
        key: f.key,
        header: f.header,
        currency_key: "currency",
        kind: stat,
        role: f.role,
        values: rows
            .iter()
            .map(|r| (r.figure(COST), r.currency.as_deref()))
            .collect(),
    };
    super::cost::push(columns, cells, cost);
}

/// A serving row of one repetition, for tests elsewhere: scenario `s`, mode `mps`, two servers;
/// every figure of [`SERVING_FIGURES`] 10 but those `figures` sets (`None`: absent).
#[cfg(test)]
pub(crate) fn example(
    variant: &str,
    origin: Origin,
    figures: &[(&str, Option<f64>)],
) -> ServingSummary {
    let mut all: BTreeMap<String, Option<Summary>> = SERVING_FIGURES
        .iter()
        .map(|k| (k.to_string(), Summary::of(&[10.0])))
        .collect();
    for (k, v) in figures {
        all.insert(k.to_string(), v.and_then(|v| Summary::of(&[v])));
    }
    ServingSummary {
        scenario: "s".into(),
        variant: variant.into(),
        origin,
        mode: "mps".into(),
        layout: None,
        runs: 1,
        repetitions: 1,
        servers: 2,
        servers_oom: 0,
        completed: 64,
        failed: 1,
        figures: all,
        currency: Some("EUR".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(variant: &str, output: f64, cost: Option<f64>) -> ServingSummary {
        let origin = Origin {
            gpu_model: "a100-80gb".into(),
            gpu: "A100 80GB".into(),
            backend: "sim".into(),
            simulated: true,
        };
        example(
            variant,
            origin,
            &[
                ("output_throughput", Some(output)),
                ("request_goodput", None),
                ("cost_per_million_output_tokens", cost),
                ("median_ttft_ms", Some(46.4)),
                ("p99_ttft_ms", Some(159.0)),
            ],
        )
    }

    fn keys(t: &Table) -> Vec<&str> {
        t.columns.iter().map(|c| &*c.key).collect()
    }

    #[test]
    fn columns_without_a_value_in_any_row_are_left_out() {
        let t = table(&[row("a", 753.0, None), row("b", 888.0, None)]);
        assert!(!keys(&t).contains(&"request_goodput"));
        assert!(!keys(&t).contains(&"cost_per_million_output_tokens"));
        let t = table(&[row("a", 753.0, Some(0.7)), row("b", 888.0, None)]);
        let c = keys(&t)
            .iter()
            .position(|k| *k == "cost_per_million_output_tokens")
            .unwrap();
        assert_eq!(t.display(c, &t.rows[0][c]), "0.70");
        assert_eq!(t.display(c, &t.rows[1][c]), "-");
    }

    #[test]
    fn every_row_has_a_value_per_column_and_the_terminal_pairs_median_with_p99() {
        let t = table(&[row("a", 753.0, Some(0.7))]);
        assert!(t.rows.iter().all(|r| r.len() == t.columns.len()));
        let pair = t
            .columns
            .iter()
            .position(|c| c.role == Role::Terminal && c.header.starts_with("TTFT"))
            .unwrap();
        assert_eq!(t.display(pair, &t.rows[0][pair]), "46/159");
        let output = keys(&t)
            .iter()
            .position(|k| *k == "output_throughput")
            .unwrap();
        assert_eq!(t.display(output, &t.rows[0][output]), "753");
    }
}
