//! What the training loop tells its caller: each finished epoch (with a checkpoint to keep), and
//! the stages of a longer pipeline; and what the caller tells the loop: stop.
use crate::error::Result;
use crate::progress::{NoProgress, Progress};
use crate::train::{Checkpoint, EpochMetrics};

/// Called by the loop; the CLI implements it with files, bars and signals.
pub trait Observer {
    fn epoch_end(&mut self, metrics: &EpochMetrics, checkpoint: &Checkpoint) -> Result<()>;
    fn interrupted(&self) -> bool;
    /// Whether it keeps the checkpoints it is handed (they are then signed, so that a resumed
    /// run can prove it continues the same run).
    fn keeps_checkpoints(&self) -> bool {
        false
    }
    /// A pipeline (compress) entering a stage, such as "search" or "validate".
    fn stage(&mut self, _stage: &str) {}
    /// Where the steps of each epoch (and a pipeline's pruning search) report progress.
    fn progress(&self) -> &dyn Progress {
        &NoProgress
    }
}

/// An observer that reports nothing and never stops (short fine-tunes inside other commands).
pub struct Silent;

impl Observer for Silent {
    fn epoch_end(&mut self, _: &EpochMetrics, _: &Checkpoint) -> Result<()> {
        Ok(())
    }
    fn interrupted(&self) -> bool {
        false
    }
}
