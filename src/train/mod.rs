//! BEAN fine-tuning of a model's dense chain.
pub mod builder;
pub mod step_graph;
