//! The step graph's gradients against central finite differences of its own forward loss graph
//! (f64, run by tract), and the BEAN term against a direct O(n²B) evaluation of the definition.
mod common;
use bean_onnx::engine::{self, EngineKind, EngineOptions, StepGraph, Value};
use bean_onnx::ir::Model;
use bean_onnx::mlp::Activation;
use bean_onnx::onnx;
use bean_onnx::tensor::DataType;
use bean_onnx::train::step::*;
use ndarray::{Array1, Array2, ArrayD, Axis};
use std::collections::HashMap;

/// Deterministic pseudo-random numbers in [-1, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn matrix(&mut self, r: usize, c: usize, scale: f64) -> Array2<f64> {
        Array2::from_shape_fn((r, c), |_| self.next() * scale)
    }
}

const B: usize = 6;

struct Case {
    spec: StepSpec,
    x: Array2<f64>,
    target: Array2<f64>,
    params: Vec<(String, ArrayD<f64>)>,
}

fn make_case(spec: StepSpec, seed: u64) -> Case {
    let mut rng = Lcg(seed);
    let n0 = spec.layers[0].n_in;
    let c = spec.n_classes();
    let x = rng.matrix(B, n0, 1.5);
    let target = match spec.loss {
        LossKind::Mse => rng.matrix(B, c, 1.0),
        LossKind::CrossEntropy => {
            // Soft targets (a teacher) for half the rows, one-hot labels for the rest.
            let mut t = Array2::zeros((B, c));
            for b in 0..B {
                if b % 2 == 0 {
                    let row: Vec<f64> = (0..c).map(|_| rng.next().exp()).collect();
                    let s: f64 = row.iter().sum();
                    for k in 0..c {
                        t[[b, k]] = row[k] / s;
                    }
                } else {
                    t[[b, b % c]] = 1.0;
                }
            }
            t
        }
    };
    let params = spec
        .params()
        .into_iter()
        .map(|p| {
            let a = if p.is_bias {
                rng.matrix(1, p.shape[0], 0.3)
                    .into_shape_with_order(p.shape[0])
                    .unwrap()
                    .into_dyn()
            } else {
                rng.matrix(p.shape[0], p.shape[1], 0.8).into_dyn()
            };
            (p.name, a)
        })
        .collect();
    Case {
        spec,
        x,
        target,
        params,
    }
}

/// Runs a graph in tract, feeding f64 values (converted when the graph is f32); its outputs by
/// name.
fn run_as(
    model: &Model,
    feed: &[(String, ArrayD<f64>)],
    elem: DataType,
) -> HashMap<String, ArrayD<f64>> {
    let bytes = onnx::to_bytes(model);
    let mut s = engine::load(EngineKind::Tract, &bytes, &EngineOptions::default()).unwrap();
    let inputs: Vec<(&str, Value)> = feed
        .iter()
        .map(|(n, a)| {
            let v = match elem {
                DataType::Double => Value::F64(a.clone()),
                _ => Value::F32(a.mapv(|v| v as f32)),
            };
            (n.as_str(), v)
        })
        .collect();
    let values = s.run(&inputs).unwrap().into_iter().map(|v| match v {
        Value::F64(a) => a,
        Value::F32(a) => a.mapv(f64::from),
        other => panic!("unexpected output {other:?}"),
    });
    model
        .graph
        .outputs
        .iter()
        .map(|o| o.name.clone())
        .zip(values)
        .collect()
}

fn run(model: &Model, feed: &[(String, ArrayD<f64>)]) -> HashMap<String, ArrayD<f64>> {
    run_as(model, feed, DataType::Double)
}

fn scalar(v: f64) -> ArrayD<f64> {
    ndarray::arr0(v).into_dyn()
}

/// x, target, then the params, named as the loss graph takes them.
fn base_feed(case: &Case, graph: &LossGraph) -> Vec<(String, ArrayD<f64>)> {
    let mut feed = vec![
        (graph.x.clone(), case.x.clone().into_dyn()),
        (graph.target.clone(), case.target.clone().into_dyn()),
    ];
    let names: Vec<&String> = case.params.iter().map(|(n, _)| n).collect();
    assert_eq!(
        graph.params.iter().collect::<Vec<_>>(),
        names,
        "param order"
    );
    feed.extend(
        graph
            .params
            .iter()
            .cloned()
            .zip(case.params.iter().map(|(_, a)| a.clone())),
    );
    feed
}

/// The step graph's feed for `case` at step `t` with learning rate `lr`: the params from
/// `params`, the optimizer slots from `slots` (zeros when empty).
fn step_feed(
    case: &Case,
    graph: &StepGraph,
    lr: f64,
    t: usize,
    state: &[ArrayD<f64>],
) -> Vec<(String, ArrayD<f64>)> {
    let mut feed = vec![
        (graph.inputs.x.clone(), case.x.clone().into_dyn()),
        (graph.inputs.target.clone(), case.target.clone().into_dyn()),
        (graph.inputs.lr.clone(), scalar(lr)),
        (graph.inputs.step.clone(), scalar(t as f64)),
    ];
    feed.extend(
        graph
            .state
            .iter()
            .map(|b| b.input.clone())
            .zip(state.iter().cloned()),
    );
    feed
}

/// The params of `case`, then zeroed optimizer slots: the starting state.
fn start_state(case: &Case, graph: &StepGraph) -> Vec<ArrayD<f64>> {
    let mut state: Vec<ArrayD<f64>> = case.params.iter().map(|(_, a)| a.clone()).collect();
    state.extend(
        graph.state[case.params.len()..]
            .iter()
            .map(|b| ArrayD::zeros(b.shape.clone())),
    );
    state
}

/// Compares analytic gradients with central differences, in f64 (tight) or, for ops tract only
/// has in f32 (Erf), in f32 with a step and tolerance to match.
fn check_gradients(case: &Case, what: &str, elem: DataType) {
    let step = case.spec.step_graph_with_gradients(elem);
    let loss = case.spec.loss_graph(elem);
    let (h, tol, abs_tol) = match elem {
        DataType::Double => (1e-6, 1e-4, 1e-8),
        _ => (1e-2, 2e-2, 2e-3),
    };
    let feed = step_feed(case, &step.step, 0.0, 1, &start_state(case, &step.step));
    let outputs = run_as(&step.step.model, &feed, elem);
    let total = |feed: &[(String, ArrayD<f64>)]| -> f64 {
        let o = run_as(&loss.model, feed, elem);
        let s = &loss.scalars;
        o[&s.task_loss].sum() + o[&s.bean].sum() + o[&s.baseline].sum()
    };
    for (pi, (name, value)) in case.params.iter().enumerate() {
        let grad = &outputs[&step.gradients[pi]];
        assert_eq!(grad.shape(), value.shape(), "{what}: grad.{name} shape");
        for idx in 0..value.len() {
            let mut plus = base_feed(case, &loss);
            let mut minus = base_feed(case, &loss);
            plus[2 + pi].1.as_slice_mut().unwrap()[idx] += h;
            minus[2 + pi].1.as_slice_mut().unwrap()[idx] -= h;
            let fd = (total(&plus) - total(&minus)) / (2.0 * h);
            let an = grad.as_slice().unwrap()[idx];
            let err = (fd - an).abs() / (1e-6 + fd.abs().max(an.abs()));
            assert!(
                err < tol || (fd - an).abs() < abs_tol,
                "{what}: d/d{name}[{idx}]: analytic {an}, finite difference {fd}"
            );
        }
    }
}

fn layer(n_in: usize, n_out: usize, act: Activation, bias: bool) -> LayerSpec {
    LayerSpec {
        n_in,
        n_out,
        activation: act,
        has_bias: bias,
        bean: None,
        baseline: None,
    }
}

fn adam() -> Optimizer {
    Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    }
}

#[test]
fn gradients_of_each_activation_and_loss() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu { tanh_approx: false },
        Activation::Gelu { tanh_approx: true },
    ];
    for (i, act) in acts.into_iter().enumerate() {
        for loss in [LossKind::CrossEntropy, LossKind::Mse] {
            let spec = StepSpec {
                layers: vec![
                    layer(5, 4, act, true),
                    layer(4, 4, act, i % 2 == 0),
                    layer(4, 3, Activation::None, true),
                ],
                loss,
                optimizer: adam(),
            };
            let elem = match act {
                Activation::Gelu { tanh_approx: false } => DataType::Float,
                _ => DataType::Double,
            };
            check_gradients(
                &make_case(spec, 11 + i as u64),
                &format!("{act:?} {loss:?}"),
                elem,
            );
        }
    }
}

#[test]
fn gradients_of_bean_and_baseline_regularizers() {
    let bean = |variant, alpha, gamma| {
        Some(Bean {
            variant,
            alpha,
            gamma,
        })
    };
    type Reg = (&'static str, Option<Bean>, Option<(Baseline, f64)>);
    let regs: Vec<Reg> = vec![
        ("BEAN-1", bean(BeanVariant::One, 0.7, 1.0), None),
        ("BEAN-1 γ=2.5", bean(BeanVariant::One, 0.3, 2.5), None),
        ("BEAN-2", bean(BeanVariant::Two, 0.7, 1.0), None),
        ("BEAN-2 γ=0.4", bean(BeanVariant::Two, 2.0, 0.4), None),
        ("L1", None, Some((Baseline::L1, 0.05))),
        ("L2", None, Some((Baseline::L2, 0.05))),
        ("group lasso", None, Some((Baseline::GroupLasso, 0.05))),
        (
            "BEAN-1 + L1",
            bean(BeanVariant::One, 0.5, 1.0),
            Some((Baseline::L1, 0.02)),
        ),
    ];
    for (i, (what, bean, baseline)) in regs.into_iter().enumerate() {
        let mut layers = vec![
            layer(5, 6, Activation::Tanh, true),
            layer(6, 4, Activation::Relu, true),
            layer(4, 3, Activation::None, true),
        ];
        // Regularize every layer, including the first (whose input is the data).
        for l in &mut layers {
            l.bean = bean;
            l.baseline = baseline;
        }
        let spec = StepSpec {
            layers,
            loss: LossKind::CrossEntropy,
            optimizer: Optimizer::Sgd { momentum: 0.9 },
        };
        check_gradients(&make_case(spec, 101 + i as u64), what, DataType::Double);
    }
}

/// R = α/n² Σ_ij M_ij D_ij written out as in the definition: O(n²·B) with the n×n×B differences.
fn bean_by_definition(h: &Array2<f64>, w: &Array2<f64>, bean: Bean) -> f64 {
    let (b, n) = h.dim();
    let a = w.mapv(|v| (bean.gamma * v).tanh().abs());
    let c = a.dot(&a.t());
    let mut sum = 0.0;
    for i in 0..n {
        for j in 0..n {
            let m = match bean.variant {
                BeanVariant::One => c[[i, j]],
                BeanVariant::Two => c[[i, j]] * c[[i, j]],
            };
            let d: f64 = (0..b).map(|r| (h[[r, i]] - h[[r, j]]).powi(2)).sum::<f64>() / b as f64;
            sum += m * d;
        }
    }
    bean.alpha * sum / (n * n) as f64
}

#[test]
fn bean_term_matches_the_definition() {
    for (seed, variant) in [(7, BeanVariant::One), (8, BeanVariant::Two)] {
        let bean = Bean {
            variant,
            alpha: 0.9,
            gamma: 1.7,
        };
        let mut layers = vec![
            layer(7, 5, Activation::Relu, true),
            layer(5, 3, Activation::None, true),
        ];
        layers[0].bean = Some(bean);
        layers[1].bean = Some(bean);
        let spec = StepSpec {
            layers,
            loss: LossKind::CrossEntropy,
            optimizer: adam(),
        };
        let case = make_case(spec, seed);
        let loss = case.spec.loss_graph(DataType::Double);
        let out = run(&loss.model, &base_feed(&case, &loss));
        let graph_value = out[&loss.scalars.bean].sum();

        let w0: Array2<f64> = case.params[0].1.clone().into_dimensionality().unwrap();
        let b0: Array1<f64> = case.params[1].1.clone().into_dimensionality().unwrap();
        let w1: Array2<f64> = case.params[2].1.clone().into_dimensionality().unwrap();
        let h1 = (case.x.dot(&w0) + &b0.insert_axis(Axis(0))).mapv(|v| v.max(0.0));
        let reference = bean_by_definition(&case.x, &w0, bean) + bean_by_definition(&h1, &w1, bean);
        let rel = (graph_value - reference).abs() / reference.abs();
        assert!(
            rel < 1e-12,
            "{variant:?}: graph {graph_value}, definition {reference}"
        );
    }
}

/// The optimizer updates against PyTorch's formulas, recomputed here from the graph's own
/// gradients over two steps (the second step's gradient is taken at the first step's weights).
#[test]
fn sgd_and_adam_updates_follow_pytorch() {
    let (lr, mu, b1, b2, eps) = (0.01, 0.9, 0.9, 0.999, 1e-8);
    for optimizer in [
        Optimizer::Sgd { momentum: mu },
        Optimizer::Adam {
            beta1: b1,
            beta2: b2,
            eps,
        },
    ] {
        let mut layers = vec![
            layer(5, 4, Activation::Tanh, true),
            layer(4, 3, Activation::None, true),
        ];
        layers[1].bean = Some(Bean {
            variant: BeanVariant::One,
            alpha: 0.3,
            gamma: 1.0,
        });
        let spec = StepSpec {
            layers,
            loss: LossKind::CrossEntropy,
            optimizer,
        };
        let case = make_case(spec, 77);
        let step = case.spec.step_graph_with_gradients(DataType::Double);
        let n_params = case.params.len();
        let mut state = start_state(&case, &step.step);
        // Host copies of the optimizer state, updated with PyTorch's rules.
        let mut buf: Vec<ArrayD<f64>> = state[..n_params]
            .iter()
            .map(|a| ArrayD::zeros(a.shape()))
            .collect();
        let mut m = buf.clone();
        let mut v = buf.clone();
        for t in 1..=2 {
            let out = run(
                &step.step.model,
                &step_feed(&case, &step.step, lr, t, &state),
            );
            let next: Vec<ArrayD<f64>> = step
                .step
                .state
                .iter()
                .map(|b| out[&b.output].clone())
                .collect();
            let grads: Vec<&ArrayD<f64>> = step.gradients.iter().map(|g| &out[g]).collect();
            for p in 0..n_params {
                let g = grads[p];
                let expected = match optimizer {
                    Optimizer::Sgd { .. } => {
                        buf[p] = &buf[p] * mu + g;
                        &state[p] - &(&buf[p] * lr)
                    }
                    Optimizer::Adam { .. } => {
                        m[p] = &m[p] * b1 + &(g * (1.0 - b1));
                        v[p] = &v[p] * b2 + &(g.mapv(|x| x * x) * (1.0 - b2));
                        let bc1 = 1.0 - b1.powi(t as i32);
                        let bc2 = 1.0 - b2.powi(t as i32);
                        let denom = v[p].mapv(|x| (x / bc2).sqrt() + eps);
                        &state[p] - &((&m[p] / bc1) / &denom * lr)
                    }
                };
                let d = (&expected - &next[p])
                    .mapv(f64::abs)
                    .fold(0.0, |a: f64, b| a.max(*b));
                assert!(
                    d < 1e-12,
                    "{optimizer:?} step {t}: param {} differs by {d}",
                    step.step.state[p].input
                );
            }
            state = next.to_vec();
        }
    }
}

/// BEAN-1 in float32 against the definition in float64, at a realistic size (n = 300 inputs,
/// m = 100 outputs, B = 128) and at B = 1, with nearly identical activations (each row a common
/// level plus 1e-3 of noise: the regime BEAN drives towards, where D is tiny against s). The
/// closed form 2sᵀc − (2/B)‖HÂ‖² subtracts two large terms there; the graph centres each row of
/// H across neurons first (D is unchanged), which keeps it within 1e-3.
#[test]
fn bean1_in_float32_holds_for_nearly_identical_activations() {
    let bean = Bean {
        variant: BeanVariant::One,
        alpha: 1.0,
        gamma: 1.0,
    };
    for batch in [128, 1] {
        let mut layers = vec![
            layer(300, 100, Activation::Relu, true),
            layer(100, 10, Activation::None, true),
        ];
        layers[0].bean = Some(bean);
        let spec = StepSpec {
            layers,
            loss: LossKind::CrossEntropy,
            optimizer: adam(),
        };
        let mut case = make_case(spec, 11);
        let mut rng = Lcg(5);
        let level: Vec<f64> = (0..batch).map(|_| 2.0 + rng.next()).collect();
        case.x = Array2::from_shape_fn((batch, 300), |(b, _)| level[b] + 1e-3 * rng.next());
        case.target = Array2::from_shape_fn((batch, 10), |(b, k)| f64::from(b % 10 == k));
        for p in case.params.iter_mut().filter(|(n, _)| n.starts_with('W')) {
            p.1.mapv_inplace(|v| v * 0.1);
        }
        // The definition in f64 on the f32-rounded inputs the f32 graph sees.
        let rounded = |a: &Array2<f64>| a.mapv(|v| f64::from(v as f32));
        let w0: Array2<f64> = case.params[0].1.clone().into_dimensionality().unwrap();
        let reference = bean_by_definition(&rounded(&case.x), &rounded(&w0), bean);
        let loss = case.spec.loss_graph(DataType::Float);
        let out = run_as(&loss.model, &base_feed(&case, &loss), DataType::Float);
        let value = out[&loss.scalars.bean].sum();
        let rel = (value - reference).abs() / reference.abs();
        eprintln!("B = {batch}: float32 {value:e}, definition {reference:e}, relative {rel:e}");
        assert!(
            reference > 0.0 && rel <= 1e-3,
            "B = {batch}: relative error {rel:e}"
        );
    }
}
