//! Running a model on a data set, the one way every command does it: the data shaped as the
//! model's input takes it, the model cut down to the tensors asked for, loaded into an engine
//! once, and run batch by batch ([`EVAL_BATCH`] rows a call), the outputs concatenated.
use crate::data::{Dataset, Features};
use crate::engine::{self, EngineKind, EngineOptions, Session, Value};
use crate::error::{Error, Result};
use crate::eval::single_input;
use crate::ir::{Dim, Model, ValueInfo, ValueType};
use crate::tensor::DataType;
use ndarray::{ArrayD, Axis};

/// Rows per engine call.
pub const EVAL_BATCH: usize = 2048;

pub struct ModelRunner {
    session: Box<dyn Session>,
    input: String,
    elem: DataType,
    /// The data as the model's input takes it.
    x: Features,
}

impl ModelRunner {
    /// `model` cut down to `outputs` (of type `out_type`) and loaded into the engine, for `data`.
    pub fn new(
        model: &Model,
        outputs: &[&str],
        out_type: DataType,
        data: &Dataset,
        kind: EngineKind,
        opts: &EngineOptions,
    ) -> Result<Self> {
        let input = single_input(model)?;
        let (elem, shape) = input.tensor_shape().expect("checked by single_input");
        let x = data.features_for_input(&input.name, shape)?;
        let sub = cut(model, outputs, out_type, &x.shape()[1..])?;
        let session = engine::load(kind, &crate::onnx::to_bytes(&sub), opts)?;
        Ok(ModelRunner {
            session,
            input: input.name.clone(),
            elem,
            x,
        })
    }

    /// Every output on every row, in output order.
    pub fn run_all(&mut self) -> Result<Vec<Value>> {
        run_batches(self.session.as_mut(), &self.input, self.elem, &self.x)
    }

    /// Every output on the given rows of the data, in one engine call.
    pub fn run_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>> {
        let x = self.x.gather(rows);
        let value = input_value(&self.input, self.elem, &x, 0, rows.len())?;
        self.session.run(&[(self.input.as_str(), value)])
    }

    /// Wall time in milliseconds of each of `runs` engine calls on the first `rows` rows, after
    /// `warm_up` untimed calls. The input is built once: only the engine call is timed.
    pub fn time_first(&mut self, rows: usize, warm_up: usize, runs: usize) -> Result<Vec<f64>> {
        let feed = [(
            self.input.as_str(),
            input_value(&self.input, self.elem, &self.x, 0, rows)?,
        )];
        for _ in 0..warm_up {
            self.session.run(&feed)?;
        }
        (0..runs)
            .map(|_| {
                crate::interrupt::check()?;
                let t = std::time::Instant::now();
                self.session
                    .run(&feed)
                    .map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect()
    }

    /// `tract` or `ort (…ExecutionProvider)`.
    pub fn describe(&self) -> String {
        self.session.describe()
    }
}

/// Rows `start..end` of `x` as the input's element type.
fn input_value(
    name: &str,
    elem: DataType,
    x: &Features,
    start: usize,
    end: usize,
) -> Result<Value> {
    match elem {
        DataType::Float => Ok(Value::F32(x.slice_f32(start, end))),
        DataType::Double => Ok(Value::F64(x.slice_f64(start, end))),
        t => Err(Error::Graph(format!(
            "input '{name}' is {}; only float and double inputs are supported",
            t.name()
        ))),
    }
}

/// `model` reduced to what computes `outputs` (all of type `out_type`; exporter tails such as
/// ZipMap cut off), its input's batch dimension symbolic and its other dims taken from the data
/// (`sample_shape`) where the model leaves them open; local functions inlined (tract runs none).
pub fn cut(
    model: &Model,
    outputs: &[&str],
    out_type: DataType,
    sample_shape: &[usize],
) -> Result<Model> {
    let input = single_input(model)?;
    let (elem_type, shape) = input
        .tensor_shape()
        .ok_or_else(|| Error::Graph(format!("input '{}' is not a tensor", input.name)))?;
    let mut dims = vec![Dim::Param("N".into())];
    match shape {
        Some(s) if s.len() == sample_shape.len() + 1 => {
            for (d, &x) in s[1..].iter().zip(sample_shape) {
                dims.push(match d {
                    Dim::Value(v) => Dim::Value(*v),
                    _ => Dim::Value(x as i64),
                })
            }
        }
        _ => dims.extend(sample_shape.iter().map(|&x| Dim::Value(x as i64))),
    }
    let input_name = input.name.clone();
    let mut m = model.clone();
    for i in m.graph.inputs.iter_mut().filter(|i| i.name == input_name) {
        i.ty = ValueType::Tensor {
            elem_type,
            shape: Some(dims.clone()),
        };
    }
    m.graph.outputs = outputs
        .iter()
        .map(|&name| {
            let existing = m.graph.outputs.iter().find(|o| o.name == name).cloned();
            existing.unwrap_or_else(|| ValueInfo::tensor(name, out_type, None))
        })
        .collect();
    // Engines get plain graphs: tract runs no local functions.
    crate::onnx::inline_functions(&mut m)?;
    m.graph.remove_dead_nodes();
    // Value infos of the cut-off tail and intermediate shapes may pin the batch; let engines infer.
    m.graph.value_info.clear();
    Ok(m)
}

/// Every output of the model on every row of `x`, batch by batch, concatenated.
fn run_batches(
    session: &mut dyn Session,
    input_name: &str,
    elem_type: DataType,
    x: &Features,
) -> Result<Vec<Value>> {
    let mut parts: Vec<Vec<Value>> = Vec::new();
    let rows = x.rows();
    let mut start = 0;
    while start < rows {
        crate::interrupt::check()?;
        let end = (start + EVAL_BATCH).min(rows);
        let value = input_value(input_name, elem_type, x, start, end)?;
        let out = session.run(&[(input_name, value)])?;
        if out.is_empty() {
            return Err(Error::engine("engine", "the graph returned no output"));
        }
        for (i, v) in out.into_iter().enumerate() {
            if parts.len() <= i {
                parts.push(Vec::new());
            }
            parts[i].push(v);
        }
        start = end;
    }
    if parts.is_empty() {
        return Err(Error::Invalid("no data rows".into()));
    }
    parts.into_iter().map(concat).collect()
}

fn concat(parts: Vec<Value>) -> Result<Value> {
    fn cat<T: Clone>(parts: Vec<ArrayD<T>>) -> Result<ArrayD<T>> {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map_err(|e| Error::engine("engine", format!("output batches do not line up: {e}")))
    }
    let first = parts
        .first()
        .ok_or_else(|| Error::Invalid("no data rows".into()))?;
    Ok(match first {
        Value::F32(_) => Value::F32(cat(parts
            .into_iter()
            .filter_map(Value::into_f32)
            .collect())?),
        Value::F64(_) => Value::F64(cat(parts
            .into_iter()
            .filter_map(|v| if let Value::F64(a) = v { Some(a) } else { None })
            .collect())?),
        Value::I64(_) => Value::I64(cat(parts
            .into_iter()
            .filter_map(|v| if let Value::I64(a) = v { Some(a) } else { None })
            .collect())?),
    })
}
