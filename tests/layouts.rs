//! The layout engine: validation, placement, enumeration and waste figures.

use migbench::catalog::{Catalog, GpuModel};
use migbench::layout::{enumerate, EnumerateOptions, InstanceSpec, Layout, LayoutError};
use proptest::prelude::*;

fn gpu(key: &str) -> &'static GpuModel {
    Catalog::builtin().gpu(key).unwrap()
}

fn specs(text: &str) -> Vec<InstanceSpec> {
    text.split(',').map(|s| s.parse().unwrap()).collect()
}

fn build(key: &str, text: &str) -> Result<Layout<'static>, LayoutError> {
    Layout::build(gpu(key), &specs(text))
}

fn placed(layout: &Layout) -> Vec<(String, u8)> {
    layout
        .instances
        .iter()
        .map(|i| (i.profile.name.clone(), i.start))
        .collect()
}

#[test]
fn valid_layout_gets_placements_largest_first() {
    // UG's 3-2-1-1 example: created as -cgi 9,19,14,19, it ends up 1g@0 1g@1 2g@2 3g@4.
    let l = build("h100-80gb", "1g.10gb,1g.10gb,2g.20gb,3g.40gb").unwrap();
    let order: Vec<u32> = l.creation_order().iter().map(|i| i.profile.id).collect();
    assert_eq!(order, [9, 14, 19, 19]);
    assert_eq!(l.figures().compute_slices_unused, 0);
    // Whatever placements were chosen, they are allowed and disjoint.
    let mut used = 0u16;
    for i in &l.instances {
        assert!(i.profile.placements.contains(&i.start));
        assert_eq!(used & i.mask(), 0);
        used |= i.mask();
    }
}

#[test]
fn explicit_placements_are_kept() {
    let l = build("h100-80gb", "3g.40gb@4,1g.10gb@0,1g.10gb@1,2g.20gb@2").unwrap();
    assert_eq!(
        placed(&l),
        [
            ("1g.10gb".into(), 0),
            ("1g.10gb".into(), 1),
            ("2g.20gb".into(), 2),
            ("3g.40gb".into(), 4)
        ]
    );
}

#[test]
fn placement_does_not_depend_on_the_order_written() {
    // Placing 3g.40gb first at slice 0 would leave 4g.40gb (only ever at 0) no room.
    let l = build("h100-80gb", "3g.40gb,4g.40gb").unwrap();
    assert_eq!(placed(&l), [("4g.40gb".into(), 0), ("3g.40gb".into(), 4)]);
    // Around a fixed instance: 1g.10gb@2 pushes 2g.20gb to 0 or 4 and 3g.40gb to 4.
    let l = build("h100-80gb", "2g.20gb,1g.10gb@2,3g.40gb").unwrap();
    assert_eq!(
        placed(&l),
        [
            ("2g.20gb".into(), 0),
            ("1g.10gb".into(), 2),
            ("3g.40gb".into(), 4)
        ]
    );
}

#[test]
fn overlapping_placements_are_rejected_naming_both() {
    let err = build("h100-80gb", "4g.40gb@0,2g.20gb@2").unwrap_err();
    assert!(
        matches!(
            err,
            LayoutError::Overlap {
                first: 1,
                second: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "instances 1 (4g.40gb@0) and 2 (2g.20gb@2) overlap in memory slices {2,3}"
    );
}

#[test]
fn wrong_start_lists_the_allowed_placements() {
    let err = build("h100-80gb", "3g.40gb@2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "instance 1 (3g.40gb@2): 3g.40gb cannot start at memory slice 2; allowed placements: {0,4}:4"
    );
}

#[test]
fn too_many_instances_of_a_profile() {
    let err = build("h100-80gb", "3g.40gb,3g.40gb,3g.40gb").unwrap_err();
    assert_eq!(
        err,
        LayoutError::TooMany {
            profile: "3g.40gb".into(),
            count: 3,
            max: 2,
            gpu: "h100-80gb".into()
        }
    );
}

#[test]
fn media_extensions_at_most_once() {
    // A30 has two +me profiles; a GPU has one set of media engines.
    let err = build("a30-24gb", "1g.6gb+me,2g.12gb+me").unwrap_err();
    assert!(
        matches!(
            err,
            LayoutError::MediaEngines {
                first: 1,
                second: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(build("h100-80gb", "1g.10gb+me,1g.10gb,3g.40gb").is_ok());
}

#[test]
fn no_room_names_the_instance_and_the_free_slices() {
    let err = build("h100-80gb", "4g.40gb,3g.40gb,1g.10gb").unwrap_err();
    match &err {
        LayoutError::NoRoom { index, free, .. } => {
            assert_eq!(*index, 3);
            assert_eq!(free, "none");
        }
        other => panic!("expected NoRoom, got {other:?}"),
    }
    let err = build("h100-80gb", "2g.20gb@2,4g.40gb").unwrap_err();
    assert_eq!(
        err.to_string(),
        "instance 2 (4g.40gb) does not fit beside the others: 4g.40gb needs 4 memory slices at one of {0}:4, and the free slices are {0,1,4,5,6,7}"
    );
}

#[test]
fn compute_instance_splits_are_checked() {
    let gpu = gpu("h100-80gb");
    let split = |cis: &[&str]| {
        Layout::build(
            gpu,
            &[InstanceSpec {
                profile: "3g.40gb".into(),
                start: None,
                compute: cis.iter().map(|s| s.to_string()).collect(),
            }],
        )
    };
    let ok = split(&["1c.3g.40gb", "2c.3g.40gb"]).unwrap();
    assert_eq!(ok.instances[0].compute.len(), 2);
    assert!(ok.instances[0].is_split());
    assert_eq!(ok.to_string(), "3g.40gb@0(1c.3g.40gb+2c.3g.40gb)");

    let err = split(&["2c.3g.40gb", "2c.3g.40gb"]).unwrap_err();
    assert!(
        matches!(
            err,
            LayoutError::TooManyComputeInstances {
                count: 2,
                max: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let err = split(&["1c.3g.40gb", "1c.3g.40gb", "2c.3g.40gb"]).unwrap_err();
    assert!(
        matches!(
            err,
            LayoutError::ComputeSplitTooLarge {
                needed: 4,
                available: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let err = split(&["4c.7g.80gb"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("allowed: 1c.3g.40gb, 2c.3g.40gb, 3g.40gb"),
        "{err}"
    );
}

#[test]
fn unknown_profile_lists_the_allowed_ones() {
    let err = build("h100-80gb", "3g.40gb,5g.50gb").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("instance 2 (5g.50gb): unknown MIG profile '5g.50gb' on h100-80gb"),
        "{text}"
    );
    assert!(
        text.contains("allowed: 1g.10gb, 1g.10gb+me, 1g.20gb"),
        "{text}"
    );
}

#[test]
fn layout_specs_deserialize_from_short_and_table_forms() {
    #[derive(serde::Deserialize)]
    struct Doc {
        layout: Vec<InstanceSpec>,
    }
    let doc: Doc = toml::from_str(
        r#"layout = ["3g.40gb", "1g.10gb@6", { profile = "2g.20gb", start = 4, compute = ["1c.2g.20gb", "1c.2g.20gb"] }]"#,
    )
    .unwrap();
    let l = Layout::build(gpu("h100-80gb"), &doc.layout).unwrap();
    assert_eq!(
        l.to_string(),
        "3g.40gb@0, 2g.20gb@4(1c.2g.20gb+1c.2g.20gb), 1g.10gb@6"
    );
    assert!(toml::from_str::<Doc>(r#"layout = ["3g.40gb@x"]"#).is_err());
}

const DOCUMENTED: &str = "1g.10gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb";

fn enumerate_with(key: &str, profiles: &str, full_only: bool) -> Vec<Layout<'static>> {
    let g = gpu(key);
    let profiles = profiles.split(',').map(|p| g.profile(p).unwrap()).collect();
    enumerate(
        g,
        &EnumerateOptions {
            profiles: Some(profiles),
            full_only,
        },
    )
}

#[test]
fn h100_has_the_19_configurations_nvidia_documents() {
    let layouts = enumerate_with("h100-80gb", DOCUMENTED, false);
    let mut rows: Vec<String> = layouts
        .iter()
        .map(|l| {
            l.instances
                .iter()
                .map(|i| i.profile.compute_slices.to_string())
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rows.sort();
    // UG's table of placed configurations, as compute slices from slice 0 upwards.
    let mut documented = vec![
        "7",
        "4+3",
        "4+2+1",
        "4+1+1+1",
        "3+3",
        "3+2+1",
        "3+1+1+1",
        "2+2+3",
        "2+1+1+3",
        "1+1+2+3",
        "1+1+1+1+3",
        "2+2+2+1",
        "2+1+1+2+1",
        "1+1+2+2+1",
        "1+1+1+1+2+1",
        "2+2+1+1+1",
        "2+1+1+1+1+1",
        "1+1+2+1+1+1",
        "1+1+1+1+1+1+1",
    ];
    documented.sort();
    assert_eq!(rows, documented);
    // The same geometry holds on the other 7-slice GPUs.
    for key in ["a100-80gb", "h200-141gb", "b200-180gb"] {
        // The documented profiles by geometry (compute, memory slices), whatever their names.
        let names: Vec<&str> = [(1, 1), (2, 2), (3, 4), (4, 4), (7, 8)]
            .iter()
            .map(|&(c, m)| {
                let p = gpu(key).profiles.iter().find(|p| {
                    (p.compute_slices, p.memory_slices) == (c, m) && p.variant.is_plain()
                });
                p.unwrap().name.as_str()
            })
            .collect();
        assert_eq!(
            enumerate_with(key, &names.join(","), false).len(),
            19,
            "{key}"
        );
    }
}

#[test]
fn full_only_keeps_layouts_without_unused_slices() {
    let full = enumerate_with("h100-80gb", DOCUMENTED, true);
    let summaries: Vec<String> = full.iter().map(|l| l.summary()).collect();
    assert_eq!(
        summaries,
        [
            "7g.80gb",
            "4g.40gb + 3g.40gb",
            "3g.40gb + 2g.20gb + 2g.20gb",
            "3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb",
            "3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb",
            "3g.40gb + 1g.10gb + 1g.10gb + 1g.10gb + 1g.10gb",
        ]
    );
    // With the double-memory 1g profile, 6 × 1g.10gb + 1g.20gb uses everything (T).
    let full = enumerate_with("h100-80gb", "1g.10gb,1g.20gb", true);
    assert_eq!(
        full.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
        ["1g.10gb@0, 1g.10gb@1, 1g.10gb@2, 1g.10gb@3, 1g.10gb@4, 1g.10gb@5, 1g.20gb@6"]
    );
}

#[test]
fn waste_figures_of_the_layouts_the_reference_discusses() {
    // T: 2 × 3g.40gb on H100 = 120 of 132 SMs, one compute slice unused, all memory used.
    let f = build("h100-80gb", "3g.40gb,3g.40gb").unwrap().figures();
    assert_eq!((f.compute_slices_used, f.compute_slices_unused), (6, 1));
    assert_eq!((f.memory_slices_used, f.memory_slices_unused), (8, 0));
    assert_eq!((f.sm_available, f.sm_total), (120, 132));
    assert_eq!(f.memory_gib_available, 79.0);

    // T: 7 × 1g.10gb uses all compute but leaves one 10 GB memory slice unused.
    let f = build("h100-80gb", &["1g.10gb"; 7].join(","))
        .unwrap()
        .figures();
    assert_eq!(
        (
            f.compute_slices_unused,
            f.memory_slices_unused,
            f.sm_available
        ),
        (0, 1, 112)
    );
    assert!((f.memory_gib_available - 68.25).abs() < 1e-9);

    // T: 6 × 1g.10gb + 1 × 1g.20gb uses everything.
    let f = build(
        "h100-80gb",
        "1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.20gb",
    )
    .unwrap()
    .figures();
    assert_eq!(f.slices_unused(), 0);

    // The whole GPU as one instance.
    let f = build("h100-80gb", "7g.80gb").unwrap().figures();
    assert_eq!((f.sm_available, f.slices_unused()), (132, 0));
}

#[test]
fn enumeration_ranks_best_first() {
    let layouts = enumerate_with("h100-80gb", DOCUMENTED, false);
    assert_eq!(layouts[0].to_string(), "7g.80gb@0");
    assert_eq!(layouts[1].to_string(), "4g.40gb@0, 3g.40gb@4");
    let last = layouts.last().unwrap().figures();
    assert_eq!(
        last.compute_slices_unused, 1,
        "3+3 and kin leave a compute slice unused and come last"
    );
    for pair in layouts.windows(2) {
        let (a, b) = (pair[0].figures(), pair[1].figures());
        assert!(
            (a.compute_slices_unused, a.memory_slices_unused)
                <= (b.compute_slices_unused, b.memory_slices_unused)
        );
    }
}

fn any_gpu() -> impl Strategy<Value = &'static GpuModel> {
    let gpus = Catalog::builtin().gpus();
    (0..gpus.len()).prop_map(move |i| &gpus[i])
}

proptest! {
    /// Every enumerated layout is valid, maximal, and can be rebuilt from its profiles alone
    /// (placements dropped), which is what a scenario without starts relies on.
    #[test]
    fn enumerated_layouts_are_valid_and_rebuildable(gpu in any_gpu(), pick in any::<prop::sample::Index>()) {
        let layouts = enumerate(gpu, &EnumerateOptions::default());
        prop_assert!(!layouts.is_empty());
        let layout = &layouts[pick.index(layouts.len())];
        let pinned = Layout::build(gpu, &layout.specs()).unwrap();
        prop_assert_eq!(pinned.to_string(), layout.to_string());
        let unplaced: Vec<InstanceSpec> = layout.specs().into_iter().map(|s| InstanceSpec { start: None, ..s }).collect();
        let rebuilt = Layout::build(gpu, &unplaced).unwrap();
        prop_assert_eq!(rebuilt.figures(), layout.figures());
        // Maximal: adding any non-+me profile breaks it.
        for p in gpu.profiles.iter().filter(|p| p.variant.is_plain()) {
            let mut more = layout.specs();
            more.push(InstanceSpec { profile: p.name.clone(), start: None, compute: vec![] });
            prop_assert!(Layout::build(gpu, &more).is_err(), "{} + {} should not fit", layout, p.name);
        }
    }
}

// --- a 12-unit grid and profile variants (RTX PRO 6000 Blackwell; docs/mig.md) -----------------

#[test]
fn rtx_pro_instances_are_placed_on_its_12_unit_grid() {
    let l = build("rtx-pro-6000-96gb", "1g.24gb,2g.48gb,1g.24gb").unwrap();
    assert_eq!(
        placed(&l),
        [
            ("2g.48gb".into(), 0),
            ("1g.24gb".into(), 6),
            ("1g.24gb".into(), 9)
        ]
    );
    let f = l.figures();
    assert_eq!((f.compute_slices_unused, f.memory_slices_unused), (0, 0));
    assert_eq!(f.sm_available, 46 + 94 + 46);
    // Starts are units of the grid: a 1g starts at 0, 3, 6 or 9 only.
    assert_eq!(
        build("rtx-pro-6000-96gb", "1g.24gb@1").unwrap_err().to_string(),
        "instance 1 (1g.24gb@1): 1g.24gb cannot start at memory slice 1; allowed placements: {0,3,6,9}:3"
    );
    let err = build("rtx-pro-6000-96gb", "4g.96gb,1g.24gb").unwrap_err();
    assert!(
        matches!(err, LayoutError::NoRoom { index: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn variants_keep_the_media_engine_rules() {
    let key = "rtx-pro-6000-96gb";
    // +me.all holds every media engine: only -me instances beside it.
    assert!(build(key, "1g.24gb+me.all,1g.24gb-me,2g.48gb-me").is_ok());
    for other in ["1g.24gb", "1g.24gb+gfx", "2g.48gb"] {
        let err = build(key, &format!("1g.24gb+me.all,{other}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "instances 1 (1g.24gb+me.all) and 2 ({other}) cannot be together: a +me.all \
                 instance holds every media engine, so only -me instances fit beside it"
            )
        );
    }
    // One set of media extensions: +me and +me.all exclude each other too.
    let err = build(key, "2g.48gb+me.all,1g.24gb+me").unwrap_err();
    assert!(
        matches!(
            err,
            LayoutError::MediaEngines {
                first: 1,
                second: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // +gfx and -me mix freely with plain instances.
    assert!(build(key, "1g.24gb+gfx,1g.24gb-me,2g.48gb").is_ok());
    // Enumeration keeps the same rules: no listed layout breaks them.
    let all: Vec<_> = gpu(key).profiles.iter().collect();
    let layouts = enumerate(
        gpu(key),
        &EnumerateOptions {
            profiles: Some(all),
            full_only: false,
        },
    );
    assert!(layouts.iter().any(|l| l.to_string().contains("+me.all")));
    for l in &layouts {
        assert!(Layout::build(gpu(key), &l.specs()).is_ok(), "{l}");
    }
}

#[test]
fn rtx_pro_layouts_by_default_are_its_plain_profiles() {
    let names: Vec<String> = enumerate(gpu("rtx-pro-6000-96gb"), &EnumerateOptions::default())
        .iter()
        .map(|l| l.summary())
        .collect();
    // 4g; 2g + 2g; 2g + 1g + 1g with the 1g pair after or before the 2g; 4 × 1g.
    assert_eq!(
        names,
        [
            "4g.96gb",
            "2g.48gb + 2g.48gb",
            "2g.48gb + 1g.24gb + 1g.24gb",
            "2g.48gb + 1g.24gb + 1g.24gb",
            "1g.24gb + 1g.24gb + 1g.24gb + 1g.24gb"
        ]
    );
    // Where a variant allows more of a shape than the plain profile (RTX PRO 5000: one 1g.12gb,
    // three 1g.12gb-me; 2g only as -me), it is used by default.
    let defaults: Vec<&str> = gpu("rtx-pro-5000-48gb")
        .default_profiles()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(defaults, ["1g.12gb", "1g.12gb-me", "2g.24gb-me", "4g.48gb"]);
}

#[test]
fn every_catalog_gpu_has_a_layout_using_it_whole() {
    for g in Catalog::builtin().gpus() {
        let full = enumerate(
            g,
            &EnumerateOptions {
                profiles: None,
                full_only: true,
            },
        );
        assert!(!full.is_empty(), "{}", g.key);
    }
}
