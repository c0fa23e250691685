//! Writing a model back without changes loses nothing.
mod common;
use bean_onnx::onnx::{self, SaveOptions};
use bean_onnx::pb;
use common::*;
use prost::Message;

#[test]
fn every_inline_fixture_writes_back_byte_for_byte() {
    let manifest = json(&fixture("manifest.json"));
    for name in manifest["fixtures"].as_object().unwrap().keys() {
        if name == "external_data" {
            continue;
        }
        let path = fixture(&format!("{name}.onnx"));
        let original = std::fs::read(&path).unwrap();
        let model = onnx::load(&path).unwrap();
        assert!(model.warnings.is_empty(), "{name}: {:?}", model.warnings);
        assert!(
            onnx::to_bytes(&model) == original,
            "{name}: bytes differ after a round trip"
        );
    }
}

#[test]
fn doc_strings_metadata_functions_and_training_info_survive() {
    let path = fixture("rich_metadata.onnx");
    let model = onnx::load(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.onnx");
    onnx::save(&model, &out, &SaveOptions::default()).unwrap();
    let before = pb::ModelProto::decode(&*std::fs::read(&path).unwrap()).unwrap();
    let after = pb::ModelProto::decode(&*std::fs::read(&out).unwrap()).unwrap();
    // The fixture really carries what this test is about …
    assert!(before.doc_string.is_some() && !before.metadata_props.is_empty());
    assert!(!before.functions.is_empty() && !before.training_info.is_empty());
    let g = before.graph.as_ref().unwrap();
    assert!(g.doc_string.is_some() && g.node.iter().any(|n| n.doc_string.is_some()));
    // … and all of it is still there.
    assert_eq!(before, after);
}

#[test]
fn a_decode_that_drops_unknown_fields_is_reported() {
    let mut bytes = std::fs::read(fixture("head_logits.onnx")).unwrap();
    // Field 999, varint 1: not in the ONNX schema.
    bytes.extend_from_slice(&[0xb8, 0x3e, 0x01]);
    let model = onnx::from_bytes(&bytes, None).unwrap();
    assert_eq!(model.warnings.len(), 1, "{:?}", model.warnings);
    assert!(model.warnings[0].contains("does not know"));
}

#[test]
fn saving_over_an_input_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.onnx");
    std::fs::copy(fixture("head_logits.onnx"), &src).unwrap();
    let before = std::fs::read(&src).unwrap();
    let model = onnx::load(&src).unwrap();
    let opts = SaveOptions {
        protected: vec![src.clone()],
        ..Default::default()
    };
    let err = onnx::save(&model, &src, &opts).unwrap_err();
    assert!(err.to_string().contains("input files"), "{err}");
    assert_eq!(std::fs::read(&src).unwrap(), before);
}

/// Written files get the permissions of any new file: rw-rw-rw- less the caller's umask (neither
/// tempfile's rw------- nor a fixed mode).
#[cfg(unix)]
#[test]
fn written_models_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = model_dir("digits-torch");
    for (umask, mode) in [("077", 0o600), ("002", 0o664)] {
        let out = dir.path().join(format!("pruned-{umask}.onnx"));
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(assert_cmd::cargo::cargo_bin("bean-onnx"))
            .arg("prune")
            .arg(d.join("model-legacy.onnx"))
            .arg("--data")
            .arg(d.join("train.npz"))
            .arg("-o")
            .arg(&out)
            .args(["--ratio", "0.3", "--engine", "tract", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "umask {umask}: mode {got:o}");
    }
}
