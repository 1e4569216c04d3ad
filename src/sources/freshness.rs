//! A source's freshness, measured when it has loaded, before any stage reads it: the
//! newest value of its `freshness` column at or before the end of as_of, how old that
//! value is at the end of as_of, and how many rows are dated after as_of.
//!
//! The end of as_of is midnight at the start of the next day in the pipeline's timezone.
//! A timestamp is at or before it when it is earlier; its age is the time from it to the
//! end of as_of. A date stands for its whole day: the newest date is at most as_of, and
//! its age is as_of minus that date, in whole days (0 for as_of itself). Rows with a
//! null value are neither.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use chrono_tz::Tz;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::prelude::{SessionContext, ident, lit};
use serde::{Deserialize, Serialize};

use super::{Baseline, Findings};
use crate::config::types::days_since_epoch;
use crate::config::{ColumnType, Freshness, Source, Status};
use crate::error::{Error, Result};

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

/// What the manifest records about a source's freshness.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FreshnessReport {
    /// The column dating each row.
    pub column: String,
    /// The newest value at or before the end of as_of (a timestamp in UTC), if any.
    pub newest: Option<String>,
    /// Seconds from `newest` to the end of as_of.
    pub age_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_after: Option<String>,
    /// Rows dated after as_of, which stages reading the source up to as_of leave out.
    pub rows_after_as_of: u64,
    pub status: Status,
}

/// Measures the `freshness` of `source` on its loaded rows (`table`, `rows` of them) as of
/// the end of the baseline's as_of.
pub(super) async fn measure(
    ctx: &SessionContext,
    source: &Source,
    freshness: &Freshness,
    table: Arc<dyn TableProvider>,
    rows: u64,
    baseline: &Baseline,
    findings: &mut Findings,
) -> Result<FreshnessReport> {
    let (as_of, timezone) = (baseline.as_of, baseline.timezone);
    let kind = source.columns.iter().flatten().find(|c| c.name == freshness.column).map(|c| c.kind);
    let source = source.name.as_str();
    let failed = |e| Error::runtime(format!("measuring the freshness of source `{source}`"), e);
    let end = end_of(as_of, timezone)?;
    let column = ident(&freshness.column);
    let bound = match kind {
        Some(ColumnType::Date) => lit(ScalarValue::Date32(Some(days_since_epoch(as_of)))),
        _ => lit(ScalarValue::TimestampMicrosecond(Some(end.timestamp_micros()), Some("UTC".into()))),
    };
    let (in_time, after) = match kind {
        Some(ColumnType::Date) => (column.clone().lt_eq(bound.clone()), column.clone().gt(bound)),
        _ => (column.clone().lt(bound.clone()), column.clone().gt_eq(bound)),
    };
    let aggregates = vec![
        max(column).filter(in_time).build().map_err(failed)?,
        count(lit(1i64)).filter(after).build().map_err(failed)?,
    ];
    let frame = ctx.read_table(table).map_err(failed)?;
    let batches = frame.aggregate(vec![], aggregates).map_err(failed)?.collect().await.map_err(failed)?;
    let batch = batches.iter().find(|batch| batch.num_rows() > 0);
    let value =
        |index: usize| batch.map(|b| ScalarValue::try_from_array(b.column(index), 0)).transpose().map_err(failed);
    let (newest, age) = match value(0)? {
        Some(ScalarValue::TimestampMicrosecond(Some(micros), _)) => {
            let newest = DateTime::from_timestamp_micros(micros).unwrap_or_default();
            let age = (end.timestamp_micros() - micros).max(0) as u64 / 1_000_000;
            (Some(newest.to_rfc3339_opts(SecondsFormat::AutoSi, true)), Some(age))
        }
        Some(ScalarValue::Date32(Some(days))) => {
            let age = (days_since_epoch(as_of) - days).max(0) as u64 * 86_400;
            let date = EPOCH + chrono::Duration::days(i64::from(days));
            (Some(date.to_string()), Some(age))
        }
        _ => (None, None),
    };
    let rows_after_as_of = match value(1)? {
        Some(ScalarValue::Int64(Some(after))) => after.max(0) as u64,
        _ => 0,
    };
    let mut report = FreshnessReport {
        column: freshness.column.clone(),
        newest,
        age_seconds: age,
        warn_after: freshness.warn_after.as_ref().map(|a| a.text.clone()),
        error_after: freshness.error_after.as_ref().map(|a| a.text.clone()),
        rows_after_as_of,
        status: Status::Pass,
    };
    let column = &freshness.column;
    let stale = |limit: Duration| age.is_none_or(|age| age > limit.as_secs());
    let newest = match (&report.newest, age) {
        (Some(newest), Some(age)) => format!(
            "its newest `{column}` at or before as_of {as_of} is {newest}, {} before the end of as_of",
            shown_age(age)
        ),
        _ => format!("no row has a `{column}` at or before as_of {as_of}"),
    };
    let zone =
        format!("(the end of as_of is midnight at the start of {} in {timezone})", as_of + chrono::Duration::days(1));
    if let Some(limit) = freshness.error_after.as_ref().filter(|limit| stale(limit.duration)) {
        report.status = Status::Error;
        findings.errors.push(format!(
            "source `{source}` is stale: {newest} (error_after: {}) {zone}; check that the input is complete and up to date, or run for an earlier --as-of",
            limit.text
        ));
    } else if let Some(limit) = freshness.warn_after.as_ref().filter(|limit| stale(limit.duration)) {
        report.status = Status::Warn;
        findings.warnings.push(format!("source `{source}` may be stale: {newest} (warn_after: {}) {zone}", limit.text));
    }
    let after = |threshold: &str| {
        format!(
            "source `{source}`: {rows_after_as_of} of {rows} rows have a `{column}` after as_of {as_of} ({threshold})"
        )
    };
    let thresholds = (&freshness.rows_after_as_of_error_if, &freshness.rows_after_as_of_warn_if);
    match thresholds {
        (Some(error_if), _) if error_if.is_met(rows_after_as_of, rows) => {
            report.status = Status::Error;
            findings.errors.push(format!(
                "{}; check the input's dates and the pipeline's timezone",
                after(&format!("error_if {error_if}"))
            ));
        }
        (_, Some(warn_if)) if warn_if.is_met(rows_after_as_of, rows) => {
            if report.status == Status::Pass {
                report.status = Status::Warn;
            }
            findings.warnings.push(after(&format!("warn_if {warn_if}")));
        }
        _ => {}
    }
    Ok(report)
}

/// The end of `as_of` in `timezone`: the first instant of the next day there.
fn end_of(as_of: NaiveDate, timezone: Tz) -> Result<DateTime<chrono::Utc>> {
    let next = as_of.succ_opt().and_then(|day| day.and_hms_opt(0, 0, 0));
    next.and_then(|midnight| super::typing::local_to_utc(midnight, timezone).ok())
        .ok_or_else(|| Error::Usage(format!("as_of {as_of} has no next day in {timezone}")))
}

/// An age as days and hours (`4d 2h`), or hours and minutes under a day.
fn shown_age(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3_600, seconds % 3_600 / 60);
    match days {
        0 => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_as_of_is_the_next_midnight_in_the_timezone() {
        let as_of = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        assert_eq!(end_of(as_of, Tz::UTC).unwrap().to_rfc3339(), "2024-04-01T00:00:00+00:00");
        assert_eq!(end_of(as_of, chrono_tz::Europe::Rome).unwrap().to_rfc3339(), "2024-03-31T22:00:00+00:00");
        assert_eq!(end_of(as_of, chrono_tz::America::New_York).unwrap().to_rfc3339(), "2024-04-01T04:00:00+00:00");
    }

    #[test]
    fn ages_are_shown_in_days_and_hours() {
        assert_eq!(shown_age(4 * 86_400 + 2 * 3_600 + 59), "4d 2h");
        assert_eq!(shown_age(5 * 3_600 + 30 * 60), "5h 30m");
    }
}
