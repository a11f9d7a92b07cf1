//! Many machines in one report: which machine each figure comes from, over how many machines a
//! pooled figure is, and how the nodes of one GPU model compare.
//!
//! A machine is a host and the GPU on it (its UUID): a node with eight GPUs is eight machines, as
//! each run uses one GPU. The per-machine breakdown compares every machine's mean time per unit of
//! a scenario variant with the median over the machines of the same GPU model and backend that
//! ran it (its siblings); one [`SLOWER_FINDING`] or more slower than that median is a finding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::load::{Origin, Results};
use super::stats::Summary;
use super::summary::VariantSummary;
use super::table::{Column, Kind, Role, Shown, Table, Value};

/// A machine this much slower than the median of its siblings is reported: 10%, the spread the
/// issue that asked for this breakdown calls a finding; the runs of one machine on the simulator
/// do not differ at all.
pub const SLOWER_FINDING: f64 = 0.10;

/// One scenario variant on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRow {
    pub scenario: String,
    pub variant: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub host: String,
    pub gpu_uuid: String,
    /// Run directories and repetitions of the variant on this machine.
    pub runs: usize,
    pub repetitions: usize,
    pub jobs_oom: u32,
    pub time_per_unit_s: Option<Summary>,
    pub units_per_hour: Option<Summary>,
    pub gpu_vram_peak_gib: Option<f64>,
    /// Machines of the same GPU model and backend that ran the variant, this one included.
    pub machines: usize,
    /// This machine's mean time per unit against the median of the machines' means, as a
    /// fraction (`0.12`: 12% slower); `None` for a machine alone.
    pub slower_than_median: Option<f64>,
}

type Key = (String, String, Origin);

/// One row per scenario variant and machine, in the order of the main table, machines by name.
pub fn breakdown(results: &Results, variants: &[VariantSummary]) -> Vec<HostRow> {
    let mut groups: BTreeMap<(Key, String, String), Vec<usize>> = BTreeMap::new();
    for (i, v) in results.variants.iter().enumerate() {
        let m = &results.runs[v.run].manifest;
        let key = (m.scenario.clone(), v.variant.clone(), m.origin());
        groups
            .entry((key, m.host.clone(), m.gpu_uuid.clone()))
            .or_default()
            .push(i);
    }
    let mut rows = Vec::new();
    for summary in variants {
        let key = (
            summary.scenario.clone(),
            summary.variant.clone(),
            summary.origin.clone(),
        );
        let mut mine: Vec<HostRow> = groups
            .iter()
            .filter(|((k, _, _), _)| *k == key)
            .map(|((_, host, uuid), members)| {
                let reps: Vec<_> = members.iter().map(|&i| &results.variants[i]).collect();
                let mut runs: Vec<usize> = reps.iter().map(|v| v.run).collect();
                runs.dedup();
                let values = |f: fn(&super::load::VariantRow) -> Option<f64>| {
                    Summary::of(&reps.iter().filter_map(|v| f(v)).collect::<Vec<_>>())
                };
                HostRow {
                    scenario: key.0.clone(),
                    variant: key.1.clone(),
                    origin: key.2.clone(),
                    host: host.clone(),
                    gpu_uuid: uuid.clone(),
                    runs: runs.len(),
                    repetitions: reps.len(),
                    jobs_oom: reps.iter().map(|v| v.jobs_oom).sum(),
                    time_per_unit_s: values(|v| v.time_per_unit_s),
                    units_per_hour: values(|v| v.units_per_hour),
                    gpu_vram_peak_gib: values(|v| v.gpu_vram_peak_gib).map(|s| s.max),
                    machines: 0,
                    slower_than_median: None,
                }
            })
            .collect();
        let means: Vec<f64> = mine
            .iter()
            .filter_map(|r| r.time_per_unit_s.map(|s| s.mean))
            .collect();
        let median = Summary::of(&means).map(|s| s.median).filter(|m| *m > 0.0);
        let machines = mine.len();
        for r in &mut mine {
            r.machines = machines;
            r.slower_than_median = median
                .filter(|_| means.len() > 1)
                .zip(r.time_per_unit_s)
                .map(|(median, s)| s.mean / median - 1.0);
        }
        rows.extend(mine);
    }
    rows
}

/// Distinct machines (host and GPU UUID) in a breakdown.
pub fn machine_count(rows: &[HostRow]) -> usize {
    let mut machines: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.host.as_str(), r.gpu_uuid.as_str()))
        .collect();
    machines.sort_unstable();
    machines.dedup();
    machines.len()
}

/// The machines a scenario variant was pooled over.
pub fn machines_of<'a>(
    rows: &'a [HostRow],
    scenario: &str,
    variant: &str,
    origin: &Origin,
) -> Vec<&'a HostRow> {
    rows.iter()
        .filter(|r| r.scenario == scenario && r.variant == variant && r.origin == *origin)
        .collect()
}

/// Findings: machines [`SLOWER_FINDING`] or more slower than the median of their siblings.
pub fn warnings(rows: &[HostRow]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            let slower = r.slower_than_median.filter(|s| *s >= SLOWER_FINDING)?;
            Some(format!(
                "{} · {} · {}: {} (GPU {}) is {:.0}% slower per unit than the median of the {} {} machines that ran it",
                r.scenario,
                r.origin.gpu,
                r.variant,
                r.host,
                r.gpu_uuid,
                slower * 100.0,
                r.machines,
                r.origin.gpu_model,
            ))
        })
        .collect()
}

/// The per-machine table: every scenario variant on every machine.
pub fn table(rows: &[HostRow]) -> Table {
    use Kind::*;
    use Role::*;
    let stat = |shown, digits| Stat { shown, digits };
    let mut columns = super::summary::variant_columns();
    columns.truncate(4);
    columns.extend([
        Column::new("host", "Host", Text, Brief),
        Column::new("gpu_uuid", "GPU UUID", Text, Brief),
        Column::new("repetitions", "Runs", Count, Brief),
        Column::new("jobs_oom", "OOM", Count, Brief),
        Column::new(
            "time_per_unit_s",
            "s per\nunit",
            stat(Shown::MeanSd, 1),
            Brief,
        ),
        Column::new(
            "units_per_hour",
            "Units\nper h",
            stat(Shown::MeanSd, 1),
            Detail,
        ),
        Column::new(
            "gpu_vram_peak_gib",
            "GPU GiB\npeak",
            Number { digits: 1 },
            Detail,
        ),
        Column::new(
            "slower_than_median_pct",
            "vs median\nof nodes %",
            Number { digits: 1 },
            Brief,
        ),
    ]);
    let rows = rows
        .iter()
        .map(|r| {
            let mut cells =
                super::summary::variant_cells(&r.scenario, &r.origin, &r.variant, "", None);
            cells.truncate(4);
            cells.extend([
                Value::Text(r.host.clone()),
                Value::Text(r.gpu_uuid.clone()),
                Value::Count(r.repetitions as u64),
                Value::Count(u64::from(r.jobs_oom)),
                Value::Stat(r.time_per_unit_s),
                Value::Stat(r.units_per_hour),
                Value::Number(r.gpu_vram_peak_gib),
                Value::Number(r.slower_than_median.map(|s| s * 100.0)),
            ]);
            cells
        })
        .collect();
    Table {
        name: "hosts",
        title: "Machines".into(),
        columns,
        rows,
        notes: vec![format!(
            "One row per scenario variant and machine (host and GPU). vs median of nodes: the machine's mean time per unit against the median over the machines of the same GPU model that ran the variant; {:.0}% or more slower is listed as a finding.",
            SLOWER_FINDING * 100.0
        )],
        terminal: true,
    }
}

/// Adds a `Machines` column to a table with one row per scenario variant (its rows in the order
/// of `keys`), and a note naming how many machines the report pools.
pub fn annotate<'a>(
    table: &mut Table,
    keys: impl Iterator<Item = (&'a str, &'a str, &'a Origin)>,
    rows: &[HostRow],
) {
    table.columns.push(Column::new(
        "machines",
        "Machines",
        Kind::Count,
        Role::Brief,
    ));
    for (cells, (scenario, variant, origin)) in table.rows.iter_mut().zip(keys) {
        let n = machines_of(rows, scenario, variant, origin).len();
        cells.push(Value::Count(n as u64));
    }
    table.notes.push(format!(
        "Pooled over {} machines (host and GPU); Machines: how many of them each row's figures are over (the Machines table has each one).",
        machine_count(rows)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendKind;
    use crate::mode::SharingMode;
    use crate::report::load::VariantRow;
    use crate::report::runs::Run;
    use crate::results::{Manifest, VariantEnergy, VariantRecord, VariantStatus};

    /// Results of one variant on `hosts`, each machine's one repetition taking the given time per
    /// unit.
    fn results(hosts: &[(&str, f64)]) -> Results {
        let mut results = Results::default();
        for (i, (host, per_unit)) in hosts.iter().enumerate() {
            let manifest: Manifest = serde_json::from_value(serde_json::json!({
                "scenario": "s", "backend": "nvml", "simulated": false,
                "gpu_model": "h100-80gb", "gpu_name": "H100 80GB HBM3",
                "started_at": "2026-01-01T00:00:00Z", "host": host, "gpu_uuid": format!("GPU-{i}"),
            }))
            .unwrap();
            results.runs.push(Run {
                dir: format!("run{i}").into(),
                manifest,
                scenario: None,
            });
            results.variants.push(VariantRow {
                run: i,
                row: VariantRecord {
                    variant: "v".into(),
                    repetition: 1,
                    mode: SharingMode::Full,
                    layout: None,
                    backend: BackendKind::Nvml,
                    status: VariantStatus::Ran,
                    reason: None,
                    jobs: 1,
                    jobs_ok: 1,
                    jobs_oom: 0,
                    jobs_failed: 0,
                    makespan_s: Some(*per_unit),
                    units: 1,
                    time_per_unit_s: Some(*per_unit),
                    units_per_hour: Some(3600.0 / per_unit),
                    gpu_vram_peak_gib: Some(30.0),
                    energy: VariantEnergy::default(),
                },
            });
        }
        results
    }

    fn rows(hosts: &[(&str, f64)]) -> Vec<HostRow> {
        let results = results(hosts);
        let variants = crate::report::summary::summarize(&results);
        breakdown(&results, &variants)
    }

    #[test]
    fn a_node_slower_than_its_siblings_is_a_finding() {
        let rows = rows(&[("a", 100.0), ("b", 101.0), ("c", 112.0)]);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.machines == 3));
        let c = rows.iter().find(|r| r.host == "c").unwrap();
        // The median of 100, 101 and 112 is 101.
        assert!((c.slower_than_median.unwrap() - (112.0 / 101.0 - 1.0)).abs() < 1e-12);
        let found = warnings(&rows);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("c (GPU GPU-2) is 11% slower"),
            "{found:?}"
        );
        assert_eq!(machine_count(&rows), 3);
    }

    #[test]
    fn nodes_within_the_spread_and_a_lone_node_are_not() {
        assert!(warnings(&rows(&[("a", 100.0), ("b", 109.0)])).is_empty());
        let alone = rows(&[("a", 100.0)]);
        assert_eq!(alone[0].slower_than_median, None);
        assert!(warnings(&alone).is_empty());
    }
}
