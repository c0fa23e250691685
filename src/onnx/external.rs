//! External tensor data: safe resolution of `location` inside the model folder, bounded reads.
use crate::error::{Error, Result};
use crate::tensor::ExternalRef;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// Parses the `external_data` key/value entries of a tensor.
pub fn parse_ref(name: &str, entries: &[crate::pb::StringStringEntryProto]) -> Result<ExternalRef> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in entries {
        let value = e.value.clone().unwrap_or_default();
        let number = |what: &str| {
            value.trim().parse::<u64>().map_err(|_| {
                Error::external(
                    name,
                    format!("{what} '{value}' is not a non-negative integer"),
                )
            })
        };
        match e.key.as_deref().unwrap_or("") {
            "location" => location = Some(value.clone()),
            "offset" => offset = number("offset")?,
            "length" => length = Some(number("length")?),
            _ => {} // checksum and future keys: kept in the proto, not needed to read
        }
    }
    let location = location.ok_or_else(|| Error::external(name, "no 'location' entry"))?;
    Ok(ExternalRef {
        location,
        offset,
        length,
    })
}

/// Resolves `location` against `base_dir`, refusing anything that could leave the folder:
/// absolute paths, `..`, and links that point outside.
pub fn resolve(name: &str, base_dir: &Path, location: &str) -> Result<PathBuf> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Err(Error::external(name, "empty location"));
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::external(
                    name,
                    format!("location '{location}' leaves the model's folder ('..')"),
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::external(
                    name,
                    format!("location '{location}' is an absolute path; it must be relative to the model's folder"),
                ))
            }
        }
    }
    let path = base_dir.join(rel);
    let canonical_base = base_dir
        .canonicalize()
        .map_err(|e| Error::io(base_dir, e))?;
    let canonical = path
        .canonicalize()
        .map_err(|e| Error::external(name, format!("cannot open '{}': {e}", path.display())))?;
    if !canonical.starts_with(&canonical_base) {
        return Err(Error::external(
            name,
            format!("location '{location}' links outside the model's folder"),
        ));
    }
    Ok(canonical)
}

/// Reads exactly `expected_bytes` for a tensor, after checking offset and length against the file.
pub fn read(name: &str, base_dir: &Path, r: &ExternalRef, expected_bytes: u64) -> Result<Vec<u8>> {
    let path = resolve(name, base_dir, &r.location)?;
    let mut file =
        crate::fsutil::open_regular(&path).map_err(|e| Error::external(name, e.to_string()))?;
    let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    if let Some(len) = r.length {
        if len != expected_bytes {
            return Err(Error::external(
                name,
                format!("length {len} does not match the {expected_bytes} bytes its shape needs"),
            ));
        }
    }
    let end = r.offset.checked_add(expected_bytes);
    if end.is_none_or(|end| end > size) {
        return Err(Error::external(
            name,
            format!(
                "offset {} + {expected_bytes} bytes runs past the end of '{}' ({size} bytes)",
                r.offset, r.location
            ),
        ));
    }
    file.seek(SeekFrom::Start(r.offset))
        .map_err(|e| Error::io(&path, e))?;
    crate::memory::reserve(&format!("tensor '{name}'"), expected_bytes)?;
    let mut buf = vec![0u8; expected_bytes as usize];
    file.read_exact(&mut buf).map_err(|e| Error::io(&path, e))?;
    Ok(buf)
}
