//! Building a whole report (load, statistics, tables, every plot as SVG and PNG, every file
//! written) over a synthetic results set of 10 million VRAM samples: ten scenarios, one run each,
//! four variants of three jobs. Every run is the latest of its scenario, so every sample is read
//! and reduced for the VRAM plots. The data is written once, before timing, with migbench's own
//! table writer.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};

use migbench::backend::{BackendKind, Scope};
use migbench::mode::SharingMode;
use migbench::report::Report;
use migbench::results::stream::PartWriter;
use migbench::results::{
    InstanceRecord, JobRecord, Manifest, Outcome, SampleRecord, Tables, VariantEnergy,
    VariantRecord, VariantStatus, SCHEMA_VERSION,
};

const SCENARIOS: usize = 10;
const SAMPLES: usize = 10_000_000;
const VARIANTS: [(&str, SharingMode, Option<&str>); 4] = [
    ("full-sequential", SharingMode::Full, None),
    ("mps-together", SharingMode::Mps, None),
    ("mps-staggered", SharingMode::Mps, None),
    ("mig-2x3g", SharingMode::Mig, Some("3g.40gb@0, 3g.40gb@4")),
];
const JOBS: usize = 3;
const GPU_UUID: &str = "GPU-00000000-0000-4000-8000-000000000000";

/// One run directory of the synthetic set, with `samples` sample rows.
fn write_run(root: &Path, index: usize, samples: usize) {
    let name = format!("synthetic-{index}");
    let dir = root.join(format!("{name}-20260101T000000Z"));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = std::fs::read_to_string("scenarios/h100-3x-ti2v.toml")
        .unwrap()
        .replace("name = \"h100-3x-ti2v\"", &format!("name = \"{name}\""));
    std::fs::write(dir.join("scenario.toml"), scenario).unwrap();
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        scenario: name.clone(),
        scenario_file: "scenario.toml".into(),
        scenario_sha256: String::new(),
        migbench_version: "bench".into(),
        migbench_commit: "unknown".into(),
        migbench_dirty: None,
        backend: BackendKind::Sim,
        simulated: true,
        clock: "simulated".into(),
        pace: None,
        gpu_model: "h100-80gb".into(),
        gpu_name: "H100 80GB HBM3".into(),
        gpu_uuid: GPU_UUID.into(),
        driver: None,
        cuda: None,
        host: "bench".into(),
        slurm: None,
        command: Vec::new(),
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: None,
        imported_from: None,
        status: "complete".into(),
    };
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();

    let mut tables = Tables::default();
    // Samples go to their parts as a run writes them.
    let mut samples_out = PartWriter::<SampleRecord>::create(&dir, false);
    // Each instant: the GPU and one row per job.
    let instants = samples / VARIANTS.len() / (JOBS + 1);
    let span = 800.0;
    for (v, (variant, mode, layout)) in VARIANTS.iter().enumerate() {
        let t0 = v as f64 * 1000.0;
        for j in 0..JOBS {
            let pid = (index * 100 + v * 10 + j) as u32 + 1000;
            tables.jobs.push(JobRecord {
                variant: variant.to_string(),
                repetition: 1,
                job: j as u32,
                mode: *mode,
                workload: "ti2v-5b".into(),
                unit: "video".into(),
                instance_profile: None,
                instance_uuid: Some(GPU_UUID.into()),
                start_s: Some(t0),
                end_s: Some(t0 + span - j as f64),
                duration_s: Some(span - j as f64),
                exit_code: Some(0),
                pid: Some(pid),
                outcome: Outcome::Ok,
                vram_peak_gib: Some(33.0),
                vram_constant_gib: Some(21.0),
                energy_j: None,
                reason: None,
                log: None,
            });
        }
        for k in 0..instants {
            let t = t0 + span * k as f64 / instants as f64;
            let level = if k % 100 < 5 { 33.0 } else { 21.0 };
            samples_out
                .push(SampleRecord {
                    t_s: t,
                    variant: variant.to_string(),
                    repetition: 1,
                    scope: Scope::Gpu,
                    id: GPU_UUID.into(),
                    label: "GPU".into(),
                    used_gib: level * JOBS as f64,
                    capacity_gib: Some(79.65),
                    utilization_pct: Some(100.0),
                    power_w: Some(650.0),
                })
                .unwrap();
            for j in 0..JOBS {
                samples_out
                    .push(SampleRecord {
                        t_s: t,
                        variant: variant.to_string(),
                        repetition: 1,
                        scope: Scope::Process,
                        id: ((index * 100 + v * 10 + j) as u32 + 1000).to_string(),
                        label: GPU_UUID.into(),
                        used_gib: level,
                        capacity_gib: None,
                        utilization_pct: None,
                        power_w: None,
                    })
                    .unwrap();
            }
        }
        tables.variants.push(VariantRecord {
            variant: variant.to_string(),
            repetition: 1,
            mode: *mode,
            layout: layout.map(str::to_string),
            backend: BackendKind::Sim,
            status: VariantStatus::Ran,
            reason: None,
            jobs: JOBS as u32,
            jobs_ok: JOBS as u32,
            jobs_oom: 0,
            jobs_failed: 0,
            makespan_s: Some(span),
            units: JOBS as u32,
            time_per_unit_s: Some(span / JOBS as f64),
            units_per_hour: Some(JOBS as f64 * 3600.0 / span),
            gpu_vram_peak_gib: Some(99.0),
            energy: VariantEnergy::default(),
        });
        tables.instances.push(InstanceRecord {
            variant: variant.to_string(),
            repetition: 1,
            instance: "GPU".into(),
            uuid: GPU_UUID.into(),
            capacity_gib: Some(79.65),
            vram_peak_gib: 99.0,
        });
    }
    tables.write(&dir).unwrap();
    samples_out.finish().unwrap();
}

fn bench(c: &mut Criterion) {
    // `MIGBENCH_REPORT_DATA=DIR` keeps the synthetic runs in DIR, for measuring `migbench report`
    // itself on them (its peak memory with `/usr/bin/time -v`).
    let temp = tempfile::tempdir().unwrap();
    let data = std::env::var_os("MIGBENCH_REPORT_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    for i in 0..SCENARIOS {
        write_run(&data, i, SAMPLES / SCENARIOS);
    }
    let out = tempfile::tempdir().unwrap();
    let paths = vec![data.clone()];
    let mut group = c.benchmark_group("report");
    // Each iteration takes about a second: ten of them, and no long warm-up, are plenty.
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(1));
    group.bench_function("10M samples, 10 scenarios, 40 variants", |b| {
        b.iter(|| {
            let report = Report::build(&paths).unwrap();
            report.write(out.path()).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
