//! The gate: which figure decides whether a candidate may replace the original, chosen from the
//! data it is judged on, and the verdict against the limits asked for.
//!
//! - **accuracy** (integer labels `y`): drop = 100 · (acc_original − acc_candidate) points ≤ P.
//! - **agreement** (no `y`): agreement = the fraction of rows whose predicted class (arg-max)
//!   is the original's; the original agrees with itself, so the drop is
//!   100 · (1 − agreement) points ≤ P.
//! - **regression** (float `y`, `[N, k]`): RMSE = √(Σ (ŷ − y)² / (N·k)) over every value of the
//!   model's output against `y`; the increase RMSE_candidate − RMSE_original ≤ R.
//!
//! Any gate may also bound max |Δ| = max over every value of |ŷ_candidate − ŷ_original| ≤ D (the
//! class scores of a classifier, the outputs of a regressor). A limit not asked for is not
//! checked; each is compared with a tolerance of 1e-9 for rounding.
use crate::data::Dataset;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayD};
use serde::Serialize;

/// What the gate measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMetric {
    Accuracy,
    Agreement,
    Regression,
}

impl GateMetric {
    /// Labels → accuracy, float targets → regression, neither → agreement.
    pub fn for_data(data: &Dataset) -> GateMetric {
        match (&data.y, &data.y_values) {
            (Some(_), _) => GateMetric::Accuracy,
            (None, Some(_)) => GateMetric::Regression,
            (None, None) => GateMetric::Agreement,
        }
    }
}

/// The limits a candidate must stay within (None: not checked).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Points of accuracy (labels) or of agreement (no labels) the candidate may lose.
    pub max_drop_points: Option<f64>,
    /// How much the candidate's RMSE against float targets may exceed the original's.
    pub max_rmse_increase: Option<f64>,
    /// Largest |difference| allowed between any output value of the two models.
    pub max_abs_diff: Option<f64>,
    /// Least speed-up (original over candidate latency, see `validate`) the candidate must give.
    pub min_speedup: Option<f64>,
    /// Most parameters the candidate may keep.
    pub max_params: Option<usize>,
}

impl Limits {
    /// Every limit a non-negative finite number, and each one meaningful for `metric` on the data
    /// at `path`.
    pub fn check(&self, metric: GateMetric, path: &std::path::Path) -> Result<()> {
        let named = [
            ("the accuracy budget", self.max_drop_points),
            ("the RMSE budget", self.max_rmse_increase),
            ("the output difference bound", self.max_abs_diff),
        ];
        for (what, v) in named {
            if let Some(v) = v.filter(|v| !(*v >= 0.0 && v.is_finite())) {
                return Err(Error::Invalid(format!(
                    "{what} must be a non-negative number, got {v}"
                )));
            }
        }
        if let Some(v) = self.min_speedup.filter(|v| !(*v > 0.0 && v.is_finite())) {
            return Err(Error::Invalid(format!(
                "the minimum speed-up must be a positive number, got {v}"
            )));
        }
        match metric {
            GateMetric::Regression if self.max_drop_points.is_some() => Err(Error::data(
                path,
                "holds float targets (regression): an accuracy budget needs class labels, or no y",
            )),
            GateMetric::Accuracy | GateMetric::Agreement if self.max_rmse_increase.is_some() => {
                Err(Error::data(
                    path,
                    "an RMSE budget needs float targets y (regression); this data has none",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// What was measured, for the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub metric: GateMetric,
    /// Accuracy of the original and of the candidate (labels only).
    pub accuracy: Option<Pair>,
    /// Fraction of rows with the same predicted class.
    pub agreement: f64,
    /// RMSE of the original and of the candidate against float targets (regression only).
    pub rmse: Option<Pair>,
    pub max_abs_diff: f64,
}

/// One figure of the original and of the candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub original: f64,
    pub candidate: f64,
}

impl Measured {
    /// Points lost by the gate's measure: of accuracy, or of agreement with the original.
    pub fn drop_points(&self) -> Option<f64> {
        match self.metric {
            GateMetric::Accuracy => self.accuracy.map(|a| (a.original - a.candidate) * 100.0),
            GateMetric::Agreement => Some((1.0 - self.agreement) * 100.0),
            GateMetric::Regression => None,
        }
    }

    /// Candidate RMSE minus original RMSE.
    pub fn rmse_increase(&self) -> Option<f64> {
        self.rmse.map(|r| r.candidate - r.original)
    }
}

const TOLERANCE: f64 = 1e-9;

/// Why the candidate fails `limits` (each exceeded limit, joined by "; "), or None when it passes.
/// `scope` names the data in the reason ("test " → "test accuracy dropped …"; "" for none).
pub fn verdict(limits: &Limits, m: &Measured, scope: &str) -> Option<String> {
    let mut reasons = Vec::new();
    if let (Some(p), Some(drop)) = (limits.max_drop_points, m.drop_points()) {
        if drop > p + TOLERANCE {
            reasons.push(match (m.metric, m.accuracy) {
                (GateMetric::Accuracy, Some(a)) => format!(
                    "{scope}accuracy dropped {drop:.2} points ({:.4} → {:.4}), more than the allowed {p}",
                    a.original, a.candidate
                ),
                _ => format!(
                    "the candidate's predicted class differs from the original's on {drop:.2}% of \
                     the {scope}rows (agreement {:.4}), more than the allowed {p} points",
                    m.agreement
                ),
            });
        }
    }
    if let (Some(r), Some(rmse)) = (limits.max_rmse_increase, m.rmse) {
        let up = rmse.candidate - rmse.original;
        if up > r + TOLERANCE {
            reasons.push(format!(
                "{scope}RMSE rose by {up:.6} ({:.6} → {:.6}), more than the allowed {r}",
                rmse.original, rmse.candidate
            ));
        }
    }
    if let Some(d) = limits.max_abs_diff {
        if m.max_abs_diff.is_nan() || m.max_abs_diff > d + TOLERANCE {
            reasons.push(format!(
                "an output differs from the original's by {:.6} on the {scope}data, more than the \
                 allowed {d}",
                m.max_abs_diff
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Why the candidate's cost fails the limits (None when it does not): its parameter count, and
/// its measured `speedup` (with where it was measured).
pub fn cost_verdict(limits: &Limits, params: usize, speedup: (f64, &str)) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(max) = limits.max_params.filter(|&max| params > max) {
        reasons.push(format!(
            "the candidate keeps {params} parameters, more than the allowed {max}"
        ));
    }
    let (measured, engine) = speedup;
    if let Some(min) = limits
        .min_speedup
        .filter(|&min| measured.is_nan() || measured < min)
    {
        reasons.push(format!(
            "the candidate is {measured:.2}× as fast as the original ({engine}, large batch), \
             less than the required {min}×"
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// √(mean of (pred − y)²) over every value; `pred` must be `[N, k]` like `y`.
pub fn rmse(pred: &ArrayD<f64>, y: &Array2<f32>) -> f64 {
    debug_assert_eq!(pred.shape(), y.shape());
    let n = y.len().max(1) as f64;
    let sum: f64 = pred
        .iter()
        .zip(y.iter())
        .map(|(p, &t)| (p - f64::from(t)).powi(2))
        .sum();
    (sum / n).sqrt()
}

/// Fraction of positions where `a` and `b` hold the same class (1 for no rows).
pub fn agreement(a: &[i64], b: &[i64]) -> f64 {
    if a.is_empty() {
        return 1.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Largest |a − b| over every value (infinite when the shapes differ; NaN counts as infinite).
pub fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    if a.shape() != b.shape() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn measured(metric: GateMetric) -> Measured {
        Measured {
            metric,
            accuracy: None,
            agreement: 1.0,
            rmse: None,
            max_abs_diff: 0.0,
        }
    }

    #[test]
    fn rmse_is_the_root_of_the_mean_square_over_every_value() {
        let pred = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
        let y = array![[1.0f32, 0.0], [3.0, 8.0]];
        // errors 0, 2, 0, −4: mean square (4 + 16) / 4 = 5
        assert_eq!(rmse(&pred, &y), 5f64.sqrt());
    }

    #[test]
    fn agreement_and_max_abs_diff_are_exact() {
        assert_eq!(agreement(&[1, 2, 3, 4], &[1, 0, 3, 0]), 0.5);
        assert_eq!(agreement(&[], &[]), 1.0);
        let a = array![[0.0, 1.5], [2.0, -1.0]].into_dyn();
        let b = array![[0.25, 1.5], [2.0, 1.0]].into_dyn();
        assert_eq!(max_abs_diff(&a, &b), 2.0);
        assert_eq!(max_abs_diff(&a, &array![[0.0]].into_dyn()), f64::INFINITY);
        assert_eq!(
            max_abs_diff(&array![[f64::NAN]].into_dyn(), &array![[0.0]].into_dyn()),
            f64::INFINITY
        );
    }

    #[test]
    fn the_metric_follows_the_data() {
        let x = crate::data::Features::F32(ndarray::ArrayD::zeros(vec![2, 1]).into_shared());
        let mut d = Dataset {
            path: "d.npz".into(),
            x,
            y: None,
            y_values: None,
        };
        assert_eq!(GateMetric::for_data(&d), GateMetric::Agreement);
        d.y_values = Some(Array2::zeros((2, 1)));
        assert_eq!(GateMetric::for_data(&d), GateMetric::Regression);
        d.y = Some(vec![0, 1]);
        assert_eq!(GateMetric::for_data(&d), GateMetric::Accuracy);
    }

    #[test]
    fn agreement_drop_is_the_disagreement_in_points() {
        let m = Measured {
            agreement: 0.97,
            ..measured(GateMetric::Agreement)
        };
        assert!((m.drop_points().unwrap() - 3.0).abs() < 1e-12);
        let within = Limits {
            max_drop_points: Some(3.5),
            ..Default::default()
        };
        assert_eq!(verdict(&within, &m, ""), None);
        let strict = Limits {
            max_drop_points: Some(2.5),
            ..Default::default()
        };
        let reason = verdict(&strict, &m, "").unwrap();
        assert!(reason.contains("3.00% of the rows"), "{reason}");
    }

    #[test]
    fn accuracy_reason_is_unchanged() {
        let m = Measured {
            accuracy: Some(Pair {
                original: 0.9,
                candidate: 0.85,
            }),
            ..measured(GateMetric::Accuracy)
        };
        let limits = Limits {
            max_drop_points: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            verdict(&limits, &m, "test ").unwrap(),
            "test accuracy dropped 5.00 points (0.9000 → 0.8500), more than the allowed 1"
        );
    }

    #[test]
    fn regression_checks_rmse_increase_and_max_abs_diff_together() {
        let m = Measured {
            rmse: Some(Pair {
                original: 0.5,
                candidate: 0.75,
            }),
            max_abs_diff: 2.0,
            ..measured(GateMetric::Regression)
        };
        assert_eq!(m.rmse_increase(), Some(0.25));
        let pass = Limits {
            max_rmse_increase: Some(0.25),
            max_abs_diff: Some(2.0),
            ..Default::default()
        };
        assert_eq!(verdict(&pass, &m, ""), None);
        let fail = Limits {
            max_rmse_increase: Some(0.2),
            max_abs_diff: Some(1.0),
            ..Default::default()
        };
        let reason = verdict(&fail, &m, "").unwrap();
        assert!(reason.contains("RMSE rose by 0.250000") && reason.contains("by 2.000000"));
        // No limit asked for: nothing is checked.
        assert_eq!(verdict(&Limits::default(), &m, ""), None);
    }

    #[test]
    fn cost_limits_fail_on_params_and_speed() {
        let limits = Limits {
            max_params: Some(1000),
            min_speedup: Some(1.5),
            ..Default::default()
        };
        assert_eq!(cost_verdict(&limits, 1000, (1.5, "tract")), None);
        let too_big = cost_verdict(&limits, 1001, (2.0, "tract")).unwrap();
        assert!(too_big.contains("1001 parameters"), "{too_big}");
        let too_slow = cost_verdict(&limits, 10, (1.49, "tract")).unwrap();
        assert!(
            too_slow.contains("1.49×") && too_slow.contains("1.5×"),
            "{too_slow}"
        );
        assert!(cost_verdict(&limits, 10, (f64::NAN, "tract")).is_some());
        assert_eq!(cost_verdict(&Limits::default(), 10, (0.1, "tract")), None);
        let zero = Limits {
            min_speedup: Some(0.0),
            ..Default::default()
        };
        assert!(zero
            .check(GateMetric::Accuracy, std::path::Path::new("t"))
            .is_err());
    }

    #[test]
    fn limits_are_refused_where_they_mean_nothing() {
        let p = std::path::Path::new("t.npz");
        let drop = Limits {
            max_drop_points: Some(1.0),
            ..Default::default()
        };
        assert!(drop.check(GateMetric::Regression, p).is_err());
        assert!(drop.check(GateMetric::Agreement, p).is_ok());
        let rmse = Limits {
            max_rmse_increase: Some(0.1),
            ..Default::default()
        };
        assert!(rmse.check(GateMetric::Accuracy, p).is_err());
        assert!(rmse.check(GateMetric::Regression, p).is_ok());
        let negative = Limits {
            max_abs_diff: Some(-1.0),
            ..Default::default()
        };
        assert!(negative.check(GateMetric::Accuracy, p).is_err());
    }
}
