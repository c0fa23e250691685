//! BEAN fine-tuning of a model's dense chain: the configuration, the plan built from it, the step
//! graph, the trainer that runs it, the fine-tuning loop and its checkpoints.
pub mod alpha;
pub mod chain_input;
pub mod checkpoint;
pub mod config;
pub mod data_prep;
pub mod finetune;
pub mod observer;
pub mod plan;
pub mod prepared;
pub mod step;
pub mod trainer;

pub use alpha::AutoAlpha;
pub use checkpoint::Checkpoint;
pub use config::{Alpha, FinetuneConfig, Gamma, KeptWeights, LayerSelection, OptimizerKind};
pub use finetune::{finetune, heal, EpochMetrics, LayerFigures, Outcome, StopReason};
pub use observer::{Observer, Silent};
pub use prepared::PreparedRows;
pub use trainer::{Trainer, TrainingSet};
