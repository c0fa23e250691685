//! How far below the budget a candidate must stay on the validation rows so that the gate, on
//! other rows, still sees it within the budget: the search's margin, set from the data.
//!
//! On row i let d_i = c_i − o_i, where c_i and o_i are 1 when the candidate (resp. the original)
//! is right. The candidate's accuracy drop is −mean(d); its sampling error on n rows is
//! sd(d)/√n (paired: rows where both are right or both wrong add nothing). The gate measures the
//! drop again on its own t rows, independently, so the difference between what the search sees and
//! what the gate sees has standard error sd(d)·√(1/n + 1/t). A candidate is taken when
//!
//!   drop_val + z · sd(d) · √(1/n + 1/t) ≤ budget        (all in points: × 100)
//!
//! with z = Z_ONE_SIDED_95: the gate passes such a candidate 19 times in 20 when its drop on the
//! validation rows is what it seems. The search compares ~20 nested cuts per run, close to one
//! another, so its choice is somewhat optimistic beyond that; the gate still has the last word.
//! One validation row moves accuracy by 100/n points: the resolution the search can see.

/// z of a one-sided 95% bound.
pub const Z_ONE_SIDED_95: f64 = 1.645;

/// The sample standard deviation of d_i = candidate_i − original_i (1 right, 0 wrong).
pub fn paired_sd(original: &[bool], candidate: &[bool]) -> f64 {
    assert_eq!(original.len(), candidate.len(), "one verdict per row each");
    let n = original.len();
    if n < 2 {
        return 0.0;
    }
    let d: Vec<f64> = original
        .iter()
        .zip(candidate)
        .map(|(&o, &c)| f64::from(u8::from(c)) - f64::from(u8::from(o)))
        .collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let ss: f64 = d.iter().map(|v| (v - mean).powi(2)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// The margin in points for a candidate whose paired sd is `sd`, judged on `val_rows` and gated
/// on `test_rows` other rows.
pub fn margin_points(sd: f64, val_rows: usize, test_rows: usize, z: f64) -> f64 {
    let inv = |n: usize| 1.0 / n.max(1) as f64;
    100.0 * z * sd * (inv(val_rows) + inv(test_rows)).sqrt()
}

/// Points of accuracy one row of `rows` is worth.
pub fn resolution_points(rows: usize) -> f64 {
    100.0 / rows.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paired_sd_counts_only_rows_where_the_two_disagree() {
        // Identical verdicts: no uncertainty at all, however many rows are wrong.
        let o = [true, false, true, false];
        assert_eq!(paired_sd(&o, &o), 0.0);
        // d = (0, 0, −1, +1): mean 0, Σd² = 2, sd = √(2/3).
        let c = [true, false, false, true];
        assert!((paired_sd(&o, &c) - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn the_margin_shrinks_with_the_rows_of_both_samples() {
        // sd 0.2 on 5,000 validation and 5,000 test rows: 100 · 1.645 · 0.2 · √(2/5000).
        let m = margin_points(0.2, 5000, 5000, Z_ONE_SIDED_95);
        assert!((m - 100.0 * 1.645 * 0.2 * 0.02).abs() < 1e-12, "{m}");
        assert!(margin_points(0.2, 20_000, 20_000, Z_ONE_SIDED_95) < m / 1.99);
        assert_eq!(resolution_points(540), 100.0 / 540.0);
    }
}
