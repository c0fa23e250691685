//! Neuron assemblies: groups of a layer's input neurons that share downstream targets (or fire
//! together), found by modularity maximisation (Louvain local moving, deterministic order).
use ndarray::{Array2, ArrayView2, Axis};

/// Connection strength Â = |tanh(γW)| of a weight `[n_in, n_out]`.
pub fn strength(w: ArrayView2<f32>, gamma: f64) -> Array2<f64> {
    w.mapv(|v| (gamma * v as f64).tanh().abs())
}

/// γ = 1/std(W): the scale at which tanh starts to saturate on this layer's weights.
pub fn auto_gamma(w: ArrayView2<f32>) -> f64 {
    let n = w.len().max(1) as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    if var > 0.0 {
        1.0 / var.sqrt()
    } else {
        1.0
    }
}

/// Co-connectivity M = ÂÂᵀ (n_in × n_in) with a zero diagonal.
pub fn co_connectivity(a: &Array2<f64>) -> Array2<f64> {
    let mut m = a.dot(&a.t());
    m.diag_mut().fill(0.0);
    m
}

/// Similarity from activity: positive part of the correlation of the columns of `h` [B, n].
/// Constant neurons correlate with nothing.
pub fn activity_similarity(h: ArrayView2<f32>) -> Array2<f64> {
    let mut s = crate::stats::ColumnStats::of(h).correlation(1e-9, |r| r.max(0.0));
    s.diag_mut().fill(0.0);
    s
}

/// Newman modularity of a partition of a weighted undirected graph (symmetric, zero diagonal).
pub fn modularity(m: &Array2<f64>, labels: &[usize]) -> f64 {
    let k: Vec<f64> = m.sum_axis(Axis(1)).to_vec();
    let two_m: f64 = k.iter().sum();
    if two_m <= 0.0 {
        return 0.0;
    }
    let n = labels.len();
    let mut q = 0.0;
    for i in 0..n {
        for j in 0..n {
            if labels[i] == labels[j] {
                q += m[[i, j]] - k[i] * k[j] / two_m;
            }
        }
    }
    q / two_m
}

/// Louvain's local-moving phase: each node moves to the neighbouring community with the largest
/// modularity gain until nothing moves. Returns community labels 0..c, numbered by first node.
pub fn louvain(m: &Array2<f64>) -> Vec<usize> {
    let n = m.nrows();
    let k: Vec<f64> = m.sum_axis(Axis(1)).to_vec();
    let two_m: f64 = k.iter().sum();
    let mut label: Vec<usize> = (0..n).collect();
    if two_m <= 0.0 {
        return label;
    }
    let mut total: Vec<f64> = k.clone(); // Σ degrees per community
    for _round in 0..100 {
        let mut moved = false;
        for i in 0..n {
            let own = label[i];
            total[own] -= k[i];
            // Weight from i to each community.
            let mut links: std::collections::BTreeMap<usize, f64> =
                std::collections::BTreeMap::new();
            for j in 0..n {
                if j != i && m[[i, j]] > 0.0 {
                    *links.entry(label[j]).or_default() += m[[i, j]];
                }
            }
            let gain = |c: usize, w: f64| w - total[c] * k[i] / two_m;
            let mut best = (own, gain(own, links.get(&own).copied().unwrap_or(0.0)));
            for (&c, &w) in &links {
                let g = gain(c, w);
                if g > best.1 + 1e-12 {
                    best = (c, g);
                }
            }
            label[i] = best.0;
            total[best.0] += k[i];
            moved |= best.0 != own;
        }
        if !moved {
            break;
        }
    }
    renumber(&label)
}

fn renumber(label: &[usize]) -> Vec<usize> {
    let mut map = std::collections::HashMap::new();
    label
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(*l).or_insert(next)
        })
        .collect()
}

/// Groups of neuron indices by label, largest first (ties by first index).
pub fn groups(labels: &[usize]) -> Vec<Vec<usize>> {
    let c = labels.iter().max().map(|m| m + 1).unwrap_or(0);
    let mut g = vec![Vec::new(); c];
    for (i, &l) in labels.iter().enumerate() {
        g[l].push(i);
    }
    g.retain(|v| !v.is_empty());
    g.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    g
}

/// Mean over downstream units of the share of their incoming strength that comes from their
/// strongest assembly: 1/c for evenly spread fan-in, 1 when each unit listens to one assembly.
pub fn fan_in_concentration(a: &Array2<f64>, labels: &[usize]) -> f64 {
    let c = labels.iter().max().map(|m| m + 1).unwrap_or(0);
    let m = a.ncols();
    if m == 0 || c == 0 {
        return 0.0;
    }
    let mut sum = 0.0;
    for k in 0..m {
        let mut per = vec![0.0; c];
        for (i, &l) in labels.iter().enumerate() {
            per[l] += a[[i, k]];
        }
        let total: f64 = per.iter().sum();
        if total > 0.0 {
            sum += per.iter().cloned().fold(0.0, f64::max) / total;
        }
    }
    sum / m as f64
}

/// Assemblies of one layer's input neurons from its weights.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerAssemblies {
    pub n_neurons: usize,
    pub assemblies: Vec<Vec<usize>>,
    pub modularity: f64,
    pub fan_in_concentration: f64,
}

pub fn from_weights(w: ArrayView2<f32>, gamma: f64) -> LayerAssemblies {
    let a = strength(w, gamma);
    let m = co_connectivity(&a);
    let labels = louvain(&m);
    LayerAssemblies {
        n_neurons: w.nrows(),
        modularity: modularity(&m, &labels),
        fan_in_concentration: fan_in_concentration(&a, &labels),
        assemblies: groups(&labels),
    }
}

/// Assemblies of one hidden layer of a model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HiddenLayerAssemblies {
    /// Hidden layer k: the outputs of dense layer k.
    pub layer: usize,
    pub n_neurons: usize,
    /// Neuron indices of each assembly, largest first.
    pub assemblies: Vec<Vec<usize>>,
    pub sizes: Vec<usize>,
    /// Modularity of the similarity graph the assemblies were found on.
    pub modularity: f64,
    /// "co-connectivity" (M = ÂÂᵀ of the outgoing weights) or "activity" (correlation on data).
    pub source: &'static str,
    /// γ used for Â = |tanh(γW)| (1/std(W) of the layer's outgoing weights).
    pub gamma: f64,
}

/// Assemblies of every hidden layer, from co-connectivity, or from activity correlation when
/// `activations` (one `[N, n_k]` array per hidden layer) are given; with the similarity matrix
/// (n_k × n_k, over neuron indices) each was found on.
pub fn hidden_layers(
    model: &crate::ir::Model,
    view: &crate::mlp::MlpView,
    activations: Option<&[Array2<f32>]>,
) -> crate::Result<(Vec<HiddenLayerAssemblies>, Vec<Array2<f64>>)> {
    let mut reports = Vec::new();
    let mut similarities = Vec::new();
    for k in 0..view.layers.len().saturating_sub(1) {
        let w = view.layers[k + 1].weight_matrix(&model.graph);
        let gamma = auto_gamma(w.view());
        let (sim, source) = match activations {
            Some(h) => (activity_similarity(h[k].view()), "activity"),
            None => (
                co_connectivity(&strength(w.view(), gamma)),
                "co-connectivity",
            ),
        };
        let labels = louvain(&sim);
        let groups = groups(&labels);
        reports.push(HiddenLayerAssemblies {
            layer: k,
            n_neurons: w.nrows(),
            sizes: groups.iter().map(Vec::len).collect(),
            modularity: modularity(&sim, &labels),
            assemblies: groups,
            source,
            gamma,
        });
        similarities.push(sim);
    }
    Ok((reports, similarities))
}

/// Mean of each column of `h` [N, n] over the rows of each label: the labels present, sorted,
/// and a [classes, n] array. Rows beyond the shorter of `h` and `labels` are not used.
pub fn class_means(h: ArrayView2<f32>, labels: &[i64]) -> (Vec<i64>, Array2<f64>) {
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut sums = Array2::<f64>::zeros((classes.len(), h.ncols()));
    let mut counts = vec![0usize; classes.len()];
    for (row, label) in h.rows().into_iter().zip(labels) {
        let c = classes.binary_search(label).unwrap_or_default();
        counts[c] += 1;
        let mut sum = sums.row_mut(c);
        sum.zip_mut_with(&row, |s, &v| *s += v as f64);
    }
    for (mut sum, &n) in sums.rows_mut().into_iter().zip(&counts) {
        sum /= n.max(1) as f64;
    }
    (classes, sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_planted_blocks_are_found() {
        // Neurons 0-2 feed units 0-1 only, neurons 3-5 feed units 2-3 only.
        let mut w = Array2::<f32>::zeros((6, 4));
        for i in 0..3 {
            w[[i, 0]] = 1.0;
            w[[i, 1]] = 0.8;
            w[[i + 3, 2]] = 1.0;
            w[[i + 3, 3]] = 0.8;
        }
        let r = from_weights(w.view(), 1.0);
        assert_eq!(r.assemblies, vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert!((r.fan_in_concentration - 1.0).abs() < 1e-12);
        // Two equal disconnected cliques: Q = 1 − 2·(1/2)² = 0.5.
        assert!((r.modularity - 0.5).abs() < 1e-9, "{}", r.modularity);
    }

    #[test]
    fn class_means_average_each_label() {
        let h = ndarray::array![[1.0f32, 0.0], [3.0, 2.0], [5.0, 4.0]];
        let (classes, means) = class_means(h.view(), &[4, 2, 4]);
        assert_eq!(classes, vec![2, 4]);
        assert_eq!(means, ndarray::array![[3.0, 2.0], [3.0, 2.0]]);
        let (none, empty) = class_means(h.view(), &[]);
        assert!(none.is_empty() && empty.nrows() == 0);
    }

    #[test]
    fn uniform_weights_give_no_structure() {
        let w = Array2::<f32>::from_elem((5, 3), 0.5);
        let r = from_weights(w.view(), 1.0);
        assert!(r.modularity.abs() < 1e-9);
    }
}
