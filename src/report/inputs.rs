//! The rows of the output tables the report reads, typed. A table that is missing
//! (an optional input was absent, a stage was skipped, the table is not published
//! yet) reads as no rows: every figure built from it then says "no data".

use chrono::NaiveDate;
use datafusion::common::HashMap as FastMap;

use super::Tables;
use super::columns::Table;
use super::context::ProgramFigures;
use crate::error::Result;

/// A `kpi_monthly` row (the columns the report shows).
#[derive(Debug, Clone, Default)]
pub(crate) struct KpiMonth {
    pub period: Option<NaiveDate>,
    pub customers_end: Option<f64>,
    pub new_customers: Option<f64>,
    pub crr: Option<f64>,
    pub churn_rate: Option<f64>,
    pub revenue: Option<f64>,
    pub orders: Option<f64>,
    pub average_order_value: Option<f64>,
    pub repeat_customer_rate: Option<f64>,
    pub nps: Option<f64>,
    pub nps_responses: Option<f64>,
    pub lttv_median_days: Option<f64>,
    pub is_complete: Option<bool>,
}

/// A `cohort_retention` cell.
#[derive(Debug, Clone)]
pub(crate) struct CohortCell {
    pub cohort_month: Option<NaiveDate>,
    pub period_index: Option<i64>,
    pub retention_rate: Option<f64>,
}

/// An `rfm` row.
#[derive(Debug, Clone)]
pub(crate) struct RfmRow<'a> {
    pub customer_id: Option<&'a str>,
    pub monetary: Option<f64>,
    pub segment: Option<&'a str>,
    /// The customer's `clv.predicted_clv`, when finite.
    pub predicted_clv: Option<f64>,
}

/// A `clv` row.
#[derive(Debug, Clone)]
pub(crate) struct ClvRow<'a> {
    pub customer_id: Option<&'a str>,
    pub predicted_clv: Option<f64>,
}

/// A `clv_simple` row.
#[derive(Debug, Clone)]
pub(crate) struct SimpleClvRow<'a> {
    pub scope: Option<&'a str>,
    pub key: Option<&'a str>,
    pub simple_clv: Option<f64>,
}

/// A `share_of_wallet` row.
#[derive(Debug, Clone)]
pub(crate) struct WalletRow {
    pub period: Option<NaiveDate>,
    pub our_spend: Option<f64>,
    pub category_spend: Option<f64>,
    pub share_of_wallet: Option<f64>,
}

/// An `lttv_curve` point.
#[derive(Debug, Clone)]
pub(crate) struct LttvPoint {
    pub days: Option<f64>,
    pub reached_share: Option<f64>,
}

/// A `loyalty_program` row: its month and figures (whose `period` is filled in
/// when the context is built).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgramMonth {
    pub period: Option<NaiveDate>,
    pub figures: ProgramFigures,
}

/// A `loyalty_types` row.
#[derive(Debug, Clone)]
pub(crate) struct LoyaltyTypeRow<'a> {
    pub customer_id: Option<&'a str>,
    pub loyalty_type: Option<&'a str>,
    /// The customer's `customer_summary.revenue`.
    pub revenue: Option<f64>,
}

/// A `customer_summary` row.
#[derive(Debug, Clone)]
pub(crate) struct CustomerRow<'a> {
    pub customer_id: Option<&'a str>,
    pub first_purchase_date: Option<NaiveDate>,
    pub last_purchase_date: Option<NaiveDate>,
    pub revenue: Option<f64>,
}

/// Everything the report reads from the output tables.
#[derive(Debug, Default)]
pub(crate) struct Inputs<'a> {
    pub kpi_monthly: Vec<KpiMonth>,
    pub cohort_retention: Vec<CohortCell>,
    pub rfm: Vec<RfmRow<'a>>,
    pub clv: Vec<ClvRow<'a>>,
    pub clv_simple: Vec<SimpleClvRow<'a>>,
    pub share_of_wallet: Vec<WalletRow>,
    pub lttv_curve: Vec<LttvPoint>,
    pub loyalty_program: Vec<ProgramMonth>,
    pub loyalty_types: Vec<LoyaltyTypeRow<'a>>,
    pub customer_summary: Vec<CustomerRow<'a>>,
}

/// The columns the report reads of each output table it reads; `None` for every
/// column (the monthly tables, a few dozen rows each). A run keeps only these in
/// memory for the report: the customer-level tables have a million rows.
pub(crate) const TABLES_READ: [(&str, Option<&[&str]>); 10] = [
    ("kpi_monthly", None),
    ("cohort_retention", None),
    ("rfm", Some(&["customer_id", "monetary", "segment"])),
    ("clv", Some(&["customer_id", "predicted_clv"])),
    ("clv_simple", None),
    ("share_of_wallet", Some(&["period", "our_spend", "category_spend", "share_of_wallet"])),
    ("lttv_curve", None),
    ("loyalty_program", None),
    ("loyalty_types", Some(&["customer_id", "loyalty_type"])),
    ("customer_summary", Some(&["customer_id", "first_purchase_date", "last_purchase_date", "revenue"])),
];

/// Reads `name` from `tables` with `read`, or no rows when the table is missing.
fn rows<'a, T>(tables: &'a Tables, name: &'a str, read: impl FnOnce(&Table<'a>) -> Result<Vec<T>>) -> Result<Vec<T>> {
    match tables.get(name) {
        Some(batches) => read(&Table::new(name, batches)),
        None => Ok(Vec::new()),
    }
}

impl<'a> Inputs<'a> {
    /// Reads the columns the report uses; a missing column of a present table is an error.
    pub(crate) fn read(tables: &'a Tables) -> Result<Self> {
        let mut inputs = Self {
            kpi_monthly: rows(tables, "kpi_monthly", read_kpi_monthly)?,
            cohort_retention: rows(tables, "cohort_retention", |t| {
                let (cohort, index, rate) =
                    (t.dates("cohort_month")?, t.integers("period_index")?, t.floats("retention_rate")?);
                Ok(zip3(cohort, index, rate)
                    .map(|(cohort_month, period_index, retention_rate)| CohortCell {
                        cohort_month,
                        period_index,
                        retention_rate,
                    })
                    .collect())
            })?,
            rfm: rows(tables, "rfm", |t| {
                let (id, monetary, segment) = (t.strings("customer_id")?, t.floats("monetary")?, t.strings("segment")?);
                Ok(zip3(id, monetary, segment)
                    .map(|(customer_id, monetary, segment)| RfmRow {
                        customer_id,
                        monetary,
                        segment,
                        predicted_clv: None,
                    })
                    .collect())
            })?,
            clv: rows(tables, "clv", |t| {
                let (id, predicted) = (t.strings("customer_id")?, t.floats("predicted_clv")?);
                Ok(id
                    .into_iter()
                    .zip(predicted)
                    .map(|(customer_id, predicted_clv)| ClvRow { customer_id, predicted_clv })
                    .collect())
            })?,
            clv_simple: rows(tables, "clv_simple", |t| {
                let (scope, key, simple) = (t.strings("scope")?, t.strings("key")?, t.floats("simple_clv")?);
                Ok(zip3(scope, key, simple)
                    .map(|(scope, key, simple_clv)| SimpleClvRow { scope, key, simple_clv })
                    .collect())
            })?,
            share_of_wallet: rows(tables, "share_of_wallet", |t| {
                let (period, ours, category, share) = (
                    t.dates("period")?,
                    t.floats("our_spend")?,
                    t.floats("category_spend")?,
                    t.floats("share_of_wallet")?,
                );
                Ok(zip3(period, ours, category)
                    .zip(share)
                    .map(|((period, our_spend, category_spend), share_of_wallet)| WalletRow {
                        period,
                        our_spend,
                        category_spend,
                        share_of_wallet,
                    })
                    .collect())
            })?,
            lttv_curve: rows(tables, "lttv_curve", |t| {
                let (days, share) = (t.floats("days")?, t.floats("reached_share")?);
                Ok(days.into_iter().zip(share).map(|(days, reached_share)| LttvPoint { days, reached_share }).collect())
            })?,
            loyalty_program: rows(tables, "loyalty_program", read_loyalty_program)?,
            loyalty_types: rows(tables, "loyalty_types", |t| {
                let (id, kind) = (t.strings("customer_id")?, t.strings("loyalty_type")?);
                Ok(id
                    .into_iter()
                    .zip(kind)
                    .map(|(customer_id, loyalty_type)| LoyaltyTypeRow { customer_id, loyalty_type, revenue: None })
                    .collect())
            })?,
            customer_summary: rows(tables, "customer_summary", |t| {
                let (id, first, last, revenue) = (
                    t.strings("customer_id")?,
                    t.dates("first_purchase_date")?,
                    t.dates("last_purchase_date")?,
                    t.floats("revenue")?,
                );
                Ok(zip3(id, first, last)
                    .zip(revenue)
                    .map(|((customer_id, first_purchase_date, last_purchase_date), revenue)| CustomerRow {
                        customer_id,
                        first_purchase_date,
                        last_purchase_date,
                        revenue,
                    })
                    .collect())
            })?,
        };
        inputs.join_customer_figures();
        Ok(inputs)
    }

    /// Gives each RFM customer their predicted CLV and each loyalty type row its
    /// customer's revenue: the joins on customer_id the report needs, done once.
    fn join_customer_figures(&mut self) {
        let clv = by_customer(self.clv.iter().map(|c| (c.customer_id, c.predicted_clv.filter(|v| v.is_finite()))));
        for row in &mut self.rfm {
            row.predicted_clv = row.customer_id.and_then(|id| clv.get(id).copied().flatten());
        }
        let revenue = by_customer(self.customer_summary.iter().map(|c| (c.customer_id, c.revenue)));
        for row in &mut self.loyalty_types {
            row.revenue = row.customer_id.and_then(|id| revenue.get(id).copied().flatten());
        }
    }
}

/// A customer-level value by customer id (sized up front: a million customers would
/// otherwise rehash the map twenty times).
fn by_customer<'a>(
    rows: impl ExactSizeIterator<Item = (Option<&'a str>, Option<f64>)>,
) -> FastMap<&'a str, Option<f64>> {
    let mut map = FastMap::with_capacity_and_hasher(rows.len(), Default::default());
    map.extend(rows.filter_map(|(id, value)| Some((id?, value))));
    map
}

fn zip3<A, B, C>(a: Vec<A>, b: Vec<B>, c: Vec<C>) -> impl Iterator<Item = (A, B, C)> {
    a.into_iter().zip(b).zip(c).map(|((a, b), c)| (a, b, c))
}

/// A numeric column and the field of a row it fills.
type FloatColumn<Row> = (&'static str, fn(&mut Row) -> &mut Option<f64>);

fn read_kpi_monthly(t: &Table) -> Result<Vec<KpiMonth>> {
    let period = t.dates("period")?;
    let mut months: Vec<KpiMonth> =
        period.into_iter().map(|period| KpiMonth { period, ..KpiMonth::default() }).collect();
    let floats: [FloatColumn<KpiMonth>; 11] = [
        ("customers_end", |m| &mut m.customers_end),
        ("new_customers", |m| &mut m.new_customers),
        ("crr", |m| &mut m.crr),
        ("churn_rate", |m| &mut m.churn_rate),
        ("revenue", |m| &mut m.revenue),
        ("orders", |m| &mut m.orders),
        ("average_order_value", |m| &mut m.average_order_value),
        ("repeat_customer_rate", |m| &mut m.repeat_customer_rate),
        ("nps", |m| &mut m.nps),
        ("nps_responses", |m| &mut m.nps_responses),
        ("lttv_median_days", |m| &mut m.lttv_median_days),
    ];
    for (column, field) in floats {
        for (month, value) in months.iter_mut().zip(t.floats(column)?) {
            *field(month) = value;
        }
    }
    for (month, complete) in months.iter_mut().zip(t.booleans("is_complete")?) {
        month.is_complete = complete;
    }
    Ok(months)
}

fn read_loyalty_program(t: &Table) -> Result<Vec<ProgramMonth>> {
    let period = t.dates("period")?;
    let mut months: Vec<ProgramMonth> =
        period.into_iter().map(|period| ProgramMonth { period, ..ProgramMonth::default() }).collect();
    let floats: [FloatColumn<ProgramFigures>; 13] = [
        ("members_active", |m| &mut m.members_active),
        ("points_earned", |m| &mut m.points_earned),
        ("points_redeemed", |m| &mut m.points_redeemed),
        ("redemption_rate", |m| &mut m.redemption_rate),
        ("reward_cost", |m| &mut m.reward_cost),
        ("member_revenue", |m| &mut m.member_revenue),
        ("non_member_revenue", |m| &mut m.non_member_revenue),
        ("member_aov", |m| &mut m.member_aov),
        ("non_member_aov", |m| &mut m.non_member_aov),
        ("member_crr", |m| &mut m.member_crr),
        ("non_member_crr", |m| &mut m.non_member_crr),
        ("reward_cost_ratio", |m| &mut m.reward_cost_ratio),
        ("engagement_actions", |m| &mut m.engagement_actions),
    ];
    for (column, field) in floats {
        for (month, value) in months.iter_mut().zip(t.floats(column)?) {
            *field(&mut month.figures) = value;
        }
    }
    Ok(months)
}
