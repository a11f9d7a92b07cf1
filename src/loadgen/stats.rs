//! Summary statistics over latencies, computed the way `vllm bench serve` computes them (numpy's
//! defaults): the population standard deviation, and percentiles by linear interpolation between
//! the two nearest ranks. [`Values`] gathers one latency's values in bounded memory: exactly up
//! to [`EXACT_VALUES`], in a histogram above.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Values kept one by one (8 MB) before [`Values`] moves them into a histogram. Every shipped
/// scenario's latencies stay below it, so their figures are exact.
pub const EXACT_VALUES: usize = 1 << 20;

/// The histogram's precision: values are told apart to 3 significant digits, so a percentile is
/// off by at most 0.05 % of its value (half a bucket: the bucket's middle is given).
const SIGNIFICANT_DIGITS: u8 = 3;

/// The values of one latency (in milliseconds, finite, not negative), gathered as they come.
/// While there are at most [`EXACT_VALUES`] the summary is [`Summary::of`] them, numpy's to the
/// bit. Above, they go into an HdrHistogram of nanoseconds: the mean and standard deviation
/// come from running sums (exact up to rounding), each percentile is the middle of the bucket
/// that holds the value of its rank (within 0.05 % of it) rather than numpy's interpolation
/// between two neighbouring ranks, which at over a million values lie within one bucket of each
/// other for any latency that is not sparse at that percentile.
#[derive(Debug, Clone, Default)]
pub struct Values {
    exact: Vec<f64>,
    histogram: Option<Histogram<u64>>,
    /// Welford's running mean and sum of squared deviations, over every value.
    count: u64,
    mean: f64,
    m2: f64,
}

impl Values {
    pub fn push(&mut self, ms: f64) {
        self.count += 1;
        let delta = ms - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (ms - self.mean);
        match &mut self.histogram {
            Some(h) => record(h, ms),
            None if self.exact.len() < EXACT_VALUES => self.exact.push(ms),
            None => {
                let mut h =
                    Histogram::new(SIGNIFICANT_DIGITS).expect("3 digits is a valid precision");
                for v in std::mem::take(&mut self.exact).into_iter().chain([ms]) {
                    record(&mut h, v);
                }
                self.histogram = Some(h);
            }
        }
    }

    /// Whether the summary is exact (every value kept).
    pub fn exact(&self) -> bool {
        self.histogram.is_none()
    }

    /// The summary of every value pushed, or `None` when there were none.
    pub fn summary(&self) -> Option<Summary> {
        let Some(h) = &self.histogram else {
            return Summary::of(&self.exact);
        };
        let at = |p: f64| h.median_equivalent(h.value_at_quantile(p / 100.0)) as f64 / 1e6;
        Some(Summary {
            mean: self.mean,
            median: at(50.0),
            std: (self.m2 / self.count as f64).sqrt(),
            p90: at(90.0),
            p99: at(99.0),
        })
    }
}

/// Records `ms` in nanoseconds; the histogram grows to hold any value.
fn record(h: &mut Histogram<u64>, ms: f64) {
    let ns = (ms.max(0.0) * 1e6).round() as u64;
    h.record(ns)
        .expect("an auto-resizing histogram holds any value");
}

/// Mean, median, standard deviation and the 90th and 99th percentiles of one latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Summary {
    /// The summary of `values`, or `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let variance = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Summary {
            mean,
            median: percentile(&sorted, 50.0),
            std: variance.sqrt(),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
        })
    }

    /// The statistics' names as `vllm bench serve` prefixes them (`mean_ttft_ms`, `p99_...`).
    pub const NAMES: [&'static str; 5] = ["mean", "median", "std", "p90", "p99"];

    /// A summary from its statistics in the order of [`Summary::NAMES`].
    pub fn from_values([mean, median, std, p90, p99]: [f64; 5]) -> Summary {
        Summary {
            mean,
            median,
            std,
            p90,
            p99,
        }
    }

    /// The statistics with their [`Summary::NAMES`].
    pub fn named(&self) -> [(&'static str, f64); 5] {
        let values = [self.mean, self.median, self.std, self.p90, self.p99];
        std::array::from_fn(|k| (Self::NAMES[k], values[k]))
    }
}

/// The `p`th percentile (0–100) of ascending `sorted`, interpolating linearly between ranks
/// (numpy's default `linear` method). `sorted` must not be empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    let weight = rank - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks_like_numpy() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // numpy.percentile(range(1, 11), [50, 90, 99]) = [5.5, 9.1, 9.91]
        assert!((percentile(&v, 50.0) - 5.5).abs() < 1e-12);
        assert!((percentile(&v, 90.0) - 9.1).abs() < 1e-12);
        assert!((percentile(&v, 99.0) - 9.91).abs() < 1e-12);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn summary_uses_the_population_standard_deviation_and_ignores_order() {
        let s = Summary::of(&[4.0, 2.0, 8.0, 6.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        assert_eq!(s.median, 5.0);
        // numpy.std([2, 4, 6, 8]) = sqrt(5)
        assert!((s.std - 5f64.sqrt()).abs() < 1e-12);
        assert!((s.p99 - 7.94).abs() < 1e-12);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn values_are_exact_up_to_the_bound_and_within_the_stated_error_above() {
        // A skewed latency (a long tail, as TTFT under load): 1 ms to about 2 s.
        let latency = |i: usize| 1.0 + ((i * 7919) % 10_007) as f64 * ((i % 97) as f64 / 48.0);
        let mut small = Values::default();
        let few: Vec<f64> = (0..1000).map(latency).collect();
        few.iter().for_each(|&v| small.push(v));
        assert!(small.exact());
        assert_eq!(small.summary(), Summary::of(&few));

        let n = EXACT_VALUES + EXACT_VALUES / 2;
        let all: Vec<f64> = (0..n).map(latency).collect();
        let mut big = Values::default();
        all.iter().for_each(|&v| big.push(v));
        assert!(!big.exact());
        let (got, want) = (big.summary().unwrap(), Summary::of(&all).unwrap());
        assert!(
            (got.mean - want.mean).abs() <= 1e-9 * want.mean,
            "{got:?} {want:?}"
        );
        assert!(
            (got.std - want.std).abs() <= 1e-9 * want.std,
            "{got:?} {want:?}"
        );
        for (g, w) in [
            (got.median, want.median),
            (got.p90, want.p90),
            (got.p99, want.p99),
        ] {
            assert!(
                (g - w).abs() <= 5e-4 * w,
                "percentile {g} against numpy's {w}"
            );
        }
        assert_eq!(Values::default().summary(), None);
    }
}
