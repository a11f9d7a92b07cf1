//! The cost of one VRAM sample, which bounds how fast the sampler can go (it must keep up at
//! 10 ms), and of deriving peak and constant VRAM from a long series.

use std::path::PathBuf;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use migbench::backend::nvml;
use migbench::backend::sim::SimBackend;
use migbench::backend::{Backend, Change};
use migbench::catalog::Catalog;
use migbench::layout::Layout;
use migbench::sampler::peak_and_constant;

fn sample_cost(c: &mut Criterion) {
    let gpu = Catalog::builtin().gpu("h100-80gb").unwrap();
    let backend = SimBackend::start(gpu, None, PathBuf::from("/bin/false")).unwrap();
    c.bench_function("sim sample, whole GPU", |b| {
        b.iter(|| black_box(backend.sample().unwrap()))
    });

    // Seven MIG instances: one row per instance on top of the GPU's.
    backend
        .apply(&Change::SetMigMode { enabled: true })
        .unwrap();
    let layout = Layout::parse(
        gpu,
        "1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb",
    )
    .unwrap();
    for gi in layout.creation_order() {
        let (profile_id, profile, start) = (gi.profile.id, gi.profile.name.clone(), gi.start);
        backend
            .apply(&Change::CreateGpuInstance {
                profile_id,
                profile,
                start,
            })
            .unwrap();
        let ci = gi.compute[0];
        backend
            .apply(&Change::CreateComputeInstance {
                gi_start: start,
                index: 0,
                profile_id: ci.id,
                profile: ci.name.clone(),
            })
            .unwrap();
    }
    c.bench_function("sim sample, 7 MIG instances", |b| {
        b.iter(|| black_box(backend.sample().unwrap()))
    });

    // The real thing, on a machine with an NVIDIA GPU of the catalog (skipped elsewhere).
    let real = nvml::discover()
        .ok()
        .and_then(|gpus| gpus.into_iter().find(|g| g.model.is_ok()));
    if let Some(found) = real {
        let model = Catalog::builtin()
            .gpu(found.model.as_ref().unwrap())
            .unwrap();
        let backend = nvml::NvmlBackend::open(model, found.index, None).unwrap();
        let rows = backend.sample().unwrap().len();
        c.bench_function(&format!("NVML sample, {} ({rows} rows)", found.name), |b| {
            b.iter(|| black_box(backend.sample().unwrap()))
        });
    }

    // An hour of a job sampled every 10 ms.
    let levels: Vec<f64> = (0..360_000)
        .map(|i| if i % 1000 < 50 { 33.0 } else { 21.0 })
        .collect();
    c.bench_function("peak and constant of 360k samples", |b| {
        b.iter(|| peak_and_constant(black_box(&levels)))
    });
}

criterion_group!(benches, sample_cost);
criterion_main!(benches);
