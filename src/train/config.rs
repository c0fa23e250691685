//! What a fine-tune is asked to do: the regularizers and their strength, the layers they act on,
//! the loss, the optimizer and the run (epochs, batches, engine, seed). Checked once by
//! [`FinetuneConfig::validate`] before any work.
use crate::engine::{EngineKind, EngineOptions};
use crate::error::{Error, Result};
use crate::train::step::{Baseline, BeanVariant, LossKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// γ = 1/std(W) of each layer's starting weights.
    Auto,
    Fixed(f64),
}

/// The BEAN strength: set from the model and its data (see `train::alpha`), or given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alpha {
    /// α such that the BEAN term starts at `train::alpha::AUTO_FRACTION` of the task loss.
    Auto,
    Fixed(f64),
}

impl std::str::FromStr for Alpha {
    type Err = String;
    /// `auto`, or a non-negative number.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Alpha::Auto),
            a => match a.parse::<f64>() {
                Ok(v) if v >= 0.0 && v.is_finite() => Ok(Alpha::Fixed(v)),
                _ => Err(format!("expected a non-negative number or auto, got '{a}'")),
            },
        }
    }
}

impl std::fmt::Display for Alpha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alpha::Auto => write!(f, "auto"),
            Alpha::Fixed(a) => write!(f, "{a}"),
        }
    }
}

/// Which layers get the regularizers. A layer's regularizer acts on its input neurons, so
/// `Hidden` (every layer but the first) shapes exactly the neurons that pruning removes.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerSelection {
    Hidden,
    All,
    List(Vec<usize>),
}

impl std::str::FromStr for Gamma {
    type Err = String;
    /// `auto`, or a positive number.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Gamma::Auto),
            g => match g.parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(Gamma::Fixed(v)),
                _ => Err(format!("expected a positive number or auto, got '{g}'")),
            },
        }
    }
}

impl std::str::FromStr for LayerSelection {
    type Err = String;
    /// `hidden`, `all`, or dense-layer indices such as `1,2`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "hidden" => Ok(LayerSelection::Hidden),
            "all" => Ok(LayerSelection::All),
            list => list
                .split(',')
                .map(|i| i.trim().parse::<usize>())
                .collect::<std::result::Result<_, _>>()
                .map(LayerSelection::List)
                .map_err(|_| format!("expected hidden, all or indices like 1,2; got '{list}'")),
        }
    }
}

impl LayerSelection {
    pub(crate) fn contains(&self, layer: usize) -> bool {
        match self {
            LayerSelection::Hidden => layer > 0,
            LayerSelection::All => true,
            LayerSelection::List(v) => v.contains(&layer),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

crate::names::named!(OptimizerKind, "optimizer", [Adam => "adam", Sgd => "sgd"]);

#[derive(Debug, Clone)]
pub struct FinetuneConfig {
    pub bean: Option<BeanVariant>,
    pub alpha: Alpha,
    pub gamma: Gamma,
    pub layers: LayerSelection,
    pub baseline: Option<(Baseline, f64)>,
    /// None: cross-entropy for class labels or a teacher, MSE for float targets.
    pub loss: Option<LossKind>,
    /// Distil from the original model's outputs even when the data has labels.
    pub teacher: bool,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub engine: EngineKind,
    pub engine_opts: EngineOptions,
    pub seed: u64,
    /// Which epoch's weights a run with validation data returns.
    pub keep: KeptWeights,
}

impl FinetuneConfig {
    /// Refuses settings no run can use (every fine-tune checks this first).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64, need: &str| {
            Error::Invalid(format!("{what} must be {need}, got {v}"))
        };
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(Error::Invalid(
                "the epochs and the batch size must be at least 1".into(),
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(bad("the learning rate", self.lr, "a positive number"));
        }
        if let Alpha::Fixed(a) = self.alpha {
            if !(a >= 0.0 && a.is_finite()) {
                return Err(bad("the BEAN strength α", a, "a non-negative number"));
            }
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(bad("the momentum", self.momentum, "in [0, 1)"));
        }
        if let Gamma::Fixed(g) = self.gamma {
            if !(g > 0.0 && g.is_finite()) {
                return Err(bad("γ", g, "a positive number"));
            }
        }
        if let Some((_, w)) = self.baseline {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(bad("the baseline weight", w, "a non-negative number"));
            }
        }
        Ok(())
    }
}

/// Which weights a fine-tune with validation data returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptWeights {
    /// The epoch most accurate on the validation data.
    BestOnValidation,
    /// The last epoch's: the validation data only reports, so it stays an unbiased judge of the
    /// result (compress, whose search judges on the same rows).
    Last,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            bean: Some(BeanVariant::One),
            alpha: Alpha::Auto,
            gamma: Gamma::Auto,
            layers: LayerSelection::Hidden,
            baseline: None,
            loss: None,
            teacher: false,
            epochs: 5,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            engine: EngineKind::Tract,
            engine_opts: EngineOptions::default(),
            seed: 0,
            keep: KeptWeights::BestOnValidation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_and_layer_selections_parse_or_say_what_they_expect() {
        assert_eq!("auto".parse::<Gamma>(), Ok(Gamma::Auto));
        assert_eq!("0.5".parse::<Gamma>(), Ok(Gamma::Fixed(0.5)));
        assert!("-1".parse::<Gamma>().unwrap_err().contains("positive"));
        assert_eq!(
            "hidden".parse::<LayerSelection>(),
            Ok(LayerSelection::Hidden)
        );
        assert_eq!(
            " 1, 2".parse::<LayerSelection>(),
            Ok(LayerSelection::List(vec![1, 2]))
        );
        assert!("1,x".parse::<LayerSelection>().is_err());
        assert!(LayerSelection::Hidden.contains(1) && !LayerSelection::Hidden.contains(0));
    }

    #[test]
    fn invalid_settings_are_refused_in_the_library_s_own_words() {
        let ok = FinetuneConfig::default();
        ok.validate().unwrap();
        let cases = [
            (
                FinetuneConfig {
                    lr: 0.0,
                    ..ok.clone()
                },
                "the learning rate must be a positive number",
            ),
            (
                FinetuneConfig {
                    epochs: 0,
                    ..ok.clone()
                },
                "the epochs and the batch size",
            ),
            (
                FinetuneConfig {
                    alpha: Alpha::Fixed(f64::NAN),
                    ..ok.clone()
                },
                "the BEAN strength α",
            ),
            (
                FinetuneConfig {
                    momentum: 1.0,
                    ..ok.clone()
                },
                "the momentum must be in [0, 1)",
            ),
            (
                FinetuneConfig {
                    gamma: Gamma::Fixed(0.0),
                    ..ok.clone()
                },
                "γ must be a positive number",
            ),
        ];
        for (cfg, needle) in cases {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("--"), "a flag in a library message: {e}");
        }
    }
}
