//! Inline SVG charts for the KPI report, written by hand.
//!
//! Every builder returns one complete `<svg>` element to paste into the HTML report.
//! The choices behind them:
//!
//! - **Scales with the page.** A fixed 720-unit-wide `viewBox` with `width="100%"`:
//!   the browser derives the height from the aspect ratio, on screen and in print.
//! - **No ids.** Several charts share one page and duplicate ids are invalid HTML
//!   that makes browsers resolve references across charts, so nothing uses
//!   gradients, clip paths, patterns or `<marker>`; a colour legend is drawn as
//!   discrete swatches instead of a gradient.
//! - **Readable in greyscale.** Series differ by lightness, dash pattern and marker
//!   shape, not by hue alone; the heatmap uses a single-hue ramp whose lightness
//!   falls monotonically with the value.
//! - **Deterministic.** Coordinates are printed with at most one decimal and nothing
//!   is random, so snapshot tests are stable.
//! - **Safe.** No script, no external font or file; every text that comes from the
//!   caller is XML-escaped, so a segment named `<script>` is shown as text.
//! - **Honest about gaps.** A `None` is a gap in a line, a blank heatmap cell or a
//!   "no data" note on a bar, never a zero; a chart without any data is an SVG that
//!   says "no data" in the report's locale.
//!
//! Callers pass the value formatter ([`Format`]), usually built from
//! [`Locale`]: `&|v| locale.percent(Some(v), 0)`. Axis ticks
//! are "nice" numbers (1, 2 or 5 × 10^k, see [`nice_ticks`]); pick a formatter with
//! enough decimals for them (a rate axis up to 1.2% needs one decimal).

use super::format::Locale;

/// Formats a data value for tick labels, data labels and tooltips.
pub type Format<'a> = &'a dyn Fn(f64) -> String;

/// The width of every chart in SVG user units; heights depend on the content.
const WIDTH: f64 = 720.0;
/// Outer padding.
const PAD: f64 = 12.0;
/// Base font size.
const FONT_SIZE: f64 = 12.0;
/// A generic system font stack: nothing to download, good everywhere.
const FONT_FAMILY: &str = "system-ui, -apple-system, &quot;Segoe UI&quot;, Roboto, sans-serif";
const TEXT: &str = "#1a1a1a";
const MUTED: &str = "#595959";
const AXIS: &str = "#8c8c8c";
const GRID: &str = "#e3e3e3";

/// How one series is drawn: hue, lightness, dash and marker all differ so that
/// series stay apart in greyscale print.
struct SeriesStyle {
    color: &'static str,
    dash: Option<&'static str>,
    marker: Marker,
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

const STYLES: [SeriesStyle; 5] = [
    SeriesStyle { color: "#1f4e79", dash: None, marker: Marker::Circle },
    SeriesStyle { color: "#d9711c", dash: Some("7 4"), marker: Marker::Square },
    SeriesStyle { color: "#2a9d8f", dash: Some("2 3"), marker: Marker::Triangle },
    SeriesStyle { color: "#7a5195", dash: Some("9 3 2 3"), marker: Marker::Diamond },
    SeriesStyle { color: "#7f7f7f", dash: Some("12 4"), marker: Marker::Circle },
];

fn style(index: usize) -> &'static SeriesStyle {
    &STYLES[index % STYLES.len()]
}

// ---------------------------------------------------------------------------
// Input types
// ---------------------------------------------------------------------------

/// One row of a cohort heatmap: an acquisition cohort and its values by months
/// since acquisition (index 0 = the acquisition month).
#[derive(Debug, Clone, PartialEq)]
pub struct CohortRow {
    /// Row label, e.g. `"2025-01"` or `"Jan 2025"`.
    pub label: String,
    /// Value for months since acquisition 0, 1, …; `None` (not yet observed) is blank.
    pub values: Vec<Option<f64>>,
}

/// A cohort retention heatmap: colour by a rate in 0..1.
pub struct CohortHeatmap<'a> {
    /// Chart title (also its accessible name).
    pub title: String,
    /// Cohorts, top to bottom.
    pub rows: Vec<CohortRow>,
    /// Label above the column numbers, e.g. "Months since acquisition".
    pub x_label: String,
    /// Label above the row labels, e.g. "Cohort".
    pub y_label: String,
    /// Formats cell values and the colour legend, e.g. a percent.
    pub format: Format<'a>,
    /// Locale of the "no data" text.
    pub locale: Locale,
}

/// A named series of values, one per category or x position.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Values in category order; `None` is a gap. Missing trailing values are gaps,
    /// extra values are ignored.
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// The value at position `i`, if it is a finite number.
    fn at(&self, i: usize) -> Option<f64> {
        finite(self.values.get(i).copied().flatten())
    }
}

/// A line chart over labelled x positions (e.g. 13 months).
pub struct LineChart<'a> {
    /// Chart title (also its accessible name).
    pub title: String,
    /// One label per x position, left to right.
    pub x_labels: Vec<String>,
    /// Series to draw; a legend is shown when there are several.
    pub series: Vec<Series>,
    /// Label under the x axis; empty for none.
    pub x_label: String,
    /// Label of the value axis with its unit, e.g. "Retention rate (%)".
    pub y_label: String,
    /// Formats ticks and tooltips.
    pub format: Format<'a>,
    /// Start the value axis at zero (right for counts, money and most rates).
    pub include_zero: bool,
    /// Locale of the "no data" text.
    pub locale: Locale,
}

/// A horizontal bar chart: one bar per category and series, grouped by category.
pub struct BarChart<'a> {
    /// Chart title (also its accessible name).
    pub title: String,
    /// Category labels, top to bottom.
    pub categories: Vec<String>,
    /// One or more series on the same axis (to compare customers with revenue, pass
    /// both as shares); a legend is shown when there are several.
    pub series: Vec<Series>,
    /// Label of the value axis with its unit.
    pub value_label: String,
    /// Formats ticks and the labels at the bar ends.
    pub format: Format<'a>,
    /// Locale of the "no data" texts.
    pub locale: Locale,
}

/// One histogram bin: `[start, end)` with its count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    /// Lower edge.
    pub start: f64,
    /// Upper edge, greater than `start`.
    pub end: f64,
    /// Number of observations in the bin.
    pub count: u64,
}

/// A histogram of one distribution.
pub struct Histogram<'a> {
    /// Chart title (also its accessible name).
    pub title: String,
    /// The bins, e.g. computed in SQL. Bins with a non-finite edge or `end <= start`
    /// are skipped.
    pub bins: Vec<Bin>,
    /// Label of the value axis with its unit; say so here when the edge bins hold
    /// values beyond a given range.
    pub x_label: String,
    /// Label of the count axis, e.g. "Customers".
    pub y_label: String,
    /// Formats the value axis ticks and tooltips.
    pub format: Format<'a>,
    /// Locale of counts and the "no data" text.
    pub locale: Locale,
}

/// A group's distribution summary for [`box_or_range_by_group`]. With `q1` and `q3`
/// a box is drawn; without them, the `low`..`high` range only.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// Group label, e.g. an RFM segment.
    pub group: String,
    /// Lower whisker end, e.g. the minimum or p10.
    pub low: Option<f64>,
    /// Lower box edge, e.g. p25.
    pub q1: Option<f64>,
    /// The median.
    pub median: Option<f64>,
    /// Upper box edge, e.g. p75.
    pub q3: Option<f64>,
    /// Upper whisker end, e.g. p90.
    pub high: Option<f64>,
}

/// Legend texts of a box chart; they say which statistics the parts show.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxLegend {
    /// E.g. "p25–p75".
    pub box_label: String,
    /// E.g. "median".
    pub median_label: String,
    /// E.g. "min–p90".
    pub whisker_label: String,
}

/// Box plots (or ranges) of one value by group, drawn horizontally.
pub struct BoxChart<'a> {
    /// Chart title (also its accessible name).
    pub title: String,
    /// Groups, top to bottom.
    pub groups: Vec<GroupStats>,
    /// Label of the value axis with its unit.
    pub value_label: String,
    /// Legend texts.
    pub legend: BoxLegend,
    /// Formats ticks, median labels and tooltips.
    pub format: Format<'a>,
    /// Locale of the "no data" texts.
    pub locale: Locale,
}

/// One step curve, e.g. a Kaplan–Meier cumulative share of one cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    /// Legend name.
    pub name: String,
    /// `(x, y)` points; the value `y` holds from `x` until the next point.
    pub points: Vec<(f64, f64)>,
    /// Where the curve ends (e.g. the last day observed before censoring); `None`
    /// ends it at the last point.
    pub end: Option<f64>,
}

/// A labelled vertical reference line, e.g. at 30 days.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Position on the x axis.
    pub at: f64,
    /// Label drawn at its top, e.g. "30 days".
    pub label: String,
}

/// Step curves over a numeric x axis (e.g. days since acquisition).
pub struct StepChart<'a> {
    /// Chart title (also its accessible name).
    pub title: String,
    /// Curves; a legend is shown when there are several.
    pub series: Vec<StepSeries>,
    /// Label of the x axis with its unit, e.g. "Days since acquisition".
    pub x_label: String,
    /// Label of the value axis, e.g. "Share with a second purchase".
    pub y_label: String,
    /// Formats the value axis (e.g. a percent).
    pub format: Format<'a>,
    /// Vertical reference lines.
    pub references: Vec<Reference>,
    /// Locale of x-axis numbers and the "no data" text.
    pub locale: Locale,
}

// ---------------------------------------------------------------------------
// Public helpers
// ---------------------------------------------------------------------------

/// "Nice" axis ticks covering `[min, max]`: evenly spaced multiples of 1, 2 or 5 ×
/// 10^k, about `target` intervals, the first at or below `min` and the last at or
/// above `max`. Values are exact decimals where possible (0.3, not
/// 0.30000000000000004). A zero-width range is widened to include zero (or to 0..1
/// at zero). Non-finite input gives no ticks.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    if !min.is_finite() || !max.is_finite() {
        return Vec::new();
    }
    let (mut lo, mut hi) = if min <= max { (min, max) } else { (max, min) };
    if lo == hi {
        // A flat series still needs an axis: span zero and the value.
        if lo == 0.0 {
            hi = 1.0;
        } else {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mut exponent = raw.log10().floor();
    // log10 may land one ulp off at exact powers of ten; settle 10^e <= raw < 10^(e+1)
    // so that every platform picks the same step.
    if 10f64.powf(exponent) > raw {
        exponent -= 1.0;
    } else if 10f64.powf(exponent + 1.0) <= raw {
        exponent += 1.0;
    }
    let error = raw / 10f64.powf(exponent);
    // Round the raw step to 1, 2, 5 or 10 at the geometric midpoints, so the
    // number of intervals stays near the target.
    let mantissa: i64 = if error >= 50f64.sqrt() {
        exponent += 1.0;
        1
    } else if error >= 10f64.sqrt() {
        5
    } else if error >= 2f64.sqrt() {
        2
    } else {
        1
    };
    // Finite spans keep the exponent within about ±330; the clamp keeps the
    // negation in `decimal` safe when the span overflowed to infinity.
    let exponent = exponent.clamp(-400.0, 400.0) as i32;
    let step = decimal(mantissa, exponent);
    if !(step.is_finite() && step > 0.0) {
        // Only for spans beyond f64 (e.g. -MAX..MAX): fall back to the ends.
        return vec![lo, hi];
    }
    let first = snap(lo / step, f64::floor);
    let last = snap(hi / step, f64::ceil);
    if !first.is_finite() || !last.is_finite() || last - first > 1000.0 {
        // Spans tiny against their magnitude would need thousands of ticks.
        return vec![lo, hi];
    }
    let (first, last) = (first as i64, last as i64);
    (first..=last).map(|i| decimal(i * mantissa, exponent)).collect()
}

/// `units` × 10^`exponent`, dividing for negative exponents so that the result is
/// the double closest to the decimal.
fn decimal(units: i64, exponent: i32) -> f64 {
    if exponent >= 0 { units as f64 * 10f64.powi(exponent) } else { units as f64 / 10f64.powi(-exponent) }
}

/// Rounds `x` with `round` unless it is an integer up to floating-point noise.
fn snap(x: f64, round: fn(f64) -> f64) -> f64 {
    let nearest = x.round();
    if (x - nearest).abs() < 1e-9 { nearest } else { round(x) }
}

// ---------------------------------------------------------------------------
// SVG primitives
// ---------------------------------------------------------------------------

/// Escapes text for XML content and attribute values (the HTML escaping of the report
/// filters, which SVG shares), after dropping the control characters XML 1.0 does not
/// allow at all.
fn escape(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => None,
            c => Some(c),
        })
        .collect();
    super::escape::escape_html(&cleaned)
}

/// A coordinate with at most one decimal and never "-0".
fn num(v: f64) -> String {
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    if s == "-0" { "0".to_string() } else { s.to_string() }
}

/// Estimated rendered width of `s`: system fonts average about 0.58 em per
/// character; 0.6 errs on the side of room.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

/// Shortens `s` to at most `max_width` units, ending in "…".
fn truncate(s: &str, max_width: f64, size: f64) -> String {
    if text_width(s, size) <= max_width {
        return s.to_string();
    }
    let keep = ((max_width / (size * 0.6)) as usize).saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

/// Text alignment relative to the anchor point.
#[derive(Clone, Copy)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// Accumulates the elements of one chart.
struct Canvas {
    body: String,
}

impl Canvas {
    fn new() -> Self {
        Self { body: String::new() }
    }

    /// A text whose vertical centre is at `y`. `attrs` holds only fixed attributes
    /// from this module; `content` is escaped.
    fn text(&mut self, x: f64, y: f64, anchor: Anchor, attrs: &str, content: &str) {
        self.body.push_str(&format!(
            r#"<text x="{}" y="{}" dy="0.35em" text-anchor="{}"{attrs}>{}</text>"#,
            num(x),
            num(y),
            anchor.as_str(),
            escape(content)
        ));
    }

    /// Like [`Canvas::text`], truncated to `max_width` with the full text as tooltip.
    fn label(&mut self, x: f64, y: f64, anchor: Anchor, max_width: f64, content: &str) {
        let shown = truncate(content, max_width, FONT_SIZE);
        if shown == content {
            self.text(x, y, anchor, "", content);
        } else {
            self.body.push_str(&format!(
                r#"<text x="{}" y="{}" dy="0.35em" text-anchor="{}"><title>{}</title>{}</text>"#,
                num(x),
                num(y),
                anchor.as_str(),
                escape(content),
                escape(&shown)
            ));
        }
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) {
        self.body.push_str(&format!(
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}"{attrs}/>"#,
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        ));
    }

    /// A rectangle; `tip`, when given, becomes its tooltip.
    fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), attrs: &str, tip: Option<&str>) {
        let open = format!(
            r#"<rect x="{}" y="{}" width="{}" height="{}"{attrs}"#,
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0))
        );
        self.body.push_str(&open);
        self.close(tip, "rect");
    }

    /// Ends an element opened without its closing `>`, with an optional tooltip.
    fn close(&mut self, tip: Option<&str>, tag: &str) {
        match tip {
            Some(t) => self.body.push_str(&format!("><title>{}</title></{tag}>", escape(t))),
            None => self.body.push_str("/>"),
        }
    }

    fn marker(&mut self, marker: Marker, (x, y): (f64, f64), color: &str, tip: Option<&str>) {
        // A white outline keeps markers apart where lines cross.
        let paint = format!(r##" fill="{color}" stroke="#fff" stroke-width="1""##);
        let (tag, open) = match marker {
            Marker::Circle => ("circle", format!(r#"<circle cx="{}" cy="{}" r="3.8"{paint}"#, num(x), num(y))),
            Marker::Square => {
                ("rect", format!(r#"<rect x="{}" y="{}" width="7" height="7"{paint}"#, num(x - 3.5), num(y - 3.5)))
            }
            Marker::Triangle => (
                "path",
                format!(
                    r#"<path d="M{} {}L{} {}L{} {}Z"{paint}"#,
                    num(x),
                    num(y - 4.5),
                    num(x + 4.5),
                    num(y + 3.5),
                    num(x - 4.5),
                    num(y + 3.5)
                ),
            ),
            Marker::Diamond => (
                "path",
                format!(
                    r#"<path d="M{} {}L{} {}L{} {}L{} {}Z"{paint}"#,
                    num(x),
                    num(y - 4.8),
                    num(x + 4.8),
                    num(y),
                    num(x),
                    num(y + 4.8),
                    num(x - 4.8),
                    num(y)
                ),
            ),
        };
        self.body.push_str(&open);
        self.close(tip, tag);
    }

    /// Draws the title; returns the y below it.
    fn title(&mut self, title: &str) -> f64 {
        let shown = truncate(title, WIDTH - 2.0 * PAD, 15.0);
        self.text(PAD, 20.0, Anchor::Start, r#" font-size="15" font-weight="600""#, &shown);
        36.0
    }

    /// Wraps the body into the `<svg>` element.
    fn finish(self, title: &str, height: f64) -> String {
        format!(
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" "#,
                r#"role="img" font-family="{font}" font-size="{size}" fill="{text}">"#,
                "<title>{title}</title>{body}</svg>"
            ),
            w = num(WIDTH),
            h = num(height.ceil()),
            font = FONT_FAMILY,
            size = num(FONT_SIZE),
            text = TEXT,
            title = escape(title),
            body = self.body,
        )
    }
}

/// A chart without data: its title and the locale's "no data".
fn no_data(title: &str, locale: Locale) -> String {
    let mut c = Canvas::new();
    let top = c.title(title);
    c.rect(
        (PAD, top),
        (WIDTH - 2.0 * PAD, 64.0),
        &format!(r#" fill="none" stroke="{GRID}" stroke-dasharray="4 4""#),
        None,
    );
    c.text(
        WIDTH / 2.0,
        top + 32.0,
        Anchor::Middle,
        &format!(r#" fill="{MUTED}" font-style="italic""#),
        locale.no_data(),
    );
    c.finish(title, top + 64.0 + PAD)
}

/// A legend entry's key.
enum Key {
    /// Line with marker of series style `i`.
    Line(usize),
    /// Line without marker of series style `i` (step curves have no markers).
    Stroke(usize),
    /// Filled square.
    Swatch(&'static str),
    /// The box of a box plot.
    Box,
    /// The median bar of a box plot.
    Median,
    /// A whisker with end caps.
    Whisker,
}

/// Draws legend entries left to right from `y`, wrapping; returns the y below.
fn legend(c: &mut Canvas, entries: &[(Key, &str)], y: f64) -> f64 {
    const ROW: f64 = 20.0;
    const KEY: f64 = 24.0;
    let mut x = PAD;
    let mut row_y = y + ROW / 2.0;
    for (key, label) in entries {
        let label = truncate(label, 260.0, FONT_SIZE);
        let width = KEY + 6.0 + text_width(&label, FONT_SIZE) + 18.0;
        if x > PAD && x + width > WIDTH - PAD {
            x = PAD;
            row_y += ROW;
        }
        let (x0, x1, mid) = (x, x + KEY, x + KEY / 2.0);
        match key {
            Key::Line(i) => {
                let s = style(*i);
                c.line((x0, row_y), (x1, row_y), &stroke_attrs(s, 2.5));
                c.marker(s.marker, (mid, row_y), s.color, None);
            }
            Key::Stroke(i) => c.line((x0, row_y), (x1, row_y), &stroke_attrs(style(*i), 2.5)),
            Key::Swatch(color) => c.rect((x0 + 5.0, row_y - 6.0), (14.0, 12.0), &format!(r#" fill="{color}""#), None),
            Key::Box => c.rect((x0 + 2.0, row_y - 6.0), (KEY - 4.0, 12.0), BOX_ATTRS, None),
            Key::Median => c.line((mid, row_y - 7.0), (mid, row_y + 7.0), MEDIAN_ATTRS),
            Key::Whisker => {
                c.line((x0 + 2.0, row_y), (x1 - 2.0, row_y), WHISKER_ATTRS);
                c.line((x0 + 2.0, row_y - 4.0), (x0 + 2.0, row_y + 4.0), WHISKER_ATTRS);
                c.line((x1 - 2.0, row_y - 4.0), (x1 - 2.0, row_y + 4.0), WHISKER_ATTRS);
            }
        }
        c.text(x1 + 6.0, row_y, Anchor::Start, "", &label);
        x += width;
    }
    row_y + ROW / 2.0 + 4.0
}

fn stroke_attrs(s: &SeriesStyle, width: f64) -> String {
    let dash = s.dash.map(|d| format!(r#" stroke-dasharray="{d}""#)).unwrap_or_default();
    format!(r#" stroke="{}" stroke-width="{}" fill="none" stroke-linejoin="round"{dash}"#, s.color, num(width))
}

/// A linear map from data values to SVG coordinates.
#[derive(Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// A scale over the extent of `ticks` (which [`nice_ticks`] makes non-empty
    /// and strictly increasing for finite input).
    fn over(ticks: &[f64], r0: f64, r1: f64) -> Self {
        let d0 = ticks.first().copied().unwrap_or(0.0);
        let d1 = ticks.last().copied().unwrap_or(1.0);
        Self { d0, d1, r0, r1 }
    }

    fn at(self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            return self.r0;
        }
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Nice ticks whose labels are all distinct. A coarse formatter ("€1.2M") repeats
/// labels over a narrow range, so fewer, wider-spaced ticks are tried until the
/// labels differ (or two ticks are left).
fn axis_ticks(lo: f64, hi: f64, target: usize, format: Format) -> Vec<f64> {
    let mut ticks = nice_ticks(lo, hi, target);
    for fewer in (1..target).rev() {
        let mut labels: Vec<String> = ticks.iter().map(|&t| format(t)).collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.len() == ticks.len() {
            break;
        }
        ticks = nice_ticks(lo, hi, fewer);
    }
    ticks
}

/// The decimals needed to print ticks spaced `step` apart.
fn tick_decimals(ticks: &[f64]) -> usize {
    match ticks {
        [a, b, ..] if b > a => {
            let exponent = (b - a).log10().floor();
            if exponent < 0.0 { (-exponent) as usize } else { 0 }
        }
        _ => 0,
    }
}

/// Horizontal grid lines with value labels left of `left` (vertical value axis).
fn value_axis_y(c: &mut Canvas, ticks: &[f64], scale: Scale, (left, right): (f64, f64), format: Format) {
    for &t in ticks {
        let y = scale.at(t);
        let attrs = if t == 0.0 {
            format!(r#" stroke="{AXIS}" stroke-width="1""#)
        } else {
            format!(r#" stroke="{GRID}" stroke-width="1""#)
        };
        c.line((left, y), (right, y), &attrs);
        c.text(left - 6.0, y, Anchor::End, &format!(r#" fill="{MUTED}""#), &format(t));
    }
}

/// Vertical grid lines with value labels below `bottom` (horizontal value axis).
fn value_axis_x(c: &mut Canvas, ticks: &[f64], scale: Scale, (top, bottom): (f64, f64), format: Format) {
    let labels: Vec<String> = ticks.iter().map(|&t| format(t)).collect();
    let widest = labels.iter().map(|l| text_width(l, FONT_SIZE)).fold(0.0, f64::max);
    let spacing = match ticks {
        [a, b, ..] => (scale.at(*b) - scale.at(*a)).abs(),
        _ => f64::INFINITY,
    };
    let every = label_every(spacing, widest);
    for (i, (&t, label)) in ticks.iter().zip(&labels).enumerate() {
        let x = scale.at(t);
        let attrs = if t == 0.0 {
            format!(r#" stroke="{AXIS}" stroke-width="1""#)
        } else {
            format!(r#" stroke="{GRID}" stroke-width="1""#)
        };
        c.line((x, top), (x, bottom), &attrs);
        if i.is_multiple_of(every) {
            c.text(x, bottom + 12.0, Anchor::Middle, &format!(r#" fill="{MUTED}""#), label);
        }
    }
}

/// Show every n-th label so that labels `width` wide at `spacing` do not overlap.
fn label_every(spacing: f64, width: f64) -> usize {
    if spacing <= 0.0 || !spacing.is_finite() {
        return 1;
    }
    ((width + 8.0) / spacing).ceil().max(1.0) as usize
}

/// Widest of `labels` at the base font size.
fn widest(labels: impl IntoIterator<Item = String>) -> f64 {
    labels.into_iter().map(|l| text_width(&l, FONT_SIZE)).fold(0.0, f64::max)
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Min and max of the finite values, if any.
fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
    })
}

/// The axis label drawn above a vertical value axis, left-aligned with the chart.
fn axis_title(c: &mut Canvas, y: f64, label: &str) -> f64 {
    if label.is_empty() {
        return y;
    }
    c.text(
        PAD,
        y + 8.0,
        Anchor::Start,
        &format!(r#" fill="{MUTED}" font-weight="600""#),
        &truncate(label, WIDTH - 2.0 * PAD, FONT_SIZE),
    );
    y + 22.0
}

/// The axis label centred under a horizontal axis; returns the y below it.
fn axis_caption(c: &mut Canvas, (left, right): (f64, f64), y: f64, label: &str) -> f64 {
    if label.is_empty() {
        return y;
    }
    c.text(
        (left + right) / 2.0,
        y + 8.0,
        Anchor::Middle,
        &format!(r#" fill="{MUTED}" font-weight="600""#),
        &truncate(label, right - left, FONT_SIZE),
    );
    y + 20.0
}

// ---------------------------------------------------------------------------
// Cohort heatmap
// ---------------------------------------------------------------------------

/// ColorBrewer "Blues", without its near-white end so that a 0% cell still differs
/// from a blank (missing) one.
const RAMP: [(u8, u8, u8); 8] = [
    (0xde, 0xeb, 0xf7),
    (0xc6, 0xdb, 0xef),
    (0x9e, 0xca, 0xe1),
    (0x6b, 0xae, 0xd6),
    (0x42, 0x92, 0xc6),
    (0x21, 0x71, 0xb5),
    (0x08, 0x51, 0x9c),
    (0x08, 0x30, 0x6b),
];

/// The ramp colour at `t` in 0..1 (clamped) and whether text on it should be white.
fn ramp(t: f64) -> (String, bool) {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let pos = t * (RAMP.len() - 1) as f64;
    let i = (pos.floor() as usize).min(RAMP.len() - 2);
    let f = pos - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    let (r, g, bl) = (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2));
    // Relative luminance (sRGB approximated by gamma 2.2) decides the text colour.
    let lum = |x: u8| (f64::from(x) / 255.0).powf(2.2);
    let luminance = 0.2126 * lum(r) + 0.7152 * lum(g) + 0.0722 * lum(bl);
    (format!("#{r:02x}{g:02x}{bl:02x}"), luminance < 0.22)
}

/// A cohort × months-since-acquisition grid coloured by a rate in 0..1 (values
/// outside are clamped for colour, printed as they are). Values are printed in the
/// cells when they fit; every cell has a tooltip. Missing cells stay blank.
pub fn cohort_heatmap(chart: &CohortHeatmap) -> String {
    let any = chart.rows.iter().any(|r| r.values.iter().any(|v| finite(*v).is_some()));
    if !any {
        return no_data(&chart.title, chart.locale);
    }
    let mut c = Canvas::new();
    let y = c.title(&chart.title);
    let grid = Grid::of(chart);
    let mut y = grid.header(&mut c, chart, y);
    for row in &chart.rows {
        grid.row(&mut c, chart, row, y);
        y += Grid::CELL_H;
    }
    let y = grid.colour_legend(&mut c, chart.format, y + 14.0);
    c.finish(&chart.title, y + PAD)
}

/// Where a heatmap's cells go.
struct Grid {
    /// Width of the row labels.
    label_width: f64,
    /// Left edge of the first column.
    left: f64,
    /// Right edge of the last column.
    right: f64,
    columns: usize,
    cell_w: f64,
    /// Whether the formatted values fit in the cells.
    show_values: bool,
}

impl Grid {
    const CELL_H: f64 = 22.0;
    const VALUE_SIZE: f64 = 10.5;

    fn of(chart: &CohortHeatmap) -> Self {
        let columns = chart.rows.iter().map(|r| r.values.len()).max().unwrap_or(0);
        let label_width =
            widest(chart.rows.iter().map(|r| r.label.clone())).max(text_width(&chart.y_label, FONT_SIZE)).min(180.0);
        let left = PAD + label_width + 10.0;
        let cell_w = ((WIDTH - PAD - left) / columns as f64).min(56.0);
        let widest_value = chart
            .rows
            .iter()
            .flat_map(|r| r.values.iter().filter_map(|v| finite(*v)))
            .map(|v| text_width(&(chart.format)(v), Self::VALUE_SIZE))
            .fold(0.0, f64::max);
        let right = left + cell_w * columns as f64;
        Grid { label_width, left, right, columns, cell_w, show_values: widest_value + 4.0 <= cell_w }
    }

    /// The axis titles (x above the column numbers, y above the row labels) and the
    /// column numbers; returns the y below them.
    fn header(&self, c: &mut Canvas, chart: &CohortHeatmap, y: f64) -> f64 {
        let title = format!(r#" fill="{MUTED}" font-weight="600""#);
        c.text(self.left, y + 6.0, Anchor::Start, &title, &truncate(&chart.x_label, self.right - self.left, FONT_SIZE));
        let y = y + 22.0;
        c.text(PAD, y, Anchor::Start, &title, &truncate(&chart.y_label, self.label_width, FONT_SIZE));
        let every = label_every(self.cell_w, text_width(&self.columns.to_string(), 11.0));
        for k in (0..self.columns).step_by(every) {
            let x = self.left + (k as f64 + 0.5) * self.cell_w;
            c.text(x, y, Anchor::Middle, &format!(r#" fill="{MUTED}" font-size="11""#), &k.to_string());
        }
        y + 12.0
    }

    /// One cohort's label and cells, from `y`.
    fn row(&self, c: &mut Canvas, chart: &CohortHeatmap, row: &CohortRow, y: f64) {
        let (cell_w, cell_h) = (self.cell_w, Self::CELL_H);
        c.label(self.left - 8.0, y + cell_h / 2.0, Anchor::End, self.label_width, &row.label);
        for (k, value) in row.values.iter().enumerate() {
            let Some(v) = finite(*value) else { continue };
            let (fill, dark) = ramp(v);
            let x = self.left + k as f64 * cell_w;
            let text = (chart.format)(v);
            let tip = format!("{} · {} {k}: {text}", row.label, chart.x_label);
            let attrs = format!(r##" fill="{fill}" stroke="#fff" stroke-width="1""##);
            c.rect((x, y), (cell_w, cell_h), &attrs, Some(&tip));
            if self.show_values {
                let color = if dark { "#fff" } else { TEXT };
                let attrs = format!(r#" fill="{color}" font-size="{}""#, Self::VALUE_SIZE);
                c.text(x + cell_w / 2.0, y + cell_h / 2.0, Anchor::Middle, &attrs, &text);
            }
        }
    }

    /// The colour legend at `y`: discrete swatches (a gradient would need an id) from 0
    /// to 1; returns the y below it.
    fn colour_legend(&self, c: &mut Canvas, format: Format, y: f64) -> f64 {
        let steps = 10;
        let swatch = 26.0;
        for i in 0..steps {
            let (fill, _) = ramp((i as f64 + 0.5) / steps as f64);
            c.rect((self.left + i as f64 * swatch, y), (swatch, 10.0), &format!(r#" fill="{fill}""#), None);
        }
        for (t, anchor) in [(0.0, Anchor::Start), (0.5, Anchor::Middle), (1.0, Anchor::End)] {
            let x = self.left + t * swatch * steps as f64;
            c.text(x, y + 20.0, anchor, &format!(r#" fill="{MUTED}" font-size="11""#), &format(t));
        }
        y + 28.0
    }
}

// ---------------------------------------------------------------------------
// Line chart
// ---------------------------------------------------------------------------

/// One or more series over labelled x positions, with gaps for `None`, markers at
/// each point (a lone point between gaps stays visible) and tooltips.
pub fn line_chart(chart: &LineChart) -> String {
    let n = chart.x_labels.len();
    let Some((mut lo, mut hi)) = extent(chart.series.iter().flat_map(|s| (0..n).filter_map(|i| s.at(i)))) else {
        return no_data(&chart.title, chart.locale);
    };
    if chart.include_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let format = chart.format;
    let ticks = axis_ticks(lo, hi, 5, format);

    let mut c = Canvas::new();
    let mut y = c.title(&chart.title);
    if chart.series.len() > 1 {
        let entries: Vec<(Key, &str)> =
            chart.series.iter().enumerate().map(|(i, s)| (Key::Line(i), s.name.as_str())).collect();
        y = legend(&mut c, &entries, y);
    }
    y = axis_title(&mut c, y, &chart.y_label);

    let left = PAD + widest(ticks.iter().map(|&t| format(t))) + 8.0;
    let right = WIDTH - PAD;
    let (top, bottom) = (y + 6.0, y + 226.0);
    let scale = Scale::over(&ticks, bottom, top);
    value_axis_y(&mut c, &ticks, scale, (left, right), format);
    let xs = Positions::new(&chart.x_labels, left, right);
    xs.labels(&mut c, &chart.x_labels, bottom);
    c.line((left, bottom), (right, bottom), &format!(r#" stroke="{AXIS}""#));
    for (index, series) in chart.series.iter().enumerate() {
        line_series(&mut c, chart, index, series, &xs, scale);
    }
    let y = axis_caption(&mut c, (left, right), bottom + 26.0, &chart.x_label);
    c.finish(&chart.title, y + PAD)
}

/// The x coordinates of a line chart's labelled positions.
struct Positions {
    n: usize,
    left: f64,
    right: f64,
    /// Room left of the first position.
    inset: f64,
    /// Room right of the last position: its label is centred on it.
    inset_right: f64,
}

impl Positions {
    fn new(labels: &[String], left: f64, right: f64) -> Self {
        let inset = 14.0;
        // The last label is centred on the last point: keep it inside the chart.
        let inset_right = labels.last().map_or(inset, |l| (text_width(l, FONT_SIZE).min(120.0) / 2.0 + 2.0).max(inset));
        Positions { n: labels.len(), left, right, inset, inset_right }
    }

    fn at(&self, i: usize) -> f64 {
        if self.n <= 1 {
            (self.left + self.right) / 2.0
        } else {
            let width = self.right - self.left - self.inset - self.inset_right;
            self.left + self.inset + width * i as f64 / (self.n - 1) as f64
        }
    }

    /// The labels under the axis at `bottom`, as many as fit.
    fn labels(&self, c: &mut Canvas, labels: &[String], bottom: f64) {
        let spacing = if self.n > 1 { self.at(1) - self.at(0) } else { self.right - self.left };
        let every = label_every(spacing, widest(labels.iter().cloned()).min(120.0));
        for (i, label) in labels.iter().enumerate() {
            // Count from the right so that the latest period is always labelled.
            if (self.n - 1 - i).is_multiple_of(every) {
                c.label(self.at(i), bottom + 14.0, Anchor::Middle, 120.0, label);
            }
        }
    }
}

/// One series of a line chart, in series style `index`: its line, broken at gaps, and a
/// marker with a tooltip at each value.
fn line_series(c: &mut Canvas, chart: &LineChart, index: usize, series: &Series, xs: &Positions, scale: Scale) {
    let s = style(index);
    let mut path = String::new();
    let mut pen_down = false;
    for i in 0..xs.n {
        match series.at(i) {
            Some(v) => {
                path.push_str(&format!("{}{} {}", if pen_down { "L" } else { "M" }, num(xs.at(i)), num(scale.at(v))));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    c.body.push_str(&format!(r#"<path d="{path}"{}/>"#, stroke_attrs(s, 2.5)));
    for i in 0..xs.n {
        if let Some(v) = series.at(i) {
            let tip = format!("{} · {}: {}", series.name, chart.x_labels[i], (chart.format)(v));
            c.marker(s.marker, (xs.at(i), scale.at(v)), s.color, Some(&tip));
        }
    }
}

// ---------------------------------------------------------------------------
// Bar chart
// ---------------------------------------------------------------------------

/// Horizontal bars per category, grouped when there are several series, with the
/// formatted value at each bar's end and "no data" where a value is missing.
pub fn bar_chart(chart: &BarChart) -> String {
    let n = chart.categories.len();
    let Some((lo, hi)) = extent(chart.series.iter().flat_map(|s| (0..n).filter_map(|i| s.at(i)))) else {
        return no_data(&chart.title, chart.locale);
    };
    let format = chart.format;
    let ticks = axis_ticks(lo.min(0.0), hi.max(0.0), 5, format);

    let mut c = Canvas::new();
    let mut y = c.title(&chart.title);
    let groups = chart.series.len();
    if groups > 1 {
        let entries: Vec<(Key, &str)> =
            chart.series.iter().enumerate().map(|(i, s)| (Key::Swatch(style(i).color), s.name.as_str())).collect();
        y = legend(&mut c, &entries, y);
    }

    let label_width = widest(chart.categories.iter().cloned()).min(200.0);
    let left = PAD + label_width + 10.0;
    // Room for the value labels past the longest bar.
    let value_width = widest(
        chart
            .series
            .iter()
            .flat_map(|s| (0..n).map(|i| s.at(i)))
            .map(|v| v.map_or_else(|| chart.locale.no_data().to_string(), format)),
    );
    let right = WIDTH - PAD - value_width - 8.0;
    let bar_h = if groups > 1 { 14.0 } else { 18.0 };
    let group_h = bar_h * groups as f64 + 2.0 * (groups as f64 - 1.0);
    let gap = 12.0;
    let top = y + 4.0;
    let bottom = top + n as f64 * (group_h + gap);
    let scale = Scale::over(&ticks, left, right);
    value_axis_x(&mut c, &ticks, scale, (top, bottom), format);

    for (ci, category) in chart.categories.iter().enumerate() {
        let gy = top + gap / 2.0 + ci as f64 * (group_h + gap);
        c.label(left - 8.0, gy + group_h / 2.0, Anchor::End, label_width, category);
        for (si, series) in chart.series.iter().enumerate() {
            let bar = (gy + si as f64 * (bar_h + 2.0), bar_h);
            draw_bar(&mut c, chart, (ci, category), (si, series), bar, scale);
        }
    }
    let y = axis_caption(&mut c, (left, right), bottom + 24.0, &chart.value_label);
    c.finish(&chart.title, y + PAD)
}

/// The bar of `series` (with its index) for `category` (with its index), `bar` = (top,
/// height): the bar from zero with its value at the end, or "no data".
fn draw_bar(
    c: &mut Canvas,
    chart: &BarChart,
    (index, category): (usize, &str),
    (si, series): (usize, &Series),
    (top, height): (f64, f64),
    scale: Scale,
) {
    let (zero, mid) = (scale.at(0.0), top + height / 2.0);
    let Some(v) = series.at(index) else {
        let attrs = format!(r#" fill="{MUTED}" font-size="11" font-style="italic""#);
        c.text(zero + 4.0, mid, Anchor::Start, &attrs, chart.locale.no_data());
        return;
    };
    let end = scale.at(v);
    let text = (chart.format)(v);
    let tip = if chart.series.len() > 1 {
        format!("{category} · {}: {text}", series.name)
    } else {
        format!("{category}: {text}")
    };
    let fill = format!(r#" fill="{}""#, style(si).color);
    c.rect((zero.min(end), top), ((end - zero).abs(), height), &fill, Some(&tip));
    let (x, anchor) = if v < 0.0 { (end - 4.0, Anchor::End) } else { (end + 4.0, Anchor::Start) };
    c.text(x, mid, anchor, r#" font-size="11""#, &text);
}

// ---------------------------------------------------------------------------
// Histogram
// ---------------------------------------------------------------------------

/// Ticks for a count axis: integers only (there is no half customer).
fn count_ticks(max: u64) -> Vec<f64> {
    let ticks = nice_ticks(0.0, max.max(1) as f64, 5);
    match ticks.as_slice() {
        [a, b, ..] if b - a < 1.0 => (0..=max.max(1)).map(|i| i as f64).collect(),
        _ => ticks,
    }
}

/// A histogram from its bins: adjacent bars over a continuous value axis, counts on the
/// vertical axis.
pub fn histogram(chart: &Histogram) -> String {
    let mut bins: Vec<Bin> =
        chart.bins.iter().copied().filter(|b| b.start.is_finite() && b.end.is_finite() && b.end > b.start).collect();
    bins.sort_by(|a, b| a.start.total_cmp(&b.start));
    let max_count = bins.iter().map(|b| b.count).max().unwrap_or(0);
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        return no_data(&chart.title, chart.locale);
    };
    if max_count == 0 {
        return no_data(&chart.title, chart.locale);
    }
    let (x0, x1) = (first.start, bins.iter().map(|b| b.end).fold(last.end, f64::max));
    let format = chart.format;
    let locale = chart.locale;
    let y_ticks = count_ticks(max_count);
    let count_label = |v: f64| locale.decimal(Some(v), 0);

    let mut c = Canvas::new();
    let y = c.title(&chart.title);
    let y = axis_title(&mut c, y, &chart.y_label);
    let left = PAD + widest(y_ticks.iter().map(|&t| count_label(t))) + 8.0;
    let right = WIDTH - PAD - 12.0;
    let (top, bottom) = (y + 6.0, y + 206.0);
    let ys = Scale::over(&y_ticks, bottom, top);
    value_axis_y(&mut c, &y_ticks, ys, (left, right), &count_label);

    let xs = Scale { d0: x0, d1: x1, r0: left, r1: right };
    for b in bins.iter().filter(|b| b.count > 0) {
        let (a, e) = (xs.at(b.start), xs.at(b.end));
        let tip = format!("{} – {}: {}", format(b.start), format(b.end), locale.integer(i64::try_from(b.count).ok()));
        c.rect(
            (a + 0.5, ys.at(b.count as f64)),
            ((e - a - 1.0).max(0.5), bottom - ys.at(b.count as f64)),
            &format!(r#" fill="{}""#, style(0).color),
            Some(&tip),
        );
    }
    c.line((left, bottom), (right, bottom), &format!(r#" stroke="{AXIS}""#));
    // Value ticks at nice numbers inside the binned range, not at every bin edge.
    let span = x1 - x0;
    let x_ticks: Vec<f64> = axis_ticks(x0, x1, 6, format)
        .into_iter()
        .filter(|t| *t >= x0 - span * 1e-9 && *t <= x1 + span * 1e-9)
        .collect();
    let widest_tick = widest(x_ticks.iter().map(|&t| format(t)));
    let spacing = match x_ticks.as_slice() {
        [a, b, ..] => xs.at(*b) - xs.at(*a),
        _ => f64::INFINITY,
    };
    let every = label_every(spacing, widest_tick);
    for (i, &t) in x_ticks.iter().enumerate() {
        let x = xs.at(t);
        c.line((x, bottom), (x, bottom + 4.0), &format!(r#" stroke="{AXIS}""#));
        if i.is_multiple_of(every) {
            c.text(x, bottom + 14.0, Anchor::Middle, &format!(r#" fill="{MUTED}""#), &format(t));
        }
    }
    let y = axis_caption(&mut c, (left, right), bottom + 26.0, &chart.x_label);
    c.finish(&chart.title, y + PAD)
}

// ---------------------------------------------------------------------------
// Box plots by group
// ---------------------------------------------------------------------------

const BOX_ATTRS: &str = r##" fill="#c6dbef" stroke="#1f4e79" stroke-width="1.2""##;
const MEDIAN_ATTRS: &str = r##" stroke="#08306b" stroke-width="3""##;
const WHISKER_ATTRS: &str = r##" stroke="#1f4e79" stroke-width="1.2""##;
/// A range without quartiles: a thick light bar, so it does not read as a box.
const RANGE_ATTRS: &str = r##" stroke="#9ecae1" stroke-width="6" stroke-linecap="butt""##;

/// Horizontal box plots, one row per group: a box from `q1` to `q3`, whiskers to
/// `low` and `high`, a bar at the median and its value printed at the right. A
/// group without quartiles is drawn as a `low`..`high` range; a group without any
/// statistic says "no data".
pub fn box_or_range_by_group(chart: &BoxChart) -> String {
    let Some((lo, hi)) = extent(chart.groups.iter().flat_map(GroupStats::values)) else {
        return no_data(&chart.title, chart.locale);
    };
    // Money and counts are ratio scales: start at zero when every value is positive.
    let lo = if lo >= 0.0 { 0.0 } else { lo };
    let format = chart.format;
    let ticks = axis_ticks(lo, hi, 5, format);

    let mut c = Canvas::new();
    let y = c.title(&chart.title);
    let entries = [
        (Key::Box, chart.legend.box_label.as_str()),
        (Key::Median, chart.legend.median_label.as_str()),
        (Key::Whisker, chart.legend.whisker_label.as_str()),
    ];
    let y = legend(&mut c, &entries, y);

    let label_width = widest(chart.groups.iter().map(|g| g.group.clone())).min(200.0);
    let left = PAD + label_width + 10.0;
    let median_width = widest(
        chart.groups.iter().map(|g| finite(g.median).map_or_else(|| chart.locale.no_data().to_string(), format)),
    );
    let right = WIDTH - PAD - median_width - 10.0;
    let row_h = 32.0;
    let top = y + 4.0;
    let bottom = top + chart.groups.len() as f64 * row_h;
    let scale = Scale::over(&ticks, left, right);
    value_axis_x(&mut c, &ticks, scale, (top, bottom), format);

    for (gi, g) in chart.groups.iter().enumerate() {
        let mid = top + (gi as f64 + 0.5) * row_h;
        c.label(left - 8.0, mid, Anchor::End, label_width, &g.group);
        let Some(rightmost) = g.values().reduce(f64::max) else {
            let attrs = format!(r#" fill="{MUTED}" font-size="11" font-style="italic""#);
            c.text(left + 4.0, mid, Anchor::Start, &attrs, chart.locale.no_data());
            continue;
        };
        draw_box(&mut c, chart, g, scale, mid);
        let median = finite(g.median).map_or_else(|| chart.locale.no_data().to_string(), format);
        c.text(scale.at(rightmost) + 8.0, mid, Anchor::Start, r#" font-size="11""#, &median);
    }
    let y = axis_caption(&mut c, (left, right), bottom + 24.0, &chart.value_label);
    c.finish(&chart.title, y + PAD)
}

impl GroupStats {
    /// The finite statistics of the group.
    fn values(&self) -> impl Iterator<Item = f64> {
        [self.low, self.q1, self.median, self.q3, self.high].into_iter().filter_map(finite)
    }
}

/// The box (or range) of group `g` centred on `mid`, with its tooltip.
fn draw_box(c: &mut Canvas, chart: &BoxChart, g: &GroupStats, scale: Scale, mid: f64) {
    c.body.push_str("<g>");
    c.body.push_str(&format!("<title>{}</title>", escape(&box_tip(chart, g))));
    match (finite(g.q1), finite(g.q3)) {
        (Some(q1), Some(q3)) => {
            let (a, b) = (scale.at(q1.min(q3)), scale.at(q1.max(q3)));
            for (end, edge) in [(finite(g.low), a), (finite(g.high), b)] {
                if let Some(v) = end {
                    let x = scale.at(v);
                    c.line((x, mid), (edge, mid), WHISKER_ATTRS);
                    c.line((x, mid - 6.0), (x, mid + 6.0), WHISKER_ATTRS);
                }
            }
            c.rect((a, mid - 9.0), (b - a, 18.0), BOX_ATTRS, None);
        }
        _ => {
            if let Some((a, b)) = extent(g.values()).filter(|(a, b)| b > a) {
                c.line((scale.at(a), mid), (scale.at(b), mid), RANGE_ATTRS);
            }
        }
    }
    if let Some(m) = finite(g.median) {
        let x = scale.at(m);
        c.line((x, mid - 10.0), (x, mid + 10.0), MEDIAN_ATTRS);
    }
    c.body.push_str("</g>");
}

/// The tooltip of one group: every statistic, named as in the legend.
fn box_tip(chart: &BoxChart, g: &GroupStats) -> String {
    let f = |v: Option<f64>| finite(v).map_or_else(|| chart.locale.no_data().to_string(), chart.format);
    let l = &chart.legend;
    format!(
        "{}: {} {} – {}; {} {} – {}; {} {}",
        g.group,
        l.whisker_label,
        f(g.low),
        f(g.high),
        l.box_label,
        f(g.q1),
        f(g.q3),
        l.median_label,
        f(g.median)
    )
}

// ---------------------------------------------------------------------------
// Step curves
// ---------------------------------------------------------------------------

/// Step curves (Kaplan–Meier style): each value holds until the next point, and a
/// curve runs on to its `end` when that is later than its last point. Points with
/// a non-finite coordinate are skipped.
pub fn step_curve(chart: &StepChart) -> String {
    let curves: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        })
        .collect();
    let Some((y_lo, y_hi)) = extent(curves.iter().flatten().map(|p| p.1)) else {
        return no_data(&chart.title, chart.locale);
    };
    let x_max = chart
        .series
        .iter()
        .filter_map(|s| finite(s.end))
        .chain(curves.iter().flatten().map(|p| p.0))
        .chain(chart.references.iter().map(|r| r.at).filter(|x| x.is_finite()))
        .fold(0.0, f64::max);
    let x_min = curves.iter().flatten().map(|p| p.0).fold(0.0, f64::min);
    let format = chart.format;
    let y_ticks = axis_ticks(y_lo.min(0.0), y_hi.max(0.0), 5, format);
    let x_ticks = nice_ticks(x_min, x_max, 8);

    let mut c = Canvas::new();
    let mut y = c.title(&chart.title);
    if chart.series.len() > 1 {
        let entries: Vec<(Key, &str)> =
            chart.series.iter().enumerate().map(|(i, s)| (Key::Stroke(i), s.name.as_str())).collect();
        y = legend(&mut c, &entries, y);
    }
    y = axis_title(&mut c, y, &chart.y_label);
    let left = PAD + widest(y_ticks.iter().map(|&t| format(t))) + 8.0;
    let right = WIDTH - PAD - 8.0;
    let (top, bottom) = (y + 6.0, y + 226.0);
    let plot = StepPlot {
        ys: Scale::over(&y_ticks, bottom, top),
        xs: Scale::over(&x_ticks, left, right),
        x_places: tick_decimals(&x_ticks),
        top,
        bottom,
    };
    value_axis_y(&mut c, &y_ticks, plot.ys, (left, right), format);
    plot.x_axis(&mut c, chart, &x_ticks);
    for (index, (series, points)) in chart.series.iter().zip(&curves).enumerate() {
        plot.curve(&mut c, chart, index, series, points);
    }
    c.line((left, bottom), (right, bottom), &format!(r#" stroke="{AXIS}""#));
    let y = axis_caption(&mut c, (left, right), bottom + 26.0, &chart.x_label);
    c.finish(&chart.title, y + PAD)
}

/// The scales and edges of a step chart's plot area.
struct StepPlot {
    xs: Scale,
    ys: Scale,
    /// Decimals of the x ticks.
    x_places: usize,
    top: f64,
    bottom: f64,
}

impl StepPlot {
    /// An x value as the axis writes it.
    fn x_text(&self, locale: Locale, x: f64) -> String {
        locale.decimal(Some(x), self.x_places)
    }

    /// The x ticks with their numbers, and the reference lines with their labels.
    fn x_axis(&self, c: &mut Canvas, chart: &StepChart, ticks: &[f64]) {
        for &t in ticks {
            let x = self.xs.at(t);
            c.line((x, self.bottom), (x, self.bottom + 4.0), &format!(r#" stroke="{AXIS}""#));
            let text = self.x_text(chart.locale, t);
            c.text(x, self.bottom + 14.0, Anchor::Middle, &format!(r#" fill="{MUTED}""#), &text);
        }
        for r in chart.references.iter().filter(|r| r.at.is_finite()) {
            let x = self.xs.at(r.at);
            c.line((x, self.top), (x, self.bottom), &format!(r#" stroke="{AXIS}" stroke-dasharray="3 3""#));
            let attrs = format!(r#" fill="{MUTED}" font-size="11""#);
            c.text(x + 4.0, self.top + 6.0, Anchor::Start, &attrs, &r.label);
        }
    }

    /// The curve of `series` (sorted finite `points`) in series style `index`, with its
    /// last value as tooltip.
    fn curve(&self, c: &mut Canvas, chart: &StepChart, index: usize, series: &StepSeries, points: &[(f64, f64)]) {
        let Some(&(x0, y0)) = points.first() else { return };
        let mut path = format!("M{} {}", num(self.xs.at(x0)), num(self.ys.at(y0)));
        for &(x, v) in &points[1..] {
            path.push_str(&format!("H{}V{}", num(self.xs.at(x)), num(self.ys.at(v))));
        }
        let last_x = points.last().map_or(x0, |p| p.0);
        if let Some(end) = finite(series.end).filter(|e| *e > last_x) {
            path.push_str(&format!("H{}", num(self.xs.at(end))));
        }
        let tip = match points.last() {
            Some(&(x, v)) => format!("{}: {} at {}", series.name, (chart.format)(v), self.x_text(chart.locale, x)),
            None => series.name.clone(),
        };
        c.body.push_str(&format!(
            r#"<path d="{path}"{}><title>{}</title></path>"#,
            stroke_attrs(style(index), 2.25),
            escape(&tip)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert('x&y')</script>";

    /// A small XML well-formedness check: balanced tags, quoted attributes without
    /// raw `<`, and only known entities in text and attribute values.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "), "{svg}");
        assert!(svg.ends_with("</svg>"));
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('>').expect("unclosed tag");
            let tag = &after[..close];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else {
                let self_closing = tag.ends_with('/');
                let tag = tag.trim_end_matches('/');
                let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
                assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()), "bad tag name {name:?}");
                attrs = attrs.trim();
                while !attrs.is_empty() {
                    let (key, value) = attrs.split_once("=\"").expect("attribute without =\"");
                    assert!(
                        key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
                        "bad attribute name {key:?} in <{name}>"
                    );
                    let end = value.find('"').expect("unterminated attribute");
                    assert!(!value[..end].contains('<'));
                    check_text(&value[..end]);
                    attrs = value[end + 1..].trim_start();
                }
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &after[close + 1..];
            if stack.is_empty() {
                assert!(rest.is_empty(), "content after the root element");
            }
        }
        assert!(stack.is_empty(), "unclosed elements {stack:?}");
    }

    fn check_text(text: &str) {
        assert!(!text.contains('>'), "raw > in {text:?}");
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            let entity = &rest[amp..];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| entity.starts_with(e));
            assert!(ok, "bad entity at {entity:?}");
            rest = &rest[amp + 1..];
        }
    }

    fn pct(v: f64) -> String {
        Locale::EnUs.percent(Some(v), 0)
    }

    fn heatmap(rows: Vec<CohortRow>) -> String {
        cohort_heatmap(&CohortHeatmap {
            title: "Retention".into(),
            rows,
            x_label: "Months since acquisition".into(),
            y_label: "Cohort".into(),
            format: &pct,
            locale: Locale::EnUs,
        })
    }

    fn lines(series: Vec<Series>, x_labels: Vec<String>) -> String {
        line_chart(&LineChart {
            title: "CRR".into(),
            x_labels,
            series,
            x_label: String::new(),
            y_label: "Retention rate (%)".into(),
            format: &pct,
            include_zero: true,
            locale: Locale::ItIt,
        })
    }

    fn bars(categories: Vec<String>, series: Vec<Series>) -> String {
        bar_chart(&BarChart {
            title: "Segments".into(),
            categories,
            series,
            value_label: "Share (%)".into(),
            format: &pct,
            locale: Locale::EnUs,
        })
    }

    fn hist(bins: Vec<Bin>, x_label: &str) -> String {
        histogram(&Histogram {
            title: "Share of wallet".into(),
            bins,
            x_label: x_label.into(),
            y_label: "Customers".into(),
            format: &pct,
            locale: Locale::EnUs,
        })
    }

    fn boxes(groups: Vec<GroupStats>) -> String {
        box_or_range_by_group(&BoxChart {
            title: "CLV by segment".into(),
            groups,
            value_label: "Predicted CLV (€)".into(),
            legend: BoxLegend {
                box_label: "p25–p75".into(),
                median_label: "median".into(),
                whisker_label: "min–p90".into(),
            },
            format: &|v| Locale::EnUs.currency_places(Some(v), "EUR", 0),
            locale: Locale::EnUs,
        })
    }

    fn steps(series: Vec<StepSeries>) -> String {
        step_curve(&StepChart {
            title: "Time to value".into(),
            series,
            x_label: "Days since acquisition".into(),
            y_label: "Share with a second purchase".into(),
            format: &pct,
            references: vec![Reference { at: 30.0, label: "30 days".into() }],
            locale: Locale::DeDe,
        })
    }

    fn months(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("2025-{:02}", i % 12 + 1)).collect()
    }

    fn group(name: &str, v: [Option<f64>; 5]) -> GroupStats {
        GroupStats { group: name.into(), low: v[0], q1: v[1], median: v[2], q3: v[3], high: v[4] }
    }

    /// One of every chart, with `label` as every caller-supplied text that is
    /// drawn, plus edge cases (gaps, negatives, missing values).
    fn every_chart(label: &str) -> Vec<String> {
        let l = || label.to_string();
        vec![
            heatmap(vec![
                CohortRow { label: l(), values: vec![Some(1.0), Some(0.31), None, Some(0.12)] },
                CohortRow { label: "2025-02".into(), values: vec![Some(1.0), Some(f64::NAN)] },
            ]),
            lines(
                vec![
                    Series { name: l(), values: vec![Some(0.8), None, Some(0.7), Some(0.75)] },
                    Series { name: "Members".into(), values: vec![Some(0.9); 13] },
                ],
                vec![l(); 13],
            ),
            bars(
                vec![l(), "At Risk".into(), "Hibernating".into()],
                vec![
                    Series { name: l(), values: vec![Some(0.2), Some(-0.05), None] },
                    Series { name: "Revenue".into(), values: vec![Some(0.5), Some(0.1)] },
                ],
            ),
            hist(
                vec![
                    Bin { start: 0.0, end: 0.5, count: 3 },
                    Bin { start: 0.5, end: 1.0, count: 2 },
                    Bin { start: f64::NAN, end: 1.0, count: 7 },
                ],
                label,
            ),
            boxes(vec![
                group(label, [Some(5.0), Some(40.0), Some(80.0), Some(150.0), Some(400.0)]),
                group("Range only", [Some(1.0), None, Some(3.0), None, Some(9.0)]),
                group("Nothing", [None; 5]),
            ]),
            steps(vec![
                StepSeries { name: l(), points: vec![(0.0, 0.0), (10.0, 0.1), (45.0, 0.3)], end: Some(120.0) },
                StepSeries { name: "2025-02".into(), points: vec![(0.0, 0.0), (20.0, 0.05)], end: None },
            ]),
        ]
    }

    #[test]
    fn nice_ticks_use_1_2_5_steps_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 0.87, 5), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(0.0, 1234.0, 5), [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0]);
        assert_eq!(nice_ticks(0.12, 0.37, 5), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]);
        assert_eq!(nice_ticks(-3.0, 7.0, 5), [-4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(nice_ticks(0.0, 0.3, 3), [0.0, 0.1, 0.2, 0.3]);
        assert_eq!(nice_ticks(50.0, 0.0, 5), [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        // Flat ranges still get an axis that includes zero.
        assert_eq!(nice_ticks(0.0, 0.0, 5), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(4.0, 4.0, 4), [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!(nice_ticks(f64::NAN, 1.0, 5).is_empty());
        assert_eq!(nice_ticks(-f64::MAX, f64::MAX, 5), [-f64::MAX, f64::MAX]);
        assert_eq!(nice_ticks(0.0, 1.0, 10).len(), 11);
        for (lo, hi) in [(0.0, 1e9), (-2.5e-5, 3.3e-4), (17.0, 23.0), (0.001, 0.999)] {
            let t = nice_ticks(lo, hi, 5);
            assert!(t[0] <= lo && *t.last().unwrap() >= hi, "{lo}..{hi}: {t:?}");
            assert!((4..=12).contains(&t.len()), "{lo}..{hi}: {t:?}");
        }
    }

    #[test]
    fn every_chart_is_well_formed_and_deterministic() {
        let first = every_chart("Champions");
        for svg in &first {
            assert_well_formed(svg);
            assert!(svg.contains(r#"width="100%""#) && svg.contains(r#"role="img""#));
            assert!(svg.contains("<title>") && !svg.contains("NaN") && !svg.contains(" id="));
            assert!(!svg.to_ascii_lowercase().contains("<script"));
        }
        assert_eq!(first, every_chart("Champions"));
    }

    #[test]
    fn caller_text_is_escaped() {
        for svg in every_chart(EVIL) {
            assert_well_formed(&svg);
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;script&gt;"), "{svg}");
        }
        assert_eq!(escape("a\u{0}b\u{7}c\nd"), "abc d");
    }

    #[test]
    fn empty_input_says_no_data_in_the_locale() {
        let empty = [
            heatmap(vec![]),
            heatmap(vec![CohortRow { label: "2025-01".into(), values: vec![None] }]),
            lines(vec![], months(13)),
            lines(vec![Series { name: "a".into(), values: vec![None; 13] }], months(13)),
            lines(vec![Series { name: "a".into(), values: vec![Some(1.0)] }], vec![]),
            bars(vec![], vec![]),
            hist(vec![], "x"),
            hist(vec![Bin { start: 0.0, end: 1.0, count: 0 }], "x"),
            boxes(vec![group("x", [None; 5])]),
            steps(vec![]),
        ];
        for svg in &empty {
            assert_well_formed(svg);
            let expected = if svg.contains("CRR") {
                "nessun dato"
            } else if svg.contains("Time to value") {
                "keine Daten"
            } else {
                "no data"
            };
            assert!(svg.contains(expected), "{svg}");
            assert!(!svg.contains("<path") && !svg.contains("<circle"), "{svg}");
        }
    }

    #[test]
    fn line_gaps_split_the_path_and_lone_points_keep_a_marker() {
        let svg = lines(
            vec![Series {
                name: "CRR".into(),
                values: vec![Some(0.5), Some(0.6), None, Some(0.7), None, Some(0.4), Some(0.5)],
            }],
            months(7),
        );
        let path = svg.split("<path d=\"").nth(1).and_then(|p| p.split('"').next()).expect("a path");
        assert_eq!(path.matches('M').count(), 3, "{path}");
        assert_eq!(path.matches('L').count(), 2, "{path}");
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("CRR · 2025-04: 70%"));
    }

    #[test]
    fn heatmap_prints_values_only_when_they_fit() {
        let small = heatmap(vec![CohortRow { label: "2025-01".into(), values: vec![Some(1.0), Some(0.25)] }]);
        assert!(small.contains(">25%</text>"));
        let wide = heatmap(vec![CohortRow { label: "2025-01".into(), values: vec![Some(0.5); 40] }]);
        // Only the colour legend prints 50%.
        assert_eq!(wide.matches(">50%</text>").count(), 1);
        // The value remains available as a tooltip.
        assert!(wide.contains("<title>2025-01 · Months since acquisition 39: 50%</title>"));
    }

    #[test]
    fn missing_bars_and_groups_say_no_data() {
        let svg =
            bars(vec!["A".into(), "B".into()], vec![Series { name: "Customers".into(), values: vec![Some(0.4)] }]);
        assert!(svg.contains(">no data</text>"));
        assert!(svg.contains("<title>A: 40%</title>"));
    }

    #[test]
    fn numbers_are_printed_compactly() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.25), "1.2");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(720.0), "720");
        assert_eq!(truncate("Potential Loyalists", 60.0, 10.0), "Potential…");
    }
}
