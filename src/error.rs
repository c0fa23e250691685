//! Library errors. Each names the file, tensor, node or data row it is about, so a user can act on
//! the message without a debugger.
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is part of the message and deliberately not a `source`, so that a report
    /// of the whole chain does not repeat it.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not a valid ONNX model: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("tensor '{name}': {reason}")]
    Tensor { name: String, reason: String },
    #[error("tensor '{name}': external data: {reason}")]
    ExternalData { name: String, reason: String },
    #[error("node '{node}' ({op}): {reason}")]
    Node {
        node: String,
        op: String,
        reason: String,
    },
    #[error("graph: {0}")]
    Graph(String),
    #[error("no dense layer chain found: {0}")]
    NoDenseChain(String),
    #[error("{}: {reason}", path.display())]
    Data { path: PathBuf, reason: String },
    #[error("engine {engine}: {reason}")]
    Engine { engine: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// More memory than the machine (or the process's limits) can give.
    #[error("{what} needs {} but only {} is available", human_bytes(*needed), human_bytes(*available))]
    Memory {
        what: String,
        needed: u64,
        available: u64,
    },
    /// The run was stopped by a signal (SIGINT, SIGTERM) before it finished.
    #[error("interrupted by {}", signal_name(*signal))]
    Interrupted { signal: i32 },
}

/// `1.5 GiB`, `300 MiB`, `12 KiB`, `17 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `SIGINT`, `SIGTERM`, or `signal N`.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
    pub fn tensor(name: &str, reason: impl Into<String>) -> Self {
        Error::Tensor {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
    pub fn external(name: &str, reason: impl Into<String>) -> Self {
        Error::ExternalData {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
    pub fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            reason: reason.into(),
        }
    }
    /// An error about a node, named by its label (its name, or its first output).
    pub fn node(node: &crate::ir::Node, reason: impl Into<String>) -> Self {
        Error::Node {
            node: node.label().to_string(),
            op: node.op_type.clone(),
            reason: reason.into(),
        }
    }
    pub fn engine(engine: &str, reason: impl Into<String>) -> Self {
        Error::Engine {
            engine: engine.to_string(),
            reason: reason.into(),
        }
    }
}
