//! `assemblies --plot`: one row per hidden layer. Left, the neuron × neuron similarity the
//! assemblies were found on (co-connectivity M = ÂÂᵀ, or activity correlation with `--data`),
//! rows and columns reordered by assembly so that assemblies show as blocks on the diagonal,
//! each block outlined and its size written in it (and listed in the caption), with a colour
//! bar. Right, with labelled `--data`: the class × neuron mean activation, neurons in the same
//! order, with the same boundaries and its own colour bar.
//!
//! Size: 720 pixels wide per panel (one, or two with class means), 56 for the title plus 620
//! per hidden layer high. Contract: the sidecar holds exactly the drawn matrices, already
//! reordered; `order[i]` is the neuron drawn at position i. Matrices larger than 256 cells a
//! side are drawn as block averages; cells that are not finite are grey.
use super::{colour_bar, font, short, titled, DrawResult, Figure, Scale};
use ndarray::Array2;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

pub const PANEL_WIDTH: u32 = 720;
pub const TITLE_HEIGHT: u32 = 56;
pub const ROW_HEIGHT: u32 = 620;
/// Cells drawn per side at most; larger matrices are averaged in blocks.
const MAX_CELLS: usize = 256;
const BAR_WIDTH: u32 = 120;

/// Mean activation of each neuron per class, neurons in drawn order.
#[derive(Debug, Clone, Serialize)]
pub struct ClassMeans {
    pub classes: Vec<i64>,
    /// `values[c][i]`: mean activation of neuron `order[i]` over the rows of class `classes[c]`.
    pub values: Vec<Vec<f64>>,
}

/// One hidden layer's row of the figure.
#[derive(Debug, Clone, Serialize)]
pub struct LayerPanel {
    pub layer: usize,
    /// "co-connectivity" or "activity".
    pub source: String,
    pub modularity: f64,
    /// The neuron drawn at each position: the assemblies one after another.
    pub order: Vec<usize>,
    /// Sizes of the assemblies in drawn order.
    pub sizes: Vec<usize>,
    /// Similarity of the neurons at positions i and j.
    pub similarity: Vec<Vec<f64>>,
    pub class_means: Option<ClassMeans>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssembliesFigure {
    pub title: String,
    pub layers: Vec<LayerPanel>,
}

/// The drawing order of assemblies given as neuron index groups: the groups one after another.
pub fn order(assemblies: &[Vec<usize>]) -> Vec<usize> {
    assemblies.iter().flatten().copied().collect()
}

/// Positions where each assembly starts and ends: [0, s₀, s₀ + s₁, …, n].
pub fn boundaries(sizes: &[usize]) -> Vec<usize> {
    let mut out = vec![0];
    for s in sizes {
        out.push(out.last().copied().unwrap_or(0) + s);
    }
    out
}

impl LayerPanel {
    /// The panel of one layer: `similarity` is n × n over neuron indices; `class_means`, when
    /// given, is classes × n, also over neuron indices. Every neuron must be in one assembly.
    pub fn new(
        layer: usize,
        source: &str,
        modularity: f64,
        assemblies: &[Vec<usize>],
        similarity: &Array2<f64>,
        class_means: Option<(&[i64], &Array2<f64>)>,
    ) -> LayerPanel {
        let order = order(assemblies);
        let pick =
            |row: ndarray::ArrayView1<f64>| -> Vec<f64> { order.iter().map(|&j| row[j]).collect() };
        LayerPanel {
            layer,
            source: source.to_string(),
            modularity,
            similarity: order.iter().map(|&i| pick(similarity.row(i))).collect(),
            class_means: class_means.map(|(classes, means)| ClassMeans {
                classes: classes.to_vec(),
                values: means.rows().into_iter().map(pick).collect(),
            }),
            sizes: assemblies.iter().map(Vec::len).collect(),
            order,
        }
    }
}

impl Figure for AssembliesFigure {
    const KIND: &'static str = "assemblies";

    fn size(&self) -> (u32, u32) {
        let panels = if self.layers.iter().any(|l| l.class_means.is_some()) {
            2
        } else {
            1
        };
        let rows = self.layers.len().max(1) as u32;
        (PANEL_WIDTH * panels, TITLE_HEIGHT + ROW_HEIGHT * rows)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, &self.title, TITLE_HEIGHT)?;
        let rows = body.split_evenly((self.layers.len().max(1), 1));
        for (layer, row) in self.layers.iter().zip(&rows) {
            let (left, right) = row.split_horizontally(PANEL_WIDTH);
            similarity_panel(&left, layer)?;
            if let Some(means) = &layer.class_means {
                class_panel(&right, layer, means)?;
            }
        }
        Ok(())
    }
}

/// Sizes as a short list: the first eight, then how many more.
fn size_list(sizes: &[usize]) -> String {
    let shown: Vec<String> = sizes.iter().take(8).map(|s| s.to_string()).collect();
    let more = sizes.len().saturating_sub(8);
    let tail = if more > 0 {
        format!(", … {more} more")
    } else {
        String::new()
    };
    format!("{}{tail}", shown.join(", "))
}

fn similarity_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    l: &LayerPanel,
) -> DrawResult<DB> {
    let caption = format!(
        "layer {}: {}, Q = {}; {} assemblies: {}",
        l.layer,
        l.source,
        short(l.modularity),
        l.sizes.len(),
        size_list(&l.sizes)
    );
    let grid = Grid {
        values: &l.similarity,
        cols: l.order.len(),
        row_names: None,
    };
    let label = match l.source.as_str() {
        "activity" => "activity correlation",
        _ => "co-connectivity",
    };
    let ends = boundaries(&l.sizes);
    let axes = Axes {
        caption: &caption,
        x_desc: "neuron (ordered by assembly)",
        y_desc: "neuron (ordered by assembly)",
        bar: label,
    };
    heatmap(area, &grid, &axes, |chart, n_rows| {
        blocks(chart, &ends, n_rows as f64)
    })
}

fn class_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    l: &LayerPanel,
    means: &ClassMeans,
) -> DrawResult<DB> {
    let caption = format!(
        "layer {}: mean activation per class, same neuron order",
        l.layer
    );
    let names: Vec<String> = means.classes.iter().map(|c| c.to_string()).collect();
    let grid = Grid {
        values: &means.values,
        cols: l.order.len(),
        row_names: Some(&names),
    };
    let ends = boundaries(&l.sizes);
    let axes = Axes {
        caption: &caption,
        x_desc: "neuron (ordered by assembly)",
        y_desc: "class",
        bar: "mean activation",
    };
    heatmap(area, &grid, &axes, |chart, n_rows| {
        let inner = ends.iter().skip(1).take(ends.len().saturating_sub(2));
        let lines = inner.map(|&b| {
            PathElement::new(
                [(b as f64, 0.0), (b as f64, n_rows as f64)],
                WHITE.stroke_width(2),
            )
        });
        chart.draw_series(lines).map(|_| ())
    })
}

/// Rows of values, `cols` wide, with optional names for the rows (else positions).
struct Grid<'a> {
    values: &'a [Vec<f64>],
    cols: usize,
    row_names: Option<&'a [String]>,
}

struct Axes<'a> {
    caption: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    bar: &'a str,
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A heatmap of `grid` (row 0 on top) with a colour bar, then `overlay` on its chart.
fn heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    grid: &Grid,
    axes: &Axes,
    overlay: impl FnOnce(&mut Chart<DB>, usize) -> DrawResult<DB>,
) -> DrawResult<DB> {
    let area = area.margin(6, 10, 6, 6);
    let (plot_area, bar_area) = area.split_horizontally(area.dim_in_pixel().0 - BAR_WIDTH);
    let n_rows = grid.values.len();
    let scale = Scale::of(grid.values.iter().flatten().copied());
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(axes.caption, font(16.0))
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..grid.cols.max(1) as f64, 0.0..n_rows.max(1) as f64)?;
    let rows = n_rows as f64;
    let names = grid.row_names;
    let y_label = move |y: &f64| row_label(*y, rows, names);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .x_labels(8)
        .y_labels(if names.is_some() { n_rows * 2 + 1 } else { 8 })
        .x_label_formatter(&|x| integer_or_blank(*x))
        .y_label_formatter(&y_label)
        .label_style(font(12.0))
        .axis_desc_style(font(14.0))
        .draw()?;
    let Some(scale) = scale else {
        return plot_area.draw_text("no finite values", &font(16.0), (80, 200));
    };
    chart.draw_series(
        cells(grid.values, grid.cols, MAX_CELLS)
            .into_iter()
            .map(|c| {
                Rectangle::new(
                    [(c.x0, rows - c.y0), (c.x1, rows - c.y1)],
                    scale.colour(c.value).filled(),
                )
            }),
    )?;
    overlay(&mut chart, n_rows)?;
    colour_bar(&bar_area, scale, axes.bar)
}

/// The label of a row tick: with names, the name at the centre of its row; else the position
/// counted from the top.
fn row_label(y: f64, rows: f64, names: Option<&[String]>) -> String {
    let from_top = rows - y;
    match names {
        Some(names) => {
            let i = from_top - 0.5;
            if (i - i.round()).abs() < 1e-6 && i >= 0.0 {
                names.get(i.round() as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
        None => integer_or_blank(from_top),
    }
}

fn integer_or_blank(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round())
    } else {
        String::new()
    }
}

/// One drawn cell: a block of positions [x0, x1) × [y0, y1) and its mean finite value.
#[derive(Debug, Clone, PartialEq)]
struct Cell {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    value: f64,
}

/// The cells of `values` (rows of `cols` values), averaged in blocks so that at most `max`
/// are drawn a side; a block without a finite value is NaN.
fn cells(values: &[Vec<f64>], cols: usize, max: usize) -> Vec<Cell> {
    let step = |n: usize| n.div_ceil(max.max(1)).max(1);
    let (rs, cs) = (step(values.len()), step(cols));
    let mut out = Vec::new();
    for r0 in (0..values.len()).step_by(rs) {
        let r1 = (r0 + rs).min(values.len());
        for c0 in (0..cols).step_by(cs) {
            let c1 = (c0 + cs).min(cols);
            let finite: Vec<f64> = values[r0..r1]
                .iter()
                .flat_map(|row| row.iter().skip(c0).take(c1 - c0))
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let value = if finite.is_empty() {
                f64::NAN
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            };
            out.push(Cell {
                x0: c0 as f64,
                x1: c1 as f64,
                y0: r0 as f64,
                y1: r1 as f64,
                value,
            });
        }
    }
    out
}

/// Outlines each assembly's diagonal block and writes its size in it when it fits.
fn blocks<DB: DrawingBackend>(chart: &mut Chart<DB>, ends: &[usize], rows: f64) -> DrawResult<DB> {
    let px_per_cell = chart.plotting_area().dim_in_pixel().0 as f64 / rows.max(1.0);
    let style = RED.stroke_width(2);
    for w in ends.windows(2) {
        let (a, b) = (w[0] as f64, w[1] as f64);
        chart.draw_series([Rectangle::new([(a, rows - a), (b, rows - b)], style)])?;
        if (b - a) * px_per_cell >= 18.0 {
            let text = Text::new(
                format!("{}", w[1] - w[0]),
                (a + 3.0 / px_per_cell, rows - a - 2.0 / px_per_cell),
                font(13.0).color(&WHITE),
            );
            chart.draw_series([text])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn reordering_puts_each_assembly_in_a_block() {
        let groups = vec![vec![1, 3, 4], vec![0, 2]];
        assert_eq!(order(&groups), vec![1, 3, 4, 0, 2]);
        assert_eq!(boundaries(&[3, 2]), vec![0, 3, 5]);
        assert_eq!(boundaries(&[]), vec![0]);
        // Similarity 1 within {1, 3, 4} and {0, 2}, 0 across.
        let label = [1, 0, 1, 0, 0];
        let m = Array2::from_shape_fn((5, 5), |(i, j)| f64::from(label[i] == label[j]));
        let means = array![[0.0, 1.0, 2.0, 3.0, 4.0]];
        let p = LayerPanel::new(
            0,
            "co-connectivity",
            0.5,
            &groups,
            &m,
            Some((&[7i64][..], &means)),
        );
        assert_eq!(p.sizes, vec![3, 2]);
        for (i, row) in p.similarity.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                assert_eq!(v, f64::from((i < 3) == (j < 3)), "({i}, {j})");
            }
        }
        let cm = p.class_means.unwrap();
        assert_eq!(cm.values, vec![vec![1.0, 3.0, 4.0, 0.0, 2.0]]);
        assert_eq!(cm.classes, vec![7]);
    }

    #[test]
    fn large_matrices_are_averaged_in_blocks() {
        let values = vec![vec![1.0, 3.0, f64::NAN], vec![5.0, 7.0, f64::NAN]];
        // One cell a side: the mean of every finite value.
        let one = cells(&values, 3, 1);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].value, one[0].x1, one[0].y1), (4.0, 3.0, 2.0));
        // Two a side: columns in blocks of two, the last block without a finite value.
        let c = cells(&values, 3, 2);
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].value, 2.0);
        assert!(c[1].value.is_nan());
        assert_eq!((c[1].x0, c[1].x1, c[1].y0, c[1].y1), (2.0, 3.0, 0.0, 1.0));
        assert_eq!(cells(&values, 3, 10).len(), 6);
    }

    #[test]
    fn sizes_are_listed_briefly() {
        assert_eq!(size_list(&[3, 2]), "3, 2");
        assert_eq!(size_list(&[1; 10]), "1, 1, 1, 1, 1, 1, 1, 1, … 2 more");
    }
}
