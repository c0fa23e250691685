//! Pictures of connection strength: Â of each layer, rows (input neurons) and columns (units)
//! reordered by assembly, so block structure shows at a glance. Written as PNG with `image`.
use crate::error::{Error, Result};
use image::{Rgb, RgbImage};
use ndarray::Array2;
use std::path::Path;

/// One panel: a matrix and the row / column orders to draw it in, with assembly boundaries.
pub struct Panel {
    pub values: Array2<f64>,
    pub row_order: Vec<usize>,
    pub col_order: Vec<usize>,
    /// Positions (in drawn order) where a new row assembly starts.
    pub row_breaks: Vec<usize>,
}

const GAP: u32 = 12;
const MAX_SIDE: u32 = 600;

/// Draws the panels side by side (white = 0, black = the panel's largest value; red lines
/// separate assemblies) and writes the PNG atomically.
pub fn write_panels(panels: &[Panel], path: &Path) -> Result<()> {
    let scale = |n: usize| -> u32 { (MAX_SIDE / n.max(1) as u32).clamp(1, 8) };
    let sizes: Vec<(u32, u32, u32)> = panels
        .iter()
        .map(|p| {
            let s = scale(p.row_order.len().max(p.col_order.len()));
            (
                p.col_order.len() as u32 * s,
                p.row_order.len() as u32 * s,
                s,
            )
        })
        .collect();
    let width = sizes.iter().map(|s| s.0).sum::<u32>() + GAP * (panels.len() as u32 + 1);
    let height = sizes.iter().map(|s| s.1).max().unwrap_or(1) + 2 * GAP;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut x0 = GAP;
    for (p, &(w, _h, s)) in panels.iter().zip(&sizes) {
        let max = p.values.iter().cloned().fold(0.0, f64::max).max(1e-12);
        for (ri, &r) in p.row_order.iter().enumerate() {
            for (ci, &c) in p.col_order.iter().enumerate() {
                let v = (255.0 * (1.0 - p.values[[r, c]] / max))
                    .round()
                    .clamp(0.0, 255.0) as u8;
                for dy in 0..s {
                    for dx in 0..s {
                        img.put_pixel(
                            x0 + ci as u32 * s + dx,
                            GAP + ri as u32 * s + dy,
                            Rgb([v, v, v]),
                        );
                    }
                }
            }
        }
        for &b in &p.row_breaks {
            let y = GAP + b as u32 * s;
            for x in x0..x0 + w {
                img.put_pixel(x, y.min(height - 1), Rgb([220, 30, 30]));
            }
        }
        x0 += w + GAP;
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("{}: cannot encode PNG: {e}", path.display())))?;
    crate::fsutil::atomic_write_bytes(path, &png)?;
    Ok(())
}
