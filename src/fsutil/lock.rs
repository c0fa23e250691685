//! One writer per output: an exclusive advisory lock on `<output>.lock`, taken before a command
//! writes anything (checkpoints included) and held until its last rename, so two runs writing the
//! same output never mix their files (a model and its `.data` are renamed one after the other).
//!
//! A second writer fails at once with a message naming the lock. The holder deletes the lock file
//! while it still holds the lock; a process that locked a file that has since been deleted or
//! replaced sees that its descriptor no longer matches the path and tries again, so two processes
//! never both believe they hold the lock.
use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    /// The lock file of `output`.
    pub fn path_for(output: &Path) -> PathBuf {
        PathBuf::from(format!("{}.lock", output.display()))
    }

    /// Takes the lock of `output`, or fails when another process holds it.
    pub fn acquire(output: &Path) -> Result<OutputLock> {
        let path = Self::path_for(output);
        for _ in 0..100 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Invalid(format!(
                        "{} is being written by another process (it holds {}); wait for it to \
                         finish or choose another output",
                        output.display(),
                        path.display()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if still_at(&file, &path) {
                return Ok(OutputLock { path, _file: file });
            }
            // The holder deleted the lock file between our open and our lock: try again.
        }
        Err(Error::Invalid(format!(
            "cannot take the lock {}: it keeps being replaced",
            path.display()
        )))
    }
}

/// True when `path` is still the file `file` has open.
fn still_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Deleted while still locked (the descriptor closes after this): see the module comment.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.onnx");
        let first = OutputLock::acquire(&out).unwrap();
        let err = OutputLock::acquire(&out).unwrap_err().to_string();
        assert!(
            err.contains("another process") && err.contains("out.onnx.lock"),
            "{err}"
        );
        drop(first);
        assert!(
            !OutputLock::path_for(&out).exists(),
            "the lock file is left behind"
        );
        let again = OutputLock::acquire(&out).unwrap();
        drop(again);
    }
}
