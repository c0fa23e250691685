//! Progress bars on stderr (hidden when stderr is not a terminal, and with `--json`): the
//! command line's side of `bean_onnx::progress::Progress`.
use bean_onnx::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

pub struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        Bars {
            enabled,
            bar: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        if let Ok(mut bar) = self.bar.lock() {
            f(&mut bar);
        }
    }
}

impl Progress for Bars {
    fn begin(&self, label: &str, len: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        self.with(|b| *b = Some(bar));
    }

    fn advance(&self, status: &str) {
        self.with(|b| {
            if let Some(bar) = b {
                bar.set_message(status.to_string());
                bar.inc(1);
            }
        });
    }

    fn end(&self) {
        self.with(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        });
    }
}
