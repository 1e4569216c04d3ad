//! What a template sees: the tables its report declares, as rows; the run's parameters;
//! the run manifest; and the formatting the filters use. No figure is computed here:
//! every number is a value of a table (docs/report-context.md documents the context).

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use super::format::Locale;
use super::rows::Row;
use crate::config::Report;
use crate::manifest::Manifest;

/// The root of the template context of one report.
#[derive(Debug, Serialize)]
pub(super) struct Context<'a> {
    /// How values are formatted.
    pub report: Formatting,
    /// Every parameter of the run, by name (`params.as_of`, `params.clv_horizon_months`, …).
    pub params: &'a IndexMap<String, Value>,
    /// The run's manifest: pipeline, run id, sources read, warnings.
    pub run: &'a Manifest,
    /// The tables the report declares, by name, as rows; a declared table that is
    /// missing (its stage was skipped) has no rows.
    pub tables: IndexMap<&'a str, &'a [Row]>,
}

/// The locale and currency the report is formatted for.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Formatting {
    /// The locale tag, e.g. `en-US`.
    pub locale: String,
    /// The ISO 4217 code of the reporting currency, e.g. `EUR`.
    pub currency: String,
    /// Its symbol in the locale, e.g. `€`.
    pub currency_symbol: String,
    /// The locale's text for a missing value, e.g. `no data` (what the filters print for null).
    pub no_data: String,
}

impl Formatting {
    pub(super) fn new(locale: Locale, currency: &str) -> Self {
        Formatting {
            locale: locale.tag().to_string(),
            currency: currency.to_string(),
            currency_symbol: locale.currency_symbol(currency),
            no_data: locale.no_data().to_string(),
        }
    }
}

impl<'a> Context<'a> {
    /// The context of `report`, its tables picked from `rows`.
    pub(super) fn new(
        report: &'a Report,
        formatting: &Formatting,
        params: &'a IndexMap<String, Value>,
        run: &'a Manifest,
        rows: &'a IndexMap<String, Vec<Row>>,
    ) -> Self {
        let tables =
            report.tables.iter().map(|name| (name.as_str(), rows.get(name).map_or(&[][..], Vec::as_slice))).collect();
        Context { report: formatting.clone(), params, run, tables }
    }
}
