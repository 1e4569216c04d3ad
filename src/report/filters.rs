//! Tera filters that format report values with [`super::format`].
//!
//! The locale and the reporting currency are fixed for one render, so they are
//! captured when the filters are registered and templates never repeat them:
//!
//! ```text
//! {{ kpi.revenue | currency }}              €1,234.50     1.234,50 €
//! {{ kpi.revenue | currency(decimals=0) }}  €1,235        1.235 €
//! {{ kpi.orders | number }}                 12,345        12.345
//! {{ kpi.aov | number(decimals=2) }}        45.20         45,20
//! {{ kpi.crr | percent }}                   81.2%         81,2%
//! {{ d.crr | delta_pp(arrow=true) }}        ▲ +1.2 pp     ▲ +1,2 p.p.
//! {{ d.revenue | delta_pct }}               +3.4%         +3,4%
//! {{ d.nps | delta_number(arrow=true) }}     ▲ +3.2        ▲ +3,2
//! {{ kpi.revenue | compact(currency=true) }} €1.2M        1,2 Mln €
//! {{ row.period | month(style="short") }}   Nov 2026      nov 2026
//! {{ as_of | date }}                        November 3, 2026
//! ```
//!
//! Defaults: `currency` uses the currency's usual decimals (2; 0 for JPY), `number`
//! 0, `percent`, `delta_pp`, `delta_pct` and `delta_number` 1; `arrow` and `currency` are false;
//! `month` is long, `date` long (`style="medium"` or `"numeric"` for others).
//!
//! A null value renders the locale's "no data" text (an input that is absent makes
//! its metrics null; the report says so instead of failing). Anything else that is
//! not what a filter expects, or an unknown or ill-typed argument, is an error that
//! names the filter and shows the input, so a template typo fails the render rather
//! than printing a wrong figure.
//!
//! `date` replaces Tera's built-in filter of the same name, which formats
//! timestamps with strftime patterns and knows nothing of the report locale.

use std::collections::HashMap;

use tera::{Tera, Value};

use super::escape::escape_html;
use super::format::{DateStyle, Locale, MonthStyle, currency_minor_units, parse_date, parse_month};

/// The most decimals a filter accepts; more is certainly a template mistake.
const MAX_DECIMALS: usize = 10;

/// Registers the report filters (`currency`, `number`, `percent`, `delta_pp`,
/// `delta_pct`, `delta_number`, `compact`, `month`, `date`) on `tera`, formatting for `locale` and
/// the ISO 4217 `currency` (e.g. `"EUR"`).
pub(super) fn register(tera: &mut Tera, locale: Locale, currency: &str) {
    register_money(tera, locale, &currency.trim().to_ascii_uppercase());
    register_numbers(tera, locale);
    register_calendar(tera, locale);
}

/// `currency` and `compact`, in the ISO 4217 currency `code`.
fn register_money(tera: &mut Tera, locale: Locale, code: &str) {
    let currency_code = code.to_string();
    add(tera, "currency", move |value, args| {
        let call = Call::new("currency", value, args, &["decimals"])?;
        let places = call.decimals(currency_minor_units(&currency_code))?;
        Ok(locale.currency_places(call.number()?, &currency_code, places))
    });

    let code = code.to_string();
    add(tera, "compact", move |value, args| {
        let call = Call::new("compact", value, args, &["currency"])?;
        let number = call.number()?;
        Ok(if call.flag("currency")? { locale.currency_compact(number, &code) } else { locale.compact(number) })
    });
}

/// `number`, `percent` and the deltas.
fn register_numbers(tera: &mut Tera, locale: Locale) {
    add(tera, "number", move |value, args| {
        let call = Call::new("number", value, args, &["decimals"])?;
        let places = call.decimals(0)?;
        // Whole numbers (counts) are formatted exactly, without a trip through f64.
        if let (0, Some(n)) = (places, value.as_i64()) {
            return Ok(locale.integer(Some(n)));
        }
        Ok(locale.decimal(call.number()?, places))
    });

    add(tera, "percent", move |value, args| {
        let call = Call::new("percent", value, args, &["decimals"])?;
        let places = call.decimals(1)?;
        Ok(locale.percent(call.number()?, places))
    });

    add(tera, "delta_pp", move |value, args| {
        let call = Call::new("delta_pp", value, args, &["decimals", "arrow"])?;
        let (places, arrow) = (call.decimals(1)?, call.flag("arrow")?);
        Ok(locale.delta_pp(call.number()?, places, arrow))
    });

    add(tera, "delta_pct", move |value, args| {
        let call = Call::new("delta_pct", value, args, &["decimals", "arrow"])?;
        let (places, arrow) = (call.decimals(1)?, call.flag("arrow")?);
        Ok(locale.delta_pct(call.number()?, places, arrow))
    });

    add(tera, "delta_number", move |value, args| {
        let call = Call::new("delta_number", value, args, &["decimals", "arrow"])?;
        let (places, arrow) = (call.decimals(1)?, call.flag("arrow")?);
        Ok(locale.delta_number(call.number()?, places, arrow))
    });
}

/// `month` and `date`.
fn register_calendar(tera: &mut Tera, locale: Locale) {
    add(tera, "month", move |value, args| {
        let call = Call::new("month", value, args, &["style"])?;
        let style = match call.choice("style", &["long", "short"], "long")? {
            "short" => MonthStyle::Short,
            _ => MonthStyle::Long,
        };
        let month = call.parsed_text("YYYY-MM or YYYY-MM-DD", parse_month)?;
        Ok(locale.month(month, style))
    });

    add(tera, "date", move |value, args| {
        let call = Call::new("date", value, args, &["style"])?;
        let style = match call.choice("style", &["long", "medium", "numeric"], "long")? {
            "medium" => DateStyle::Medium,
            "numeric" => DateStyle::Numeric,
            _ => DateStyle::Long,
        };
        let date = call.parsed_text("YYYY-MM-DD", parse_date)?;
        Ok(locale.date(date, style))
    });
}

/// Registers one filter, wrapped in [`Escaped`].
fn add<F>(tera: &mut Tera, name: &str, filter: F)
where
    F: Fn(&Value, &HashMap<String, Value>) -> tera::Result<String> + Send + Sync + 'static,
{
    tera.register_filter(name, Escaped(filter));
}

/// A filter that escapes its own output for HTML and marks it safe. Tera's
/// autoescaping would do the same but also turn the "/" of a numeric date into
/// "&#x2F;", which is correct HTML yet unreadable in any other output. Only a
/// misconfigured currency code can put a special character into a filter's output.
struct Escaped<F>(F);

impl<F> tera::Filter for Escaped<F>
where
    F: Fn(&Value, &HashMap<String, Value>) -> tera::Result<String> + Send + Sync,
{
    fn filter(&self, value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
        (self.0)(value, args).map(|s| Value::String(escape_html(&s)))
    }

    fn is_safe(&self) -> bool {
        true
    }
}

/// One filter invocation: its name for error messages, the input and the arguments.
struct Call<'a> {
    filter: &'static str,
    value: &'a Value,
    args: &'a HashMap<String, Value>,
}

impl<'a> Call<'a> {
    /// Checks that only `known` argument names are used: a misspelt `decimal=2`
    /// would otherwise be ignored silently.
    fn new(
        filter: &'static str,
        value: &'a Value,
        args: &'a HashMap<String, Value>,
        known: &[&str],
    ) -> tera::Result<Self> {
        let mut unknown: Vec<&str> = args.keys().map(String::as_str).filter(|name| !known.contains(name)).collect();
        if !unknown.is_empty() {
            // HashMap order is random; sort so the message is stable.
            unknown.sort_unstable();
            let accepted = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(tera::Error::msg(format!(
                "filter `{filter}`: unknown argument(s) {}; accepted: {accepted}",
                unknown.join(", ")
            )));
        }
        Ok(Self { filter, value, args })
    }

    fn error(&self, what: String) -> tera::Error {
        tera::Error::msg(format!("filter `{}`: {what}", self.filter))
    }

    /// The input as a number; `None` for null. A string holding a number is
    /// accepted because decimal columns are often serialized as strings.
    fn number(&self) -> tera::Result<Option<f64>> {
        let parsed = match self.value {
            Value::Null => return Ok(None),
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.error(format!("expected a number or null, got {}", describe(self.value)))),
        }
    }

    /// The input as a string parsed by `parse`; `None` for null.
    fn parsed_text<T>(&self, expected: &str, parse: impl Fn(&str) -> Option<T>) -> tera::Result<Option<T>> {
        match self.value {
            Value::Null => Ok(None),
            Value::String(s) => parse(s.trim()).map(Some).ok_or_else(|| {
                self.error(format!("expected a {expected} string or null, got {}", describe(self.value)))
            }),
            other => Err(self.error(format!("expected a {expected} string or null, got {}", describe(other)))),
        }
    }

    /// The `decimals` argument, 0..=MAX_DECIMALS.
    fn decimals(&self, default: usize) -> tera::Result<usize> {
        match self.args.get("decimals") {
            None => Ok(default),
            Some(v) => {
                v.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|n| *n <= MAX_DECIMALS).ok_or_else(|| {
                    self.error(format!(
                        "argument `decimals` must be an integer 0..={MAX_DECIMALS}, got {}",
                        describe(v)
                    ))
                })
            }
        }
    }

    /// A boolean argument, false when absent.
    fn flag(&self, name: &str) -> tera::Result<bool> {
        match self.args.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.error(format!("argument `{name}` must be true or false, got {}", describe(v)))),
        }
    }

    /// A string argument that must be one of `choices`.
    fn choice(&self, name: &str, choices: &[&'static str], default: &'static str) -> tera::Result<&'static str> {
        let Some(v) = self.args.get(name) else {
            return Ok(default);
        };
        v.as_str().and_then(|s| choices.iter().copied().find(|c| *c == s)).ok_or_else(|| {
            self.error(format!(
                "argument `{name}` must be one of {}, got {}",
                choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "),
                describe(v)
            ))
        })
    }
}

/// A value's type and (shortened) JSON text, for error messages.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    const MAX_CHARS: usize = 60;
    let json = value.to_string();
    let shown: String = if json.chars().count() > MAX_CHARS {
        json.chars().take(MAX_CHARS).chain("…".chars()).collect()
    } else {
        json
    };
    format!("{kind} {shown}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use tera::Context;

    fn render(locale: Locale, template: &str, context: &Value) -> tera::Result<String> {
        let mut tera = Tera::default();
        register(&mut tera, locale, "eur");
        tera.add_raw_template("t.html", template)?;
        tera.render("t.html", &Context::from_value(context.clone())?)
    }

    /// The whole error chain: Tera wraps a filter's error in "Filter call failed".
    fn error_text(result: tera::Result<String>) -> String {
        let err = result.expect_err("render should fail");
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            text.push_str(" | ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    const TEMPLATE: &str = "{{ r | currency }}|{{ r | currency(decimals=0) }}|{{ n | number }}|\
        {{ a | number(decimals=2) }}|{{ rate | percent }}|{{ rate | percent(decimals=0) }}|\
        {{ d | delta_pp(arrow=true) }}|{{ rel | delta_pct }}|{{ r | compact }}|\
        {{ r | compact(currency=true) }}|{{ m | month }}|{{ day | month(style=\"short\") }}|\
        {{ day | date }}|{{ day | date(style=\"numeric\") }}";

    fn context() -> Value {
        serde_json::json!({
            "r": 1234567.891, "n": 12345, "a": "45.2", "rate": 0.8123, "d": -0.012,
            "rel": 0.034, "m": "2026-11", "day": "2026-11-03",
        })
    }

    #[test]
    fn formats_per_locale() {
        let en = render(Locale::EnUs, TEMPLATE, &context()).expect("renders");
        assert_eq!(
            en,
            "€1,234,567.89|€1,234,568|12,345|45.20|81.2%|81%|▼\u{a0}-1.2\u{a0}pp|+3.4%|1.2M|\
             €1.2M|November 2026|Nov 2026|November 3, 2026|11/03/2026"
        );
        let it = render(Locale::ItIt, TEMPLATE, &context()).expect("renders");
        assert_eq!(
            it.replace('\u{a0}', " "),
            "1.234.567,89 €|1.234.568 €|12.345|45,20|81,2%|81%|▼ -1,2 p.p.|+3,4%|1,2 Mln|\
             1,2 Mln €|novembre 2026|nov 2026|3 novembre 2026|03/11/2026"
        );
    }

    #[test]
    fn nulls_render_no_data() {
        let nulls = serde_json::json!({
            "r": null, "n": null, "a": null, "rate": null, "d": null, "rel": null,
            "m": null, "day": null,
        });
        let de = render(Locale::DeDe, TEMPLATE, &nulls).expect("renders");
        assert_eq!(de, vec!["keine Daten"; 14].join("|"));
    }

    #[test]
    fn errors_name_the_filter_and_the_input() {
        let ctx = serde_json::json!({ "s": "abc", "o": {"x": 1}, "m": "2026-13", "n": 1 });
        let cases = [
            ("{{ s | percent }}", "filter `percent`: expected a number or null, got string \"abc\""),
            ("{{ o | currency }}", "filter `currency`: expected a number or null, got object {\"x\":1}"),
            (
                "{{ m | month }}",
                "filter `month`: expected a YYYY-MM or YYYY-MM-DD string or null, got string \"2026-13\"",
            ),
            ("{{ n | date }}", "filter `date`: expected a YYYY-MM-DD string or null, got number 1"),
            ("{{ n | number(decimal=2) }}", "filter `number`: unknown argument(s) decimal; accepted: decimals"),
            (
                "{{ n | number(decimals=-1) }}",
                "filter `number`: argument `decimals` must be an integer 0..=10, got number -1",
            ),
            (
                "{{ n | delta_pp(arrow=\"yes\") }}",
                "filter `delta_pp`: argument `arrow` must be true or false, got string \"yes\"",
            ),
            (
                "{{ m | month(style=\"tiny\") }}",
                "filter `month`: argument `style` must be one of \"long\", \"short\", got string \"tiny\"",
            ),
        ];
        for (template, want) in cases {
            let got = error_text(render(Locale::EnUs, template, &ctx));
            assert!(got.contains(want), "{template}: {got}");
        }
    }

    #[test]
    fn output_is_html_escaped_once() {
        let mut tera = Tera::default();
        register(&mut tera, Locale::EnUs, "<b>");
        let ctx = Context::from_value(serde_json::json!({ "r": 1, "d": "2026-11-03" })).expect("context");
        let out = tera.render_str("{{ r | currency }} {{ d | date(style=\"numeric\") }}", &ctx).expect("renders");
        assert_eq!(out, "&lt;B&gt;1.00 11/03/2026");
    }

    #[test]
    fn integers_are_exact_and_floats_round() {
        let ctx = serde_json::json!({ "big": 9007199254740993_i64, "f": 2.5 });
        let out = render(Locale::EnUs, "{{ big | number }} {{ f | number }}", &ctx);
        assert_eq!(out.expect("renders"), "9,007,199,254,740,993 2");
    }
}
