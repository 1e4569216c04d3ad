//! Compiling what a pipeline expects of its data: stages' `tests`, sources' `freshness`
//! and `volume`. Everything that can be checked without the tables' schemas is checked
//! here, each problem with its line; the columns of stages are checked when the tests are
//! planned (`fidelis validate`, or when the stage has run).

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use indexmap::IndexMap;

use super::super::locate::locate;
use super::super::quality::{
    AcceptedValues, Age, DataTest, Declared, Freshness, Percent, TableColumn, TestKind, Threshold, Volume,
};
use super::super::raw::{RawFreshness, RawTest, RawVolume};
use super::super::types::ColumnType;
use super::super::{Column, Severity, Source};
use super::Compiler;

/// The kinds of test, as written.
const KINDS: &str = "unique, not_null, accepted_values, relationships, accepted_range, expression";

/// Longest part of a default name taken from an expression's text.
const EXPRESSION_NAME_CHARS: usize = 40;

impl Compiler<'_> {
    /// The tests of `stage`; `sources` and `stages` are the tables a test may refer to.
    pub(super) fn tests(
        &mut self,
        stage: &str,
        raw: &[RawTest],
        sources: &IndexMap<String, Source>,
        stages: &BTreeSet<&str>,
    ) -> Vec<DataTest> {
        let mut tests: Vec<DataTest> = Vec::new();
        let mut names = HashSet::new();
        for (index, spec) in raw.iter().enumerate() {
            let index = index.to_string();
            let at = ["stages", stage, "tests", index.as_str()];
            let Some(kind) = self.test_kind(stage, &at, spec, sources, stages) else { continue };
            let name = match &spec.name {
                Some(name) => {
                    if !is_test_name(name) {
                        self.error(
                            &[&at[..], &["name"]].concat(),
                            format!("test name `{name}` of stage `{stage}` is not a plain name"),
                            "use letters, digits, `_` and `-` (it names the folder of the test's failing rows)",
                        );
                    }
                    name.clone()
                }
                None => default_name(stage, &kind),
            };
            if !names.insert(name.clone()) {
                self.error(
                    &at,
                    format!("stage `{stage}` has two tests named `{name}`"),
                    "give one of them another `name:`",
                );
            }
            let mut threshold = |key: &str, text: &Option<String>| {
                let what = format!("`{key}` of a test of stage `{stage}`");
                let parsed = self.optional(text.clone(), &[&at[..], &[key]].concat(), &what, THRESHOLD_HINT);
                parsed.map(|threshold| threshold.unwrap_or(Threshold::ANY))
            };
            let (error_if, warn_if) = (threshold("error_if", &spec.error_if), threshold("warn_if", &spec.warn_if));
            if spec.severity == Severity::Warn && spec.error_if.is_some() {
                self.error(
                    &[&at[..], &["error_if"]].concat(),
                    format!(
                        "test `{name}` of stage `{stage}` has `severity: warn`, so its `error_if` would never apply"
                    ),
                    "remove `error_if`, or set `severity: error`",
                );
            }
            let (Some(error_if), Some(warn_if)) = (error_if, warn_if) else { continue };
            tests.push(DataTest {
                name,
                kind,
                severity: spec.severity,
                error_if,
                warn_if,
                description: spec.description.clone(),
                declared: Declared { file: self.file.clone(), location: locate(self.text, &at) },
            });
        }
        tests
    }

    /// The one kind a test is, with its arguments checked.
    fn test_kind(
        &mut self,
        stage: &str,
        at: &[&str],
        spec: &RawTest,
        sources: &IndexMap<String, Source>,
        stages: &BTreeSet<&str>,
    ) -> Option<TestKind> {
        let written: Vec<&str> = [
            ("unique", spec.unique.is_some()),
            ("not_null", spec.not_null.is_some()),
            ("accepted_values", spec.accepted_values.is_some()),
            ("relationships", spec.relationships.is_some()),
            ("accepted_range", spec.accepted_range.is_some()),
            ("expression", spec.expression.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, present)| present.then_some(kind))
        .collect();
        if written.len() != 1 {
            let message = match written.is_empty() {
                true => format!("a test of stage `{stage}` says what to check with none of: {KINDS}"),
                false => format!("a test of stage `{stage}` is of several kinds: {}", written.join(", ")),
            };
            self.error(at, message, "write one kind per test, e.g. `- unique: customer_id`");
            return None;
        }
        let key = |kind: &'static str| [at, &[kind]].concat();
        let reference = |this: &mut Self, text: &str, at: &[&str]| -> Option<TableColumn> {
            let parsed = text.parse::<TableColumn>();
            let reference = parsed.map_err(|message| this.error(at, message, REFERENCE_HINT)).ok()?;
            this.reference(stage, &reference, at, sources, stages).then_some(reference)
        };
        if let Some(columns) = &spec.unique {
            let mut seen = HashSet::new();
            let repeated: Vec<&String> = columns.0.iter().filter(|column| !seen.insert(*column)).collect();
            if columns.0.is_empty() || !repeated.is_empty() {
                self.error(
                    &key("unique"),
                    format!("`unique` of stage `{stage}` needs distinct columns"),
                    "write a column, or a list of columns whose combination is unique: `unique: [cohort_month, period_index]`",
                );
                return None;
            }
            return Some(TestKind::Unique { columns: columns.0.clone() });
        }
        if let Some(column) = &spec.not_null {
            return Some(TestKind::NotNull { column: column.clone() });
        }
        if let Some(accepted) = &spec.accepted_values {
            let at = key("accepted_values");
            let values = match (&accepted.values, &accepted.values_from) {
                (Some(values), None) if !values.is_empty() => {
                    let values: Vec<Option<ScalarValue>> =
                        values.iter().map(|value| self.literal(value, &at)).collect();
                    AcceptedValues::List(values.into_iter().collect::<Option<_>>()?)
                }
                (None, Some(from)) => {
                    AcceptedValues::Column(reference(self, from, &[&at[..], &["values_from"]].concat())?)
                }
                _ => {
                    self.error(
                        &at,
                        format!("`accepted_values` of stage `{stage}` needs either a list of `values` or `values_from`"),
                        "e.g. `{column: kind, values: [purchase, refund]}` or `{column: segment, values_from: rfm_segment_map.segment}`",
                    );
                    return None;
                }
            };
            return Some(TestKind::AcceptedValues { column: accepted.column.clone(), values });
        }
        if let Some(relationships) = &spec.relationships {
            let to = reference(self, &relationships.to, &[&key("relationships")[..], &["to"]].concat())?;
            return Some(TestKind::Relationships { column: relationships.column.clone(), to });
        }
        if let Some(range) = &spec.accepted_range {
            let at = key("accepted_range");
            let min = range.min.as_ref().map(|value| self.literal(value, &at));
            let max = range.max.as_ref().map(|value| self.literal(value, &at));
            let (min, max) = match (min, max) {
                (None, None) => {
                    self.error(
                        &at,
                        format!("`accepted_range` of stage `{stage}` has neither `min` nor `max`"),
                        "give `min`, `max` or both (inclusive), e.g. `{column: p_alive, min: 0, max: 1}`",
                    );
                    return None;
                }
                (Some(None), _) | (_, Some(None)) => return None,
                (min, max) => (min.flatten(), max.flatten()),
            };
            if let (Some(low), Some(high)) = (&min, &max)
                && in_order(low, high) == Some(false)
            {
                self.error(
                    &at,
                    format!("`accepted_range` of stage `{stage}`: `min` {low} is greater than `max` {high}"),
                    "swap them",
                );
                return None;
            }
            return Some(TestKind::AcceptedRange { column: range.column.clone(), min, max });
        }
        let condition = spec.expression.clone()?;
        if let Err(error) = Parser::new(&GenericDialect {}).try_with_sql(&condition).and_then(|mut p| p.parse_expr()) {
            self.error(
                &key("expression"),
                format!("`expression` of stage `{stage}`: invalid SQL condition `{condition}`: {error}"),
                "write a SQL condition over the stage's columns that every row meets, e.g. `retained_customers <= customers_end`",
            );
            return None;
        }
        Some(TestKind::Expression { condition })
    }

    /// Whether `reference` names a source or stage (and, for a source with declared
    /// columns, one of them); reports what it does not.
    fn reference(
        &mut self,
        stage: &str,
        reference: &TableColumn,
        at: &[&str],
        sources: &IndexMap<String, Source>,
        stages: &BTreeSet<&str>,
    ) -> bool {
        let TableColumn { table, column } = reference;
        if let Some(source) = sources.get(table) {
            let declared = source.columns.as_ref();
            if declared.is_some_and(|columns| !columns.iter().any(|c| &c.name == column)) {
                self.error(
                    at,
                    format!("a test of stage `{stage}` refers to `{reference}`, but source `{table}` declares no column `{column}`"),
                    "name a declared column of the source",
                );
                return false;
            }
            return true;
        }
        if stages.contains(table.as_str()) {
            return true;
        }
        let known: Vec<&str> = sources.keys().map(String::as_str).chain(stages.iter().copied()).collect();
        self.error(
            at,
            format!("a test of stage `{stage}` refers to `{reference}`, but `{table}` is neither a source nor a stage"),
            format!("known tables: {}", known.join(", ")),
        );
        false
    }

    /// `text`, when written, parsed; a text that does not parse is reported at `at` as
    /// `{what}: {why}`, and is `None` (`Some(None)`: nothing written).
    fn optional<T: FromStr<Err = String>>(
        &mut self,
        text: Option<String>,
        at: &[&str],
        what: &str,
        hint: &str,
    ) -> Option<Option<T>> {
        match text.map(|text| text.parse::<T>()) {
            None => Some(None),
            Some(Ok(value)) => Some(Some(value)),
            Some(Err(message)) => {
                self.error(at, format!("{what}: {message}"), hint);
                None
            }
        }
    }

    /// A value written in a test (`accepted_values`, `accepted_range`) as a SQL literal.
    fn literal(&mut self, value: &serde_yaml::Value, at: &[&str]) -> Option<ScalarValue> {
        let literal = match value {
            serde_yaml::Value::String(text) => Some(ScalarValue::Utf8(Some(text.clone()))),
            serde_yaml::Value::Bool(flag) => Some(ScalarValue::Boolean(Some(*flag))),
            serde_yaml::Value::Number(number) => match (number.as_i64(), number.as_f64()) {
                (Some(integer), _) => Some(ScalarValue::Int64(Some(integer))),
                (None, Some(float)) if float.is_finite() => Some(ScalarValue::Float64(Some(float))),
                _ => None,
            },
            _ => None,
        };
        if literal.is_none() {
            let shown = serde_yaml::to_string(value).unwrap_or_default();
            self.error(
                at,
                format!("`{}` is not a value a column can hold", shown.trim()),
                "write a number, a boolean or a text (dates as text: '2024-01-31')",
            );
        }
        literal
    }

    /// A source's `freshness`, its column among the declared ones.
    pub(super) fn freshness(
        &mut self,
        source: &str,
        raw: RawFreshness,
        columns: Option<&[Column]>,
    ) -> Option<Freshness> {
        let at = ["sources", source, "freshness"];
        let key = |name: &'static str| [&at[..], &[name]].concat();
        let column = columns.and_then(|columns| columns.iter().find(|c| c.name == raw.column));
        match column.map(|column| column.kind) {
            Some(ColumnType::Timestamp | ColumnType::Date) => {}
            Some(other) => self.error(
                &key("column"),
                format!("the freshness column `{}` of source `{source}` is a {other}", raw.column),
                "name a `timestamp` or `date` column: the one dating each row",
            ),
            None => self.error(
                &key("column"),
                format!("source `{source}` has no declared column `{}` to measure its freshness", raw.column),
                "declare the column (a `timestamp` or `date`) under `columns`, or fix the name",
            ),
        }
        let age = |this: &mut Self, name: &'static str, text: Option<String>| -> Option<Option<Age>> {
            this.optional(text, &key(name), &format!("`{name}` of source `{source}`"), AGE_HINT)
        };
        let warn_after = age(self, "warn_after", raw.warn_after);
        let error_after = age(self, "error_after", raw.error_after);
        if let (Some(Some(warn)), Some(Some(error))) = (&warn_after, &error_after)
            && warn.duration > error.duration
        {
            self.error(
                &key("warn_after"),
                format!("source `{source}`: `warn_after` {} is longer than `error_after` {}", warn.text, error.text),
                "a source warns before it fails: make `warn_after` the shorter",
            );
        }
        let (mut warn_if, mut error_if) = (Some(None), Some(None));
        if let Some(thresholds) = raw.rows_after_as_of {
            let threshold = |this: &mut Self, name: &str, text: Option<String>| {
                let what = format!("`rows_after_as_of.{name}` of source `{source}`");
                this.optional(text, &[&key("rows_after_as_of")[..], &[name]].concat(), &what, THRESHOLD_HINT)
            };
            warn_if = threshold(self, "warn_if", thresholds.warn_if);
            error_if = threshold(self, "error_if", thresholds.error_if);
        }
        column?;
        Some(Freshness {
            column: raw.column,
            warn_after: warn_after?,
            error_after: error_after?,
            rows_after_as_of_warn_if: warn_if?,
            rows_after_as_of_error_if: error_if?,
        })
    }

    /// A source's `volume`.
    pub(super) fn volume(&mut self, source: &str, raw: RawVolume) -> Option<Volume> {
        let at = ["sources", source, "volume"];
        let percent = |this: &mut Self, name: &str, text: Option<String>| -> Option<Option<Percent>> {
            let what = format!("`{name}` of source `{source}`");
            this.optional(text, &[&at[..], &[name]].concat(), &what, "write a percentage such as 50%")
        };
        let warn = percent(self, "warn_if_change_exceeds", raw.warn_if_change_exceeds)?;
        let error = percent(self, "error_if_change_exceeds", raw.error_if_change_exceeds)?;
        if let (Some(warn), Some(error)) = (warn, error)
            && warn.0 > error.0
        {
            self.error(
                &[&at[..], &["warn_if_change_exceeds"]].concat(),
                format!(
                    "source `{source}`: `warn_if_change_exceeds` {warn} is more than `error_if_change_exceeds` {error}"
                ),
                "a source warns before it fails: make the warning's percentage the smaller",
            );
        }
        Some(Volume { min_rows: raw.min_rows, warn_if_change_exceeds: warn, error_if_change_exceeds: error })
    }
}

const THRESHOLD_HINT: &str =
    "write a comparison with a count or a percentage of the rows, quoted: \"> 0\", \">= 10\", \"> 1%\"";
const REFERENCE_HINT: &str = "write the table (a source or stage) and its column as `table.column`";
const AGE_HINT: &str = "write a number and a unit: 30m, 12h, 2d, 1w";

/// dbt's name for a test: the kind, the stage and what it checks.
fn default_name(stage: &str, kind: &TestKind) -> String {
    match kind {
        TestKind::Unique { columns } => format!("unique_{stage}_{}", columns.join("__")),
        TestKind::NotNull { column } => format!("not_null_{stage}_{column}"),
        TestKind::AcceptedValues { column, .. } => format!("accepted_values_{stage}_{column}"),
        TestKind::Relationships { column, to } => {
            format!("relationships_{stage}_{column}__{}__{}", to.column, to.table)
        }
        TestKind::AcceptedRange { column, .. } => format!("accepted_range_{stage}_{column}"),
        TestKind::Expression { condition } => format!("expression_{stage}_{}", name_part(condition)),
    }
}

/// `text` as lowercase letters, digits and single `_`, at most [`EXPRESSION_NAME_CHARS`] long.
fn name_part(text: &str) -> String {
    let mut part = String::new();
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() {
            part.push(c);
        } else if !part.is_empty() && !part.ends_with('_') {
            part.push('_');
        }
    }
    part.truncate(EXPRESSION_NAME_CHARS);
    part.trim_end_matches('_').to_string()
}

/// Whether `low <= high`, comparing numbers as numbers; `None` for values of other kinds.
fn in_order(low: &ScalarValue, high: &ScalarValue) -> Option<bool> {
    let number = |value: &ScalarValue| match value {
        ScalarValue::Int64(Some(integer)) => Some(*integer as f64),
        ScalarValue::Float64(Some(float)) => Some(*float),
        _ => None,
    };
    match (number(low), number(high)) {
        (Some(low), Some(high)) => Some(low <= high),
        _ => low.partial_cmp(high).map(|order| order.is_le()),
    }
}

fn is_test_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_dbts() {
        let column = |name: &str| name.to_string();
        assert_eq!(
            default_name("rfm", &TestKind::Unique { columns: vec![column("customer_id")] }),
            "unique_rfm_customer_id"
        );
        assert_eq!(
            default_name(
                "cohort_retention",
                &TestKind::Unique { columns: vec![column("cohort_month"), column("period_index")] }
            ),
            "unique_cohort_retention_cohort_month__period_index"
        );
        let to = TableColumn { table: "customer_summary".into(), column: "customer_id".into() };
        assert_eq!(
            default_name("clv", &TestKind::Relationships { column: column("customer_id"), to }),
            "relationships_clv_customer_id__customer_id__customer_summary"
        );
        assert_eq!(
            default_name(
                "kpi_monthly",
                &TestKind::Expression { condition: "retained_customers <= customers_end".into() }
            ),
            "expression_kpi_monthly_retained_customers_customers_end"
        );
        assert_eq!(
            name_part("a >= 0 AND (b IS NULL OR b <= a + 1000000000000000000000000000000000)"),
            "a_0_and_b_is_null_or_b_a_100000000000000"
        );
    }
}
