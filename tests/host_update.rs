//! The optimizer update computed by the host (ONNX Runtime on the CPU, the default) against the
//! same update inside the step graph: after 100 steps of Adam and of SGD with momentum, with
//! BEAN-1 and a baseline on, every state tensor agrees within 1e-5 in ‖Δ‖/‖·‖; two runs give the
//! same bytes; a step whose loss is not finite leaves the state before it. The graph's update with
//! the state bound in pre-allocated buffers (a device's path, run here on the CPU) gives the same
//! bytes as the unbound graph step. Both fixed-buffer runners keep their buffers' addresses.
mod common;
use bean_onnx::engine::{EngineKind, EngineOptions, StepPlacement};
use bean_onnx::mlp::Activation;
use bean_onnx::train::step::*;
use bean_onnx::train::Trainer;
use ndarray::{Array2, ArrayD};

/// Deterministic values in [-scale, scale).
fn values(rows: usize, cols: usize, scale: f32, seed: &mut u64) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |_| {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    })
}

fn spec(optimizer: Optimizer) -> StepSpec {
    let sizes = [20, 16, 12, 5];
    StepSpec {
        layers: (0..3)
            .map(|l| LayerSpec {
                n_in: sizes[l],
                n_out: sizes[l + 1],
                activation: if l < 2 {
                    Activation::Tanh
                } else {
                    Activation::None
                },
                has_bias: true,
                bean: (l > 0).then_some(Bean {
                    variant: BeanVariant::One,
                    alpha: 0.05,
                    gamma: 1.0,
                }),
                baseline: (l == 0).then_some((Baseline::L2, 1e-3)),
            })
            .collect(),
        loss: LossKind::CrossEntropy,
        optimizer,
    }
}

fn initial_state(spec: &StepSpec, seed: &mut u64) -> Vec<ArrayD<f32>> {
    let n_params = spec.params().len();
    spec.state_names()
        .iter()
        .enumerate()
        .map(|(i, (_, shape))| match (i < n_params, shape.as_slice()) {
            (true, [r, c]) => values(*r, *c, 0.5, seed).into_dyn(),
            (true, [c]) => values(1, *c, 0.1, seed)
                .into_shape_with_order(vec![*c])
                .unwrap(),
            _ => ArrayD::zeros(shape.clone()),
        })
        .collect()
}

/// The state after `steps` steps on fixed batches, with the update placed as `step` says.
fn train(optimizer: Optimizer, step: StepPlacement, steps: usize, lr: f64) -> Trainer {
    let spec = spec(optimizer);
    let graph = spec.step_graph();
    let opts = EngineOptions {
        threads: 1,
        step,
        ..Default::default()
    };
    let mut trainer =
        Trainer::new(EngineKind::Ort, &graph, spec.params().len(), &opts, lr).unwrap();
    let mut seed = 7;
    trainer
        .set_state(&initial_state(&spec, &mut seed), 0)
        .unwrap();
    for _ in 0..steps {
        let x = values(8, 20, 1.0, &mut seed).into_dyn();
        let mut t = ArrayD::<f32>::zeros(vec![8, 5]);
        for r in 0..8 {
            t[[r, (seed as usize + r) % 5]] = 1.0;
        }
        let s = trainer.step(x, t).unwrap();
        assert!(s.all_finite());
    }
    trainer
}

fn relative_difference(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    diff.sqrt() / norm.sqrt().max(1e-30)
}

const HOST: StepPlacement = StepPlacement::Auto;
const GRAPH: StepPlacement = StepPlacement::Graph;

const ADAM: Optimizer = Optimizer::Adam {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
};

#[test]
fn the_host_update_follows_the_graph_update_for_100_steps() {
    common::require_ort();
    for optimizer in [ADAM, Optimizer::Sgd { momentum: 0.9 }] {
        let host = train(optimizer, HOST, 100, 1e-2);
        let graph = train(optimizer, GRAPH, 100, 1e-2);
        assert!(
            host.describe().contains("host update"),
            "{}",
            host.describe()
        );
        assert!(!graph.describe().contains("host update"));
        let (h, g) = (host.state().unwrap(), graph.state().unwrap());
        let moved =
            relative_difference(&g[0], &train(optimizer, GRAPH, 0, 1e-2).state().unwrap()[0]);
        assert!(
            moved > 1e-2,
            "the weights moved ({moved:e}), so the comparison means something"
        );
        let mut largest = 0.0f64;
        for (i, (a, b)) in h.iter().zip(&g).enumerate() {
            let d = relative_difference(a, b);
            assert!(
                d <= 1e-5,
                "{optimizer:?}: state tensor {i} differs by {d:e}"
            );
            largest = largest.max(d);
        }
        eprintln!("{optimizer:?}: largest relative difference after 100 steps {largest:e}");
    }
}

#[test]
fn host_updates_are_deterministic() {
    common::require_ort();
    let a = train(ADAM, HOST, 30, 1e-2).state().unwrap();
    let b = train(ADAM, HOST, 30, 1e-2).state().unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_step_whose_loss_is_not_finite_leaves_the_state_before_it() {
    common::require_ort();
    let mut trainer = train(ADAM, HOST, 3, 1e-2);
    let before = trainer.state().unwrap();
    let steps = trainer.steps();
    // One accepted step, then a batch that makes the loss NaN: the state goes back to `before`.
    let mut seed = 99;
    let mut t = ArrayD::<f32>::zeros(vec![8, 5]);
    for r in 0..8 {
        t[[r, 0]] = 1.0;
    }
    let s = trainer
        .step(values(8, 20, 1.0, &mut seed).into_dyn(), t.clone())
        .unwrap();
    assert!(s.all_finite());
    let nan = ArrayD::from_elem(vec![8, 20], f32::NAN);
    let s = trainer.step(nan, t).unwrap();
    assert!(!s.all_finite());
    assert_eq!(trainer.state().unwrap(), before);
    assert_eq!(trainer.steps(), steps + 1);
}

#[test]
fn the_bound_state_gives_the_unbound_graph_steps_bytes() {
    common::require_ort();
    for optimizer in [ADAM, Optimizer::Sgd { momentum: 0.9 }] {
        let bound = train(optimizer, StepPlacement::GraphBound, 100, 1e-2);
        let graph = train(optimizer, GRAPH, 100, 1e-2);
        assert!(bound.describe().contains("bound"), "{}", bound.describe());
        assert_eq!(
            bound.state().unwrap(),
            graph.state().unwrap(),
            "{optimizer:?}"
        );
    }
}

#[test]
fn fixed_state_buffers_stay_where_they_were_allocated() {
    common::require_ort();
    for placement in [HOST, StepPlacement::GraphBound] {
        let mut trainer = train(ADAM, placement, 0, 1e-2);
        let before = trainer.state_buffers();
        assert_eq!(
            before.len(),
            3 * trainer.state().unwrap().len(),
            "three sets"
        );
        let mut seed = 11;
        for _ in 0..50 {
            let x = values(8, 20, 1.0, &mut seed).into_dyn();
            let t = ArrayD::<f32>::from_elem(vec![8, 5], 0.2);
            trainer.step(x, t).unwrap();
            assert_eq!(trainer.state_buffers(), before, "{}", trainer.describe());
        }
    }
}
