//! Customer lifetime value from a purchase model: discounted expected
//! margin over a horizon of whole months.

use super::purchase::{Observation, PurchaseFit};

/// Days in an average month (365.25 / 12). Divide by the days in one time
/// unit to get `units_per_month` (30.4375 for days, ≈ 4.348 for weeks).
pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// Predicted CLV of one customer:
/// Σ_{i=1..H} (E[Y(i·u)] − E[Y((i−1)·u)]) · expected_order_value · margin / (1+d)^i,
/// where E[Y(τ)] = [`PurchaseFit::conditional_expected_purchases`] (expected
/// purchases in (T, T+τ] given x, t_x, T), u = `units_per_month`, H =
/// `horizon_months` and d = `monthly_discount_rate`.
///
/// Each month is credited with the purchases expected *in that month* (the
/// increment of the cumulative expectation), then discounted by its own
/// factor — the discrete-time CLV of Fader, Hardie & Lee (2005, "RFM and
/// CLV"), CLV = Σ_t m·E[transactions in period t]/(1+d)^t, with spend per
/// transaction typically from
/// [`GammaGammaFit::conditional_expected_spend`](super::GammaGammaFit::conditional_expected_spend).
/// P(alive) factors out of every increment and is computed once.
#[allow(clippy::too_many_arguments)] // one argument per pipeline column or setting, as callers hold them
pub fn predicted_clv(
    fit: &PurchaseFit,
    x: f64,
    t_x: f64,
    age: f64,
    expected_order_value: f64,
    margin: f64,
    monthly_discount_rate: f64,
    horizon_months: u32,
    units_per_month: f64,
) -> f64 {
    fit.p_alive(x, t_x, age)
        * discounted_alive_purchases(fit, x, age, monthly_discount_rate, horizon_months, units_per_month)
        * expected_order_value
        * margin
}

/// [`predicted_clv`] for many customers, one expected order value each;
/// identical results, with the horizon sum computed once per distinct
/// (x, T) and spread over the available cores.
///
/// # Panics
/// If `customers` and `expected_order_values` differ in length.
pub fn predicted_clv_many(
    fit: &PurchaseFit,
    customers: &[Observation],
    expected_order_values: &[f64],
    margin: f64,
    monthly_discount_rate: f64,
    horizon_months: u32,
    units_per_month: f64,
) -> Vec<f64> {
    assert_eq!(customers.len(), expected_order_values.len(), "one expected order value per customer");
    let purchases = fit.p_alive_times(customers, |x, age| {
        discounted_alive_purchases(fit, x, age, monthly_discount_rate, horizon_months, units_per_month)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::purchase::PurchaseModelKind;

    const CDNOW: [f64; 4] = [0.243, 4.414, 0.793, 2.426];

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
                let got = predicted_clv(&fit, customer.0, customer.1, customer.2, 24.65, 0.3, 0.01, 12, u);
                let want = explicit_sum(&fit, customer, 24.65, 0.3, 0.01, 12, u);
                assert!((got - want).abs() < 1e-12 * want.max(1.0), "{kind:?} {customer:?}: {got} vs {want}");
            }
        }
        let pareto = PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, [0.55, 10.58, 0.61, 11.67]).unwrap();
        let got = predicted_clv(&pareto, 2.0, 30.43, 38.86, 24.65, 0.3, 0.01, 24, u);
        let want = explicit_sum(&pareto, (2.0, 30.43, 38.86), 24.65, 0.3, 0.01, 24, u);
        assert!((got - want).abs() < 1e-12 * want);
    }

    #[test]
    fn hand_computed_one_and_two_month_cases() {
        // One month, no discounting: exactly E[Y(u)] · value · margin.
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, CDNOW).unwrap();
        let e1 = fit.conditional_expected_purchases(4.0, 2.0, 30.43, 38.86);
        assert!((predicted_clv(&fit, 2.0, 30.43, 38.86, 10.0, 0.5, 0.0, 1, 4.0) - 5.0 * e1).abs() < 1e-12);
        // Two months at 10%: E1/1.1 + (E2 − E1)/1.21.
        let e2 = fit.conditional_expected_purchases(8.0, 2.0, 30.43, 38.86);
        let want = 5.0 * (e1 / 1.1 + (e2 - e1) / 1.21);
        assert!((predicted_clv(&fit, 2.0, 30.43, 38.86, 10.0, 0.5, 0.1, 2, 4.0) - want).abs() < 1e-12);
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
        let clv = predicted_clv(&fit, x, t_x, age, 1.0, 1.0, 0.01, 12, u);
        let total = fit.conditional_expected_purchases(12.0 * u, x, t_x, age);
        let cumulative: f64 =
            (1..=12).map(|i| fit.conditional_expected_purchases(f64::from(i) * u, x, t_x, age) / 1.01f64.powi(i)).sum();
        assert!(clv < total && clv > total / 1.01f64.powi(12), "{clv} vs {total}");
        assert!(cumulative > 4.0 * clv);
        assert_eq!(predicted_clv(&fit, x, t_x, age, 1.0, 1.0, 0.01, 0, u), 0.0);
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
        for kind in [PurchaseModelKind::BgNbd, PurchaseModelKind::MbgNbd] {
            let fit = PurchaseFit::from_parameters(kind, CDNOW).unwrap();
            let many = predicted_clv_many(&fit, &customers, &values, 0.3, 0.01, 12, u);
            let expected = fit.conditional_expected_purchases_many(26.0, &customers);
            for (i, c) in customers.iter().enumerate() {
                let one = predicted_clv(&fit, c.frequency, c.recency, c.age, values[i], 0.3, 0.01, 12, u);
                assert_eq!(many[i].to_bits(), one.to_bits());
                let e = fit.conditional_expected_purchases(26.0, c.frequency, c.recency, c.age);
                assert_eq!(expected[i].to_bits(), e.to_bits());
            }
        }
    }
}
