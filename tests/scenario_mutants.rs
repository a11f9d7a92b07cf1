//! Mutants of the shipped scenarios — lines deleted, duplicated and cut short, values swapped,
//! replaced by huge, negative and non-finite numbers, unicode, control bytes and overlong
//! strings — go through the same loading and checking as `migbench validate`. Each must load or
//! be refused with a located message; never panic; and whatever is accepted must be sane:
//! bounded counts, finite numbers in their documented ranges, names that are plain file names.
//! The library is called directly (2,000 mutants take seconds); a few go through the binary.

mod common;

use std::path::{Path, PathBuf};

use migbench::bounds;
use migbench::scenario::Scenario;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The shipped scenarios: (path, text).
fn seeds() -> Vec<(PathBuf, String)> {
    let mut seeds: Vec<(PathBuf, String)> = ["scenarios", "scenarios/validation"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 8);
    seeds
}

/// Values that have broken, or could break, a run.
const NASTY: &[&str] = &[
    "0",
    "-1",
    "-0.0",
    "1000000000",
    "5000000000",
    "18446744073709551615",
    "-9223372036854775808",
    "1e308",
    "-1e308",
    "inf",
    "-inf",
    "nan",
    "0.5",
    "[]",
    "{}",
    "[0, 0, 0]",
    "\"\"",
    "\"../..\"",
    "\"/abs\"",
    "\".hidden\"",
    "\"nul\\u0000byte\"",
    "\"tab\\tand\\u001b[31mescape\"",
    "\"é☃𝄞\"",
    "\"mig+mps\"",
    "\"3g.40gb\"",
    "[{ profile = \"3g.40gb\", compute = [] }]",
    "true",
];

/// One change to a scenario's text.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    /// Cut line `.0` after `.1` characters.
    Truncate(usize, usize),
    /// Swap the values of two `key = value` lines.
    Swap(usize, usize),
    /// Replace a line's value with one of [`NASTY`].
    Nasty(usize, usize),
    /// Replace a line's value with a string this many characters long.
    Overlong(usize, usize),
    /// Insert a character (unicode or control) at a byte position.
    Insert(usize, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = any::<usize>();
    prop_oneof![
        line.prop_map(Mutation::Delete),
        line.prop_map(Mutation::Duplicate),
        (line, 0usize..40).prop_map(|(l, k)| Mutation::Truncate(l, k)),
        (line, any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (line, 0..NASTY.len()).prop_map(|(l, n)| Mutation::Nasty(l, n)),
        (line, prop_oneof![Just(65usize), Just(1000), Just(100_000)])
            .prop_map(|(l, n)| Mutation::Overlong(l, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just('\0'),
                Just('\u{1b}'),
                Just('\u{7f}'),
                Just('\u{202e}'),
                Just('é'),
                Just('\n'),
                Just('"'),
                Just('['),
                any::<char>(),
            ]
        )
            .prop_map(|(at, c)| Mutation::Insert(at, c)),
    ]
}

/// `key = value` of a line, split at the first `=`.
fn split(line: &str) -> Option<(&str, &str)> {
    let i = line.find('=')?;
    Some((&line[..i], &line[i + 1..]))
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    let valued: Vec<usize> = (0..lines.len())
        .filter(|&i| split(&lines[i]).is_some())
        .collect();
    let pick = |k: usize| valued.get(k % valued.len().max(1)).copied();
    match *m {
        Mutation::Delete(l) => {
            lines.remove(l % n);
        }
        Mutation::Duplicate(l) => {
            let line = lines[l % n].clone();
            lines.insert(l % n, line);
        }
        Mutation::Truncate(l, k) => {
            let line = &mut lines[l % n];
            *line = line.chars().take(k).collect();
        }
        Mutation::Swap(a, b) => {
            if let (Some(a), Some(b)) = (pick(a), pick(b)) {
                let (ka, va) = split(&lines[a]).unwrap();
                let (kb, vb) = split(&lines[b]).unwrap();
                let (new_a, new_b) = (format!("{ka}={vb}"), format!("{kb}={va}"));
                lines[a] = new_a;
                lines[b] = new_b;
            }
        }
        Mutation::Nasty(l, v) => {
            if let Some(l) = pick(l) {
                let key = split(&lines[l]).unwrap().0.to_string();
                lines[l] = format!("{key}= {}", NASTY[v]);
            }
        }
        Mutation::Overlong(l, len) => {
            if let Some(l) = pick(l) {
                let key = split(&lines[l]).unwrap().0.to_string();
                lines[l] = format!("{key}= \"{}\"", "x".repeat(len));
            }
        }
        Mutation::Insert(at, c) => {
            let mut joined = lines.join("\n");
            let mut at = at % (joined.len() + 1);
            while !joined.is_char_boundary(at) {
                at -= 1;
            }
            joined.insert(at, c);
            return joined;
        }
    }
    lines.join("\n") + "\n"
}

/// What an accepted scenario must be: counts bounded, numbers finite and in range, names plain.
fn assert_sane(s: &Scenario) {
    let name_ok =
        |what: &str, n: &str| assert!(bounds::check_name(what, n).is_ok(), "{what} {n:?} accepted");
    name_ok("scenario", s.name());
    let seconds = |what: &str, v: f64| {
        assert!(
            bounds::SECONDS.contains(v),
            "{what} = {v} accepted in {}",
            s.name()
        )
    };
    if let Some(p) = &s.file.gpu.price_per_hour {
        assert!(
            bounds::PRICE.contains(p.amount),
            "price_per_hour = {}",
            p.amount
        );
    }
    for v in &s.file.variants {
        name_ok("variant", v.name.get_ref());
        assert!((1..=bounds::MAX_REPETITIONS).contains(&v.repetitions));
        assert!(!v.jobs.is_empty());
        let jobs: u64 = v.jobs.iter().map(|g| u64::from(g.count)).sum();
        assert!(
            (1..=bounds::MAX_JOBS_PER_VARIANT).contains(&jobs),
            "{jobs} jobs"
        );
        if let Some(mps) = &v.mps {
            let mps = mps.get_ref();
            if let Some(g) = mps.pinned_memory_limit_gib {
                assert!(bounds::POSITIVE_GIB.contains(g), "pinned {g}");
            }
            if let Some(p) = mps.active_thread_percentage {
                assert!((1..=100).contains(&p));
            }
        }
        for g in &v.jobs {
            assert!(g.count >= 1);
            seconds("start_s", g.start_s);
            seconds("stagger_s", g.stagger_s);
            if let Some(t) = g.timeout_s {
                assert!(bounds::POSITIVE_SECONDS.contains(t), "timeout_s = {t}");
            }
            if let Some(i) = &g.instances {
                assert!(!i.get_ref().is_empty());
            }
            let w = s
                .job_workload(g)
                .expect("an accepted job's workload exists");
            name_ok("workload", &w.name);
            let m = &w.memory;
            assert!(
                bounds::GIB.contains(m.constant_gib) && bounds::POSITIVE_GIB.contains(m.peak_gib)
            );
            assert!(m.constant_gib <= m.peak_gib);
            assert!(bounds::ALPHA.contains(w.sim.alpha));
            assert!(bounds::FRACTION.contains(w.sim.peak_at));
            assert!(w.sim.peak_at + w.sim.peak_for <= 1.0);
            if let Some(t) = &w.timing {
                assert!(bounds::POSITIVE_SECONDS.contains(t.full_gpu_s));
                assert!(migbench::catalog::Catalog::builtin()
                    .gpu(&t.reference_gpu)
                    .is_ok());
            }
        }
        if let Some(load) = s.load_for(v) {
            for x in [
                Some(load.burstiness),
                Some(load.timeout_s),
                load.rate,
                load.duration_s,
            ] {
                assert!(x.is_none_or(|x| x.is_finite() && x > 0.0), "load {load:?}");
            }
            assert!((0.0..1.0).contains(&load.range_ratio));
        }
        if let Some(layout) = s.layout(v) {
            assert!(!layout.instances.is_empty());
        }
    }
}

#[test]
fn scenario_mutants_load_or_are_refused_and_what_loads_is_sane() {
    let seeds = seeds();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let (accepted, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner
        .run(&(0..seeds.len(), mutation()), |(seed, m)| {
            let (path, text) = &seeds[seed];
            let mutant = apply(text, &m);
            match Scenario::parse(path, mutant) {
                Ok(s) => {
                    assert_sane(&s);
                    accepted.set(accepted.get() + 1);
                }
                Err(e) => {
                    prop_assert!(!e.message.is_empty());
                    prop_assert!(e.line >= 1 && e.column >= 1, "{e}");
                    // A message stays readable however long the value was.
                    prop_assert!(
                        e.message.len() < 2000,
                        "{} bytes: {}",
                        e.message.len(),
                        &e.message[..200]
                    );
                    refused.set(refused.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused) = (accepted.get(), refused.get());
    assert_eq!(accepted + refused, 2000);
    // Both outcomes happen: the mutants neither all break the file nor all miss.
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}

/// A few mutants through the real binary: exit status 0 or 2, never a crash.
#[test]
fn mutants_through_validate_exit_0_or_2() {
    let seeds = seeds();
    let dir = tempfile::tempdir().unwrap();
    let mutations = [
        Mutation::Nasty(3, 10),
        Mutation::Nasty(9, 11),
        Mutation::Nasty(12, 5),
        Mutation::Nasty(7, 19),
        Mutation::Nasty(15, 14),
        Mutation::Overlong(2, 1 << 20),
        Mutation::Delete(6),
        Mutation::Duplicate(10),
        Mutation::Truncate(14, 9),
        Mutation::Swap(4, 8),
        Mutation::Insert(60, '\0'),
        Mutation::Insert(35, '\u{202e}'),
    ];
    for (i, m) in mutations.iter().enumerate() {
        let (path, text) = &seeds[i % seeds.len()];
        let file: PathBuf = dir.path().join(Path::new(path).file_name().unwrap());
        std::fs::write(&file, apply(text, m)).unwrap();
        let out = common::migbench()
            .arg("validate")
            .arg(&file)
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(2)),
            "{m:?} on {}: {code:?}",
            path.display()
        );
        if code == Some(2) {
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(said.contains(&format!("{}:", file.display())), "{said}");
        }
    }
}
