//! SVG charts of a run: speedup per workload for each strategy, and amorsize's measured and
//! predicted speedup against the worker count for one workload.

use super::measure::Strategy;
use super::report::Row;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 520;

/// One series of the bar chart: its name, colour and the speedup it had on a row.
type Series<'a> = (&'a str, RGBColor, Box<dyn Fn(&Row) -> Option<f64> + 'a>);

/// Draws the speedup-per-workload chart into `dir/speedup.svg` and returns the path.
/// `machine` names the machine in the caption.
pub fn speedups(dir: &Path, rows: &[Row], machine: &str) -> Result<PathBuf> {
    let path = dir.join("speedup.svg");
    draw_speedups(&path, rows, machine)?;
    Ok(path)
}

fn draw_speedups(path: &Path, rows: &[Row], machine: &str) -> Result<()> {
    let series: Vec<Series> = vec![
        (
            "amorsize",
            RGBColor(0x1f, 0x77, 0xb4),
            Box::new(|r: &Row| Some(r.speedup(Strategy::Amorsize))),
        ),
        (
            "rayon",
            RGBColor(0xff, 0x7f, 0x0e),
            Box::new(|r: &Row| Some(r.speedup(Strategy::Rayon))),
        ),
        (
            "oracle",
            RGBColor(0x2c, 0xa0, 0x2c),
            Box::new(|r: &Row| Some(r.speedup(Strategy::Oracle))),
        ),
        (
            "predicted",
            RGBColor(0x9a, 0x9a, 0x9a),
            Box::new(|r: &Row| r.predicted()),
        ),
    ];
    let top = rows
        .iter()
        .flat_map(|r| series.iter().filter_map(move |s| (s.2)(r)))
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.15;
    let n = rows.len().max(1);
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Speedup over the serial loop: {machine}"),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
        .map_err(draw)?;
    let names: Vec<&str> = rows.iter().map(|r| r.kind.name()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map_or(String::new(), |s| (*s).to_owned())
            } else {
                String::new()
            }
        })
        .y_desc("speedup (×)")
        .draw()
        .map_err(draw)?;
    let width = 0.8 / series.len() as f64;
    for (j, (name, color, value)) in series.iter().enumerate() {
        let color = *color;
        let bars = rows.iter().enumerate().filter_map(|(i, r)| {
            let v = value(r).filter(|v| v.is_finite())?;
            let x0 = i as f64 - 0.4 + j as f64 * width;
            Some(Rectangle::new(
                [(x0, 0.0), (x0 + width * 0.9, v)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(draw)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(draw)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}

/// Draws amorsize's measured and predicted speedup against the worker count for `row` into
/// `dir/workers-<name>.svg`; `None` when the row has no curve.
pub fn worker_curve(dir: &Path, row: &Row) -> Result<Option<PathBuf>> {
    let curve = &row.measured.curve;
    if curve.is_empty() {
        return Ok(None);
    }
    let path = dir.join(format!("workers-{}.svg", row.kind.name()));
    draw_curve(&path, row)?;
    Ok(Some(path))
}

fn draw_curve(path: &Path, row: &Row) -> Result<()> {
    let curve = &row.measured.curve;
    let measured: Vec<(f64, f64)> = curve
        .iter()
        .map(|p| (p.workers as f64, row.speedup_of(p.time)))
        .filter(|p| p.1.is_finite())
        .collect();
    let grid: Vec<(f64, f64)> = curve
        .iter()
        .filter_map(|p| {
            let t = row.measured.best_trial(p.workers)?;
            Some((p.workers as f64, row.speedup_of(t))).filter(|p| p.1.is_finite())
        })
        .collect();
    let predicted: Vec<(f64, f64)> = curve
        .iter()
        .filter_map(|p| Some((p.workers as f64, p.predicted.filter(|v| v.is_finite())?)))
        .collect();
    let most = curve.iter().map(|p| p.workers).max().unwrap_or(1) as f64;
    let top = measured
        .iter()
        .chain(&predicted)
        .chain(&grid)
        .map(|p| p.1)
        .fold(most.min(2.0), f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (WIDTH * 7 / 10, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: speedup against workers ({})",
                row.kind.name(),
                row.kind.about()
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f64..most + 0.5, 0f64..top)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_labels(curve.len() + 1)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .x_desc("workers")
        .y_desc("speedup over serial (×)")
        .draw()
        .map_err(draw)?;
    let blue = RGBColor(0x1f, 0x77, 0xb4);
    let grey = RGBColor(0x70, 0x70, 0x70);
    chart
        .draw_series(LineSeries::new(measured.clone(), blue.stroke_width(2)))
        .map_err(draw)?
        .label("amorsize, measured")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue.stroke_width(2)));
    chart
        .draw_series(measured.iter().map(|&p| Circle::new(p, 4, blue.filled())))
        .map_err(draw)?;
    let green = RGBColor(0x2c, 0xa0, 0x2c);
    chart
        .draw_series(LineSeries::new(grid.clone(), green.stroke_width(1)))
        .map_err(draw)?
        .label("best chunk of the oracle grid (one run each)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], green.stroke_width(1)));
    chart
        .draw_series(
            grid.iter()
                .map(|&p| Cross::new(p, 4, green.stroke_width(1))),
        )
        .map_err(draw)?;
    chart
        .draw_series(LineSeries::new(predicted.clone(), grey.stroke_width(2)))
        .map_err(draw)?
        .label("amorsize, predicted")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], grey.stroke_width(2)));
    chart
        .draw_series(
            predicted
                .iter()
                .map(|&p| TriangleMarker::new(p, 5, grey.filled())),
        )
        .map_err(draw)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}

fn draw<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}
