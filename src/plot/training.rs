//! `finetune --plot`: three panels side by side over the epochs: the task loss, the BEAN term,
//! and train / validation accuracy (legend). 1500 × 500 pixels.
//!
//! Contract: one point per epoch, as `--json`'s `history` reports it; an epoch's value that is
//! not finite is left out of its panel; a panel with no finite value says so instead of a chart;
//! the accuracy legend appears when both train and validation accuracy are drawn.
use super::{font, short, titled, DrawResult, Figure, Scale};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

pub const WIDTH: u32 = 1500;
pub const HEIGHT: u32 = 500;

/// The numbers of one finished epoch.
#[derive(Debug, Clone, Serialize)]
pub struct EpochPoint {
    pub epoch: usize,
    pub task_loss: f64,
    pub bean: f64,
    pub train_accuracy: f64,
    pub val_accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainingFigure {
    pub title: String,
    pub epochs: Vec<EpochPoint>,
}

/// One line of a panel: its legend label, colour and (epoch, value) points.
struct Line {
    label: &'static str,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

fn line(
    label: &'static str,
    colour: RGBColor,
    epochs: &[EpochPoint],
    f: impl Fn(&EpochPoint) -> Option<f64>,
) -> Line {
    let points = epochs
        .iter()
        .filter_map(|e| f(e).filter(|v| v.is_finite()).map(|v| (e.epoch as f64, v)))
        .collect();
    Line {
        label,
        colour,
        points,
    }
}

impl Figure for TrainingFigure {
    const KIND: &'static str = "training";

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, &self.title, 44)?;
        let panels = body.split_evenly((1, 3));
        let e = &self.epochs;
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        let loss = [line("task loss", blue, e, |p| Some(p.task_loss))];
        let bean = [line("BEAN term", orange, e, |p| Some(p.bean))];
        let acc = [
            line("train", blue, e, |p| Some(p.train_accuracy)),
            line("validation", orange, e, |p| p.val_accuracy),
        ];
        self.panel(&panels[0], "Task loss", "loss", &loss)?;
        self.panel(&panels[1], "BEAN term", "BEAN regularization", &bean)?;
        self.panel(&panels[2], "Accuracy", "accuracy", &acc)
    }
}

impl TrainingFigure {
    /// Epochs on the x axis, from the first to the last (at least one unit wide).
    fn epoch_range(&self) -> std::ops::Range<f64> {
        let first = self.epochs.first().map_or(1, |e| e.epoch) as f64;
        let last = self.epochs.last().map_or(1, |e| e.epoch) as f64;
        (first - 0.5)..(last.max(first) + 0.5)
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        y_desc: &str,
        lines: &[Line],
    ) -> DrawResult<DB> {
        let area = area.margin(8, 16, 8, 16);
        let Some(scale) = Scale::of(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1))) else {
            area.titled(caption, font(18.0))?;
            return area.draw_text(
                "no finite values",
                &font(16.0),
                (40, area.dim_in_pixel().1 as i32 / 2),
            );
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(caption, font(18.0))
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(self.epoch_range(), scale.padded(0.08))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .x_label_formatter(&|x| integer_label(*x))
            .y_label_formatter(&|y| short(*y))
            .label_style(font(13.0))
            .axis_desc_style(font(15.0))
            .draw()?;
        // A line without a finite point (validation without --val) gets no legend entry.
        let drawn: Vec<&Line> = lines.iter().filter(|l| !l.points.is_empty()).collect();
        for l in &drawn {
            let style = l.colour.stroke_width(2);
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), style))?
                .label(l.label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart.draw_series(
                l.points
                    .iter()
                    .map(|&p| Circle::new(p, 4, l.colour.filled())),
            )?;
        }
        if drawn.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(font(14.0))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    }
}

/// Whole epochs only: plotters places ticks at round fractions too.
fn integer_label(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, loss: f64) -> EpochPoint {
        EpochPoint {
            epoch,
            task_loss: loss,
            bean: 0.0,
            train_accuracy: 0.5,
            val_accuracy: None,
        }
    }

    #[test]
    fn values_that_are_not_finite_are_left_out() {
        let e = [epoch(1, 0.5), epoch(2, f64::NAN), epoch(3, 0.25)];
        let l = line("x", BLACK, &e, |p| Some(p.task_loss));
        assert_eq!(l.points, vec![(1.0, 0.5), (3.0, 0.25)]);
        let v = line("x", BLACK, &e, |p| p.val_accuracy);
        assert!(v.points.is_empty());
    }

    #[test]
    fn one_epoch_and_nan_still_draw() {
        let f = TrainingFigure {
            title: "t".into(),
            epochs: vec![epoch(1, f64::NAN)],
        };
        let png = super::super::render(&f, super::super::Format::Png).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
        let empty = TrainingFigure {
            title: "t".into(),
            epochs: vec![],
        };
        assert!(super::super::render(&empty, super::super::Format::Svg).is_ok());
    }
}
