//! `migbench discover --check-catalog`: the driver's own profile tables (`nvidia-smi mig -lgip`
//! and `-lgipp`) against the catalog's, so that a driver that names or sizes a profile otherwise
//! (names and GiB change between drivers: docs/mig.md), or a catalog row that is wrong, shows up
//! before a run relies on it.
//!
//! Profiles are matched by ID, never by name. Compared: the name (a catalog alias counts as the
//! name, and so does another name for the same profile, [`same_profile_name`]; either is
//! reported as a [`DriverName`], not a difference), how many instances an empty GPU holds (`-lgip`'s Total, not its Free, which depends on
//! what exists now), memory in GiB as printed, SMs, the five engine counts, and the placements
//! (start slices and size, from `-lgipp`).

use serde::Serialize;

use super::commands;
use super::exec;
use super::smi_parse::{self, ListedGiProfile, ListedPlacements};
use crate::catalog::{GiProfile, GpuModel, Variant};
use crate::error::{Error, Result};

/// One way the driver's tables differ from the catalog's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The profile as the catalog names it, with its ID: `3g.40gb (ID 9)`.
    pub profile: String,
    /// The catalog's column (`name`, `instances`, `memory_gib`, `engines.dec`, `placements`, ...);
    /// `profile` for a profile only one side has.
    pub field: String,
    /// What the catalog says.
    pub catalog: String,
    /// What the driver says.
    pub driver: String,
    /// The catalog's own caveat on that value (`assumed: ...`, `uncertain: ...`), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

/// A profile the driver names otherwise than the catalog, and why that name is accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriverName {
    /// The profile as the catalog names it, with its ID: `3g.40gb (ID 9)`.
    pub profile: String,
    /// The name the driver used.
    pub driver: String,
    /// `alias` (a name the catalog records) or `same ID, slices and size`.
    pub accepted_as: String,
}

/// What the driver's tables say against the catalog's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    pub differences: Vec<Difference>,
    /// Profiles the driver names otherwise, each accepted as the catalog's.
    pub names: Vec<DriverName>,
}

/// Whether a driver's `name` for profile `p` (same ID) is another name for it: drivers and board
/// revisions rename profiles (`1g.24gb` became `1g.23gb` on the GB200, `3g.40gb` prints as
/// `3g.39gb` on drivers 535/545; docs/mig.md). It is when it has the same compute slices and
/// variant suffix, the memory slices `-lgipp` gives (`size`, when listed) are the catalog's, and
/// its GB differ from the catalog name's by rounding only: 1 GB, or 3 % of the larger (the
/// GB200's `7g.189gb` for `7g.186gb`).
pub fn same_profile_name(p: &GiProfile, name: &str, size: Option<u8>) -> bool {
    let shape = |n: &str| -> Option<(u32, u32, Variant)> {
        let variant = Variant::of_name(n)?;
        let base = &n[..n.len() - variant.suffix().len()];
        let (g, gb) = base.split_once('.')?;
        let g = g.strip_suffix('g')?.parse().ok()?;
        let gb = gb.strip_suffix("gb")?.parse().ok()?;
        Some((g, gb, variant))
    };
    let (Some((g, gb, variant)), Some((cg, cgb, cvariant))) = (shape(name), shape(&p.name)) else {
        return false;
    };
    let rounding = 1.max(gb.max(cgb) * 3 / 100);
    g == cg
        && g == u32::from(p.compute_slices)
        && variant == cvariant
        && size.is_none_or(|s| s == p.memory_slices)
        && gb.abs_diff(cgb) <= rounding
}

/// Reads GPU `index`'s profile tables from `nvidia-smi` (or `$MIGBENCH_NVIDIA_SMI`) and compares
/// them with `model`. MIG mode must be on: nvidia-smi lists profiles only then.
pub fn check_gpu(index: u32, model: &GpuModel) -> Result<Comparison> {
    let list = |flag: &str| {
        let args = ["mig".to_string(), flag.to_string()];
        let text = exec::list(&commands::smi(
            index,
            &args,
            format!("list the MIG profiles (`nvidia-smi mig {flag}`)"),
            false,
        ))?;
        Ok::<_, Error>(text)
    };
    let unreadable = |flag: &str, e: smi_parse::ParseError| {
        Error::Harness(format!(
            "cannot read `nvidia-smi mig -i {index} {flag}`: {e}"
        ))
    };
    let mut profiles = smi_parse::parse_gpu_instance_profiles(&list("-lgip")?)
        .map_err(|e| unreadable("-lgip", e))?;
    let mut placements =
        smi_parse::parse_placements(&list("-lgipp")?).map_err(|e| unreadable("-lgipp", e))?;
    profiles.retain(|p| p.gpu == index);
    placements.retain(|p| p.gpu == index);
    Ok(compare(model, &profiles, &placements))
}

/// What differs between `model`'s profiles and those the driver listed, in catalog order (then
/// the driver's profiles the catalog lacks), and the other names the driver used.
pub fn compare(
    model: &GpuModel,
    listed: &[ListedGiProfile],
    placements: &[ListedPlacements],
) -> Comparison {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for p in &model.profiles {
        let placed = placements.iter().find(|pl| pl.profile_id == p.id);
        let mut differ = |field: &str, catalog: String, driver: String| {
            if catalog != driver {
                out.push(Difference {
                    profile: format!("{} (ID {})", p.name, p.id),
                    field: field.to_string(),
                    catalog,
                    driver,
                    caveat: caveat(model, p, field),
                });
            }
        };
        let Some(l) = listed.iter().find(|l| l.id == p.id) else {
            differ("profile", "listed".into(), "not listed by -lgip".into());
            continue;
        };
        let accepted_as = if l.name == p.name {
            None
        } else if p.aliases.contains(&l.name) {
            Some("alias")
        } else if same_profile_name(p, &l.name, placed.map(|pl| pl.size)) {
            Some("same ID, slices and size")
        } else {
            differ("name", p.name.clone(), l.name.clone());
            None
        };
        if let Some(why) = accepted_as {
            names.push(DriverName {
                profile: format!("{} (ID {})", p.name, p.id),
                driver: l.name.clone(),
                accepted_as: why.to_string(),
            });
        }
        differ("instances", p.instances.to_string(), l.total.to_string());
        differ(
            "memory_gib",
            format!("{:.2}", p.memory_gib),
            format!("{:.2}", l.memory_gib),
        );
        differ("sm", p.sm.to_string(), l.sm.to_string());
        let e = &p.engines;
        for (field, catalog, driver) in [
            ("engines.ce", e.ce, l.ce),
            ("engines.dec", e.dec, l.dec),
            ("engines.enc", e.enc, l.enc),
            ("engines.jpg", e.jpg, l.jpg),
            ("engines.ofa", e.ofa, l.ofa),
        ] {
            differ(field, catalog.to_string(), driver.to_string());
        }
        let slices = |starts: &[u8], size: u8| {
            let starts: Vec<String> = starts.iter().map(u8::to_string).collect();
            format!("{{{}}}:{size}", starts.join(","))
        };
        let driver = placed.map_or("not listed by -lgipp".into(), |pl| {
            slices(&pl.starts, pl.size)
        });
        differ("placements", slices(&p.placements, p.memory_slices), driver);
    }
    for l in listed {
        if !model.profiles.iter().any(|p| p.id == l.id) {
            out.push(Difference {
                profile: format!("{} (ID {})", l.name, l.id),
                field: "profile".into(),
                catalog: "not in the catalog".into(),
                driver: "listed".into(),
                caveat: None,
            });
        }
    }
    Comparison {
        differences: out,
        names,
    }
}

/// The catalog's caveats on `field` of profile `p` (those on all its rows, and those on a whole
/// column such as `engines` that `field` is part of, included), joined.
fn caveat(model: &GpuModel, p: &GiProfile, field: &str) -> Option<String> {
    let notes: Vec<String> = model
        .caveats
        .iter()
        .filter(|c| {
            let column = c.field == field || field.starts_with(&format!("{}.", c.field));
            column && c.profile.as_ref().is_none_or(|name| *name == p.name)
        })
        .map(|c| format!("{}: {}", c.kind.label(), c.note))
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    // `nvidia-smi mig -lgip` on an H100 80GB HBM3 as the talk T shows it: four of the seven
    // profiles; `-lgipp` on an A100 80GB from the Seeweb guide S, which the user guide gives for
    // the H100 80GB too (docs/nvidia-smi.md).
    use crate::backend::nvml::smi_parse::tests::{LGIPP_A100 as S_LGIPP, LGIP_H100 as T_H100_LGIP};

    fn h100() -> &'static GpuModel {
        Catalog::builtin().gpu("h100-80gb").unwrap()
    }

    fn check(model: &GpuModel, lgip: &str, lgipp: &str) -> Vec<Difference> {
        compared(model, lgip, lgipp).differences
    }

    fn compared(model: &GpuModel, lgip: &str, lgipp: &str) -> Comparison {
        compare(
            model,
            &smi_parse::parse_gpu_instance_profiles(lgip).unwrap(),
            &smi_parse::parse_placements(lgipp).unwrap(),
        )
    }

    #[test]
    fn the_talks_h100_rows_agree_with_the_catalog_and_the_missing_rows_are_named() {
        let diffs = check(h100(), T_H100_LGIP, S_LGIPP);
        // The four rows T shows match value for value; the three it left out are reported.
        let missing: Vec<&str> = diffs.iter().map(|d| d.profile.as_str()).collect();
        assert_eq!(
            missing,
            ["1g.20gb (ID 15)", "2g.20gb (ID 14)", "4g.40gb (ID 5)"],
            "{diffs:#?}"
        );
        assert!(diffs
            .iter()
            .all(|d| d.field == "profile" && d.driver == "not listed by -lgip"));
    }

    #[test]
    fn a_renamed_resized_profile_and_a_moved_placement_are_each_one_difference() {
        // A driver that names 3g "3g.39gb" with 39.25 GiB (as drivers 535/545 do on the A100,
        // docs/mig.md), and a 1g placement the catalog does not have.
        let lgip = T_H100_LGIP.replace(
            "MIG 3g.40gb        9     2/2        39.50",
            "MIG 3g.39gb        9     2/2        39.25",
        );
        let lgipp = S_LGIPP.replace(
            "ID 19 Placements: {0,1,2,3,4,5,6}:1",
            "ID 19 Placements: {0,1,2,3,4,5,6,7}:1",
        );
        let found = compared(h100(), &lgip, &lgipp);
        let diffs = &found.differences;
        let about = |field: &str| {
            diffs
                .iter()
                .find(|d| d.field == field)
                .unwrap_or_else(|| panic!("no {field} difference in {diffs:#?}"))
        };
        // The name agrees on ID, slices and size (39 against 40 GB): accepted, and said.
        assert!(diffs.iter().all(|d| d.field != "name"), "{diffs:#?}");
        assert_eq!(
            found.names,
            [DriverName {
                profile: "3g.40gb (ID 9)".into(),
                driver: "3g.39gb".into(),
                accepted_as: "same ID, slices and size".into(),
            }]
        );
        assert_eq!(
            (
                about("memory_gib").catalog.as_str(),
                about("memory_gib").driver.as_str()
            ),
            ("39.50", "39.25")
        );
        assert_eq!(about("placements").profile, "1g.10gb (ID 19)");
        assert_eq!(about("placements").catalog, "{0,1,2,3,4,5,6}:1");
        assert_eq!(about("placements").driver, "{0,1,2,3,4,5,6,7}:1");
        // Besides those: only the three rows T's table leaves out.
        assert_eq!(diffs.len(), 2 + 3, "{diffs:#?}");
    }

    #[test]
    fn a_name_of_another_shape_is_a_difference() {
        // Same ID, but other compute slices, another size, or another variant: not a renaming.
        for other in ["2g.40gb", "3g.80gb", "3g.40gb-me"] {
            let lgip = T_H100_LGIP.replace(
                "MIG 3g.40gb        9     2/2",
                &format!("MIG {other:<11}9     2/2"),
            );
            let found = compared(h100(), &lgip, S_LGIPP);
            let name = found.differences.iter().find(|d| d.field == "name");
            assert_eq!(
                name.map(|d| (d.catalog.as_str(), d.driver.as_str())),
                Some(("3g.40gb", other)),
                "{found:#?}"
            );
            assert!(found.names.is_empty(), "{found:#?}");
        }
        // A -lgipp size other than the catalog's refuses the name too.
        let p = h100().profile("9").unwrap();
        assert!(same_profile_name(p, "3g.39gb", Some(4)));
        assert!(!same_profile_name(p, "3g.39gb", Some(3)));
        // Rounding: the GB200's names of earlier boards (docs/mig.md).
        let gb200 = Catalog::builtin().gpu("gb200-186gb").unwrap();
        let p = gb200.profile("0").unwrap();
        assert!(same_profile_name(p, "7g.189gb", None));
        assert!(!same_profile_name(p, "7g.200gb", None));
    }

    #[test]
    fn a_profile_only_the_driver_lists_is_reported() {
        let lgip = format!(
            "{T_H100_LGIP}|   0  MIG 2g.20gb+me    99     1/1        19.62      No     32     2     0   |\n\
             |                                                             2     2     1   |\n"
        );
        let diffs = check(h100(), &lgip, S_LGIPP);
        let extra = diffs
            .iter()
            .find(|d| d.profile == "2g.20gb+me (ID 99)")
            .unwrap();
        assert_eq!(extra.catalog, "not in the catalog");
    }

    #[test]
    fn a_value_the_catalog_marks_uncertain_carries_its_caveat() {
        // The A30's 1g.6gb NVDEC count is uncertain in the catalog (docs/mig.md).
        let a30 = Catalog::builtin().gpu("a30-24gb").unwrap();
        let p = a30.profiles.iter().find(|p| p.name == "1g.6gb").unwrap();
        let note = caveat(a30, p, "engines.dec").expect("a caveat on the A30 1g.6gb NVDEC count");
        assert!(
            note.contains("uncertain: UG lists 0 NVDEC for 1g.6gb"),
            "{note}"
        );
        // Not another profile's.
        let p2 = a30.profiles.iter().find(|p| p.name == "2g.12gb").unwrap();
        let other = caveat(a30, p2, "engines.dec").unwrap_or_default();
        assert!(!other.contains("1g.6gb"), "{other}");
        assert_eq!(caveat(h100(), &h100().profiles[0], "sm"), None);
    }
}
