//! Activations h = act(z) and their derivatives dL/dz = dL/dh · act′(z), written in ops that ONNX
//! Runtime and tract both run in f32 and (for the gradient checks) f64:
//!
//! - relu: max(z, 0), act′ = [z > 0];  leaky relu: z > 0 ? z : a·z, act′ = z > 0 ? 1 : a
//! - sigmoid: 1/(1 + e^−z), act′ = h(1 − h);  tanh: act′ = 1 − h²
//! - gelu: z·Φ(z) = ½z(1 + erf(z/√2)), act′ = Φ(z) + z·φ(z)
//! - gelu (tanh): ½z(1 + t), t = tanh(√(2/π)(z + 0.044715z³)),
//!   act′ = ½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3·0.044715z²)
use crate::ir::builder::{attr_int, GraphBuilder, Wire};
use crate::mlp::Activation;
use crate::tensor::DataType;

/// h = act(z).
pub fn forward(g: &mut GraphBuilder, act: Activation, z: &Wire) -> Wire {
    match act {
        Activation::None => z.clone(),
        Activation::Relu => g.op("Relu", &[z], vec![]),
        // Written out (tract has no f64 LeakyRelu): z if z > 0, else a·z.
        Activation::LeakyRelu(a) => {
            let zero = g.scalar(0.0);
            let pos = g.op("Greater", &[z, &zero], vec![]);
            let az = g.mul_scalar(z, a as f64);
            g.op("Where", &[&pos, z, &az], vec![])
        }
        // tract has no f64 Sigmoid: f64 graphs (gradient checks) spell it out as 1/(1+e^−z).
        Activation::Sigmoid if g.elem() == DataType::Double => {
            let neg = g.op("Neg", &[z], vec![]);
            let e = g.op("Exp", &[&neg], vec![]);
            let one = g.scalar(1.0);
            let d = g.add(&one, &e);
            g.div(&one, &d)
        }
        Activation::Sigmoid => g.op("Sigmoid", &[z], vec![]),
        Activation::Tanh => g.op("Tanh", &[z], vec![]),
        // Opset 17 has no Gelu op: written out.
        Activation::Gelu { tanh_approx: false } => {
            let u = g.mul_scalar(z, std::f64::consts::FRAC_1_SQRT_2);
            let e = g.op("Erf", &[&u], vec![]);
            let one = g.scalar(1.0);
            let t = g.add(&one, &e);
            let zt = g.mul(z, &t);
            g.mul_scalar(&zt, 0.5)
        }
        Activation::Gelu { tanh_approx: true } => {
            let inner = gelu_tanh_inner(g, z);
            let t = g.op("Tanh", &[&inner], vec![]);
            let one = g.scalar(1.0);
            let t1 = g.add(&one, &t);
            let zt = g.mul(z, &t1);
            g.mul_scalar(&zt, 0.5)
        }
    }
}

const GELU_K: f64 = 0.044715;

/// √(2/π)·(z + 0.044715·z³)
fn gelu_tanh_inner(g: &mut GraphBuilder, z: &Wire) -> Wire {
    let z2 = g.square(z);
    let z3 = g.mul(&z2, z);
    let k = g.mul_scalar(&z3, GELU_K);
    let s = g.add(z, &k);
    g.mul_scalar(&s, (2.0 / std::f64::consts::PI).sqrt())
}

/// dL/dz from dL/dh for h = act(z).
pub fn backward(g: &mut GraphBuilder, act: Activation, z: &Wire, h: &Wire, d_h: &Wire) -> Wire {
    match act {
        Activation::None => d_h.clone(),
        Activation::Relu => {
            // 1 where z > 0, else 0: the same values as the Where below, in a cheaper op.
            let zero = g.scalar(0.0);
            let pos = g.op("Greater", &[z, &zero], vec![]);
            let to = g.elem().code() as i64;
            let k = g.op("Cast", &[&pos], vec![attr_int("to", to)]);
            g.mul(d_h, &k)
        }
        Activation::LeakyRelu(a) => {
            let zero = g.scalar(0.0);
            let pos = g.op("Greater", &[z, &zero], vec![]);
            let one = g.scalar(1.0);
            let slope = g.scalar(a as f64);
            let k = g.op("Where", &[&pos, &one, &slope], vec![]);
            g.mul(d_h, &k)
        }
        Activation::Sigmoid => {
            let one = g.scalar(1.0);
            let om = g.sub(&one, h);
            let k = g.mul(h, &om);
            g.mul(d_h, &k)
        }
        Activation::Tanh => {
            let one = g.scalar(1.0);
            let h2 = g.square(h);
            let k = g.sub(&one, &h2);
            g.mul(d_h, &k)
        }
        Activation::Gelu { tanh_approx: false } => gelu_backward(g, z, d_h),
        Activation::Gelu { tanh_approx: true } => gelu_tanh_backward(g, z, d_h),
    }
}

/// Φ(z) + z·φ(z)
fn gelu_backward(g: &mut GraphBuilder, z: &Wire, d_h: &Wire) -> Wire {
    let u = g.mul_scalar(z, std::f64::consts::FRAC_1_SQRT_2);
    let e = g.op("Erf", &[&u], vec![]);
    let one = g.scalar(1.0);
    let t = g.add(&one, &e);
    let cdf = g.mul_scalar(&t, 0.5);
    let z2 = g.square(z);
    let ez = g.mul_scalar(&z2, -0.5);
    let ex = g.op("Exp", &[&ez], vec![]);
    let pdf = g.mul_scalar(&ex, 1.0 / (2.0 * std::f64::consts::PI).sqrt());
    let zp = g.mul(z, &pdf);
    let k = g.add(&cdf, &zp);
    g.mul(d_h, &k)
}

/// 0.5(1+t) + 0.5·z·(1−t²)·√(2/π)·(1 + 3·0.044715·z²)
fn gelu_tanh_backward(g: &mut GraphBuilder, z: &Wire, d_h: &Wire) -> Wire {
    let inner = gelu_tanh_inner(g, z);
    let t = g.op("Tanh", &[&inner], vec![]);
    let one = g.scalar(1.0);
    let t1 = g.add(&one, &t);
    let a = g.mul_scalar(&t1, 0.5);
    let t2 = g.square(&t);
    let sech2 = g.sub(&one, &t2);
    let z2 = g.square(z);
    let poly = g.mul_scalar(&z2, 3.0 * GELU_K);
    let poly1 = g.add(&one, &poly);
    let zs = g.mul(z, &sech2);
    let zsp = g.mul(&zs, &poly1);
    let b = g.mul_scalar(&zsp, 0.5 * (2.0 / std::f64::consts::PI).sqrt());
    let k = g.add(&a, &b);
    g.mul(d_h, &k)
}
