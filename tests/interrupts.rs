//! Signals and concurrent writers: SIGINT and SIGTERM during `finetune`, `prune` and `compress`
//! exit 130 / 143 with no output and no temporary file left (finetune keeps its checkpoint on
//! purpose), `compress` writes its report with the reason, `finetune --resume` then gives the
//! same bytes as a run that was never interrupted, and two runs writing the same output never mix
//! their files.
mod common;
use bean_onnx::data::{DataKeys, Dataset};
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("bean-onnx")
}

/// A running bean-onnx whose stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    seen: Vec<String>,
}

fn start(args: &[&std::ffi::OsStr]) -> Running {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Progress bars redraw with carriage returns: keep every piece.
            for part in line.split('\r') {
                let _ = tx.send(part.to_string());
            }
        }
    });
    Running {
        child,
        lines,
        reader,
        seen: Vec::new(),
    }
}

impl Running {
    /// Waits (at most 120 s) until `ready` holds, reading stderr meanwhile.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready(&self.seen) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.seen
            );
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(20)) {
                self.seen.push(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.seen.extend(self.lines.try_iter());
                panic!("exited ({status}) before {what}: {:?}", self.seen);
            }
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child process.
        let r = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(r, 0);
    }

    /// Exit code and the whole stderr.
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        // The reader thread ends at EOF, having sent every line.
        self.reader.join().unwrap();
        self.seen.extend(self.lines.try_iter());
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(|a| a.into()).collect()
}

fn refs(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|a| a.as_os_str()).collect()
}

/// Names in `dir` other than `allowed`.
fn extra_files(dir: &Path, allowed: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !allowed.contains(&n.as_str()))
        .collect()
}

/// `bean-onnx COMMAND MODEL --data DATA -o OUT EXTRA…`
fn command(
    name: &str,
    model: &Path,
    data: &Path,
    out: &Path,
    extra: &[&str],
) -> Vec<std::ffi::OsString> {
    let mut v = os(&[name]);
    v.push(model.into());
    v.extend(os(&["--data"]));
    v.push(data.into());
    v.extend(os(&["-o"]));
    v.push(out.into());
    v.extend(os(extra));
    v
}

fn digits_finetune(out: &Path, epochs: &str) -> Vec<std::ffi::OsString> {
    let extra = [
        "--epochs",
        epochs,
        "--engine",
        "tract",
        "--threads",
        "1",
        "--seed",
        "3",
    ];
    command(
        "finetune",
        &model_dir("digits-torch").join("model-legacy.onnx"),
        &model_dir("digits-torch").join("train.npz"),
        out,
        &extra,
    )
}

#[test]
fn finetune_interrupted_by_sigint_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = d.join("reference.onnx");
    let (code, err) = start(&refs(&digits_finetune(&reference, "40"))).finish();
    assert_eq!(code, 0, "{err}");

    let out = d.join("out.onnx");
    let args = digits_finetune(&out, "40");
    let mut run = start(&refs(&args));
    run.wait_until("the third epoch", |s| {
        s.iter().any(|l| l.starts_with("epoch 3/40"))
    });
    run.signal(libc::SIGINT);
    let (code, err) = run.finish();
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(err.contains("rerun with --resume"), "{err}");
    assert!(!out.exists(), "OUT was written");
    for kept in ["out.onnx.ckpt.json", "out.onnx.ckpt.npz"] {
        assert!(d.join(kept).exists(), "{kept} was not kept: {err}");
    }
    let left = extra_files(
        d,
        &["reference.onnx", "out.onnx.ckpt.json", "out.onnx.ckpt.npz"],
    );
    assert!(left.is_empty(), "left behind: {left:?}");

    let mut resumed = args.clone();
    resumed.push("--resume".into());
    let (code, err) = start(&refs(&resumed)).finish();
    assert_eq!(code, 0, "{err}");
    // It continued from the checkpoint rather than starting again.
    assert!(!err.contains("no checkpoint at"), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("epoch 1/40")), "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&reference).unwrap(),
        "the resumed run differs from the uninterrupted one"
    );
    let left = extra_files(d, &["reference.onnx", "out.onnx"]);
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn fashion_rows(d: &Path, rows: usize) -> PathBuf {
    let all = Dataset::load(
        &model_dir("fashion-lenet").join("test.npz"),
        &DataKeys::default(),
        true,
    )
    .unwrap();
    let part = all.select(&(0..rows).collect::<Vec<_>>());
    let p = d.join("fashion.npz");
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&p).unwrap());
    if let bean_onnx::data::Features::F32(x) = &part.x {
        w.add_array("x", x).unwrap();
    }
    w.add_array("y", &ndarray::Array1::from(part.y.clone().unwrap()))
        .unwrap();
    w.finish().unwrap();
    p
}

#[test]
fn finetune_stopped_by_sigterm_before_its_first_epoch_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = fashion_rows(d, 10_000);
    let out = d.join("out.onnx");
    let lenet = model_dir("fashion-lenet").join("model.onnx");
    let args = command(
        "finetune",
        &lenet,
        &data,
        &out,
        &["--batch-size", "1", "--engine", "tract"],
    );
    let mut run = start(&refs(&args));
    // Progress bars are not drawn on a pipe: the engine line comes just before training starts.
    run.wait_until("the start", |s| s.iter().any(|l| l.starts_with("engine:")));
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    let (code, err) = run.finish();
    assert_eq!(code, 143, "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(
        err.contains("no epoch had finished, so there is no checkpoint"),
        "{err}"
    );
    let left = extra_files(d, &["fashion.npz"]);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn prune_search_stops_on_either_signal_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = fashion_rows(d, 3000);
    let lenet = model_dir("fashion-lenet").join("model.onnx");
    for (signal, code, name) in [
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        let out = d.join("out.onnx");
        let mut args = command("prune", &lenet, &data, &out, &["--max-accuracy-drop", "1"]);
        args.extend(os(&["--heal-epochs", "3", "--val"]));
        args.push(data.clone().into());
        let mut run = start(&refs(&args));
        run.wait_until("the search", |s| {
            s.iter().any(|l| l.starts_with("searching"))
        });
        run.signal(signal);
        let (got, err) = run.finish();
        assert_eq!(got, code, "{err}");
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        let left = extra_files(d, &["fashion.npz"]);
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn compress_interrupted_writes_its_report_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = fashion_rows(d, 3000);
    for (signal, code, name, stage) in [
        (libc::SIGINT, 130, "SIGINT", "engine:"),
        (libc::SIGTERM, 143, "SIGTERM", "searching"),
        (libc::SIGINT, 130, "SIGINT", "validating"),
    ] {
        let out = d.join("out.onnx");
        let report = d.join("report.json");
        let lenet = model_dir("fashion-lenet").join("model.onnx");
        let mut args = command(
            "compress",
            &lenet,
            &data,
            &out,
            &["--epochs", "2", "--report"],
        );
        args.push(report.clone().into());
        // The whole 10k test split for the gate: validation lasts long enough to be interrupted.
        args.extend(os(&["--test"]));
        args.push(model_dir("fashion-lenet").join("test.npz").into());
        let mut run = start(&refs(&args));
        run.wait_until(stage, |s| s.iter().any(|l| l.starts_with(stage)));
        if stage == "engine:" {
            // Into the fine-tune.
            std::thread::sleep(Duration::from_millis(300));
        }
        run.signal(signal);
        let (got, err) = run.finish();
        assert_eq!(got, code, "{stage}: {err}");
        assert!(!out.exists());
        let r = json(&report);
        assert_eq!(r["report"]["passed"], false, "{r}");
        assert_eq!(
            r["report"]["reason"],
            format!("interrupted by {name}"),
            "{r}"
        );
        std::fs::remove_file(&report).unwrap();
        let left = extra_files(d, &["fashion.npz"]);
        assert!(left.is_empty(), "{stage}: left behind: {left:?}");
    }
}

/// The initializer values of a model file, by name.
fn weights(p: &Path) -> Vec<(String, Vec<f32>)> {
    let m = bean_onnx::onnx::load(p).unwrap();
    m.graph
        .initializers
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.as_f32()?.to_vec())))
        .collect()
}

#[test]
fn two_writers_of_one_output_never_mix_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dynamo = model_dir("digits-torch").join("model-dynamo.onnx");
    let train = model_dir("digits-torch").join("train.npz");
    let args = |out: &Path, seed: &str| {
        let extra = [
            "--epochs",
            "15",
            "--engine",
            "tract",
            "--threads",
            "1",
            "--seed",
            seed,
        ];
        command("finetune", &dynamo, &train, out, &extra)
    };
    // What each run writes on its own.
    let alone: Vec<_> = ["1", "2"]
        .iter()
        .map(|seed| {
            let p = d.join(format!("alone{seed}.onnx"));
            let (code, err) = start(&refs(&args(&p, seed))).finish();
            assert_eq!(code, 0, "{err}");
            weights(&p)
        })
        .collect();
    assert_ne!(alone[0], alone[1]);
    let mut refused = 0;
    for trial in 0..3 {
        let out = d.join(format!("shared{trial}.onnx"));
        let a = start(&refs(&args(&out, "1")));
        let b = start(&refs(&args(&out, "2")));
        let results = [a.finish(), b.finish()];
        for (code, err) in &results {
            assert!(
                *code == 0 || (*code == 1 && err.contains("is being written by another process")),
                "{err}"
            );
        }
        assert!(results.iter().any(|(c, _)| *c == 0));
        refused += results.iter().filter(|(c, _)| *c == 1).count();
        let got = weights(&out);
        assert!(
            got == alone[0] || got == alone[1],
            "trial {trial}: the output mixes the two runs' tensors"
        );
        assert!(!d.join(format!("shared{trial}.onnx.lock")).exists());
    }
    // Runs of about a second started together overlap: the lock, not luck, kept them apart.
    assert!(
        refused > 0,
        "the two writers never overlapped: the lock was not exercised"
    );
}
