//! Compiles `proto/onnx.proto` with protox (pure Rust, no `protoc` needed) and prost-build.
fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"]).unwrap_or_else(|e| {
        // A build script has no caller to return an error to; the message names the schema line.
        panic!("proto/onnx.proto does not compile: {e}")
    });
    prost_build::Config::new()
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("prost-build failed on proto/onnx.proto: {e}"));
}
