//! Pruning one hidden layer: given its activations on calibration data and the next layer's
//! weights, choose which neurons go and compensate the next layer (docs/DESIGN.md §5).
//!
//! For a removed neuron j with outgoing row w_j: a constant neuron folds exactly into the next
//! bias (b += c·w_j); a neuron that is an affine function of a kept neuron i of its assembly
//! (h_j ≈ a·h_i + c, least squares) merges into it (w_i += a·w_j, b += c·w_j), exact when the fit
//! is; any other neuron folds its mean into the bias. The cost of each option is the standard
//! deviation of the error it leaves in the next layer's input, per unit of ‖w_j‖:
//! σ_j (remove), σ_j·√(1−ρ_ij²) (merge), 0 (constant). Neurons go cheapest first.
use crate::stats::ColumnStats;
use ndarray::{Array1, Array2, ArrayView2, Axis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Activity-weighted scores, constant folding and (unless disabled) merging along assemblies.
    Assembly,
    /// Smallest outgoing-weight norm first, no data, no compensation (the classic baseline).
    Magnitude,
}

crate::names::named!(Method, "pruning method", [Assembly => "assembly", Magnitude => "magnitude"]);

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BoundaryReport {
    pub n_before: usize,
    pub n_after: usize,
    pub constant_removed: usize,
    pub merged: usize,
    pub weak_removed: usize,
    /// The next layer was refitted by ridge regression (refit.rs) after the plan.
    pub refitted: bool,
    /// The refit's ridge strength ρ, chosen by generalized cross-validation (refit.rs).
    pub refit_ridge: Option<f64>,
}

/// The outcome for one hidden layer: kept neuron indices (ascending) and the next layer's new
/// weights `[kept, m]` and bias.
#[derive(Debug, Clone)]
pub struct BoundaryPlan {
    pub keep: Vec<usize>,
    pub w_next: Array2<f32>,
    pub b_next: Option<Array1<f32>>,
    pub report: BoundaryReport,
}

/// The activations' statistics a plan needs: the columns' and their clamped correlations.
struct Stats {
    columns: ColumnStats,
    corr: Array2<f64>,
}

impl std::ops::Deref for Stats {
    type Target = ColumnStats;
    fn deref(&self) -> &ColumnStats {
        &self.columns
    }
}

fn stats(h: ArrayView2<f32>) -> Stats {
    let columns = ColumnStats::of(h);
    let corr = columns.correlation(0.0, |r| r.clamp(-1.0, 1.0));
    Stats { columns, corr }
}

fn is_constant(st: &Stats, j: usize) -> bool {
    st.columns.is_constant(j)
}

/// Each neuron's cost of going first (as in [`plan`]'s first step): 0 when constant, else the
/// cheaper of removal and merging into its best partner of the same assembly.
pub fn initial_costs(
    h: ArrayView2<f32>,
    w_next: ArrayView2<f32>,
    has_bias: bool,
    assembly: Option<&[usize]>,
) -> Vec<f64> {
    let st = stats(h);
    (0..w_next.nrows())
        .map(|j| {
            let wn = w_next
                .row(j)
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            neuron_cost(&st, j, wn, has_bias, assembly, |_| true).0
        })
        .collect()
}

/// The cost of neuron j going (see the module docs) and its merge target, if merging is cheaper.
/// Without a next bias, offsets cannot be folded and count as error: a constant neuron costs
/// |mean|·‖w‖, removal √(σ² + mean²)·‖w‖, merging √(σ²(1−ρ²) + c²)·‖w‖.
fn neuron_cost(
    st: &Stats,
    j: usize,
    wn: f64,
    has_bias: bool,
    assembly: Option<&[usize]>,
    alive: impl Fn(usize) -> bool,
) -> (f64, Option<usize>) {
    let offset2 = |c: f64| if has_bias { 0.0 } else { c * c };
    if is_constant(st, j) {
        return (offset2(st.mean[j]).sqrt() * wn, None);
    }
    let sd2 = st.sd[j] * st.sd[j];
    let mut best = ((sd2 + offset2(st.mean[j])).sqrt() * wn, None);
    if let Some(groups) = assembly {
        for i in (0..st.sd.len())
            .filter(|&i| i != j && alive(i) && groups[i] == groups[j] && st.sd[i] > 0.0)
        {
            let r = st.corr[[i, j]];
            let a = r * st.sd[j] / st.sd[i];
            let c = st.mean[j] - a * st.mean[i];
            let cost = (sd2 * (1.0 - r * r).max(0.0) + offset2(c)).sqrt() * wn;
            if cost < best.0 {
                best = (cost, Some(i));
            }
        }
    }
    best
}

/// Plans the removal of `n - keep_n` neurons of a hidden layer.
///
/// `h`: the layer's activations on calibration data `[N, n]`; `w_next`/`b_next`: the next layer's
/// effective weight `[n, m]` and bias (None when it has no trainable bias: offsets are then not
/// compensated); `assembly`: a label per neuron restricting merge partners, or None for merging
/// off.
pub fn plan(
    h: ArrayView2<f32>,
    w_next: ArrayView2<f32>,
    b_next: Option<&Array1<f32>>,
    keep_n: usize,
    method: Method,
    assembly: Option<&[usize]>,
) -> BoundaryPlan {
    let n = w_next.nrows();
    let keep_n = keep_n.min(n);
    let mut w: Array2<f64> = w_next.mapv(f64::from);
    let mut b: Option<Array1<f64>> = b_next.map(|b| b.mapv(f64::from));
    let mut alive = vec![true; n];
    let mut report = BoundaryReport {
        n_before: n,
        n_after: keep_n,
        ..Default::default()
    };
    let st = (method == Method::Assembly).then(|| stats(h));
    let has_bias = b.is_some();
    let norm = |w: &Array2<f64>, j: usize| w.row(j).iter().map(|v| v * v).sum::<f64>().sqrt();

    for _ in keep_n..n {
        // Cheapest (neuron, merge target) by the cost described above; ties go to the lower index.
        let mut best: Option<(f64, usize, Option<usize>)> = None;
        for j in (0..n).filter(|&j| alive[j]) {
            let wn = norm(&w, j);
            let (cost, target) = match &st {
                None => (wn, None),
                Some(st) => neuron_cost(st, j, wn, has_bias, assembly, |i| alive[i]),
            };
            if best.is_none_or(|(bc, _, _)| cost < bc) {
                best = Some((cost, j, target));
            }
        }
        let (_, j, target) = best.expect("more alive neurons than kept");
        alive[j] = false;
        let w_j = w.row(j).to_owned();
        match (&st, target) {
            (None, _) => report.weak_removed += 1,
            (Some(st), Some(i)) => {
                // h_j ≈ a·h_i + c
                let a = st.corr[[i, j]] * st.sd[j] / st.sd[i];
                let c = st.mean[j] - a * st.mean[i];
                let mut w_i = w.row_mut(i);
                w_i.scaled_add(a, &w_j);
                if let Some(b) = &mut b {
                    b.scaled_add(c, &w_j);
                }
                report.merged += 1;
            }
            (Some(st), None) => {
                if let Some(b) = &mut b {
                    b.scaled_add(st.mean[j], &w_j);
                }
                if is_constant(st, j) && (has_bias || st.mean[j] == 0.0) {
                    report.constant_removed += 1;
                } else {
                    report.weak_removed += 1;
                }
            }
        }
    }
    let keep: Vec<usize> = (0..n).filter(|&j| alive[j]).collect();
    BoundaryPlan {
        w_next: w.select(Axis(0), &keep).mapv(|v| v as f32),
        b_next: b.map(|b| b.mapv(|v| v as f32)),
        keep,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Next-layer pre-activations h·W + b for every calibration row.
    fn next(h: &Array2<f32>, w: &Array2<f32>, b: &Array1<f32>) -> Array2<f64> {
        (h.mapv(f64::from).dot(&w.mapv(f64::from))) + &b.mapv(f64::from).insert_axis(Axis(0))
    }

    #[test]
    fn constant_and_duplicate_neurons_go_exactly() {
        // Neuron 1 is constant 0.7; neuron 3 = 2·neuron 0 − 0.5; neurons 0 and 2 vary freely.
        let h0 = [0.1f32, 0.9, 0.4, 1.3, 0.0, 0.6];
        let h2 = [1.0f32, 0.2, 0.5, 0.3, 0.8, 0.1];
        let h = Array2::from_shape_fn((6, 4), |(r, c)| match c {
            0 => h0[r],
            1 => 0.7,
            2 => h2[r],
            _ => 2.0 * h0[r] - 0.5,
        });
        let w = array![[0.5f32, -1.0], [0.3, 0.2], [-0.7, 0.4], [1.5, 0.9]];
        let b = array![0.1f32, -0.2];
        let labels = [0usize, 0, 1, 0];
        let p = plan(
            h.view(),
            w.view(),
            Some(&b),
            2,
            Method::Assembly,
            Some(&labels),
        );
        // Neuron 1 goes, and one of the duplicate pair 0 / 3 merges into the other.
        assert!(p.keep == vec![0, 2] || p.keep == vec![2, 3], "{:?}", p.keep);
        assert_eq!(
            (
                p.report.constant_removed,
                p.report.merged,
                p.report.weak_removed
            ),
            (1, 1, 0)
        );
        let before = next(&h, &w, &b);
        let after = next(
            &h.select(Axis(1), &p.keep),
            &p.w_next,
            p.b_next.as_ref().unwrap(),
        );
        let diff = (&before - &after)
            .mapv(f64::abs)
            .fold(0.0, |m: f64, v| m.max(*v));
        assert!(diff < 1e-5, "max |Δ| = {diff}");
    }

    #[test]
    fn keeping_everything_changes_nothing() {
        let h = array![[0.1f32, 0.2], [0.3, 0.5], [0.2, 0.9]];
        let w = array![[1.0f32, 2.0], [3.0, 4.0]];
        let b = array![0.5f32, 0.25];
        let p = plan(h.view(), w.view(), Some(&b), 2, Method::Assembly, None);
        assert_eq!(p.keep, vec![0, 1]);
        assert_eq!(p.w_next, w);
        assert_eq!(p.b_next.unwrap(), b);
    }

    #[test]
    fn magnitude_removes_the_smallest_outgoing_rows() {
        let h = Array2::<f32>::zeros((3, 3));
        let w = array![[1.0f32, 1.0], [0.1, 0.0], [0.0, 2.0]];
        let p = plan(h.view(), w.view(), None, 2, Method::Magnitude, None);
        assert_eq!(p.keep, vec![0, 2]);
        assert!(p.b_next.is_none());
    }
}
