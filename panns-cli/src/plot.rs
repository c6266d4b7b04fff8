//! Recall–QPS plots drawn as ann-benchmarks draws them (recall on a linear x axis,
//! queries per second on a logarithmic y axis, one line with markers per setting,
//! legend to the right, grid), written as SVG by hand.

use std::fmt::Write;

/// One line of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(recall, qps)` points, drawn in the given order.
    pub points: Vec<(f64, f64)>,
    /// Dashed line (used for peers' frontiers).
    pub dashed: bool,
}

/// A whole plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// Title above the plot.
    pub title: String,
    /// Left end of the recall axis (the right end is 1).
    pub x_min: f64,
    /// The lines.
    pub series: Vec<Series>,
}

/// The Pareto frontier of `(recall, qps)` points as ann-benchmarks computes it: sorted by
/// QPS from the fastest, a point is kept when its recall beats every faster point's.
/// Returned in increasing recall order.
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    p.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.total_cmp(&a.0)));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for pt in p {
        if out.last().is_none_or(|last| pt.0 > last.0) {
            out.push(pt);
        }
    }
    out
}

/// matplotlib's default ("tab10") colours, as ann-benchmarks uses.
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

const W: f64 = 900.0;
const H: f64 = 560.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 50.0;
const RIGHT: f64 = 660.0;
const BOTTOM: f64 = 500.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// SVG for marker number `m` centred at `(x, y)`.
fn marker(m: usize, x: f64, y: f64, color: &str) -> String {
    let r = 4.0;
    let fill = format!("fill=\"{color}\" stroke=\"{color}\"");
    match m % 6 {
        0 => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" {fill}/>"),
        1 => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{}\" height=\"{}\" {fill}/>",
            x - r,
            y - r,
            2.0 * r,
            2.0 * r
        ),
        2 => format!(
            "<path d=\"M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z\" {fill}/>",
            y - r - 1.0,
            x + r + 1.0,
            y + r,
            x - r - 1.0,
            y + r
        ),
        3 => format!(
            "<path d=\"M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z\" {fill}/>",
            y - r - 1.0,
            x + r + 1.0,
            y + r + 1.0,
            x - r - 1.0
        ),
        4 => format!(
            "<path d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\" \
             stroke=\"{color}\" stroke-width=\"2\"/>",
            x - r,
            y - r,
            x + r,
            y + r,
            x - r,
            y + r,
            x + r,
            y - r
        ),
        _ => format!(
            "<path d=\"M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z\" {fill}/>",
            y + r + 1.0,
            x + r + 1.0,
            y - r,
            x - r - 1.0,
            y - r
        ),
    }
}

/// Tick label for a power of ten.
fn decade_label(e: i32) -> String {
    if (0..=6).contains(&e) {
        format!("{}", 10u64.pow(e as u32))
    } else {
        format!("1e{e}")
    }
}

/// Renders the plot as a complete SVG document.
pub fn render(plot: &Plot) -> String {
    let (x0, x1) = (plot.x_min.clamp(0.0, 0.99), 1.0);
    let visible: Vec<f64> = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| *x >= x0 - 1e-9 && *y > 0.0 && y.is_finite())
        .map(|p| p.1)
        .collect();
    let (lo, hi) = if visible.is_empty() {
        (0, 1)
    } else {
        let min = visible.iter().copied().fold(f64::INFINITY, f64::min);
        let max = visible.iter().copied().fold(0.0, f64::max);
        let lo = min.log10().floor() as i32;
        (lo, (max.log10().ceil() as i32).max(lo + 1))
    };
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - (y.log10() - lo as f64) / (hi - lo) as f64 * (BOTTOM - TOP);

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<defs><clipPath id=\"area\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\
         </clipPath></defs>",
        LEFT - 6.0,
        TOP - 6.0,
        RIGHT - LEFT + 12.0,
        BOTTOM - TOP + 12.0
    );
    // Grid and ticks: minor lines at 2..9 x 10^e, major lines at each decade.
    for e in lo..hi {
        for m in 2..10 {
            let y = py(m as f64 * 10f64.powi(e));
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/>"
            );
        }
    }
    for e in lo..=hi {
        let y = py(10f64.powi(e));
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#a6a6a6\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            decade_label(e)
        );
    }
    let step = [0.01, 0.02, 0.05, 0.1, 0.2]
        .into_iter()
        .find(|st| (x1 - x0) / st <= 12.0)
        .unwrap_or(0.2);
    let mut i = (x0 / step).ceil() as i64;
    while (i as f64) * step <= x1 + 1e-9 {
        let v = i as f64 * step;
        let x = px(v);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\" stroke=\"#a6a6a6\"/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v:.2}</text>",
            BOTTOM + 18.0
        );
        i += 1;
    }
    let _ = writeln!(
        s,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>",
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    // Labels.
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"28\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\">Recall@10</text>\n\
         <text transform=\"translate(22 {:.1}) rotate(-90)\" text-anchor=\"middle\" \
         font-size=\"13\">Queries per second, one thread (1/s)</text>",
        (LEFT + RIGHT) / 2.0,
        esc(&plot.title),
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 42.0,
        (TOP + BOTTOM) / 2.0
    );
    // Lines and markers.
    let _ = writeln!(s, "<g clip-path=\"url(#area)\">");
    for (i, ser) in plot.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = ser
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && *y > 0.0 && y.is_finite())
            .map(|&(x, y)| (px(x), py(y)))
            .collect();
        if pts.len() > 1 {
            let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let dash = if ser.dashed {
                " stroke-dasharray=\"6 3\""
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"{dash}/>",
                d.join(" ")
            );
        }
        for (x, y) in pts {
            let _ = writeln!(s, "{}", marker(i, x, y, color));
        }
    }
    let _ = writeln!(s, "</g>");
    // Legend, right of the plot.
    let row = 18.0;
    let mut y = ((TOP + BOTTOM) / 2.0 - row * plot.series.len() as f64 / 2.0).max(TOP) + 9.0;
    for (i, ser) in plot.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let x = RIGHT + 16.0;
        let dash = if ser.dashed {
            " stroke-dasharray=\"6 3\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" \
             stroke-width=\"1.5\"{dash}/>\n{}\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 28.0,
            marker(i, x + 14.0, y, color),
            x + 36.0,
            y + 4.0,
            esc(&ser.label)
        );
        y += row;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_keeps_only_undominated_points() {
        let pts = [
            (0.5, 1000.0),
            (0.6, 900.0),
            (0.55, 800.0),
            (0.9, 100.0),
            (0.8, 50.0),
        ];
        assert_eq!(
            pareto_frontier(&pts),
            vec![(0.5, 1000.0), (0.6, 900.0), (0.9, 100.0)]
        );
    }

    #[test]
    fn renders_a_complete_svg_with_escaped_labels() {
        let svg = render(&Plot {
            title: "a & b".into(),
            x_min: 0.5,
            series: vec![Series {
                label: "x<y".into(),
                points: vec![(0.6, 300.0), (0.95, 40.0), (0.2, 1e6)],
                dashed: true,
            }],
        });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &amp; b") && svg.contains("x&lt;y"));
        assert!(svg.contains("<polyline") && svg.contains(">1000<"));
    }
}
