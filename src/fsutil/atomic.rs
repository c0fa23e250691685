//! Atomic file writes: a temporary file in the target's folder, created with the permissions of
//! any new file (rw-rw-rw- less the umask, where tempfile would use rw-------), synced, then
//! renamed over the target.
use super::folder;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// A temporary file beside `target`, to be filled and then [`commit`]ted.
pub fn temp_beside(target: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = folder(target);
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(&dir).map_err(|e| Error::io(&dir, e))
}

/// Syncs `tmp` and renames it to `target`.
pub fn commit(tmp: tempfile::NamedTempFile, target: &Path) -> Result<()> {
    commit_together(vec![(tmp, target)])
}

/// Syncs every file first, then renames each to its target in order: a failed write replaces
/// none of the targets (a model never ends up beside data written for another).
pub fn commit_together(files: Vec<(tempfile::NamedTempFile, &Path)>) -> Result<()> {
    for (tmp, target) in &files {
        tmp.as_file().sync_all().map_err(|e| Error::io(target, e))?;
    }
    for (tmp, target) in files {
        tmp.persist(target)
            .map_err(|e| Error::io(target, e.error))?;
    }
    Ok(())
}

/// Writes `target` atomically with what `fill` writes.
pub fn atomic_write(
    target: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = temp_beside(target)?;
    fill(tmp.as_file_mut()).map_err(|e| Error::io(target, e))?;
    commit(tmp, target)
}

/// Writes `bytes` to `target` atomically.
pub fn atomic_write_bytes(target: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(target, |f| f.write_all(bytes))
}
