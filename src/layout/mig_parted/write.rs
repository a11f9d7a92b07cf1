//! Writing layouts as a mig-parted file (`version: v1`) that `nvidia-mig-parted apply` accepts,
//! one label each, labels made valid Kubernetes label values.

use std::collections::BTreeMap;

use super::VERSION;
use crate::layout::Layout;

/// Kubernetes label values (what the GPU operator's `nvidia.com/mig.config` takes): at most 63
/// characters of `[A-Za-z0-9._-]`, starting and ending with a letter or digit.
pub fn is_label_value(label: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    label.len() <= 63
        && edge(label.chars().next())
        && edge(label.chars().last())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A label made a Kubernetes label value: `mig+mps` → `mig-mps`.
pub fn label(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let mut s: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(63);
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The GPU operator's label for one profile on every GPU, as its default ConfigMap names them:
/// `+` becomes `.` and `-me` is kept (`1g.24gb+me.all` → `all-1g.24gb.me.all`, `1g.24gb-me` →
/// `all-1g.24gb-me`), so a `+me` and a `-me` profile never share a label.
pub fn operator_label(profile: &str) -> String {
    format!("all-{}", profile.replace('+', "."))
}

/// The `mig-devices` of a layout: each GPU instance by its profile, or its compute instances by
/// theirs when it is split, as mig-parted names MIG devices.
pub fn mig_devices(layout: &Layout) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for i in &layout.instances {
        if i.is_split() {
            for c in &i.compute {
                *counts.entry(c.name.clone()).or_insert(0) += 1;
            }
        } else {
            *counts.entry(i.profile.name.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// A label that says what a layout makes, in the GPU operator's terms: the operator's own
/// `all-1g.10gb` where every device has one profile, else each profile with its count
/// (`2x2g.10gb-1x3g.20gb`). Layouts that differ only in placements get the same label: to
/// mig-parted, which chooses placements itself, they are the same configuration.
pub fn devices_label(layout: &Layout) -> String {
    let devices = mig_devices(layout);
    match devices.keys().collect::<Vec<_>>()[..] {
        [only] => label(&[&operator_label(only)]),
        _ => {
            let parts: Vec<String> = devices
                .iter()
                .map(|(profile, count)| format!("{count}x{}", profile.replace('+', ".")))
                .collect();
            label(&parts.iter().map(String::as_str).collect::<Vec<_>>())
        }
    }
}

/// Writes `layouts` (label, layout) as a mig-parted v1 file, every label for `devices: all`.
/// Each label is preceded by a comment with its placements, which mig-parted does not keep;
/// layouts given the same label are written once, with each one's placements in the comment.
pub fn write(layouts: &[(String, Layout)], heading: &str) -> String {
    let mut out = String::new();
    for line in heading.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(
        "# nvidia-mig-parted apply -f FILE -c LABEL creates one label's MIG devices on every GPU; it\n\
         # chooses placements itself, so the placements in each comment are what migbench planned.\n",
    );
    out.push_str(&format!("version: {VERSION}\nmig-configs:\n"));
    for (n, (label, layout)) in layouts.iter().enumerate() {
        if layouts[..n].iter().any(|(earlier, _)| earlier == label) {
            continue;
        }
        for (_, same) in layouts[n..].iter().filter(|(other, _)| other == label) {
            out.push_str(&format!("  # {}: {same}\n", same.gpu.key));
        }
        out.push_str(&format!(
            "  {label}:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n"
        ));
        for (profile, count) in mig_devices(layout) {
            out.push_str(&format!("        \"{profile}\": {count}\n"));
        }
    }
    out
}
