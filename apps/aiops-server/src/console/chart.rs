//! Figures over time: the data of the charts the console's script draws with uPlot (embedded
//! in the page as JSON), and the sparklines drawn here as inline SVG, so that a list of two
//! thousand endpoints needs no script.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};
use serde::Serialize;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// Its label in the legend.
    pub label: String,
    /// One value per point of the chart's `x`; `None` where there were no requests.
    pub values: Vec<Option<f64>>,
}

/// A band drawn behind the lines: what the baseline holds as normal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    /// The label of its lower edge (`/payment baseline mean`); none for a band from zero.
    pub low_label: Option<String>,
    /// Lower edge.
    pub low: f64,
    /// The label of its upper edge (`/payment baseline p95`).
    pub high_label: String,
    /// Upper edge.
    pub high: f64,
}

/// A moment marked by a vertical rule, such as the detection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    /// Unix seconds.
    pub at: f64,
    /// What happened.
    pub label: String,
}

/// One chart: lines over shared times, a band and marks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chart {
    /// The chart's heading.
    pub title: String,
    /// The unit of the values, e.g. `ms` or `%`.
    pub unit: String,
    /// The times of the points, Unix seconds.
    pub x: Vec<f64>,
    /// The lines.
    pub lines: Vec<Line>,
    /// The baseline band, when one is known.
    pub band: Option<Band>,
    /// Marked moments.
    pub marks: Vec<Mark>,
}

impl Chart {
    /// The chart as a figure: a heading, the element the script draws into, the data as JSON,
    /// and a table of the same figures for readers without the chart.
    pub fn figure(&self, id: &str) -> Markup {
        // `</` cannot close the script element early: every `<` in the JSON is escaped.
        let json = serde_json::to_string(self)
            .unwrap_or_else(|_| "null".to_owned())
            .replace('<', "\\u003c");
        html! {
            figure.chart {
                figcaption { (self.title) }
                div.plot #(id) role="img" aria-label=(format!("Chart: {}", self.title)) {}
                script type="application/json" class="chart-data" data-for=(id) { (PreEscaped(json)) }
                details {
                    summary { "Figures" }
                    div.scroll {
                        table {
                            thead { tr {
                                th scope="col" { "Time (UTC)" }
                                @for line in &self.lines { th scope="col" { (line.label) " (" (self.unit) ")" } }
                            } }
                            tbody {
                                @for (index, at) in self.x.iter().enumerate() {
                                    @if self.lines.iter().any(|line| line.values.get(index).copied().flatten().is_some()) {
                                        tr {
                                            td { (clock(*at)) }
                                            @for line in &self.lines {
                                                td { (line.values.get(index).copied().flatten().map(|v| format!("{v:.2}")).unwrap_or_default()) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Unix seconds as `HH:MM:SS` UTC.
fn clock(unix_secs: f64) -> String {
    let secs = unix_secs.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A sparkline's coordinates: x steps of [`SPARK_STEP`] per point, y from 0 (top) to
/// [`SPARK_HEIGHT`], whole numbers to keep two thousand of them small; the stylesheet sizes the
/// drawing (`svg.spark`), stretched to fit.
const SPARK_STEP: usize = 10;
const SPARK_HEIGHT: f64 = 100.0;

/// A small line of `values` (gaps where `None`) with a dashed rule at `reference` (the
/// baseline), scaled to fit both. It is decoration: the figures it draws are in the row's text,
/// so screen readers skip it.
pub fn sparkline(values: &[Option<f64>], reference: Option<f64>) -> Markup {
    let top = values
        .iter()
        .flatten()
        .copied()
        .chain(reference)
        .filter(|value| value.is_finite())
        .fold(0.0_f64, f64::max);
    let scale = if top > 0.0 {
        (SPARK_HEIGHT - 4.0) / top
    } else {
        0.0
    };
    let y = |value: f64| (SPARK_HEIGHT - 2.0 - value * scale).round() as i64;
    let width = values.len().saturating_sub(1).max(1) * SPARK_STEP;
    // A single minute is drawn at the right edge, where the latest minute goes.
    let shift = if values.len() == 1 { width } else { 0 };
    // One polyline per run of points without a gap; a run of one point is a dot.
    let mut runs: Vec<Vec<(usize, i64)>> = vec![Vec::new()];
    for (index, value) in values.iter().enumerate() {
        match value.filter(|value| value.is_finite()) {
            Some(value) => runs
                .last_mut()
                .into_iter()
                .for_each(|run| run.push((shift + index * SPARK_STEP, y(value)))),
            None => runs.push(Vec::new()),
        }
    }
    runs.retain(|run| !run.is_empty());
    let points = |run: &[(usize, i64)]| {
        let mut text = String::with_capacity(run.len() * 7);
        for (x, y) in run {
            let _ = write!(text, "{x},{y} ");
        }
        text.pop();
        text
    };
    html! {
        svg.spark viewBox=(format!("0 0 {width} {SPARK_HEIGHT}")) preserveAspectRatio="none" aria-hidden="true" {
            @if let Some(reference) = reference.filter(|value| value.is_finite() && top > 0.0) {
                path.base d=(format!("M0 {0}H{width}", y(reference))) {}
            }
            @for run in &runs {
                @if let [(x, y)] = run.as_slice() {
                    path.dot d=(format!("M{x} {y}h0")) {}
                } @else {
                    polyline points=(points(run)) {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_breaks_at_gaps_and_draws_its_baseline() {
        let svg = sparkline(
            &[Some(10.0), Some(20.0), None, Some(5.0), Some(6.0)],
            Some(8.0),
        )
        .into_string();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("points=\"0,50 10,2\""), "{svg}");
        assert!(svg.contains("class=\"base\" d=\"M0 60H40\""), "{svg}");
        assert!(svg.contains("aria-hidden=\"true\""));
        let lonely = sparkline(&[None, Some(3.0), None], None).into_string();
        assert!(lonely.contains("class=\"dot\" d=\"M10 2h0\""), "{lonely}");
        assert!(!lonely.contains("class=\"base\""));
        let latest = sparkline(&[Some(3.0)], Some(3.0)).into_string();
        assert!(latest.contains("class=\"dot\" d=\"M10 2h0\""), "{latest}");
        assert!(latest.contains("d=\"M0 2H10\""), "{latest}");
    }

    #[test]
    fn chart_data_cannot_end_its_script_element() {
        let chart = Chart {
            title: "</script><b>".to_owned(),
            unit: "ms".to_owned(),
            x: vec![60.0],
            lines: vec![Line {
                label: "/payment".to_owned(),
                values: vec![Some(1.5)],
            }],
            band: None,
            marks: vec![],
        };
        let html = chart.figure("c1").into_string();
        assert!(!html.contains("</script><b>"), "{html}");
        assert!(html.contains("\\u003c/script>"), "{html}");
        assert!(html.contains("<td>00:01:00</td><td>1.50</td>"), "{html}");
    }
}
