//! `.npy` headers checked before any array is read, for a standalone `.npy` file and for each
//! entry of an `.npz` archive alike.
//!
//! The header is parsed with the parser ndarray-npy itself reads with (a Python literal: any
//! quoting and spacing numpy accepts), and refused unless what it declares fits in the bytes the
//! file or entry holds: the shape's byte count (every partial product checked for overflow, zero
//! dims included) plus the header must be at most its size. So an array is only ever allocated
//! (or mapped) for bytes that are verifiably there.
use crate::error::{Error, Result};
use ndarray_npy::npy::header::Header;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// numpy writes headers of a few hundred bytes; anything this long is not an array header.
const MAX_HEADER_BYTES: u64 = 1 << 16;

/// What an array declares, after the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyEntry {
    /// Array name (an `.npz` entry's file name, or a `.npy` file's stem).
    pub name: String,
    /// numpy's type string, e.g. `<f4`, `|u1`.
    pub descr: String,
    pub shape: Vec<usize>,
    /// Bytes of the array's data.
    pub data_bytes: u64,
    /// Bytes before the data (magic, version, header).
    pub data_offset: u64,
    /// Column-major (Fortran) data order.
    pub fortran_order: bool,
}

/// Opens the `.npy` file `path` (a regular file) as array `name` and checks its header.
pub fn open(path: &Path, name: &str) -> Result<(File, NpyEntry)> {
    let file = crate::fsutil::open_regular(path)?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let entry = check_header(name, &mut &file, size).map_err(|r| Error::data(path, r))?;
    Ok((file, entry))
}

/// Reads and checks the header of array `name` from `reader`, positioned at the start of an
/// `.npy` array of `size` bytes; leaves the reader at the start of the data.
pub fn check_header(
    name: &str,
    reader: &mut impl Read,
    size: u64,
) -> std::result::Result<NpyEntry, String> {
    let mut prefix = Vec::with_capacity(12);
    reader
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
    reader
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
        name: name.to_string(),
        descr,
        shape: header.shape,
        data_bytes,
        data_offset: header_end,
        fortran_order: header.layout.is_fortran(),
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

    fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

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

    #[test]
    fn headers_are_checked_against_the_size() {
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let bytes = npy(dict, &[0u8; 24]);
        let e = check_header("x", &mut bytes.as_slice(), bytes.len() as u64).unwrap();
        assert_eq!(
            (e.shape.clone(), e.data_bytes, e.data_offset),
            (vec![2, 3], 24, bytes.len() as u64 - 24)
        );
        assert!(e.fortran_order);
        let short = &bytes[..bytes.len() - 1];
        let err = check_header("x", &mut &short[..], short.len() as u64).unwrap_err();
        assert!(err.contains("holds 23 bytes of data"), "{err}");
        let err = check_header("x", &mut &b"not npy"[..], 7).unwrap_err();
        assert!(err.contains("not an .npy array"), "{err}");
    }
}
