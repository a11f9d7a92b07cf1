//! What makes two sides of a comparison different experiments rather than two runs of one: a
//! different scenario file (its sha256), backend or GPU model. A change between such sides is
//! the difference between the experiments, not a regression, so `compare` refuses them unless
//! told otherwise (`--allow-different`), and then says what differs before anything else.

use std::collections::BTreeSet;

use super::Side;
use crate::report::summary::VariantSummary;

/// The scenario files (sha256) a side's runs of `v`'s scenario and origin were run from; empty
/// for report directories written before `report.json` kept them.
fn sha256s<'a>(side: &'a Side, v: &VariantSummary) -> BTreeSet<&'a str> {
    side.runs
        .iter()
        .filter(|r| r.scenario == v.scenario && r.origin == v.origin)
        .map(|r| r.scenario_sha256.as_str())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `ab12cd34ef56` for one file, `ab12cd34ef56, 0123456789ab` for several.
fn short(shas: &BTreeSet<&str>) -> String {
    let cut: Vec<&str> = shas.iter().map(|s| &s[..s.len().min(12)]).collect();
    cut.join(", ")
}

/// What differs between the variants matched by name, one line per scenario and kind of
/// difference, in the order found.
pub fn differences(
    pairs: &[(&VariantSummary, &VariantSummary)],
    b: &Side,
    c: &Side,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |line: String| {
        if !out.contains(&line) {
            out.push(line);
        }
    };
    for (vb, vc) in pairs {
        let scenario = &vb.scenario;
        if vb.origin.gpu_model != vc.origin.gpu_model {
            add(format!(
                "{scenario}: GPU model {} ({}) in the baseline, {} ({}) in the candidate",
                vb.origin.gpu_model, vb.origin.gpu, vc.origin.gpu_model, vc.origin.gpu
            ));
        }
        if vb.origin.backend != vc.origin.backend {
            add(format!(
                "{scenario}: backend {} in the baseline, {} in the candidate",
                vb.origin.backend, vc.origin.backend
            ));
        }
        let (sb, sc) = (sha256s(b, vb), sha256s(c, vc));
        if !sb.is_empty() && !sc.is_empty() && sb != sc {
            add(format!(
                "{scenario}: scenario file sha256 {} in the baseline, {} in the candidate",
                short(&sb),
                short(&sc)
            ));
        }
    }
    out
}
