//! Charts as inline SVG, drawn on the server: no script and no chart
//! library to vendor, and they print. Text is escaped; sizes are fixed and
//! the SVG scales with its box.

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A series of a line chart: name, colour, one value per label.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<u64>,
}

/// A line chart of series over the same labels (times), with a legend.
pub fn lines(labels: &[String], series: &[Series<'_>]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 240.0;
    const L: f64 = 48.0; // left margin for the axis
    const B: f64 = 28.0; // bottom margin for labels
    const T: f64 = 24.0; // top margin for the legend
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = labels.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            L + (W - L - 10.0) / 2.0
        } else {
            L + (W - L - 10.0) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: u64| T + (H - T - B) * (1.0 - v as f64 / max as f64);
    let mut svg =
        format!(r#"<svg viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg" role="img">"#);
    // Grid lines and their values.
    for k in 0..=4 {
        let v = max * k / 4;
        let yy = y(v);
        svg.push_str(&format!(
            r##"<line x1="{L}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e7ec"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
            W - 10.0,
            L - 6.0,
            yy + 4.0
        ));
    }
    // At most ~8 time labels.
    let step = n.div_ceil(8).max(1);
    for (i, label) in labels.iter().enumerate().step_by(step) {
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            H - 8.0,
            esc(label)
        ));
    }
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            points.join(" ")
        ));
        for (i, v) in s.values.iter().enumerate() {
            svg.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"><title>{}: {v}</title></circle>"#,
                x(i),
                y(*v),
                s.color,
                esc(labels.get(i).map_or("", String::as_str))
            ));
        }
        let lx = L + 130.0 * k as f64;
        svg.push_str(&format!(
            r#"<rect x="{lx}" y="6" width="12" height="4" fill="{}"/><text x="{}" y="12">{} ({})</text>"#,
            s.color,
            lx + 16.0,
            esc(s.name),
            s.values.iter().sum::<u64>()
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, largest first, with their values.
pub fn bars(rows: &[(String, u64)], color: &str) -> String {
    let rows: Vec<(String, String, u64)> = rows
        .iter()
        .map(|(label, v)| (label.clone(), label.clone(), *v))
        .collect();
    bars_titled(&rows, color)
}

/// Columns a label may take: a CJK character takes two, others one.
const LABEL_COLUMNS: usize = 24;

/// `label`, cut with `…` to [`LABEL_COLUMNS`].
fn cut(label: &str) -> String {
    let columns = |c: char| if c.is_ascii() { 1 } else { 2 };
    if label.chars().map(columns).sum::<usize>() <= LABEL_COLUMNS {
        return label.to_string();
    }
    let mut used = 1; // the `…`
    let mut short: String = label
        .chars()
        .take_while(|&c| {
            used += columns(c);
            used <= LABEL_COLUMNS
        })
        .collect();
    short.push('…');
    short
}

/// [`bars`] whose rows are (label, title on hover, value), e.g. a
/// department's name with its name and code on hover.
pub fn bars_titled(rows: &[(String, String, u64)], color: &str) -> String {
    // Narrow, so that in a third of the page the text is still legible.
    const W: f64 = 380.0;
    const ROW: f64 = 24.0;
    // Twelve CJK characters at 11px.
    const LABEL: f64 = 140.0;
    let h = (rows.len().max(1) as f64) * ROW + 6.0;
    let max = rows.iter().map(|(_, _, v)| *v).max().unwrap_or(0).max(1);
    let mut svg =
        format!(r#"<svg viewBox="0 0 {W} {h}" xmlns="http://www.w3.org/2000/svg" role="img">"#);
    for (i, (label, title, v)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * ROW;
        // Long labels are cut to fit the label column (the title shows all).
        let short = cut(label);
        let width = (W - LABEL - 60.0) * *v as f64 / max as f64;
        svg.push_str(&format!(
            r#"<text x="{}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text><rect x="{LABEL}" y="{y:.1}" width="{width:.1}" height="{}" rx="2" fill="{color}"/><text x="{:.1}" y="{:.1}">{v}</text>"#,
            LABEL - 6.0,
            y + 14.0,
            esc(title),
            esc(&short),
            ROW - 8.0,
            LABEL + width + 4.0,
            y + 14.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_their_text_and_draw_every_value() {
        let svg = bars(
            &[("<sh-zwfw>".into(), 10), ("xh-zwfw".into(), 5)],
            "#1f5fa8",
        );
        assert!(svg.contains("&lt;sh-zwfw&gt;") && !svg.contains("<sh-zwfw>"));
        assert_eq!(svg.matches("<rect").count(), 2);
        let svg = lines(
            &["08:00".into(), "09:00".into()],
            &[Series {
                name: "lookups",
                color: "#b3261e",
                values: vec![3, 7],
            }],
        );
        assert!(svg.contains("lookups (10)"));
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn long_names_are_cut_and_titled_in_full() {
        let name = "徐汇区天平路街道社区事务受理服务中心";
        let svg = bars_titled(
            &[(name.into(), format!("{name} (xh-tpl-sq)"), 3)],
            "#1f5fa8",
        );
        assert!(
            svg.contains(&format!("<title>{name} (xh-tpl-sq)</title>")),
            "{svg}"
        );
        assert!(svg.contains("徐汇区天平路街道社区事…<"), "{svg}");
        assert_eq!(cut("上海市公安局"), "上海市公安局");
        assert_eq!(cut("sh-zwfw"), "sh-zwfw");
        assert_eq!(cut(&"a".repeat(30)), format!("{}…", "a".repeat(23)));
    }
}
