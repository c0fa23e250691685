//! `.npz` archives checked before any array in them is read.
//!
//! Every `.npy` entry's header is checked as a standalone `.npy` file's is ([`super::npy`]):
//! what it declares must fit in the bytes the entry holds, and that size must be plausible for
//! the bytes actually stored (equal for stored entries; at most [`MAX_DEFLATE_RATIO`] times the
//! compressed size for deflated ones, deflate's own limit). So an array is only ever allocated
//! for bytes the file verifiably holds.
use crate::error::{Error, Result};
use ndarray_npy::NpzReader;
use std::fs::File;
use std::path::Path;

/// Deflate cannot expand data by more than about 1032:1; a larger claim is a lie.
pub const MAX_DEFLATE_RATIO: u64 = 1100;

pub use super::npy::NpyEntry;

/// Opens `path` (a regular file), checks every entry, and returns a reader and the entries.
pub fn open(path: &Path) -> Result<(NpzReader<File>, Vec<NpyEntry>)> {
    let bad = |reason: String| Error::data(path, reason);
    let file = crate::fsutil::open_regular(path)?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut zip =
        zip::ZipArchive::new(&file).map_err(|e| bad(format!("not a readable .npz file ({e})")))?;
    let mut entries = Vec::with_capacity(zip.len().min(1024));
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("not a readable .npz file ({e})")))?;
        entries.push(check_entry(entry, file_len).map_err(bad)?);
    }
    drop(zip);
    let reader =
        NpzReader::new(file).map_err(|e| bad(format!("not a readable .npz file ({e})")))?;
    Ok((reader, entries))
}

/// Checks one entry against the archive (`file_len` bytes long) before anything is allocated.
fn check_entry(
    mut entry: zip::read::ZipFile<'_, &File>,
    file_len: u64,
) -> std::result::Result<NpyEntry, String> {
    let name = entry.name().trim_end_matches(".npy").to_string();
    let size = entry.size();
    let stored = entry.compressed_size();
    if stored > file_len {
        return Err(format!(
            "array '{name}' claims {stored} stored bytes in a {file_len}-byte file"
        ));
    }
    let plausible = match entry.compression() {
        zip::CompressionMethod::Stored => size == stored,
        _ => {
            size <= stored
                .saturating_mul(MAX_DEFLATE_RATIO)
                .saturating_add(1024)
        }
    };
    if !plausible {
        return Err(format!(
            "array '{name}' claims {size} bytes but the archive stores {stored} bytes for it"
        ));
    }
    super::npy::check_header(&name, &mut entry, size)
}
