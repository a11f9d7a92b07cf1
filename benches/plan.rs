//! `migbench plan` for every catalog GPU × every shipped workload, and every mix of two and of
//! three of them. Each must answer within 10 ms (its best of three tries, so that a busy machine's
//! pauses are not counted): before failed search states were remembered,
//! `plan --gpu b200-180gb --workload qwen3-4b` ran for minutes. Every combination is first timed
//! once and the bench fails if one takes longer; then criterion measures each.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use migbench::catalog::Catalog;
use migbench::plan::{plan, PlanRequest};
use migbench::workload::{self, Workload};

/// Every shipped workload alone, and every mix of two and of three.
fn mixes() -> Vec<Vec<&'static Workload>> {
    let all: Vec<&'static Workload> = workload::builtin().iter().collect();
    let mut mixes: Vec<Vec<&Workload>> = all.iter().map(|w| vec![*w]).collect();
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            mixes.push(vec![all[i], all[j]]);
            for k in j + 1..all.len() {
                mixes.push(vec![all[i], all[j], all[k]]);
            }
        }
    }
    mixes
}

fn name(mix: &[&Workload]) -> String {
    mix.iter()
        .map(|w| w.name.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

fn plan_every_gpu_and_mix(c: &mut Criterion) {
    const LIMIT: Duration = Duration::from_millis(10);
    let requests: Vec<PlanRequest> = Catalog::builtin()
        .gpus()
        .iter()
        .flat_map(|gpu| {
            mixes().into_iter().map(move |mix| PlanRequest {
                gpu,
                mix,
                headroom: 0.0,
            })
        })
        .collect();
    let mut times: Vec<(Duration, String)> = requests
        .iter()
        .map(|request| {
            // The best of three: one answer's time, not the machine's load at that instant.
            let took = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    black_box(plan(request));
                    start.elapsed()
                })
                .min()
                .expect("three tries");
            (
                took,
                format!(
                    "plan --gpu {} --workload {}",
                    request.gpu.key,
                    name(&request.mix)
                ),
            )
        })
        .collect();
    times.sort();
    println!("{} requests, the slowest once each:", times.len());
    for (took, what) in times.iter().rev().take(5) {
        println!("  {took:>10.2?}  {what}");
    }
    let (took, what) = times.last().expect("the catalog has GPUs");
    assert!(
        *took < LIMIT,
        "{what} took {took:?}; the limit is {LIMIT:?}"
    );
    let mut group = c.benchmark_group("plan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(300));
    for request in &requests {
        group.bench_function(format!("{} {}", request.gpu.key, name(&request.mix)), |b| {
            b.iter(|| plan(black_box(request)))
        });
    }
    group.finish();
}

criterion_group!(benches, plan_every_gpu_and_mix);
criterion_main!(benches);
