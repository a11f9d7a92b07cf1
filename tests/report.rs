//! `migbench report` on simulator runs: the tables agree with the jobs and serving data, the
//! HTML stands alone, every variant is plotted, runs of one scenario are pooled. compare's tests
//! are in compare.rs.

mod common;

use std::path::Path;

use common::edit::{edited_table, write_parquet};
use common::{
    compare, floats, migbench, read_parquet, report, run_sim, serving_run, strs,
    SAMPLE_EVERY_SECOND,
};
use polars::prelude::*;
use serde_json::Value;

fn variant<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variant"] == name)
        .unwrap_or_else(|| panic!("no variant {name} in the report"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

/// The jobs of one variant, recomputed from jobs.parquet: (durations of the jobs that finished,
/// OOM count, jobs, largest job peak).
fn from_jobs(run: &Path, name: &str) -> (Vec<f64>, usize, usize, f64) {
    let df = LazyFrame::scan_parquet(run.join("jobs.parquet"), Default::default())
        .unwrap()
        .filter(col("variant").eq(lit(name)))
        .collect()
        .unwrap();
    let outcome = strs(&df, "outcome");
    let start = floats(&df, "start_s");
    let end = floats(&df, "end_s");
    let peak = floats(&df, "vram_peak_gib");
    let mut durations = Vec::new();
    let mut ooms = 0;
    let mut top = 0.0f64;
    for i in 0..df.height() {
        match outcome.get(i) {
            Some("ok") => durations.push(end.get(i).unwrap() - start.get(i).unwrap()),
            Some("oom") => ooms += 1,
            _ => {}
        }
        top = top.max(peak.get(i).unwrap_or(0.0));
    }
    (durations, ooms, df.height(), top)
}

#[test]
fn the_main_table_agrees_with_the_jobs_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim(
        "scenarios/h100-3x-ti2v.toml",
        &dir.path().join("runs"),
        SAMPLE_EVERY_SECOND,
    );
    let out = dir.path().join("report");
    let report = report(&dir.path().join("runs"), &out);

    let variants = read_parquet(&run.join("variants.parquet"));
    let names = strs(&variants, "variant");
    let makespans = floats(&variants, "makespan_s");
    let units = variants.column("units").unwrap().u32().unwrap().clone();
    let gpu_peaks = floats(&variants, "gpu_vram_peak_gib");
    let energy_per_unit = floats(&variants, "energy_per_unit_j");
    let mut least = f64::INFINITY;
    assert_eq!(report["variants"].as_array().unwrap().len(), 4);
    for i in 0..variants.height() {
        let name = names.get(i).unwrap();
        let row = variant(&report, name);
        let (durations, ooms, jobs, job_peak) = from_jobs(&run, name);
        let n = durations.len() as f64;
        let mean = durations.iter().sum::<f64>() / n;
        let sd = (durations.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let t = &row["time_per_job_s"];
        assert_eq!(t["n"], durations.len(), "{name}");
        assert!(
            close(t["mean"].as_f64().unwrap(), mean),
            "{name}: {t} vs {mean}"
        );
        assert!(
            close(t["stddev"].as_f64().unwrap(), sd),
            "{name}: {t} vs {sd}"
        );
        let min = durations.iter().copied().fold(f64::INFINITY, f64::min);
        let max = durations.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(close(t["min"].as_f64().unwrap(), min) && close(t["max"].as_f64().unwrap(), max));
        assert_eq!(row["jobs_oom"], ooms, "{name}");
        assert_eq!(row["jobs"], jobs, "{name}");
        assert_eq!(row["jobs_ok"], durations.len(), "{name}");
        assert!(close(
            row["job_vram_peak_gib"]["max"].as_f64().unwrap(),
            job_peak
        ));
        // Effective time per unit: makespan ÷ units completed.
        let per_unit = makespans.get(i).unwrap() / f64::from(units.get(i).unwrap());
        assert!(
            close(row["time_per_unit_s"]["mean"].as_f64().unwrap(), per_unit),
            "{name}"
        );
        assert!(close(
            row["units_per_hour"]["mean"].as_f64().unwrap(),
            3600.0 / per_unit
        ));
        assert_eq!(row["gpu_vram_peak_gib"]["max"].as_f64(), gpu_peaks.get(i));
        // Energy per unit in Wh, and its cost at the scenario's price_per_kwh ("0.30 USD").
        let joules = energy_per_unit.get(i).expect("a simulated run has energy");
        let wh = row["energy_per_unit_wh"]["mean"].as_f64().unwrap();
        assert!(close(wh, joules / 3600.0), "{name}: {wh} Wh vs {joules} J");
        let cost = row["energy_cost_per_unit"]["mean"].as_f64().unwrap();
        assert!(close(cost, wh / 1000.0 * 0.30), "{name}: {cost}");
        assert_eq!(row["energy_currency"], "USD", "{name}");
        assert_eq!(row["energy_from"], "simulated", "{name}");
        if row["jobs_ok"] == row["jobs"] {
            least = least.min(wh);
        }
        // Simulator results say so, and are never labelled measured.
        assert_eq!(
            (row["simulated"].as_bool(), row["backend"].as_str()),
            (Some(true), Some("sim"))
        );
    }
    // The verdict names the variant of least energy per video among those that lost no job.
    let pick = &report["verdicts"][0]["least_energy_per_unit"];
    let named = variant(&report, pick["variant"].as_str().unwrap());
    assert!(
        close(named["energy_per_unit_wh"]["mean"].as_f64().unwrap(), least),
        "{pick}"
    );
    assert_eq!(
        variant(&report, "mig-2x3g")["isolation"],
        "guaranteed (MIG)"
    );
    assert_eq!(variant(&report, "mps-together")["isolation"], "none");
    for file in ["report.md", "report.html", "report.txt"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains("simulated"), "{file}");
        assert!(
            !text.contains("simulated (sim)"),
            "{file}: the backend is said once"
        );
        assert!(
            !text.to_lowercase().contains("measured ("),
            "{file} calls sim results measured"
        );
    }
    // One run of each variant: hyperfine's warning.
    assert!(report["warnings"][0].as_str().unwrap().contains("ran once"));
    // Nothing served: no serving section anywhere.
    assert_eq!(report["serving"].as_array().map(Vec::len), Some(0));
    assert!(!out.join("serving.csv").exists());
    for file in ["report.md", "report.html", "report.txt"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(!text.contains("Serving"), "{file} has a serving section");
    }
    assert!(!out
        .join("plots/output-throughput-h100-3x-ti2v.svg")
        .exists());

    // The CSV says the same as the JSON, at full precision.
    let csv = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(out.join("variants.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let csv_names = strs(&csv, "variant");
    let csv_means = floats(&csv, "time_per_job_s_mean");
    let csv_costs = floats(&csv, "energy_cost_per_unit_mean");
    let csv_currencies = strs(&csv, "energy_cost_per_unit_currency");
    for i in 0..csv.height() {
        let row = variant(&report, csv_names.get(i).unwrap());
        assert!(close(
            csv_means.get(i).unwrap(),
            row["time_per_job_s"]["mean"].as_f64().unwrap()
        ));
        assert!(close(
            csv_costs.get(i).unwrap(),
            row["energy_cost_per_unit"]["mean"].as_f64().unwrap()
        ));
        assert_eq!(csv_currencies.get(i), Some("USD"));
    }
    // The terminal's header names the currency once.
    let text = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(text.contains("Energy cost per unit, USD"), "{text}");
}

#[test]
fn runs_of_one_scenario_are_pooled() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &runs, SAMPLE_EVERY_SECOND);
    // A second run: the same tables, every job 10% slower, under another directory below.
    let second = runs.join("later").join("again");
    std::fs::create_dir_all(&second).unwrap();
    for f in [
        "manifest.json",
        "scenario.toml",
        "variants.parquet",
        "instances.parquet",
        "samples/part-00000.parquet",
    ] {
        std::fs::create_dir_all(second.join(f).parent().unwrap()).unwrap();
        std::fs::copy(run.join(f), second.join(f)).unwrap();
    }
    let mut jobs = read_parquet(&run.join("jobs.parquet"));
    let end = jobs.column("end_s").unwrap().as_materialized_series() * 1.1;
    let duration = (&end - jobs.column("start_s").unwrap().as_materialized_series()).unwrap();
    jobs.with_column(end).unwrap();
    jobs.with_column(duration.with_name("duration_s".into()))
        .unwrap();
    write_parquet(&second.join("jobs.parquet"), &mut jobs);

    let report = report(&runs, &dir.path().join("report"));
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    let row = variant(&report, "full-sequential");
    assert_eq!(
        (row["runs"].as_u64(), row["repetitions"].as_u64()),
        (Some(2), Some(2))
    );
    let (d1, ..) = from_jobs(&run, "full-sequential");
    let (d2, ..) = from_jobs(&second, "full-sequential");
    let all: Vec<f64> = d1.iter().chain(&d2).copied().collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    assert_eq!(row["time_per_job_s"]["n"], all.len());
    assert!(close(row["time_per_job_s"]["mean"].as_f64().unwrap(), mean));
    assert!(
        !report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("ran once")),
        "{}",
        report["warnings"]
    );
}

#[test]
fn how_many_in_parallel_counts_overlapping_jobs_beside_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim(
        "scenarios/h100-3x-ti2v.toml",
        &dir.path().join("runs"),
        SAMPLE_EVERY_SECOND,
    );
    let report = report(&run, &dir.path().join("report"));
    let row = |mode: &str| {
        report["parallel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["mode"] == mode)
            .unwrap()
            .clone()
    };
    // Under MPS all three overlap, together (one OOM) and a minute apart (none).
    let mps = row("mps");
    assert_eq!(
        (
            mps["most_without_oom"].as_u64(),
            mps["fewest_with_oom"].as_u64()
        ),
        (Some(3), Some(3))
    );
    // MIG 2 × 3g.40gb: the third waits for a free instance.
    assert_eq!(row("mig")["most_without_oom"].as_u64(), Some(2));
    assert_eq!(row("full")["most_without_oom"].as_u64(), Some(1));
    // plan: TI2V-5B peaks at 33 GiB, so two fit together in 79.6 GiB and three staggered;
    // one per 3g.40gb instance.
    let gpu = migbench::catalog::Catalog::builtin()
        .gpu("h100-80gb")
        .unwrap();
    let w = migbench::workload::find("ti2v-5b").unwrap();
    let plans = migbench::plan::plan(&migbench::plan::PlanRequest {
        gpu,
        mix: vec![w],
        headroom: 0.0,
    });
    for p in &plans {
        let Some(r) = report["parallel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["mode"] == p.mode.as_str())
        else {
            continue;
        };
        assert_eq!(
            r["plan_together"].as_u64(),
            Some(p.max_together as u64),
            "{}",
            p.mode
        );
        assert_eq!(
            r["plan_staggered"].as_u64(),
            Some(p.max_staggered as u64),
            "{}",
            p.mode
        );
    }
    assert_eq!(mps["verdict"], "as planned");
}

/// Checks that `html` is strictly well-formed and loads nothing from outside itself; returns
/// how many `<svg>` and `<table>` elements it has.
fn assert_self_contained(html: &str) -> (usize, usize) {
    // Strictly well-formed: every element closed, in order (quick-xml checks end names).
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(html);
    let (mut depth, mut svgs, mut tables) = (0i32, 0, 0);
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("report.html does not parse: {e}"));
        let element = match &event {
            Event::Start(e) => {
                depth += 1;
                e.clone()
            }
            Event::Empty(e) => e.clone(),
            Event::End(_) => {
                depth -= 1;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8(element.name().as_ref().to_vec()).unwrap();
        assert!(
            !["link", "script", "img", "iframe", "object", "embed", "image", "use"]
                .contains(&name.as_str()),
            "<{name}> may load something from outside"
        );
        for a in element.attributes() {
            let a = a.unwrap();
            let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
            // A link to a place in the page itself (the table of contents) loads nothing.
            let in_page = key == "href" && a.value.starts_with(b"#") && !a.value.contains(&b'/');
            assert!(
                in_page
                    || !["src", "href", "xlink:href", "srcset", "action"].contains(&key.as_str()),
                "<{name} {key}=...> references a resource"
            );
        }
        svgs += usize::from(name == "svg");
        tables += usize::from(name == "table");
    }
    assert_eq!(depth, 0, "every element is closed");
    for needle in ["http:", "https:", "url(", "@import", "//"] {
        assert!(!html.contains(needle), "report.html contains {needle}");
    }
    (svgs, tables)
}

/// How many plots `out/plots` holds (SVG files).
fn svg_files(out: &Path) -> usize {
    std::fs::read_dir(out.join("plots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count()
}

#[test]
fn html_parses_and_references_nothing_outside_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim(
        "scenarios/h100-3x-ti2v.toml",
        &dir.path().join("runs"),
        SAMPLE_EVERY_SECOND,
    );
    let out = dir.path().join("report");
    let report = report(&run, &out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let (svgs, tables) = assert_self_contained(&html);
    assert_eq!(svgs, svg_files(&out), "every plot inline");
    assert!(tables >= 3, "the tables are there");
    assert!(html.contains("mps-staggered"));
    assert_eq!(report["variants"].as_array().unwrap().len(), 4);
}

#[test]
fn every_variant_is_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    run_sim("scenarios/h100-3x-ti2v.toml", &runs, SAMPLE_EVERY_SECOND);
    // h100-2x-s2v has a variant that cannot run (infeasible): it gets a plot saying so.
    run_sim("scenarios/h100-2x-s2v.toml", &runs, SAMPLE_EVERY_SECOND);
    let out = dir.path().join("report");
    let report = report(&runs, &out);
    let plots = out.join("plots");
    let variants = report["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 7);
    for v in variants {
        let (scenario, name) = (
            v["scenario"].as_str().unwrap(),
            v["variant"].as_str().unwrap(),
        );
        let svg =
            std::fs::read_to_string(plots.join(format!("vram-{scenario}-{name}.svg"))).unwrap();
        let png = std::fs::read(plots.join(format!("vram-{scenario}-{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), (960, 540));
        assert!(
            svg.contains(&format!("{scenario} · {name}")),
            "{name}: titled"
        );
        assert!(
            svg.contains("GPU memory in use, GiB"),
            "{name}: axis with unit"
        );
        if v["jobs_ok"].as_u64() > Some(0) {
            assert!(svg.contains("job 0 · "), "{name}: a line per job");
        }
        if v["jobs_oom"].as_u64() > Some(0) {
            assert!(svg.contains("OOM"), "{name}: OOM marked");
        }
        if v["mode"] == "mig" {
            assert!(plots
                .join(format!("layout-{scenario}-{name}.svg"))
                .is_file());
        }
    }
    assert!(
        std::fs::read_to_string(plots.join("vram-h100-2x-s2v-mig-4g-3g.svg"))
            .unwrap()
            .contains("not run: infeasible")
    );
    for scenario in ["h100-3x-ti2v", "h100-2x-s2v"] {
        for kind in ["time-per-unit", "units-per-hour"] {
            assert!(
                plots.join(format!("{kind}-{scenario}.png")).is_file(),
                "{kind}-{scenario}"
            );
        }
    }
    let layout = std::fs::read_to_string(plots.join("layout-h100-3x-ti2v-mig-2x3g.svg")).unwrap();
    assert!(
        layout.contains("3g.40gb@0") && layout.contains("3g.40gb@4") && layout.contains("unused")
    );
    assert!(
        layout.contains("1 of 7 compute slices"),
        "the wasted compute slice"
    );
}

#[test]
fn report_rejects_paths_without_runs() {
    let dir = tempfile::tempdir().unwrap();
    migbench()
        .arg("report")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("r"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no runs found below"));
    migbench()
        .args(["report", "/nonexistent/runs"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "/nonexistent/runs: not a directory",
        ));
}

/// The variant rows of a run's serving table, read apart from migbench's report code.
fn serving_variants(run: &Path) -> DataFrame {
    LazyFrame::scan_parquet(run.join("serving.parquet"), Default::default())
        .unwrap()
        .filter(col("scope").eq(lit("variant")))
        .collect()
        .unwrap()
}

/// Row `i` of a column of counts.
fn count(df: &DataFrame, column: &str, i: usize) -> u64 {
    let values = df.column(column).unwrap().cast(&DataType::UInt64).unwrap();
    values.u64().unwrap().get(i).unwrap()
}

fn serving_row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["serving"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variant"] == name)
        .unwrap_or_else(|| panic!("no serving row {name} in the report"))
}

const QWEN_VARIANTS: [&str; 6] = [
    "full-1x4b",
    "mps-2x4b",
    "mps-4x4b",
    "mig-2x2g",
    "mig-4x1g",
    "mig-14b-2x4b",
];

#[test]
fn the_serving_table_agrees_with_the_serving_data() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let report = report(run, &out);

    let serving = serving_variants(run);
    let names = strs(&serving, "variant");
    let listed: Vec<&str> = report["serving"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed, QWEN_VARIANTS,
        "one row per variant, in the scenario's order"
    );
    let count = |column: &str, i: usize| count(&serving, column, i);
    let report_txt = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let report_md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for i in 0..serving.height() {
        let name = names.get(i).unwrap();
        let row = serving_row(&report, name);
        for key in [
            "request_throughput",
            "output_throughput",
            "total_token_throughput",
            "request_goodput",
            "median_ttft_ms",
            "p99_ttft_ms",
            "median_tpot_ms",
            "p99_tpot_ms",
            "median_itl_ms",
            "median_e2el_ms",
            "cost_per_million_output_tokens",
        ] {
            let expected = floats(&serving, key).get(i).unwrap();
            let figure = &row["figures"][key];
            assert_eq!(figure["n"], 1, "{name} {key}: one repetition");
            assert!(
                close(figure["mean"].as_f64().unwrap(), expected),
                "{name} {key}: {figure} vs {expected}"
            );
        }
        assert_eq!(row["completed"].as_u64(), Some(count("completed", i)));
        assert_eq!(row["failed"].as_u64(), Some(count("failed", i)));
        assert_eq!(row["servers"].as_u64(), Some(count("servers", i)));
        assert_eq!(
            (row["simulated"].as_bool(), row["backend"].as_str()),
            (Some(true), Some("sim"))
        );
        // The terminal shows its output throughput and median/p99 TPOT as the table has them.
        let output = format!(
            "{:.0}",
            floats(&serving, "output_throughput").get(i).unwrap()
        );
        let tpot = format!(
            "{:.1}/{:.1}",
            floats(&serving, "median_tpot_ms").get(i).unwrap(),
            floats(&serving, "p99_tpot_ms").get(i).unwrap()
        );
        let line = report_txt
            .lines()
            .rfind(|l| l.contains(&format!(" {name} ")))
            .unwrap();
        assert!(
            line.contains(&format!(" {output} ")) && line.contains(&tpot),
            "{line} lacks {output} or {tpot}"
        );
        assert!(report_md.contains(&format!("| {name} |")));
    }
    // The scenario sets SLOs and a price: goodput and cost are columns.
    let csv = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(out.join("serving.csv")))
        .unwrap()
        .finish()
        .unwrap();
    for column in [
        "output_throughput_mean",
        "request_goodput_mean",
        "cost_per_million_output_tokens_mean",
    ] {
        let values = floats(&csv, column);
        let key = column.trim_end_matches("_mean");
        for (i, name) in strs(&csv, "variant").into_iter().enumerate() {
            let row = serving_row(&report, name.unwrap());
            assert!(close(
                values.get(i).unwrap(),
                row["figures"][key]["mean"].as_f64().unwrap()
            ));
        }
    }
    for file in ["report.md", "report.html", "report.txt"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains("Serving"), "{file}: the serving section");
        assert!(
            !text.to_lowercase().contains("measured ("),
            "{file} calls sim results measured"
        );
    }
}

#[test]
fn serving_variants_get_their_plots_beside_batch_variants() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch");
    run_sim("scenarios/h100-3x-ti2v.toml", &batch, SAMPLE_EVERY_SECOND);
    let out = dir.path().join("report");
    migbench()
        .arg("report")
        .arg(run)
        .arg(&batch)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let plots = out.join("plots");
    for (name, size) in [
        ("output-throughput-a100-qwen3", (960, 540)),
        ("latency-a100-qwen3", (960, 720)),
        ("per-user-per-gpu-a100-qwen3", (960, 540)),
    ] {
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
        for variant in QWEN_VARIANTS {
            assert!(svg.contains(variant), "{name} shows {variant}");
        }
        assert!(
            svg.contains("a100-qwen3: ") && svg.contains("(simulated)"),
            "{name}: titled, and labelled simulated"
        );
        assert!(!svg.contains("(sim)"), "{name}: says simulated once");
        let png = std::fs::read(plots.join(format!("{name}.png"))).unwrap();
        let info = png::Decoder::new(std::io::Cursor::new(&png))
            .read_info()
            .unwrap();
        assert_eq!((info.info().width, info.info().height), size, "{name}");
    }
    let svg = |name: &str| std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
    // Axes name their units, simulated ones as such; the legend names every mode.
    let throughput = svg("output-throughput-a100-qwen3");
    assert!(throughput.contains("output tokens per simulated s"));
    let latency = svg("latency-a100-qwen3");
    for words in [
        "time to first token (TTFT), simulated ms",
        "time per output token (TPOT), simulated ms",
        "median",
        "99th percentile",
    ] {
        assert!(latency.contains(words), "latency plot: {words}");
    }
    let scatter = svg("per-user-per-gpu-a100-qwen3");
    assert!(scatter.contains("per user (1000 ÷ median TPOT in ms)"));
    assert!(scatter.contains("output tokens per simulated s, whole GPU"));
    // The legend names every mode, drawn in the mode's colour of every other plot.
    for chart in [&throughput, &latency, &scatter] {
        for mode in ["full", "mps", "mig"] {
            assert!(
                chart.contains(&format!(">\n{mode}\n</text>")),
                "legend names {mode}"
            );
            let colour = migbench::report::plots::mode_hex(mode);
            assert!(chart.to_lowercase().contains(&colour), "{mode} in {colour}");
        }
    }
    // Servers complete no units: no time-per-unit chart for them, but still for the batch jobs.
    assert!(!plots.join("time-per-unit-a100-qwen3.svg").exists());
    assert!(plots.join("time-per-unit-h100-3x-ti2v.svg").is_file());
    assert!(!plots.join("output-throughput-h100-3x-ti2v.svg").exists());

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let (svgs, tables) = assert_self_contained(&html);
    assert_eq!(svgs, svg_files(&out), "every plot inline");
    // Variants (two scenarios), serving, how many in parallel, runs.
    assert!(tables >= 5, "{tables} tables");
    // The serving table and its plots are in the scenario's section, and no other.
    let section = |scenario: &str| {
        html.split("<details ")
            .find(|s| s.contains(&format!("<summary>{scenario} · ")))
            .and_then(|s| s.split("</details>").next())
            .unwrap_or_else(|| panic!("no section for {scenario}"))
            .to_string()
    };
    let qwen = section("a100-qwen3");
    assert!(qwen.contains("<h3>Serving</h3>"));
    assert!(qwen.contains("id=\"latency-a100-qwen3\""));
    assert!(!section("h100-3x-ti2v").contains("<h3>Serving</h3>"));
    // The answer first: the verdict comes before every scenario's section.
    assert!(html.find("<h2>Verdict</h2>").unwrap() < html.find("<details ").unwrap());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("](plots/per-user-per-gpu-a100-qwen3.svg)"));
}

#[test]
fn runs_and_reports_from_before_the_serving_table_stay_readable() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old").join(run.file_name().unwrap());
    std::fs::create_dir_all(&old).unwrap();
    for entry in std::fs::read_dir(run).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_file() && !name.starts_with("serving") && !name.starts_with("requests") {
            std::fs::copy(&path, old.join(&name)).unwrap();
        }
    }
    let out = dir.path().join("report");
    let data = report(&old, &out);
    assert_eq!(data["variants"].as_array().unwrap().len(), 6);
    assert_eq!(data["serving"].as_array().map(Vec::len), Some(0));

    // A report.json written before it had serving rows still reads as a side of compare.
    let mut json = report(run, &out);
    json.as_object_mut().unwrap().remove("serving");
    std::fs::write(out.join("report.json"), serde_json::to_vec(&json).unwrap()).unwrap();
    compare(&out, run).success();
}

#[test]
fn serving_runs_of_one_scenario_are_pooled() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    // The same run twice, the second later and with 10% more output throughput everywhere.
    let first = edited_table(run, &runs.join("first"), "serving", |_| {});
    let second = edited_table(run, &runs.join("second"), "serving", |df| {
        let more = df
            .column("output_throughput")
            .unwrap()
            .as_materialized_series()
            * 1.1;
        df.with_column(more).unwrap();
    });
    let manifest = second.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["started_at"] = "2099-01-01T00:00:00Z".into();
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();

    let report = report(&runs, &dir.path().join("report"));
    let serving = serving_variants(&first);
    let names = strs(&serving, "variant");
    let output = floats(&serving, "output_throughput");
    assert_eq!(report["serving"].as_array().unwrap().len(), 6);
    for i in 0..serving.height() {
        let row = serving_row(&report, names.get(i).unwrap());
        assert_eq!(
            (row["runs"].as_u64(), row["repetitions"].as_u64()),
            (Some(2), Some(2))
        );
        let x = output.get(i).unwrap();
        let figure = &row["figures"]["output_throughput"];
        assert_eq!(figure["n"], 2);
        assert!(
            close(figure["mean"].as_f64().unwrap(), (x + 1.1 * x) / 2.0),
            "{figure}"
        );
        assert!(close(figure["min"].as_f64().unwrap(), x));
        let completed = count(&serving, "completed", i);
        assert_eq!(row["completed"].as_u64(), Some(2 * completed));
    }
}

/// A run killed during its first variant has no tables yet, but its event log has every job that
/// finished: the report keeps them (it used to say the run "stopped before its first variant").
#[test]
fn a_run_killed_in_its_first_variant_keeps_its_finished_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("killed.toml");
    let workload = |name: &str, seconds: u32| {
        format!(
            "[workloads.{name}]\nname = \"{name}\"\ntitle = \"{name}\"\nkind = \"batch\"\nunit = \"video\"\ncommand = [\"x\"]\nmemory = {{ constant_gib = 5.0, peak_gib = 5.0, source = \"test\" }}\ntiming = {{ reference_gpu = \"h100-80gb\", full_gpu_s = {seconds}, source = \"test\" }}\nsim = {{ alpha = 0.7, peak_at = 0.5, peak_for = 0.1, source = \"test\" }}\n"
        )
    };
    std::fs::write(
        &scenario,
        format!(
            "[scenario]\nname = \"killed\"\n[gpu]\nmodel = \"h100-80gb\"\n{}{}[[variants]]\nname = \"both\"\nmode = \"mps\"\njobs = [{{ workload = \"short\", count = 2 }}, {{ workload = \"long\" }}]\n",
            workload("short", 20),
            workload("long", 500_000)
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("migbench"))
        .env("MIGBENCH_STATE_DIR", dir.path().join("state"))
        .args(["run", "--sim", "--quiet", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = || std::fs::read_dir(&out).ok()?.next()?.ok().map(|e| e.path());
    let ends = || {
        run_dir()
            .and_then(|d| std::fs::read_to_string(d.join("events.jsonl")).ok())
            .map_or(0, |t| t.matches("\"job_end\"").count())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ends() < 2 {
        assert!(std::time::Instant::now() < deadline, "no job ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run = run_dir().unwrap();
    assert!(!run.join("jobs.parquet").exists());

    let report_dir = dir.path().join("report");
    let out = migbench()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(&report_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    let both = variant(&json, "both");
    assert_eq!(both["jobs"], 2, "{both}");
    assert_eq!(both["jobs_ok"], 2, "{both}");
    assert!(
        both["status"].as_str().unwrap().starts_with(
            "interrupted: the run stopped during this variant; 2 finished job(s) recovered"
        ),
        "{both}"
    );
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("stopped before"), "{said}");
}

#[test]
fn the_verdict_comes_first_and_agrees_with_the_tables_and_gpus_are_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    run_sim("scenarios/h100-3x-ti2v.toml", &runs, SAMPLE_EVERY_SECOND);
    run_sim("scenarios/b200-ti2v.toml", &runs, SAMPLE_EVERY_SECOND);
    let out = dir.path().join("report");
    let printed = migbench()
        .arg("report")
        .arg(&runs)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let printed = String::from_utf8(printed).unwrap();
    assert!(printed.starts_with("Verdict\n"), "{printed}");
    // Tables keep to the terminal's 100 columns (warnings are sentences, and wrap).
    let wide: Vec<&str> = printed
        .lines()
        .filter(|l| !l.starts_with("warning:") && l.chars().count() > 100)
        .collect();
    assert!(wide.is_empty(), "{wide:#?}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2, "one per scenario and GPU");
    for v in verdicts {
        let rows: Vec<&Value> = report["variants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["scenario"] == v["scenario"])
            .collect();
        // The fastest is the variant with the lowest mean time per unit in the main table.
        let fastest = rows
            .iter()
            .min_by(|a, b| {
                let t = |r: &Value| r["time_per_unit_s"]["mean"].as_f64().unwrap();
                t(a).total_cmp(&t(b))
            })
            .unwrap();
        assert_eq!(v["fastest"]["variant"], fastest["variant"], "{v}");
        let oom: Vec<&str> = rows
            .iter()
            .filter(|r| r["jobs_oom"].as_u64().unwrap() > 0)
            .map(|r| r["variant"].as_str().unwrap())
            .collect();
        let listed = v["out_of_memory"].as_array().unwrap();
        assert_eq!(listed.len(), oom.len(), "{v}");
        for name in oom {
            assert!(listed.iter().any(|l| l.as_str().unwrap().starts_with(name)));
        }
    }
    let h100 = verdicts
        .iter()
        .find(|v| v["scenario"] == "h100-3x-ti2v")
        .unwrap();
    assert_eq!(h100["fastest"]["variant"], "mps-staggered");
    assert_eq!(h100["isolated"][0], "mig-2x3g (mig): guaranteed (MIG)");
    // Three at once under MPS only when staggered; two on 2 × 3g.40gb, as plan says.
    let at_once = |mode: &str| {
        h100["at_once"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["mode"] == mode)
            .unwrap()
            .clone()
    };
    assert_eq!(at_once("mps")["most_without_oom"], 3);
    assert_eq!(at_once("mig")["most_without_oom"], 2);
    assert_eq!(at_once("mig")["plan_together"], 2);

    // TI2V-5B ran on both GPU models: side by side, one column each.
    let across = std::fs::read_to_string(out.join("across_gpus.csv")).unwrap();
    let mut lines = across.lines();
    assert_eq!(
        lines.next().unwrap(),
        "results,workloads,mode,at_once_b200_180gb,at_once_h100_80gb"
    );
    assert!(
        across.contains("simulated,ti2v-5b,mig,4 (plan 4),2 (plan 2)"),
        "{across}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let first = |needle: &str| md.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(first("## Contents") < first("## Verdict"));
    assert!(first("## Verdict") < first("## Across GPUs"));
    assert!(first("## Across GPUs") < first("## Scenarios"));
    assert!(md.contains("- [h100-3x-ti2v · H100 80GB HBM3 · simulated](#s-"));
}

#[test]
fn held_vram_is_per_workload_never_averaged_across_workloads() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let report = report(run, &dir.path().join("report"));
    let mixed = variant(&report, "mig-14b-2x4b");
    assert!(mixed["job_vram_constant_gib"].is_null(), "{mixed}");
    // Each workload's held level is the mean over its own jobs, read apart from migbench.
    let jobs = LazyFrame::scan_parquet(run.join("jobs.parquet"), Default::default())
        .unwrap()
        .filter(col("variant").eq(lit("mig-14b-2x4b")))
        .collect()
        .unwrap();
    let by = mixed["job_vram_by_workload"].as_array().unwrap();
    let names: Vec<&str> = by.iter().map(|w| w["workload"].as_str().unwrap()).collect();
    assert_eq!(names, ["qwen3-14b", "qwen3-4b"]);
    for w in by {
        let (workloads, held) = (strs(&jobs, "workload"), floats(&jobs, "vram_constant_gib"));
        let mine: Vec<f64> = (0..jobs.height())
            .filter(|&i| workloads.get(i) == w["workload"].as_str())
            .filter_map(|i| held.get(i))
            .collect();
        let mean = mine.iter().sum::<f64>() / mine.len() as f64;
        assert!(
            close(w["constant_gib"]["mean"].as_f64().unwrap(), mean),
            "{w}"
        );
    }
    let held: Vec<f64> = by
        .iter()
        .map(|w| w["constant_gib"]["mean"].as_f64().unwrap())
        .collect();
    assert!(
        held[0] > 3.0 * held[1],
        "14B holds far more than 4B: {held:?}"
    );
    // One workload: the figure as before.
    assert!(variant(&report, "mig-4x1g")["job_vram_constant_gib"]["mean"].is_f64());
}

#[test]
fn a_mixed_mig_variant_is_counted_in_copies_of_its_mix_like_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let report = report(serving_run(), &dir.path().join("report"));
    let mixed = report["parallel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workloads"] == "qwen3-14b + qwen3-4b")
        .unwrap();
    // One Qwen3-14B and two Qwen3-4B at once: one complete copy of the mix (a third job of one
    // workload is not a second copy), which is what the plan allows on the A100's MIG.
    assert_eq!(mixed["counted_in"], "copies of the mix", "{mixed}");
    assert_eq!(mixed["most_without_oom"], 1, "{mixed}");
    assert_eq!(mixed["plan_staggered"], 1, "{mixed}");
    assert_eq!(mixed["verdict"], "as planned", "{mixed}");
    let single = report["parallel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workloads"] == "qwen3-4b" && r["mode"] == "mig")
        .unwrap();
    assert_eq!(single["counted_in"], "jobs");
    assert_eq!(single["most_without_oom"], 4);
}

#[test]
fn every_cost_figure_shows_its_currency() {
    let run = serving_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let report = report(run, &out);
    // The shipped scenario's price is "1.89 EUR" (S quotes euros).
    let serving = std::fs::read_to_string(out.join("serving.csv")).unwrap();
    // The currency column comes last, after the cost's.
    assert!(serving.lines().next().unwrap().ends_with(",currency"));
    for line in serving.lines().skip(1) {
        assert!(line.ends_with(",EUR"), "{line}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Cost per M output tok, EUR"),
        "the header names it"
    );
    let qwen = &report["verdicts"][0];
    assert_eq!(qwen["cost_currency"], "EUR", "{qwen}");
    assert!(
        md.contains(" EUR per M output tok |"),
        "the verdict names it"
    );

    // A bare number is in the `currency` key's currency, or USD.
    let text = std::fs::read_to_string("scenarios/a100-qwen3.toml").unwrap();
    for (price, expected) in [
        ("price_per_hour = 1.89", "USD"),
        ("price_per_hour = 1.89\ncurrency = \"CHF\"", "CHF"),
    ] {
        let file = dir.path().join(format!("{expected}.toml"));
        std::fs::write(&file, text.replace("price_per_hour = \"1.89 EUR\"", price)).unwrap();
        migbench().args(["validate"]).arg(&file).assert().success();
        let scenario = migbench::scenario::Scenario::load(&file).unwrap();
        assert_eq!(scenario.file.gpu.currency(), expected);
    }
    for (bad, message) in [
        ("price_per_hour = \"1.89 euro\"", "ISO 4217"),
        (
            "price_per_hour = \"1.89 EUR\"\ncurrency = \"USD\"",
            "give the currency once",
        ),
        (
            "price_per_hour = \"1.89 EUR\"\nprice_per_kwh = \"0.2 USD\"",
            "price_per_hour is in EUR but price_per_kwh is in \"USD\"",
        ),
        ("price_per_kwh = -0.2", "price_per_kwh"),
        ("price_per_hour = 1.89\ncurrency = \"dollars\"", "ISO 4217"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text.replace("price_per_hour = \"1.89 EUR\"", bad)).unwrap();
        migbench()
            .args(["validate"])
            .arg(&file)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(message));
    }
}

/// The smallest text of every plot stays at least 8.5 px tall when the SVG is pasted 800 px wide
/// (the narrowest MIG instance's caption; everything else is larger).
#[test]
fn plots_stay_readable_at_800_px() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    report(serving_run(), &out);
    let mut checked = 0;
    for entry in std::fs::read_dir(out.join("plots")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "svg") {
            continue;
        }
        let svg = std::fs::read_to_string(&path).unwrap();
        let number = |after: &str, from: &str| -> Vec<f64> {
            from.split(after)
                .skip(1)
                .map(|s| s[..s.find('"').unwrap()].parse::<f64>().unwrap())
                .collect()
        };
        let width = number("width=\"", &svg)[0];
        for size in number("font-size=\"", &svg) {
            let at_800 = size * 800.0 / width;
            assert!(
                at_800 >= 8.0,
                "{}: text {at_800:.1} px at 800 px",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 5, "{checked} plots");
}
