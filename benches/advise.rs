//! `migbench advise` for every catalog GPU × every shipped batch workload mix of up to three
//! (model servers are not advised on): the whole set must answer in under 10 s. It is timed once
//! and the bench fails beyond that; then criterion measures the whole set and each GPU.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use migbench::advise::{advise, default_copies, Request};
use migbench::catalog::Catalog;
use migbench::cli::Objective;
use migbench::workload::{self, Workload, WorkloadKind};

/// The copies `advise` simulates at most, as the command does.
const MAX_COPIES: u32 = 16;

/// Every mix of one, two and three different shipped batch workloads.
fn mixes() -> Vec<Vec<&'static Workload>> {
    let all: Vec<&'static Workload> = workload::builtin()
        .iter()
        .filter(|w| w.kind == WorkloadKind::Batch)
        .collect();
    let mut mixes = Vec::new();
    for mask in 1u32..(1 << all.len()) {
        let mix: Vec<&Workload> = (0..all.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| all[i])
            .collect();
        if mix.len() <= 3 {
            mixes.push(mix);
        }
    }
    mixes
}

fn requests() -> Vec<Request<'static>> {
    Catalog::builtin()
        .gpus()
        .iter()
        .flat_map(|gpu| {
            mixes().into_iter().map(move |mix| Request {
                gpu,
                copies: default_copies(gpu, &mix, 0.0, MAX_COPIES),
                mix,
                objective: Objective::UnitsPerHour,
                load: None,
                isolation_required: false,
                headroom: 0.0,
            })
        })
        .collect()
}

fn advise_every_gpu_and_mix(c: &mut Criterion) {
    const LIMIT: Duration = Duration::from_secs(10);
    let requests = requests();
    let start = Instant::now();
    let configurations: usize = requests.iter().map(|r| black_box(advise(r)).len()).sum();
    let took = start.elapsed();
    eprintln!(
        "advise: {} requests, {configurations} configurations simulated, in {took:?}",
        requests.len()
    );
    assert!(
        took < LIMIT,
        "every GPU x mix took {took:?}; the limit is {LIMIT:?}"
    );
    let mut group = c.benchmark_group("advise");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("every GPU x mix", |b| {
        b.iter(|| {
            requests
                .iter()
                .map(|r| advise(black_box(r)).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, advise_every_gpu_and_mix);
criterion_main!(benches);
