//! The charts as Tera functions: a template draws a chart from the rows of a table it
//! declares, naming the columns to draw, and inserts the SVG it gets back:
//!
//! ```text
//! {{ line_chart(rows=tables.report_trends, x="period", x_labels="month", series=["crr"], names=["CRR"],
//!               title="Customer retention rate (CRR) by month", format="percent", decimals=1) }}
//! ```
//!
//! The functions only draw ([`super::charts`]): what a chart shows is a table computed in
//! SQL, its texts are the template's. Values are formatted for the report locale and
//! currency with `format`: `percent` (a rate in 0..1), `number`, or `currency` (compact
//! money, `€1.2M`), with `decimals` decimals, or as many as a value needs (none when it
//! is whole, else one) when `decimals` is not given. A null value is a gap, a blank
//! cell or a "no data" note; a chart without any value says "no data".
//!
//! | function | rows are | arguments besides `rows`, `title`, `format`, `decimals` |
//! |---|---|---|
//! | `line_chart` | points along x, in order | `x`, `series`, `names`, `y_label`, `x_label`, `x_labels`, `include_zero` (true) |
//! | `bar_chart` | categories, top to bottom | `category`, `series`, `names`, `value_label` |
//! | `heatmap` | cells | `row`, `column` (whole numbers 0, 1, …), `value` (a rate in 0..1), `x_label`, `y_label`, `row_labels` |
//! | `histogram` | bins | `from`, `to`, `count`, `x_label`, `y_label` |
//! | `box_chart` | groups, top to bottom | `group`, `low`, `q1`, `median`, `q3`, `high` (`q1`/`q3` optional: a range), `legend` ([box, median, whiskers]), `value_label` |
//! | `step_chart` | points, any order | `x`, `series`, `names`, `x_label`, `y_label`, `references`, `reference_labels`, `origin` (false) |
//!
//! `x_labels="month"` and `row_labels="month"` show `YYYY-MM[-DD]` values as short
//! months in the locale; otherwise labels are the values' text. `origin=true` starts
//! each step curve at (0, 0). Every argument is checked: an unknown one, a missing
//! column or a value that is not a number fails the render, naming the function.

use std::collections::{BTreeSet, HashMap};

use tera::{Tera, Value};

use super::charts::{
    self, BarChart, Bin, BoxChart, BoxLegend, CohortHeatmap, CohortRow, GroupStats, Histogram, LineChart, Reference,
    Series, StepChart, StepSeries,
};
use super::format::{Locale, MonthStyle, parse_month};

/// Arguments every chart function takes.
const COMMON: [&str; 4] = ["rows", "title", "format", "decimals"];

/// Registers the chart functions on `tera`, formatting for `locale` and the ISO 4217
/// `currency`.
pub(super) fn register(tera: &mut Tera, locale: Locale, currency: &str) {
    let currency = currency.trim().to_ascii_uppercase();
    let draw = |name: &'static str, known: &'static [&'static str], draw: Draw| Chart {
        name,
        known,
        locale,
        currency: currency.clone(),
        draw,
    };
    for chart in [
        draw("line_chart", &["x", "series", "names", "y_label", "x_label", "x_labels", "include_zero"], line_chart),
        draw("bar_chart", &["category", "series", "names", "value_label"], bar_chart),
        draw("heatmap", &["row", "column", "value", "x_label", "y_label", "row_labels"], heatmap),
        draw("histogram", &["from", "to", "count", "x_label", "y_label"], histogram),
        draw("box_chart", &["group", "low", "q1", "median", "q3", "high", "legend", "value_label"], box_chart),
        draw(
            "step_chart",
            &["x", "series", "names", "x_label", "y_label", "references", "reference_labels", "origin"],
            step_chart,
        ),
    ] {
        tera.register_function(chart.name, chart);
    }
}

/// Draws one kind of chart from a call's arguments.
type Draw = fn(&Call) -> tera::Result<String>;

/// A registered chart function.
struct Chart {
    name: &'static str,
    known: &'static [&'static str],
    locale: Locale,
    currency: String,
    draw: Draw,
}

impl tera::Function for Chart {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let mut unknown: Vec<&str> =
            args.keys().map(String::as_str).filter(|a| !COMMON.contains(a) && !self.known.contains(a)).collect();
        if !unknown.is_empty() {
            // HashMap order is random; sort so the message is stable.
            unknown.sort_unstable();
            let accepted: Vec<&str> = COMMON.iter().chain(self.known).copied().collect();
            return Err(tera::Error::msg(format!(
                "{}: unknown argument(s) {}; accepted: {}",
                self.name,
                unknown.join(", "),
                accepted.join(", ")
            )));
        }
        let call = Call { chart: self, args };
        (self.draw)(&call).map(Value::String)
    }

    /// The SVG is built escaped: it goes into the page as it is.
    fn is_safe(&self) -> bool {
        true
    }
}

/// One chart function call.
struct Call<'a> {
    chart: &'a Chart,
    args: &'a HashMap<String, Value>,
}

impl Call<'_> {
    fn error(&self, what: String) -> tera::Error {
        tera::Error::msg(format!("{}: {what}", self.chart.name))
    }

    /// A required argument.
    fn arg(&self, name: &str) -> tera::Result<&Value> {
        self.args.get(name).ok_or_else(|| self.error(format!("argument `{name}` is missing")))
    }

    /// A text argument, `default` when absent (`None`: required).
    fn text(&self, name: &str, default: Option<&str>) -> tera::Result<String> {
        match (self.args.get(name), default) {
            (None, Some(default)) => Ok(default.to_string()),
            (None, None) => Err(self.error(format!("argument `{name}` is missing"))),
            (Some(Value::String(s)), _) => Ok(s.clone()),
            (Some(other), _) => Err(self.error(format!("argument `{name}` must be text, got {other}"))),
        }
    }

    /// A list of texts, e.g. the columns of `series`.
    fn texts(&self, name: &str) -> tera::Result<Vec<String>> {
        let list = self.arg(name)?.as_array().ok_or_else(|| self.error(format!("argument `{name}` must be a list")))?;
        list.iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| self.error(format!("`{name}` holds {v}, not text"))))
            .collect()
    }

    fn flag(&self, name: &str, default: bool) -> tera::Result<bool> {
        match self.args.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(format!("argument `{name}` must be true or false, got {other}"))),
        }
    }

    /// The `rows` argument: a table's rows.
    fn rows(&self) -> tera::Result<&Vec<Value>> {
        self.arg("rows")?
            .as_array()
            .ok_or_else(|| self.error("argument `rows` must be a table's rows, e.g. rows=tables.report_trends".into()))
    }

    /// The values of the column named by argument `column` in every row.
    fn column<'r>(&self, rows: &'r [Value], column: &str) -> tera::Result<Vec<&'r Value>> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                row.get(column).ok_or_else(|| {
                    let found = row.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "));
                    self.error(format!("row {} has no column `{column}` (it has {})", i + 1, found.unwrap_or_default()))
                })
            })
            .collect()
    }

    /// A numeric column (null and absent values are `None`).
    fn numbers(&self, rows: &[Value], column: &str) -> tera::Result<Vec<Option<f64>>> {
        self.column(rows, column)?
            .into_iter()
            .enumerate()
            .map(|(i, value)| match value {
                Value::Null => Ok(None),
                Value::Number(n) => Ok(n.as_f64()),
                other => Err(self.error(format!("row {}, column `{column}`: {other} is not a number", i + 1))),
            })
            .collect()
    }

    /// The numeric column named by argument `name`.
    fn numbers_of(&self, rows: &[Value], name: &str) -> tera::Result<Vec<Option<f64>>> {
        self.numbers(rows, &self.text(name, None)?)
    }

    /// Labels from the column named by argument `name`, as months when the argument
    /// `style` (if any) says `"month"`.
    fn labels(&self, rows: &[Value], name: &str, style: Option<&str>) -> tera::Result<Vec<String>> {
        let months = match style {
            None => false,
            Some(style) => match self.text(style, Some("text"))?.as_str() {
                "text" => false,
                "month" => true,
                other => {
                    return Err(self.error(format!("argument `{style}` must be \"text\" or \"month\", got {other:?}")));
                }
            },
        };
        let locale = self.chart.locale;
        let column = self.text(name, None)?;
        Ok(self
            .column(rows, &column)?
            .into_iter()
            .map(|value| match value {
                Value::String(s) if months => locale.month(parse_month(s), MonthStyle::Short),
                Value::String(s) => s.clone(),
                Value::Null => locale.no_data().to_string(),
                other => other.to_string(),
            })
            .collect())
    }

    /// The series of `series` (columns) named by `names`.
    fn series(&self, rows: &[Value]) -> tera::Result<Vec<Series>> {
        let (columns, names) = (self.texts("series")?, self.texts("names")?);
        if columns.len() != names.len() {
            return Err(self.error(format!(
                "`series` has {} columns but `names` {} names",
                columns.len(),
                names.len()
            )));
        }
        columns
            .iter()
            .zip(names)
            .map(|(column, name)| Ok(Series { name, values: self.numbers(rows, column)? }))
            .collect()
    }

    /// How values are written, from `format` and `decimals`.
    fn format(&self) -> tera::Result<Box<dyn Fn(f64) -> String + '_>> {
        let decimals = match self.args.get("decimals") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n <= 10)
                    .ok_or_else(|| self.error(format!("argument `decimals` must be an integer 0..=10, got {v}")))?,
            ),
        };
        let locale = self.chart.locale;
        let currency = self.chart.currency.as_str();
        match (self.text("format", Some("number"))?.as_str(), decimals) {
            ("percent", _) => Ok(Box::new(move |v| locale.percent(Some(v), decimals.unwrap_or(places(v * 100.0))))),
            ("number", _) => Ok(Box::new(move |v| locale.decimal(Some(v), decimals.unwrap_or(places(v))))),
            ("currency", None) => Ok(Box::new(move |v| locale.currency_compact(Some(v), currency))),
            ("currency", Some(_)) => {
                Err(self.error("`decimals` does not apply to `currency`, which charts write compactly (€1.2M)".into()))
            }
            (other, _) => {
                Err(self
                    .error(format!("argument `format` must be \"percent\", \"number\" or \"currency\", got {other:?}")))
            }
        }
    }
}

/// Decimals that show `v` exactly when it is whole, with one decimal otherwise: axis
/// ticks read "80%", tooltips "81.3%".
fn places(v: f64) -> usize {
    if (v - v.round()).abs() < 1e-9 { 0 } else { 1 }
}

fn line_chart(call: &Call) -> tera::Result<String> {
    let rows = call.rows()?;
    let format = call.format()?;
    Ok(charts::line_chart(&LineChart {
        title: call.text("title", None)?,
        x_labels: call.labels(rows, "x", Some("x_labels"))?,
        series: call.series(rows)?,
        x_label: call.text("x_label", Some(""))?,
        y_label: call.text("y_label", Some(""))?,
        format: &format,
        include_zero: call.flag("include_zero", true)?,
        locale: call.chart.locale,
    }))
}

fn bar_chart(call: &Call) -> tera::Result<String> {
    let rows = call.rows()?;
    let format = call.format()?;
    Ok(charts::bar_chart(&BarChart {
        title: call.text("title", None)?,
        categories: call.labels(rows, "category", None)?,
        series: call.series(rows)?,
        value_label: call.text("value_label", Some(""))?,
        format: &format,
        locale: call.chart.locale,
    }))
}

/// Cells by row (in order of first appearance) and column index.
fn heatmap(call: &Call) -> tera::Result<String> {
    let rows = call.rows()?;
    let format = call.format()?;
    let labels = call.labels(rows, "row", Some("row_labels"))?;
    let columns = call.numbers_of(rows, "column")?;
    let values = call.numbers_of(rows, "value")?;
    let mut grid: Vec<CohortRow> = Vec::new();
    for ((label, column), value) in labels.into_iter().zip(columns).zip(values) {
        let Some(column) = column.filter(|c| *c >= 0.0 && c.fract() == 0.0) else {
            return Err(call.error(format!("row `{label}`: `column` must hold whole numbers 0, 1, …")));
        };
        let index = match grid.iter().position(|r| r.label == label) {
            Some(index) => index,
            None => {
                grid.push(CohortRow { label, values: Vec::new() });
                grid.len() - 1
            }
        };
        let cells = &mut grid[index].values;
        let column = column as usize;
        if cells.len() <= column {
            cells.resize(column + 1, None);
        }
        cells[column] = value;
    }
    Ok(charts::cohort_heatmap(&CohortHeatmap {
        title: call.text("title", None)?,
        rows: grid,
        x_label: call.text("x_label", Some(""))?,
        y_label: call.text("y_label", Some(""))?,
        format: &format,
        locale: call.chart.locale,
    }))
}

fn histogram(call: &Call) -> tera::Result<String> {
    let rows = call.rows()?;
    let format = call.format()?;
    let (from, to, count) =
        (call.numbers_of(rows, "from")?, call.numbers_of(rows, "to")?, call.numbers_of(rows, "count")?);
    let bins = from
        .into_iter()
        .zip(to)
        .zip(count)
        .filter_map(|((start, end), count)| {
            // A count is a whole number of customers; a null one is an empty bin.
            Some(Bin { start: start?, end: end?, count: count.map_or(0, |c| c.max(0.0) as u64) })
        })
        .collect();
    Ok(charts::histogram(&Histogram {
        title: call.text("title", None)?,
        bins,
        x_label: call.text("x_label", Some(""))?,
        y_label: call.text("y_label", Some(""))?,
        format: &format,
        locale: call.chart.locale,
    }))
}

fn box_chart(call: &Call) -> tera::Result<String> {
    let rows = call.rows()?;
    let format = call.format()?;
    let groups = call.labels(rows, "group", None)?;
    let optional = |name: &str| match call.args.get(name) {
        Some(_) => call.numbers_of(rows, name),
        None => Ok(vec![None; rows.len()]),
    };
    let (low, q1, median, q3, high) = (
        call.numbers_of(rows, "low")?,
        optional("q1")?,
        call.numbers_of(rows, "median")?,
        optional("q3")?,
        call.numbers_of(rows, "high")?,
    );
    let groups = groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| GroupStats { group, low: low[i], q1: q1[i], median: median[i], q3: q3[i], high: high[i] })
        .collect();
    let legend = call.texts("legend")?;
    let [box_label, median_label, whisker_label] = <[String; 3]>::try_from(legend).map_err(|legend| {
        call.error(format!("`legend` must name the box, the median and the whiskers, got {} texts", legend.len()))
    })?;
    Ok(charts::box_or_range_by_group(&BoxChart {
        title: call.text("title", None)?,
        groups,
        value_label: call.text("value_label", Some(""))?,
        legend: BoxLegend { box_label, median_label, whisker_label },
        format: &format,
        locale: call.chart.locale,
    }))
}

fn step_chart(call: &Call) -> tera::Result<String> {
    let rows = call.rows()?;
    let format = call.format()?;
    let x = call.numbers_of(rows, "x")?;
    let origin = call.flag("origin", false)?;
    let series = call
        .series(rows)?
        .into_iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> =
                x.iter().zip(&s.values).filter_map(|(x, y)| Some(((*x)?, (*y)?))).collect();
            if origin && !points.is_empty() {
                points.insert(0, (0.0, 0.0));
            }
            // One point per x, the first one: a repeated row must not draw a vertical spike.
            let mut seen = BTreeSet::new();
            points.retain(|(x, _)| seen.insert(x.to_bits()));
            StepSeries { name: s.name, points, end: None }
        })
        .collect();
    let at = match call.args.get("references") {
        None => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| call.error("argument `references` must be a list of numbers".into()))?,
        Some(other) => return Err(call.error(format!("argument `references` must be a list of numbers, got {other}"))),
    };
    let labels = if at.is_empty() { Vec::new() } else { call.texts("reference_labels")? };
    if labels.len() != at.len() {
        return Err(call.error(format!("{} `references` but {} `reference_labels`", at.len(), labels.len())));
    }
    Ok(charts::step_curve(&StepChart {
        title: call.text("title", None)?,
        series,
        x_label: call.text("x_label", Some(""))?,
        y_label: call.text("y_label", Some(""))?,
        format: &format,
        references: at.into_iter().zip(labels).map(|(at, label)| Reference { at, label }).collect(),
        locale: call.chart.locale,
    }))
}
