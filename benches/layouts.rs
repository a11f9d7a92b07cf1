//! Enumerating every maximal layout of every catalog GPU: what `migbench layouts` and
//! `migbench plan` cost. `layouts --full-only` must answer within 10 ms on every model (the
//! RTX PRO's 12-unit grid and variants included): each is first timed once and the bench fails
//! if one takes longer; then criterion measures each.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use migbench::catalog::Catalog;
use migbench::layout::{enumerate, EnumerateOptions};

fn enumerate_all(c: &mut Criterion) {
    const LIMIT: Duration = Duration::from_millis(10);
    let catalog = Catalog::builtin();
    let full_only = EnumerateOptions {
        profiles: None,
        full_only: true,
    };
    for gpu in catalog.gpus() {
        let start = Instant::now();
        black_box(enumerate(gpu, &full_only));
        let took = start.elapsed();
        assert!(
            took < LIMIT,
            "layouts --gpu {} --full-only took {took:?}; the limit is {LIMIT:?}",
            gpu.key
        );
    }
    c.bench_function("enumerate every layout of every catalog GPU", |b| {
        b.iter(|| {
            catalog
                .gpus()
                .iter()
                .map(|gpu| enumerate(black_box(gpu), &EnumerateOptions::default()).len())
                .sum::<usize>()
        })
    });
    for gpu in catalog.gpus() {
        c.bench_function(&format!("enumerate {}", gpu.key), |b| {
            b.iter(|| enumerate(black_box(gpu), &EnumerateOptions::default()).len())
        });
        c.bench_function(&format!("layouts --full-only {}", gpu.key), |b| {
            b.iter(|| enumerate(black_box(gpu), &full_only).len())
        });
    }
}

criterion_group!(benches, enumerate_all);
criterion_main!(benches);
