//! BEAN (Gao, Ascoli & Zhao, arXiv 1909.13698) on one dense layer, with its gradients.
//!
//! For a layer with weight W [n, m] (row i: the outgoing weights of input neuron i) and the batch
//! of activations H [B, n] that feed it:
//!
//! - connection strength Â = |tanh(γW)|;
//! - co-connectivity M = ÂÂᵀ (BEAN-1: shared downstream neighbours) or M = (ÂÂᵀ)∘(ÂÂᵀ) (BEAN-2);
//! - co-activation divergence D_ij = (1/B) Σ_b (h_bi − h_bj)² = s_i + s_j − 2G_ij, with
//!   s_i = (1/B) Σ_b h_bi² and G = HᵀH / B;
//! - R = (α/n²) Σ_ij M_ij D_ij.
//!
//! BEAN-1 never builds an n×n matrix: with c = Â(Âᵀ1) (= M1),
//! Σ_ij M_ij D_ij = 2 sᵀc − (2/B)‖HÂ‖²_F, an O(B·n·m) evaluation (one more forward product).
//! Gradients, with L = diag(M1) − M:
//!
//! - ∂R/∂H = (4α/(n²B)) · H L  (BEAN-1: H·diag(c) − (HÂ)Âᵀ)
//! - ∂R/∂Â = (2α/n²) · DÂ for BEAN-1, DÂ = s(Âᵀ1)ᵀ + 1(Âᵀs)ᵀ − (2/B)Hᵀ(HÂ);
//!   (4α/n²) · (C∘D)Â for BEAN-2 with C = ÂÂᵀ
//! - ∂Â/∂W = γ · sign(W) · (1 − tanh²(γW))
//!
//! Activations are not detached: ∂R/∂H flows back into the layers below.
//!
//! Numerics: D is unchanged when a constant is added to a row of H (every neuron of one sample),
//! so the graph centres each row across neurons first. R and both gradients are the same in exact
//! arithmetic (∂R/∂H = H·L up to scale, and a row constant times L is 0 as L1 = 0), but s and G
//! then carry only the differences, not the common level: in float32 the closed form no longer
//! subtracts two large, nearly equal terms when the neurons fire alike (the regime BEAN drives
//! towards).
use super::{Bean, BeanVariant, Flavor};
use crate::ir::builder::{attr_int, GraphBuilder, Wire};
use crate::tensor::DataType;

/// The BEAN term of one layer and its gradients.
pub struct BeanTerm {
    pub value: Wire,
    /// ∂R/∂W
    pub d_w: Wire,
    /// ∂R/∂H
    pub d_h: Wire,
}

/// α/n², as k·α/n² (in this order of operations: the constants are those of the first
/// implementation to the last bit).
#[derive(Clone, Copy)]
struct Scale {
    alpha: f64,
    n2: f64,
    gamma: f64,
}

impl Scale {
    fn times(self, k: f64) -> f64 {
        k * self.alpha / self.n2
    }
}

/// The pieces both variants share: Â, tanh(γW), s as [n] and as a column [n, 1].
struct Strength {
    a: Wire,
    t: Wire,
    s: Wire,
    s_col: Wire,
}

/// BEAN on a layer with input activations `h` [B, n] and weight `w` [n, m].
pub fn bean_term(
    g: &mut GraphBuilder,
    h: &Wire,
    w: &Wire,
    n: usize,
    batch: &Wire,
    bean: Bean,
    flavor: Flavor,
) -> BeanTerm {
    let gw = g.mul_scalar(w, bean.gamma);
    let t = g.op("Tanh", &[&gw], vec![]);
    let a = g.op("Abs", &[&t], vec![]);
    // Each row of H centred across neurons: D is unchanged, and so are R and its gradients
    // (L1 = 0), but s and G no longer hold the rows' common level, which the closed forms would
    // subtract away in float32 when the neurons fire alike.
    let mean = g.reduce_mean(h, &[1], true);
    let h = &g.sub(h, &mean);
    let h2 = g.square(h);
    let s = g.reduce_mean(&h2, &[0], false); // s_i = mean_b h_bi², [n]
    let axis1 = g.ints(&[1]);
    let s_col = g.op("Unsqueeze", &[&s, &axis1], vec![]); // [n, 1]
    let st = Strength { a, t, s, s_col };
    let scale = Scale {
        alpha: bean.alpha,
        n2: (n * n) as f64,
        gamma: bean.gamma,
    };
    let (value, d_a_gamma, d_h) = match bean.variant {
        BeanVariant::One => bean_one(g, h, &st, batch, scale),
        BeanVariant::Two => bean_two(g, h, &st, batch, scale),
    };
    // ∂Â/∂W = γ·sign(W)·(1 − tanh²(γW)) = γ·(sign(t) − t·|t|); the γ is in `d_a_gamma`.
    let sign = match flavor {
        Flavor::Portable => g.op("Sign", &[&st.t], vec![]),
        Flavor::OnnxRuntime => sign_by_quotient(g, &st.t, &st.a),
    };
    let ta = g.mul(&st.t, &st.a);
    let k = g.sub(&sign, &ta);
    let d_w = g.mul(&d_a_gamma, &k);
    BeanTerm { value, d_w, d_h }
}

/// sign(t) given |t|, as t / max(|t|, ν) with ν the smallest normal value of the graph's type
/// (2⁻¹²⁶ in float32), for graphs only ONNX Runtime runs: tract's `Div` is not correctly
/// rounded (t/|t| can be 0.99999994 there). With ONNX Runtime's correctly rounded division it is
/// exactly ±1 for every normal t (a float divided by its own magnitude) and ±0 for t = ±0, where
/// `Sign` gives the same ±1 and 0 (so sign(t) − t·|t| has the same bits). For a subnormal t (a
/// weight within 10⁻³⁸/γ of |·|'s kink at 0) it is t/ν, between 0 and ±1: still a subgradient
/// there. Two fast elementwise ops instead of `Sign`, which ONNX Runtime runs one element at a
/// time: on a 1024×1024 matrix the chain sign(t) − t·|t| takes 1.45 ms instead of 3.0 ms.
fn sign_by_quotient(g: &mut GraphBuilder, t: &Wire, abs_t: &Wire) -> Wire {
    let smallest_normal = match g.elem() {
        DataType::Double => f64::MIN_POSITIVE,
        _ => f32::MIN_POSITIVE as f64,
    };
    let smallest_normal = g.scalar(smallest_normal);
    let magnitude = g.op("Max", &[abs_t, &smallest_normal], vec![]);
    g.div(t, &magnitude)
}

/// (R, γ·∂R/∂Â, ∂R/∂H) of BEAN-1 in O(B·n·m), with few passes over the [n, m] matrices: the
/// products with Â are matrix products, and γ·∂R/∂Â is a single Gemm (its scalars in the Gemm's
/// α and β).
fn bean_one(
    g: &mut GraphBuilder,
    h: &Wire,
    st: &Strength,
    batch: &Wire,
    scale: Scale,
) -> (Wire, Wire, Wire) {
    let a = &st.a;
    let axis0 = g.ints(&[0]);
    let s_row = g.op("Unsqueeze", &[&st.s, &axis0], vec![]); // sᵀ, [1, n]
                                                             // Σ M D = 2·sᵀc − (2/B)‖HÂ‖², c = M1 = Â(Âᵀ1)
    let colsum = g.reduce_sum(a, &[0], true); // (Âᵀ1)ᵀ, [1, m]
    let c_col = g.gemm(a, &colsum, false, true); // c, [n, 1]
    let c = g.reduce_sum(&c_col, &[1], false); // c, [n]
    let sc = g.matmul(&s_row, &c_col); // sᵀc, [1, 1]
    let sc = g.reduce_sum(&sc, &[], false);
    let ha = g.matmul(h, a); // [B, m]
    let ha2 = g.square(&ha);
    let q = g.reduce_sum(&ha2, &[], false);
    let qb = g.div(&q, batch);
    let diff = g.sub(&sc, &qb);
    let value = g.mul_scalar(&diff, scale.times(2.0));
    // ∂R/∂H = 4α/(n²B)·(H·diag(c) − HÂÂᵀ)
    let hc = g.mul(h, &c);
    let haa = g.gemm(&ha, a, false, true);
    let lap = g.sub(&hc, &haa);
    let lap_b = g.div(&lap, batch);
    let d_h = g.mul_scalar(&lap_b, scale.times(4.0));
    // γ·∂R/∂Â = γ·2α/n²·(s(Âᵀ1)ᵀ + 1(Âᵀs)ᵀ − (2/B)Hᵀ(HÂ))
    //         = [H; sᵀ]ᵀ·(k·[−(2/B)HÂ; (Âᵀ1)ᵀ]) + k·(Âᵀs)ᵀ with k = 2αγ/n²: one Gemm whose C is
    //           broadcast over rows; the scalars scale the small operands, not the [n, m] result.
    let k = scale.times(2.0) * scale.gamma;
    let minus_two_k = g.scalar(-2.0 * k);
    let per_row = g.div(&minus_two_k, batch);
    let ha_scaled = g.mul(&ha, &per_row);
    let colsum_k = g.mul_scalar(&colsum, k);
    let left = g.op("Concat", &[h, &s_row], vec![attr_int("axis", 0)]); // [B + 1, n]
    let right = g.op(
        "Concat",
        &[&ha_scaled, &colsum_k],
        vec![attr_int("axis", 0)],
    ); // [B + 1, m]
    let ats = g.matmul(&s_row, a); // (Âᵀs)ᵀ, [1, m]
    let ats_k = g.mul_scalar(&ats, k);
    let d_a_gamma = g.op(
        "Gemm",
        &[&left, &right, &ats_k],
        vec![attr_int("transA", 1)],
    );
    (value, d_a_gamma, d_h)
}

/// (R, γ·∂R/∂Â, ∂R/∂H) of BEAN-2 with the n×n matrices.
fn bean_two(
    g: &mut GraphBuilder,
    h: &Wire,
    st: &Strength,
    batch: &Wire,
    scale: Scale,
) -> (Wire, Wire, Wire) {
    let a = &st.a;
    let c = g.gemm(a, a, false, true); // C = ÂÂᵀ, [n, n]
    let m = g.square(&c);
    let gram = g.gemm(h, h, true, false);
    let gram_b = g.div(&gram, batch);
    let axis0 = g.ints(&[0]);
    let s_row = g.op("Unsqueeze", &[&st.s, &axis0], vec![]); // [1, n]
    let ss = g.add(&st.s_col, &s_row);
    let g2 = g.mul_scalar(&gram_b, 2.0);
    let d = g.sub(&ss, &g2); // D = s1ᵀ + 1sᵀ − 2G
    let md = g.mul(&m, &d);
    let sum = g.reduce_sum(&md, &[], false);
    let value = g.mul_scalar(&sum, scale.times(1.0));
    // ∂R/∂H = 4α/(n²B)·(H·diag(M1) − HM)
    let m1 = g.reduce_sum(&m, &[1], false);
    let hm1 = g.mul(h, &m1);
    let hm = g.matmul(h, &m);
    let lap = g.sub(&hm1, &hm);
    let lap_b = g.div(&lap, batch);
    let d_h = g.mul_scalar(&lap_b, scale.times(4.0));
    // ∂R/∂Â = 4α/n²·(C∘D)Â
    let cd = g.mul(&c, &d);
    let cda = g.matmul(&cd, a);
    let d_a_gamma = g.mul_scalar(&cda, scale.times(4.0) * scale.gamma);
    (value, d_a_gamma, d_h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, EngineKind, EngineOptions, Value};
    use ndarray::ArrayD;

    /// In ONNX Runtime `sign_by_quotient` gives `Sign`'s values on zeros of both signs, the
    /// normal boundary, ordinary values and 2,000 normals spread over (0, 1], and a subgradient
    /// (0 to ±1, with t's sign) on subnormals.
    #[test]
    fn sign_by_quotient_is_the_sign_in_onnx_runtime() {
        if std::env::var_os("ORT_DYLIB_PATH").is_none() {
            eprintln!("skipped: ORT_DYLIB_PATH is not set");
            return;
        }
        let normal = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-30,
            -0.5,
            0.999_999_9,
            -1.0,
        ];
        let spread = (1..2000u32).map(|i| {
            let v = f32::from_bits(i.wrapping_mul(2_654_435_761) % 0x3f00_0000 + 0x0080_0000);
            if i % 2 == 0 {
                -v
            } else {
                v
            }
        });
        let subnormal = [f32::from_bits(1), -f32::from_bits(0x007f_ffff)];
        let values: Vec<f32> = normal.into_iter().chain(spread).chain(subnormal).collect();
        let mut g = GraphBuilder::new("sign", DataType::Float);
        let t = g.input("t", &[Some(values.len())]);
        let abs_t = g.op("Abs", &[&t], vec![]);
        let s = sign_by_quotient(&mut g, &t, &abs_t);
        g.output(&s, "s");
        let bytes = crate::onnx::to_bytes(&g.into_model());
        let input = ArrayD::from_shape_vec(vec![values.len()], values.clone()).expect("shape");
        let mut session =
            engine::load(EngineKind::Ort, &bytes, &EngineOptions::default()).expect("load");
        let out = session
            .run(&[("t", Value::F32(input))])
            .expect("run")
            .remove(0)
            .into_f32()
            .expect("f32");
        for (&v, &s) in values.iter().zip(out.iter()) {
            if v == 0.0 || v.is_normal() {
                let want = if v == 0.0 { 0.0 } else { v.signum() };
                assert_eq!(s, want, "sign of {v:e}"); // ±0 alike, as in sign(t) − t·|t|
            } else {
                assert!(s.abs() <= 1.0 && s * v >= 0.0, "{s} for {v:e}");
            }
        }
    }
}
