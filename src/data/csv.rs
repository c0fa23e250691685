//! A data set stored as a CSV file: a header row naming the columns, then one row per sample.
//! The `--y-key` column (default `y`), when present, holds the labels: integers are class labels,
//! any other number makes the column float regression targets (`[N, 1]`). Every other column is
//! a feature. Values are read as float64 (the precision a decimal column carries); a float32
//! model input sees them rounded to float32, so float32 data written with round-trip precision
//! (numpy `%.9g`, Rust `{}`) gives the very values it was written from.
//!
//! Refused, naming the file, the column and the line: an empty or non-numeric cell, NaN or
//! infinity, a negative label, a row with more or fewer cells than the header; and a file with
//! no header, no data rows or no feature column. The values are held in memory, each growth of
//! their buffer checked against the memory budget first.
use super::{DataKeys, Dataset, Features, MAX_ROWS};
use crate::error::{Error, Result};
use crate::memory;
use ndarray::Array2;
use std::io::Read;
use std::path::Path;

/// The columns of a CSV header: where the labels are, and the feature columns' names.
struct Columns {
    names: Vec<String>,
    label: Option<usize>,
}

/// The values read, row by row.
#[derive(Default)]
struct Values {
    features: Vec<f64>,
    labels: Vec<i64>,
    targets: Vec<f64>,
    /// First label cell that is not an integer: (column value, line).
    non_integer: Option<(String, u64)>,
}

/// Reads the CSV file `path`.
pub fn load(path: &Path, keys: &DataKeys, require_labels: bool) -> Result<Dataset> {
    let err = |reason: String| Error::data(path, reason);
    let file = crate::fsutil::open_regular(path)?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(::csv::Trim::All)
        .from_reader(file.take(size));
    let header = reader
        .byte_headers()
        .map_err(|e| err(csv_error(&e)))?
        .clone();
    let columns = columns(&header, keys).map_err(err)?;
    let values = read_rows(&mut reader, &columns, path).map_err(|e| match e {
        Failure::Data(r) => err(r),
        Failure::Other(e) => e,
    })?;
    dataset(path, keys, &columns, values, require_labels).map_err(err)
}

/// What stopped the reading: bad data, or the memory budget.
enum Failure {
    Data(String),
    Other(Error),
}

impl From<String> for Failure {
    fn from(r: String) -> Self {
        Failure::Data(r)
    }
}

/// The header's columns; the label column is the one named `keys.y`.
fn columns(header: &::csv::ByteRecord, keys: &DataKeys) -> std::result::Result<Columns, String> {
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err("is empty: a CSV file needs a header row naming its columns".into());
    }
    // A byte-order mark (as spreadsheet programs write) is not part of the first name.
    let names: Vec<String> = header
        .iter()
        .map(|n| {
            String::from_utf8_lossy(n)
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    let labels: Vec<usize> = (0..names.len()).filter(|&i| names[i] == keys.y).collect();
    if labels.len() > 1 {
        return Err(format!(
            "the header names the label column '{}' {} times",
            keys.y,
            labels.len()
        ));
    }
    if names.len() == labels.len() {
        return Err(format!(
            "has no feature column: its only column is the label column '{}'",
            keys.y
        ));
    }
    Ok(Columns {
        names,
        label: labels.first().copied(),
    })
}

/// Every data row's cells, parsed and checked.
fn read_rows<R: Read>(
    reader: &mut ::csv::Reader<R>,
    columns: &Columns,
    path: &Path,
) -> std::result::Result<Values, Failure> {
    let mut v = Values::default();
    let mut record = ::csv::ByteRecord::new();
    let mut rows = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(Failure::Data(csv_error(&e))),
        }
        rows += 1;
        if rows > MAX_ROWS {
            return Err(format!("has more than the {MAX_ROWS} rows accepted").into());
        }
        let line = record.position().map_or(rows as u64 + 1, |p| p.line());
        grow(&mut v, columns, path).map_err(Failure::Other)?;
        for (i, cell) in record.iter().enumerate() {
            let at = || format!("column '{}', line {line}", columns.names[i]);
            if Some(i) == columns.label {
                label_cell(&mut v, cell, line).map_err(|r| format!("{}: {r}", at()))?;
            } else {
                v.features
                    .push(number(cell).map_err(|r| format!("{}: {r}", at()))?);
            }
        }
    }
    if rows == 0 {
        return Err("has a header row but no data rows".to_string().into());
    }
    Ok(v)
}

/// Makes room for one more row, charging any growth of the buffers to the memory budget first.
fn grow(v: &mut Values, columns: &Columns, path: &Path) -> Result<()> {
    let per_row = columns.names.len();
    if v.features.len() + per_row <= v.features.capacity() {
        return Ok(());
    }
    let rows_now = v.features.len() / per_row.max(1);
    let rows_next = (rows_now * 2).max(1024);
    // Features and both label vectors, 8 bytes a value, at the new size (the old buffers are
    // freed once copied).
    let bytes = (rows_next as u64)
        .saturating_mul(per_row as u64 + 2)
        .saturating_mul(8);
    memory::reserve(&format!("reading {}", path.display()), bytes)?;
    let extra = |len: usize, want: usize| want.saturating_sub(len);
    v.features
        .reserve_exact(extra(v.features.len(), rows_next * per_row));
    if columns.label.is_some() {
        v.labels.reserve_exact(extra(v.labels.len(), rows_next));
        v.targets.reserve_exact(extra(v.targets.len(), rows_next));
    }
    Ok(())
}

/// A label cell: an integer class label, or (noted) a float target.
fn label_cell(v: &mut Values, cell: &[u8], line: u64) -> std::result::Result<(), String> {
    let text = std::str::from_utf8(cell).unwrap_or("");
    if let Ok(label) = text.parse::<i64>() {
        if label < 0 {
            return Err(format!("label {label} is negative"));
        }
        v.labels.push(label);
        v.targets.push(label as f64);
        return Ok(());
    }
    let value = number(cell)?;
    if v.non_integer.is_none() {
        v.non_integer = Some((text.to_string(), line));
    }
    v.targets.push(value);
    Ok(())
}

/// A finite number, or why the cell is not one.
fn number(cell: &[u8]) -> std::result::Result<f64, String> {
    if cell.is_empty() {
        return Err("empty cell".into());
    }
    let text =
        std::str::from_utf8(cell).map_err(|_| "not a number (not UTF-8 text)".to_string())?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "{} is not finite (NaN and infinity are refused)",
            quoted(text)
        )),
        Err(_) => Err(format!("{} is not a number", quoted(text))),
    }
}

/// `text` in quotes, cut to 40 characters for messages.
fn quoted(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    format!("'{s}'")
}

/// The data set from the values read.
fn dataset(
    path: &Path,
    keys: &DataKeys,
    columns: &Columns,
    v: Values,
    require_labels: bool,
) -> std::result::Result<Dataset, String> {
    let n_features = columns.names.len() - usize::from(columns.label.is_some());
    let rows = v.features.len() / n_features;
    let (y, y_values) = match (columns.label, v.non_integer) {
        (None, _) if require_labels => {
            return Err(format!(
                "no label column '{}' (columns: {})",
                keys.y,
                column_list(&columns.names)
            ))
        }
        (None, _) => (None, None),
        (Some(_), None) => (Some(v.labels), None),
        (Some(_), Some((text, line))) if require_labels => {
            return Err(format!(
                "column '{}', line {line}: labels must be integers, got {}",
                keys.y,
                quoted(&text)
            ))
        }
        (Some(_), Some(_)) => {
            let t = v.targets.iter().map(|&t| t as f32).collect();
            let t = Array2::from_shape_vec((rows, 1), t).map_err(|e| e.to_string())?;
            (None, Some(t))
        }
    };
    let x = Array2::from_shape_vec((rows, n_features), v.features).map_err(|e| e.to_string())?;
    Ok(Dataset {
        path: path.to_path_buf(),
        x: Features::F64(x.into_dyn().into_shared()),
        y,
        y_values,
    })
}

/// The first column names, for messages.
fn column_list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    match names.len() {
        n if n > 10 => format!("{}, and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// A CSV reader's error in words, with the line where it applies.
fn csv_error(e: &::csv::Error) -> String {
    match e.kind() {
        ::csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let line = pos
                .as_ref()
                .map_or(String::new(), |p| format!("line {}: ", p.line()));
            format!("{line}a row of {len} cells where the header has {expected_len} columns")
        }
        _ => format!("not a readable CSV file ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, require_labels: bool) -> Result<Dataset> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, text).unwrap();
        load(&p, &DataKeys::default(), require_labels)
    }

    fn error(text: &str) -> String {
        load_text(text, true).unwrap_err().to_string()
    }

    #[test]
    fn labels_and_features_are_read() {
        let ds = load_text("a,y,b\n0.5,1,2\n-1e-3,0,3\n", true).unwrap();
        assert_eq!(ds.y, Some(vec![1, 0]));
        assert_eq!(
            ds.x.slice_f64(0, 2).into_raw_vec_and_offset().0,
            vec![0.5, 2.0, -1e-3, 3.0]
        );
        let ds = load_text("a,y\n1,0.5\n2,3\n", false).unwrap();
        assert_eq!(ds.y, None);
        let t = ds.y_values.unwrap();
        assert_eq!(t.shape(), &[2, 1]);
        assert_eq!(t.into_raw_vec_and_offset().0, vec![0.5, 3.0]);
        assert!(load_text("a,b\n1,2\n", false).unwrap().y.is_none());
        let bom = load_text("\u{feff}y,a\n3,1\n", true).unwrap();
        assert_eq!(bom.y, Some(vec![3]));
    }

    #[test]
    fn float32_values_written_shortest_read_back_exactly() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f32::from_bits(state as u32);
            if !x.is_finite() {
                continue;
            }
            let back = number(format!("{x}").as_bytes()).unwrap() as f32;
            assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        }
    }

    #[test]
    fn bad_cells_name_the_column_and_line() {
        let e = error("a,b,y\n1,2,0\n1,,0\n");
        assert!(e.contains("column 'b', line 3: empty cell"), "{e}");
        let e = error("a,b,y\n1,2,0\n1,abc,0\n");
        assert!(
            e.contains("column 'b', line 3: 'abc' is not a number"),
            "{e}"
        );
        let e = error("a,b,y\n1,nan,0\n");
        assert!(e.contains("column 'b', line 2: 'nan' is not finite"), "{e}");
        let e = error("a,b,y\n1,2,0\n1,2\n");
        assert!(
            e.contains("line 3: a row of 2 cells where the header has 3 columns"),
            "{e}"
        );
        let e = error("a,y\n1,0.5\n");
        assert!(
            e.contains("column 'y', line 2: labels must be integers, got '0.5'"),
            "{e}"
        );
        let e = error("a,y\n1,-2\n");
        assert!(
            e.contains("column 'y', line 2: label -2 is negative"),
            "{e}"
        );
    }

    #[test]
    fn files_without_data_are_refused() {
        assert!(error("").contains("needs a header row"));
        assert!(error("a,y\n").contains("no data rows"));
        assert!(error("y\n1\n").contains("no feature column"));
        assert!(error("a,b\n1,2\n").contains("no label column 'y' (columns: a, b)"));
        assert!(error("y,a,y\n1,2,3\n").contains("label column 'y' 2 times"));
    }
}
