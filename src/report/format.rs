//! Locale-aware formatting of the numbers, money, rates and dates the KPI report shows.
//!
//! Written without external crates: the report needs five locales and a dozen
//! patterns, which is far less than a CLDR implementation brings along. The
//! conventions follow CLDR for each locale (separators, symbol placement, percent
//! spacing, month names), with two deliberate choices:
//!
//! - the space between a number and its unit or currency symbol is a no-break space
//!   (U+00A0), and the French thousands separator is a narrow no-break space
//!   (U+202F), so a figure never wraps across lines in HTML or print;
//! - the minus sign is the ASCII hyphen-minus, as CLDR has it for these locales.
//!
//! Rounding is Rust's: the exact binary value is rounded, ties to even (so 2.5 with
//! no decimals prints "2"), which keeps outputs reproducible across platforms.
//!
//! Every formatter takes an `Option` and renders the locale's "no data" text for
//! `None`: an input the pipeline could not compute (see METRICS.md) is shown, never
//! hidden. Non-finite floats (NaN from a 0/0 rate, infinities) are treated the same
//! way, because printing "NaN %" in an executive report helps nobody.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// No-break space: between a number and its unit or currency symbol.
const NBSP: &str = "\u{a0}";
/// Narrow no-break space: the French thousands separator.
const NNBSP: &str = "\u{202f}";

/// A report locale: decides separators, currency placement, month names and the
/// "no data" text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    /// English (United States).
    EnUs,
    /// English (United Kingdom).
    EnGb,
    /// Italian (Italy).
    ItIt,
    /// German (Germany).
    DeDe,
    /// French (France).
    FrFr,
}

/// The error of parsing an unsupported locale tag; its message lists the supported ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLocale {
    /// The tag that was given.
    pub input: String,
}

impl fmt::Display for UnknownLocale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let supported: Vec<&str> = Locale::ALL.iter().map(|l| l.tag()).collect();
        write!(f, "unknown locale {:?}: supported locales are {}", self.input, supported.join(", "))
    }
}

impl std::error::Error for UnknownLocale {}

/// How a month is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthStyle {
    /// Full month name and year: "November 2026", "novembre 2026".
    Long,
    /// Abbreviated month name and year: "Nov 2026", "nov. 2026".
    Short,
}

/// How a calendar date is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// Full month name: "November 3, 2026", "3. November 2026".
    Long,
    /// Abbreviated month name: "Nov 3, 2026", "3 nov. 2026".
    Medium,
    /// Digits only, zero-padded, four-digit year: "11/03/2026", "03.11.2026".
    Numeric,
}

/// A month written `YYYY-MM` or `YYYY-MM-DD` (a `period` or `cohort_month` column, the
/// month's first day), as the first day of that month.
pub fn parse_month(text: &str) -> Option<NaiveDate> {
    match text.len() {
        7 => parse_date(&format!("{text}-01")),
        10 => parse_date(text).and_then(|date| date.with_day(1)),
        _ => None,
    }
}

/// A date written exactly `YYYY-MM-DD` (zero-padded, as tables and parameters write
/// them) that exists in the calendar.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    shape.then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()).flatten()
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_EN_SHORT: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_IT: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const MONTHS_IT_SHORT: [&str; 12] =
    ["gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const MONTHS_DE_SHORT: [&str; 12] =
    ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_FR_SHORT: [&str; 12] =
    ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."];

/// Arrow shown before a rising delta.
const ARROW_UP: &str = "▲";
/// Arrow shown before a falling delta.
const ARROW_DOWN: &str = "▼";
/// Shown before a delta that rounds to zero; from the same Unicode block as the
/// arrows so that a font covering one covers all three.
const ARROW_FLAT: &str = "●";

impl Locale {
    /// Every supported locale, in the order error messages list them.
    pub const ALL: [Locale; 5] = [Locale::EnUs, Locale::EnGb, Locale::ItIt, Locale::DeDe, Locale::FrFr];

    /// The BCP 47 tag, e.g. `"it-IT"`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::EnUs => "en-US",
            Locale::EnGb => "en-GB",
            Locale::ItIt => "it-IT",
            Locale::DeDe => "de-DE",
            Locale::FrFr => "fr-FR",
        }
    }

    /// The text shown in place of a value that is missing.
    pub fn no_data(self) -> &'static str {
        match self {
            Locale::EnUs | Locale::EnGb => "no data",
            Locale::ItIt => "nessun dato",
            Locale::DeDe => "keine Daten",
            Locale::FrFr => "aucune donnée",
        }
    }

    fn is_english(self) -> bool {
        matches!(self, Locale::EnUs | Locale::EnGb)
    }

    fn group_separator(self) -> &'static str {
        match self {
            Locale::EnUs | Locale::EnGb => ",",
            Locale::ItIt | Locale::DeDe => ".",
            Locale::FrFr => NNBSP,
        }
    }

    fn decimal_separator(self) -> &'static str {
        if self.is_english() { "." } else { "," }
    }

    /// What goes between a number and the percent sign.
    fn percent_space(self) -> &'static str {
        match self {
            Locale::EnUs | Locale::EnGb | Locale::ItIt => "",
            Locale::DeDe => NBSP,
            Locale::FrFr => NNBSP,
        }
    }

    /// Formats a finite non-negative magnitude with `places` decimals and grouping.
    fn digits(self, magnitude: f64, places: usize) -> String {
        let fixed = format!("{magnitude:.places$}");
        let (int, frac) = fixed.split_once('.').unwrap_or((fixed.as_str(), ""));
        let mut out = group_digits(int, self.group_separator());
        if !frac.is_empty() {
            out.push_str(self.decimal_separator());
            out.push_str(frac);
        }
        out
    }

    /// A finite value with `places` decimals, grouped, with a leading "-" when it is
    /// negative and does not round to zero ("-0.0" is never printed).
    fn fixed(self, value: f64, places: usize) -> String {
        let body = self.digits(value.abs(), places);
        if value < 0.0 && !rounds_to_zero(value, places) { format!("-{body}") } else { body }
    }

    /// An integer with thousands separators: `1,234,567` / `1.234.567`.
    pub fn integer(self, value: Option<i64>) -> String {
        match value {
            None => self.no_data().to_string(),
            Some(v) => {
                let body = group_digits(&v.unsigned_abs().to_string(), self.group_separator());
                if v < 0 { format!("-{body}") } else { body }
            }
        }
    }

    /// A number with exactly `places` decimals and thousands separators:
    /// `1,234.50` / `1.234,50`.
    pub fn decimal(self, value: Option<f64>, places: usize) -> String {
        match finite(value) {
            None => self.no_data().to_string(),
            Some(v) => self.fixed(v, places),
        }
    }

    /// A money amount in the currency with ISO 4217 `code` with exactly `places` decimals
    /// (its usual ones: [`currency_minor_units`]; 0 for revenue headlines): en-US
    /// `$1,234.50`, it-IT `1.234,50 €`. A code without a known symbol is written as the code.
    pub fn currency_places(self, value: Option<f64>, code: &str, places: usize) -> String {
        match finite(value) {
            None => self.no_data().to_string(),
            Some(v) => {
                let negative = v < 0.0 && !rounds_to_zero(v, places);
                self.place_currency(&self.digits(v.abs(), places), negative, code)
            }
        }
    }

    /// Puts the currency symbol around an already formatted magnitude.
    fn place_currency(self, magnitude: &str, negative: bool, code: &str) -> String {
        let sign = if negative { "-" } else { "" };
        let symbol = self.currency_symbol(code);
        if self.is_english() {
            // CLDR's English pattern puts the symbol first, with a space only when the
            // symbol ends in a letter ("CHF 12.00" but "$12.00").
            let space = if symbol.ends_with(|c: char| c.is_alphabetic()) { NBSP } else { "" };
            format!("{sign}{symbol}{space}{magnitude}")
        } else {
            format!("{sign}{magnitude}{NBSP}{symbol}")
        }
    }

    /// The symbol for an ISO 4217 code in this locale, or the (upper-cased) code.
    pub fn currency_symbol(self, code: &str) -> String {
        let code = code.trim().to_ascii_uppercase();
        let symbol = match (code.as_str(), self) {
            ("EUR", _) => "€",
            ("USD", Locale::EnUs | Locale::DeDe) => "$",
            ("USD", Locale::EnGb) => "US$",
            ("USD", Locale::FrFr) => "$US",
            ("GBP", Locale::FrFr) => "£GB",
            ("GBP", _) => "£",
            ("JPY", Locale::EnUs | Locale::EnGb | Locale::DeDe) => "¥",
            _ => return code,
        };
        symbol.to_string()
    }

    /// A rate in 0..1 as a percentage with `places` decimals: `12.3%` / `12,3 %`.
    pub fn percent(self, rate: Option<f64>, places: usize) -> String {
        match finite(rate) {
            None => self.no_data().to_string(),
            Some(r) => format!("{}{}%", self.fixed(r * 100.0, places), self.percent_space()),
        }
    }

    /// The difference of two rates (both in 0..1) in percentage points, always
    /// signed: `+1.2 pp`, `-0.8 pp`, `0.0 pp`; with `arrow`, prefixed by ▲, ▼ or ●.
    pub fn delta_pp(self, difference: Option<f64>, places: usize, arrow: bool) -> String {
        match finite(difference) {
            None => self.no_data().to_string(),
            Some(d) => {
                let unit = match self {
                    Locale::EnUs | Locale::EnGb => "pp",
                    Locale::ItIt => "p.p.",
                    Locale::DeDe => "Pp.",
                    Locale::FrFr => "pt",
                };
                let number = self.signed(d * 100.0, places);
                with_arrow(d * 100.0, places, arrow, format!("{number}{NBSP}{unit}"))
            }
        }
    }

    /// A relative change (0.034 for +3.4%) as a signed percentage: `+3.4%`,
    /// `-12,0 %`; with `arrow`, prefixed by ▲, ▼ or ●.
    pub fn delta_pct(self, change: Option<f64>, places: usize, arrow: bool) -> String {
        match finite(change) {
            None => self.no_data().to_string(),
            Some(c) => {
                let number = self.signed(c * 100.0, places);
                let text = format!("{number}{}%", self.percent_space());
                with_arrow(c * 100.0, places, arrow, text)
            }
        }
    }

    /// A difference of two plain numbers (NPS points, days), always signed: `+3.2`,
    /// `-1,5`, `0.0`; with `arrow`, prefixed by ▲, ▼ or ●. Relative changes of such
    /// values mislead (an NPS going from 2 to 4 is not "+100%"), so they are shown as
    /// differences.
    pub fn delta_number(self, difference: Option<f64>, places: usize, arrow: bool) -> String {
        match finite(difference) {
            None => self.no_data().to_string(),
            Some(d) => with_arrow(d, places, arrow, self.signed(d, places)),
        }
    }

    /// A number with an explicit sign; zero (after rounding) gets none.
    fn signed(self, value: f64, places: usize) -> String {
        let body = self.digits(value.abs(), places);
        if rounds_to_zero(value, places) {
            body
        } else if value < 0.0 {
            format!("-{body}")
        } else {
            format!("+{body}")
        }
    }

    /// Short-scale suffixes with their magnitudes, smallest first. Italian and German
    /// do not abbreviate thousands (CLDR), so their list starts at millions.
    fn compact_units(self) -> &'static [(f64, &'static str)] {
        match self {
            Locale::EnUs | Locale::EnGb => &[(1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T")],
            Locale::ItIt => &[(1e6, "Mln"), (1e9, "Mrd"), (1e12, "Bln")],
            Locale::DeDe => &[(1e6, "Mio."), (1e9, "Mrd."), (1e12, "Bio.")],
            Locale::FrFr => &[(1e3, "k"), (1e6, "M"), (1e9, "Md"), (1e12, "Bn")],
        }
    }

    /// A magnitude in compact form without sign: `1.2M`, `12K`, `1,2 Mln`, `950`.
    fn compact_magnitude(self, magnitude: f64) -> String {
        let units = self.compact_units();
        // Start from the largest unit not above the value (None: below every unit).
        let mut index = units.iter().rposition(|(size, _)| magnitude >= *size);
        loop {
            let scaled = index.map_or(magnitude, |i| magnitude / units[i].0);
            // Two significant digits below ten ("1.2M"), whole numbers above ("12M",
            // "123M"), as CLDR's compact patterns do.
            let places = if scaled < 9.95 { 1 } else { 0 };
            let rounded = format!("{scaled:.places$}").parse::<f64>().unwrap_or(scaled);
            let size = index.map_or(1.0, |i| units[i].0);
            let next = index.map_or(0, |i| i + 1);
            // Rounding can reach the next unit: 999,960 would print as "1000K"; move
            // up to "1M" instead.
            if units.get(next).is_some_and(|(next_size, _)| rounded * size >= *next_size) {
                index = Some(next);
                continue;
            }
            let mut number = self.digits(scaled, places);
            if places > 0 {
                let zero = format!("{}0", self.decimal_separator());
                if let Some(stripped) = number.strip_suffix(&zero) {
                    number = stripped.to_string();
                }
            }
            return match index {
                None => number,
                Some(i) => {
                    let space = if self.is_english() { "" } else { NBSP };
                    format!("{number}{space}{}", units[i].1)
                }
            };
        }
    }

    /// A number in compact form for headlines and axes: `1.2M`, `12K`, `1,2 Mln`.
    pub fn compact(self, value: Option<f64>) -> String {
        match finite(value) {
            None => self.no_data().to_string(),
            Some(v) => {
                let body = self.compact_magnitude(v.abs());
                if v < 0.0 && body != "0" { format!("-{body}") } else { body }
            }
        }
    }

    /// A money amount in compact form: `$1.2M`, `1,2 Mln €`, `1,2 M €`.
    pub fn currency_compact(self, value: Option<f64>, code: &str) -> String {
        match finite(value) {
            None => self.no_data().to_string(),
            Some(v) => {
                let body = self.compact_magnitude(v.abs());
                self.place_currency(&body, v < 0.0 && body != "0", code)
            }
        }
    }

    /// The name of a month (1..=12), full or abbreviated.
    fn month_name(self, month: u32, style: MonthStyle) -> &'static str {
        let names = match (self, style) {
            (Locale::EnUs | Locale::EnGb, MonthStyle::Long) => &MONTHS_EN,
            (Locale::EnUs | Locale::EnGb, MonthStyle::Short) => &MONTHS_EN_SHORT,
            (Locale::ItIt, MonthStyle::Long) => &MONTHS_IT,
            (Locale::ItIt, MonthStyle::Short) => &MONTHS_IT_SHORT,
            (Locale::DeDe, MonthStyle::Long) => &MONTHS_DE,
            (Locale::DeDe, MonthStyle::Short) => &MONTHS_DE_SHORT,
            (Locale::FrFr, MonthStyle::Long) => &MONTHS_FR,
            (Locale::FrFr, MonthStyle::Short) => &MONTHS_FR_SHORT,
        };
        names[month.clamp(1, 12) as usize - 1]
    }

    /// The month of a date with its year: `November 2026`, `novembre 2026`, `Nov 2026`.
    pub fn month(self, month: Option<NaiveDate>, style: MonthStyle) -> String {
        match month {
            None => self.no_data().to_string(),
            Some(m) => format!("{} {}", self.month_name(m.month(), style), m.year()),
        }
    }

    /// A calendar date: `November 3, 2026`, `3 novembre 2026`, `03.11.2026`.
    pub fn date(self, date: Option<NaiveDate>, style: DateStyle) -> String {
        let Some(d) = date else {
            return self.no_data().to_string();
        };
        let (y, m, day) = (d.year(), d.month(), d.day());
        match style {
            DateStyle::Numeric => match self {
                Locale::EnUs => format!("{m:02}/{day:02}/{y:04}"),
                Locale::DeDe => format!("{day:02}.{m:02}.{y:04}"),
                Locale::EnGb | Locale::ItIt | Locale::FrFr => format!("{day:02}/{m:02}/{y:04}"),
            },
            DateStyle::Long | DateStyle::Medium => {
                let month_style = if style == DateStyle::Long { MonthStyle::Long } else { MonthStyle::Short };
                let name = self.month_name(m, month_style);
                match self {
                    Locale::EnUs => format!("{name} {day}, {y}"),
                    Locale::DeDe => format!("{day}. {name} {y}"),
                    Locale::EnGb | Locale::ItIt | Locale::FrFr => format!("{day} {name} {y}"),
                }
            }
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl FromStr for Locale {
    type Err = UnknownLocale;

    /// Parses a tag such as `it-IT`; case and `-`/`_` do not matter (`it_it` works).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('_', "-");
        Locale::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| UnknownLocale { input: s.to_string() })
    }
}

/// The decimals a currency is normally shown with (ISO 4217 minor units).
pub fn currency_minor_units(code: &str) -> usize {
    match code.trim().to_ascii_uppercase().as_str() {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" => 0,
        _ => 2,
    }
}

/// Drops non-finite values: they are rendered as "no data".
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// Whether `value` prints as zero with `places` decimals.
fn rounds_to_zero(value: f64, places: usize) -> bool {
    format!("{:.places$}", value.abs()).bytes().all(|b| b == b'0' || b == b'.')
}

fn with_arrow(value: f64, places: usize, arrow: bool, text: String) -> String {
    if !arrow {
        return text;
    }
    let symbol = if rounds_to_zero(value, places) {
        ARROW_FLAT
    } else if value > 0.0 {
        ARROW_UP
    } else {
        ARROW_DOWN
    };
    format!("{symbol}{NBSP}{text}")
}

/// Inserts `separator` between groups of three digits of an ASCII digit string.
fn group_digits(digits: &str, separator: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * separator.len());
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Locale; 5] = Locale::ALL;

    /// Money with the currency's usual decimals, as the `currency` filter writes it.
    fn money(locale: Locale, value: Option<f64>, code: &str) -> String {
        locale.currency_places(value, code, currency_minor_units(code))
    }

    /// Makes the invisible spaces visible in expectations: `_` is U+00A0, `~` U+202F.
    fn vis(s: &str) -> String {
        s.replace('\u{a0}', "_").replace('\u{202f}', "~")
    }

    #[test]
    fn parses_locales_loosely_and_lists_supported_ones_on_error() {
        assert_eq!("it-IT".parse(), Ok(Locale::ItIt));
        assert_eq!(" en_gb ".parse(), Ok(Locale::EnGb));
        assert_eq!("DE-de".parse(), Ok(Locale::DeDe));
        for l in ALL {
            assert_eq!(l.tag().parse(), Ok(l));
            assert_eq!(l.to_string(), l.tag());
        }
        let err = "es-ES".parse::<Locale>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown locale \"es-ES\": supported locales are en-US, en-GB, it-IT, de-DE, fr-FR"
        );
    }

    #[test]
    fn integers_are_grouped_per_locale() {
        let got: Vec<String> = ALL.iter().map(|l| vis(&l.integer(Some(-1_234_567)))).collect();
        assert_eq!(got, ["-1,234,567", "-1,234,567", "-1.234.567", "-1.234.567", "-1~234~567"]);
        assert_eq!(Locale::EnUs.integer(Some(999)), "999");
        assert_eq!(Locale::EnUs.integer(Some(1000)), "1,000");
        assert_eq!(Locale::EnUs.integer(Some(0)), "0");
        assert_eq!(Locale::EnUs.integer(Some(i64::MIN)), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn decimals_round_and_never_print_negative_zero() {
        assert_eq!(Locale::EnUs.decimal(Some(1234.5), 2), "1,234.50");
        assert_eq!(Locale::ItIt.decimal(Some(1234.5), 2), "1.234,50");
        assert_eq!(vis(&Locale::FrFr.decimal(Some(1234.5), 1)), "1~234,5");
        assert_eq!(Locale::DeDe.decimal(Some(0.125), 0), "0");
        assert_eq!(Locale::EnUs.decimal(Some(-0.004), 2), "0.00");
        assert_eq!(Locale::EnUs.decimal(Some(-0.006), 2), "-0.01");
        assert_eq!(Locale::EnUs.decimal(Some(999.996), 2), "1,000.00");
    }

    #[test]
    fn currency_symbol_and_placement_per_locale() {
        let eur: Vec<String> = ALL.iter().map(|l| vis(&money(*l, Some(1234.5), "EUR"))).collect();
        assert_eq!(eur, ["€1,234.50", "€1,234.50", "1.234,50_€", "1.234,50_€", "1~234,50_€"]);
        let usd: Vec<String> = ALL.iter().map(|l| vis(&money(*l, Some(1234.5), "usd"))).collect();
        assert_eq!(usd, ["$1,234.50", "US$1,234.50", "1.234,50_USD", "1.234,50_$", "1~234,50_$US"]);
        assert_eq!(money(Locale::EnGb, Some(-7.0), "GBP"), "-£7.00");
        assert_eq!(vis(&money(Locale::FrFr, Some(7.0), "GBP")), "7,00_£GB");
        assert_eq!(vis(&money(Locale::EnUs, Some(12.0), "CHF")), "CHF_12.00");
        assert_eq!(vis(&money(Locale::ItIt, Some(12.0), "CHF")), "12,00_CHF");
        assert_eq!(money(Locale::EnUs, Some(1234.4), "JPY"), "¥1,234");
        assert_eq!(Locale::EnUs.currency_places(Some(1234.5), "USD", 0), "$1,234");
        assert_eq!(money(Locale::EnUs, Some(-0.001), "USD"), "$0.00");
    }

    #[test]
    fn percent_spacing_per_locale() {
        let got: Vec<String> = ALL.iter().map(|l| vis(&l.percent(Some(0.1234), 1))).collect();
        assert_eq!(got, ["12.3%", "12.3%", "12,3%", "12,3_%", "12,3~%"]);
        assert_eq!(Locale::EnUs.percent(Some(1.0), 0), "100%");
        assert_eq!(Locale::EnUs.percent(Some(0.07), 0), "7%");
    }

    #[test]
    fn deltas_are_signed_with_optional_arrows() {
        assert_eq!(vis(&Locale::EnUs.delta_pp(Some(0.012), 1, false)), "+1.2_pp");
        assert_eq!(vis(&Locale::EnUs.delta_pp(Some(-0.008), 1, true)), "▼_-0.8_pp");
        assert_eq!(vis(&Locale::EnUs.delta_pp(Some(0.0004), 1, true)), "●_0.0_pp");
        assert_eq!(vis(&Locale::ItIt.delta_pp(Some(0.012), 1, false)), "+1,2_p.p.");
        assert_eq!(vis(&Locale::DeDe.delta_pp(Some(0.012), 1, false)), "+1,2_Pp.");
        assert_eq!(vis(&Locale::FrFr.delta_pp(Some(0.012), 1, false)), "+1,2_pt");
        assert_eq!(vis(&Locale::EnUs.delta_pct(Some(0.034), 1, true)), "▲_+3.4%");
        assert_eq!(vis(&Locale::DeDe.delta_pct(Some(-0.12), 1, false)), "-12,0_%");
        assert_eq!(vis(&Locale::ItIt.delta_pct(Some(0.5), 0, false)), "+50%");
        assert_eq!(Locale::EnUs.delta_pct(Some(-0.0001), 1, false), "0.0%");
        assert_eq!(vis(&Locale::EnUs.delta_number(Some(3.25), 1, true)), "▲_+3.2");
        assert_eq!(vis(&Locale::ItIt.delta_number(Some(-1234.5), 1, false)), "-1.234,5");
        assert_eq!(vis(&Locale::DeDe.delta_number(Some(-0.04), 1, true)), "●_0,0");
    }

    #[test]
    fn compact_numbers() {
        let en = Locale::EnUs;
        let cases = [
            (0.0, "0"),
            (7.26, "7.3"),
            (950.0, "950"),
            (999.7, "1K"),
            (1000.0, "1K"),
            (1234.0, "1.2K"),
            (12_345.0, "12K"),
            (123_456.0, "123K"),
            (999_960.0, "1M"),
            (1_200_000.0, "1.2M"),
            (3_400_000_000.0, "3.4B"),
            (-1_500_000.0, "-1.5M"),
            (-0.01, "0"),
        ];
        for (value, want) in cases {
            assert_eq!(en.compact(Some(value)), want, "{value}");
        }
        assert_eq!(vis(&Locale::ItIt.compact(Some(12_345.0))), "12.345");
        assert_eq!(vis(&Locale::ItIt.compact(Some(999.7))), "1.000");
        assert_eq!(vis(&Locale::ItIt.compact(Some(999_999.7))), "1_Mln");
        assert_eq!(vis(&Locale::ItIt.compact(Some(1_234_567.0))), "1,2_Mln");
        assert_eq!(vis(&Locale::DeDe.compact(Some(2_500_000_000.0))), "2,5_Mrd.");
        assert_eq!(vis(&Locale::FrFr.compact(Some(1_234.0))), "1,2_k");
        assert_eq!(Locale::EnUs.currency_compact(Some(1_234_567.0), "USD"), "$1.2M");
        assert_eq!(vis(&Locale::ItIt.currency_compact(Some(-1_234_567.0), "EUR")), "-1,2_Mln_€");
    }

    #[test]
    fn months_and_dates() {
        let nov = parse_month("2026-11");
        let long: Vec<String> = ALL.iter().map(|l| l.month(nov, MonthStyle::Long)).collect();
        assert_eq!(long, ["November 2026", "November 2026", "novembre 2026", "November 2026", "novembre 2026"]);
        let short: Vec<String> = ALL.iter().map(|l| l.month(nov, MonthStyle::Short)).collect();
        assert_eq!(short, ["Nov 2026", "Nov 2026", "nov 2026", "Nov. 2026", "nov. 2026"]);

        let d = parse_date("2026-03-07");
        let long: Vec<String> = ALL.iter().map(|l| l.date(d, DateStyle::Long)).collect();
        assert_eq!(long, ["March 7, 2026", "7 March 2026", "7 marzo 2026", "7. März 2026", "7 mars 2026"]);
        let medium: Vec<String> = ALL.iter().map(|l| l.date(d, DateStyle::Medium)).collect();
        assert_eq!(medium, ["Mar 7, 2026", "7 Mar 2026", "7 mar 2026", "7. März 2026", "7 mars 2026"]);
        let numeric: Vec<String> = ALL.iter().map(|l| l.date(d, DateStyle::Numeric)).collect();
        assert_eq!(numeric, ["03/07/2026", "07/03/2026", "07/03/2026", "07.03.2026", "07/03/2026"]);
    }

    #[test]
    fn date_parsing_validates_the_calendar() {
        assert_eq!(parse_date("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in ["2023-02-29", "2026-13-01", "2026-1-01", "2026-01-01T00:00", "", "abcd-ef-gh", "+2026-1-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_month("2026-11"), NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(parse_month("2026-11-21"), NaiveDate::from_ymd_opt(2026, 11, 1));
        for bad in ["2026-00", "2026-13", "26-11", "2026-11-31", "+026-11"] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
    }

    #[test]
    fn missing_and_non_finite_values_say_no_data() {
        let texts: Vec<&str> = ALL.iter().map(|l| l.no_data()).collect();
        assert_eq!(texts, ["no data", "no data", "nessun dato", "keine Daten", "aucune donnée"]);
        for l in ALL {
            let nd = l.no_data();
            assert_eq!(l.integer(None), nd);
            assert_eq!(l.decimal(Some(f64::NAN), 2), nd);
            assert_eq!(money(l, None, "EUR"), nd);
            assert_eq!(l.currency_compact(Some(f64::INFINITY), "EUR"), nd);
            assert_eq!(l.percent(Some(f64::NAN), 1), nd);
            assert_eq!(l.delta_pp(None, 1, true), nd);
            assert_eq!(l.delta_pct(None, 1, true), nd);
            assert_eq!(l.delta_number(None, 1, true), nd);
            assert_eq!(l.compact(None), nd);
            assert_eq!(l.month(None, MonthStyle::Long), nd);
            assert_eq!(l.date(None, DateStyle::Long), nd);
        }
    }
}
