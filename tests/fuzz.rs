//! A seeded mutation fuzzer over every decoder: the ONNX importer (protobuf and external data)
//! on every fixture and bundled model, the `.npz` reader on every data file and a training
//! checkpoint, the mapped `.npy` reader (a data folder's `x.npy`) and the CSV reader. Mutations: bit flips, interesting bytes, truncations, splices, insertions and
//! deletions, protobuf varints and length fields re-encoded with boundary values, tensor dims,
//! types, input shapes and external-data entries blown up, `.npy` headers rewritten (shapes,
//! types, quoting, header lengths) and zip size fields falsified.
//!
//! Each case must be refused with an error, or accepted and then inspected, evaluated with tract
//! and pruned, each of which may refuse cleanly. A case fails on a panic, on a run longer than
//! [`CASE_SECONDS`], or on any single allocation larger than what the input can justify (a capped
//! global allocator aborts with the case number). `cargo test --release --test fuzz` runs
//! [`CI_CASES`] cases; `scripts/fuzz.sh MINUTES` runs for longer and reports the count.
//! `BEAN_ONNX_FUZZ_CASE=N` reruns case N alone.
mod common;
use bean_onnx::data::{DataKeys, Dataset, Features};
use bean_onnx::engine::{EngineKind, EngineOptions};
use bean_onnx::pb;
use bean_onnx::{eval, inspect, onnx, prune};
use common::*;
use prost::Message;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

const CI_CASES: u64 = 3000;
const CASE_SECONDS: u64 = 30;

// ---------------------------------------------------------------------------------------------
// An allocator that aborts, naming the case, on any allocation above the current cap.

static CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static CASE: AtomicU64 = AtomicU64::new(u64::MAX);
static CASE_STARTED: AtomicU64 = AtomicU64::new(0);
/// How far accepted inputs went: models imported, evaluated, pruned; data files and checkpoints
/// read.
static IMPORTED: AtomicU64 = AtomicU64::new(0);
static EVALUATED: AtomicU64 = AtomicU64::new(0);
static PRUNED: AtomicU64 = AtomicU64::new(0);
static DATA_READ: AtomicU64 = AtomicU64::new(0);

struct Capped;

fn write_stderr(parts: &[&[u8]]) {
    for p in parts {
        // SAFETY: writes a byte slice we own to fd 2; no allocation.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
}

fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn check_size(size: usize) {
    if size > CAP.load(Relaxed) {
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        write_stderr(&[
            b"\nfuzz: case ",
            decimal(CASE.load(Relaxed), &mut a),
            b" asked for one allocation of ",
            decimal(size as u64, &mut b),
            b" bytes, more than its input justifies (rerun with BEAN_ONNX_FUZZ_CASE)\n",
        ]);
        std::process::abort();
    }
}

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

// ---------------------------------------------------------------------------------------------
// The corpus.

/// An ONNX model: its bytes, its external data file (name, bytes), rows to evaluate it on.
struct OnnxSeed {
    name: String,
    bytes: Vec<u8>,
    data: Option<(String, Vec<u8>)>,
    x: Option<Features>,
}

/// A data file; `checkpoint` marks a training checkpoint (read with its JSON).
struct NpzSeed {
    name: String,
    bytes: Vec<u8>,
    checkpoint: Option<Vec<u8>>,
    format: DataFormat,
}

/// How a data seed is stored and read.
#[derive(Clone, Copy, PartialEq)]
enum DataFormat {
    Npz,
    /// `x.npy` in a folder (memory-mapped), beside an intact `y.npy`.
    NpyFolder,
    Csv,
}

fn rows_of(path: &Path, n: usize) -> Features {
    let d = Dataset::load(path, &DataKeys::default(), false).unwrap();
    d.select(&(0..d.rows().min(n)).collect::<Vec<_>>()).x
}

/// A model file and its `<file>.data`, if it has one.
fn onnx_seed(name: String, path: &Path, x: Features) -> OnnxSeed {
    let data_file = PathBuf::from(format!("{}.data", path.display()));
    let data = data_file.exists().then(|| {
        let file = data_file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        (file, std::fs::read(&data_file).unwrap())
    });
    OnnxSeed {
        name,
        bytes: std::fs::read(path).unwrap(),
        data,
        x: Some(x),
    }
}

fn onnx_corpus() -> Vec<OnnxSeed> {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    fixtures.sort();
    let mut v: Vec<OnnxSeed> = fixtures
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            onnx_seed(name, p, rows_of(&p.with_extension("io.npz"), 5))
        })
        .collect();
    for (dir, file) in [
        ("digits-sklearn", "model.onnx"),
        ("digits-sklearn", "model-nozipmap.onnx"),
        ("digits-torch", "model-legacy.onnx"),
        ("digits-torch", "model-dynamo.onnx"),
        ("fashion-lenet", "model.onnx"),
    ] {
        let x = rows_of(&model_dir(dir).join("test.npz"), 8);
        v.push(onnx_seed(
            format!("{dir}/{file}"),
            &model_dir(dir).join(file),
            x,
        ));
    }
    v
}

fn npz_corpus(dir: &Path) -> Vec<NpzSeed> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".io.npz"))
        .collect();
    paths.sort();
    paths.truncate(8);
    for d in ["digits-sklearn", "digits-torch", "fashion-lenet"] {
        paths.push(model_dir(d).join("test.npz"));
    }
    let mut v: Vec<NpzSeed> = paths
        .iter()
        .map(|p| NpzSeed {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(p).unwrap(),
            checkpoint: None,
            format: DataFormat::Npz,
        })
        .collect();
    v.extend(npy_and_csv_seeds());
    // A real checkpoint of a short fine-tune.
    let ck = bean_onnx::train::Checkpoint {
        epoch: 1,
        steps: 10,
        signature: Some("fuzz".into()),
        history: vec![],
        best_epoch: Some(1),
        best_val: Some(0.5),
        state: vec![
            ndarray::ArrayD::zeros(ndarray::IxDyn(&[64, 16])),
            ndarray::ArrayD::zeros(ndarray::IxDyn(&[16])),
        ],
        best_params: Some(vec![ndarray::ArrayD::zeros(ndarray::IxDyn(&[64, 16]))]),
    };
    let base = dir.join("seed.ckpt");
    bean_onnx::train::checkpoint::save(&base, &ck).unwrap();
    let (json, npz) = bean_onnx::train::checkpoint::paths(&base);
    v.push(NpzSeed {
        name: "checkpoint".into(),
        bytes: std::fs::read(npz).unwrap(),
        checkpoint: Some(std::fs::read(json).unwrap()),
        format: DataFormat::Npz,
    });
    v
}

/// The first rows of the digits test set as an `x.npy` (float32 and float64) and as a CSV.
fn npy_and_csv_seeds() -> Vec<NpzSeed> {
    use ndarray_npy::WriteNpyExt;
    let path = model_dir("digits-torch").join("test.npz");
    let d = Dataset::load(&path, &DataKeys::default(), true).unwrap();
    let x = d.x.slice_f32(0, 40);
    let y = d.y.unwrap();
    let npy = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = Vec::new();
        f(&mut b);
        b
    };
    let mut csv = String::from("y");
    for j in 0..x.shape()[1] {
        csv.push_str(&format!(",p{j}"));
    }
    for (r, row) in x.outer_iter().enumerate() {
        csv.push_str(&format!("\n{}", y[r]));
        for v in row {
            csv.push_str(&format!(",{v}"));
        }
    }
    csv.push('\n');
    vec![
        NpzSeed {
            name: "x.npy (float32)".into(),
            bytes: npy(&|b| x.write_npy(b).unwrap()),
            checkpoint: None,
            format: DataFormat::NpyFolder,
        },
        NpzSeed {
            name: "x.npy (float64)".into(),
            bytes: npy(&|b| x.mapv(f64::from).write_npy(b).unwrap()),
            checkpoint: None,
            format: DataFormat::NpyFolder,
        },
        NpzSeed {
            name: "data.csv".into(),
            bytes: csv.into_bytes(),
            checkpoint: None,
            format: DataFormat::Csv,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Byte-level mutations.

const INTERESTING_U64: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 40,
    (1 << 58) + 1,
    i64::MAX as u64,
    u64::MAX,
];

fn flip_bits(rng: &mut StdRng, b: &mut [u8]) {
    for _ in 0..rng.random_range(1..=8) {
        let i = rng.random_range(0..b.len());
        b[i] ^= 1 << rng.random_range(0..8);
    }
}

fn interesting_bytes(rng: &mut StdRng, b: &mut [u8]) {
    for _ in 0..rng.random_range(1..=4) {
        let i = rng.random_range(0..b.len());
        b[i] = [0u8, 1, 0x7f, 0x80, 0xff][rng.random_range(0..5)];
    }
}

fn truncate(rng: &mut StdRng, b: &mut Vec<u8>) {
    let n = rng.random_range(0..b.len());
    b.truncate(n);
}

fn splice(rng: &mut StdRng, b: &mut Vec<u8>, donor: &[u8]) {
    if donor.is_empty() {
        return;
    }
    let len = rng.random_range(1..=donor.len().min(256));
    let from = rng.random_range(0..=donor.len() - len);
    let at = rng.random_range(0..b.len());
    let end = (at + len).min(b.len());
    b.splice(at..end, donor[from..from + len].iter().copied());
}

fn insert_or_delete(rng: &mut StdRng, b: &mut Vec<u8>) {
    let at = rng.random_range(0..b.len());
    if rng.random_bool(0.5) {
        let n = rng.random_range(1..=16);
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        b.splice(at..at, bytes);
    } else {
        let end = (at + rng.random_range(1..=64)).min(b.len());
        b.drain(at..end);
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(i)?;
        i += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some((v, i));
        }
    }
    None
}

/// A varint of the protobuf wire format: a value, or the length of a length-delimited field.
struct Spot {
    start: usize,
    end: usize,
    value: u64,
}

/// Walks `b[start..end]` as a protobuf message (and every length-delimited field as a possible
/// sub-message), collecting varint values and length prefixes.
fn walk(
    b: &[u8],
    start: usize,
    end: usize,
    depth: usize,
    values: &mut Vec<Spot>,
    lengths: &mut Vec<Spot>,
) -> bool {
    let mut i = start;
    while i < end {
        let Some((tag, j)) = read_varint(b, i) else {
            return false;
        };
        i = j;
        match tag & 7 {
            0 => {
                let Some((v, j)) = read_varint(b, i) else {
                    return false;
                };
                values.push(Spot {
                    start: i,
                    end: j,
                    value: v,
                });
                i = j;
            }
            1 => i += 8,
            5 => i += 4,
            2 => {
                let Some((len, j)) = read_varint(b, i) else {
                    return false;
                };
                let Some(body_end) = j.checked_add(len as usize).filter(|&e| e <= end) else {
                    return false;
                };
                lengths.push(Spot {
                    start: i,
                    end: j,
                    value: len,
                });
                if depth < 12 {
                    let (mut v2, mut l2) = (Vec::new(), Vec::new());
                    if walk(b, j, body_end, depth + 1, &mut v2, &mut l2) {
                        values.extend(v2);
                        lengths.extend(l2);
                    }
                }
                i = body_end;
            }
            _ => return false,
        }
    }
    i == end
}

/// Re-encodes one varint value or length prefix with a boundary or nearby value.
fn mutate_varints(rng: &mut StdRng, b: &mut Vec<u8>, lengths_only: bool) {
    let (mut values, mut lengths) = (Vec::new(), Vec::new());
    walk(b, 0, b.len(), 0, &mut values, &mut lengths);
    let pool = if lengths_only || values.is_empty() {
        &lengths
    } else {
        &values
    };
    if pool.is_empty() {
        return flip_bits(rng, b);
    }
    let s = &pool[rng.random_range(0..pool.len())];
    let new = match rng.random_range(0..3) {
        0 => INTERESTING_U64[rng.random_range(0..INTERESTING_U64.len())],
        1 => s.value.wrapping_add(rng.random_range(1..=16)),
        _ => s.value.wrapping_sub(rng.random_range(1..=16)),
    };
    b.splice(s.start..s.end, varint(new));
}

// ---------------------------------------------------------------------------------------------
// Structured mutations.

fn huge_dim(rng: &mut StdRng) -> i64 {
    [
        0,
        -1,
        -7,
        1 << 31,
        1 << 40,
        (1 << 58) + 1,
        i64::MAX,
        i64::MIN,
    ][rng.random_range(0..8)]
}

/// Blows up something in the decoded ModelProto and encodes it again.
fn mutate_model(rng: &mut StdRng, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut m = pb::ModelProto::decode(bytes).ok()?;
    let g = m.graph.as_mut()?;
    match rng.random_range(0..7) {
        0 if !g.initializer.is_empty() => {
            let i = rng.random_range(0..g.initializer.len());
            let t = &mut g.initializer[i];
            if t.dims.is_empty() {
                t.dims.push(huge_dim(rng));
            } else {
                let d = rng.random_range(0..t.dims.len());
                t.dims[d] = huge_dim(rng);
            }
        }
        1 if !g.initializer.is_empty() => {
            let i = rng.random_range(0..g.initializer.len());
            g.initializer[i].data_type = Some(rng.random_range(0..30));
        }
        2 => {
            use pb::tensor_shape_proto::{dimension::Value, Dimension};
            for v in g
                .input
                .iter_mut()
                .chain(g.output.iter_mut())
                .chain(g.value_info.iter_mut())
            {
                if let Some(pb::type_proto::Value::TensorType(t)) =
                    v.r#type.as_mut().and_then(|t| t.value.as_mut())
                {
                    if let Some(s) = t.shape.as_mut() {
                        s.dim.push(Dimension {
                            value: Some(Value::DimValue(huge_dim(rng))),
                            denotation: None,
                        });
                        if rng.random_bool(0.5) {
                            break;
                        }
                    }
                }
            }
        }
        3 if !g.initializer.is_empty() => {
            let i = rng.random_range(0..g.initializer.len());
            let t = &mut g.initializer[i];
            let key = ["location", "offset", "length"][rng.random_range(0..3)];
            let value = [
                "../escape.data".to_string(),
                "/etc/hostname".to_string(),
                String::new(),
                "missing.data".to_string(),
                u64::MAX.to_string(),
                "-1".to_string(),
                (1u64 << 40).to_string(),
            ][rng.random_range(0..7)]
            .clone();
            t.data_location = Some(1);
            t.raw_data = None;
            match t
                .external_data
                .iter_mut()
                .find(|e| e.key.as_deref() == Some(key))
            {
                Some(e) => e.value = Some(value),
                None => t.external_data.push(pb::StringStringEntryProto {
                    key: Some(key.into()),
                    value: Some(value),
                }),
            }
        }
        4 if !g.node.is_empty() => {
            let i = rng.random_range(0..g.node.len());
            let n = &mut g.node[i];
            if let Some(a) = n.attribute.first_mut() {
                a.i = Some(huge_dim(rng));
                a.r#type = Some(rng.random_range(0..16));
            } else if !n.input.is_empty() {
                let j = rng.random_range(0..n.input.len());
                n.input[j] = ["", "nowhere", "x"][rng.random_range(0..3)].into();
            }
        }
        5 if !g.initializer.is_empty() => {
            let i = rng.random_range(0..g.initializer.len());
            let t = &mut g.initializer[i];
            t.float_data.truncate(t.float_data.len() / 2);
            t.int64_data.push(1);
            if let Some(r) = t.raw_data.as_mut() {
                r.truncate(r.len() / 2);
            }
        }
        _ => {
            // Swap two nodes: breaks the topological order.
            if g.node.len() > 1 {
                let a = rng.random_range(0..g.node.len());
                let b = rng.random_range(0..g.node.len());
                g.node.swap(a, b);
            }
        }
    }
    Some(m.encode_to_vec())
}

/// The `.npy` members of an npz.
fn members(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).ok()?;
            let mut b = Vec::new();
            f.read_to_end(&mut b).ok()?;
            Some((f.name().to_string(), b))
        })
        .collect()
}

fn rezip(rng: &mut StdRng, members: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, b) in members {
        let method = if rng.random_bool(0.5) {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(name.as_str(), opts).unwrap();
        zip.write_all(b).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// Rewrites one member's `.npy` header: its shape, type, quoting or declared length.
fn mutate_npy_header(rng: &mut StdRng, npy: &mut Vec<u8>) {
    if npy.len() < 10 {
        return;
    }
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let end = (10 + header_len).min(npy.len());
    let text = String::from_utf8_lossy(&npy[10..end]).into_owned();
    let big = [
        "1099511627776",
        "0",
        "18446744073709551617",
        "-3",
        "288230376151711745",
    ];
    let new_text = match rng.random_range(0..5) {
        0 => {
            let dims: Vec<&str> = (0..rng.random_range(1..=4))
                .map(|_| big[rng.random_range(0..big.len())])
                .collect();
            let shape = format!("({},)", dims.join(", "));
            let start = text.find("'shape': ").map(|s| s + 9).unwrap_or(0);
            let stop = text[start..]
                .find(')')
                .map(|s| start + s + 1)
                .unwrap_or(start);
            format!("{}{shape}{}", &text[..start], &text[stop..])
        }
        1 => text.replace(
            "<f4",
            ["<U8", "|O", "<c16", ">f4", "<f2", "<i16"][rng.random_range(0..6)],
        ),
        2 => text.replace('\'', "\"").replace(": ", " : "),
        3 => {
            // A declared header length beyond the member.
            let v = rng.random_range(0..=u16::MAX);
            npy[8..10].copy_from_slice(&v.to_le_bytes());
            return;
        }
        _ => {
            npy[6] = rng.random_range(0..5);
            return;
        }
    };
    let mut header = new_text.trim_end().as_bytes().to_vec();
    header.push(b'\n');
    let mut out = npy[..8].to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend(header);
    out.extend_from_slice(&npy[end..]);
    *npy = out;
}

/// Falsifies a size field of a zip local or central header.
fn mutate_zip_sizes(rng: &mut StdRng, b: &mut [u8]) {
    let spots: Vec<usize> = b
        .windows(4)
        .enumerate()
        .filter_map(|(i, w)| match w {
            b"PK\x03\x04" => Some(i + 18 + 4 * rng.random_range(0..2)),
            b"PK\x01\x02" => Some(i + 20 + 4 * rng.random_range(0..2)),
            _ => None,
        })
        .filter(|&i| i + 4 <= b.len())
        .collect();
    if spots.is_empty() {
        return flip_bits(rng, b);
    }
    let at = spots[rng.random_range(0..spots.len())];
    let v = [0u32, 1, 0x7fff_ffff, 0xffff_fffe, 0xffff_ffff][rng.random_range(0..5)];
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// One or two mutations of `bytes`: a byte-level one (bit flips, interesting bytes, a truncation,
/// a splice from `donor`) or, half the time, one that knows the format.
fn mutate(
    rng: &mut StdRng,
    bytes: &[u8],
    donor: &[u8],
    format: fn(&mut StdRng, &mut Vec<u8>),
) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..rng.random_range(1..=2) {
        if b.is_empty() {
            break;
        }
        match rng.random_range(0..8) {
            0 => flip_bits(rng, &mut b),
            1 => interesting_bytes(rng, &mut b),
            2 => truncate(rng, &mut b),
            3 => splice(rng, &mut b, donor),
            _ => format(rng, &mut b),
        }
    }
    b
}

fn npz_mutation(rng: &mut StdRng, b: &mut Vec<u8>) {
    if rng.random_bool(0.25) {
        return mutate_zip_sizes(rng, b);
    }
    if let Some(mut m) = members(b).filter(|m| !m.is_empty()) {
        let i = rng.random_range(0..m.len());
        if rng.random_bool(0.8) {
            mutate_npy_header(rng, &mut m[i].1);
        } else {
            let n = m[i].1.len();
            m[i].1.truncate(rng.random_range(0..=n));
        }
        *b = rezip(rng, &m);
    }
}

fn npy_mutation(rng: &mut StdRng, b: &mut Vec<u8>) {
    if rng.random_bool(0.8) {
        mutate_npy_header(rng, b);
    } else {
        truncate(rng, b);
    }
}

/// Replaces a CSV cell, or a separator or line break, with something a reader must refuse or
/// take apart correctly.
fn csv_mutation(rng: &mut StdRng, b: &mut Vec<u8>) {
    const CELLS: [&str; 12] = [
        "",
        "nan",
        "-inf",
        "1e999",
        "abc",
        "\"1,5\"",
        "\"",
        ",",
        "\n",
        "-1",
        "0.5",
        "18446744073709551616",
    ];
    let stops: Vec<usize> = (0..b.len())
        .filter(|&i| b[i] == b',' || b[i] == b'\n')
        .collect();
    if stops.len() < 2 {
        return insert_or_delete(rng, b);
    }
    let i = rng.random_range(0..stops.len() - 1);
    let (start, end) = (stops[i] + 1, stops[i + 1]);
    let cell = CELLS[rng.random_range(0..CELLS.len())].as_bytes();
    if rng.random_bool(0.2) {
        b.splice(start - 1..start, cell.iter().copied());
    } else {
        b.splice(start..end, cell.iter().copied());
    }
}

fn onnx_mutation(rng: &mut StdRng, b: &mut Vec<u8>) {
    match rng.random_range(0..5) {
        0 => insert_or_delete(rng, b),
        1 => mutate_varints(rng, b, false),
        2 => mutate_varints(rng, b, true),
        _ => {
            if let Some(m) = mutate_model(rng, b) {
                *b = m;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targets: each returns normally whether the input is accepted or refused.

fn run_onnx(seed: &OnnxSeed, bytes: &[u8], data: Option<&[u8]>, dir: &Path) {
    let path = dir.join("model.onnx");
    std::fs::write(&path, bytes).unwrap();
    if let (Some((name, _)), Some(d)) = (&seed.data, data) {
        std::fs::write(dir.join(name), d).unwrap();
    }
    let Ok(model) = onnx::load(&path) else {
        return;
    };
    IMPORTED.fetch_add(1, Relaxed);
    let _ = inspect::report(&model);
    // Written inline, an accepted model reads back.
    onnx::from_bytes(&onnx::to_bytes(&model), None).expect("an accepted model reads back");
    let Some(x) = &seed.x else { return };
    let data = Dataset {
        path: path.clone(),
        x: x.clone(),
        y: None,
        y_values: None,
    };
    // Evaluation may need more than the file itself (activations): a fixed cap, not per byte.
    CAP.store(1 << 30, Relaxed);
    let opts = EngineOptions::default();
    if let Ok(target) = eval::find_target(&model) {
        if eval::tensors_on(&model, &[&target.tensor], &data, EngineKind::Tract, &opts).is_ok() {
            EVALUATED.fetch_add(1, Relaxed);
        }
    }
    let cfg = prune::PruneConfig {
        ratio: 0.5,
        calib_rows: 64,
        ..Default::default()
    };
    if prune::prune(&model, &data, &cfg).is_ok() {
        PRUNED.fetch_add(1, Relaxed);
    }
}

fn run_npz(seed: &NpzSeed, bytes: &[u8], dir: &Path, model: &bean_onnx::ir::Model) {
    match &seed.checkpoint {
        Some(json) => {
            let base = dir.join("c.ckpt");
            let (j, n) = bean_onnx::train::checkpoint::paths(&base);
            std::fs::write(j, json).unwrap();
            std::fs::write(n, bytes).unwrap();
            if let Ok(Some(_)) = bean_onnx::train::checkpoint::load(&base) {
                DATA_READ.fetch_add(1, Relaxed);
            }
        }
        None => {
            let path = write_data(seed, bytes, dir);
            if let Ok(d) = Dataset::load(&path, &DataKeys::default(), false) {
                DATA_READ.fetch_add(1, Relaxed);
                CAP.store(1 << 30, Relaxed);
                let _ = eval::tensors_on(
                    model,
                    &["logits"],
                    &d,
                    EngineKind::Tract,
                    &EngineOptions::default(),
                );
            }
        }
    }
}

/// Writes a data case where its reader finds it; returns the path to give `--data`.
fn write_data(seed: &NpzSeed, bytes: &[u8], dir: &Path) -> PathBuf {
    let path = match seed.format {
        DataFormat::Npz => dir.join("data.npz"),
        DataFormat::Csv => dir.join("data.csv"),
        DataFormat::NpyFolder => {
            use ndarray_npy::WriteNpyExt;
            let folder = dir.join("data");
            std::fs::create_dir_all(&folder).unwrap();
            let y = ndarray::Array1::from_shape_fn(40, |i| (i % 10) as i64);
            y.write_npy(std::fs::File::create(folder.join("y.npy")).unwrap())
                .unwrap();
            std::fs::write(folder.join("x.npy"), bytes).unwrap();
            return folder;
        }
    };
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// The loop.

struct Outcome {
    cases: u64,
    failures: Vec<String>,
    seconds: f64,
}

fn fuzz(cases: Option<u64>, seconds: Option<u64>, only: Option<u64>) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let onnx_seeds = onnx_corpus();
    let npz_seeds = npz_corpus(dir.path());
    let digits = onnx::load(&model_dir("digits-torch").join("model-legacy.onnx")).unwrap();
    // Quiet panics: they are collected and reported at the end (a single case shows its own).
    if only.is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_secs(1));
        let case = CASE.load(Relaxed);
        let started = CASE_STARTED.load(Relaxed);
        if case != u64::MAX && started > 0 && unix_now().saturating_sub(started) > CASE_SECONDS {
            let mut a = [0u8; 20];
            write_stderr(&[
                b"\nfuzz: case ",
                decimal(case, &mut a),
                b" ran longer than its limit (a hang)\n",
            ]);
            std::process::abort();
        }
    });
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut n = 0u64;
    let ids: Box<dyn Iterator<Item = u64>> = match only {
        Some(i) => Box::new(std::iter::once(i)),
        None => Box::new(0..),
    };
    for case in ids {
        if cases.is_some_and(|c| n >= c)
            || seconds.is_some_and(|s| started.elapsed().as_secs() >= s)
        {
            break;
        }
        let case_dir = dir.path().join("case");
        let _ = std::fs::remove_dir_all(&case_dir);
        std::fs::create_dir_all(&case_dir).unwrap();
        let mut rng = StdRng::seed_from_u64(0xbea0_0000 + case);
        let on_onnx = rng.random_bool(0.6);
        let result = if on_onnx {
            let seed = &onnx_seeds[rng.random_range(0..onnx_seeds.len())];
            let donor = &onnx_seeds[rng.random_range(0..onnx_seeds.len())].bytes;
            let bytes = mutate(&mut rng, &seed.bytes, donor, onnx_mutation);
            let data = seed.data.as_ref().map(|(_, d)| {
                if rng.random_bool(0.3) {
                    let mut d = d.clone();
                    match rng.random_range(0..2) {
                        0 => truncate(&mut rng, &mut d),
                        _ => flip_bits(&mut rng, &mut d),
                    }
                    d
                } else {
                    d.clone()
                }
            });
            let input = bytes.len() + data.as_ref().map_or(0, Vec::len);
            let what = format!("case {case}: mutated {}", seed.name);
            arm(case, input);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_onnx(seed, &bytes, data.as_deref(), &case_dir)
            }));
            (r, what)
        } else {
            let seed = &npz_seeds[rng.random_range(0..npz_seeds.len())];
            let donor = &npz_seeds[rng.random_range(0..npz_seeds.len())].bytes;
            let format = match seed.format {
                DataFormat::Npz => npz_mutation,
                DataFormat::NpyFolder => npy_mutation,
                DataFormat::Csv => csv_mutation,
            };
            let bytes = mutate(&mut rng, &seed.bytes, donor, format);
            let what = format!("case {case}: mutated {}", seed.name);
            // Deflate can expand up to ~1032×: that much may be declared and allocated.
            arm(case, bytes.len().saturating_mul(1100));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_npz(seed, &bytes, &case_dir, &digits)
            }));
            (r, what)
        };
        disarm();
        if let (Err(panic), what) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{what}: panicked: {msg}"));
        }
        n += 1;
    }
    let _ = std::panic::take_hook();
    Outcome {
        cases: n,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Starts a case: its number for messages, its start for the watchdog, and the allocation cap
/// for decoding an input of `input_bytes` (64 MiB at least, for the decoders' own tables).
fn arm(case: u64, input_bytes: usize) {
    CASE.store(case, Relaxed);
    CASE_STARTED.store(unix_now(), Relaxed);
    CAP.store(input_bytes.saturating_mul(16).max(64 << 20), Relaxed);
}

fn disarm() {
    CAP.store(usize::MAX, Relaxed);
    CASE.store(u64::MAX, Relaxed);
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mutated_models_and_data_files_are_refused_or_handled() {
    let only = env_u64("BEAN_ONNX_FUZZ_CASE");
    let seconds = env_u64("BEAN_ONNX_FUZZ_SECONDS");
    let cases = match (only, seconds) {
        (Some(_), _) => Some(1),
        (None, Some(_)) => None,
        (None, None) => Some(CI_CASES),
    };
    let o = fuzz(cases, seconds, only);
    eprintln!(
        "fuzz: {} cases in {:.0} s, {} failures; accepted: {} models imported ({} evaluated, {} \
         pruned), {} data files or checkpoints read",
        o.cases,
        o.seconds,
        o.failures.len(),
        IMPORTED.load(Relaxed),
        EVALUATED.load(Relaxed),
        PRUNED.load(Relaxed),
        DATA_READ.load(Relaxed)
    );
    assert!(o.failures.is_empty(), "{}", o.failures.join("\n"));
    if only.is_none() {
        // The mutations must reach past the decoders, or the deeper code went untested.
        for (what, count) in [
            ("imported", &IMPORTED),
            ("evaluated", &EVALUATED),
            ("pruned", &PRUNED),
            ("read as data", &DATA_READ),
        ] {
            assert!(count.load(Relaxed) > 0, "no mutated input was {what}");
        }
    }
    if let Some(n) = cases {
        assert_eq!(o.cases, n, "not every case ran");
    }
}
