//! The protobuf edge: ONNX files in and out. Nothing outside this module decodes or encodes
//! protobuf.
mod export;
mod external;
mod functions;
mod import;

pub use export::{data_file_of, save, to_bytes, ExternalDataMode, SaveOptions};
pub use functions::inline_functions;
pub use import::{from_bytes, load};
