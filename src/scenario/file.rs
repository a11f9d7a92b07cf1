//! A scenario file as written: the TOML's tables and keys, each with its place in the file
//! (`Spanned`) so that a check made after parsing can say where a value is wrong. Ranges that
//! need no context are checked while parsing ([`crate::bounds`]); the rest by
//! [`super::Scenario::parse`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::price;
use crate::layout::InstanceSpec;
use crate::loadgen::LoadSpec;
use crate::mode::SharingMode;
use crate::workload::Workload;

/// A scenario file as written.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub scenario: Header,
    pub gpu: GpuSpec,
    /// Workloads defined by this scenario, by name; shipped workloads need no entry.
    #[serde(default)]
    pub workloads: BTreeMap<String, Workload>,
    /// The load on every server of every variant that gives none of its own.
    #[serde(default)]
    #[schemars(with = "Option<LoadSpec>")]
    pub load: Option<Spanned<LoadSpec>>,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// The experiment this scenario reproduces, with its source.
    #[serde(default)]
    pub source: String,
    /// Simulated seconds per real second under `--sim` when `--time-scale` is not given. Serving
    /// scenarios need a lower one than batch jobs: token timings are milliseconds.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub time_scale: Option<Spanned<f64>>,
    /// The engine of container workloads that name none (docs/containers.md); `run --engine`
    /// replaces it; podman when neither is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::container::Engine>,
}

/// The GPU a scenario runs on.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Catalog key (`h100-80gb`) or NVML name.
    #[schemars(with = "String")]
    pub model: Spanned<String>,
    /// Which physical GPU on a real machine: an index or a `GPU-...` UUID. Default: index 0.
    #[serde(default, deserialize_with = "checked::index")]
    pub index: Option<u32>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Price per GPU-hour, for cost per unit in reports: a number, or a number and a currency
    /// code (`"1.89 EUR"`).
    #[serde(default)]
    #[schemars(with = "Option<price::PriceText>")]
    pub price_per_hour: Option<price::Price>,
    /// Price per kWh of the energy the GPU draws, for energy cost per unit in reports, written
    /// as `price_per_hour` is; in the same currency.
    #[serde(
        default,
        deserialize_with = "price::per_kwh",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<price::PriceText>")]
    pub price_per_kwh: Option<price::Price>,
    /// The currency (ISO 4217 code) of a bare `price_per_hour` or `price_per_kwh`; default USD.
    #[serde(default)]
    pub currency: Option<String>,
}

impl GpuSpec {
    /// The currency of the prices: a price's own code, the `currency` key, or USD (the scenario
    /// check makes every code given agree).
    pub fn currency(&self) -> &str {
        self.prices()
            .find_map(|(_, p)| p.currency.as_deref())
            .or(self.currency.as_deref())
            .unwrap_or(price::DEFAULT_CURRENCY)
    }

    /// The prices given, with their keys.
    pub fn prices(&self) -> impl Iterator<Item = (&'static str, &price::Price)> {
        [
            ("price_per_hour", self.price_per_hour.as_ref()),
            ("price_per_kwh", self.price_per_kwh.as_ref()),
        ]
        .into_iter()
        .filter_map(|(key, p)| Some((key, p?)))
    }
}

/// One way of running the jobs: a sharing mode, its setup, and the jobs.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "SharingMode")]
    pub mode: Spanned<SharingMode>,
    /// MIG layout (`mig`, `mig+mps`): a list of instances, or a label of a mig-parted file.
    #[serde(default)]
    #[schemars(with = "Option<LayoutSource>")]
    pub layout: Option<Spanned<LayoutSource>>,
    /// MPS settings (`mps`, `mig+mps`).
    #[serde(default)]
    #[schemars(with = "Option<MpsSettings>")]
    pub mps: Option<Spanned<MpsSettings>>,
    pub jobs: Vec<JobGroup>,
    /// The load on each of this variant's servers; replaces the scenario's `[load]`.
    #[serde(default)]
    #[schemars(with = "Option<LoadSpec>")]
    pub load: Option<Spanned<LoadSpec>>,
    /// How many times to run the variant.
    #[serde(default = "one", deserialize_with = "checked::repetitions")]
    pub repetitions: u32,
}

/// MPS control-daemon defaults, set before any client starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MpsSettings {
    /// `set_default_active_thread_percentage`: the share of SMs a client may use (1–100).
    #[serde(default, deserialize_with = "checked::active_thread_percentage")]
    pub active_thread_percentage: Option<u8>,
    /// `set_default_device_pinned_mem_limit`: memory one client may allocate, GiB.
    #[serde(default, deserialize_with = "checked::pinned_memory_limit_gib")]
    pub pinned_memory_limit_gib: Option<f64>,
}

/// `count` jobs of one workload.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobGroup {
    #[schemars(with = "String")]
    pub workload: Spanned<String>,
    #[serde(default = "one", deserialize_with = "checked::count")]
    pub count: u32,
    /// Seconds between the starts of successive jobs of this group (0: all at once).
    #[serde(default, deserialize_with = "checked::stagger_s")]
    pub stagger_s: f64,
    /// Seconds after the variant starts before the first job of this group.
    #[serde(default, deserialize_with = "checked::start_s")]
    pub start_s: f64,
    /// Layout instances (0-based, in layout order) these jobs may use; all when absent.
    /// Jobs queue for the first free instance when there are more jobs than instances.
    #[serde(default)]
    #[schemars(with = "Option<Vec<usize>>")]
    pub instances: Option<Spanned<Vec<usize>>>,
    /// Kills a job that runs longer; overrides the workload's timeout.
    #[serde(default, deserialize_with = "checked::timeout_s")]
    pub timeout_s: Option<f64>,
    /// Arguments appended to the workload's command for these jobs (a server's memory fraction
    /// under MPS, say: `["--gpu-memory-utilization", "0.45"]`).
    #[serde(default)]
    pub args: Vec<String>,
}

fn one() -> u32 {
    1
}

/// Where a variant's MIG layout comes from: written out (`layout = ["3g.40gb", "3g.40gb"]`) or
/// a label of an NVIDIA mig-parted file
/// (`layout = { mig_parted = "mig-parted.yaml", config = "all-balanced" }`).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum LayoutSource {
    Instances(Vec<InstanceSpec>),
    MigParted(MigPartedRef),
}

/// A layout named by a mig-parted file and label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigPartedRef {
    /// The mig-parted file (YAML, `version: v1`), relative to the scenario file.
    pub mig_parted: String,
    /// The label under `mig-configs` (what `nvidia-mig-parted apply -c` takes).
    pub config: String,
    /// The layout the label gives this scenario's GPU, read when the scenario is loaded.
    #[serde(skip)]
    pub resolved: Vec<InstanceSpec>,
}

impl LayoutSource {
    /// The instances: as written, or as read from the mig-parted file when the scenario loaded.
    pub fn specs(&self) -> &[InstanceSpec] {
        match self {
            LayoutSource::Instances(specs) => specs,
            LayoutSource::MigParted(r) => &r.resolved,
        }
    }
}

/// A list is a layout written out; a table names a mig-parted file and label. Either way the
/// inner parser's message (an unknown key, a bad instance) is kept.
impl<'de> Deserialize<'de> for LayoutSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = LayoutSource;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a list of MIG instances such as [\"3g.40gb\", \"3g.40gb\"], or \
                     { mig_parted = \"FILE.yaml\", config = \"LABEL\" }",
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(LayoutSource::Instances)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(LayoutSource::MigParted)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The fields checked while parsing: see [`crate::bounds`].
mod checked {
    use crate::bounds::{self, MAX_JOBS_PER_VARIANT, MAX_REPETITIONS};

    crate::integer_in!(opt index, u32, "index", 0, 1023);
    crate::integer_in!(repetitions, u32, "repetitions", 1, MAX_REPETITIONS);
    crate::integer_in!(opt active_thread_percentage, u8, "active_thread_percentage", 1, 100);
    crate::number_in!(opt pinned_memory_limit_gib, "pinned_memory_limit_gib", bounds::POSITIVE_GIB);
    crate::integer_in!(count, u32, "count", 1, MAX_JOBS_PER_VARIANT);
    crate::number_in!(stagger_s, "stagger_s", bounds::SECONDS);
    crate::number_in!(start_s, "start_s", bounds::SECONDS);
    crate::number_in!(opt timeout_s, "timeout_s", bounds::POSITIVE_SECONDS);
}
