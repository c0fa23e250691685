//! tract: the pure-Rust engine. The graph is optimised once with the batch dimension left
//! symbolic (the model's inputs must declare their shapes, with a named batch dimension).
use super::{Session, Value};
use crate::error::{Error, Result};
use tract_onnx::prelude::*;

type Plan = Arc<TypedSimplePlan>;

pub struct TractSession {
    plan: Plan,
    input_names: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::engine("tract", format!("{e:#}"))
}

impl TractSession {
    pub fn load(model: &[u8]) -> Result<Self> {
        let inference = tract_onnx::onnx()
            .model_for_read(&mut &model[..])
            .map_err(err)?;
        let input_names = inference
            .input_outlets()
            .map_err(err)?
            .iter()
            .map(|o| inference.node(o.node).name.clone())
            .collect();
        let plan = inference
            .into_optimized()
            .map_err(err)?
            .into_runnable()
            .map_err(err)?;
        Ok(TractSession { plan, input_names })
    }
}

impl Session for TractSession {
    fn run(&mut self, inputs: &[(&str, Value)]) -> Result<Vec<Value>> {
        let mut ordered = TVec::new();
        for name in &self.input_names {
            let (_, v) = inputs
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| err(format!("no value given for input '{name}'")))?;
            let t: Tensor = match v {
                Value::F32(a) => a.clone().into(),
                Value::F64(a) => a.clone().into(),
                Value::I64(a) => a.clone().into(),
            };
            ordered.push(t.into_tvalue());
        }
        let outputs = self.plan.run(ordered).map_err(err)?;
        outputs
            .into_iter()
            .map(|t| {
                let t = t.into_tensor();
                match t.datum_type() {
                    DatumType::F32 => Ok(Value::F32(t.into_plain_array::<f32>().map_err(err)?)),
                    DatumType::F64 => Ok(Value::F64(t.into_plain_array::<f64>().map_err(err)?)),
                    DatumType::I64 => Ok(Value::I64(t.into_plain_array::<i64>().map_err(err)?)),
                    dt => Err(err(format!("output of type {dt:?} is not supported"))),
                }
            })
            .collect()
    }

    fn describe(&self) -> String {
        "tract".into()
    }
}
