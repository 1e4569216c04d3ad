//! Backfills: the pipeline run for each date of a range, oldest first, each an ordinary
//! run of its own (idempotent: a date run twice is published twice, the same way).
//! A failed date does not stop the others; a stop signal does (the dates after it are
//! not run). With `--skip-existing`, a date whose partition is complete (`_SUCCESS`,
//! every output table) and was computed with the same pipeline version and parameters
//! is skipped.

use chrono::{Datelike, Months, NaiveDate};
use clap::ValueEnum;
use tracing::{error, info};

use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::pipeline_version::pipeline_version;
use crate::plan::{Overrides, bind};
use crate::publish::published;
use crate::run;
use crate::signals;
use crate::sinks::output_root;
use crate::storage::Storage;
use crate::summary::{BackfillSummary, RunSummary};

/// Which dates of a range a backfill runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Every {
    /// Each month's last day.
    Month,
    /// Every seventh day from the first.
    Week,
    /// Every day.
    Day,
}

/// The dates `every` picks from `from` to `to`, both included, oldest first.
pub fn dates(from: NaiveDate, to: NaiveDate, every: Every) -> Result<Vec<NaiveDate>> {
    if from > to {
        return Err(Error::Usage(format!("--from {from} is after --to {to}")));
    }
    let dates: Vec<NaiveDate> = match every {
        Every::Day => from.iter_days().take_while(|date| *date <= to).collect(),
        Every::Week => from.iter_weeks().take_while(|date| *date <= to).collect(),
        Every::Month => {
            std::iter::successors(Some(month_end(from)), |date| date.checked_add_months(Months::new(1)).map(month_end))
                .take_while(|date| *date <= to)
                .collect()
        }
    };
    if dates.is_empty() {
        return Err(Error::Usage(format!(
            "no month ends between --from {from} and --to {to}; widen the range or use --every day"
        )));
    }
    Ok(dates)
}

/// The last day of `date`'s month.
fn month_end(date: NaiveDate) -> NaiveDate {
    let first = date - chrono::Days::new(u64::from(date.day0()));
    first.checked_add_months(Months::new(1)).and_then(|next| next.pred_opt()).unwrap_or(NaiveDate::MAX)
}

/// Runs `pipeline` for each of `dates` in order with `overrides` (their as_of aside).
pub async fn backfill(
    pipeline: &Pipeline,
    overrides: &Overrides,
    dates: &[NaiveDate],
    skip_existing: bool,
) -> BackfillSummary {
    let mut runs = Vec::with_capacity(dates.len());
    for &as_of in dates {
        if signals::requested().is_some() {
            runs.push(RunSummary::not_run(&pipeline.name, as_of));
            continue;
        }
        let overrides = Overrides { as_of: Some(as_of), ..overrides.clone() };
        runs.push(run_date(pipeline, &overrides, as_of, skip_existing).await);
    }
    BackfillSummary::new(&pipeline.name, runs)
}

async fn run_date(pipeline: &Pipeline, overrides: &Overrides, as_of: NaiveDate, skip_existing: bool) -> RunSummary {
    let outcome = async {
        if skip_existing && let Some(run_id) = published_alike(pipeline, overrides).await? {
            info!(%as_of, run_id, "already published with the same pipeline version and parameters: skipped");
            return Ok(RunSummary::skipped(&pipeline.name, as_of, &run_id));
        }
        run::run(pipeline, overrides).await.map(|manifest| RunSummary::published(&manifest))
    };
    outcome.await.unwrap_or_else(|failure| {
        error!(%as_of, "{failure}");
        RunSummary::failed(Some(&pipeline.name), Some(as_of), &failure)
    })
}

/// The run that published the partition of `overrides`' as_of completely and with the
/// same pipeline version and parameters, if one did.
async fn published_alike(pipeline: &Pipeline, overrides: &Overrides) -> Result<Option<String>> {
    let plan = bind(pipeline, overrides)?;
    let root = output_root(&plan, &Storage::new())?;
    let Some(published) = published::read(&root, plan.as_of).await? else { return Ok(None) };
    let complete = plan.tables.iter().all(|table| published.tables.contains_key(table));
    let alike = complete && published.differences(&plan, &pipeline_version(&plan)?).is_empty();
    Ok(alike.then_some(published.run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn shown(dates: Vec<NaiveDate>) -> Vec<String> {
        dates.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn months_are_each_month_s_last_day_within_the_range() {
        let months = dates(date("2026-01-31"), date("2026-05-31"), Every::Month).unwrap();
        assert_eq!(shown(months), ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]);
        let leap = dates(date("2024-01-15"), date("2024-03-30"), Every::Month).unwrap();
        assert_eq!(shown(leap), ["2024-01-31", "2024-02-29"], "from mid-month; March ends after --to");
    }

    #[test]
    fn weeks_and_days_count_from_the_first_date() {
        let weeks = dates(date("2026-01-01"), date("2026-01-22"), Every::Week).unwrap();
        assert_eq!(shown(weeks), ["2026-01-01", "2026-01-08", "2026-01-15", "2026-01-22"]);
        let days = dates(date("2026-02-27"), date("2026-03-01"), Every::Day).unwrap();
        assert_eq!(shown(days), ["2026-02-27", "2026-02-28", "2026-03-01"]);
    }

    #[test]
    fn empty_and_reversed_ranges_are_usage_errors() {
        let none = dates(date("2026-01-02"), date("2026-01-20"), Every::Month).unwrap_err();
        assert_eq!(none.exit_code(), 2);
        assert!(none.to_string().contains("no month ends between --from 2026-01-02 and --to 2026-01-20"), "{none}");
        let reversed = dates(date("2026-02-01"), date("2026-01-01"), Every::Day).unwrap_err();
        assert_eq!(reversed.to_string(), "usage error: --from 2026-02-01 is after --to 2026-01-01");
    }
}
