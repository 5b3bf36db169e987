//! The dashboard's chart: logins per day as stacked bars (successes, failures), drawn on
//! the server as inline SVG. No script and no inline style (the page's CSP forbids both):
//! colours are presentation attributes. The SVG carries a `<title>` and `<desc>` for
//! screen readers, and the page shows the same figures in a table.

use hallpass_core::admin::DayOutcomes;
use std::fmt::Write as _;
use time::macros::format_description;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
/// Room for the value labels, wide enough for four digits at the phone's larger font
/// (see `.chart text` in admin.css).
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 34.0;
/// Successes: a blue with 7:1 contrast on white; failures: a dark red (6.5:1).
const SUCCESS: &str = "#1d4ed8";
const FAILURE: &str = "#b91c1c";

/// The top of the value axis: `max` rounded up to at most five steps of 1, 2 or 5 × 10ⁿ.
fn nice_max(max: u64) -> u64 {
    let max = max.max(1);
    let mut unit = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = unit * m;
            if max.div_ceil(step) <= 5 {
                return max.div_ceil(step) * step;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

/// The chart of `days` (oldest first) under the accessible name `title`.
pub(crate) fn logins_svg(title: &str, days: &[DayOutcomes]) -> String {
    let total_ok: u64 = days.iter().map(DayOutcomes::successes).sum();
    let total_failed: u64 = days.iter().map(DayOutcomes::failures).sum();
    let max = nice_max(days.iter().map(|d| d.successes() + d.failures()).max().unwrap_or(0));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        s,
        r#"<title id="chart-title">{}</title><desc id="chart-desc">{} successful and {} failed logins in {} days; the table below lists each day.</desc>"#,
        crate::html::escape(title),
        total_ok,
        total_failed,
        days.len()
    );
    // Grid lines and value labels at 0, max/2, max.
    let steps: &[u64] = if max.is_multiple_of(2) { &[0, 1, 2] } else { &[0, 2] };
    for &i in steps {
        let v = max * i / 2;
        let y = TOP + plot_h - plot_h * (v as f64) / (max as f64);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d1d5db" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#374151">{v}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let ok_h = plot_h * d.successes() as f64 / max as f64;
        let fail_h = plot_h * d.failures() as f64 / max as f64;
        let base = TOP + plot_h;
        let day = d.day.format(format_description!("[year]-[month]-[day]")).unwrap_or_default();
        if ok_h > 0.0 {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{ok_h:.1}" fill="{SUCCESS}"><title>{day}: {} successful</title></rect>"#,
                base - ok_h,
                d.successes()
            );
        }
        if fail_h > 0.0 {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{fail_h:.1}" fill="{FAILURE}"><title>{day}: {} failed</title></rect>"#,
                base - ok_h - fail_h,
                d.failures()
            );
        }
        // A label a week, counted back from the last day (today), which always has one.
        // Today's is anchored at its end so that it stays inside the picture at any size.
        if (days.len() - 1 - i).is_multiple_of(7) {
            let label = d.day.format(format_description!("[month]-[day]")).unwrap_or_default();
            let (lx, anchor) =
                if i + 1 == days.len() { (WIDTH - RIGHT, "end") } else { (x + bar / 2.0, "middle") };
            let _ = write!(
                s,
                r##"<text x="{lx:.1}" y="{:.1}" font-size="11" text-anchor="{anchor}" fill="#374151">{label}</text>"##,
                HEIGHT - 8.0
            );
        }
    }
    if total_ok + total_failed == 0 {
        // An empty plot looks broken; say that there is nothing to draw.
        let _ = write!(
            s,
            r##"<text class="empty" x="{:.1}" y="{:.1}" font-size="16" text-anchor="middle" fill="#374151">No logins yet in these {} days</text>"##,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0,
            days.len()
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#6b7280" stroke-width="1"/></svg>"##,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn chart_is_svg_with_a_title_and_bars() {
        let day = |n: i64, ok: u64, bad: u64| DayOutcomes {
            day: time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(n),
            counts: BTreeMap::from([("success", ok), ("wrong_password", bad)]),
        };
        let svg = logins_svg("Logins <all>", &[day(0, 3, 1), day(1, 0, 0), day(2, 10, 2)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title id=\"chart-title\">Logins &lt;all&gt;</title>"));
        assert!(svg.contains("13 successful and 3 failed"));
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(!svg.contains("style="), "no inline style under the CSP");
        assert!(!svg.contains("No logins yet"));
        let empty = logins_svg("Logins", &[day(0, 0, 0), day(1, 0, 0)]);
        assert!(empty.contains("No logins yet in these 2 days"), "{empty}");
        for (max, want) in [(0, 1), (1, 1), (4, 4), (7, 8), (13, 15), (95, 100), (1234, 1500)] {
            assert_eq!(nice_max(max), want, "{max}");
        }
    }
}
