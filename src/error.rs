//! Library errors. Each names the file, tensor, node or data row it is about, so a user can act on
//! the message without a debugger.
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
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
    pub fn engine(engine: &str, reason: impl Into<String>) -> Self {
        Error::Engine {
            engine: engine.to_string(),
            reason: reason.into(),
        }
    }
}
