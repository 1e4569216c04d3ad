//! The report's charts: which data each one shows, built with [`super::charts`]
//! into ready SVG strings for the templates.
//!
//! Chart texts (titles, axis labels, legends) are English, like the default
//! templates; numbers, months and "no data" follow the report locale.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, Months, NaiveDate};
use datafusion::common::HashMap as FastMap;
use serde::Serialize;

use super::charts::{
    self, BarChart, BoxChart, BoxLegend, CohortHeatmap, CohortRow, GroupStats, Histogram, HistogramData, LineChart,
    Reference, Series, StepChart, StepSeries,
};
use super::context::{Periods, Segment, month_start};
use super::format::{Locale, MonthStyle, YearMonth};
use super::inputs::{Inputs, KpiMonth};

/// Months since acquisition shown in the cohort heatmap (0..=12: a year of retention).
const COHORT_PERIODS: i64 = 13;
/// Cohorts shown in the cohort heatmap: the latest ones, one per month.
const COHORTS: usize = 13;
/// Bins of the share-of-wallet histogram (10 %-point wide).
const WALLET_BINS: usize = 10;

/// The charts of the report, each one complete `<svg>` element.
#[derive(Debug, Serialize)]
pub struct Charts {
    /// Retention rate by acquisition cohort (rows, the latest 13 cohorts up to the
    /// reported month) and months since acquisition (columns, 0–12).
    pub cohort_retention: String,
    /// The customer retention rate over the trend months.
    pub crr_trend: String,
    /// The churn rate (1 − CRR) over the trend months.
    pub churn_trend: String,
    /// Net revenue over the trend months.
    pub revenue_trend: String,
    /// NPS over the trend months.
    pub nps_trend: String,
    /// Each RFM segment's share of customers and of revenue.
    pub rfm_segments: String,
    /// Predicted CLV per customer by RFM segment: p10, p25, median, p75, p90.
    pub clv_by_segment: String,
    /// Customers by share of wallet in the reported month.
    pub share_of_wallet: String,
    /// Kaplan–Meier curve of the share of recent customers who reached value, by days
    /// since acquisition.
    pub lttv_curve: String,
}

/// What the charts are drawn from.
pub(crate) struct Figures<'a> {
    /// The output tables' rows.
    pub inputs: &'a Inputs<'a>,
    /// The reported month, its references and the trend months.
    pub periods: &'a Periods,
    /// The segments table, whose order the segment charts follow.
    pub segments: &'a [Segment],
    /// Formats numbers, months and "no data".
    pub locale: Locale,
    /// ISO 4217 code.
    pub currency: &'a str,
    /// The run's `lttv_value_moment`, for the LTTV chart's labels.
    pub value_moment: Option<&'a str>,
    /// The run's `clv_horizon_months`, for the CLV chart's title.
    pub clv_horizon_months: Option<i64>,
}

/// Builds every chart.
pub(crate) fn build(f: &Figures) -> Charts {
    Charts {
        cohort_retention: cohort_retention(f),
        crr_trend: rate_trend(f, "Customer retention rate (CRR) by month", "CRR", |m| m.crr),
        churn_trend: rate_trend(f, "Churn rate by month", "Churn rate", |m| m.churn_rate),
        revenue_trend: revenue_trend(f),
        nps_trend: nps_trend(f),
        rfm_segments: rfm_segments(f),
        clv_by_segment: clv_by_segment(f),
        share_of_wallet: share_of_wallet(f),
        lttv_curve: lttv_curve(f),
    }
}

/// `Nov 2026` in the locale.
fn short_month(locale: Locale, month: NaiveDate) -> String {
    let month = u8::try_from(month.month()).ok().and_then(|m| YearMonth::new(month.year(), m));
    locale.month(month, MonthStyle::Short)
}

/// `November 2026` in the locale.
fn long_month(locale: Locale, month: NaiveDate) -> String {
    let month = u8::try_from(month.month()).ok().and_then(|m| YearMonth::new(month.year(), m));
    locale.month(month, MonthStyle::Long)
}

/// Decimals that show `v` exactly when it is whole, with one decimal otherwise:
/// axis ticks read "80%", tooltips "81.3%".
fn places(v: f64) -> usize {
    if (v - v.round()).abs() < 1e-9 { 0 } else { 1 }
}

fn cohort_retention(f: &Figures) -> String {
    let current = f.periods.current;
    let mut cells: BTreeMap<NaiveDate, HashMap<i64, f64>> = BTreeMap::new();
    for cell in &f.inputs.cohort_retention {
        let (Some(cohort), Some(k), Some(rate)) = (cell.cohort_month, cell.period_index, cell.retention_rate) else {
            continue;
        };
        let cohort = month_start(cohort);
        if cohort <= current && (0..COHORT_PERIODS).contains(&k) {
            cells.entry(cohort).or_default().insert(k, rate);
        }
    }
    let rows = cells
        .iter()
        .rev()
        .take(COHORTS)
        .rev()
        .map(|(cohort, values)| CohortRow {
            label: short_month(f.locale, *cohort),
            values: (0..COHORT_PERIODS)
                .map(|k| {
                    // A month after the reported one is not complete yet: leave it blank.
                    let month = u32::try_from(k).ok().and_then(|k| cohort.checked_add_months(Months::new(k)));
                    month.filter(|m| *m <= current).and_then(|_| values.get(&k).copied())
                })
                .collect(),
        })
        .collect();
    let locale = f.locale;
    charts::cohort_heatmap(&CohortHeatmap {
        title: "Cohort retention: share of each month's new customers buying again".into(),
        rows,
        x_label: "Months since acquisition".into(),
        y_label: "Cohort".into(),
        format: &|v| locale.percent(Some(v), 0),
        locale,
    })
}

/// The trend months' labels and the values of `get`.
fn trend_series(f: &Figures, get: fn(&KpiMonth) -> Option<f64>) -> (Vec<String>, Vec<Option<f64>>) {
    let by_month: HashMap<NaiveDate, &KpiMonth> =
        f.inputs.kpi_monthly.iter().filter_map(|m| Some((month_start(m.period?), m))).collect();
    // Months before the first month of data are left out rather than drawn empty.
    let first = by_month.keys().min().copied();
    f.periods
        .trend
        .iter()
        .filter(|m| first.is_some_and(|first| **m >= first))
        .map(|m| (short_month(f.locale, *m), by_month.get(m).and_then(|k| get(k))))
        .unzip()
}

/// A rate over the trend months. The axis is fitted to the values rather than
/// starting at zero: retention moves by a point or two, which a 0–100 % axis hides.
fn rate_trend(f: &Figures, title: &str, name: &str, get: fn(&KpiMonth) -> Option<f64>) -> String {
    let (x_labels, values) = trend_series(f, get);
    let locale = f.locale;
    charts::line_chart(&LineChart {
        title: title.into(),
        x_labels,
        series: vec![Series { name: name.into(), values }],
        x_label: String::new(),
        y_label: "% of the customers active at the month's start".into(),
        format: &|v| locale.percent(Some(v), 1),
        include_zero: false,
        locale,
    })
}

fn revenue_trend(f: &Figures) -> String {
    let (x_labels, revenue) = trend_series(f, |m| m.revenue);
    let (locale, currency) = (f.locale, f.currency);
    charts::line_chart(&LineChart {
        title: "Net revenue by month".into(),
        x_labels,
        series: vec![Series { name: "Net revenue".into(), values: revenue }],
        x_label: String::new(),
        y_label: format!("Net revenue ({currency})"),
        format: &|v| locale.currency_compact(Some(v), currency),
        include_zero: true,
        locale,
    })
}

fn nps_trend(f: &Figures) -> String {
    let (x_labels, nps) = trend_series(f, |m| m.nps);
    let locale = f.locale;
    charts::line_chart(&LineChart {
        title: "Net Promoter Score by month".into(),
        x_labels,
        series: vec![Series { name: "NPS".into(), values: nps }],
        x_label: String::new(),
        y_label: "NPS (% promoters − % detractors, −100 to 100)".into(),
        format: &|v| locale.decimal(Some(v), places(v)),
        include_zero: true,
        locale,
    })
}

fn rfm_segments(f: &Figures) -> String {
    let locale = f.locale;
    charts::bar_chart(&BarChart {
        title: "RFM segments: share of customers and of revenue".into(),
        categories: f.segments.iter().map(|s| s.segment.clone()).collect(),
        series: vec![
            Series { name: "Customers".into(), values: f.segments.iter().map(|s| s.customer_share).collect() },
            Series { name: "Revenue".into(), values: f.segments.iter().map(|s| s.revenue_share).collect() },
        ],
        value_label: "Share of all scored customers and of their revenue (%)".into(),
        format: &|v| locale.percent(Some(v), places(v * 100.0)),
        locale,
    })
}

/// The `q`-quantile (0..1) of sorted `values`, interpolating linearly between
/// order statistics (Hyndman & Fan type 7, the default of R and NumPy).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let (below, fraction) = (position.floor() as usize, position.fract());
    let low = sorted.get(below)?;
    let high = sorted.get((below + 1).min(last))?;
    Some(low + (high - low) * fraction)
}

fn clv_by_segment(f: &Figures) -> String {
    let mut values: FastMap<&str, Vec<f64>> = FastMap::new();
    for row in &f.inputs.rfm {
        if let Some(clv) = row.predicted_clv {
            values.entry(row.segment.unwrap_or("Unassigned")).or_default().push(clv);
        }
    }
    let groups = if values.is_empty() {
        Vec::new()
    } else {
        f.segments
            .iter()
            .map(|s| {
                let mut v = values.get(s.segment.as_str()).cloned().unwrap_or_default();
                v.sort_by(f64::total_cmp);
                GroupStats {
                    group: s.segment.clone(),
                    low: quantile(&v, 0.1),
                    q1: quantile(&v, 0.25),
                    median: quantile(&v, 0.5),
                    q3: quantile(&v, 0.75),
                    high: quantile(&v, 0.9),
                }
            })
            .collect()
    };
    let horizon = f.clv_horizon_months.map(|h| format!(", next {h} months")).unwrap_or_default();
    let (locale, currency) = (f.locale, f.currency);
    charts::box_or_range_by_group(&BoxChart {
        title: format!("Predicted CLV per customer by RFM segment{horizon}"),
        groups,
        value_label: format!("Predicted CLV ({currency})"),
        legend: BoxLegend {
            box_label: "p25–p75".into(),
            median_label: "median".into(),
            whisker_label: "p10–p90".into(),
        },
        format: &|v| locale.currency_compact(Some(v), currency),
        locale,
    })
}

fn share_of_wallet(f: &Figures) -> String {
    let current = f.periods.current;
    let values: Vec<f64> = f
        .inputs
        .share_of_wallet
        .iter()
        .filter(|r| r.period.map(month_start) == Some(current))
        .filter_map(|r| r.share_of_wallet)
        .collect();
    let locale = f.locale;
    charts::histogram(&Histogram {
        title: format!("Share of wallet, {}", long_month(locale, current)),
        data: if values.is_empty() {
            HistogramData::Bins(Vec::new())
        } else {
            HistogramData::Values { values, bins: WALLET_BINS, range: Some((0.0, 1.0)) }
        },
        x_label: "Share of the customer's category spend spent with us (%)".into(),
        y_label: "Customers with a wallet estimate".into(),
        format: &|v| locale.percent(Some(v), places(v * 100.0)),
        locale,
    })
}

fn lttv_curve(f: &Figures) -> String {
    let mut points: Vec<(f64, f64)> =
        f.inputs.lttv_curve.iter().filter_map(|p| Some((p.days?, p.reached_share?))).collect();
    if !points.is_empty() {
        // Nobody has reached value at acquisition: the curve starts at (0, 0%).
        points.insert(0, (0.0, 0.0));
    }
    // Distinct days only, so that a duplicated row cannot draw a vertical spike.
    let mut seen = BTreeSet::new();
    points.retain(|(days, _)| seen.insert(days.to_bits()));
    let moment = match f.value_moment {
        None | Some("second_purchase") => "second purchase".to_string(),
        Some("first_redeem") => "first redemption".to_string(),
        Some("tier_change") => "first tier change".to_string(),
        Some(other) => other.replace('_', " "),
    };
    let locale = f.locale;
    charts::step_curve(&StepChart {
        title: format!("Time to value ({moment}) of the last 12 months' new customers"),
        series: vec![StepSeries { name: "Acquired in the last 12 months".into(), points, end: None }],
        x_label: "Days since acquisition".into(),
        y_label: "% of the customers acquired in the last 12 months".into(),
        format: &|v| locale.percent(Some(v), places(v * 100.0)),
        references: vec![
            Reference { at: 30.0, label: "30 days".into() },
            Reference { at: 90.0, label: "90 days".into() },
        ],
        locale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.25), Some(2.0));
        assert!(quantile(&v, 0.1).is_some_and(|q| (q - 1.4).abs() < 1e-12));
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
