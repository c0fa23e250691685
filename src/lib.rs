//! bean-onnx: import an ONNX MLP, find its dense layers, fine-tune them with BEAN, prune and
//! merge neurons, validate and write the smaller model. docs/DESIGN.md maps the modules.
#![warn(clippy::too_many_lines)]
pub mod assemblies;
pub mod compress;
pub mod data;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod gate;
pub mod inspect;
pub mod interrupt;
pub mod ir;
pub mod latency;
pub mod memory;
pub mod mlp;
mod names;
pub mod onnx;
pub mod plot;
pub mod progress;
pub mod prune;
pub mod runner;
pub mod stats;
pub mod tensor;
pub mod train;
pub mod validate;

/// Types generated from `proto/onnx.proto`. Only `onnx` (import/export) reads or builds them;
/// the rest of the crate holds them only as opaque remainders. Public (and hidden from the
/// documentation) only so that tests can craft hostile files; not part of the API.
#[allow(clippy::all, missing_docs)]
#[doc(hidden)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use error::{Error, Result};
