//! The optimizer update computed by the host in one pass over each tensor, instead of a chain of
//! elementwise graph ops that each write a full-size temporary. The rules are PyTorch's, in the
//! same f32 operation order as the in-graph update (`train::step::optimizer`):
//!
//! - SGD with momentum μ: buf' = μ·buf + g;  p' = p − lr·buf'
//! - Adam (β₁, β₂, ε) at step t (from 1): m' = β₁m + (1 − β₁)g;  v' = β₂v + (1 − β₂)g²;
//!   p' = p − s · m' / (√v' + ε̂), with s = lr·√bc₂ / bc₁, ε̂ = ε·√bc₂, bc₁ = 1 − β₁ᵗ,
//!   bc₂ = 1 − β₂ᵗ (Adam's bias corrections folded into two scalars).
//!
//! Contract: [`apply`] reads the current values and writes the next ones into separate buffers
//! of the same lengths (so the state before the step survives it); the result does not depend
//! on how the work is split between threads (every element is computed on its own). With
//! `parallel` false it runs on the calling thread alone: a caller already inside a rayon task
//! (compress heals candidates two at a time) must not wait on rayon, or the waiting worker would
//! start other candidates meanwhile.
use rayon::prelude::*;

/// Elements per parallel task: large enough that scheduling costs nothing next to the arithmetic.
const CHUNK: usize = 1 << 14;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UpdateRule {
    Sgd { momentum: f64 },
    Adam { beta1: f64, beta2: f64, eps: f64 },
}

impl UpdateRule {
    /// Optimizer slots per param (SGD: buf; Adam: m, v).
    pub fn slots(&self) -> usize {
        match self {
            UpdateRule::Sgd { .. } => 1,
            UpdateRule::Adam { .. } => 2,
        }
    }
}

/// One tensor's update: its current value and slots, its gradient, and where the next ones go.
pub struct TensorUpdate<'a> {
    pub param: &'a [f32],
    pub grad: &'a [f32],
    /// The current slots, in [`UpdateRule::slots`] order.
    pub slots: &'a [&'a [f32]],
    pub next_param: &'a mut [f32],
    pub next_slots: &'a mut [&'a mut [f32]],
}

/// Writes the next param and slots of one tensor after a step with learning rate `lr` at step
/// `step` (from 1). Panics if the buffers' lengths differ (a bug in the caller, not bad input).
pub fn apply(rule: UpdateRule, lr: f32, step: u64, t: TensorUpdate<'_>, parallel: bool) {
    let n = t.param.len();
    assert!(
        t.grad.len() == n && t.next_param.len() == n,
        "update buffers differ in length"
    );
    match (rule, t.slots, t.next_slots) {
        (UpdateRule::Sgd { momentum }, [buf], [next_buf]) => sgd(
            momentum as f32,
            lr,
            (t.param, t.grad, buf),
            (t.next_param, next_buf),
            parallel,
        ),
        (UpdateRule::Adam { beta1, beta2, eps }, [m, v], [next_m, next_v]) => {
            let c = AdamConstants::at(beta1, beta2, eps, lr, step);
            adam(
                &c,
                (t.param, t.grad, m, v),
                (t.next_param, next_m, next_v),
                parallel,
            )
        }
        _ => panic!("{} optimizer slots given for {rule:?}", t.slots.len()),
    }
}

/// Runs `body` on each chunk's index and items, on rayon's threads or on this one.
fn for_each_chunk<T: Send>(items: Vec<T>, parallel: bool, body: impl Fn((usize, T)) + Sync + Send) {
    if parallel {
        items.into_par_iter().enumerate().for_each(body);
    } else {
        items.into_iter().enumerate().for_each(body);
    }
}

fn sgd(
    mu: f32,
    lr: f32,
    (p, g, buf): (&[f32], &[f32], &[f32]),
    (p_out, buf_out): (&mut [f32], &mut [f32]),
    parallel: bool,
) {
    let chunks: Vec<_> = p_out
        .chunks_mut(CHUNK)
        .zip(buf_out.chunks_mut(CHUNK))
        .collect();
    for_each_chunk(chunks, parallel, |(c, (p_out, buf_out))| {
        let at = c * CHUNK;
        for i in 0..p_out.len() {
            let b = buf[at + i] * mu + g[at + i];
            buf_out[i] = b;
            p_out[i] = p[at + i] - lr * b;
        }
    });
}

/// Adam's per-step scalars, in f32 as the graph computes them.
struct AdamConstants {
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    step_size: f32,
    eps_hat: f32,
}

impl AdamConstants {
    fn at(beta1: f64, beta2: f64, eps: f64, lr: f32, step: u64) -> Self {
        let t = step as f32;
        let bc1 = 1.0 - (beta1 as f32).powf(t);
        let bc2 = 1.0 - (beta2 as f32).powf(t);
        let root_bc2 = bc2.sqrt();
        AdamConstants {
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            step_size: lr * root_bc2 / bc1,
            eps_hat: root_bc2 * eps as f32,
        }
    }
}

fn adam(
    c: &AdamConstants,
    (p, g, m, v): (&[f32], &[f32], &[f32], &[f32]),
    (p_out, m_out, v_out): (&mut [f32], &mut [f32], &mut [f32]),
    parallel: bool,
) {
    let chunks: Vec<_> = p_out
        .chunks_mut(CHUNK)
        .zip(m_out.chunks_mut(CHUNK))
        .zip(v_out.chunks_mut(CHUNK))
        .collect();
    for_each_chunk(chunks, parallel, |(k, ((p_out, m_out), v_out))| {
        let at = k * CHUNK;
        for i in 0..p_out.len() {
            let gi = g[at + i];
            let mi = m[at + i] * c.beta1 + gi * c.one_minus_beta1;
            let vi = v[at + i] * c.beta2 + (gi * gi) * c.one_minus_beta2;
            m_out[i] = mi;
            v_out[i] = vi;
            p_out[i] = p[at + i] - c.step_size * (mi / (vi.sqrt() + c.eps_hat));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's Adam written out plainly in f64, with the bias corrections applied to m and v.
    fn adam_reference(p: f64, g: f64, m: f64, v: f64, lr: f64, t: i32) -> (f64, f64, f64) {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        let m = b1 * m + (1.0 - b1) * g;
        let v = b2 * v + (1.0 - b2) * g * g;
        let m_hat = m / (1.0 - b1.powi(t));
        let v_hat = v / (1.0 - b2.powi(t));
        (p - lr * m_hat / (v_hat.sqrt() + eps), m, v)
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 1000.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn adam_matches_the_textbook_rule_over_several_chunks() {
        let n = 3 * CHUNK + 17;
        let (p, g) = (values(n, 1), values(n, 2));
        let m: Vec<f32> = values(n, 3).iter().map(|x| x * 0.1).collect();
        let v: Vec<f32> = values(n, 4).iter().map(|x| x * x * 0.01).collect();
        let (mut p2, mut m2, mut v2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let rule = UpdateRule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        for t in [1u64, 7, 1000] {
            apply(
                rule,
                1e-3,
                t,
                TensorUpdate {
                    param: &p,
                    grad: &g,
                    slots: &[&m, &v],
                    next_param: &mut p2,
                    next_slots: &mut [&mut m2, &mut v2],
                },
                t % 2 == 0,
            );
            for i in (0..n).step_by(97) {
                let (pr, mr, vr) = adam_reference(
                    p[i] as f64,
                    g[i] as f64,
                    m[i] as f64,
                    v[i] as f64,
                    1e-3,
                    t as i32,
                );
                assert!(
                    (m2[i] as f64 - mr).abs() <= 1e-6 * (1.0 + mr.abs()),
                    "m at {i}"
                );
                assert!(
                    (v2[i] as f64 - vr).abs() <= 1e-6 * (1.0 + vr.abs()),
                    "v at {i}"
                );
                // The step is lr-sized; f32 rounding of p itself is ~6e-8.
                assert!(
                    (p2[i] as f64 - pr).abs() <= 2e-7,
                    "p at {i} (t = {t}): {} vs {pr}",
                    p2[i]
                );
            }
        }
    }

    #[test]
    fn sgd_with_momentum_matches_its_rule_and_leaves_the_inputs() {
        let n = CHUNK + 5;
        let (p, g, buf) = (values(n, 5), values(n, 6), values(n, 7));
        let (mut p2, mut buf2) = (vec![0.0; n], vec![0.0; n]);
        apply(
            UpdateRule::Sgd { momentum: 0.9 },
            0.01,
            3,
            TensorUpdate {
                param: &p,
                grad: &g,
                slots: &[&buf],
                next_param: &mut p2,
                next_slots: &mut [&mut buf2],
            },
            false,
        );
        for i in 0..n {
            let b = 0.9f32 * buf[i] + g[i];
            assert_eq!(buf2[i], b);
            assert_eq!(p2[i], p[i] - 0.01 * b);
        }
        assert_eq!(p, values(n, 5), "the current values are only read");
    }
}
