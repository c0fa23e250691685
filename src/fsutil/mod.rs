//! Files in and out, safely: inputs are opened only when they are regular files (never blocking
//! on a FIFO or a device), outputs are checked before any work and written atomically under a
//! lock, so a failed or concurrent run never leaves a half-written or mixed result.
mod atomic;
mod lock;
mod outputs;

pub use atomic::{atomic_write, atomic_write_bytes, commit, commit_together, temp_beside};
pub use lock::OutputLock;
pub use outputs::{check_outputs, same_file, Output};

use crate::error::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The folder a path lives in ("." for a bare file name).
pub fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Opens `path` for reading only if it is a regular file (after following links). A FIFO,
/// socket, device or folder is refused without blocking: the open is non-blocking and the type
/// is checked on the opened descriptor, so a file swapped in between cannot slip through.
pub fn open_regular(path: &Path) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let why = format!("not a regular file ({})", file_kind(&meta));
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        ));
    }
    Ok(file)
}

/// Reads a whole regular file, after checking its size against the memory available.
/// A file that grows while it is read is refused: no more than the checked size is read.
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    crate::memory::reserve(&format!("reading {}", path.display()), size)?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > size {
        return Err(Error::io(
            path,
            std::io::Error::other(format!("the file grew while being read (was {size} bytes)")),
        ));
    }
    Ok(bytes)
}

/// "a folder", "a FIFO", … for messages.
pub(crate) fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else if meta.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}
