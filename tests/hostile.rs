//! Hostile and broken inputs, flags and output paths, one table: each case is a command line
//! over files crafted for it, the exit code it must give, and a phrase its message must hold.
//! Every case must also end without a panic or a hang (60 s), write no output file, and leave
//! no new file in its folder (temporary files, a `.data` beside a refused output, checkpoints).
mod common;
use assert_cmd::Command;
use bean_onnx::pb;
use common::crafted::*;
use common::*;
use prost::Message;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One hostile case.
struct Case {
    name: &'static str,
    args: Vec<OsString>,
    /// Exit code it must give: 1 (refused), 2 (usage error) or 0 (accepted with a note).
    code: i32,
    /// A phrase its stderr must hold (the file, tensor, node, row or flag it is about).
    needle: String,
    /// A shell prefix run before the command (resource limits).
    shell: Option<&'static str>,
    /// Environment variables set for the command.
    env: Vec<(&'static str, OsString)>,
}

fn case(name: &'static str, code: i32, needle: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Case {
    Case {
        name,
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        code,
        needle: needle.to_string(),
        shell: None,
        env: vec![],
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `c` in `dir` and checks its exit code, message, and that it wrote nothing.
fn check(c: &Case, dir: &Path) {
    let before = listing(dir);
    let bin = assert_cmd::cargo::cargo_bin("bean-onnx");
    let mut cmd = match c.shell {
        None => {
            let mut cmd = Command::new(&bin);
            cmd.args(&c.args);
            cmd
        }
        Some(prefix) => {
            let mut cmd = Command::new("bash");
            cmd.arg("-c")
                .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                .arg(&bin)
                .args(&c.args);
            cmd
        }
    };
    cmd.current_dir(dir).timeout(Duration::from_secs(60));
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(c.code),
        "{}: expected exit {}, stderr: {stderr}",
        c.name,
        c.code
    );
    assert!(
        stderr.contains(&c.needle),
        "{}: expected '{}' in: {stderr}",
        c.name,
        c.needle
    );
    assert!(!stderr.contains("panicked"), "{}: {stderr}", c.name);
    assert_eq!(
        listing(dir),
        before,
        "{}: files appeared or vanished",
        c.name
    );
}

/// The CNN fixture with its Flatten's axis far out of range.
fn flatten_axis_out_of_range(dir: &Path) -> PathBuf {
    let mut m = pb::ModelProto::decode(&*std::fs::read(fixture("cnn_head.onnx")).unwrap()).unwrap();
    let flatten = nodes_of(&mut m, "Flatten").remove(0);
    flatten.attribute = vec![pb::AttributeProto {
        name: Some("axis".into()),
        r#type: Some(pb::attribute_proto::AttributeType::Int as i32),
        i: Some(i64::MAX),
        ..Default::default()
    }];
    write_model(dir, "flatten_axis.onnx", &m)
}

/// The digits model whose input claims a per-row size that overflows any integer.
fn huge_input_shape(dir: &Path) -> PathBuf {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let mut m = legacy();
    let g = m.graph.as_mut().unwrap();
    let Some(pb::type_proto::Value::TensorType(t)) =
        g.input[0].r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!("tensor input")
    };
    let dim = |v: Value| Dimension {
        value: Some(v),
        denotation: None,
    };
    t.shape.as_mut().unwrap().dim = vec![
        dim(Value::DimParam("batch".into())),
        dim(Value::DimValue((1 << 58) + 1)),
        dim(Value::DimValue(64)),
    ];
    write_model(dir, "huge_input.onnx", &m)
}

/// An int8, int16 or float16 initializer (code) whose int32_data holds 3 of its 10 values.
fn short_typed_data(dir: &Path, code: i32) -> PathBuf {
    let mut m = legacy();
    m.graph.as_mut().unwrap().initializer.push(pb::TensorProto {
        name: Some(format!("short{code}")),
        data_type: Some(code),
        dims: vec![10],
        int32_data: vec![1, 2, 3],
        ..Default::default()
    });
    write_model(dir, &format!("short_typed_{code}.onnx"), &m)
}

/// The external-data fixture with its data file replaced by a FIFO.
fn fifo_external_data(dir: &Path) -> PathBuf {
    let sub = dir.join("fifo_ext");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(fixture("external_data.onnx"), sub.join("m.onnx")).unwrap();
    mkfifo(&sub.join("external_data.onnx.data"));
    sub.join("m.onnx")
}

fn mkfifo(p: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(status.success());
}

/// An `.npy` (version 1) with the header dict `dict` and `data` after it.
fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.as_bytes().to_vec();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    v.extend(header);
    v.extend_from_slice(data);
    v
}

/// An `.npz` of `entries` (name, .npy bytes), stored or deflated.
fn npz(path: &Path, entries: &[(&str, Vec<u8>)], deflate: bool) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    for (name, bytes) in entries {
        zip.start_file(format!("{name}.npy"), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A stored one-entry `.npz` whose zip headers claim `claimed` bytes for the entry.
fn npz_claiming(path: &Path, npy_bytes: &[u8], claimed: u32) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("x.npy", opts).unwrap();
    zip.write_all(npy_bytes).unwrap();
    let mut bytes = zip.finish().unwrap().into_inner();
    let claim = [claimed.to_le_bytes(), claimed.to_le_bytes()].concat();
    // Local header: sizes at 18..26; central directory entry: sizes at 20..28.
    bytes[18..26].copy_from_slice(&claim);
    let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[central + 20..central + 28].copy_from_slice(&claim);
    std::fs::write(path, bytes).unwrap();
}

/// A v2 `.npy` prefix that declares a 4 GiB header.
fn npy_huge_header() -> Vec<u8> {
    let mut v = b"\x93NUMPY\x02\x00".to_vec();
    v.extend_from_slice(&u32::MAX.to_le_bytes());
    v.extend_from_slice(b"{'descr': '<f4'");
    v
}

/// x (64 float32 features) and y (labels) with `rows` rows, as a real npz.
fn labelled_npz(path: &Path, rows: usize, x_value: f32) {
    let x = ndarray::Array2::<f32>::from_elem((rows, 64), x_value);
    let y = ndarray::Array1::<i64>::from_iter((0..rows).map(|i| (i % 10) as i64));
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(path).unwrap());
    w.add_array("x", &x).unwrap();
    w.add_array("y", &y).unwrap();
    w.finish().unwrap();
}

/// The files and the cases over them.
fn cases(d: &Path) -> Vec<Case> {
    let legacy = d.join("m.onnx");
    std::fs::copy(model_dir("digits-torch").join("model-legacy.onnx"), &legacy).unwrap();
    let dynamo = d.join("dynamo.onnx");
    std::fs::copy(model_dir("digits-torch").join("model-dynamo.onnx"), &dynamo).unwrap();
    std::fs::copy(
        model_dir("digits-torch").join("model-dynamo.onnx.data"),
        d.join("model-dynamo.onnx.data"),
    )
    .unwrap();
    let train = d.join("train.npz");
    std::fs::copy(model_dir("digits-torch").join("train.npz"), &train).unwrap();
    let out = d.join("out.onnx");
    let ok_x = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }",
        &[0u8; 512],
    );

    let mut v = Vec::new();
    // Models whose dense chain does not reach the class output: refused by the commands that
    // would train or cut the wrong layers; inspect says where the chain ends.
    for (name, file) in [
        ("a float16 middle weight", float16_weight(d)),
        ("a middle weight computed at run time", runtime_weight(d)),
    ] {
        v.push(case(
            name,
            1,
            "the dense chain stops at node",
            &[
                &"finetune",
                &file,
                &"--data",
                &train,
                &"-o",
                &out,
                &"--epochs",
                &"1",
            ],
        ));
        v.push(case(
            name,
            1,
            "the dense chain stops at node",
            &[
                &"prune", &file, &"--data", &train, &"-o", &out, &"--ratio", &"0.3",
            ],
        ));
        v.push(case(
            name,
            1,
            "the dense chain stops at node",
            &[
                &"compress",
                &file,
                &"--data",
                &train,
                &"-o",
                &out,
                &"--epochs",
                &"1",
            ],
        ));
    }

    // Crafted models.
    let huge = huge_input_shape(d);
    v.push(case(
        "an input shape whose row size overflows (eval)",
        1,
        "input 'input'",
        &[&"eval", &huge, &"--data", &train],
    ));
    v.push(case(
        "an input shape whose row size overflows (prune)",
        1,
        "input 'input'",
        &[
            &"prune", &huge, &"--data", &train, &"-o", &out, &"--ratio", &"0.3",
        ],
    ));
    // int8, int16, float16, bool
    for code in [3, 5, 10, 9] {
        let f = short_typed_data(d, code);
        let mut c = case(
            "typed-field data shorter than its shape",
            1,
            "",
            &[&"inspect", &f],
        );
        c.needle =
            format!("tensor 'short{code}': int32_data holds 3 values but the shape needs 10");
        v.push(c);
    }
    let flatten = flatten_axis_out_of_range(d);
    v.push(case(
        "a Flatten axis out of range (tract panics on it)",
        1,
        "tract failed while loading the model",
        &[
            &"prune",
            &flatten,
            &"--data",
            &fixture("cnn_head.io.npz"),
            &"-o",
            &out,
            &"--ratio",
            &"0.3",
            &"--engine",
            &"tract",
        ],
    ));
    let fifo_model = d.join("fifo.onnx");
    mkfifo(&fifo_model);
    v.push(case(
        "MODEL is a FIFO",
        1,
        "not a regular file (a FIFO)",
        &[&"inspect", &fifo_model],
    ));
    let fifo_ext = fifo_external_data(d);
    v.push(case(
        "external data that is a FIFO",
        1,
        "not a regular file (a FIFO)",
        &[&"inspect", &fifo_ext],
    ));

    // Crafted data files.
    let fifo_data = d.join("fifo.npz");
    mkfifo(&fifo_data);
    v.push(case(
        "--data is a FIFO",
        1,
        "not a regular file (a FIFO)",
        &[&"eval", &legacy, &"--data", &fifo_data],
    ));
    for (name, dict) in [
        (
            "a header with a space before the colon",
            "{'descr' : '<f4', 'fortran_order': False, 'shape': (1099511627776, 64), }",
        ),
        (
            "a header in double quotes",
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1099511627776, 64)}",
        ),
    ] {
        let p = d.join(format!("{}.npz", name.replace(' ', "_")));
        npz(&p, &[("x", npy(dict, &[0u8; 256]))], false);
        v.push(case(
            name,
            1,
            "declares shape [1099511627776, 64]",
            &[&"eval", &legacy, &"--data", &p],
        ));
    }
    let p = d.join("zero_overflow.npz");
    let dict =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 0, 1099511627776, 1099511627776), }";
    npz(&p, &[("x", npy(dict, &[]))], false);
    v.push(case(
        "a zero-sized shape whose other dims overflow",
        1,
        "impossible shape",
        &[&"eval", &legacy, &"--data", &p],
    ));
    let p = d.join("zero_width.npz");
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 0), }";
    npz(&p, &[("x", npy(dict, &[]))], true);
    v.push(case(
        "2^40 rows of zero width (finetune)",
        1,
        "rows without any feature value",
        &[&"finetune", &legacy, &"--data", &p, &"-o", &out],
    ));
    v.push(case(
        "2^40 rows of zero width (prune)",
        1,
        "rows without any feature value",
        &[
            &"prune", &legacy, &"--data", &p, &"-o", &out, &"--ratio", &"0.3",
        ],
    ));
    let p = d.join("header_len.npz");
    npz(&p, &[("x", npy_huge_header())], false);
    v.push(case(
        "a 4 GiB .npy header",
        1,
        "-byte header",
        &[&"eval", &legacy, &"--data", &p],
    ));
    let p = d.join("claims_2gib.npz");
    npz_claiming(&p, &ok_x, 1 << 31);
    v.push(case(
        "an entry claiming 2 GiB in a small archive",
        1,
        "claims 2147483648 stored bytes in a",
        &[&"eval", &legacy, &"--data", &p],
    ));
    let p = d.join("u64.npz");
    let dict_y = "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }";
    npz(
        &p,
        &[("x", ok_x.clone()), ("y", npy(dict_y, &[0xff; 16]))],
        false,
    );
    v.push(case(
        "a uint64 label above 2^63",
        1,
        "label 18446744073709551615 in row 0",
        &[&"eval", &legacy, &"--data", &p],
    ));
    // The gate compares accuracies: foreign labels would make both models wrong everywhere and
    // the drop zero.
    let p = d.join("foreign_labels.npz");
    let dict_y = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
    let y: Vec<u8> = [3i64, 10].iter().flat_map(|v| v.to_le_bytes()).collect();
    npz(&p, &[("x", ok_x.clone()), ("y", npy(dict_y, &y))], false);
    v.push(case(
        "validate's test labels outside the classes",
        1,
        "label 10 in row 1 is not one of the model's 10 classes",
        &[&"validate", &legacy, &legacy, &"--data", &p],
    ));
    let p = d.join("overflow.npz");
    labelled_npz(&p, 64, 3e38);
    v.push(case(
        "calibration data whose activations overflow",
        1,
        "overflow to NaN or infinity",
        &[
            &"prune",
            &legacy,
            &"--data",
            &p,
            &"-o",
            &out,
            &"--ratio",
            &"0.3",
            &"--engine",
            &"tract",
        ],
    ));

    // Flags out of range: usage errors naming the flag.
    v.push(case(
        "--threads 1000000",
        2,
        "'--threads <THREADS>': expected 0 (the engine decides) to",
        &[
            &"eval",
            &legacy,
            &"--data",
            &train,
            &"--threads",
            &"1000000",
        ],
    ));
    v.push(case(
        "--batch-size 0",
        2,
        "'--batch-size <BATCH_SIZE>': expected a whole number from 1 to",
        &[
            &"finetune",
            &legacy,
            &"--data",
            &train,
            &"-o",
            &out,
            &"--batch-size",
            &"0",
        ],
    ));
    v.push(case(
        "--calib-rows 1",
        2,
        "'--calib-rows <CALIB_ROWS>': expected a whole number from 2 to",
        &[
            &"prune",
            &legacy,
            &"--data",
            &train,
            &"-o",
            &out,
            &"--ratio",
            &"0.3",
            &"--calib-rows",
            &"1",
        ],
    ));
    v.push(case(
        "compress --search-budget -5",
        2,
        "'--search-budget <SEARCH_BUDGET>': expected a number of at least 0, got -5",
        &[
            &"compress",
            &legacy,
            &"--data",
            &train,
            &"-o",
            &out,
            &"--search-budget",
            &"-5",
        ],
    ));

    // Output paths that would cost data.
    v.push(case(
        "--plot over the model",
        1,
        "(--plot): it is an input file",
        &[&"assemblies", &legacy, &"--plot", &legacy],
    ));
    v.push(case(
        "--plot over the data",
        1,
        "(--plot): it is an input file",
        &[&"assemblies", &legacy, &"--data", &train, &"--plot", &train],
    ));
    v.push(case(
        "--plot over the external data",
        1,
        "(--plot): it is an input file",
        &[
            &"assemblies",
            &dynamo,
            &"--plot",
            &d.join("model-dynamo.onnx.data"),
        ],
    ));
    let folder = d.join("a_folder");
    std::fs::create_dir_all(&folder).unwrap();
    v.push(case(
        "-o naming a folder",
        1,
        "(-o): it is a folder",
        &[
            &"finetune",
            &legacy,
            &"--data",
            &train,
            &"-o",
            &folder,
            &"--epochs",
            &"1",
        ],
    ));
    v.push(case(
        "--metrics equal to -o",
        1,
        "(--metrics): -o writes the same file",
        &[
            &"finetune",
            &legacy,
            &"--data",
            &train,
            &"-o",
            &out,
            &"--metrics",
            &out,
        ],
    ));
    v.push(case(
        "--report equal to -o",
        1,
        "(--report): -o writes the same file",
        &[
            &"compress",
            &legacy,
            &"--data",
            &train,
            &"-o",
            &out,
            &"--report",
            &out,
        ],
    ));
    v.push(case(
        "-o over the data",
        1,
        "(-o): it is an input file",
        &[
            &"prune", &legacy, &"--data", &train, &"-o", &train, &"--ratio", &"0.3",
        ],
    ));
    let constant_external = constant_node_external_weight(d);
    v.push(case(
        "-o over a Constant node's external data",
        1,
        "(-o): it is an input file",
        &[
            &"prune",
            &constant_external,
            &"--data",
            &train,
            &"-o",
            &d.join("constant.bin"),
            &"--ratio",
            &"0.3",
        ],
    ));
    let link = d.join("link.onnx");
    std::os::unix::fs::symlink(&legacy, &link).unwrap();
    v.push(case(
        "-o a link to the model",
        1,
        "(-o): it is an input file",
        &[
            &"prune", &legacy, &"--data", &train, &"-o", &link, &"--ratio", &"0.3",
        ],
    ));

    // A broken ONNX Runtime set-up is named, not hidden behind the tract fallback.
    let mut c = case(
        "--engine auto with a broken ORT_DYLIB_PATH",
        0,
        "ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so does not name a file",
        &[&"eval", &legacy, &"--data", &train, &"--engine", &"auto"],
    );
    c.env
        .push(("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so".into()));
    v.push(c);

    v.extend(csv_cases(d, &legacy));
    v.extend(npy_folder_cases(d, &legacy));

    // More memory than the process may take: refused before allocating, with the figure.
    let p = d.join("half_gib.npz");
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (131072, 1024), }";
    npz(&p, &[("x", npy(dict, &vec![0u8; 512 << 20]))], true);
    let mut c = case(
        "512 MiB of features under ulimit -d 256 MiB",
        1,
        "needs 512.0 MiB but only",
        &[&"eval", &legacy, &"--data", &p, &"--engine", &"tract"],
    );
    c.shell = Some("ulimit -d 262144");
    v.push(c);
    v
}

/// CSV files: each bad cell named by its column and line.
fn csv_cases(d: &Path, legacy: &Path) -> Vec<Case> {
    let table: [(&'static str, &str, &str); 7] = [
        (
            "a CSV cell that is not a number",
            "p0,p1,y\n1,2,0\n1,abc,0\n",
            "column 'p1', line 3: 'abc' is not a number",
        ),
        (
            "an empty CSV cell",
            "p0,p1,y\n,2,0\n",
            "column 'p0', line 2: empty cell",
        ),
        (
            "NaN in a CSV cell",
            "p0,p1,y\n1,NaN,0\n",
            "column 'p1', line 2: 'NaN' is not finite",
        ),
        (
            "a CSV row shorter than its header",
            "p0,p1,y\n1,2,0\n1,2\n",
            "line 3: a row of 2 cells where the header has 3 columns",
        ),
        (
            "a CSV with only a header",
            "p0,p1,y\n",
            "has a header row but no data rows",
        ),
        ("an empty CSV file", "", "a CSV file needs a header row"),
        (
            "a CSV label that is not an integer",
            "p0,p1,y\n1,2,1.5\n",
            "column 'y', line 2: labels must be integers, got '1.5'",
        ),
    ];
    table
        .iter()
        .enumerate()
        .map(|(i, (name, text, needle))| {
            let p = d.join(format!("bad{i}.csv"));
            std::fs::write(&p, text).unwrap();
            case(
                name,
                1,
                needle,
                &[&"eval", &legacy, &"--data", &p, &"--engine", &"tract"],
            )
        })
        .collect()
}

/// A folder case: its name, `x.npy` (None: missing), `y.npy`, the phrase its message must hold.
type FolderCase = (&'static str, Option<Vec<u8>>, Vec<u8>, &'static str);

/// Folders of `.npy` files: each bad header, type or file named.
fn npy_folder_cases(d: &Path, legacy: &Path) -> Vec<Case> {
    let f4 = |shape: &str, order: &str| {
        format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': {shape}, }}")
    };
    let labels = npy(
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
        &[0u8; 16],
    );
    let mut nan = vec![0u8; 512];
    nan[256..260].copy_from_slice(&f32::NAN.to_le_bytes());
    let table: Vec<FolderCase> = vec![
        (
            "a folder without x.npy",
            None,
            labels.clone(),
            "no feature file 'x.npy' in the folder (.npy files present: y.npy)",
        ),
        (
            "x.npy in Fortran order",
            Some(npy(&f4("(2, 64)", "True"), &[0u8; 512])),
            labels.clone(),
            "array 'x': is stored in Fortran (column-major) order",
        ),
        (
            "x.npy declaring 2^40 rows",
            Some(npy(&f4("(1099511627776, 64)", "False"), &[0u8; 512])),
            labels.clone(),
            "array 'x' declares shape [1099511627776, 64]",
        ),
        (
            "x.npy of int32",
            Some(npy(
                "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 64), }",
                &[0u8; 512],
            )),
            labels.clone(),
            "array 'x': must be float32, float64 or uint8",
        ),
        (
            "x.npy that is not an .npy array",
            Some(b"\x93NUMPZ random bytes".to_vec()),
            labels.clone(),
            "array 'x' is not an .npy array",
        ),
        (
            "NaN in a mapped x.npy",
            Some(npy(&f4("(2, 64)", "False"), &nan)),
            labels.clone(),
            "'x' holds NaN or infinity in row 1",
        ),
        (
            "y.npy of floats where labels are needed",
            Some(npy(&f4("(2, 64)", "False"), &[0u8; 512])),
            npy(&f4("(2,)", "False"), &[0u8; 8]),
            "labels must be integers",
        ),
        (
            "y.npy with fewer rows than x.npy",
            Some(npy(&f4("(2, 64)", "False"), &[0u8; 512])),
            npy(
                "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                &[0u8; 8],
            ),
            "'x' has 2 rows but 'y' has 1 labels",
        ),
    ];
    let mut v: Vec<Case> = table
        .into_iter()
        .enumerate()
        .map(|(i, (name, x, y, needle))| {
            let folder = d.join(format!("npy{i}"));
            std::fs::create_dir_all(&folder).unwrap();
            if let Some(x) = x {
                std::fs::write(folder.join("x.npy"), x).unwrap();
            }
            std::fs::write(folder.join("y.npy"), y).unwrap();
            case(
                name,
                1,
                needle,
                &[&"eval", &legacy, &"--data", &folder, &"--engine", &"tract"],
            )
        })
        .collect();
    let fifo = d.join("npy_fifo");
    std::fs::create_dir_all(&fifo).unwrap();
    mkfifo(&fifo.join("x.npy"));
    v.push(case(
        "x.npy that is a FIFO",
        1,
        "not a regular file (a FIFO)",
        &[&"eval", &legacy, &"--data", &fifo],
    ));
    let ok = d.join("npy_ok");
    std::fs::create_dir_all(&ok).unwrap();
    let f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 64), }";
    std::fs::write(ok.join("x.npy"), npy(f4, &[0u8; 512])).unwrap();
    std::fs::write(ok.join("y.npy"), &labels).unwrap();
    v.push(case(
        "-o over a data folder's x.npy",
        1,
        "(-o): it is an input file",
        &[
            &"finetune",
            &legacy,
            &"--data",
            &ok,
            &"-o",
            &ok.join("x.npy"),
        ],
    ));
    v.push(case(
        "--x-key naming a file outside the folder",
        1,
        "array name '../x' cannot name a file in the folder",
        &[&"eval", &legacy, &"--data", &fifo, &"--x-key", &"../x"],
    ));
    v
}

#[test]
fn hostile_inputs_flags_and_outputs_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases(dir.path());
    for c in &cases {
        check(c, dir.path());
    }
    // inspect of the cut chain says where it ends.
    let out = bean()
        .arg("inspect")
        .arg(dir.path().join("runtime_weight.onnx"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("chain end: node '") && text.contains("the dense chain stops at node '"),
        "{text}"
    );
    assert!(text.contains("computed at run time"), "{text}");
    assert_eq!(
        cases.len(),
        HOSTILE_CASES,
        "update HOSTILE_CASES and the README's count"
    );
}

/// The number of cases above, quoted in the README's reliability section.
const HOSTILE_CASES: usize = 59;

#[test]
fn a_held_lock_refuses_a_second_writer_without_touching_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    std::fs::write(&out, b"the first writer's model").unwrap();
    let lock = bean_onnx::fsutil::OutputLock::acquire(&out).unwrap();
    let o = bean()
        .arg("prune")
        .arg(model_dir("digits-torch").join("model-legacy.onnx"))
        .arg("--data")
        .arg(model_dir("digits-torch").join("train.npz"))
        .arg("-o")
        .arg(&out)
        .args(["--ratio", "0.3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is being written by another process"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the first writer's model");
    drop(lock);
}
