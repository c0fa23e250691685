//! Stopping cleanly on SIGINT / SIGTERM.
//!
//! The binary registers [`flag`] with its signal handler (which only stores the signal number);
//! long-running library code calls [`check`] between units of work (a training step, a batch, a
//! pruning candidate) and returns [`Error::Interrupted`], so every temporary file and lock is
//! dropped on the way out and nothing half-done is written. Library users that never register
//! the flag are never interrupted.
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The process-wide flag: 0, or the number of the signal that asked the run to stop.
pub fn flag() -> Arc<AtomicUsize> {
    static FLAG: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicUsize::new(0))).clone()
}

/// The signal that asked the run to stop, if any.
pub fn requested() -> Option<i32> {
    match flag().load(Ordering::Relaxed) {
        0 => None,
        s => Some(s as i32),
    }
}

/// `Err(Error::Interrupted)` once a stop was requested.
pub fn check() -> Result<()> {
    match requested() {
        None => Ok(()),
        Some(signal) => Err(Error::Interrupted { signal }),
    }
}
