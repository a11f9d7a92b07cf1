//! The most intervals open at one moment: jobs running at once (the report's "how many in
//! parallel") and requests in flight at once (the load generator's figures) are the same sweep.

/// The most of `intervals` (`(start, end)`, in any unit of time) open at the same moment. One
/// ending as another starts does not overlap it: at equal times ends count before starts.
pub fn most_at_once(intervals: impl IntoIterator<Item = (f64, f64)>) -> u64 {
    let mut edges: Vec<(f64, i64)> = intervals
        .into_iter()
        .flat_map(|(start, end)| [(start, 1), (end, -1)])
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i64, 0i64);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as u64
}

#[cfg(test)]
mod tests {
    use super::most_at_once;

    #[test]
    fn none_is_zero_and_one_is_one() {
        assert_eq!(most_at_once([]), 0);
        assert_eq!(most_at_once([(0.0, 5.0)]), 1);
    }

    #[test]
    fn back_to_back_intervals_do_not_overlap() {
        assert_eq!(most_at_once([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]), 1);
    }

    #[test]
    fn overlaps_are_counted_where_they_pile_up() {
        // Three open in [2, 3), whatever the order given.
        assert_eq!(
            most_at_once([(2.0, 9.0), (0.0, 3.0), (1.0, 4.0), (5.0, 6.0)]),
            3
        );
        // Nested.
        assert_eq!(most_at_once([(0.0, 10.0), (1.0, 2.0), (3.0, 4.0)]), 2);
    }
}
