//! The output contract CI scripts rely on: every JSON object the commands print (`--json`) or
//! write (`--report`, `--metrics` lines, `--plot` sidecars) starts with `schema_version` 1, its
//! fields — every key path — are those recorded in `tests/schema/<output>.txt`, and each key is
//! documented in docs/OUTPUT.md. A deliberate change rewrites the records with
//! `BEAN_ONNX_UPDATE_SCHEMA=1` (and raises the schema version when a field is renamed or removed).
mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

/// Every key path of `v`: `a.b` for objects, `a[]` for the elements of arrays.
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                key_paths(v, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                key_paths(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn run_json(args: &[std::ffi::OsString], expect_code: i32) -> serde_json::Value {
    let o = bean().args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(expect_code),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Set to rewrite the records from the current outputs (the test then fails, to be rerun).
const UPDATE: &str = "BEAN_ONNX_UPDATE_SCHEMA";

/// Checks `value` against the record `name` (or rewrites it) and the documentation.
fn pinned(name: &str, value: &serde_json::Value, docs: &str) {
    let first = value.as_object().and_then(|m| m.iter().next());
    assert_eq!(
        first.map(|(k, v)| (k.as_str(), v.as_u64())),
        Some(("schema_version", Some(1))),
        "{name}: schema_version must come first"
    );
    let mut paths = BTreeSet::new();
    key_paths(value, "", &mut paths);
    let text: String = paths.iter().map(|p| format!("{p}\n")).collect();
    let record = repo().join("tests/schema").join(format!("{name}.txt"));
    if std::env::var_os(UPDATE).is_some() {
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        std::fs::write(&record, &text).unwrap();
    }
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(
        text, recorded,
        "{name}: the output's fields changed; if deliberate, document them in docs/OUTPUT.md and \
         rerun with BEAN_ONNX_UPDATE_SCHEMA=1 (raise the schema version for a removal or rename)"
    );
    for p in &paths {
        let key = p.rsplit(['.', ']']).next().unwrap_or(p);
        assert!(
            key.is_empty() || docs.contains(&format!("`{key}`")),
            "{name}: field `{key}` ({p}) is not documented in docs/OUTPUT.md"
        );
    }
}

fn os(v: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<std::ffi::OsString> {
    v.iter().map(|a| a.as_ref().to_os_string()).collect()
}

#[test]
fn every_json_output_is_versioned_pinned_and_documented() {
    let docs = std::fs::read_to_string(repo().join("docs/OUTPUT.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = model_dir("digits-torch").join("model-legacy.onnx");
    let (train, test) = (
        model_dir("digits-torch").join("train.npz"),
        model_dir("digits-torch").join("test.npz"),
    );
    let with = |v: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut all = os(v);
        all.extend(os(&[&"--engine", &"tract", &"--json"]));
        all
    };
    pinned(
        "inspect",
        &run_json(&os(&[&"inspect", &m, &"--json"]), 0),
        &docs,
    );
    pinned(
        "eval",
        &run_json(&with(&[&"eval", &m, &"--data", &test]), 0),
        &docs,
    );
    let metrics = d.join("m.jsonl");
    let tuned = d.join("tuned.onnx");
    let (tplot, aplot, cplot) = (d.join("t.png"), d.join("a.svg"), d.join("c.png"));
    let sidecar = |p: &Path| json(&bean_onnx::plot::sidecar_path(p));
    let finetune = [
        &"finetune" as &dyn AsRef<std::ffi::OsStr>,
        &m,
        &"--data",
        &train,
        &"--val",
        &test,
        &"-o",
        &tuned,
        &"--epochs",
        &"1",
        &"--metrics",
        &metrics,
        &"--plot",
        &tplot,
    ];
    pinned("finetune", &run_json(&with(&finetune), 0), &docs);
    let line = std::fs::read_to_string(&metrics).unwrap();
    let line: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    pinned("finetune-metrics-line", &line, &docs);
    pinned("plot-training", &sidecar(&tplot), &docs);
    pinned(
        "assemblies",
        &run_json(&with(&[&"assemblies", &m, &"--plot", &aplot]), 0),
        &docs,
    );
    pinned("plot-assemblies", &sidecar(&aplot), &docs);
    let pruned = d.join("pruned.onnx");
    let prune = [
        &"prune" as &dyn AsRef<std::ffi::OsStr>,
        &m,
        &"--data",
        &train,
        &"-o",
        &pruned,
    ];
    let mut ratio = prune.to_vec();
    ratio.extend([
        &"--ratio" as &dyn AsRef<std::ffi::OsStr>,
        &"0.5",
        &"--inputs",
    ]);
    pinned("prune", &run_json(&with(&ratio), 0), &docs);
    let mut search = prune.to_vec();
    search.extend([
        &"--max-accuracy-drop" as &dyn AsRef<std::ffi::OsStr>,
        &"1",
        &"--val",
        &test,
    ]);
    pinned("prune-search", &run_json(&with(&search), 0), &docs);
    let validate = os(&[&"validate", &m, &pruned, &"--data", &test, &"--json"]);
    pinned("validate", &run_json(&validate, 0), &docs);
    let report = d.join("report.json");
    let small = d.join("small.onnx");
    let compress = [
        &"compress" as &dyn AsRef<std::ffi::OsStr>,
        &m,
        &"--data",
        &train,
        &"--test",
        &test,
        &"-o",
        &small,
        &"--epochs",
        &"1",
        &"--report",
        &report,
        &"--plot",
        &cplot,
    ];
    let printed = run_json(&with(&compress), 0);
    pinned("compress", &printed, &docs);
    pinned("plot-search", &sidecar(&cplot), &docs);
    assert_eq!(json(&report), printed, "--report and --json say the same");
    // A compress that fails still writes its report, with the reason.
    let bad_data = fixture("gemm_transb1.io.npz");
    let never = d.join("never.onnx");
    let failing = [
        &"compress" as &dyn AsRef<std::ffi::OsStr>,
        &m,
        &"--data",
        &bad_data,
        &"-o",
        &never,
        &"--report",
        &report,
    ];
    let o = bean().args(os(&failing)).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    pinned("compress-error-report", &json(&report), &docs);
    assert!(!Path::new(&never).exists());
    assert!(
        std::env::var_os(UPDATE).is_none(),
        "records rewritten: rerun without {UPDATE}"
    );
}
