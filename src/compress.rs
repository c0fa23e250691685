//! `compress`: fine-tune with BEAN → prune within the budget → heal → validate, as one pipeline
//! whose result is written only when the gate passes. The gate follows the data
//! ([`crate::gate`]): with labels, accuracy; without, agreement with the original's predicted
//! classes — the validation and healing data are then labelled with the original's predictions,
//! so that accuracy on them *is* agreement, and the BEAN fine-tune distils from the original's
//! outputs; with float targets, regression: the search bounds the RMSE increase, the gate the
//! RMSE increase and max |Δ| of the outputs.
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gate::{GateMetric, Limits};
use crate::ir::Model;
use crate::progress::Progress;
use crate::prune::{self, selection, Allocation, PruneConfig, PruneReport, SearchReport};
use crate::train::{self, FinetuneConfig, Observer};
use crate::validate::{self, Validation};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct CompressConfig {
    pub finetune: FinetuneConfig,
    pub prune: PruneConfig,
    /// Accuracy budget in points (of agreement, without labels), for the search (on validation
    /// data) and the gate (on test data); not used for regression.
    pub max_accuracy_drop: f64,
    /// RMSE increase allowed on regression data (needed there; refused elsewhere).
    pub max_rmse_increase: Option<f64>,
    /// Bound of the gate on the largest difference of any output value.
    pub max_abs_diff: Option<f64>,
    /// Least speed-up over the original the gate requires (see `validate`).
    pub min_speedup: Option<f64>,
    /// Most parameters the gate allows the candidate.
    pub max_params: Option<usize>,
    /// Budget of the search on validation data, in the gate's unit (points, or RMSE), taken as
    /// measured. None: the gate's budget less each candidate's paired margin (prune::margin) when
    /// the validation and test data are different files of an accuracy gate; otherwise a quarter
    /// of the gate's budget.
    pub search_budget: Option<f64>,
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
    /// The α BEAN ran with, and what `--alpha auto` measured to set it.
    pub alpha: Option<f64>,
    pub alpha_auto: Option<train::AutoAlpha>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    BeanFinetuned,
    Original,
}

crate::names::named!(Source, "source", [BeanFinetuned => "bean-finetuned", Original => "original"]);

/// One of the four searches (each source with each allocation): every candidate it evaluated,
/// the ratio it chose, or why it chose none.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRun {
    pub source: Source,
    pub allocation: Allocation,
    pub candidates: Vec<prune::Candidate>,
    pub chosen_ratio: Option<f64>,
    pub error: Option<String>,
    /// Seconds spent pruning this search's candidates (calibration included), summed.
    pub prune_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    pub finetune: StageFinetune,
    /// Which model the chosen cut was made from, and how it was shared among layers.
    pub source: Source,
    pub allocation: Allocation,
    pub prune: PruneReport,
    pub search: SearchReport,
    /// Every search that was run, the chosen one among them.
    pub searches: Vec<SearchRun>,
    /// Epochs of healing each candidate got, and the seconds the whole search took.
    pub heal_epochs: usize,
    pub search_seconds: f64,
    /// Seconds spent healing candidates, summed over candidates (they heal two at a time, so
    /// this can exceed the search's wall time); part of `search_seconds`.
    pub heal_seconds: f64,
    /// Seconds spent pruning candidates (calibration activations, assemblies, compensation),
    /// summed over candidates like `heal_seconds`; part of `search_seconds`.
    pub prune_seconds: f64,
    /// Seconds of the final validation on the test data.
    pub validate_seconds: f64,
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
        alpha: o.alpha,
        alpha_auto: o.auto_alpha,
        seconds,
    }
}

/// The model to compress, where it was read from, and the data of each stage.
pub struct CompressInput<'a> {
    pub model: &'a Model,
    /// The model's file (its size is reported beside the candidate's).
    pub model_path: &'a Path,
    /// Fine-tuning, calibration and healing data.
    pub train: &'a Dataset,
    /// The search judges candidates on it.
    pub val: &'a Dataset,
    /// The gate.
    pub test: &'a Dataset,
    /// A folder on the output's file system, for the candidate's temporary copy.
    pub candidate_dir: &'a Path,
}

/// The chosen cut among the searches.
struct Chosen {
    model: Model,
    prune: PruneReport,
    search: SearchReport,
    source: Source,
    allocation: Allocation,
    params: usize,
}

/// The gate's metric and limits, and the data each stage works on, as the metric needs it.
struct Plan {
    metric: GateMetric,
    limits: Limits,
    search_budget: f64,
    search_margin: prune::SearchMargin,
    /// Validation data with labels (the original's predictions when it has none), for the
    /// fine-tune's best epoch; None for regression.
    labelled_val: Option<Dataset>,
    /// Healing data: the training data, labelled with the original's predictions when it has
    /// no targets (healing would otherwise distil from the pruned model itself).
    heal_train: Option<Dataset>,
}

impl Plan {
    fn new(input: &CompressInput, cfg: &CompressConfig) -> Result<Plan> {
        let metric = GateMetric::for_data(input.test);
        let search_metric = GateMetric::for_data(input.val);
        if (metric == GateMetric::Regression) != (search_metric == GateMetric::Regression) {
            return Err(Error::data(
                &input.val.path,
                format!(
                    "the validation data and the test data ({}) must both hold float targets, or \
                     neither",
                    input.test.path.display()
                ),
            ));
        }
        let regression = metric == GateMetric::Regression;
        let limits = Limits {
            max_drop_points: (!regression).then_some(cfg.max_accuracy_drop),
            max_rmse_increase: cfg.max_rmse_increase,
            max_abs_diff: cfg.max_abs_diff,
            min_speedup: cfg.min_speedup,
            max_params: cfg.max_params,
        };
        limits.check(metric, &input.test.path)?;
        let gate_budget =
            match limits.max_rmse_increase {
                Some(r) => r,
                None if regression => return Err(Error::data(
                    &input.test.path,
                    "holds float targets (regression): the search and the gate need an RMSE budget",
                )),
                None => cfg.max_accuracy_drop,
            };
        let engine = (cfg.finetune.engine, &cfg.finetune.engine_opts);
        let pseudo = |d: &Dataset| with_predictions(input.model, d, engine);
        let labelled_val = match search_metric {
            GateMetric::Accuracy => Some(input.val.clone()),
            GateMetric::Agreement => Some(pseudo(input.val)?),
            GateMetric::Regression => None,
        };
        let unlabelled_train = input.train.y.is_none() && input.train.y_values.is_none();
        let (search_budget, search_margin) = match (cfg.search_budget, &labelled_val) {
            (Some(b), _) => (b, prune::SearchMargin::None),
            (None, Some(val)) if !crate::fsutil::same_file(&input.val.path, &input.test.path) => {
                let (original, _) = crate::eval::verdicts(input.model, val, engine.0, engine.1)?;
                let gate_rows = input.test.rows();
                (
                    gate_budget,
                    prune::SearchMargin::Paired {
                        original,
                        gate_rows,
                    },
                )
            }
            (None, _) => (gate_budget / 4.0, prune::SearchMargin::None),
        };
        Ok(Plan {
            metric: search_metric,
            limits,
            search_budget,
            search_margin,
            labelled_val,
            heal_train: unlabelled_train.then(|| pseudo(input.train)).transpose()?,
        })
    }

    /// Data the search judges candidates on.
    fn search_val<'a>(&'a self, input: &'a CompressInput) -> &'a Dataset {
        self.labelled_val.as_ref().unwrap_or(input.val)
    }
}

/// `data` labelled with `model`'s predicted classes.
fn with_predictions(
    model: &Model,
    data: &Dataset,
    (kind, opts): (crate::engine::EngineKind, &crate::engine::EngineOptions),
) -> Result<Dataset> {
    let target = crate::eval::find_target(model)?;
    let (p, _) = crate::eval::predict(model, &target, data, kind, opts)?;
    Ok(Dataset {
        y: Some(p.labels),
        y_values: None,
        ..data.clone()
    })
}

/// The chosen cut and every search run.
struct Searched {
    chosen: Chosen,
    runs: Vec<SearchRun>,
    /// Seconds spent healing, summed over candidates.
    heal_seconds: f64,
}

/// Runs the pipeline. Returns the candidate and the report; the caller writes the candidate
/// only when `report.passed`.
pub fn compress(
    input: &CompressInput,
    cfg: &CompressConfig,
    observer: &mut dyn Observer,
) -> Result<(Model, CompressReport)> {
    let started = std::time::Instant::now();
    let plan = Plan::new(input, cfg)?;
    let tuned = train::finetune(
        input.model,
        input.train,
        plan.labelled_val.as_ref(),
        &cfg.finetune,
        None,
        observer,
    )?;
    tuned.stop.clone().into_result("the BEAN fine-tune")?;
    let finetune = stage(&tuned, started.elapsed().as_secs_f64());
    observer.stage("search");
    let t = std::time::Instant::now();
    let Searched {
        chosen,
        runs,
        heal_seconds,
    } = search_all(input, cfg, &plan, &tuned, observer.progress())?;
    let search_seconds = t.elapsed().as_secs_f64();
    observer.stage("validate");
    let t = std::time::Instant::now();
    let validation = validate_candidate(input, &plan.limits, &chosen.model)?;
    let validate_seconds = t.elapsed().as_secs_f64();
    let passed = validation.passed;
    let reason = validation.reason.clone();
    let prune_seconds = runs.iter().map(|r| r.prune_seconds).sum();
    let report = CompressReport {
        finetune,
        source: chosen.source,
        allocation: chosen.allocation,
        prune: chosen.prune,
        search: chosen.search,
        searches: runs,
        heal_epochs: cfg.heal_epochs,
        search_seconds,
        heal_seconds,
        prune_seconds,
        validate_seconds,
        validation,
        passed,
        reason,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((chosen.model, report))
}

/// Searches the BEAN-tuned and the original model, each with the cut shared uniformly and
/// globally among layers, and keeps the smallest model within the search budget (the more
/// accurate on a tie): when BEAN's strength or one allocation does not suit a model, compress
/// still finds what the others allow. Each candidate is healed before it is judged, and the
/// budget is measured against the original model, not the fine-tuned one.
fn search_all(
    input: &CompressInput,
    cfg: &CompressConfig,
    plan: &Plan,
    tuned: &train::Outcome,
    progress: &dyn Progress,
) -> Result<Searched> {
    let healer = Healer::new(input, cfg, plan)?;
    let heal = |m: Model| healer.heal(m);
    let val = plan.search_val(input);
    // Measured against the original model, not the fine-tuned one.
    let baseline = match plan.metric {
        GateMetric::Regression => Some(crate::eval::rmse_on(
            input.model,
            val,
            cfg.finetune.engine,
            &cfg.finetune.engine_opts,
        )?),
        _ => tuned.initial_val_accuracy,
    };
    let mut pools = Vec::new();
    let mut first_error = None;
    let mut runs = Vec::new();
    for (source, from) in [
        (Source::BeanFinetuned, &tuned.model),
        (Source::Original, input.model),
    ] {
        for allocation in [Allocation::Uniform, Allocation::Global] {
            let prune_cfg = PruneConfig {
                allocation,
                ..cfg.prune.clone()
            };
            let spec = prune::Search {
                calib: input.train,
                val,
                cfg: &prune_cfg,
                metric: plan.metric,
                max_drop_points: plan.search_budget,
                baseline,
                post: Some(&heal),
                margin: plan.search_margin.clone(),
                progress,
            };
            let (run, searched) = run_search(from, &spec, source, allocation);
            match searched {
                Ok(pool) => pools.push(pool),
                Err(e @ crate::Error::Interrupted { .. }) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            runs.push(run);
        }
    }
    let chosen = match &plan.search_margin {
        prune::SearchMargin::Paired { original, .. } => {
            let baseline = baseline.ok_or_else(|| {
                Error::Invalid("a paired margin needs the original's validation accuracy".into())
            })?;
            choose_allowing_for_luck(pools, &mut runs, original, (baseline, plan.search_budget))?
        }
        prune::SearchMargin::None => pools.into_iter().try_fold(None, |mut best, pool| {
            keep_smaller(&mut best, pool.into_best()?);
            Ok::<_, crate::Error>(best)
        })?,
    };
    match chosen {
        Some(chosen) => Ok(Searched {
            chosen,
            runs,
            heal_seconds: healer.seconds(),
        }),
        None => Err(first_error.unwrap_or_else(|| {
            Error::Invalid(
                "no cut stays within the search budget once the choice's optimism is allowed for \
                 (see the report's searches)"
                    .into(),
            )
        })),
    }
}

/// One search with a cut within its budget: the largest such cut, and the others.
struct Pool {
    source: Source,
    allocation: Allocation,
    best: (Model, PruneReport, SearchReport),
    within: Vec<(usize, Model, PruneReport)>,
}

impl Pool {
    fn into_best(self) -> Result<Chosen> {
        let (model, prune, search) = self.best;
        Ok(Chosen {
            params: crate::inspect::report(&model)?.params_total,
            model,
            prune,
            search,
            source: self.source,
            allocation: self.allocation,
        })
    }

    /// The candidate of index `k` among the search's candidates (`run`), or None when it was
    /// not within the budget.
    fn take(mut self, run: &SearchRun, k: usize) -> Option<Chosen> {
        let ratio = run.candidates[k].ratio;
        let (model, prune) = if self.best.2.chosen_ratio == ratio {
            (self.best.0, self.best.1)
        } else {
            let i = self.within.iter().position(|(j, _, _)| *j == k)?;
            let (_, model, prune) = self.within.swap_remove(i);
            (model, prune)
        };
        Some(Chosen {
            model,
            prune,
            search: self.best.2.choosing(&run.candidates[k]),
            source: self.source,
            allocation: self.allocation,
            params: run.candidates[k].params,
        })
    }
}

/// The final choice with a paired margin: the rule of `prune::selection` with the bootstrap
/// estimate ω of its optimism added to every candidate's margin. Each search's `chosen_ratio`
/// in `runs` becomes its choice under that rule; the chosen search's report records ω. Drops are
/// measured against `baseline` exactly as the searches measured them, so (ω ≥ 0) every choice is
/// one the searches kept a model for.
fn choose_allowing_for_luck(
    pools: Vec<Pool>,
    runs: &mut [SearchRun],
    original: &[bool],
    (baseline, budget): (f64, f64),
) -> Result<Option<Chosen>> {
    let views: Option<Vec<Vec<selection::Judged>>> = runs
        .iter()
        .map(|run| {
            run.candidates
                .iter()
                .map(|c| {
                    Some(selection::Judged {
                        params: c.params,
                        margin: c.margin?,
                        cuts: c.cuts,
                        right: c.right.as_deref()?,
                    })
                })
                .collect()
        })
        .collect();
    let Some(views) = views else {
        return Err(Error::Invalid(
            "a paired margin needs every candidate's verdicts".into(),
        ));
    };
    let omega = selection::optimism(original, &views, budget, selection::SAMPLES, 0);
    let drops: Vec<Vec<f64>> = runs
        .iter()
        .map(|run| {
            let drop = |c: &prune::Candidate| 100.0 * (baseline - c.accuracy.unwrap_or(0.0));
            run.candidates.iter().map(drop).collect()
        })
        .collect();
    let choice = selection::choose(&views, &drops, omega, budget);
    let choices: Vec<Option<usize>> = (0..runs.len())
        .map(|s| selection::choose_in(&views[s], &drops[s], omega, budget))
        .collect();
    drop(views);
    for (run, k) in runs.iter_mut().zip(&choices) {
        if run.chosen_ratio.is_some() && k.is_none() {
            run.error = Some(format!(
                "no cut within the budget once the choice's optimism ({omega:.2} points) is \
                 allowed for"
            ));
        }
        run.chosen_ratio = k.map(|k| run.candidates[k].ratio);
    }
    let Some((s, k)) = choice else {
        return Ok(None);
    };
    let run = &runs[s];
    let pool = pools
        .into_iter()
        .find(|p| p.source == run.source && p.allocation == run.allocation)
        .expect("a search with a cut within the budget has its pool");
    let mut chosen = pool
        .take(run, k)
        .expect("a cut within the corrected budget is within the uncorrected one");
    chosen.search.optimism = Some(omega);
    Ok(Some(chosen))
}

/// Heals search candidates: a short plain fine-tune of each on the heal data, whose rows are
/// prepared once (every candidate shares the original's prelude and head), timed in sum.
struct Healer<'a> {
    data: &'a Dataset,
    prepared: Option<train::PreparedRows>,
    cfg: FinetuneConfig,
    schedule: (usize, f64),
    nanos: std::sync::atomic::AtomicU64,
}

impl<'a> Healer<'a> {
    fn new(input: &CompressInput<'a>, cfg: &CompressConfig, plan: &'a Plan) -> Result<Self> {
        // Candidates run two at a time on the machine's cores: one thread each.
        let heal_cfg = FinetuneConfig {
            engine_opts: crate::engine::EngineOptions {
                threads: 1,
                ..cfg.finetune.engine_opts
            },
            ..cfg.finetune.clone()
        };
        let data = plan.heal_train.as_ref().unwrap_or(input.train);
        let prepared = match cfg.heal_epochs {
            0 => None,
            _ => train::PreparedRows::new(input.model, data, &heal_cfg)?,
        };
        Ok(Healer {
            data,
            prepared,
            cfg: heal_cfg,
            schedule: (cfg.heal_epochs, cfg.heal_lr),
            nanos: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn heal(&self, m: Model) -> Result<Model> {
        let t = std::time::Instant::now();
        let healed = train::heal(
            m,
            self.data,
            self.prepared.as_ref(),
            &self.cfg,
            self.schedule,
        );
        let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos
            .fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
        healed
    }

    /// Seconds spent healing, summed over candidates.
    fn seconds(&self) -> f64 {
        self.nanos.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9
    }
}

/// Keeps `found` when it has fewer params than `best` (or as many and a better value).
fn keep_smaller(best: &mut Option<Chosen>, found: Chosen) {
    let better = best.as_ref().is_none_or(|b| {
        found.params < b.params
            || (found.params == b.params
                && found.search.chosen_quality() > b.search.chosen_quality())
    });
    if better {
        *best = Some(found);
    }
}

/// One of the searches: its record for the report, and its chosen cut or why there is none.
fn run_search(
    from: &Model,
    spec: &prune::Search,
    source: Source,
    allocation: Allocation,
) -> (SearchRun, Result<Pool>) {
    let mut run = SearchRun {
        source,
        allocation,
        candidates: Vec::new(),
        chosen_ratio: None,
        error: None,
        prune_seconds: 0.0,
    };
    let searched = prune::search_candidates(from, spec).and_then(|searched| {
        run.candidates = searched.candidates.clone();
        run.prune_seconds = searched.prune_seconds;
        let why = searched.why(spec);
        let best = searched.best.ok_or(why)?;
        Ok(Pool {
            source,
            allocation,
            best,
            within: searched.within,
        })
    });
    match &searched {
        Ok(pool) => run.chosen_ratio = Some(pool.best.2.chosen_ratio),
        Err(e) => run.error = Some(e.to_string()),
    }
    (run, searched)
}

/// Writes the candidate to a temporary folder beside the output (so its file sizes are real)
/// and validates it against the original on the test data.
fn validate_candidate(
    input: &CompressInput,
    limits: &Limits,
    candidate: &Model,
) -> Result<Validation> {
    let tmp = tempfile::Builder::new()
        .suffix(".onnx")
        .tempdir_in(input.candidate_dir)
        .map_err(|e| crate::Error::io(input.candidate_dir, e))?;
    let tmp_path = tmp.path().join("candidate.onnx");
    let written = crate::onnx::save(candidate, &tmp_path, &Default::default())?;
    validate::validate(
        validate::Subject {
            model: input.model,
            file_bytes: validate::file_bytes(input.model, input.model_path),
        },
        validate::Subject {
            model: candidate,
            file_bytes: validate::written_bytes(&written),
        },
        input.test,
        limits,
        "test ",
    )
}
