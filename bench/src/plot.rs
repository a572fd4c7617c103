//! The pictures of `BENCHMARKS.md` (PNG, plotters with an embedded DejaVu font, so no system
//! font is needed): series of points over an x axis, and distributions drawn as cumulative
//! curves (for each value, the share of samples at or below it).

use std::path::Path;

use plotters::prelude::*;

use crate::measure::Error;

/// One named line.
pub struct Series {
    /// The legend.
    pub name: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

fn font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draws `series` as lines into the PNG at `path`, the y axis starting at 0 unless `log_x`.
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> Result<(), Error> {
    font();
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1) = all().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let y1 = all().fold(0.0f64, |m, p| m.max(p.1)) * 1.08;
    if !x0.is_finite() || !x1.is_finite() || x0 >= x1 {
        return Err(format!("{title}: nothing to draw").into());
    }
    if log_x {
        x0 = x0.max(1e-3);
    } else {
        x0 = x0.min(0.0);
        x1 *= 1.02;
    }
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        colour.stroke_width(2),
                    ))?
                    .label(s.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }};
    }
    if log_x {
        draw!(builder.build_cartesian_2d((x0..x1).log_scale(), 0.0..y1.max(1e-9))?);
    } else {
        draw!(builder.build_cartesian_2d(x0..x1, 0.0..y1.max(1e-9))?);
    }
    root.present()?;
    Ok(())
}

/// The cumulative distribution of `samples`: `(value, % of samples at or below it)`, thinned to
/// at most 400 points.
pub fn cumulative(samples: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let step = n.div_ceil(400).max(1);
    let mut points: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (v[i], (i + 1) as f64 * 100.0 / n as f64))
        .collect();
    if let Some(last) = v.last() {
        points.push((*last, 100.0));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_rises_to_all_the_samples() {
        let points = cumulative(&[3.0, 1.0, 2.0, f64::NAN, 4.0]);
        assert_eq!(points.first(), Some(&(1.0, 25.0)));
        assert_eq!(points.last(), Some(&(4.0, 100.0)));
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        let many: Vec<f64> = (0..100_000).map(f64::from).collect();
        assert!(cumulative(&many).len() <= 402);
    }

    #[test]
    fn a_png_is_written() {
        let dir = std::env::temp_dir().join(format!("plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.png");
        let series = [Series {
            name: "a".into(),
            points: vec![(1.0, 1.0), (2.0, 3.0), (10.0, 2.0)],
        }];
        lines(&path, "t", "x", "y", &series, false).expect("linear");
        let png = std::fs::read(&path).expect("written");
        assert_eq!(&png[1..4], b"PNG");
        lines(&path, "t", "x", "y", &series, true).expect("log");
        assert!(lines(&path, "t", "x", "y", &[], false).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
