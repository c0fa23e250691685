//! Column statistics of activations H [B, n], in f64: the mean, the population covariance
//! Σ = (H − μ)ᵀ(H − μ) / B and the standard deviations σ_i = √Σ_ii; and the one test of a
//! neuron being constant on the data: σ ≤ CONSTANT_TOL · (1 + |μ|).
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Relative standard deviation under which a neuron counts as constant on the data.
pub const CONSTANT_TOL: f64 = 1e-6;

/// True when a column with this standard deviation and mean is constant on the data.
pub fn is_constant(sd: f64, mean: f64) -> bool {
    sd <= CONSTANT_TOL * (1.0 + mean.abs())
}

pub struct ColumnStats {
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub cov: Array2<f64>,
}

impl ColumnStats {
    pub fn of(h: ArrayView2<f32>) -> Self {
        let (b, n) = h.dim();
        let h = h.mapv(f64::from);
        let mean = h.mean_axis(Axis(0)).expect("rows").to_vec();
        let centred = &h - &Array1::from(mean.clone()).insert_axis(Axis(0));
        let cov = centred.t().dot(&centred) / b.max(1) as f64;
        let sd = (0..n).map(|i| cov[[i, i]].max(0.0).sqrt()).collect();
        ColumnStats { mean, sd, cov }
    }

    pub fn is_constant(&self, j: usize) -> bool {
        is_constant(self.sd[j], self.mean[j])
    }

    /// ρ_ij = Σ_ij / (σ_i σ_j) for columns with σ > `min_sd`, else 0; transformed by `f` (which
    /// clamps it or keeps its positive part).
    pub fn correlation(&self, min_sd: f64, f: impl Fn(f64) -> f64) -> Array2<f64> {
        let n = self.sd.len();
        let sd = &self.sd;
        Array2::from_shape_fn((n, n), |(i, j)| {
            if sd[i] > min_sd && sd[j] > min_sd {
                f(self.cov[[i, j]] / (sd[i] * sd[j]))
            } else {
                0.0
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn statistics_match_hand_computed_values() {
        // Columns: x, 2x + 1 (perfectly correlated), a constant 3, and −x.
        let h = array![
            [1.0f32, 3.0, 3.0, -1.0],
            [2.0, 5.0, 3.0, -2.0],
            [3.0, 7.0, 3.0, -3.0]
        ];
        let s = ColumnStats::of(h.view());
        assert_eq!(s.mean, vec![2.0, 5.0, 3.0, -2.0]);
        let var: f64 = 2.0 / 3.0;
        assert!((s.sd[0] - var.sqrt()).abs() < 1e-12);
        assert!((s.sd[1] - 2.0 * var.sqrt()).abs() < 1e-12);
        assert!(s.is_constant(2) && !s.is_constant(0));
        let r = s.correlation(0.0, |r| r.clamp(-1.0, 1.0));
        assert!((r[[0, 1]] - 1.0).abs() < 1e-12);
        assert!((r[[0, 3]] + 1.0).abs() < 1e-12);
        assert_eq!(r[[0, 2]], 0.0, "a constant column correlates with nothing");
        let positive = s.correlation(0.0, |r| r.max(0.0));
        assert_eq!(positive[[0, 3]], 0.0);
    }
}
