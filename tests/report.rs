//! `migbench report` and `migbench compare` on simulator runs: the tables agree with the jobs
//! data, the HTML stands alone, every variant is plotted, and compare's exit status follows
//! constructed regressions and improvements.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use polars::prelude::*;
use serde_json::Value;

fn migbench() -> Command {
    Command::cargo_bin("migbench").unwrap()
}

/// Runs a shipped scenario fast on the simulator into `out`; returns the run directory.
fn run_sim(scenario: &str, out: &Path) -> PathBuf {
    migbench()
        .args([
            "run",
            "--sim",
            "--quiet",
            "--time-scale",
            "1000",
            "--sample-ms",
            "5",
        ])
        .arg("--out")
        .arg(out)
        .arg(scenario)
        .assert()
        .success();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop().expect("a run directory")
}

/// `migbench report PATH --out OUT`; returns report.json.
fn report(path: &Path, out: &Path) -> Value {
    migbench()
        .arg("report")
        .arg(path)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

fn read_parquet(path: &Path) -> DataFrame {
    LazyFrame::scan_parquet(path, Default::default())
        .unwrap()
        .collect()
        .unwrap()
}

fn write_parquet(path: &Path, df: &mut DataFrame) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(df).unwrap();
}

fn floats(df: &DataFrame, column: &str) -> Float64Chunked {
    df.column(column).unwrap().f64().unwrap().clone()
}

fn strs(df: &DataFrame, column: &str) -> StringChunked {
    df.column(column).unwrap().str().unwrap().clone()
}

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
    let start = floats(&df, "start");
    let end = floats(&df, "end");
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
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &dir.path().join("runs"));
    let out = dir.path().join("report");
    let report = report(&dir.path().join("runs"), &out);

    let variants = read_parquet(&run.join("variants.parquet"));
    let names = strs(&variants, "variant");
    let makespans = floats(&variants, "makespan_s");
    let units = variants.column("units").unwrap().u32().unwrap().clone();
    let gpu_peaks = floats(&variants, "gpu_vram_peak_gib");
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
        // Simulator results say so, and are never labelled measured.
        assert_eq!(
            (row["simulated"].as_bool(), row["backend"].as_str()),
            (Some(true), Some("sim"))
        );
    }
    assert_eq!(
        variant(&report, "mig-2x3g")["isolation"],
        "guaranteed (MIG)"
    );
    assert_eq!(variant(&report, "mps-together")["isolation"], "none");
    for file in ["report.md", "report.html", "report.txt"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains("simulated (sim)"), "{file}");
        assert!(
            !text.to_lowercase().contains("measured ("),
            "{file} calls sim results measured"
        );
    }
    // One run of each variant: hyperfine's warning.
    assert!(report["warnings"][0].as_str().unwrap().contains("ran once"));

    // The CSV says the same as the JSON, at full precision.
    let csv = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(out.join("variants.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let csv_names = strs(&csv, "variant");
    let csv_means = floats(&csv, "time_per_job_s_mean");
    for i in 0..csv.height() {
        let row = variant(&report, csv_names.get(i).unwrap());
        assert!(close(
            csv_means.get(i).unwrap(),
            row["time_per_job_s"]["mean"].as_f64().unwrap()
        ));
    }
}

#[test]
fn runs_of_one_scenario_are_pooled() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &runs);
    // A second run: the same tables, every job 10% slower, under another directory below.
    let second = runs.join("later").join("again");
    std::fs::create_dir_all(&second).unwrap();
    for f in [
        "manifest.json",
        "scenario.toml",
        "variants.parquet",
        "instances.parquet",
        "samples.parquet",
    ] {
        std::fs::copy(run.join(f), second.join(f)).unwrap();
    }
    let mut jobs = read_parquet(&run.join("jobs.parquet"));
    let end = jobs.column("end").unwrap().as_materialized_series() * 1.1;
    let duration = (&end - jobs.column("start").unwrap().as_materialized_series()).unwrap();
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
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &dir.path().join("runs"));
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

#[test]
fn html_parses_and_references_nothing_outside_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &dir.path().join("runs"));
    let out = dir.path().join("report");
    let report = report(&run, &out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();

    // Strictly well-formed: every element closed, in order (quick-xml checks end names).
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(&html);
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
            let key = String::from_utf8(a.unwrap().key.as_ref().to_vec()).unwrap();
            assert!(
                !["src", "href", "xlink:href", "srcset", "action"].contains(&key.as_str()),
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
    let plots = std::fs::read_dir(out.join("plots")).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "svg")
    });
    assert_eq!(svgs, plots.count(), "every plot inline");
    assert!(tables >= 3, "the tables are there");
    assert!(html.contains("mps-staggered"));
    assert_eq!(report["variants"].as_array().unwrap().len(), 4);
}

#[test]
fn every_variant_is_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    run_sim("scenarios/h100-3x-ti2v.toml", &runs);
    // h100-2x-s2v has a variant that cannot run (infeasible): it gets a plot saying so.
    run_sim("scenarios/h100-2x-s2v.toml", &runs);
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

/// Copies a run directory, changing its variants table with `edit`.
fn edited_copy(run: &Path, to: &Path, edit: impl Fn(&mut DataFrame)) -> PathBuf {
    let dest = to.join(run.file_name().unwrap());
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(run).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dest.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut variants = read_parquet(&run.join("variants.parquet"));
    edit(&mut variants);
    write_parquet(&dest.join("variants.parquet"), &mut variants);
    dest
}

/// Multiplies a float column of the row of `variant`.
fn scale(df: &mut DataFrame, variant: &str, column: &str, factor: f64) {
    let names = strs(df, "variant");
    let values: Vec<Option<f64>> = df
        .column(column)
        .unwrap()
        .f64()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(|v| {
                if names.get(i) == Some(variant) {
                    v * factor
                } else {
                    v
                }
            })
        })
        .collect();
    df.with_column(Series::new(column.into(), values)).unwrap();
}

fn compare(baseline: &Path, candidate: &Path) -> assert_cmd::assert::Assert {
    migbench()
        .arg("compare")
        .arg(baseline)
        .arg(candidate)
        .assert()
}

#[test]
fn compare_exits_1_on_regressions_and_0_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &dir.path().join("runs"));
    let case =
        |name: &str, edit: &dyn Fn(&mut DataFrame)| edited_copy(&run, &dir.path().join(name), edit);

    compare(&run, &run)
        .success()
        .stdout(predicates::str::contains("unchanged"));

    let slower = case("slower", &|df| {
        scale(df, "mps-staggered", "time_per_unit_s", 1.2);
        scale(df, "mps-staggered", "units_per_hour", 1.0 / 1.2);
    });
    compare(&run, &slower)
        .code(1)
        .stdout(predicates::str::contains("time per unit +20.0%"))
        .stderr(predicates::str::contains(
            "1 variant(s) regressed beyond 5.0%: h100-3x-ti2v/mps-staggered",
        ));

    let within = case("within", &|df| {
        scale(df, "mig-2x3g", "time_per_unit_s", 1.04)
    });
    compare(&run, &within).success();
    migbench()
        .args(["compare", "--threshold", "3%"])
        .arg(&run)
        .arg(&within)
        .assert()
        .code(1);

    let hungrier = case("hungrier", &|df| {
        scale(df, "full-sequential", "gpu_vram_peak_gib", 1.1)
    });
    compare(&run, &hungrier)
        .code(1)
        .stdout(predicates::str::contains("peak VRAM +10.0%"));

    let faster = case("faster", &|df| {
        scale(df, "full-sequential", "time_per_unit_s", 0.8);
        scale(df, "full-sequential", "units_per_hour", 1.25);
    });
    compare(&run, &faster)
        .success()
        .stdout(predicates::str::contains(
            "improved h100-3x-ti2v/full-sequential: time per unit -20.0%",
        ));
    // The other way round, the improvement is a regression.
    compare(&faster, &run).code(1);

    let oom = case("oom", &|df| {
        let names = strs(df, "variant");
        let bump = |c: &str, by: i64| -> Series {
            let v: Vec<u32> = df
                .column(c)
                .unwrap()
                .u32()
                .unwrap()
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = v.unwrap() as i64;
                    (if names.get(i) == Some("mig-2x3g") {
                        v + by
                    } else {
                        v
                    }) as u32
                })
                .collect();
            Series::new(c.into(), v)
        };
        let (ok, oom) = (bump("jobs_ok", -1), bump("jobs_oom", 1));
        df.with_column(ok).unwrap();
        df.with_column(oom).unwrap();
    });
    compare(&run, &oom)
        .code(1)
        .stdout(predicates::str::contains("OOMs 0 → 1"));

    // A report directory is a side too.
    let report_dir = dir.path().join("report");
    report(&run, &report_dir);
    compare(&report_dir, &run).success();
    compare(&report_dir, &slower).code(1);
    migbench()
        .args(["compare", "--format", "json"])
        .arg(&report_dir)
        .arg(&slower)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("\"verdict\": \"regressed\""));
}

#[test]
fn compare_rejects_bad_input_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sim("scenarios/h100-3x-ti2v.toml", &dir.path().join("runs"));
    compare(&run, Path::new("/nonexistent"))
        .code(2)
        .stderr(predicates::str::contains(
            "candidate /nonexistent: no such directory",
        ));
    compare(&run, &run.join("logs"))
        .code(2)
        .stderr(predicates::str::contains("candidate: no runs found"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    compare(&empty, &run)
        .code(2)
        .stderr(predicates::str::contains("no runs found"));
    migbench()
        .args(["compare", "--threshold", "five"])
        .arg(&run)
        .arg(&run)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--threshold: expected a percentage",
        ));

    // The same variants, but measured on a GPU: refused, not compared.
    let measured = edited_copy(&run, &dir.path().join("measured"), |_| {});
    let manifest = measured.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["simulated"] = Value::Bool(false);
    m["backend"] = "nvml".into();
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    compare(&run, &measured)
        .code(2)
        .stderr(predicates::str::contains(
            "refusing to compare simulated results with measured ones",
        ));
}
