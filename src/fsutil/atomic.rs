//! Atomic file writes: a temporary file in the target's folder, synced, given ordinary
//! permissions (rw-r--r--, where tempfile would leave rw-------), then renamed over the target.
use super::folder;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// A temporary file beside `target`, to be filled and then [`commit`]ted.
pub fn temp_beside(target: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = folder(target);
    tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))
}

/// Syncs `tmp`, makes it world-readable like any new file, and renames it to `target`.
pub fn commit(tmp: tempfile::NamedTempFile, target: &Path) -> Result<()> {
    tmp.as_file().sync_all().map_err(|e| Error::io(target, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(target, e))?;
    }
    tmp.persist(target)
        .map_err(|e| Error::io(target, e.error))?;
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
