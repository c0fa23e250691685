//! Figures drawn with plotters, to PNG or SVG: one file per figure (`assemblies`, `search`,
//! `training`), and here what they share: the image format from the file's extension, the
//! embedded font, the colour scale and its colour bar, and writing an image together with its
//! sidecar (the numbers it draws, as JSON).
//!
//! Contract: a figure is a plain data struct that implements [`Figure`]; it serializes to exactly
//! the numbers it draws, has a fixed documented size in pixels, and draws whatever is finite
//! (NaN and infinities are left out, never a panic). Text is rendered by ab_glyph with DejaVu
//! Sans compiled into the binary: no system font library is linked or read.
pub mod assemblies;
pub mod search;
pub mod training;

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::{register_font, FontStyle};
use std::path::{Path, PathBuf};

/// DejaVu Sans (Bitstream Vera licence: assets/fonts/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family every text style names; registered once, before anything is drawn.
pub const FAMILY: &str = "sans-serif";

/// What a drawing step returns.
pub type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure: the numbers it draws (its serialization) and how it draws them.
pub trait Figure: serde::Serialize {
    /// Names the figure in its sidecar ("assemblies", "search", "training").
    const KIND: &'static str;
    /// Width and height in pixels (SVG user units), fixed by the data's shape.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Image formats, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    /// `.png` or `.svg` (any case); anything else is refused naming `flag` and the file.
    pub fn from_path(path: &Path, flag: &str) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(Error::Invalid(format!(
                "{flag} {}: the picture's file name must end in .png or .svg",
                path.display()
            ))),
        }
    }
}

/// Where the numbers drawn in `image` are written: the image's name with `.json` added.
pub fn sidecar_path(image: &Path) -> PathBuf {
    let mut name = image.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

fn register() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| Error::Invalid("the embedded font cannot be read".into()))
}

/// The figure drawn to an image file's bytes.
pub fn render<F: Figure>(figure: &F, format: Format) -> Result<Vec<u8>> {
    register()?;
    let size = figure.size();
    let failed = |e: String| Error::Invalid(format!("cannot draw the {} figure: {e}", F::KIND));
    match format {
        Format::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
                draw_on(figure, &root).map_err(failed)?;
            }
            Ok(text.into_bytes())
        }
        Format::Png => {
            let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
                draw_on(figure, &root).map_err(failed)?;
            }
            encode_png(pixels, size)
        }
    }
}

fn draw_on<F: Figure, DB: DrawingBackend>(
    figure: &F,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    figure.draw(root).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn encode_png(pixels: Vec<u8>, (w, h): (u32, u32)) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, pixels)
        .ok_or_else(|| Error::Invalid("the picture's buffer does not match its size".into()))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("cannot encode PNG: {e}")))?;
    Ok(png)
}

/// Writes the image and its sidecar: both complete before either replaces its target.
pub fn write(image_path: &Path, image: &[u8], sidecar: &[u8]) -> Result<()> {
    use std::io::Write;
    let side = sidecar_path(image_path);
    let mut files = Vec::new();
    for (target, bytes) in [(image_path, image), (side.as_path(), sidecar)] {
        let mut tmp = crate::fsutil::temp_beside(target)?;
        tmp.as_file_mut()
            .write_all(bytes)
            .map_err(|e| Error::io(target, e))?;
        files.push((tmp, target));
    }
    crate::fsutil::commit_together(files)
}

/// Text in the embedded font.
pub fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// The range of the finite values (None when there are none).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
}

impl Scale {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Scale> {
        let (min, max) = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        (min <= max).then_some(Scale { min, max })
    }

    /// The same range, widened when it is a single value, and by `pad` of its width each side:
    /// an axis range plotters can draw.
    pub fn padded(self, pad: f64) -> std::ops::Range<f64> {
        let width = self.max - self.min;
        let (lo, hi) = if width > 0.0 {
            (self.min - pad * width, self.max + pad * width)
        } else {
            let d = (self.min.abs() * 0.05).max(1e-3);
            (self.min - d, self.max + d)
        };
        lo..hi
    }

    /// Viridis from `min` (dark blue) to `max` (yellow); grey for a value that is not finite.
    pub fn colour(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return RGBColor(200, 200, 200);
        }
        let (lo, hi) = if self.max > self.min {
            (self.min, self.max)
        } else {
            (self.min - 1.0, self.max)
        };
        ViridisRGB::get_color_normalized(v.clamp(lo, hi), lo, hi)
    }
}

/// A vertical colour bar for `scale` in `area`, labelled `label`.
pub fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    scale: Scale,
    label: &str,
) -> DrawResult<DB> {
    let range = scale.padded(0.0);
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(60)
        .margin_right(8)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..1f64, range.clone())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v| short(*v))
        .y_desc(label)
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .draw()?;
    let steps = 64;
    let h = (range.end - range.start) / steps as f64;
    chart.draw_series((0..steps).map(|i| {
        let lo = range.start + i as f64 * h;
        Rectangle::new(
            [(0.0, lo), (1.0, lo + h)],
            scale.colour(lo + h / 2.0).filled(),
        )
    }))?;
    Ok(())
}

/// A number in at most 4 significant digits, without exponent for ordinary magnitudes.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 4) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// A title strip of `height` pixels on top of `root`, and the area below it.
pub fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    height: u32,
) -> std::result::Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (top, rest) = root.split_vertically(height);
    top.titled(title, font(22.0))?;
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.PNG"), "--plot").unwrap(),
            Format::Png
        );
        assert_eq!(
            Format::from_path(Path::new("b.svg"), "--plot").unwrap(),
            Format::Svg
        );
        let e = Format::from_path(Path::new("b.jpg"), "--plot").unwrap_err();
        assert!(e.to_string().contains("--plot b.jpg"), "{e}");
        assert!(Format::from_path(Path::new("png"), "--plot").is_err());
    }

    #[test]
    fn scale_ignores_what_is_not_finite() {
        let s = Scale::of([f64::NAN, 2.0, f64::INFINITY, -1.0]).unwrap();
        assert_eq!(
            s,
            Scale {
                min: -1.0,
                max: 2.0
            }
        );
        assert!(Scale::of([f64::NAN]).is_none());
        let one = Scale::of([3.0]).unwrap().padded(0.1);
        assert!(one.start < 3.0 && one.end > 3.0);
    }

    #[test]
    fn sidecar_is_beside_the_image() {
        assert_eq!(
            sidecar_path(Path::new("d/x.png")),
            PathBuf::from("d/x.png.json")
        );
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(1234.0), "1234");
        assert_eq!(short(0.000012), "1.20e-5");
    }
}
