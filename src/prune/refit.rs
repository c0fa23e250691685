//! Refitting the next layer on the kept neurons: one ridge regression per cut boundary, its
//! strength chosen by generalized cross-validation.
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
//! near it. With a bias, centring H_K and Z by their column means (H̃, Z̃) separates b'; without
//! one the same holds with H and Z uncentred. Writing W' = W₀ + Δ, Y = Z̃ − H̃W₀ and
//! H̃ᵀH̃ = V diag(s) Vᵀ, P = VᵀH̃ᵀY [k, m] (row j: P_j):
//!
//!   Δ(λ) = V diag(1/(s + λ)) P,     b' = z̄ − W'ᵀh̄
//!   RSS(λ) = ‖Y‖² − Σ_j (2/(s_j + λ) − s_j/(s_j + λ)²) ‖P_j‖²
//!   df(λ) = Σ_j s_j/(s_j + λ)  (+1 with a bias)
//!   GCV(λ) = RSS(λ) / (1 − df(λ)/N)²
//!
//! λ = ρ · tr(H̃ᵀH̃)/k with ρ the grid value of least GCV, an estimate of the fit's error on rows
//! it has not seen (Golub, Heath & Wahba 1979): with many rows per kept neuron it picks a weak
//! pull, with few a strong one, and at the grid's top the fit is the plan. Every weight the plan
//! writes (merges, mean and constant folding) is a candidate of the minimization, so for λ → 0
//! the refit's error on the calibration rows is at most the plan's.
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// The relative strengths ρ GCV chooses among: 1e-6 to 10 in half-decades.
const RIDGE_GRID: [f64; 15] = [
    1e-6, 3.16e-6, 1e-5, 3.16e-5, 1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2, 3.16e-2, 1e-1, 3.16e-1, 1.0,
    3.16, 10.0,
];

/// The refitted next layer: weight [k, m] and, when fitted, bias [m].
#[derive(Debug, Clone)]
pub struct Refit {
    pub w_next: Array2<f32>,
    pub b_next: Option<Array1<f32>>,
    /// The chosen ρ (λ relative to the kept neurons' mean diagonal of H̃ᵀH̃).
    pub ridge: f64,
}

/// Solves the ridge system above. `h_kept`: the kept neurons' activations [N, k]; `target`: Z
/// [N, m]; `w0`: the plan's weight [k, m]; `fit_bias`: the next layer has a trainable bias.
/// None when there is nothing to fit (no rows, no kept neuron, kept neurons all constant) or the
/// input is not finite: the caller keeps the plan.
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
    let w0 = w0.mapv(f64::from);
    let gram = h.t().dot(&h);
    let scale = gram.diag().sum() / k as f64;
    // H̃ᵀY and ‖Y‖² from the Gram matrix: no [N, m] product with W₀.
    let htz = h.t().dot(&z);
    let gw0 = gram.dot(&w0);
    let hty = &htz - &gw0;
    let yy = z.mapv(|v| v * v).sum() - 2.0 * (&w0 * &htz).sum() + (&w0 * &gw0).sum();
    if !(scale.is_finite() && scale > 0.0 && yy.is_finite()) {
        return None;
    }
    let spectrum = Spectrum::new(&gram, &hty);
    let (rho, _) = RIDGE_GRID
        .into_iter()
        .map(|rho| (rho, spectrum.gcv(rho * scale, yy, rows, fit_bias)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("a non-empty grid");
    let w = &w0 + &spectrum.delta(rho * scale);
    let b = fit_bias.then(|| &z_mean - &w.t().dot(&h_mean));
    let finite = w.iter().chain(b.iter().flatten()).all(|v| v.is_finite());
    finite.then(|| Refit {
        w_next: w.mapv(|v| v as f32),
        b_next: b.map(|b| b.mapv(|v| v as f32)),
        ridge: rho,
    })
}

fn column_means(a: &Array2<f64>) -> Array1<f64> {
    a.mean_axis(Axis(0)).expect("at least one row")
}

/// H̃ᵀH̃ = V diag(s) Vᵀ and P = VᵀH̃ᵀY (with each row's ‖P_j‖²): all the GCV criterion and
/// Δ(λ) need.
struct Spectrum {
    s: Vec<f64>,
    v: Array2<f64>,
    p: Array2<f64>,
    p_norms: Vec<f64>,
}

impl Spectrum {
    fn new(gram: &Array2<f64>, hty: &Array2<f64>) -> Self {
        let k = gram.nrows();
        let eig =
            nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_fn(k, k, |i, j| gram[[i, j]]));
        // A Gram matrix is positive semi-definite: negative eigenvalues are rounding.
        let s = eig.eigenvalues.iter().map(|&e| e.max(0.0)).collect();
        let v = Array2::from_shape_fn((k, k), |(i, j)| eig.eigenvectors[(i, j)]);
        let p = v.t().dot(hty);
        let p_norms = p.rows().into_iter().map(|r| r.dot(&r)).collect();
        Self { s, v, p, p_norms }
    }

    /// GCV(λ) for the target's total sum of squares `yy` on `rows` rows; infinite when the fit
    /// has as many degrees of freedom as rows.
    fn gcv(&self, lambda: f64, yy: f64, rows: usize, fit_bias: bool) -> f64 {
        let mut rss = yy;
        let mut df = f64::from(u8::from(fit_bias));
        for (&s, &pp) in self.s.iter().zip(&self.p_norms) {
            let d = s + lambda;
            rss -= (2.0 / d - s / (d * d)) * pp;
            df += s / d;
        }
        let free = 1.0 - df / rows as f64;
        if free <= 0.0 {
            return f64::INFINITY;
        }
        rss.max(0.0) / (free * free)
    }

    /// Δ(λ) = V diag(1/(s + λ)) P.
    fn delta(&self, lambda: f64) -> Array2<f64> {
        let mut scaled = self.p.clone();
        for (mut row, &s) in scaled.rows_mut().into_iter().zip(&self.s) {
            row /= s + lambda;
        }
        self.v.dot(&scaled)
    }
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
        // An exact target: GCV picks the weakest pull, and the residual is that small.
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

    /// Deterministic values in [-1, 1) (a 64-bit LCG), so tests need no random crate.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    #[test]
    fn gcv_and_delta_match_their_definitions() {
        let (rows, k, m) = (30, 5, 3);
        let h = Array2::from_shape_vec((rows, k), noise(rows * k, 1)).unwrap();
        let y = Array2::from_shape_vec((rows, m), noise(rows * m, 2)).unwrap();
        let gram = h.t().dot(&h);
        let spectrum = Spectrum::new(&gram, &h.t().dot(&y));
        let lambda = 0.7;
        // Direct: Δ = (HᵀH + λI)⁻¹HᵀY, hat matrix S = H(HᵀH + λI)⁻¹Hᵀ, GCV = RSS/(1 − tr S/N)².
        let a = nalgebra::DMatrix::from_fn(k, k, |i, j| {
            gram[[i, j]] + if i == j { lambda } else { 0.0 }
        });
        let inv = a.try_inverse().expect("invertible");
        let inv = Array2::from_shape_fn((k, k), |(i, j)| inv[(i, j)]);
        let delta = inv.dot(&h.t().dot(&y));
        let rss = (&y - &h.dot(&delta)).mapv(|v| v * v).sum();
        let trace: f64 = h.dot(&inv).dot(&h.t()).diag().sum();
        let want = rss / (1.0 - (trace + 1.0) / rows as f64).powi(2);
        let yy = y.mapv(|v| v * v).sum();
        let got = spectrum.gcv(lambda, yy, rows, true);
        assert!((got - want).abs() < 1e-9 * want, "GCV {got} vs {want}");
        assert!(max_abs_diff(&spectrum.delta(lambda), &delta) < 1e-10);
    }

    /// y = H·W + noise with W₀ = 0: few rows per neuron cannot pin W down, so GCV pulls harder.
    fn chosen_ridge(rows: usize) -> f64 {
        let k = 8;
        let h = Array2::from_shape_vec((rows, k), noise(rows * k, 3)).unwrap();
        let w = Array2::from_shape_vec((k, 1), noise(k, 4)).unwrap();
        let z = h.dot(&w) + Array2::from_shape_vec((rows, 1), noise(rows, 5)).unwrap() * 2.0;
        let w0 = Array2::zeros((k, 1));
        let f = |a: Array2<f64>| a.mapv(|v| v as f32);
        ridge(f(h).view(), f(z).view(), w0.view(), true)
            .expect("solvable")
            .ridge
    }

    #[test]
    fn fewer_rows_per_neuron_choose_a_stronger_pull() {
        let (few, many) = (chosen_ridge(16), chosen_ridge(4000));
        assert!(few > many, "ρ with 16 rows {few}, with 4000 rows {many}");
    }
}
