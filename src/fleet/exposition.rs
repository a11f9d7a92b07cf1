//! Metric families written with the Prometheus project's client (`prometheus-client`): it owns
//! the names (`_total` on counters, the unit on the name), the escaping and the OpenMetrics text
//! format, which Prometheus scrapes and node_exporter's textfile collector reads.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::error::{Error, Result};

/// A series' labels, in the order written.
pub type Labels = Vec<(String, String)>;
pub type GaugeFamily = Family<Labels, Gauge<f64, AtomicU64>>;
pub type CounterFamily = Family<Labels, Counter<f64, AtomicU64>>;

/// The content type of the OpenMetrics text format, as a scrape is answered.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the Prometheus text format (0.0.4).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bytes in a GiB: migbench records memory in GiB, Prometheus wants bytes.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One exposition being filled: register families, set their series, encode.
#[derive(Default)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// A gauge family `name` (with `_<unit>` appended when there is one).
    pub fn gauge(&mut self, name: &str, help: &str, unit: Option<Unit>) -> GaugeFamily {
        let family = GaugeFamily::default();
        match unit {
            Some(unit) => self
                .registry
                .register_with_unit(name, help, unit, family.clone()),
            None => self.registry.register(name, help, family.clone()),
        }
        family
    }

    /// A counter family: its series are written `name_total`.
    pub fn counter(&mut self, name: &str, help: &str) -> CounterFamily {
        let family = CounterFamily::default();
        self.registry.register(name, help, family.clone());
        family
    }

    /// The OpenMetrics text, ending in `# EOF`.
    pub fn encode(&self) -> Result<String> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| Error::Harness(format!("cannot encode the metrics: {e}")))?;
        Ok(text)
    }
}

/// Sets one series of a gauge family to a finite value (a non-finite one is left out).
pub fn set(family: &GaugeFamily, labels: &[(&str, &str)], value: f64) {
    if value.is_finite() {
        family.get_or_create(&owned(labels)).set(value);
    }
}

/// Labels as the families keep them.
pub fn owned(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition, for readers that know only
/// that one (`promtool check metrics`, older scrapers): a counter family is named as its series
/// are (`x_total`), and the OpenMetrics-only `# UNIT` and `# EOF` lines go.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_counters_as_their_series() {
        let mut e = Exposition::default();
        let c = e.counter("jobs_finished", "Jobs that ended");
        c.get_or_create(&owned(&[("outcome", "ok")])).inc_by(2.0);
        set(
            &e.gauge("memory_used", "Memory", Some(Unit::Bytes)),
            &[],
            3.0 * GIB,
        );
        set(&e.gauge("never", "Left out", None), &[], f64::NAN);
        let om = e.encode().unwrap();
        assert!(om.contains("# TYPE jobs_finished counter\n"), "{om}");
        assert!(om.contains("jobs_finished_total{outcome=\"ok\"} 2"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(!om.contains("never{"), "{om}");
        let text = to_text_format(&om);
        assert!(
            text.contains("# HELP jobs_finished_total Jobs that ended"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE jobs_finished_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE memory_used_bytes gauge\n"), "{text}");
        assert!(text.contains("memory_used_bytes 3221225472"), "{text}");
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
    }
}
