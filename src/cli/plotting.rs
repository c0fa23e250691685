//! `--plot FILE`: the picture and its sidecar (FILE.json, the numbers drawn) as outputs for the
//! output guard, and writing both: the picture rendered in memory, then both files atomically.
use anyhow::{Context, Result};
use bean_onnx::plot::{self, Figure, Format};
use std::path::{Path, PathBuf};

/// The flag every command draws its picture to.
pub const FLAG: &str = "--plot";

/// The files `--plot path` writes, for `check_outputs` (which says first if one is an input).
pub fn outputs(path: &Path) -> [(String, PathBuf); 2] {
    [
        (FLAG.to_string(), path.to_path_buf()),
        (format!("{FLAG}'s numbers"), plot::sidecar_path(path)),
    ]
}

/// Refuses an extension that is neither .png nor .svg, before any work is done.
pub fn check_format(path: &Path) -> Result<()> {
    Format::from_path(path, FLAG)?;
    Ok(())
}

/// Draws `figure` to `path` (PNG or SVG by its extension) and writes the numbers it draws
/// beside it, versioned like every JSON output, with the figure's kind, format and size.
pub fn write<F: Figure>(figure: &F, path: &Path) -> Result<()> {
    let format = Format::from_path(path, FLAG)?;
    let image = plot::render(figure, format)?;
    let (width, height) = figure.size();
    let mut numbers = serde_json::Map::new();
    numbers.insert("figure".into(), F::KIND.into());
    numbers.insert("format".into(), serde_json::to_value(format)?);
    numbers.insert("width".into(), width.into());
    numbers.insert("height".into(), height.into());
    if let serde_json::Value::Object(fields) = serde_json::to_value(figure)? {
        numbers.extend(fields);
    }
    let sidecar = serde_json::to_string_pretty(&super::output::versioned(&numbers, "plot"))?;
    plot::write(path, &image, sidecar.as_bytes())
        .with_context(|| format!("cannot write {FLAG} {}", path.display()))
}

/// The file name of `path`, for titles.
fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A value's JSON spelling (an enum's name as `--json` prints it).
fn spelled(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `compress --plot`: the report's searches, budget, original and chosen model.
pub fn search_figure(
    report: &bean_onnx::compress::CompressReport,
    model: &Path,
) -> plot::search::SearchFigure {
    use plot::search::{CandidatePoint, ModelPoint, SearchFigure, SearchSeries};
    let series = report
        .searches
        .iter()
        .map(|run| SearchSeries {
            source: spelled(&run.source),
            allocation: spelled(&run.allocation),
            candidates: run
                .candidates
                .iter()
                .map(|c| CandidatePoint {
                    ratio: c.ratio,
                    point: ModelPoint {
                        params: c.params,
                        macs: c.macs,
                        value: c.accuracy.or(c.rmse).unwrap_or(f64::NAN),
                    },
                })
                .collect(),
            error: run.error.clone(),
        })
        .collect();
    let (s, v) = (&report.search, &report.validation);
    let gate = if report.passed { "passed" } else { "FAILED" };
    let nan = f64::NAN;
    let (baseline, chosen, budget) = match (s.baseline_rmse, s.max_rmse_increase) {
        (Some(b), Some(r)) => (b, s.chosen_rmse.unwrap_or(nan), b + r),
        _ => {
            let b = s.baseline_accuracy.unwrap_or(nan);
            let drop = s.max_accuracy_drop.unwrap_or(nan);
            (b, s.chosen_accuracy.unwrap_or(nan), b - drop / 100.0)
        }
    };
    SearchFigure {
        title: format!("Compression search of {} (gate {gate})", name(model)),
        series,
        metric: match s.metric {
            bean_onnx::gate::GateMetric::Regression => "rmse".into(),
            other => spelled(&other),
        },
        budget,
        original: ModelPoint {
            params: v.original.params,
            macs: v.original.macs,
            value: baseline,
        },
        chosen: ModelPoint {
            params: v.candidate.params,
            macs: v.candidate.macs,
            value: chosen,
        },
    }
}

/// `finetune --plot`: the epochs of the run's history.
pub fn training_figure(
    history: &[bean_onnx::train::EpochMetrics],
    model: &Path,
) -> plot::training::TrainingFigure {
    use plot::training::{EpochPoint, TrainingFigure};
    TrainingFigure {
        title: format!("Fine-tuning {}", name(model)),
        epochs: history
            .iter()
            .map(|m| EpochPoint {
                epoch: m.epoch,
                task_loss: m.task_loss,
                bean: m.bean,
                train_accuracy: m.train_accuracy,
                val_accuracy: m.val_accuracy,
            })
            .collect(),
    }
}
