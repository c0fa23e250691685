//! Refitting the next layer on the kept neurons: one ridge regression per cut boundary.
//!
//! After hidden layer l keeps the neurons K, the next layer reads H_K [N, k] instead of H. Its
//! weights W' [k, m] (and bias b', when it has a trainable one) are refitted so that its
//! pre-activation on the N calibration rows is as close as least squares allows to a target Z
//! [N, m] — the pre-activation of that layer in the model before any cut, so the fit also
//! corrects what earlier cuts changed:
//!
//!   min over W', b'   ‖H_K W' + 1b'ᵀ − Z‖² + λ‖W' − W₀‖²
//!
//! W₀ is the merge plan's compensated weight (boundary.rs), so that with few rows the fit stays
//! near it. With a bias, centring H_K and Z by their column means (H̃, Z̃) separates b':
//!
//!   (H̃ᵀH̃ + λI) W' = H̃ᵀZ̃ + λW₀,     b' = z̄ − W'ᵀh̄
//!
//! and without one the same system holds with H and Z uncentred. λ = RIDGE · tr(H̃ᵀH̃)/k, so the
//! pull towards W₀ does not depend on the activations' scale. Every weight the plan writes
//! (merges, mean and constant folding) is a candidate of the minimization, so for λ → 0 the
//! refit's error on the calibration rows is at most the plan's.
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// λ relative to the mean diagonal of H̃ᵀH̃ (the kept neurons' mean variance times N). Held-out
/// accuracy of the pruned Fashion-MNIST LeNet is flat from 1e-5 to 1e-2 (docs/RESULTS.md).
pub const RIDGE: f64 = 1e-3;

/// The refitted next layer: weight [k, m] and, when fitted, bias [m].
#[derive(Debug, Clone)]
pub struct Refit {
    pub w_next: Array2<f32>,
    pub b_next: Option<Array1<f32>>,
}

/// Solves the ridge system above. `h_kept`: the kept neurons' activations [N, k]; `target`: Z
/// [N, m]; `w0`: the plan's weight [k, m]; `fit_bias`: the next layer has a trainable bias.
/// None when the system cannot be solved (non-finite input or a numerically singular matrix):
/// the caller keeps the plan.
pub fn ridge(
    h_kept: ArrayView2<f32>,
    target: ArrayView2<f32>,
    w0: ArrayView2<f32>,
    fit_bias: bool,
) -> Option<Refit> {
    let (rows, k) = h_kept.dim();
    let m = target.ncols();
    assert_eq!(target.nrows(), rows, "one target row per calibration row");
    assert_eq!(w0.dim(), (k, m), "the plan's weight is [kept, outputs]");
    if rows == 0 || k == 0 {
        return None;
    }
    let mut h = h_kept.mapv(f64::from);
    let mut z = target.mapv(f64::from);
    let (h_mean, z_mean) = if fit_bias {
        let (hm, zm) = (column_means(&h), column_means(&z));
        h -= &hm.view().insert_axis(Axis(0));
        z -= &zm.view().insert_axis(Axis(0));
        (hm, zm)
    } else {
        (Array1::zeros(k), Array1::zeros(m))
    };
    let mut gram = h.t().dot(&h);
    let lambda = RIDGE * gram.diag().sum() / k as f64;
    let w0 = w0.mapv(f64::from);
    let rhs = h.t().dot(&z) + &(&w0 * lambda);
    gram.diag_mut()
        .mapv_inplace(|d| d + lambda.max(f64::MIN_POSITIVE));
    let w = solve_spd(&gram, &rhs)?;
    let b = fit_bias.then(|| &z_mean - &w.t().dot(&h_mean));
    let finite = w.iter().chain(b.iter().flatten()).all(|v| v.is_finite());
    finite.then(|| Refit {
        w_next: w.mapv(|v| v as f32),
        b_next: b.map(|b| b.mapv(|v| v as f32)),
    })
}

fn column_means(a: &Array2<f64>) -> Array1<f64> {
    a.mean_axis(Axis(0)).expect("at least one row")
}

/// X with A·X = B for a symmetric positive definite A [k, k] (Cholesky), None if A is not.
fn solve_spd(a: &Array2<f64>, b: &Array2<f64>) -> Option<Array2<f64>> {
    let (k, m) = b.dim();
    let a = nalgebra::DMatrix::from_fn(k, k, |i, j| a[[i, j]]);
    let b = nalgebra::DMatrix::from_fn(k, m, |i, j| b[[i, j]]);
    let x = a.cholesky()?.solve(&b);
    Some(Array2::from_shape_fn((k, m), |(i, j)| x[(i, j)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Pre-activations h·W + b.
    fn pre(h: &Array2<f32>, w: &Array2<f32>, b: Option<&Array1<f32>>) -> Array2<f64> {
        let z = h.mapv(f64::from).dot(&w.mapv(f64::from));
        match b {
            Some(b) => z + &b.mapv(f64::from).insert_axis(Axis(0)),
            None => z,
        }
    }

    fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        (a - b).mapv(f64::abs).fold(0.0, |m: f64, v| m.max(*v))
    }

    /// Three free neurons and a fourth that is an affine combination of two of them: a
    /// merge (one partner) cannot remove it exactly, the refit can (up to the ridge's pull).
    fn combined_layer() -> (Array2<f32>, Array2<f32>, Array1<f32>) {
        let x = [0.1f32, 0.9, 0.4, 1.3, 0.0, 0.6, 0.8, 0.2];
        let y = [1.0f32, 0.2, 0.5, 0.3, 0.8, 0.1, 0.7, 0.9];
        let u = [0.3f32, 0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.4];
        let h = Array2::from_shape_fn((8, 4), |(r, c)| match c {
            0 => x[r],
            1 => y[r],
            2 => u[r],
            _ => 2.0 * x[r] - y[r] + 0.5,
        });
        let w = array![[0.5f32, -1.0], [0.3, 0.2], [-0.7, 0.4], [1.5, 0.9]];
        (h, w, array![0.1f32, -0.2])
    }

    #[test]
    fn a_neuron_that_is_a_combination_of_kept_ones_goes_exactly() {
        let (h, w, b) = combined_layer();
        let z = pre(&h, &w, Some(&b)).mapv(|v| v as f32);
        let keep = [0, 1, 2];
        let h_kept = h.select(Axis(1), &keep);
        // The plan's fallback: the fourth neuron's mean folded into the bias.
        let w0 = w.select(Axis(0), &keep);
        let r = ridge(h_kept.view(), z.view(), w0.view(), true).expect("solvable");
        let after = pre(&h_kept, &r.w_next, r.b_next.as_ref());
        let err = max_abs_diff(&z.mapv(f64::from), &after);
        // λ pulls towards W₀ by a relative 1e-3 of the signal: the residual stays that small.
        assert!(err < 5e-3, "max |Δ| = {err}");
        // The exact answer: w_x += 2·w_3, w_y −= w_3, b += 0.5·w_3.
        let exact_wx = w.row(0).mapv(f64::from) + w.row(3).mapv(|v| 2.0 * v as f64);
        let got_wx = r.w_next.row(0).mapv(f64::from);
        assert!(max_abs_diff(&exact_wx.insert_axis(Axis(0)), &got_wx.insert_axis(Axis(0))) < 1e-2);
    }

    #[test]
    fn the_refit_never_does_worse_than_the_plan_on_its_rows() {
        let (h, w, b) = combined_layer();
        // A target the kept neurons cannot reach exactly: a nonlinear function of them.
        let z = pre(&h, &w, Some(&b)).mapv(|v| (v * v) as f32);
        let keep = [0, 2];
        let h_kept = h.select(Axis(1), &keep);
        let w0 = w.select(Axis(0), &keep);
        let plan_bias = &b + &h.column(1).mean().map(|m| &w.row(1) * m).unwrap();
        let r = ridge(h_kept.view(), z.view(), w0.view(), true).expect("solvable");
        let sq = |p: Array2<f64>| (&z.mapv(f64::from) - &p).mapv(|v| v * v).sum();
        let plan_err = sq(pre(&h_kept, &w0, Some(&plan_bias)));
        let refit_err = sq(pre(&h_kept, &r.w_next, r.b_next.as_ref()));
        assert!(
            refit_err <= plan_err,
            "refit {refit_err} vs plan {plan_err}"
        );
    }

    #[test]
    fn without_a_bias_the_fit_is_through_the_origin() {
        let (h, w, _) = combined_layer();
        let z = pre(&h, &w, None).mapv(|v| v as f32);
        let r = ridge(h.view(), z.view(), w.view(), false).expect("solvable");
        assert!(r.b_next.is_none());
        // Keeping everything, the plan's weight is already exact: the ridge keeps it.
        let err = max_abs_diff(&r.w_next.mapv(f64::from), &w.mapv(f64::from));
        assert!(err < 1e-4, "max |ΔW| = {err}");
    }

    #[test]
    fn non_finite_activations_give_no_refit() {
        let (mut h, w, b) = combined_layer();
        let z = pre(&h, &w, Some(&b)).mapv(|v| v as f32);
        h[[2, 1]] = f32::NAN;
        assert!(ridge(h.view(), z.view(), w.view(), true).is_none());
    }
}
