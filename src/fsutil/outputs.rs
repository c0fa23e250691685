//! The one check every command makes before any work: each file it will write can be written
//! without losing anything.
//!
//! An output must be a new or regular file in an existing folder, must not be any input (the
//! model, its external data files, data sets — also through a link or a hard link), and no two
//! outputs of one run may be the same file (a report written over the model would be lost).
use super::{file_kind, folder};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A file a command writes, with the name the user gave it by (a flag such as `-o`, or a
/// description such as `checkpoint`), used in messages.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    pub label: &'a str,
    pub path: &'a Path,
}

/// Where a path points: the canonical path of an existing file, or the canonical folder joined
/// with the file name of a file yet to be made. None when the folder does not exist.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    Some(folder(path).canonicalize().ok()?.join(name))
}

/// True when `a` and `b` name the same file: the same resolved path, or (both existing) the
/// same device and inode, which also catches hard links.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn refuse(out: &Output, why: String) -> Error {
    Error::Invalid(format!(
        "cannot write {} ({}): {why}",
        out.path.display(),
        out.label
    ))
}

/// Checks `outputs` against `inputs` and against each other (see the module comment).
pub fn check_outputs(inputs: &[PathBuf], outputs: &[Output]) -> Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        if out.path.file_name().is_none() || out.path.as_os_str().is_empty() {
            return Err(refuse(out, "not a file path".into()));
        }
        let dir = folder(out.path);
        if !dir.is_dir() {
            return Err(refuse(
                out,
                format!("folder {} does not exist", dir.display()),
            ));
        }
        if let Ok(meta) = std::fs::metadata(out.path) {
            if !meta.is_file() {
                return Err(refuse(out, format!("it is {}", file_kind(&meta))));
            }
        }
        if let Some(input) = inputs.iter().find(|p| same_file(p, out.path)) {
            return Err(refuse(
                out,
                format!("it is an input file ({})", input.display()),
            ));
        }
        if let Some(other) = outputs[..i].iter().find(|o| same_file(o.path, out.path)) {
            return Err(refuse(out, format!("{} writes the same file", other.label)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<'a>(label: &'a str, path: &'a Path) -> Output<'a> {
        Output { label, path }
    }

    #[test]
    fn inputs_links_folders_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("model.onnx");
        std::fs::write(&input, b"m").unwrap();
        let inputs = vec![input.clone()];
        let err = |o: &[Output]| check_outputs(&inputs, o).unwrap_err().to_string();

        assert!(err(&[out("--plot", &input)]).contains("input file"));
        let via_dots = d.join(".").join("model.onnx");
        assert!(err(&[out("-o", &via_dots)]).contains("input file"));
        #[cfg(unix)]
        {
            let hard = d.join("hard.onnx");
            std::fs::hard_link(&input, &hard).unwrap();
            assert!(err(&[out("-o", &hard)]).contains("input file"));
            let soft = d.join("soft.onnx");
            std::os::unix::fs::symlink(&input, &soft).unwrap();
            assert!(err(&[out("-o", &soft)]).contains("input file"));
        }
        assert!(err(&[out("-o", d)]).contains("a folder"));
        assert!(err(&[out("-o", &d.join("missing/x.onnx"))]).contains("does not exist"));
        let new = d.join("new.onnx");
        let msg = err(&[out("-o", &new), out("--report", &new)]);
        assert!(
            msg.contains("--report") && msg.contains("-o writes the same file"),
            "{msg}"
        );
        check_outputs(
            &inputs,
            &[out("-o", &new), out("--report", &d.join("r.json"))],
        )
        .unwrap();
    }
}
