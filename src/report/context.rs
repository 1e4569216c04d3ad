//! The template context: every figure the report shows, computed from the output
//! tables and the run manifest, as plain data. Templates format it with the
//! filters of [`super::filters`]; nothing here is formatted text except the charts
//! (ready SVG) and a few labels.
//!
//! The keys are documented for template authors in `docs/report-context.md`; the
//! doc comments below are the reference.
//!
//! **The reported month** is the latest month of `kpi_monthly` with
//! `is_complete = true`: a report run mid-month shows the last full month, not a
//! partial one that would look like a collapse. Without any complete month (a run
//! in the first month of data) it is as_of's month. The previous month and the same
//! month a year earlier are the references of every headline figure.
//!
//! Values are numbers or null. Null means "no data" (an optional input was absent,
//! a table is missing, a rate has no denominator) and the filters print it so.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Months, NaiveDate};
// Maps keyed by customer hold a million entries: a faster hash than SipHash.
use datafusion::common::HashMap as FastMap;
use serde::Serialize;

use super::ReportRequest;
use super::figures::{self, Charts};
use super::format::{Locale, rounds_to_zero};
use super::inputs::{Inputs, KpiMonth, LttvPoint, ProgramMonth, WalletRow};
use crate::error::Result;

/// The months of the trend charts and tables: the reported month and the twelve before it.
const TREND_MONTHS: u32 = 13;

/// The loyalty types of shared/METRICS.md, in the order of their rules.
const LOYALTY_TYPES: [&str; 5] = ["truly_loyal", "price_driven", "program_driven", "convenience", "satisfied"];

/// The root of the template context.
#[derive(Debug, Serialize)]
pub struct Context {
    /// What the report is about: pipeline, run, as_of, the reported month, locale and currency.
    pub report: ReportInfo,
    /// The headline figures of the reported month, each with its comparisons.
    pub kpi: Kpis,
    /// The months of the trends (up to 13, ending with the reported month), oldest first.
    pub trend: Vec<TrendMonth>,
    /// The charts, as ready `<svg>` elements (insert them with `| safe`).
    pub charts: Charts,
    /// RFM segments as of as_of, largest revenue first.
    pub segments: Vec<Segment>,
    /// Loyalty programme economics of the reported month and its references.
    pub loyalty_program: LoyaltyProgram,
    /// The five kinds of loyal customer (repeat customers as of as_of).
    pub loyalty_types: Vec<LoyaltyType>,
    /// Loyalty time to value of recent customers, read off the `lttv_curve`.
    pub lttv: Lttv,
    /// What data the run read: dates, rows, quarantine, absent inputs.
    pub coverage: Coverage,
}

/// What the report is about.
#[derive(Debug, Serialize)]
pub struct ReportInfo {
    /// The pipeline's name.
    pub pipeline: String,
    /// The fidelis version that ran the pipeline (from the manifest).
    pub fidelis_version: String,
    /// The run's id, from the manifest.
    pub run_id: Option<String>,
    /// When the run started (RFC 3339, UTC), from the manifest.
    pub run_started_at: Option<String>,
    /// The run's as_of, `YYYY-MM-DD`.
    pub as_of: String,
    /// The reported month, `YYYY-MM`.
    pub month: String,
    /// Whether the reported month is complete (false only when no month of
    /// `kpi_monthly` is).
    pub month_is_complete: bool,
    /// The month before the reported month, `YYYY-MM`.
    pub previous_month: String,
    /// The same month a year before, `YYYY-MM`.
    pub year_ago_month: String,
    /// The locale tag the report is formatted for, e.g. `en-US`.
    pub locale: String,
    /// The ISO 4217 code of the reporting currency, e.g. `EUR`.
    pub currency: String,
    /// Its symbol in the locale, e.g. `€`.
    pub currency_symbol: String,
    /// The run's `clv_horizon_months` parameter (months of predicted CLV).
    pub clv_horizon_months: Option<i64>,
    /// The run's `lttv_value_moment` parameter, e.g. `second_purchase`.
    pub lttv_value_moment: Option<String>,
    /// The locale's text for a missing value, e.g. `no data` (what the filters print for null).
    pub no_data: String,
}

/// How a figure is measured; decides its filter and how its change is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A number of customers; changes are relative (`delta_pct`).
    Count,
    /// A money amount; changes are relative (`delta_pct`).
    Money,
    /// A rate in 0..1; changes are in percentage points (`delta_pp`).
    Rate,
    /// An index such as NPS (-100..100); changes are differences (`delta_number`).
    Index,
    /// A number of days; changes are differences in days (`delta_number(decimals=0)`).
    Days,
}

impl Kind {
    /// The delta as the report shows it (`relative` or `change`), in the unit
    /// whose rounding decides "flat", and the decimals it is shown with.
    fn shown(self, change: Option<f64>, relative: Option<f64>) -> (Option<f64>, Option<f64>, usize) {
        match self {
            Kind::Count | Kind::Money => (relative, relative.map(|r| r * 100.0), 1),
            Kind::Rate => (change, change.map(|c| c * 100.0), 1),
            Kind::Index => (change, change, 1),
            Kind::Days => (change, change, 0),
        }
    }
}

/// Which way a figure moved, at the precision it is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Up.
    Up,
    /// Down.
    Down,
    /// Unchanged once rounded as shown.
    Flat,
}

/// Whether a change is good news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    /// The figure moved the way the business wants (e.g. churn down).
    Good,
    /// The figure moved the wrong way.
    Bad,
    /// Unchanged.
    Neutral,
}

/// Whether a headline figure has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It has a value.
    Ok,
    /// An input, a table or the month's row is missing, or the figure has no
    /// denominator: "no data".
    NoData,
    /// A median not reached yet (`lttv_median_days` is null for a month that has data:
    /// fewer than half of the customers reached value by as_of).
    NotReached,
}

/// One headline figure.
#[derive(Debug, Serialize)]
pub struct Kpi {
    /// How it is measured.
    pub kind: Kind,
    /// Whether it has a value, and why not.
    pub status: Status,
    /// Whether a rise is good news (false for churn and time to value).
    pub higher_is_better: bool,
    /// The value in the reported month (or at as_of, see `snapshot_date`).
    pub value: Option<f64>,
    /// For figures that are a snapshot at as_of rather than a monthly value (predicted
    /// CLV): the as_of date; their comparisons have no data (a run computes one snapshot).
    pub snapshot_date: Option<String>,
    /// Compared with the previous month.
    pub vs_previous: Comparison,
    /// Compared with the same month a year before.
    pub vs_year_ago: Comparison,
}

/// A figure compared with a reference month.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// The reference month, `YYYY-MM`.
    pub period: String,
    /// The figure's value then.
    pub value: Option<f64>,
    /// value now − value then.
    pub change: Option<f64>,
    /// change / |value then| (null when value then is 0).
    pub relative: Option<f64>,
    /// The delta the report shows: `relative` for counts and money, `change` otherwise.
    pub delta: Option<f64>,
    /// Which way it moved (`up`, `down`, `flat`), rounded as shown (one decimal of %,
    /// pp or points; whole days).
    pub direction: Option<Direction>,
    /// `good`, `bad` or `neutral`, from the direction and `higher_is_better`.
    pub sentiment: Option<Sentiment>,
}

/// The headline figures, named as in shared/METRICS.md.
#[derive(Debug, Serialize)]
pub struct Kpis {
    /// Active customers at the month's end (`kpi_monthly.customers_end`).
    pub customers_end: Kpi,
    /// Customer retention rate.
    pub crr: Kpi,
    /// 1 − crr.
    pub churn_rate: Kpi,
    /// Net revenue of the month.
    pub revenue: Kpi,
    /// Revenue / orders.
    pub average_order_value: Kpi,
    /// Share of the month's buyers who had bought before.
    pub repeat_customer_rate: Kpi,
    /// Net Promoter Score of the month's respondents.
    pub nps: Kpi,
    /// Sum of `clv.predicted_clv` over every customer, at as_of.
    pub predicted_clv: Kpi,
    /// Spend-weighted share of wallet: Σ our_spend / Σ category_spend over the
    /// month's `share_of_wallet` rows that have a category_spend.
    pub share_of_wallet: Kpi,
    /// Kaplan–Meier median days to the first value moment (`kpi_monthly.lttv_median_days`).
    pub lttv_median_days: Kpi,
}

/// One month of the trends: its `kpi_monthly` row and its share of wallet.
#[derive(Debug, Serialize)]
pub struct TrendMonth {
    /// `YYYY-MM`.
    pub period: String,
    /// Active customers at the month's end.
    pub customers_end: Option<f64>,
    /// Customers whose first purchase day was in the month.
    pub new_customers: Option<f64>,
    /// Customer retention rate.
    pub crr: Option<f64>,
    /// 1 − crr.
    pub churn_rate: Option<f64>,
    /// Net revenue.
    pub revenue: Option<f64>,
    /// Purchase orders.
    pub orders: Option<f64>,
    /// Revenue / orders.
    pub average_order_value: Option<f64>,
    /// Share of the month's buyers who had bought before.
    pub repeat_customer_rate: Option<f64>,
    /// Net Promoter Score (null without responses).
    pub nps: Option<f64>,
    /// NPS respondents.
    pub nps_responses: Option<f64>,
    /// Spend-weighted share of wallet (null without wallet estimates).
    pub share_of_wallet: Option<f64>,
    /// Kaplan–Meier median days to value (null: fewer than half reached value).
    pub lttv_median_days: Option<f64>,
}

/// One RFM segment.
#[derive(Debug, Serialize)]
pub struct Segment {
    /// The segment's name (`Unassigned` for scores no rule of the map matches).
    pub segment: String,
    /// Customers in it.
    pub customers: u64,
    /// Its share of all scored customers.
    pub customer_share: Option<f64>,
    /// Its customers' net revenue in the RFM lookback (`rfm.monetary`).
    pub revenue: Option<f64>,
    /// Its share of that revenue.
    pub revenue_share: Option<f64>,
    /// Mean `clv.predicted_clv` of its customers.
    pub average_predicted_clv: Option<f64>,
    /// The textbook CLV of the segment (`clv_simple`, scope `segment`).
    pub simple_clv: Option<f64>,
}

/// Loyalty programme economics (`loyalty_program`) of the reported month, the
/// previous month and the same month a year before.
#[derive(Debug, Serialize)]
pub struct LoyaltyProgram {
    /// Whether the run had loyalty events at all (false: every figure is null).
    pub available: bool,
    /// The reported month.
    pub month: ProgramFigures,
    /// The month before.
    pub previous: ProgramFigures,
    /// The same month a year before.
    pub year_ago: ProgramFigures,
}

/// One month of `loyalty_program` (shared/METRICS.md defines each column).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgramFigures {
    /// `YYYY-MM`.
    pub period: String,
    /// Members with a purchase in the month.
    pub members_active: Option<f64>,
    /// Points earned in the month.
    pub points_earned: Option<f64>,
    /// Points redeemed in the month.
    pub points_redeemed: Option<f64>,
    /// points_redeemed / points_earned.
    pub redemption_rate: Option<f64>,
    /// Cost of the rewards given.
    pub reward_cost: Option<f64>,
    /// Net revenue from members.
    pub member_revenue: Option<f64>,
    /// Net revenue from non-members.
    pub non_member_revenue: Option<f64>,
    /// Members' average order value.
    pub member_aov: Option<f64>,
    /// Non-members' average order value.
    pub non_member_aov: Option<f64>,
    /// CRR over members.
    pub member_crr: Option<f64>,
    /// CRR over non-members.
    pub non_member_crr: Option<f64>,
    /// reward_cost / member_revenue: value given against value returned.
    pub reward_cost_ratio: Option<f64>,
    /// Referrals, reviews and social shares.
    pub engagement_actions: Option<f64>,
}

/// One kind of loyal customer.
#[derive(Debug, Serialize)]
pub struct LoyaltyType {
    /// The `loyalty_types.loyalty_type` value, e.g. `truly_loyal`.
    pub loyalty_type: String,
    /// It written for people, e.g. `Truly loyal`.
    pub label: String,
    /// Repeat customers of this kind.
    pub customers: u64,
    /// Their share of all repeat customers.
    pub share: Option<f64>,
    /// Their net revenue to date (`customer_summary.revenue`).
    pub revenue: Option<f64>,
    /// Its share of the revenue of all repeat customers.
    pub revenue_share: Option<f64>,
}

/// Loyalty time to value of the customers acquired in the 12 months ending with
/// as_of's month (the window of `lttv_curve`, censored at as_of).
#[derive(Debug, Serialize)]
pub struct Lttv {
    /// Share who reached value within 30 days of acquisition (Kaplan–Meier).
    pub within_30_days: Option<f64>,
    /// Share who reached value within 90 days of acquisition (Kaplan–Meier).
    pub within_90_days: Option<f64>,
}

/// What data the run read.
#[derive(Debug, Serialize)]
pub struct Coverage {
    /// The first purchase day of any customer (`customer_summary`), `YYYY-MM-DD`.
    pub first_purchase_date: Option<String>,
    /// The last purchase day of any customer, `YYYY-MM-DD`.
    pub last_purchase_date: Option<String>,
    /// Customers with a purchase up to as_of.
    pub customers: Option<u64>,
    /// Rows read from every source (manifest).
    pub rows_read: Option<u64>,
    /// Rows quarantined in every source (manifest).
    pub rows_quarantined: Option<u64>,
    /// Per source, by name.
    pub sources: Vec<SourceCoverage>,
    /// Metrics without data because an optional input was absent (manifest).
    pub metrics_without_data: Vec<String>,
    /// The run's warnings (manifest).
    pub warnings: Vec<String>,
}

/// What the run read from one source.
#[derive(Debug, Serialize)]
pub struct SourceCoverage {
    /// The source's name.
    pub name: String,
    /// `loaded`, or `absent` for an optional source without files.
    pub status: Option<String>,
    /// Rows read from its files.
    pub rows_read: Option<u64>,
    /// Rows loaded (read − quarantined).
    pub rows_loaded: Option<u64>,
    /// Bad rows set aside (`on_bad_rows: quarantine`).
    pub rows_quarantined: Option<u64>,
}

/// The reported month and its references.
pub(crate) struct Periods {
    /// The reported month's first day.
    pub current: NaiveDate,
    /// The month before.
    pub previous: NaiveDate,
    /// The same month a year before.
    pub year_ago: NaiveDate,
    /// The trend's months, oldest first, ending with `current`.
    pub trend: Vec<NaiveDate>,
}

impl Periods {
    /// The latest complete month of `kpi_monthly`, else as_of's month.
    fn new(kpi: &[KpiMonth], as_of: NaiveDate) -> Self {
        let current = kpi
            .iter()
            .filter(|m| m.is_complete == Some(true))
            .filter_map(|m| m.period.map(month_start))
            .max()
            .unwrap_or_else(|| month_start(as_of));
        let back = |months: u32| current.checked_sub_months(Months::new(months)).unwrap_or(current);
        let trend = (0..TREND_MONTHS).rev().map(back).collect();
        Self { current, previous: back(1), year_ago: back(12), trend }
    }
}

/// The first day of `date`'s month.
pub(crate) fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// `YYYY-MM`.
pub(crate) fn month_key(month: NaiveDate) -> String {
    month.format("%Y-%m").to_string()
}

/// Builds the context of `request` for `locale`.
pub(crate) fn build(request: &ReportRequest<'_>, locale: Locale) -> Result<Context> {
    let inputs = Inputs::read(request.tables)?;
    let periods = Periods::new(&inputs.kpi_monthly, request.as_of);
    let kpi_by_month: HashMap<NaiveDate, &KpiMonth> =
        inputs.kpi_monthly.iter().filter_map(|m| Some((month_start(m.period?), m))).collect();
    let manifest = request.manifest;
    let parameter = |name: &str| manifest.pointer(&format!("/parameters/{name}"));
    let report = ReportInfo {
        pipeline: request.pipeline_name.to_string(),
        fidelis_version: manifest["fidelis_version"].as_str().unwrap_or(env!("CARGO_PKG_VERSION")).to_string(),
        run_id: text(&manifest["run_id"]),
        run_started_at: text(&manifest["started_at"]),
        as_of: request.as_of.to_string(),
        month: month_key(periods.current),
        month_is_complete: kpi_by_month.get(&periods.current).and_then(|m| m.is_complete).unwrap_or(false),
        previous_month: month_key(periods.previous),
        year_ago_month: month_key(periods.year_ago),
        locale: locale.tag().to_string(),
        currency: request.currency.trim().to_ascii_uppercase(),
        currency_symbol: locale.currency_symbol(request.currency),
        clv_horizon_months: parameter("clv_horizon_months").and_then(serde_json::Value::as_i64),
        lttv_value_moment: parameter("lttv_value_moment").and_then(serde_json::Value::as_str).map(str::to_string),
        no_data: locale.no_data().to_string(),
    };
    let segments = segments(&inputs);
    let wallet_shares = spend_weighted_shares(&inputs.share_of_wallet);
    let charts = figures::build(&figures::Figures {
        inputs: &inputs,
        periods: &periods,
        segments: &segments,
        locale,
        currency: &report.currency,
        value_moment: report.lttv_value_moment.as_deref(),
        clv_horizon_months: report.clv_horizon_months,
    });
    Ok(Context {
        kpi: kpis(&inputs, &periods, &kpi_by_month, &wallet_shares, request.as_of),
        trend: trend(&periods, &kpi_by_month, &wallet_shares),
        charts,
        segments,
        loyalty_program: loyalty_program(&inputs.loyalty_program, &periods),
        loyalty_types: loyalty_types(&inputs),
        lttv: Lttv {
            within_30_days: reached_within(&inputs.lttv_curve, 30.0),
            within_90_days: reached_within(&inputs.lttv_curve, 90.0),
        },
        coverage: coverage(&inputs, manifest),
        report,
    })
}

/// A non-empty JSON string.
fn text(value: &serde_json::Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A figure's value per month, looked up by the month's first day.
type ByMonth<'a> = dyn Fn(NaiveDate) -> Option<f64> + 'a;

fn kpi(kind: Kind, higher_is_better: bool, periods: &Periods, at: &ByMonth) -> Kpi {
    let value = at(periods.current).filter(|v| v.is_finite());
    Kpi {
        kind,
        status: if value.is_some() { Status::Ok } else { Status::NoData },
        higher_is_better,
        value,
        snapshot_date: None,
        vs_previous: compare(kind, higher_is_better, value, periods.previous, at(periods.previous)),
        vs_year_ago: compare(kind, higher_is_better, value, periods.year_ago, at(periods.year_ago)),
    }
}

fn compare(kind: Kind, higher_is_better: bool, value: Option<f64>, period: NaiveDate, then: Option<f64>) -> Comparison {
    let value = value.filter(|v| v.is_finite());
    let then = then.filter(|v| v.is_finite());
    let change = value.zip(then).map(|(now, then)| now - then);
    let relative = change.zip(then).and_then(|(change, then)| (then != 0.0).then(|| change / then.abs()));
    let (delta, shown, places) = kind.shown(change, relative);
    let direction = shown.map(|d| {
        if rounds_to_zero(d, places) {
            Direction::Flat
        } else if d > 0.0 {
            Direction::Up
        } else {
            Direction::Down
        }
    });
    let sentiment = direction.map(|d| match (d, higher_is_better) {
        (Direction::Flat, _) => Sentiment::Neutral,
        (Direction::Up, true) | (Direction::Down, false) => Sentiment::Good,
        _ => Sentiment::Bad,
    });
    Comparison { period: month_key(period), value: then, change, relative, delta, direction, sentiment }
}

fn kpis(
    inputs: &Inputs<'_>,
    periods: &Periods,
    by_month: &HashMap<NaiveDate, &KpiMonth>,
    wallet_shares: &HashMap<NaiveDate, f64>,
    as_of: NaiveDate,
) -> Kpis {
    let column = |get: fn(&KpiMonth) -> Option<f64>| move |month: NaiveDate| by_month.get(&month).and_then(|m| get(m));
    let wallet = |month: NaiveDate| wallet_shares.get(&month).copied();
    let clv_total = sum(inputs.clv.iter().map(|c| c.predicted_clv));
    let mut predicted_clv =
        kpi(Kind::Money, true, periods, &|month| (month == periods.current).then_some(clv_total)?);
    predicted_clv.snapshot_date = Some(as_of.to_string());
    // Reaching value sooner is better.
    let mut lttv_median_days = kpi(Kind::Days, false, periods, &column(|m| m.lttv_median_days));
    if lttv_median_days.value.is_none() && by_month.contains_key(&periods.current) {
        lttv_median_days.status = Status::NotReached;
    }
    Kpis {
        customers_end: kpi(Kind::Count, true, periods, &column(|m| m.customers_end)),
        crr: kpi(Kind::Rate, true, periods, &column(|m| m.crr)),
        churn_rate: kpi(Kind::Rate, false, periods, &column(|m| m.churn_rate)),
        revenue: kpi(Kind::Money, true, periods, &column(|m| m.revenue)),
        average_order_value: kpi(Kind::Money, true, periods, &column(|m| m.average_order_value)),
        repeat_customer_rate: kpi(Kind::Rate, true, periods, &column(|m| m.repeat_customer_rate)),
        nps: kpi(Kind::Index, true, periods, &column(|m| m.nps)),
        predicted_clv,
        share_of_wallet: kpi(Kind::Rate, true, periods, &wallet),
        lttv_median_days,
    }
}

/// The sum of the present values; `None` when there is none.
fn sum(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().flatten().filter(|v| v.is_finite()).fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
}

/// Per month, Σ our_spend / Σ category_spend over the month's rows with a category
/// spend (Wallet Allocation Rule rows have none, and cannot be weighted by spend); a
/// month whose category spend is not positive has no share. One pass over the rows.
pub(crate) fn spend_weighted_shares(rows: &[WalletRow]) -> HashMap<NaiveDate, f64> {
    let mut totals: HashMap<NaiveDate, (f64, f64)> = HashMap::new();
    for row in rows {
        if let (Some(period), Some(ours), Some(category)) = (row.period, row.our_spend, row.category_spend) {
            let (o, c) = totals.entry(month_start(period)).or_default();
            (*o, *c) = (*o + ours, *c + category);
        }
    }
    totals.into_iter().filter(|(_, (_, category))| *category > 0.0).map(|(month, (o, c))| (month, o / c)).collect()
}

fn trend(
    periods: &Periods,
    by_month: &HashMap<NaiveDate, &KpiMonth>,
    wallet_shares: &HashMap<NaiveDate, f64>,
) -> Vec<TrendMonth> {
    periods
        .trend
        .iter()
        .filter_map(|&month| {
            let m = by_month.get(&month)?;
            Some(TrendMonth {
                period: month_key(month),
                customers_end: m.customers_end,
                new_customers: m.new_customers,
                crr: m.crr,
                churn_rate: m.churn_rate,
                revenue: m.revenue,
                orders: m.orders,
                average_order_value: m.average_order_value,
                repeat_customer_rate: m.repeat_customer_rate,
                nps: m.nps,
                nps_responses: m.nps_responses,
                share_of_wallet: wallet_shares.get(&month).copied(),
                lttv_median_days: m.lttv_median_days,
            })
        })
        .collect()
}

/// The segment name shown for customers no rule of the segment map matches.
const UNASSIGNED: &str = "Unassigned";

fn segments(inputs: &Inputs<'_>) -> Vec<Segment> {
    let simple: HashMap<&str, Option<f64>> = inputs
        .clv_simple
        .iter()
        .filter(|r| r.scope == Some("segment"))
        .filter_map(|r| Some((r.key?, r.simple_clv)))
        .collect();
    #[derive(Default)]
    struct Totals {
        customers: u64,
        revenue: Option<f64>,
        clv_sum: f64,
        clv_customers: u64,
    }
    let mut by_segment: FastMap<&str, Totals> = FastMap::new();
    for row in &inputs.rfm {
        let totals = by_segment.entry(row.segment.unwrap_or(UNASSIGNED)).or_default();
        totals.customers += 1;
        if let Some(m) = row.monetary.filter(|v| v.is_finite()) {
            totals.revenue = Some(totals.revenue.unwrap_or(0.0) + m);
        }
        if let Some(v) = row.predicted_clv {
            totals.clv_sum += v;
            totals.clv_customers += 1;
        }
    }
    let customers: u64 = by_segment.values().map(|t| t.customers).sum();
    let revenue = sum(by_segment.values().map(|t| t.revenue));
    // By name first: ties in revenue are then ordered by name, so the order is deterministic.
    let by_segment: BTreeMap<&str, Totals> = by_segment.into_iter().collect();
    let mut segments: Vec<Segment> = by_segment
        .into_iter()
        .map(|(name, t)| Segment {
            segment: name.to_string(),
            customers: t.customers,
            customer_share: share(t.customers as f64, customers as f64),
            revenue: t.revenue,
            revenue_share: t.revenue.zip(revenue).and_then(|(r, total)| share(r, total)),
            average_predicted_clv: (t.clv_customers > 0).then(|| t.clv_sum / t.clv_customers as f64),
            simple_clv: simple.get(name).copied().flatten(),
        })
        .collect();
    segments.sort_by(|a, b| b.revenue.unwrap_or(f64::MIN).total_cmp(&a.revenue.unwrap_or(f64::MIN)));
    segments
}

/// `part / whole`, or `None` when the whole is not positive.
fn share(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

fn loyalty_program(rows: &[ProgramMonth], periods: &Periods) -> LoyaltyProgram {
    let figures = |month: NaiveDate| {
        rows.iter()
            .find(|r| r.period.map(month_start) == Some(month))
            .map(|r| r.figures.clone())
            .unwrap_or_default()
            .with_period(month_key(month))
    };
    LoyaltyProgram {
        available: !rows.is_empty(),
        month: figures(periods.current),
        previous: figures(periods.previous),
        year_ago: figures(periods.year_ago),
    }
}

impl ProgramFigures {
    fn with_period(self, period: String) -> Self {
        Self { period, ..self }
    }
}

fn loyalty_types(inputs: &Inputs<'_>) -> Vec<LoyaltyType> {
    if inputs.loyalty_types.is_empty() {
        return Vec::new();
    }
    let mut counts: FastMap<&str, (u64, Option<f64>)> = LOYALTY_TYPES.iter().map(|t| (*t, (0, None))).collect();
    for row in &inputs.loyalty_types {
        let Some(kind) = row.loyalty_type else { continue };
        let entry = counts.entry(kind).or_default();
        entry.0 += 1;
        if let Some(r) = row.revenue {
            entry.1 = Some(entry.1.unwrap_or(0.0) + r);
        }
    }
    let counts: BTreeMap<&str, (u64, Option<f64>)> = counts.into_iter().collect();
    let customers: u64 = counts.values().map(|c| c.0).sum();
    let total_revenue = sum(counts.values().map(|c| c.1));
    // The contract's types in rule order, then any others a custom pipeline adds.
    let order = |kind: &str| LOYALTY_TYPES.iter().position(|t| *t == kind).unwrap_or(LOYALTY_TYPES.len());
    let mut types: Vec<LoyaltyType> = counts
        .into_iter()
        .map(|(kind, (n, revenue))| LoyaltyType {
            loyalty_type: kind.to_string(),
            label: humanize(kind),
            customers: n,
            share: share(n as f64, customers as f64),
            revenue,
            revenue_share: revenue.zip(total_revenue).and_then(|(r, total)| share(r, total)),
        })
        .collect();
    types.sort_by_key(|t| order(&t.loyalty_type));
    types
}

/// The Kaplan–Meier share that reached value within `days`: the curve's value at its
/// last event on or before `days` (0 before the first event); `None` without a curve.
fn reached_within(curve: &[LttvPoint], days: f64) -> Option<f64> {
    let points: Vec<(f64, f64)> = curve.iter().filter_map(|p| Some((p.days?, p.reached_share?))).collect();
    if points.is_empty() {
        return None;
    }
    let last = points.iter().filter(|(d, _)| *d <= days).max_by(|a, b| a.0.total_cmp(&b.0));
    Some(last.map_or(0.0, |(_, share)| *share))
}

/// `truly_loyal` → `Truly loyal`.
fn humanize(key: &str) -> String {
    let spaced = key.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

fn coverage(inputs: &Inputs<'_>, manifest: &serde_json::Value) -> Coverage {
    let customers = &inputs.customer_summary;
    let mut sources: Vec<SourceCoverage> = manifest["sources"]
        .as_object()
        .map(|sources| {
            sources
                .iter()
                .map(|(name, s)| SourceCoverage {
                    name: name.clone(),
                    status: s["status"].as_str().map(str::to_string),
                    rows_read: s["rows_read"].as_u64(),
                    rows_loaded: s["rows_loaded"].as_u64(),
                    rows_quarantined: s["rows_quarantined"].as_u64(),
                })
                .collect()
        })
        .unwrap_or_default();
    // JSON objects carry no reliable order: sort, so the report is deterministic.
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let total = |get: fn(&SourceCoverage) -> Option<u64>| -> Option<u64> {
        (!sources.is_empty()).then(|| sources.iter().filter_map(get).sum())
    };
    let strings = |key: &str| -> Vec<String> {
        manifest[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    Coverage {
        first_purchase_date: customers.iter().filter_map(|c| c.first_purchase_date).min().map(|d| d.to_string()),
        last_purchase_date: customers.iter().filter_map(|c| c.last_purchase_date).max().map(|d| d.to_string()),
        customers: (!customers.is_empty()).then_some(customers.len() as u64),
        rows_read: total(|s| s.rows_read),
        rows_quarantined: total(|s| s.rows_quarantined),
        metrics_without_data: strings("metrics_without_data"),
        warnings: strings("warnings"),
        sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn the_reported_month_is_the_latest_complete_one() {
        let month = |period: &str, complete: bool| KpiMonth {
            period: Some(date(period)),
            is_complete: Some(complete),
            ..KpiMonth::default()
        };
        let kpi = [month("2024-01-01", true), month("2024-02-01", true), month("2024-03-01", false)];
        let periods = Periods::new(&kpi, date("2024-03-15"));
        assert_eq!(periods.current, date("2024-02-01"));
        assert_eq!(periods.previous, date("2024-01-01"));
        assert_eq!(periods.year_ago, date("2023-02-01"));
        assert_eq!(periods.trend.len(), 13);
        assert_eq!(periods.trend.first(), Some(&date("2023-02-01")));
        // Without a complete month: as_of's month.
        let periods = Periods::new(&kpi[2..], date("2024-03-15"));
        assert_eq!(periods.current, date("2024-03-01"));
    }

    #[test]
    fn comparisons_round_as_shown_and_know_good_from_bad() {
        let may = date("2024-05-01");
        // Churn up 0.04 pp rounds to 0.0 pp: flat, neither good nor bad.
        let c = compare(Kind::Rate, false, Some(0.1004), may, Some(0.1));
        assert_eq!((c.direction, c.sentiment), (Some(Direction::Flat), Some(Sentiment::Neutral)));
        // Churn up 1 pp: bad.
        let c = compare(Kind::Rate, false, Some(0.11), may, Some(0.1));
        assert_eq!((c.direction, c.sentiment), (Some(Direction::Up), Some(Sentiment::Bad)));
        // Revenue down 10 %: the delta shown is relative.
        let c = compare(Kind::Money, true, Some(900.0), may, Some(1000.0));
        assert_eq!(c.delta, Some(-0.1));
        assert_eq!((c.direction, c.sentiment), (Some(Direction::Down), Some(Sentiment::Bad)));
        // NPS from -10 to -5: +5 points, relative to the magnitude.
        let c = compare(Kind::Index, true, Some(-5.0), may, Some(-10.0));
        assert_eq!((c.delta, c.relative, c.sentiment), (Some(5.0), Some(0.5), Some(Sentiment::Good)));
        // No reference: no data, not zero.
        let c = compare(Kind::Count, true, Some(5.0), may, None);
        assert_eq!((c.change, c.delta, c.direction), (None, None, None));
        // A reference of zero has a change but no relative change.
        let c = compare(Kind::Count, true, Some(5.0), may, Some(0.0));
        assert_eq!((c.change, c.relative, c.direction), (Some(5.0), None, None));
    }

    #[test]
    fn share_of_wallet_is_weighted_by_spend_and_skips_rows_without_a_category_spend() {
        let row = |period: &str, ours: f64, category: Option<f64>| WalletRow {
            period: Some(date(period)),
            our_spend: Some(ours),
            category_spend: category,
            share_of_wallet: None,
        };
        let rows = [
            row("2024-05-01", 10.0, Some(100.0)),
            row("2024-05-01", 90.0, Some(100.0)),
            row("2024-05-01", 50.0, None),
            row("2024-06-01", 1.0, Some(1.0)),
        ];
        let shares = spend_weighted_shares(&rows);
        assert_eq!(shares.get(&date("2024-05-01")), Some(&0.5));
        assert_eq!(shares.get(&date("2024-06-01")), Some(&1.0));
        assert_eq!(shares.get(&date("2024-04-01")), None);
    }

    #[test]
    fn time_to_value_is_read_off_the_curve() {
        let point = |days: f64, share: f64| LttvPoint { days: Some(days), reached_share: Some(share) };
        let curve = [point(5.0, 0.1), point(30.0, 0.25), point(60.0, 0.4)];
        assert_eq!(reached_within(&curve, 30.0), Some(0.25));
        assert_eq!(reached_within(&curve, 90.0), Some(0.4));
        assert_eq!(reached_within(&curve, 4.0), Some(0.0));
        assert_eq!(reached_within(&[], 30.0), None);
    }

    #[test]
    fn loyalty_type_keys_read_as_words() {
        assert_eq!(humanize("truly_loyal"), "Truly loyal");
        assert_eq!(humanize(""), "");
    }
}
