//! When requests arrive: gaps drawn from a gamma distribution with shape `burstiness` and mean
//! `1 / rate`, as `vllm bench serve` draws them (burstiness 1 is a Poisson process).

use rand::rngs::StdRng;
use rand_distr::{Distribution, Gamma};

/// The gaps between successive requests, in backend seconds.
pub struct Arrivals {
    gamma: Option<Gamma<f64>>,
}

impl Arrivals {
    /// `rate` requests per second, or all at once when `None`. `burstiness` must be above 0.
    pub fn new(rate: Option<f64>, burstiness: f64) -> Arrivals {
        Arrivals {
            gamma: rate.map(|rate| {
                // Mean gap = shape * scale = 1 / rate.
                Gamma::new(burstiness, 1.0 / (rate * burstiness))
                    .expect("rate and burstiness are checked to be above 0")
            }),
        }
    }

    /// The gap before the next request.
    pub fn next_gap(&self, rng: &mut StdRng) -> f64 {
        self.gamma.as_ref().map_or(0.0, |g| g.sample(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gaps(rate: f64, burstiness: f64) -> Vec<f64> {
        let a = Arrivals::new(Some(rate), burstiness);
        let mut rng = StdRng::seed_from_u64(7);
        (0..20_000).map(|_| a.next_gap(&mut rng)).collect()
    }

    fn mean_and_cv(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn poisson_gaps_have_mean_one_over_rate_and_unit_variation() {
        let (mean, cv) = mean_and_cv(&gaps(4.0, 1.0));
        assert!((mean - 0.25).abs() < 0.01, "{mean}");
        // Exponential gaps: standard deviation equals the mean.
        assert!((cv - 1.0).abs() < 0.03, "{cv}");
    }

    #[test]
    fn burstiness_changes_the_variation_but_not_the_rate() {
        // Gamma with shape k: coefficient of variation 1 / sqrt(k).
        let (mean, cv) = mean_and_cv(&gaps(4.0, 0.25));
        assert!((mean - 0.25).abs() < 0.02, "{mean}");
        assert!((cv - 2.0).abs() < 0.1, "{cv}");
        let (mean, cv) = mean_and_cv(&gaps(4.0, 4.0));
        assert!((mean - 0.25).abs() < 0.01, "{mean}");
        assert!((cv - 0.5).abs() < 0.02, "{cv}");
    }

    #[test]
    fn no_rate_sends_everything_at_once() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(Arrivals::new(None, 1.0).next_gap(&mut rng), 0.0);
    }
}
