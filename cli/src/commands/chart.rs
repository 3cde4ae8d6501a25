//! Bar charts as SVG, for benchmark results: a group of bars per category (a query), one bar
//! per series (an engine or a configuration), on a logarithmic scale so that figures ten times
//! apart stay readable side by side.

use std::fmt::Write as _;

/// One series of bars: its name in the legend and its value per category (`None`: no bar).
pub struct Series {
    /// The legend's text.
    pub name: String,
    /// The value of each category, by the category's name.
    pub values: Vec<(String, Option<f64>)>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];
const BAR_WIDTH: f64 = 14.0;
const GROUP_GAP: f64 = 12.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 60.0;
const PLOT_HEIGHT: f64 = 300.0;
const BOTTOM: f64 = 50.0;

/// An SVG bar chart of `series` over `categories`, values in `unit`, on a log scale.
pub fn bar_chart(title: &str, unit: &str, categories: &[&str], series: &[Series]) -> String {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|series| series.values.iter().filter_map(|(_, value)| *value))
        .filter(|value| *value > 0.0)
        .collect();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    // The axis starts a decade below the smallest value, so that every bar shows.
    let (low, high) = if values.is_empty() {
        (0, 1)
    } else {
        let low = low.log10().floor() as i32 - 1;
        (low, (high.log10().ceil() as i32).max(low + 2))
    };
    let y = |value: f64| {
        TOP + PLOT_HEIGHT * (1.0 - (value.log10() - f64::from(low)) / f64::from(high - low))
    };
    let group = BAR_WIDTH * series.len().max(1) as f64 + GROUP_GAP;
    let width = LEFT + group * categories.len() as f64 + 20.0;
    let height = TOP + PLOT_HEIGHT + BOTTOM;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    for decade in low..=high {
        let at = y(10f64.powi(decade));
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            width - 20.0,
            LEFT - 6.0,
            at + 4.0,
            si(10f64.powi(decade))
        );
    }
    let _ = writeln!(
        svg,
        "<text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{} (log scale)</text>",
        TOP + PLOT_HEIGHT / 2.0,
        escape(unit)
    );
    let mut legend_x = LEFT;
    for (index, series) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let _ = writeln!(
            svg,
            "<rect x=\"{legend_x:.1}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"39\">{}</text>",
            legend_x + 14.0,
            escape(&series.name)
        );
        // About the width of the text at this size, and a gap.
        legend_x += 14.0 + 6.5 * series.name.chars().count() as f64 + 18.0;
    }
    for (position, category) in categories.iter().enumerate() {
        let start = LEFT + group * position as f64 + GROUP_GAP / 2.0;
        for (index, series) in series.iter().enumerate() {
            let value = series
                .values
                .iter()
                .find(|(name, _)| name == category)
                .and_then(|(_, value)| *value)
                .filter(|value| *value > 0.0);
            if let Some(value) = value {
                let top = y(value);
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{} {}: {} {}</title></rect>",
                    start + BAR_WIDTH * index as f64,
                    BAR_WIDTH - 1.0,
                    TOP + PLOT_HEIGHT - top,
                    COLORS[index % COLORS.len()],
                    escape(category),
                    escape(&series.name),
                    si(value),
                    escape(unit)
                );
            }
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            start + (group - GROUP_GAP) / 2.0,
            TOP + PLOT_HEIGHT + 16.0,
            escape(category)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A number with an SI suffix: `250k`, `12M`.
fn si(value: f64) -> String {
    let (scaled, suffix) = if value >= 1e9 {
        (value / 1e9, "G")
    } else if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    if scaled >= 10.0 || scaled.fract() == 0.0 {
        format!("{scaled:.0}{suffix}")
    } else {
        format!("{scaled:.1}{suffix}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_as_tall_as_their_decades_and_every_category_is_labelled() {
        let series = vec![
            Series {
                name: "weir".into(),
                values: vec![("q0".into(), Some(1e7)), ("q5".into(), Some(1e6))],
            },
            Series {
                name: "flink <2>".into(),
                values: vec![("q0".into(), Some(1e6)), ("q5".into(), None)],
            },
        ];
        let svg = bar_chart("t", "events/s", &["q0", "q5"], &series);
        // Decades 100k to 10M: the 10M bar fills the plot, the 1M bars half of it.
        assert!(
            svg.contains(&format!("height=\"{PLOT_HEIGHT:.1}\"")),
            "{svg}"
        );
        let half = PLOT_HEIGHT / 2.0;
        assert_eq!(
            svg.matches(&format!("height=\"{half:.1}\"")).count(),
            2,
            "{svg}"
        );
        assert_eq!(svg.matches("<title>").count(), 3, "{svg}");
        assert!(svg.contains(">q5</text>") && svg.contains("flink &lt;2&gt;"));
        assert_eq!(si(2.5e6), "2.5M");
        assert_eq!(si(12e6), "12M");
    }
}
