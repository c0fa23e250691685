//! `compress --plot`: every candidate of the budget search as its validation value (accuracy,
//! agreement with the original, or RMSE for a regressor: `metric`) against its
//! parameters (left) and dense MACs per sample (right), one colour per source and allocation
//! (legend), with the budget line, the original model's point and the chosen model ringed.
//! 1500 × 600 pixels.
//!
//! Contract: the points are the search's candidates as `--json`'s `report.searches` lists them;
//! a search that found no cut within the budget still shows its candidates and its legend entry
//! says it failed; values that are not finite are left out.
use super::{font, short, titled, DrawResult, Figure, Scale};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

pub const WIDTH: u32 = 1500;
pub const HEIGHT: u32 = 600;

/// A model's size and its value on the validation data (the figure's `metric`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ModelPoint {
    pub params: usize,
    pub macs: usize,
    pub value: f64,
}

/// One evaluated cut of a search.
#[derive(Debug, Clone, Serialize)]
pub struct CandidatePoint {
    pub ratio: f64,
    #[serde(flatten)]
    pub point: ModelPoint,
}

/// One search: the model it cut and how the cut was shared among layers.
#[derive(Debug, Clone, Serialize)]
pub struct SearchSeries {
    pub source: String,
    pub allocation: String,
    pub candidates: Vec<CandidatePoint>,
    /// Why the search found nothing, when it failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchFigure {
    pub title: String,
    pub series: Vec<SearchSeries>,
    /// What `value` is: `accuracy`, `agreement` (with the original's predicted classes) or
    /// `rmse` (lower is better).
    pub metric: String,
    /// Candidates on the wrong side of this value are outside the search budget.
    pub budget: f64,
    pub original: ModelPoint,
    pub chosen: ModelPoint,
}

impl SearchFigure {
    fn metric_name(&self) -> &str {
        match self.metric.as_str() {
            "rmse" => "RMSE (lower is better)",
            "agreement" => "agreement with the original",
            _ => "accuracy",
        }
    }
}

/// Which size goes on the x axis of a panel.
#[derive(Clone, Copy)]
enum Size {
    Params,
    Macs,
}

impl Size {
    fn of(self, p: &ModelPoint) -> f64 {
        match self {
            Size::Params => p.params as f64,
            Size::Macs => p.macs as f64,
        }
    }
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

impl Figure for SearchFigure {
    const KIND: &'static str = "search";

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, &self.title, 44)?;
        let panels = body.split_evenly((1, 2));
        self.panel(&panels[0], Size::Params, "parameters")?;
        self.panel(&panels[1], Size::Macs, "dense MACs per sample")
    }
}

impl SearchFigure {
    /// Every point drawn: candidates, the original and the chosen model.
    fn all_points(&self) -> impl Iterator<Item = &ModelPoint> {
        self.series
            .iter()
            .flat_map(|s| s.candidates.iter().map(|c| &c.point))
            .chain([&self.original, &self.chosen])
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        size: Size,
        x_desc: &str,
    ) -> DrawResult<DB> {
        let area = area.margin(8, 16, 8, 16);
        let x = Scale::of(self.all_points().map(|p| size.of(p)));
        let y = Scale::of(self.all_points().map(|p| p.value).chain([self.budget]));
        let (Some(x), Some(y)) = (x, y) else {
            return area.draw_text("no finite values", &font(16.0), (40, 200));
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("{} against {x_desc}", self.metric_name()),
                font(18.0),
            )
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(x.padded(0.05), y.padded(0.08))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(format!("validation {}", self.metric_name()))
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .draw()?;
        let x_range = x.padded(0.05);
        let dash = RED.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                [(x_range.start, self.budget), (x_range.end, self.budget)],
                8,
                6,
                dash,
            ))?
            .label(format!("budget ({})", short(self.budget)))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], dash));
        for (s, colour) in self.series.iter().zip(COLOURS.iter().cycle()) {
            series(&mut chart, s, *colour, size)?;
        }
        marker(&mut chart, &self.original, size, "original", false)?;
        marker(&mut chart, &self.chosen, size, "chosen", true)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One search's candidates, joined in order of size.
fn series<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    s: &SearchSeries,
    colour: RGBColor,
    size: Size,
) -> DrawResult<DB> {
    let mut points: Vec<(f64, f64)> = s
        .candidates
        .iter()
        .map(|c| (size.of(&c.point), c.point.value))
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let failed = if s.error.is_some() { " (failed)" } else { "" };
    let style = colour.stroke_width(2);
    chart
        .draw_series(LineSeries::new(points.iter().copied(), style))?
        .label(format!("{} / {}{failed}", s.source, s.allocation))
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    Ok(())
}

/// The original (black cross) or the chosen model (black ring).
fn marker<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    p: &ModelPoint,
    size: Size,
    label: &str,
    ring: bool,
) -> DrawResult<DB> {
    let at = (size.of(p), p.value);
    if !(at.0.is_finite() && at.1.is_finite()) {
        return Ok(());
    }
    let style = BLACK.stroke_width(3);
    if ring {
        chart
            .draw_series([Circle::new(at, 10, style)])?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, style));
    } else {
        chart
            .draw_series([Cross::new(at, 8, style)])?
            .label(label)
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, style));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(params: usize, value: f64) -> ModelPoint {
        ModelPoint {
            params,
            macs: params / 2,
            value,
        }
    }

    #[test]
    fn an_empty_or_failed_search_still_draws() {
        let f = SearchFigure {
            title: "t".into(),
            series: vec![SearchSeries {
                source: "original".into(),
                allocation: "uniform".into(),
                candidates: vec![],
                error: Some("nothing fits".into()),
            }],
            metric: "accuracy".into(),
            budget: 0.9,
            original: point(100, 0.95),
            chosen: point(100, f64::NAN),
        };
        for format in [super::super::Format::Png, super::super::Format::Svg] {
            assert!(super::super::render(&f, format).is_ok());
        }
        let svg = super::super::render(&f, super::super::Format::Svg).unwrap();
        assert!(String::from_utf8(svg)
            .unwrap()
            .contains("original / uniform (failed)"));
    }
}
