//! `compress`: fine-tune with BEAN → prune within the accuracy budget → heal → validate, as one
//! pipeline whose result is written only when the gate passes.
use crate::data::Dataset;
use crate::error::Result;
use crate::ir::Model;
use crate::prune::{self, Allocation, PruneConfig, PruneReport, SearchReport};
use crate::train::{self, FinetuneConfig, Observer};
use crate::validate::{self, Validation};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct CompressConfig {
    pub finetune: FinetuneConfig,
    pub prune: PruneConfig,
    /// Accuracy budget in points, for the search (on validation data) and the gate (on test data).
    pub max_accuracy_drop: f64,
    /// Budget of the search on validation data, in points: below `max_accuracy_drop`, so that a
    /// cut chosen on one sample of data still passes the gate on another.
    pub search_budget: f64,
    /// Epochs of plain fine-tuning (no BEAN) after pruning.
    pub heal_epochs: usize,
    pub heal_lr: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageFinetune {
    pub epochs: usize,
    pub engine: String,
    pub samples_per_second: f64,
    pub initial_val_accuracy: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    BeanFinetuned,
    Original,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    pub finetune: StageFinetune,
    /// Which model the chosen cut was made from, and how it was shared among layers.
    pub source: Source,
    pub allocation: Allocation,
    pub prune: PruneReport,
    pub search: SearchReport,
    /// Epochs of healing each candidate got, and the seconds the whole search took.
    pub heal_epochs: usize,
    pub search_seconds: f64,
    pub validation: Validation,
    pub passed: bool,
    /// Why the gate failed, when it did.
    pub reason: Option<String>,
    pub seconds: f64,
}

fn stage(o: &train::Outcome, seconds: f64) -> StageFinetune {
    StageFinetune {
        epochs: o.history.len(),
        engine: o.engine.clone(),
        samples_per_second: o.samples_per_second(),
        initial_val_accuracy: o.initial_val_accuracy,
        val_accuracy: o.val_accuracy(),
        seconds,
    }
}

/// Runs the pipeline. `candidate_path` is where the result would be written (for file sizes, the
/// candidate is measured from a temporary file in the same folder). Returns the candidate and
/// the report; the caller writes the candidate only when `report.passed`.
#[allow(clippy::too_many_arguments)]
pub fn compress(
    model: &Model,
    model_path: &Path,
    train_set: &Dataset,
    val: &Dataset,
    test: &Dataset,
    candidate_dir: &Path,
    cfg: &CompressConfig,
    observer: &mut dyn Observer,
) -> Result<(Model, CompressReport)> {
    let started = std::time::Instant::now();
    let t = std::time::Instant::now();
    let tuned = train::finetune(model, train_set, Some(val), &cfg.finetune, None, observer)?;
    tuned.stop.clone().into_result("the BEAN fine-tune")?;
    let finetune = stage(&tuned, t.elapsed().as_secs_f64());

    // Each candidate is healed before it is judged, and the budget is measured against the
    // original model, not the fine-tuned one.
    // Candidates run two at a time on the machine's cores: one thread each.
    let heal_base = FinetuneConfig {
        engine_opts: crate::engine::EngineOptions {
            threads: 1,
            ..cfg.finetune.engine_opts
        },
        ..cfg.finetune.clone()
    };
    let heal = |m: Model| train::heal(m, train_set, &heal_base, cfg.heal_epochs, cfg.heal_lr);
    observer.stage("search");
    let t = std::time::Instant::now();
    // Prune both the BEAN-tuned and the original model, sharing the cut uniformly and globally
    // among layers, and keep the smallest model within budget: when BEAN's strength or one
    // allocation does not suit a model, compress still finds what the others allow.
    let mut best: Option<(Model, PruneReport, SearchReport, Source, Allocation, usize)> = None;
    let mut first_error = None;
    for (source, from) in [
        (Source::BeanFinetuned, &tuned.model),
        (Source::Original, model),
    ] {
        for allocation in [Allocation::Uniform, Allocation::Global] {
            let prune_cfg = PruneConfig {
                allocation,
                ..cfg.prune.clone()
            };
            match prune::search(
                from,
                train_set,
                val,
                &prune_cfg,
                cfg.search_budget,
                tuned.initial_val_accuracy,
                Some(&heal),
            ) {
                Ok((m, report, search)) => {
                    let params = crate::inspect::report(&m)?.params_total;
                    let smaller = best.as_ref().is_none_or(|b| {
                        params < b.5
                            || (params == b.5 && search.chosen_accuracy > b.2.chosen_accuracy)
                    });
                    if smaller {
                        best = Some((m, report, search, source, allocation, params));
                    }
                }
                Err(e @ crate::Error::Interrupted { .. }) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    let Some((candidate, prune_report, search, source, allocation, _)) = best else {
        return Err(first_error.expect("four searches ran"));
    };
    let heal_seconds = t.elapsed().as_secs_f64();

    let tmp = tempfile::Builder::new()
        .suffix(".onnx")
        .tempdir_in(candidate_dir)
        .map_err(|e| crate::Error::io(candidate_dir, e))?;
    observer.stage("validate");
    let tmp_path = tmp.path().join("candidate.onnx");
    let written = crate::onnx::save(&candidate, &tmp_path, &Default::default())?;
    let validation = validate::validate(
        validate::Subject {
            model,
            file_bytes: validate::file_bytes(model, model_path),
        },
        validate::Subject {
            model: &candidate,
            file_bytes: validate::written_bytes(&written),
        },
        test,
        Some(cfg.max_accuracy_drop),
    )?;
    let passed = validation.passed;
    let reason = (!passed).then(|| {
        format!(
            "test accuracy dropped {:.2} points ({:.4} → {:.4}), more than the allowed {}",
            validation.accuracy_drop,
            validation.original.accuracy,
            validation.candidate.accuracy,
            cfg.max_accuracy_drop
        )
    });
    Ok((
        candidate,
        CompressReport {
            finetune,
            source,
            allocation,
            prune: prune_report,
            search,
            heal_epochs: cfg.heal_epochs,
            search_seconds: heal_seconds,
            validation,
            passed,
            reason,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}
