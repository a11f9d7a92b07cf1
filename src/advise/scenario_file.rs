//! The advised configurations as a scenario file, to verify on the real GPU with `migbench run`
//! (or on the simulator with `migbench run --sim`, which must give the figures `advise` printed).

use std::fmt::Write;

use super::{Candidate, Request};
use crate::error::{Error, Result};

/// A scenario named `name` with one variant per candidate.
pub fn scenario_toml(req: &Request, name: &str, picks: &[&Candidate]) -> Result<String> {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut t = String::new();
    let names: Vec<&str> = req.mix.iter().map(|w| w.name.as_str()).collect();
    let _ = writeln!(
        t,
        "# Written by `migbench advise`: its top {} for {} x ({}) on {}, best first.\n# Verify with `migbench run` on the GPU; `migbench run --sim` reproduces advise's figures.\n",
        picks.len(),
        req.copies,
        names.join(" + "),
        req.gpu.name
    );
    let _ = writeln!(
        t,
        "[scenario]\nname = {}\ndescription = {}\nsource = \"migbench advise\"\n\n[gpu]\nmodel = {}\nindex = 0\n",
        q(name),
        q(&format!("advise's top configurations for {}", names.join(" + "))),
        q(&req.gpu.key)
    );
    for w in &req.mix {
        // A workload not shipped with migbench (a calibrated file) travels in the scenario.
        if crate::workload::find(&w.name)
            .is_ok_and(|b| toml::to_string(b).ok() == toml::to_string(w).ok())
        {
            continue;
        }
        let mut table = toml::map::Map::new();
        let value = toml::Value::try_from(w)
            .map_err(|e| Error::Harness(format!("cannot write workload {}: {e}", w.name)))?;
        table.insert(w.name.clone(), value);
        let mut outer = toml::map::Map::new();
        outer.insert("workloads".into(), toml::Value::Table(table));
        let text = toml::to_string(&toml::Value::Table(outer))
            .map_err(|e| Error::Harness(format!("cannot write workload {}: {e}", w.name)))?;
        let _ = writeln!(t, "{text}");
    }
    if let Some(load) = &req.load {
        let mut outer = toml::map::Map::new();
        let value = toml::Value::try_from(load)
            .map_err(|e| Error::Harness(format!("cannot write the load: {e}")))?;
        outer.insert("load".into(), value);
        let text = toml::to_string(&toml::Value::Table(outer))
            .map_err(|e| Error::Harness(format!("cannot write the load: {e}")))?;
        let _ = writeln!(t, "# The load on every server, from --load.\n{text}");
    }
    for c in picks {
        let _ = writeln!(t, "# {}", c.objective_text(req.objective));
        let _ = writeln!(
            t,
            "[[variants]]\nname = {}\nmode = {}",
            q(&c.name),
            q(c.mode.as_str())
        );
        if !c.layout.is_empty() {
            let layout: Vec<String> = c.layout.iter().map(|l| q(l)).collect();
            let _ = writeln!(t, "layout = [{}]", layout.join(", "));
        }
        if c.thread_percentage.is_some() || c.pinned_gib.is_some() {
            let mut mps = Vec::new();
            if let Some(p) = c.thread_percentage {
                mps.push(format!("active_thread_percentage = {p}"));
            }
            if let Some(g) = c.pinned_gib {
                mps.push(format!("pinned_memory_limit_gib = {g}"));
            }
            let _ = writeln!(t, "mps = {{ {} }}", mps.join(", "));
        }
        let groups: Vec<String> = req
            .mix
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut g = format!("{{ workload = {}, count = {}", q(&w.name), req.copies);
                // Sequential runs keep one job at a time whatever the stagger.
                let (start, every) = c.starts[i];
                if start > 0.0 {
                    let _ = write!(g, ", start_s = {start}");
                }
                if every > 0.0 && req.copies > 1 {
                    let _ = write!(g, ", stagger_s = {every}");
                }
                // vLLM preallocates its fraction of the device: shared, each takes a share.
                let flag = w
                    .sim
                    .server
                    .as_ref()
                    .and_then(|s| s.memory_fraction_flag.as_ref());
                if let (Some(Some(f)), Some(flag)) = (c.memory_fraction.get(i), flag) {
                    let _ = write!(g, ", args = [{}, {}]", q(flag), q(&f.to_string()));
                }
                if let Some(Some(slots)) = c.instances.get(i) {
                    let s: Vec<String> = slots.iter().map(usize::to_string).collect();
                    let _ = write!(g, ", instances = [{}]", s.join(", "));
                }
                g.push_str(" }");
                g
            })
            .collect();
        let _ = writeln!(t, "jobs = [\n  {},\n]\n", groups.join(",\n  "));
    }
    Ok(t)
}
