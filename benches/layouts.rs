//! Enumerating every maximal layout of every catalog GPU: what `migbench layouts` and
//! `migbench plan` cost.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use migbench::catalog::Catalog;
use migbench::layout::{enumerate, EnumerateOptions};

fn enumerate_all(c: &mut Criterion) {
    let catalog = Catalog::builtin();
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
    }
}

criterion_group!(benches, enumerate_all);
criterion_main!(benches);
