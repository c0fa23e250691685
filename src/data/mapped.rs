//! Feature arrays read in place from a memory-mapped `.npy` file: a data set larger than memory
//! is evaluated and fine-tuned batch by batch, each batch decoded from the map, and only the
//! pages of the rows asked for are read. The map is file-backed and read-only, so it is not heap
//! memory and is not charged to the [`crate::memory`] budget (a copy made from it is).
//!
//! Accepted: C-order float32, float64 (little- or big-endian) and uint8, with at least two axes;
//! anything else is refused naming the array (a Fortran-order array must be re-saved C-order).
//! A file truncated by another process while it is mapped ends the process (SIGBUS): the price of
//! not loading it, as with any mapped file.
use super::npy;
use crate::error::{Error, Result};
use memmap2::Mmap;
use ndarray::{ArrayD, IxDyn};
use std::path::Path;
use std::sync::Arc;

/// How each element is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    F32 { big_endian: bool },
    F64 { big_endian: bool },
    U8,
}

impl Element {
    fn from_descr(descr: &str) -> Option<Element> {
        let big_endian = match descr.chars().next() {
            Some('>') => true,
            Some('=') => cfg!(target_endian = "big"),
            _ => false,
        };
        match descr.trim_start_matches(['<', '>', '|', '=']) {
            "f4" => Some(Element::F32 { big_endian }),
            "f8" => Some(Element::F64 { big_endian }),
            "u1" => Some(Element::U8),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Element::F32 { .. } => 4,
            Element::F64 { .. } => 8,
            Element::U8 => 1,
        }
    }

    /// The element stored in `b` (exactly `size()` bytes), widened exactly to f64.
    fn value(self, b: &[u8]) -> f64 {
        let mut four = [0u8; 4];
        let mut eight = [0u8; 8];
        match self {
            Element::F32 { big_endian } => {
                four.copy_from_slice(b);
                f64::from(if big_endian {
                    f32::from_be_bytes(four)
                } else {
                    f32::from_le_bytes(four)
                })
            }
            Element::F64 { big_endian } => {
                eight.copy_from_slice(b);
                if big_endian {
                    f64::from_be_bytes(eight)
                } else {
                    f64::from_le_bytes(eight)
                }
            }
            Element::U8 => f64::from(b[0]),
        }
    }
}

/// A feature array in a mapped `.npy` file; clones share the map.
#[derive(Clone)]
pub struct MappedArray {
    map: Arc<Mmap>,
    /// Where the data starts in the map.
    offset: usize,
    element: Element,
    shape: Vec<usize>,
}

impl std::fmt::Debug for MappedArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedArray({:?}, {:?})", self.element, self.shape)
    }
}

impl MappedArray {
    /// Maps array `name` stored in the `.npy` file `path`, after checking its header.
    pub fn open(path: &Path, name: &str) -> Result<MappedArray> {
        let bad = |reason: String| Error::data(path, format!("array '{name}': {reason}"));
        let (file, entry) = npy::open(path, name)?;
        let element = Element::from_descr(&entry.descr)
            .ok_or_else(|| bad("must be float32, float64 or uint8".into()))?;
        if entry.fortran_order && entry.shape.len() > 1 {
            return Err(bad(
                "is stored in Fortran (column-major) order; save it in C order \
                 (numpy.ascontiguousarray) to read it in place"
                    .into(),
            ));
        }
        // SAFETY: the map is read-only and never handed out as a reference that outlives it;
        // the one hazard, another process truncating the file, is stated in the module comment.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let end = entry.data_offset.saturating_add(entry.data_bytes);
        if (map.len() as u64) < end {
            return Err(bad(format!(
                "the file shrank to {} bytes while being opened",
                map.len()
            )));
        }
        Ok(MappedArray {
            map: Arc::new(map),
            offset: entry.data_offset as usize,
            element,
            shape: entry.shape,
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Elements per row.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// True when a copy keeps float64 values (float32 and uint8 copy to float32).
    pub fn is_f64(&self) -> bool {
        matches!(self.element, Element::F64 { .. })
    }

    /// The same data seen as `shape`, which must hold as many elements per row.
    pub fn with_shape(&self, shape: &[usize]) -> Option<MappedArray> {
        let same = shape.first() == self.shape.first()
            && shape.iter().skip(1).product::<usize>() == self.row_len();
        same.then(|| MappedArray {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// The stored bytes of row `row` (which must exist).
    fn row_bytes(&self, row: usize) -> &[u8] {
        let len = self.row_len() * self.element.size();
        let start = self.offset + row * len;
        &self.map[start..start + len]
    }

    /// Appends the values of `rows` to `out`, each converted by `conv`.
    fn rows_into<T>(
        &self,
        rows: impl Iterator<Item = usize>,
        out: &mut Vec<T>,
        conv: fn(f64) -> T,
    ) {
        let size = self.element.size();
        for row in rows {
            let bytes = self.row_bytes(row);
            out.extend(
                bytes
                    .chunks_exact(size)
                    .map(|b| conv(self.element.value(b))),
            );
        }
    }

    /// Rows `rows` (each in `0..rows()`) as an array of `conv`'s type.
    fn gather<T>(
        &self,
        rows: impl ExactSizeIterator<Item = usize>,
        conv: fn(f64) -> T,
    ) -> ArrayD<T> {
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        let mut values = Vec::with_capacity(rows.len() * self.row_len());
        self.rows_into(rows, &mut values, conv);
        ArrayD::from_shape_vec(IxDyn(&shape), values).expect("one row of values per row")
    }

    /// Rows `start..end` as f32 (float64 values rounded, as an in-memory float64 array's are).
    pub fn slice_f32(&self, start: usize, end: usize) -> ArrayD<f32> {
        self.gather(start..end, |v| v as f32)
    }

    /// Rows `start..end` as f64.
    pub fn slice_f64(&self, start: usize, end: usize) -> ArrayD<f64> {
        self.gather(start..end, |v| v)
    }

    /// The given rows as f32.
    pub fn gather_f32(&self, rows: &[usize]) -> ArrayD<f32> {
        self.gather(rows.iter().copied(), |v| v as f32)
    }

    /// The given rows as f64.
    pub fn gather_f64(&self, rows: &[usize]) -> ArrayD<f64> {
        self.gather(rows.iter().copied(), |v| v)
    }

    /// The first row holding NaN or infinity, read from the map row by row.
    pub fn first_non_finite_row(&self) -> Option<usize> {
        if self.element == Element::U8 {
            return None;
        }
        let size = self.element.size();
        (0..self.rows()).find(|&row| {
            self.row_bytes(row)
                .chunks_exact(size)
                .any(|b| !self.element.value(b).is_finite())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::WriteNpyExt;

    fn write<T: ndarray_npy::WritableElement>(dir: &Path, a: &ArrayD<T>) -> std::path::PathBuf {
        let p = dir.join("x.npy");
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        p
    }

    #[test]
    fn rows_are_read_in_place_in_each_type() {
        let dir = tempfile::tempdir().unwrap();
        let a = ArrayD::from_shape_fn(IxDyn(&[5, 2, 3]), |i| {
            (i[0] * 6 + i[1] * 3 + i[2]) as f64 / 8.0
        });
        let m = MappedArray::open(&write(dir.path(), &a), "x").unwrap();
        assert_eq!(m.shape(), &[5, 2, 3]);
        assert!(m.is_f64());
        assert_eq!(
            m.slice_f64(1, 3),
            a.slice(ndarray::s![1..3, .., ..]).to_owned().into_dyn()
        );
        assert_eq!(
            m.gather_f32(&[4, 0]),
            a.select(ndarray::Axis(0), &[4, 0]).mapv(|v| v as f32)
        );
        let flat = m.with_shape(&[5, 6]).unwrap();
        assert_eq!(flat.slice_f32(0, 1).shape(), &[1, 6]);
        assert!(m.with_shape(&[5, 5]).is_none());
        assert_eq!(m.first_non_finite_row(), None);

        let b = a.mapv(|v| v as f32);
        let mut b2 = b.clone();
        b2[[3, 1, 2]] = f32::NAN;
        let m = MappedArray::open(&write(dir.path(), &b2), "x").unwrap();
        assert_eq!(
            m.slice_f32(0, 3),
            b.slice(ndarray::s![0..3, .., ..]).to_owned().into_dyn()
        );
        assert_eq!(m.first_non_finite_row(), Some(3));

        let c = a.mapv(|v| (v * 8.0) as u8);
        let m = MappedArray::open(&write(dir.path(), &c), "x").unwrap();
        assert!(!m.is_f64());
        assert_eq!(
            m.gather_f64(&[2]),
            c.select(ndarray::Axis(0), &[2]).mapv(f64::from)
        );
    }

    #[test]
    fn other_types_and_fortran_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &ArrayD::<i32>::zeros(IxDyn(&[2, 2])));
        let e = MappedArray::open(&p, "x").unwrap_err().to_string();
        assert!(e.contains("must be float32, float64 or uint8"), "{e}");
        let f = ArrayD::<f32>::zeros(IxDyn(&[2, 3])).reversed_axes();
        let p = write(dir.path(), &f);
        let e = MappedArray::open(&p, "x").unwrap_err().to_string();
        assert!(e.contains("Fortran"), "{e}");
    }

    #[test]
    fn big_endian_values_decode() {
        let e = Element::from_descr(">f4").unwrap();
        assert_eq!(e.value(&1.5f32.to_be_bytes()), 1.5);
        let e = Element::from_descr("<f8").unwrap();
        assert_eq!(e.value(&(-2.25f64).to_le_bytes()), -2.25);
        assert_eq!(Element::from_descr("<i4"), None);
    }
}
