//! The GPU catalog against the reference tables (docs/mig.md).

use migbench::catalog::{Catalog, CaveatKind, GpuModel};

fn gpu(key: &str) -> &'static GpuModel {
    Catalog::builtin().gpu(key).unwrap()
}

/// (name, id, instances, GiB, SM, CE, DEC, ENC, JPG, OFA) as the reference prints them.
type Row = (&'static str, u32, u8, f64, u32, u8, u8, u8, u8, u8);

fn assert_rows(key: &str, rows: &[Row]) {
    let g = gpu(key);
    assert_eq!(g.profiles.len(), rows.len(), "{key}: profile count");
    for &(name, id, inst, gib, sm, ce, dec, enc, jpg, ofa) in rows {
        let p = g.profile(name).unwrap_or_else(|e| panic!("{key}: {e}"));
        let e = p.engines;
        assert_eq!(
            (
                p.id,
                p.instances,
                p.memory_gib,
                p.sm,
                e.ce,
                e.dec,
                e.enc,
                e.jpg,
                e.ofa
            ),
            (id, inst, gib, sm, ce, dec, enc, jpg, ofa),
            "{key} {name}"
        );
    }
}

#[test]
fn h100_matches_the_talks_lgip_table() {
    assert_rows(
        "h100-80gb",
        &[
            ("1g.10gb", 19, 7, 9.75, 16, 1, 1, 0, 1, 0),
            ("1g.10gb+me", 20, 1, 9.75, 16, 1, 1, 0, 1, 1),
            ("1g.20gb", 15, 4, 19.62, 26, 1, 1, 0, 1, 0),
            ("2g.20gb", 14, 3, 19.62, 32, 2, 2, 0, 2, 0),
            ("3g.40gb", 9, 2, 39.50, 60, 3, 3, 0, 3, 0),
            ("4g.40gb", 5, 1, 39.50, 64, 4, 4, 0, 4, 0),
            ("7g.80gb", 0, 1, 79.25, 132, 8, 7, 0, 7, 1),
        ],
    );
    let g = gpu("h100-80gb");
    assert_eq!(
        (g.memory_mib, g.sm_count, g.compute_slices, g.memory_slices),
        (81559, 132, 7, 8)
    );
}

#[test]
fn b200_matches_the_talks_lgip_table() {
    assert_rows(
        "b200-180gb",
        &[
            ("1g.23gb", 19, 7, 20.50, 18, 2, 1, 0, 1, 0),
            ("1g.23gb+me", 20, 1, 20.50, 18, 2, 1, 0, 1, 1),
            ("1g.45gb", 15, 4, 44.25, 30, 2, 1, 0, 1, 0),
            ("2g.45gb", 14, 3, 44.25, 36, 4, 2, 0, 2, 0),
            ("3g.90gb", 9, 2, 89.00, 70, 6, 3, 0, 3, 0),
            ("4g.90gb", 5, 1, 89.00, 72, 8, 4, 0, 4, 0),
            ("7g.180gb", 0, 1, 178.50, 148, 16, 7, 0, 7, 1),
        ],
    );
    let g = gpu("b200-180gb");
    assert_eq!(g.memory_mib, 183359);
    // T: a 2g.45gb split into two 1c.2g.45gb CIs has 18 SMs each.
    let gi = g.profile("2g.45gb").unwrap();
    let ci = gi.compute_profile("1c.2g.45gb").unwrap();
    assert_eq!((ci.instances, gi.ci_sm(ci)), (2, 18));
}

/// (name, id, instances, GiB, SM) where the reference gives no engine table.
fn assert_memory_and_sms(key: &str, rows: &[(&str, u32, u8, f64, u32)]) {
    let g = gpu(key);
    for &(name, id, inst, gib, sm) in rows {
        let p = g.profile(name).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(
            (p.id, p.instances, p.memory_gib, p.sm),
            (id, inst, gib, sm),
            "{key} {name}"
        );
    }
}

#[test]
fn other_gpus_match_the_reference_figures() {
    assert_memory_and_sms(
        "a100-80gb",
        &[
            ("1g.10gb", 19, 7, 9.50, 14),
            ("1g.20gb", 15, 4, 19.50, 14),
            ("2g.20gb", 14, 3, 19.50, 28),
            ("3g.40gb", 9, 2, 39.25, 42),
            ("4g.40gb", 5, 1, 39.25, 56),
            ("7g.80gb", 0, 1, 79.00, 98),
        ],
    );
    assert_memory_and_sms(
        "a100-40gb",
        &[
            ("1g.5gb", 19, 7, 4.75, 14),
            ("2g.10gb", 14, 3, 9.62, 28),
            ("3g.20gb", 9, 2, 19.50, 42),
            ("7g.40gb", 0, 1, 39.25, 98),
        ],
    );
    assert_memory_and_sms(
        "a30-24gb",
        &[
            ("1g.6gb", 14, 4, 5.81, 14),
            ("2g.12gb", 5, 2, 11.69, 28),
            ("4g.24gb", 0, 1, 23.44, 56),
        ],
    );
    assert_memory_and_sms(
        "h100-94gb",
        &[
            ("1g.12gb", 19, 7, 10.75, 16),
            ("1g.24gb", 15, 4, 21.62, 26),
            ("2g.24gb", 14, 3, 21.62, 32),
            ("3g.47gb", 9, 2, 46.38, 60),
            ("4g.47gb", 5, 1, 46.12, 64),
            ("7g.94gb", 0, 1, 92.62, 132),
        ],
    );
    assert_memory_and_sms(
        "h200-141gb",
        &[
            ("1g.18gb", 19, 7, 16.00, 16),
            ("1g.35gb", 15, 4, 32.25, 26),
            ("2g.35gb", 14, 3, 32.25, 32),
            ("3g.71gb", 9, 2, 69.50, 60),
            ("4g.71gb", 5, 1, 69.50, 64),
            ("7g.141gb", 0, 1, 139.75, 132),
        ],
    );
}

#[test]
fn placements_match_lgipp_on_seven_slice_gpus_and_a30() {
    let expected: &[(u32, &[u8], u8)] = &[
        (19, &[0, 1, 2, 3, 4, 5, 6], 1),
        (20, &[0, 1, 2, 3, 4, 5, 6], 1),
        (15, &[0, 2, 4, 6], 2),
        (14, &[0, 2, 4], 2),
        (9, &[0, 4], 4),
        (5, &[0], 4),
        (0, &[0], 8),
    ];
    for key in [
        "a100-40gb",
        "a100-80gb",
        "h100-80gb",
        "h100-94gb",
        "h200-141gb",
        "b200-180gb",
    ] {
        for &(id, starts, size) in expected {
            let p = gpu(key).profile(&id.to_string()).unwrap();
            assert_eq!(
                (p.placements.as_slice(), p.memory_slices),
                (starts, size),
                "{key} ID {id}"
            );
        }
    }
    let a30: &[(u32, &[u8], u8)] = &[
        (14, &[0, 1, 2, 3], 1),
        (21, &[0, 1, 2, 3], 1),
        (5, &[0, 2], 2),
        (6, &[0, 2], 2),
        (0, &[0], 4),
    ];
    for &(id, starts, size) in a30 {
        let p = gpu("a30-24gb").profile(&id.to_string()).unwrap();
        assert_eq!(
            (p.placements.as_slice(), p.memory_slices),
            (starts, size),
            "a30 ID {id}"
        );
    }
}

#[test]
fn values_not_in_a_public_source_are_marked() {
    // docs/mig.md: H200 and B200 placements were not found publicly and are assumed.
    for key in ["h200-141gb", "b200-180gb"] {
        let c = gpu(key)
            .caveat(Some("3g.40gb"), "placements")
            .or_else(|| gpu(key).caveat(None, "placements"));
        assert_eq!(c.map(|c| c.kind), Some(CaveatKind::Assumed), "{key}");
    }
    assert!(gpu("h100-80gb").caveat(None, "placements").is_none());
    // docs/mig.md: the A30 1g.6gb NVDEC count differs between the UG and nvidia-smi.
    let dec = gpu("a30-24gb")
        .caveat(Some("1g.6gb"), "engines.dec")
        .unwrap();
    assert_eq!(dec.kind, CaveatKind::Uncertain);
}

#[test]
fn lookup_by_key_name_alias_and_id() {
    let c = Catalog::builtin();
    assert_eq!(c.gpu("H100-80GB").unwrap().key, "h100-80gb");
    assert_eq!(c.gpu("NVIDIA H100 80GB HBM3").unwrap().key, "h100-80gb");
    assert_eq!(
        c.by_nvml_name("NVIDIA A100-PCIE-40GB").unwrap().key,
        "a100-40gb"
    );
    let err = c.gpu("v100").unwrap_err().to_string();
    assert!(
        err.contains("'v100'") && err.contains("h100-80gb") && err.contains("b200-180gb"),
        "{err}"
    );

    let a100 = gpu("a100-80gb");
    assert_eq!(
        a100.profile("3g.39gb").unwrap().name,
        "3g.40gb",
        "driver 535 name"
    );
    assert_eq!(a100.profile("9").unwrap().name, "3g.40gb");
    assert_eq!(a100.profile("MIG 3g.40gb").unwrap().id, 9);
    let err = a100.profile("5g.50gb").unwrap_err().to_string();
    assert!(err.contains("1g.10gb") && err.contains("7g.80gb"), "{err}");
}

#[test]
fn compute_profiles_follow_the_user_guide() {
    let g = gpu("h100-80gb");
    let ids = |gi: &str| -> Vec<(u32, u8)> {
        g.profile(gi)
            .unwrap()
            .compute_profiles
            .iter()
            .map(|c| (c.id, c.instances))
            .collect()
    };
    assert_eq!(ids("3g.40gb"), [(0, 3), (1, 1), (2, 1)]);
    assert_eq!(ids("4g.40gb"), [(0, 4), (1, 2), (3, 1)]);
    assert_eq!(ids("7g.80gb"), [(0, 7), (1, 3), (2, 2), (3, 1), (4, 1)]);
    assert_eq!(ids("1g.20gb"), [(7, 1)]);
    assert_eq!(g.profile("3g.40gb").unwrap().default_compute().id, 2);
}
