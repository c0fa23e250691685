//! `.npz` archives checked before any array in them is read.
//!
//! Every `.npy` entry's header is parsed with the parser ndarray-npy itself reads with (a Python
//! literal: any quoting and spacing numpy accepts), and refused unless what it declares fits in
//! the bytes the entry holds: the shape's byte count (every partial product checked for
//! overflow, zero dims included) plus the header must be at most the entry's size, and that size
//! must be plausible for the bytes actually stored (equal for stored entries; at most
//! [`MAX_DEFLATE_RATIO`] times the compressed size for deflated ones, deflate's own limit). So an
//! array is only ever allocated for bytes the file verifiably holds.
use crate::error::{Error, Result};
use ndarray_npy::npy::header::Header;
use ndarray_npy::NpzReader;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Deflate cannot expand data by more than about 1032:1; a larger claim is a lie.
pub const MAX_DEFLATE_RATIO: u64 = 1100;
/// numpy writes headers of a few hundred bytes; anything this long is not an array header.
const MAX_HEADER_BYTES: u64 = 1 << 16;

/// What an entry declares, after the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyEntry {
    /// Array name (the entry's file name without `.npy`).
    pub name: String,
    /// numpy's type string, e.g. `<f4`, `|u1`.
    pub descr: String,
    pub shape: Vec<usize>,
    /// Bytes of the array's data.
    pub data_bytes: u64,
}

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
    let mut prefix = Vec::with_capacity(12);
    (&mut entry)
        .take(12)
        .read_to_end(&mut prefix)
        .map_err(|e| format!("array '{name}': {e}"))?;
    let header_len = declared_header_len(&prefix)
        .ok_or_else(|| format!("array '{name}' is not an .npy array (no valid header)"))?;
    let prefix_len = if prefix[6] == 1 { 10 } else { 12 };
    let header_end = prefix_len + header_len;
    if header_len > MAX_HEADER_BYTES || header_end > size {
        return Err(format!(
            "array '{name}' declares a {header_len}-byte header in a {size}-byte entry"
        ));
    }
    let mut bytes = prefix;
    (&mut entry)
        .take(header_end.saturating_sub(bytes.len() as u64))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("array '{name}': {e}"))?;
    let header = Header::from_reader(&mut bytes.as_slice())
        .map_err(|e| format!("array '{name}': cannot parse its .npy header ({e})"))?;
    let descr = match &header.type_descriptor {
        py_literal::Value::String(s) => s.clone(),
        other => return Err(format!("array '{name}': unsupported dtype {other}")),
    };
    let elem = element_bytes(&descr)
        .ok_or_else(|| format!("array '{name}': unsupported dtype '{descr}'"))?;
    let data_bytes = shape_bytes(&header.shape, elem).ok_or_else(|| {
        format!(
            "array '{name}' declares an impossible shape {:?}",
            header.shape
        )
    })?;
    if data_bytes > size - header_end {
        return Err(format!(
            "array '{name}' declares shape {:?} ({data_bytes} bytes) but the file holds {} bytes of data",
            header.shape,
            size - header_end
        ));
    }
    Ok(NpyEntry {
        name,
        descr,
        shape: header.shape,
        data_bytes,
    })
}

/// HEADER_LEN of an `.npy` prefix (magic, version, length), or None when it is not one.
fn declared_header_len(prefix: &[u8]) -> Option<u64> {
    if prefix.len() < 10 || &prefix[..6] != b"\x93NUMPY" {
        return None;
    }
    match prefix[6] {
        1 => Some(u16::from_le_bytes([prefix[8], prefix[9]]) as u64),
        2 | 3 if prefix.len() == 12 => {
            Some(u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as u64)
        }
        _ => None,
    }
}

/// Bytes per element of a plain numpy type string (`<f4` → 4, `|b1` → 1); None for anything else.
fn element_bytes(descr: &str) -> Option<u64> {
    let rest = descr.strip_prefix(['<', '>', '|', '=']).unwrap_or(descr);
    let mut chars = rest.chars();
    let kind = chars.next()?;
    if !"biufc".contains(kind) {
        return None;
    }
    chars.as_str().parse().ok().filter(|&n: &u64| n > 0)
}

/// Bytes of an array of `shape`, None when the product of the non-zero dims overflows (a shape
/// such as `(0, 2^40, 2^40)` holds no data, yet no reader should be asked to handle it).
fn shape_bytes(shape: &[usize], elem: u64) -> Option<u64> {
    let mut product = elem;
    let mut empty = false;
    for &d in shape {
        if d == 0 {
            empty = true;
        } else {
            product = product.checked_mul(d as u64)?;
        }
    }
    Some(if empty { 0 } else { product })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_overflow_in_any_partial_product() {
        assert_eq!(shape_bytes(&[3, 4], 4), Some(48));
        assert_eq!(shape_bytes(&[0, 1 << 40, 1 << 40], 4), None);
        assert_eq!(shape_bytes(&[1, 0, 1 << 20], 4), Some(0));
        assert_eq!(shape_bytes(&[], 8), Some(8));
    }

    #[test]
    fn type_strings() {
        assert_eq!(element_bytes("<f4"), Some(4));
        assert_eq!(element_bytes("|u1"), Some(1));
        assert_eq!(element_bytes("<i8"), Some(8));
        assert_eq!(element_bytes("|b1"), Some(1));
        assert_eq!(element_bytes("<U10"), None);
        assert_eq!(element_bytes("|O"), None);
        assert_eq!(element_bytes("<f0"), None);
    }
}
