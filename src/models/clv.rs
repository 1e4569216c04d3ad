//! Customer lifetime value from a purchase model: discounted expected
//! margin over a horizon of whole months.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::gamma_gamma::GammaGammaFit;
use super::observations::{FastMap, Observation};
use super::purchase::{Histories, PurchaseFit, PurchaseModelKind};

/// Days in an average month (365.25 / 12). Divide by the days in one time
/// unit to get `units_per_month` (30.4375 for days, ≈ 4.348 for weeks).
pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// Predicted CLV of one customer:
/// Σ_{i=1..H} (E[Y(i·u)] − E[Y((i−1)·u)]) · expected_order_value · margin / (1+d)^i,
/// where E[Y(τ)] = [`PurchaseFit::conditional_expected_purchases`] (expected
/// purchases in (T, T+τ] given x, t_x, T), u = `units_per_month`, H =
/// `horizon_months` and d = `monthly_discount_rate` (of `settings`).
///
/// Each month is credited with the purchases expected *in that month* (the
/// increment of the cumulative expectation), then discounted by its own
/// factor — the discrete-time CLV of Fader, Hardie & Lee (2005, "RFM and
/// CLV"), CLV = Σ_t m·E[transactions in period t]/(1+d)^t, with spend per
/// transaction typically from
/// [`GammaGammaFit::conditional_expected_spend`](super::GammaGammaFit::conditional_expected_spend).
/// P(alive) factors out of every increment and is computed once.
pub fn predicted_clv(
    fit: &PurchaseFit,
    history: Observation,
    expected_order_value: f64,
    settings: &ClvSettings,
) -> f64 {
    let Observation { frequency: x, recency: t_x, age } = history;
    let ClvSettings { margin, monthly_discount_rate, horizon_months, units_per_month } = *settings;
    fit.p_alive(x, t_x, age)
        * discounted_alive_purchases(fit, x, age, monthly_discount_rate, horizon_months, units_per_month)
        * expected_order_value
        * margin
}

/// [`predicted_clv`] for many customers, one expected order value each;
/// identical results, with the horizon sum computed once per distinct
/// (x, T) and spread over `threads` threads.
///
/// # Panics
/// If `customers` and `expected_order_values` differ in length.
pub fn predicted_clv_many(
    fit: &PurchaseFit,
    customers: &[Observation],
    expected_order_values: &[f64],
    settings: &ClvSettings,
    threads: usize,
) -> Vec<f64> {
    assert_eq!(customers.len(), expected_order_values.len(), "one expected order value per customer");
    let ClvSettings { margin, monthly_discount_rate, horizon_months, units_per_month } = *settings;
    let purchases = fit.p_alive_times(customers, threads, |keys| {
        discounted_alive_purchases_many(fit, keys, monthly_discount_rate, horizon_months, units_per_month)
    });
    purchases.iter().zip(expected_order_values).map(|(p, value)| p * value * margin).collect()
}

/// Σ_i (E[Y(i·u) | alive] − E[Y((i−1)·u) | alive]) / (1+d)^i: the CLV sum
/// before the P(alive), order value and margin factors, which depends on
/// the customer only through (x, T).
fn discounted_alive_purchases(
    fit: &PurchaseFit,
    x: f64,
    age: f64,
    monthly_discount_rate: f64,
    horizon_months: u32,
    units_per_month: f64,
) -> f64 {
    let mut previous = 0.0;
    let mut discount = 1.0;
    let mut purchases = 0.0;
    for month in 1..=horizon_months {
        let cumulative = fit.alive_expected_purchases(f64::from(month) * units_per_month, x, age);
        discount /= 1.0 + monthly_discount_rate;
        purchases += (cumulative - previous) * discount;
        previous = cumulative;
    }
    purchases
}

/// [`discounted_alive_purchases`] of every (x, T) of `keys`, the same values
/// from one table of the monthly expectations
/// ([`PurchaseFit::alive_expected_purchases_table`]).
fn discounted_alive_purchases_many(
    fit: &PurchaseFit,
    keys: &[(f64, f64)],
    monthly_discount_rate: f64,
    horizon_months: u32,
    units_per_month: f64,
) -> Vec<f64> {
    let months: Vec<f64> = (1..=horizon_months).map(|month| f64::from(month) * units_per_month).collect();
    if months.is_empty() {
        return vec![0.0; keys.len()];
    }
    let table = fit.alive_expected_purchases_table(&months, keys);
    table
        .chunks(months.len())
        .map(|cumulatives| {
            let mut previous = 0.0;
            let mut discount = 1.0;
            let mut purchases = 0.0;
            for &cumulative in cumulatives {
                discount /= 1.0 + monthly_discount_rate;
                purchases += (cumulative - previous) * discount;
                previous = cumulative;
            }
            purchases
        })
        .collect()
}

/// What [`predicted_clv`] values customers over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClvSettings {
    /// Gross margin.
    pub margin: f64,
    /// Discount rate per month.
    pub monthly_discount_rate: f64,
    /// Months of future purchases.
    pub horizon_months: u32,
    /// Model time units in one month.
    pub units_per_month: f64,
}

/// One customer for [`ValueCells::add`]: purchase history, mean spend of the
/// repeat purchase days, and predicted CLV at the fitted parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValuedCustomer {
    /// x, t_x, T.
    pub history: Observation,
    /// m̄, the Gamma-Gamma input (ignored when x = 0).
    pub mean_spend: f64,
    /// The customer's [`predicted_clv`] at the fitted parameters.
    pub predicted_clv: f64,
}

/// The total predicted CLV of a group of customers under `draws` draws of the
/// model parameters from their asymptotic normal distribution (log-parameters,
/// see [`LogCovariance::draw`](super::LogCovariance::draw)): purchase-model and
/// Gamma-Gamma parameters drawn independently of each other, as the two models
/// are fitted separately (the Gamma-Gamma model assumes spend independent of
/// the purchase process). Percentiles of the result are an interval for the
/// group's predicted CLV that reflects the uncertainty of the parameters — not
/// of which customers buy (the total over many customers averages that out) nor
/// of the model's form. Draws come from ChaCha8 seeded with `seed`: the same
/// customers give the same totals, in whatever order they were added to `cells`.
///
/// Cost: a draw is not evaluated per customer but per cell of [`ValueCells`];
/// each draw's cell total is divided by the cell total at the fitted parameters
/// and multiplied by the group's exact total Σ `predicted_clv`. The rounding to
/// cells thus only enters as a ratio's second-order error, while the centre
/// stays exact. A million customers make a few thousand cells.
///
/// `None` when either model has no covariance (built from parameters, or
/// singular information matrix). A draw whose parameters leave the models'
/// domain (an overflowing exponent) totals NaN; one with q ≤ 1 or
/// px + q ≤ 1 has an infinite expected spend, as the point formula would.
pub fn predicted_clv_draws(
    purchases: &PurchaseFit,
    spend: &GammaGammaFit,
    cells: &ValueCells,
    settings: &ClvSettings,
    draws: usize,
    seed: u64,
    threads: usize,
) -> Option<Vec<f64>> {
    let (purchase_covariance, spend_covariance) = (purchases.log_covariance()?, spend.log_covariance()?);
    let purchase_params: Vec<f64> = purchases.parameters().into_iter().map(|(_, v)| v).collect();
    let spend_params: Vec<f64> = spend.parameters().into_iter().map(|(_, v)| v).collect();
    let cells = CellTotals::new(purchases.kind(), cells);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let parameters: Vec<(Vec<f64>, Vec<f64>)> = (0..draws)
        .map(|_| {
            let purchase = purchase_covariance.draw(&purchase_params, &mut rng);
            (purchase, spend_covariance.draw(&spend_params, &mut rng))
        })
        .collect();
    let centre = cells.total(purchases, spend, settings);
    let scale = if centre != 0.0 { cells.exact_total / centre } else { 1.0 };
    let kind = purchases.kind();
    let threads = threads.clamp(1, draws.max(1));
    let evaluate = |(purchase, spend_draw): &(Vec<f64>, Vec<f64>)| {
        let purchase = <[f64; 4]>::try_from(purchase.as_slice()).ok()?;
        let purchase = PurchaseFit::from_parameters(kind, purchase).ok()?;
        let spend = GammaGammaFit::from_parameters(spend_draw[0], spend_draw[1], spend_draw[2]).ok()?;
        Some(cells.total(&purchase, &spend, settings) * scale)
    };
    // Draws split over the threads; each total is computed the same way whatever
    // the split, so the results do not depend on the thread count.
    let per_thread = parameters.len().div_ceil(threads.max(1)).max(1);
    let totals = std::thread::scope(|scope| {
        let handles: Vec<_> = parameters
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || chunk.iter().map(|p| evaluate(p).unwrap_or(f64::NAN)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(part) => part,
                // A panic here is a bug in this module, not bad user data.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    Some(totals)
}

/// An integer that orders as `f64::total_cmp` orders `v`: the bits, with the
/// magnitude bits of negative numbers flipped (as `total_cmp` itself does).
fn total_order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// A group of customers as [`predicted_clv_draws`] values them, built as rows
/// arrive, in memory that grows with the cells, not the customers: customers merged
/// into cells of equal frequency, with recency and T rounded to the middle of their
/// model month, and in each cell the customers valued at the population mean spend
/// (x = 0 or m̄ ≤ 0) counted and the m̄ of the others summed (the Gamma-Gamma
/// expectation being linear in m̄: Σ E[M | x, m̄ᵢ] = p(nγ + xΣm̄ᵢ)/(px + q − 1)).
///
/// Sums are [`ExactSum`]s and cells are valued in the order of their keys, so the
/// draws do not depend on the order the customers come in or how groups were split
/// and merged (a query may deliver them differently from run to run).
#[derive(Clone, Debug, Default)]
pub struct ValueCells {
    index: FastMap<(u64, u64, u64), usize>,
    cells: Vec<ValueCell>,
    exact_total: ExactSum,
}

/// One cell of [`ValueCells`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ValueCell {
    /// The cell's frequency, and recency and T at the middle of their month.
    pub history: Observation,
    /// Customers valued at the population mean spend.
    pub population_spenders: u64,
    /// Customers valued by their own spend, and the sum of their m̄.
    pub own_spenders: u64,
    pub own_spend: ExactSum,
}

impl ValueCells {
    /// Adds `customer`, whose model time has `units_per_month` units in a month.
    pub fn add(&mut self, customer: &ValuedCustomer, units_per_month: f64) {
        let middle_of_month = |t: f64| ((t / units_per_month).floor() + 0.5) * units_per_month;
        let Observation { frequency, recency, age } = customer.history;
        let age = middle_of_month(age);
        // Without repeat purchases recency is 0, and stays so.
        let recency = if frequency > 0.0 { middle_of_month(recency).min(age) } else { 0.0 };
        let mut cell = ValueCell { history: Observation { frequency, recency, age }, ..ValueCell::default() };
        if frequency > 0.0 && customer.mean_spend > 0.0 {
            cell.own_spenders = 1;
            cell.own_spend.add(customer.mean_spend);
        } else {
            cell.population_spenders = 1;
        }
        self.merge_cell(cell);
        self.exact_total.add(customer.predicted_clv);
    }

    /// Adds the customers of `cell` (of another group's [`ValueCells::cells`]).
    pub fn merge_cell(&mut self, cell: ValueCell) {
        let Observation { frequency, recency, age } = cell.history;
        let next = self.cells.len();
        let slot = *self.index.entry((frequency.to_bits(), recency.to_bits(), age.to_bits())).or_insert(next);
        if slot == next {
            self.cells.push(ValueCell { history: cell.history, ..ValueCell::default() });
        }
        let into = &mut self.cells[slot];
        into.population_spenders += cell.population_spenders;
        into.own_spenders += cell.own_spenders;
        into.own_spend.merge(cell.own_spend);
    }

    /// Adds `total` (another group's [`ValueCells::exact_total`]) to Σ `predicted_clv`.
    pub fn merge_total(&mut self, total: ExactSum) {
        self.exact_total.merge(total);
    }

    /// The cells, in the order they were first met.
    pub fn cells(&self) -> &[ValueCell] {
        &self.cells
    }

    /// Σ `predicted_clv` of the customers added.
    pub fn exact_total(&self) -> ExactSum {
        self.exact_total
    }

    /// Whether no customer was added.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Bytes held, for memory accounting.
    pub fn size(&self) -> usize {
        self.cells.capacity() * size_of::<ValueCell>()
            + self.index.capacity() * (size_of::<(u64, u64, u64)>() + size_of::<usize>() + 1)
    }
}

/// A sum of `f64`s that does not depend on their order: finite values are rounded
/// to 10 decimals (as the pipeline's exact sums, DECIMAL(38, 10)) and added as
/// integers; infinities and NaNs, whose sum is the same in any order, apart.
/// Exact while the finite part stays within ±1.7 × 10²⁸.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExactSum {
    /// Σ of the finite values, in units of 10⁻¹⁰.
    pub units: i128,
    /// Σ of the non-finite values (0 when there are none).
    pub non_finite: f64,
}

impl ExactSum {
    /// Units of 10⁻¹⁰ in one.
    pub const SCALE: f64 = 1e10;

    /// Adds `value`.
    pub fn add(&mut self, value: f64) {
        if value.is_finite() {
            self.units = self.units.saturating_add((value * Self::SCALE).round() as i128);
        } else {
            self.non_finite += value;
        }
    }

    /// Adds another sum.
    pub fn merge(&mut self, other: ExactSum) {
        self.units = self.units.saturating_add(other.units);
        self.non_finite += other.non_finite;
    }

    /// The sum as an `f64`.
    pub fn value(self) -> f64 {
        self.units as f64 / Self::SCALE + self.non_finite
    }
}

/// [`ValueCells`] in the order of their keys, ready to be valued under many draws.
struct CellTotals {
    histories: Histories,
    population_spenders: Vec<f64>,
    own_spenders: Vec<f64>,
    own_spend: Vec<f64>,
    exact_total: f64,
}

impl CellTotals {
    fn new(kind: PurchaseModelKind, cells: &ValueCells) -> CellTotals {
        let mut sorted: Vec<&ValueCell> = cells.cells().iter().collect();
        sorted.sort_unstable_by_key(|c| [c.history.frequency, c.history.recency, c.history.age].map(total_order_key));
        CellTotals {
            histories: Histories::new(kind, sorted.iter().map(|c| c.history).collect()),
            population_spenders: sorted.iter().map(|c| c.population_spenders as f64).collect(),
            own_spenders: sorted.iter().map(|c| c.own_spenders as f64).collect(),
            own_spend: sorted.iter().map(|c| c.own_spend.value()).collect(),
            exact_total: cells.exact_total().value(),
        }
    }

    /// Σ over cells of P(alive) × discounted expected purchases × the cell's
    /// summed expected spend × margin: the group's predicted CLV on cells.
    fn total(&self, purchases: &PurchaseFit, spend: &GammaGammaFit, settings: &ClvSettings) -> f64 {
        let ClvSettings { margin, monthly_discount_rate, horizon_months, units_per_month } = *settings;
        let per_key = discounted_alive_purchases_many(
            purchases,
            self.histories.keys(),
            monthly_discount_rate,
            horizon_months,
            units_per_month,
        );
        let purchases_per_cell = purchases.p_alive_times_prepared(&self.histories, &per_key);
        let [p, q, gamma] = [0, 1, 2].map(|i| spend.parameters()[i].1);
        let population_mean = spend.population_mean_spend();
        let mut total = 0.0;
        for (i, history) in self.histories.customers().iter().enumerate() {
            // An empty side adds nothing, even when its mean would be infinite.
            let mut value =
                if self.population_spenders[i] > 0.0 { self.population_spenders[i] * population_mean } else { 0.0 };
            if self.own_spenders[i] > 0.0 {
                let x = history.frequency;
                let denominator = p * x + q - 1.0;
                value += if denominator > 0.0 {
                    p * (self.own_spenders[i] * gamma + x * self.own_spend[i]) / denominator
                } else {
                    f64::INFINITY
                };
            }
            total += purchases_per_cell[i] * value * margin;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::bg_nbd::tests::cdnow;
    use crate::models::{FitOptions, PurchaseModelKind, fit_purchase_model};
    use crate::models::{LogCovariance, fit_gamma_gamma};

    const CDNOW: [f64; 4] = [0.243, 4.414, 0.793, 2.426];

    fn history(frequency: f64, recency: f64, age: f64) -> Observation {
        Observation { frequency, recency, age }
    }

    fn settings(margin: f64, monthly_discount_rate: f64, horizon_months: u32, units_per_month: f64) -> ClvSettings {
        ClvSettings { margin, monthly_discount_rate, horizon_months, units_per_month }
    }

    fn explicit_sum(
        fit: &PurchaseFit,
        customer: (f64, f64, f64),
        value: f64,
        margin: f64,
        d: f64,
        months: u32,
        u: f64,
    ) -> f64 {
        let (x, t_x, age) = customer;
        (1..=months)
            .map(|i| {
                let now = fit.conditional_expected_purchases(f64::from(i) * u, x, t_x, age);
                let before = fit.conditional_expected_purchases(f64::from(i - 1) * u, x, t_x, age);
                (now - before) * value * margin / (1.0 + d).powi(i as i32)
            })
            .sum()
    }

    #[test]
    fn equals_explicit_sum_of_discounted_increments() {
        let u = DAYS_PER_MONTH / 7.0;
        for kind in [PurchaseModelKind::BgNbd, PurchaseModelKind::MbgNbd] {
            let fit = PurchaseFit::from_parameters(kind, CDNOW).unwrap();
            for customer in [(2.0, 30.43, 38.86), (0.0, 0.0, 38.86), (9.0, 20.0, 38.0)] {
                let got = predicted_clv(
                    &fit,
                    history(customer.0, customer.1, customer.2),
                    24.65,
                    &settings(0.3, 0.01, 12, u),
                );
                let want = explicit_sum(&fit, customer, 24.65, 0.3, 0.01, 12, u);
                assert!((got - want).abs() < 1e-12 * want.max(1.0), "{kind:?} {customer:?}: {got} vs {want}");
            }
        }
        let pareto = PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, [0.55, 10.58, 0.61, 11.67]).unwrap();
        let got = predicted_clv(&pareto, history(2.0, 30.43, 38.86), 24.65, &settings(0.3, 0.01, 24, u));
        let want = explicit_sum(&pareto, (2.0, 30.43, 38.86), 24.65, 0.3, 0.01, 24, u);
        assert!((got - want).abs() < 1e-12 * want);
    }

    #[test]
    fn hand_computed_one_and_two_month_cases() {
        // One month, no discounting: exactly E[Y(u)] · value · margin.
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, CDNOW).unwrap();
        let e1 = fit.conditional_expected_purchases(4.0, 2.0, 30.43, 38.86);
        assert!(
            (predicted_clv(&fit, history(2.0, 30.43, 38.86), 10.0, &settings(0.5, 0.0, 1, 4.0)) - 5.0 * e1).abs()
                < 1e-12
        );
        // Two months at 10%: E1/1.1 + (E2 − E1)/1.21.
        let e2 = fit.conditional_expected_purchases(8.0, 2.0, 30.43, 38.86);
        let want = 5.0 * (e1 / 1.1 + (e2 - e1) / 1.21);
        assert!(
            (predicted_clv(&fit, history(2.0, 30.43, 38.86), 10.0, &settings(0.5, 0.1, 2, 4.0)) - want).abs() < 1e-12
        );
    }

    #[test]
    fn uses_incremental_not_cumulative_expectations() {
        // Summing discounted *cumulative* expectations would count month 1's
        // purchases in every later month too: over 12 months that is several
        // times the correct value, and it would exceed the undiscounted
        // 12-month expectation, which the correct sum never can.
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, CDNOW).unwrap();
        let u = DAYS_PER_MONTH / 7.0;
        let (x, t_x, age) = (2.0, 30.43, 38.86);
        let clv = predicted_clv(&fit, history(x, t_x, age), 1.0, &settings(1.0, 0.01, 12, u));
        let total = fit.conditional_expected_purchases(12.0 * u, x, t_x, age);
        let cumulative: f64 =
            (1..=12).map(|i| fit.conditional_expected_purchases(f64::from(i) * u, x, t_x, age) / 1.01f64.powi(i)).sum();
        assert!(clv < total && clv > total / 1.01f64.powi(12), "{clv} vs {total}");
        assert!(cumulative > 4.0 * clv);
        assert_eq!(predicted_clv(&fit, history(x, t_x, age), 1.0, &settings(1.0, 0.01, 0, u)), 0.0);
    }

    #[test]
    fn many_customers_match_one_at_a_time() {
        let u = DAYS_PER_MONTH / 7.0;
        let customers: Vec<Observation> =
            [(2.0, 30.43, 38.86), (0.0, 0.0, 38.86), (2.0, 10.0, 38.86), (5.0, 30.0, 33.0)]
                .iter()
                .cycle()
                .take(50_000)
                .map(|&(frequency, recency, age)| Observation { frequency, recency, age })
                .collect();
        let values: Vec<f64> = (0..customers.len()).map(|i| 10.0 + (i % 7) as f64).collect();
        for (kind, params) in [
            (PurchaseModelKind::BgNbd, CDNOW),
            (PurchaseModelKind::MbgNbd, CDNOW),
            (PurchaseModelKind::ParetoNbd, [0.55, 10.58, 0.61, 11.67]),
        ] {
            let fit = PurchaseFit::from_parameters(kind, params).unwrap();
            let many = predicted_clv_many(&fit, &customers, &values, &settings(0.3, 0.01, 12, u), 2);
            let expected = fit.conditional_expected_purchases_many(26.0, &customers, 2);
            for (i, c) in customers.iter().enumerate() {
                let one =
                    predicted_clv(&fit, history(c.frequency, c.recency, c.age), values[i], &settings(0.3, 0.01, 12, u));
                assert_eq!(many[i].to_bits(), one.to_bits());
                let e = fit.conditional_expected_purchases(26.0, c.frequency, c.recency, c.age);
                assert_eq!(expected[i].to_bits(), e.to_bits());
            }
        }
    }

    #[test]
    fn total_order_keys_order_as_total_cmp() {
        let mut values = vec![
            f64::NAN,
            f64::INFINITY,
            1e300,
            2.5,
            f64::MIN_POSITIVE / 4.0,
            0.0,
            -0.0,
            -f64::MIN_POSITIVE / 4.0,
            -2.5,
            -1e300,
            f64::NEG_INFINITY,
            -f64::NAN,
        ];
        let mut by_key = values.clone();
        values.sort_by(f64::total_cmp);
        by_key.sort_by_key(|v| total_order_key(*v));
        assert_eq!(
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            by_key.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    const WEEKS: ClvSettings = ClvSettings {
        margin: 0.3,
        monthly_discount_rate: 0.01,
        horizon_months: 12,
        units_per_month: DAYS_PER_MONTH / 7.0,
    };

    /// CDNOW's 2,357 customers with BG/NBD and Gamma-Gamma fitted to them, each
    /// customer valued exactly at the given parameters.
    fn cdnow_valued(purchases: &PurchaseFit, spend: &GammaGammaFit) -> Vec<ValuedCustomer> {
        cdnow()
            .into_iter()
            .map(|(history, mean_spend)| {
                let x = history.frequency;
                let value = if x > 0.0 && mean_spend > 0.0 {
                    spend.conditional_expected_spend(x, mean_spend)
                } else {
                    spend.population_mean_spend()
                };
                let predicted_clv = predicted_clv(purchases, history, value, &WEEKS);
                ValuedCustomer { history, mean_spend, predicted_clv }
            })
            .collect()
    }

    fn cdnow_fits() -> (PurchaseFit, GammaGammaFit) {
        let data = cdnow();
        let histories: Vec<Observation> = data.iter().map(|(o, _)| *o).collect();
        let pairs: Vec<(f64, f64)> = data.iter().map(|(o, m)| (o.frequency, *m)).collect();
        let purchases = fit_purchase_model(PurchaseModelKind::BgNbd, &histories, &FitOptions::default()).unwrap();
        (purchases, fit_gamma_gamma(&pairs, &FitOptions::default()).unwrap())
    }

    fn cells_of(customers: &[ValuedCustomer]) -> ValueCells {
        let mut cells = ValueCells::default();
        for customer in customers {
            cells.add(customer, WEEKS.units_per_month);
        }
        cells
    }

    #[test]
    fn draws_on_month_cells_match_exact_per_customer_totals() {
        let (purchases, spend) = cdnow_fits();
        let customers = cdnow_valued(&purchases, &spend);
        let totals = predicted_clv_draws(&purchases, &spend, &cells_of(&customers), &WEEKS, 6, 11, 2).unwrap();
        let reversed: Vec<ValuedCustomer> = customers.iter().rev().copied().collect();
        assert_eq!(totals, predicted_clv_draws(&purchases, &spend, &cells_of(&reversed), &WEEKS, 6, 11, 2).unwrap());
        // The same draws, each valued customer by customer.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (pc, sc) = (purchases.log_covariance().unwrap(), spend.log_covariance().unwrap());
        let purchase_params: Vec<f64> = purchases.parameters().into_iter().map(|(_, v)| v).collect();
        let spend_params: Vec<f64> = spend.parameters().into_iter().map(|(_, v)| v).collect();
        for total in totals {
            let p = pc.draw(&purchase_params, &mut rng);
            let g = sc.draw(&spend_params, &mut rng);
            let drawn = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, [p[0], p[1], p[2], p[3]]).unwrap();
            let drawn_spend = GammaGammaFit::from_parameters(g[0], g[1], g[2]).unwrap();
            let exact: f64 = cdnow_valued(&drawn, &drawn_spend).iter().map(|c| c.predicted_clv).sum();
            assert!((total / exact - 1.0).abs() < 1e-3, "{total} vs {exact}");
        }
    }

    #[test]
    fn spread_of_the_draws_matches_the_delta_method() {
        // sd of ln(total) over 2,000 draws against the delta method: the gradient of
        // ln(total) in the 7 log-parameters (central differences, exact per-customer
        // totals) through the block-diagonal covariance.
        let (purchases, spend) = cdnow_fits();
        let customers = cdnow_valued(&purchases, &spend);
        let totals = predicted_clv_draws(&purchases, &spend, &cells_of(&customers), &WEEKS, 2000, 3, 2).unwrap();
        let logs: Vec<f64> = totals.iter().map(|t| t.ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (logs.len() - 1) as f64).sqrt();

        let theta: Vec<f64> = purchases.parameters().iter().chain(&spend.parameters()).map(|(_, v)| v.ln()).collect();
        let ln_total = |theta: &[f64]| {
            let e: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
            let p = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, [e[0], e[1], e[2], e[3]]).unwrap();
            let g = GammaGammaFit::from_parameters(e[4], e[5], e[6]).unwrap();
            cdnow_valued(&p, &g).iter().map(|c| c.predicted_clv).sum::<f64>().ln()
        };
        let h = 1e-5;
        let gradient: Vec<f64> = (0..7)
            .map(|i| {
                let (mut up, mut down) = (theta.clone(), theta.clone());
                up[i] += h;
                down[i] -= h;
                (ln_total(&up) - ln_total(&down)) / (2.0 * h)
            })
            .collect();
        let block = |c: &LogCovariance, g: &[f64]| -> f64 {
            let n = c.dim();
            (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| g[i] * c.values()[i * n + j] * g[j]).sum()
        };
        let variance = block(purchases.log_covariance().unwrap(), &gradient[..4])
            + block(spend.log_covariance().unwrap(), &gradient[4..]);
        let delta = variance.sqrt();
        assert!((sd / delta - 1.0).abs() < 0.1, "draws {sd} vs delta method {delta}");
        // And the centre: the median draw is near the exact total.
        let exact: f64 = customers.iter().map(|c| c.predicted_clv).sum();
        let mut sorted = totals.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[1000] / exact - 1.0).abs() < 0.1 * delta, "{} vs {exact}", sorted[1000]);
    }

    #[test]
    fn draws_need_both_covariances() {
        let (purchases, spend) = cdnow_fits();
        let customers = cdnow_valued(&purchases, &spend);
        let given = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, CDNOW).unwrap();
        assert_eq!(predicted_clv_draws(&given, &spend, &cells_of(&customers), &WEEKS, 10, 1, 2), None);
        assert_eq!(
            predicted_clv_draws(&purchases, &spend, &ValueCells::default(), &WEEKS, 3, 1, 2),
            Some(vec![0.0; 3])
        );
    }

    #[test]
    fn cells_merged_from_parts_value_as_the_whole_in_any_order() {
        let (purchases, spend) = cdnow_fits();
        let customers = cdnow_valued(&purchases, &spend);
        let whole = cells_of(&customers);
        // CDNOW's 2,357 customers fall into far fewer cells.
        assert_eq!(whole.cells().iter().map(|c| c.population_spenders + c.own_spenders).sum::<u64>(), 2357);
        assert!(whole.cells().len() < 600, "{} cells", whole.cells().len());
        // Split in three interleaved parts, merged in reverse: the same cells and sums,
        // so the same draws, value for value.
        let parts: Vec<ValueCells> =
            (0..3).map(|part| cells_of(&customers.iter().skip(part).step_by(3).copied().collect::<Vec<_>>())).collect();
        let mut merged = ValueCells::default();
        for part in parts.iter().rev() {
            for cell in part.cells() {
                merged.merge_cell(*cell);
            }
            merged.merge_total(part.exact_total());
        }
        assert_eq!(merged.exact_total(), whole.exact_total());
        let draws = |cells: &ValueCells| predicted_clv_draws(&purchases, &spend, cells, &WEEKS, 5, 2, 2).unwrap();
        assert_eq!(draws(&merged), draws(&whole));
    }

    #[test]
    fn exact_sums_do_not_depend_on_the_order() {
        let values = [0.1, 1e15, 0.2, -1e15, 0.3, 123.456_789_012_345];
        let sum = |values: &mut dyn Iterator<Item = f64>| {
            let mut sum = ExactSum::default();
            values.for_each(|v| sum.add(v));
            sum
        };
        let forward = sum(&mut values.iter().copied());
        assert_eq!(forward, sum(&mut values.iter().rev().copied()));
        assert_eq!(forward.units, 1_240_567_890_123);
        assert_eq!(forward.value(), 124.056_789_012_3);
        // Naive float sums of the same values differ by order.
        assert_ne!(values.iter().sum::<f64>(), values.iter().rev().sum::<f64>());
        let mut infinite = forward;
        infinite.add(f64::INFINITY);
        assert_eq!(infinite.value(), f64::INFINITY);
        infinite.add(f64::NEG_INFINITY);
        assert!(infinite.value().is_nan());
    }
}
