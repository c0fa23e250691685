//! How long-running work reports its progress: a task of known length begins, advances one unit
//! at a time (a training step, a pruning candidate) with a short status, and ends. The command
//! line draws bars through it; the library draws nothing. Calls may come from several threads
//! (pruning candidates are evaluated in parallel).
pub trait Progress: Sync {
    /// A task of `len` units begins; `label` says what it is ("epoch 2/5").
    fn begin(&self, _label: &str, _len: u64) {}
    /// One unit is done; `status` is a short line about it (may be empty).
    fn advance(&self, _status: &str) {}
    /// The task ended (finished or abandoned).
    fn end(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
