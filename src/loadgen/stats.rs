//! Summary statistics over latencies, computed the way `vllm bench serve` computes them (numpy's
//! defaults): the population standard deviation, and percentiles by linear interpolation between
//! the two nearest ranks.

use serde::Serialize;

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
}
