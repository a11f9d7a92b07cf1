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

// --- every MIG-capable GPU of 2026 (issue 25) -------------------------------------------------

/// Every model the MIG User Guide's "Supported GPUs" and mig-parted's default config name
/// (docs/mig.md), by key.
const MODELS_2026: &[&str] = &[
    "a100-40gb",
    "a100-80gb",
    "a800-40gb",
    "a800-80gb",
    "a30-24gb",
    "h100-80gb",
    "h100-pcie-80gb",
    "h800-80gb",
    "h800-pcie-80gb",
    "h100-94gb",
    "h800-nvl-94gb",
    "h100-96gb",
    "gh200-96gb",
    "h20-96gb",
    "h200-141gb",
    "h200-nvl-141gb",
    "gh200-144gb",
    "b200-180gb",
    "gb200-186gb",
    "b300-288gb",
    "gb300-288gb",
    "rtx-pro-6000-96gb",
    "rtx-pro-5000-48gb",
    "rtx-pro-4500-32gb",
];

#[test]
fn every_model_is_found_by_key_nvml_name_with_or_without_nvidia_and_pci_device_id() {
    let c = Catalog::builtin();
    assert_eq!(c.keys(), MODELS_2026);
    for g in c.gpus() {
        assert!(!g.source.is_empty(), "{}: no source", g.key);
        for name in &g.nvml_names {
            let short = name
                .strip_prefix("NVIDIA ")
                .expect("NVML names start with NVIDIA");
            for asked in [name.as_str(), short, &short.to_ascii_uppercase()] {
                assert_eq!(c.gpu(asked).unwrap().key, g.key, "{asked}");
            }
        }
        for id in &g.pci_device_ids {
            // As the catalog writes it, and as mig-parted's device-filter does (device, vendor).
            let filter = format!("{id}10DE");
            for asked in [id.as_str(), &id.to_ascii_lowercase(), &filter] {
                assert_eq!(c.gpu(asked).unwrap().key, g.key, "{asked}");
            }
        }
    }
    // The H100 PCIe is its own model: its 114 SMs split otherwise than the SXM's 132.
    assert_eq!(c.gpu("H100 PCIe").unwrap().sm_count, 114);
    assert_eq!(c.gpu("0x2331").unwrap().key, "h100-pcie-80gb");
    assert_eq!(c.gpu("0x233010DE").unwrap().key, "h100-80gb");
    // Another vendor's ID is not NVIDIA's device.
    assert!(c.by_pci_device_id("0x23301002").is_none());
}

#[test]
fn a_model_that_shares_a_table_has_its_profiles_and_caveats_and_its_own_figures() {
    let (h800, h100) = (gpu("h800-80gb"), gpu("h100-80gb"));
    assert_eq!(h800.profiles_from.as_deref(), Some("h100-80gb"));
    assert_eq!(h800.profile_names(), h100.profile_names());
    // Its own caveats say its figures are the H100's, not measured on an H800.
    let sm = h800.caveat(Some("3g.40gb"), "sm").unwrap();
    assert_eq!(sm.kind, CaveatKind::Assumed);
    assert!(sm.note.contains("H100 80GB"), "{}", sm.note);
    // The table's own caveats come along, marked as the other model's.
    let ci = h800.caveat(None, "compute_profiles.sm").unwrap();
    assert!(ci.note.starts_with("as on h100-80gb: "), "{}", ci.note);
    // The H200 NVL shares the H200's real rows (MP #120).
    assert_eq!(
        gpu("h200-nvl-141gb").profile("1g.18gb").unwrap().memory_gib,
        16.00
    );
}

#[test]
fn the_new_tables_match_the_reference_rows() {
    assert_rows(
        "rtx-pro-6000-96gb",
        &[
            ("1g.24gb", 14, 4, 23.62, 46, 1, 1, 1, 1, 0),
            ("1g.24gb+me", 21, 1, 23.62, 46, 1, 1, 1, 1, 1),
            ("1g.24gb+gfx", 47, 4, 23.62, 46, 1, 1, 1, 1, 0),
            ("1g.24gb+me.all", 65, 1, 23.62, 46, 1, 4, 4, 4, 1),
            ("1g.24gb-me", 67, 4, 23.62, 46, 1, 0, 0, 0, 0),
            ("2g.48gb", 5, 2, 47.38, 94, 2, 2, 2, 2, 0),
            ("2g.48gb+gfx", 35, 2, 47.38, 94, 2, 2, 2, 2, 0),
            ("2g.48gb+me.all", 64, 1, 47.38, 94, 2, 4, 4, 4, 1),
            ("2g.48gb-me", 66, 2, 47.38, 94, 2, 0, 0, 0, 0),
            ("4g.96gb", 0, 1, 95.12, 188, 4, 4, 4, 4, 1),
            ("4g.96gb+gfx", 32, 1, 95.12, 188, 4, 4, 4, 4, 1),
        ],
    );
    let rtx = gpu("rtx-pro-6000-96gb");
    assert_eq!((rtx.compute_slices, rtx.memory_slices), (4, 12));
    for (name, starts, size) in [
        ("1g.24gb", &[0, 3, 6, 9][..], 3),
        ("2g.48gb", &[0, 6][..], 6),
        ("4g.96gb", &[0][..], 12),
    ] {
        let p = rtx.profile(name).unwrap();
        assert_eq!((p.placements.as_slice(), p.memory_slices), (starts, size));
    }
    assert_memory_and_sms(
        "gb200-186gb",
        &[
            ("1g.23gb", 19, 7, 22.00, 18),
            ("1g.47gb", 15, 4, 45.50, 32),
            ("2g.47gb", 14, 3, 45.50, 38),
        ],
    );
    assert_memory_and_sms(
        "gh200-144gb",
        &[
            ("1g.18gb", 19, 7, 17.50, 16),
            ("1g.36gb", 15, 4, 35.25, 26),
            ("2g.36gb", 14, 3, 35.25, 32),
        ],
    );
    // Names drivers have used for one profile: GB200's earlier boards, B300's drivers.
    let gb200 = gpu("gb200-186gb");
    for (old, now) in [
        ("1g.24gb", "1g.23gb"),
        ("3g.95gb", "3g.93gb"),
        ("7g.189gb", "7g.186gb"),
    ] {
        assert_eq!(gb200.profile(old).unwrap().name, now);
    }
    assert_eq!(
        gpu("b300-288gb").profile("1g.35gb").unwrap().name,
        "1g.34gb"
    );
    // Where no real output exists the figures are marked, not passed off as measured.
    for key in [
        "b300-288gb",
        "h20-96gb",
        "rtx-pro-5000-48gb",
        "rtx-pro-4500-32gb",
    ] {
        let g = gpu(key);
        for field in ["memory_gib", "sm"] {
            let c = g.caveat(Some(&g.profiles[0].name), field);
            assert_eq!(
                c.map(|c| c.kind),
                Some(CaveatKind::Assumed),
                "{key} {field}"
            );
        }
    }
}

/// A GPU table of a few lines, for the rules of reading one.
fn table(extra: &str, profile: &str) -> String {
    format!(
        "key = \"x\"\nname = \"X\"\nnvml_names = [\"NVIDIA X\"]\nmemory_mib = 1024\nsm_count = 8\n\
         compute_slices = 1\nmemory_slices = 1\nsource = \"test\"\n{extra}\n{profile}\n\
         [power]\nboard_w = 100\nidle_w = 10\nsource = \"test\"\n"
    )
}

const ONE_PROFILE: &str =
    "[[profiles]]\nid = 0\nname = \"1g.1gb\"\ninstances = 1\nmemory_gib = 1.0\n\
    sm = 8\ncompute_slices = 1\nmemory_slices = 1\nplacements = [0]\n\
    engines = { ce = 1, dec = 0, enc = 0, jpg = 0, ofa = 0 }\n\
    compute_profiles = [{ id = 0, name = \"1g.1gb\", compute_slices = 1, instances = 1 }]\n";

#[test]
fn bad_tables_are_refused_saying_what_is_wrong() {
    let from = |files: &[(&str, &str)]| Catalog::from_files(files).map(|_| ()).unwrap_err();
    let good = table("", ONE_PROFILE);
    assert!(Catalog::from_files(&[("x.toml", &good)]).is_ok());
    // Power: a board that draws nothing, or idles above its maximum.
    let e = from(&[("x.toml", &good.replace("board_w = 100", "board_w = 0"))]);
    assert!(
        e.contains("power.board_w = 0: a board draws 1 to 5000 W"),
        "{e}"
    );
    let e = from(&[("x.toml", &good.replace("idle_w = 10", "idle_w = 150"))]);
    assert!(
        e.contains("power.idle_w = 150: from 0 to below board_w (100)"),
        "{e}"
    );
    // A suffix the variant does not say.
    let me = table(
        "",
        &ONE_PROFILE.replace(
            "name = \"1g.1gb\"\ninstances",
            "name = \"1g.1gb+me\"\ninstances",
        ),
    );
    assert!(from(&[("x.toml", &me)])
        .contains("x.toml: profile 1g.1gb+me (ID 0): its name must end in ''"));
    // profiles_from naming nothing, or given beside profiles of its own.
    let orphan = table("profiles_from = \"nope\"", "");
    assert!(from(&[("y.toml", &orphan)]).contains("y.toml: profiles_from = \"nope\" names no GPU"));
    let both = table("profiles_from = \"x\"", ONE_PROFILE).replace("key = \"x\"", "key = \"z\"");
    assert!(from(&[("x.toml", &good), ("z.toml", &both)]).contains("give one or the other"));
    // One PCI ID, or one NVML name, for two models.
    let a = table("pci_device_ids = [\"0x2330\"]", ONE_PROFILE);
    let b = a
        .replace("key = \"x\"", "key = \"y\"")
        .replace("NVIDIA X", "NVIDIA Y");
    let err = from(&[
        ("a.toml", &a),
        ("b.toml", &b.replace("0x2330", "0x233010DE")),
    ]);
    assert_eq!(err, "PCI device ID 0x2330 is given by both x and y");
    let err = from(&[
        ("a.toml", &a),
        (
            "b.toml",
            &b.replace("0x2330", "0x2331").replace("NVIDIA Y", "X"),
        ),
    ]);
    assert_eq!(err, "name x is given by both x and y");
    assert!(from(&[("a.toml", &a.replace("0x2330", "0xZZ"))])
        .contains("'0xZZ' is not a hexadecimal ID"));
    // No table at all.
    assert!(from(&[("e.toml", &table("", ""))]).contains("e.toml: no MIG profiles"));
}

#[derive(serde::Deserialize)]
struct Recorded {
    output: Vec<RecordedOutput>,
}

#[derive(serde::Deserialize)]
struct RecordedOutput {
    gpu: String,
    source: String,
    lgip: String,
    #[serde(default)]
    lgipp: String,
    not_shown: Vec<u32>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    expected: Vec<Expected>,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Expected {
    id: u32,
    field: String,
    catalog: String,
    driver: String,
}

#[test]
fn every_recorded_real_output_matches_its_catalog_entry() {
    use migbench::backend::nvml::{catalog_check, smi_parse};
    let text = include_str!("data/nvidia-smi-outputs.toml");
    let recorded: Recorded = toml::from_str(text).unwrap();
    assert!(recorded.output.len() >= 7);
    for out in &recorded.output {
        let g = gpu(&out.gpu);
        let why = format!("{} from {}", out.gpu, out.source);
        let listed = smi_parse::parse_gpu_instance_profiles(&out.lgip).unwrap();
        let placed = smi_parse::parse_placements(&out.lgipp).unwrap();
        assert!(!listed.is_empty(), "{why}");
        let found = catalog_check::compare(g, &listed, &placed);
        let id_of = |profile: &str| {
            g.profiles
                .iter()
                .find(|p| profile.starts_with(&format!("{} (ID", p.name)))
                .unwrap()
                .id
        };
        let mut missing = Vec::new();
        let mut other = Vec::new();
        for d in &found.differences {
            let id = id_of(&d.profile);
            match (d.field.as_str(), d.driver.as_str()) {
                ("profile", "not listed by -lgip") => missing.push(id),
                // -lgipp recorded for some profiles only (or none): the rest are not compared.
                ("placements", "not listed by -lgipp") => {}
                _ => other.push(Expected {
                    id,
                    field: d.field.clone(),
                    catalog: d.catalog.clone(),
                    driver: d.driver.clone(),
                }),
            }
            // Every difference the source shows is one the catalog already calls uncertain.
            if d.field != "profile" && d.field != "placements" {
                assert!(
                    d.caveat.as_deref().is_some_and(|c| c.contains("uncertain")),
                    "{why}: {d:?}"
                );
            }
        }
        assert_eq!(missing, out.not_shown, "{why}");
        assert_eq!(other, out.expected, "{why}");
        let names: Vec<&str> = found.names.iter().map(|n| n.driver.as_str()).collect();
        assert_eq!(names, out.names, "{why}");
    }
}
