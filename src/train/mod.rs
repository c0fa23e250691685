//! BEAN fine-tuning of a model's dense chain.
pub mod builder;
pub mod checkpoint;
pub mod data_prep;
pub mod finetune;
pub mod step_graph;

pub use finetune::{
    finetune, heal, Checkpoint, EpochMetrics, FinetuneConfig, Gamma, LayerSelection, Observer,
    OptimizerKind, Outcome, Silent, StopReason,
};
