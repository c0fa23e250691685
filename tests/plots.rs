//! Pictures: each command's `--plot` to PNG and SVG, opened by an image decoder (PNG) or checked
//! as an SVG document, at the documented size; and the sidecar's numbers equal to what `--json`
//! reports for the same run (or, for the assemblies matrices, to M = ÂÂᵀ recomputed from the
//! model's weights). References: the `image` crate's PNG decoder and the run's own `--json`.
mod common;
use bean_onnx::assemblies;
use bean_onnx::mlp::MlpView;
use bean_onnx::onnx;
use bean_onnx::plot::{assemblies as fig_a, search as fig_s, training as fig_t};
use common::*;
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

fn digits() -> (PathBuf, PathBuf, PathBuf) {
    let d = model_dir("digits-sklearn");
    (
        d.join("model.onnx"),
        d.join("train.npz"),
        d.join("test.npz"),
    )
}

fn os(v: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    v.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// Runs bean-onnx with `args`; its `--json` output.
fn run_json(args: &[OsString]) -> Value {
    let o = bean().args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The sidecar of `image`, checked for its header: figure kind, format and size.
fn sidecar(image: &Path, kind: &str, format: &str) -> Value {
    let s = json(&bean_onnx::plot::sidecar_path(image));
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["figure"], kind);
    assert_eq!(s["format"], format);
    s
}

fn size_of(s: &Value) -> (u32, u32) {
    let n = |k: &str| s[k].as_u64().unwrap() as u32;
    (n("width"), n("height"))
}

/// Decodes the PNG and checks its size.
fn check_png(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
    assert_eq!((img.width(), img.height()), size, "{}", path.display());
    // Something was drawn: not a blank page.
    let rgb = img.to_rgb8();
    let coloured = rgb.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        coloured > (size.0 * size.1 / 50) as usize,
        "{coloured} pixels drawn"
    );
}

/// Checks the SVG is one `<svg>` document of the size, holding `text` (a title).
fn check_svg(path: &Path, size: (u32, u32), text: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(
        s.trim_start().starts_with("<svg"),
        "{}",
        &s[..80.min(s.len())]
    );
    assert!(s.trim_end().ends_with("</svg>"));
    assert_eq!(s.matches("<svg").count(), 1);
    assert!(s.contains(&format!("width=\"{}\"", size.0)), "width");
    assert!(s.contains(&format!("height=\"{}\"", size.1)), "height");
    assert!(s.contains(text), "title {text:?} missing");
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn assemblies_plot_reorders_the_similarity_by_assembly() {
    let (model, _, test) = digits();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("a.png");
    let out = run_json(&os(&[&"assemblies", &model, &"--plot", &png, &"--json"]));
    let layers = out["layers"].as_array().unwrap();
    let s = sidecar(&png, "assemblies", "png");
    let rows = layers.len() as u32;
    let size = (
        fig_a::PANEL_WIDTH,
        fig_a::TITLE_HEIGHT + fig_a::ROW_HEIGHT * rows,
    );
    assert_eq!(size_of(&s), size);
    check_png(&png, size);
    // The matrices are M = ÂÂᵀ of each hidden layer's outgoing weights, reordered by assembly.
    let m = onnx::load(&model).unwrap();
    let view = MlpView::find(&m.graph).unwrap();
    let panels = s["layers"].as_array().unwrap();
    assert_eq!(panels.len(), layers.len());
    for (k, (p, l)) in panels.iter().zip(layers).enumerate() {
        assert_eq!(p["sizes"], l["sizes"]);
        assert_eq!(p["source"], "co-connectivity");
        assert_eq!(f(&p["modularity"]), f(&l["modularity"]));
        let groups: Vec<Vec<usize>> = serde_json::from_value(l["assemblies"].clone()).unwrap();
        let order: Vec<usize> = serde_json::from_value(p["order"].clone()).unwrap();
        assert_eq!(order, groups.concat());
        let w = view.layers[k + 1].weight_matrix(&m.graph);
        let a = assemblies::strength(w.view(), assemblies::auto_gamma(w.view()));
        let expect = assemblies::co_connectivity(&a);
        let drawn = p["similarity"].as_array().unwrap();
        assert_eq!(drawn.len(), order.len());
        for (i, row) in drawn.iter().enumerate() {
            for (j, v) in row.as_array().unwrap().iter().enumerate() {
                let e = expect[[order[i], order[j]]];
                assert!((f(v) - e).abs() <= 1e-12 * e.abs().max(1.0), "({i}, {j})");
            }
        }
        assert!(p["class_means"].is_null());
    }

    // With labelled data: activity correlation and the class × neuron heatmap beside it.
    let svg = dir.path().join("a.svg");
    let out = run_json(&os(&[
        &"assemblies",
        &model,
        &"--data",
        &test,
        &"--plot",
        &svg,
        &"--engine",
        &"tract",
        &"--json",
    ]));
    let s = sidecar(&svg, "assemblies", "svg");
    let size = (
        2 * fig_a::PANEL_WIDTH,
        fig_a::TITLE_HEIGHT + fig_a::ROW_HEIGHT * rows,
    );
    assert_eq!(size_of(&s), size);
    check_svg(&svg, size, "Neuron assemblies of model.onnx");
    let labels = npz_f64_or_i64_labels(&test);
    for (p, l) in s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(out["layers"].as_array().unwrap())
    {
        assert_eq!(p["source"], "activity");
        assert_eq!(p["sizes"], l["sizes"]);
        let means = &p["class_means"];
        let classes: Vec<i64> = serde_json::from_value(means["classes"].clone()).unwrap();
        assert_eq!(classes, labels);
        let values = means["values"].as_array().unwrap();
        assert_eq!(values.len(), classes.len());
        let n = p["order"].as_array().unwrap().len();
        assert!(values.iter().all(|r| r.as_array().unwrap().len() == n));
    }
}

/// The distinct labels of a data file, sorted.
fn npz_f64_or_i64_labels(path: &Path) -> Vec<i64> {
    let data = bean_onnx::data::Dataset::load(path, &Default::default(), true).unwrap();
    let mut y = data.y.unwrap();
    y.sort_unstable();
    y.dedup();
    y
}

fn finetune_args(model: &Path, train: &Path, test: &Path, out: &Path) -> Vec<OsString> {
    os(&[
        &"finetune",
        &model,
        &"--data",
        &train,
        &"--val",
        &test,
        &"-o",
        &out,
        &"--engine",
        &"tract",
        &"--json",
    ])
}

#[test]
fn finetune_plot_draws_the_history_json_reports() {
    let (model, train, test) = digits();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tuned.onnx");
    let png = dir.path().join("t.png");
    let mut args = finetune_args(&model, &train, &test, &out);
    args.extend(os(&[&"--epochs", &"2", &"--plot", &png]));
    let summary = run_json(&args);
    let s = sidecar(&png, "training", "png");
    assert_eq!(size_of(&s), (fig_t::WIDTH, fig_t::HEIGHT));
    check_png(&png, (fig_t::WIDTH, fig_t::HEIGHT));
    let history = summary["history"].as_array().unwrap();
    let epochs = s["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!(history.len(), 2);
    for (e, h) in epochs.iter().zip(history) {
        for key in [
            "epoch",
            "task_loss",
            "bean",
            "train_accuracy",
            "val_accuracy",
        ] {
            assert_eq!(e[key], h[key], "{key}");
        }
        assert!(e["val_accuracy"].is_f64());
    }

    // One epoch, SVG.
    let svg = dir.path().join("t.svg");
    let mut args = finetune_args(&model, &train, &test, &out);
    args.extend(os(&[&"--epochs", &"1", &"--plot", &svg]));
    let summary = run_json(&args);
    let s = sidecar(&svg, "training", "svg");
    check_svg(
        &svg,
        (fig_t::WIDTH, fig_t::HEIGHT),
        "Fine-tuning model.onnx",
    );
    assert_eq!(
        s["epochs"][0]["task_loss"],
        summary["history"][0]["task_loss"]
    );
}

fn compress_args(
    model: &Path,
    train: &Path,
    test: &Path,
    out: &Path,
    plot: &Path,
) -> Vec<OsString> {
    os(&[
        &"compress",
        &model,
        &"--data",
        &train,
        &"--test",
        &test,
        &"-o",
        &out,
        &"--epochs",
        &"1",
        &"--heal-epochs",
        &"0",
        &"--engine",
        &"tract",
        &"--plot",
        &plot,
        &"--json",
    ])
}

/// Runs compress (exit 0 or 3: the gate may fail; the picture is drawn either way).
fn compress_json(args: &[OsString]) -> Value {
    let o = bean().args(args).output().unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn compress_plot_draws_every_search_candidate() {
    let (model, train, test) = digits();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.onnx");
    let png = dir.path().join("c.png");
    let printed = compress_json(&compress_args(&model, &train, &test, &out, &png));
    let report = &printed["report"];
    let s = sidecar(&png, "search", "png");
    assert_eq!(size_of(&s), (fig_s::WIDTH, fig_s::HEIGHT));
    check_png(&png, (fig_s::WIDTH, fig_s::HEIGHT));
    let runs = report["searches"].as_array().unwrap();
    let series = s["series"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "two sources × two allocations");
    assert_eq!(series.len(), runs.len());
    let mut searched = 0;
    for (line, run) in series.iter().zip(runs) {
        assert_eq!(line["source"], run["source"]);
        assert_eq!(line["allocation"], run["allocation"]);
        assert_eq!(line["error"], run["error"]);
        let cands = run["candidates"].as_array().unwrap();
        let points = line["candidates"].as_array().unwrap();
        assert_eq!(points.len(), cands.len());
        for (p, c) in points.iter().zip(cands) {
            for key in ["ratio", "params", "macs"] {
                assert_eq!(p[key], c[key], "{key}");
            }
            assert_eq!(
                p["value"], c["accuracy"],
                "a labelled search's value is its accuracy"
            );
        }
        // Every search tried the 5% grid, whether or not a cut was within its budget.
        assert!(points.len() >= 19, "{} candidates", points.len());
        searched += usize::from(run["chosen_ratio"].is_f64());
    }
    assert!(searched >= 1);
    let (search, v) = (&report["search"], &report["validation"]);
    assert_eq!(s["original"]["params"], v["original"]["params"]);
    assert_eq!(s["original"]["macs"], v["original"]["macs"]);
    assert_eq!(s["metric"], "accuracy");
    assert_eq!(s["original"]["value"], search["baseline_accuracy"]);
    assert_eq!(s["chosen"]["params"], v["candidate"]["params"]);
    assert_eq!(s["chosen"]["macs"], v["candidate"]["macs"]);
    assert_eq!(s["chosen"]["value"], search["chosen_accuracy"]);
    let budget = f(&search["baseline_accuracy"]) - f(&search["max_accuracy_drop"]) / 100.0;
    // (serde_json's parser may be one ulp off a number's shortest spelling.)
    assert!((f(&s["budget"]) - budget).abs() < 1e-12);
    // The chosen model is one of the chosen search's candidates, and it is no larger than the
    // original.
    let chosen_run = series
        .iter()
        .position(|l| l["source"] == report["source"] && l["allocation"] == report["allocation"])
        .unwrap();
    let chosen_ratio = &search["chosen_ratio"];
    let chosen_point = series[chosen_run]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| &p["ratio"] == chosen_ratio)
        .unwrap();
    assert_eq!(chosen_point["params"], s["chosen"]["params"]);
    assert!(s["chosen"]["params"].as_u64() < s["original"]["params"].as_u64());

    let svg = dir.path().join("c.svg");
    compress_json(&compress_args(&model, &train, &test, &out, &svg));
    sidecar(&svg, "search", "svg");
    check_svg(
        &svg,
        (fig_s::WIDTH, fig_s::HEIGHT),
        "Compression search of model.onnx",
    );
}

#[test]
fn plot_files_are_checked_before_any_work() {
    let (model, train, test) = digits();
    let dir = tempfile::tempdir().unwrap();
    // Neither PNG nor SVG: refused naming the flag and the file.
    let jpg = dir.path().join("a.jpg");
    let o = bean()
        .args(os(&[&"assemblies", &model, &"--plot", &jpg]))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--plot") && err.contains("a.jpg"), "{err}");
    assert!(!jpg.exists());
    // The sidecar may not be another output of the run.
    let out = dir.path().join("tuned.onnx");
    let png = dir.path().join("t.png");
    let mut args = finetune_args(&model, &train, &test, &out);
    let metrics = bean_onnx::plot::sidecar_path(&png);
    args.extend(os(&[&"--plot", &png, &"--metrics", &metrics]));
    let o = bean().args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--plot's numbers") || err.contains("--metrics"),
        "{err}"
    );
    assert!(!out.exists() && !png.exists());
    // Nor an input: data saved under the sidecar's name is refused, and left as it was.
    let png = dir.path().join("x.png");
    let data = bean_onnx::plot::sidecar_path(&png);
    std::fs::copy(&test, &data).unwrap();
    let o = bean()
        .args(os(&[
            &"assemblies",
            &model,
            &"--data",
            &data,
            &"--plot",
            &png,
        ]))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--plot's numbers"), "{err}");
    assert_eq!(std::fs::read(&data).unwrap(), std::fs::read(&test).unwrap());
    assert!(!png.exists());
}
