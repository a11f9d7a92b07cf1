//! Summary statistics with hyperfine's habits: mean, standard deviation, median, min, max, and
//! outliers found by the median absolute deviation (MAD), which the outliers cannot drag along
//! the way they drag the standard deviation.

use serde::{Deserialize, Serialize};

/// A value is an outlier when it lies further than this many MADs from the median: ten standard
/// deviations, 1.4826 being the factor that turns a MAD into an estimate of one (hyperfine's
/// threshold, after Iglewicz and Hoaglin, "How to Detect and Handle Outliers", 1993).
pub const OUTLIER_THRESHOLD: f64 = 1.4826 * 10.0;

/// ...and further than this fraction of the median from it. Without a floor, a sample whose
/// values nearly all agree (MAD near 0, as on the simulator or a quiet GPU) flags any deviation,
/// such as 0.55 s on 243 s jobs. 5% is well below what tells sharing modes apart (T: 242 s a
/// TI2V-5B video on a whole H100 against 410 s on a 3g.40gb instance, +70%), and above the
/// few percent clocks and temperature move a job's time on a real GPU.
pub const OUTLIER_RELATIVE_FLOOR: f64 = 0.05;

/// What a list of measurements comes to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many values.
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); absent for a single value.
    pub stddev: Option<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Values further than [`OUTLIER_THRESHOLD`] MADs and [`OUTLIER_RELATIVE_FLOOR`] of the
    /// median from the median.
    pub outliers: usize,
}

impl Summary {
    /// Summarises the finite values of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let stddev = (n > 1).then(|| {
            let squares: f64 = sorted.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (n - 1) as f64).sqrt()
        });
        let median = median_of_sorted(&sorted);
        Some(Summary {
            n,
            mean,
            stddev,
            median,
            min: sorted[0],
            max: sorted[n - 1],
            outliers: count_outliers(&sorted),
        })
    }
}

/// The median of a sorted, non-empty slice.
fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Modified Z-scores, `(x − median) / MAD`, of the values (hyperfine's definition). A MAD of 0
/// (most values equal) counts as the smallest positive number, so any value off the common one
/// stands out.
fn modified_zscores(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return Vec::new();
    }
    let median = median_of_sorted(&sorted);
    let mad = mad(&sorted, median);
    values.iter().map(|v| (v - median) / mad).collect()
}

fn mad(values: &[f64], median: f64) -> f64 {
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = median_of_sorted(&deviations);
    if mad > 0.0 {
        mad
    } else {
        f64::EPSILON
    }
}

/// Values that are outliers ([`is_outlier`]): beyond [`OUTLIER_THRESHOLD`] in modified
/// Z-score and far enough from the median to matter.
fn count_outliers(values: &[f64]) -> usize {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0;
    }
    let median = median_of_sorted(&sorted);
    values
        .iter()
        .zip(modified_zscores(values))
        .filter(|&(&v, z)| is_outlier(z, v, median))
        .count()
}

/// Whether a value `z` MADs from the median (a modified Z-score) is an outlier.
pub fn is_outlier(z: f64, value: f64, median: f64) -> bool {
    z.abs() > OUTLIER_THRESHOLD && (value - median).abs() > OUTLIER_RELATIVE_FLOOR * median.abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn outliers(values: &[f64]) -> usize {
        Summary::of(values).map_or(0, |s| s.outliers)
    }

    #[test]
    fn small_and_low_variance_samples_have_no_outliers() {
        assert_eq!(outliers(&[]), 0);
        assert_eq!(outliers(&[50.0]), 0);
        assert_eq!(outliers(&[1000.0, 0.0]), 0);
        assert_eq!(outliers(&[-0.2, 0.0, 0.2]), 0);
    }

    #[test]
    fn a_far_value_is_one_outlier() {
        // Median 0.1, MAD 0.2: 4.0 lies 19.5 MADs out, beyond 14.8.
        assert_eq!(outliers(&[-0.2, 0.0, 0.2, 4.0]), 1);
        assert_eq!(outliers(&[250.0, 251.0, 249.0, 250.5, 400.0]), 1);
        // Equal values but one: the MAD is 0, so the odd one out is flagged when it is off by
        // more than the relative floor...
        assert_eq!(outliers(&[242.0, 242.0, 242.0, 300.0]), 1);
    }

    #[test]
    fn deviations_below_the_relative_floor_are_not_outliers() {
        // 0.55 s on 243 s jobs: many MADs out, but 0.2% of the time.
        assert_eq!(outliers(&[243.0, 243.0, 243.0, 243.55]), 0);
        assert_eq!(outliers(&[243.0, 243.0, 243.0, 243.0 * 1.049]), 0);
        assert_eq!(outliers(&[243.0, 243.0, 243.0, 243.0 * 1.051]), 1);
    }

    #[test]
    fn outliers_on_both_sides_are_counted() {
        let values = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 30.0, -10.0];
        assert_eq!(outliers(&values), 2);
    }

    #[test]
    fn summary_of_known_values() {
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(
            (s.n, s.mean, s.median, s.min, s.max),
            (8, 5.0, 4.5, 2.0, 9.0)
        );
        // Sum of squares 32 over n − 1 = 7.
        assert!((s.stddev.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let one = Summary::of(&[3.0]).unwrap();
        assert_eq!((one.n, one.stddev, one.median), (1, None, 3.0));
    }

    #[test]
    fn non_finite_values_are_left_out() {
        let s = Summary::of(&[1.0, f64::NAN, 3.0, f64::INFINITY]).unwrap();
        assert_eq!((s.n, s.mean), (2, 2.0));
        assert!(Summary::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn zscores_are_distances_in_mads() {
        let z = modified_zscores(&[-0.2, 0.0, 0.2, 4.0]);
        let expected = [-1.5, -0.5, 0.5, 19.5];
        for (a, b) in z.iter().zip(expected) {
            assert!((a - b).abs() < 1e-9, "{z:?}");
        }
    }

    proptest! {
        /// The standard deviation matches the two-pass definition, does not change when every
        /// value is shifted, and scales with the values.
        #[test]
        fn stddev_is_shift_invariant_and_scales(
            values in prop::collection::vec(-1e3f64..1e3, 2..40),
            shift in -1e3f64..1e3,
            scale in 0.1f64..10.0,
        ) {
            let s = Summary::of(&values).unwrap();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
                / (values.len() - 1) as f64;
            let sd = s.stddev.unwrap();
            prop_assert!((sd - var.sqrt()).abs() <= 1e-9 * (1.0 + sd));
            let shifted: Vec<f64> = values.iter().map(|v| v + shift).collect();
            let sd_shifted = Summary::of(&shifted).unwrap().stddev.unwrap();
            prop_assert!((sd_shifted - sd).abs() <= 1e-7 * (1.0 + sd));
            let scaled: Vec<f64> = values.iter().map(|v| v * scale).collect();
            let sd_scaled = Summary::of(&scaled).unwrap().stddev.unwrap();
            prop_assert!((sd_scaled - sd * scale).abs() <= 1e-7 * (1.0 + sd * scale));
        }

        /// min ≤ median ≤ max, min ≤ mean ≤ max, and the order of the values does not matter.
        #[test]
        fn summary_is_ordered_and_order_free(values in prop::collection::vec(-1e6f64..1e6, 1..50)) {
            let s = Summary::of(&values).unwrap();
            prop_assert!(s.min <= s.median && s.median <= s.max);
            prop_assert!(s.min - 1e-6 <= s.mean && s.mean <= s.max + 1e-6);
            let mut reversed = values.clone();
            reversed.reverse();
            let r = Summary::of(&reversed).unwrap();
            prop_assert_eq!((r.median, r.min, r.max, r.outliers), (s.median, s.min, s.max, s.outliers));
        }

        /// A value a thousand times the sample's range away is always flagged, whatever else
        /// is; and at most half the values can ever be outliers (the MAD is a median).
        #[test]
        fn a_distant_value_is_flagged(
            values in prop::collection::vec(100.0f64..110.0, 5..30),
        ) {
            let base = Summary::of(&values).unwrap();
            prop_assume!(base.max - base.min > 0.5);
            let mut with = values.clone();
            with.push(base.max + 1000.0 * (base.max - base.min));
            let z = modified_zscores(&with);
            prop_assert!(z[z.len() - 1] > OUTLIER_THRESHOLD, "{z:?}");
            let s = Summary::of(&with).unwrap();
            prop_assert!(s.outliers >= 1);
            prop_assert!(s.outliers * 2 <= s.n);
            let flagged = z
                .iter()
                .zip(&with)
                .filter(|(z, v)| is_outlier(**z, **v, s.median))
                .count();
            prop_assert_eq!(flagged, s.outliers);
        }
    }
}
