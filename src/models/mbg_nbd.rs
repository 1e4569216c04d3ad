//! MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation and
//! comparison of models for customer base analysis", International Journal
//! of Research in Marketing 24(3), 201–209.
//!
//! The BG/NBD story with one change: the customer may also drop out right
//! after the first purchase, so one-time buyers are not certainly alive.
//! With o = 1 extra dropout opportunity, every BG/NBD expression changes
//! b + x → b + x + 1 in its beta terms and keeps the "dropped out" term for
//! x = 0; the shared code lives in [`super::bg_nbd`]. Parameters `[r, alpha,
//! a, b]` as for BG/NBD.

use super::bg_nbd::{self, Variant};

/// P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((α+T)/(α+t_x))^{r+x}),
/// Batislam et al. (2007); unlike BG/NBD, below 1 for x = 0.
pub(crate) fn p_alive(p: &[f64; 4], x: f64, t_x: f64, age: f64) -> f64 {
    bg_nbd::p_alive(p, Variant::Mbg, x, t_x, age)
}

/// E[X(t)] = b/(a−1) · [1 − (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))],
/// Batislam et al. (2007).
pub(crate) fn expected_purchases(p: &[f64; 4], t: f64) -> f64 {
    bg_nbd::expected_purchases(p, Variant::Mbg, t)
}

/// E[Y(t) | x, T, alive at T] = (a+b+x)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x}
/// 2F1(r+x, b+x+1; a+b+x; t/(α+T+t))], the conditional expectation of
/// Batislam et al. (2007) without its P(alive) factor.
pub(crate) fn alive_expected_purchases(p: &[f64; 4], t: f64, x: f64, age: f64) -> f64 {
    bg_nbd::alive_expected_purchases(p, Variant::Mbg, t, x, age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::bg_nbd::tests::{cdnow, simulate};
    use crate::models::special::ln_gamma;
    use crate::models::{FitOptions, Observation, PurchaseFit, PurchaseModelKind, fit_purchase_model};

    const PARAMS: [f64; 4] = [0.5, 6.0, 1.8, 4.0];

    /// The MBG/NBD likelihood written out without logs:
    /// B(a, b+x+1)/B(a, b) Γ(r+x) α^r / (Γ(r)(α+T)^{r+x})
    /// + B(a+1, b+x)/B(a, b) Γ(r+x) α^r / (Γ(r)(α+t_x)^{r+x}).
    fn direct_likelihood(p: [f64; 4], x: f64, t_x: f64, age: f64) -> f64 {
        let [r, alpha, a, b] = p;
        let beta = |u: f64, v: f64| (ln_gamma(u) + ln_gamma(v) - ln_gamma(u + v)).exp();
        let gamma_part = ln_gamma(r + x).exp() / ln_gamma(r).exp() * alpha.powf(r);
        beta(a, b + x + 1.0) / beta(a, b) * gamma_part / (alpha + age).powf(r + x)
            + beta(a + 1.0, b + x) / beta(a, b) * gamma_part / (alpha + t_x).powf(r + x)
    }

    #[test]
    fn likelihood_matches_direct_evaluation() {
        for &(x, t_x, age) in &[(0.0, 0.0, 30.0), (1.0, 4.0, 30.0), (5.0, 25.5, 31.0)] {
            let direct = direct_likelihood(PARAMS, x, t_x, age).ln();
            let ours = bg_nbd::log_likelihood(&PARAMS, Variant::Mbg, x, t_x, age);
            assert!((ours - direct).abs() < 1e-12, "{x}: {ours} vs {direct}");
        }
    }

    #[test]
    fn one_time_buyers_can_be_dead() {
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::MbgNbd, PARAMS).unwrap();
        let p = fit.p_alive(0.0, 0.0, 30.0);
        let [r, alpha, a, b] = PARAMS;
        let direct = 1.0 / (1.0 + a / b * ((alpha + 30.0) / alpha).powf(r));
        assert!((p - direct).abs() < 1e-14 && p < 1.0);
    }

    #[test]
    fn expectations_match_literal_formulas() {
        let [r, alpha, a, b] = PARAMS;
        let hyp = crate::models::special::hyp2f1_series;
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::MbgNbd, PARAMS).unwrap();
        let t = 12.0;
        let unconditional =
            b / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * hyp(r, b + 1.0, a + b, t / (alpha + t)));
        assert!((fit.expected_purchases(t) - unconditional).abs() < 1e-12);
        let (x, t_x, age) = (2.0, 10.0, 25.0);
        let z = t / (alpha + age + t);
        let bracket = 1.0 - ((alpha + age) / (alpha + age + t)).powf(r + x) * hyp(r + x, b + x + 1.0, a + b + x, z);
        let alive = 1.0 / (1.0 + a / (b + x) * ((alpha + age) / (alpha + t_x)).powf(r + x));
        let conditional = (a + b + x) / (a - 1.0) * bracket * alive;
        assert!((fit.conditional_expected_purchases(t, x, t_x, age) - conditional).abs() < 1e-12);
    }

    #[test]
    fn numerically_stable_for_heavy_buyers_and_long_histories() {
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::MbgNbd, PARAMS).unwrap();
        assert!(bg_nbd::log_likelihood(&PARAMS, Variant::Mbg, 500.0, 4990.0, 5000.0).is_finite());
        let p = fit.p_alive(500.0, 4990.0, 5000.0);
        assert!((0.0..=1.0).contains(&p));
        assert!(fit.conditional_expected_purchases(520.0, 500.0, 4990.0, 5000.0).is_finite());
        assert!(fit.expected_purchases(5000.0).is_finite());
    }

    #[test]
    fn fit_and_standard_errors_match_lifetimes_on_cdnow() {
        // lifetimes 0.11.3 `ModifiedBetaGeoFitter` on the CDNOW summary
        // (src/models/testdata/lifetimes_reference.py): coef and se(coef).
        let obs: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        let fit = fit_purchase_model(PurchaseModelKind::MbgNbd, &obs, &FitOptions::default()).unwrap();
        let want = [0.5248377256, 6.1829884791, 0.8913562809, 1.6140000257];
        for ((name, got), want) in fit.parameters().into_iter().zip(want) {
            assert!((got / want - 1.0).abs() < 1e-4, "{name}: {got} vs {want}");
        }
        let se = fit.std_errors().expect("a positive definite information matrix");
        for (got, want) in se.iter().zip([0.0832639453, 0.6955971916, 0.1547853207, 0.5374723508]) {
            assert!((got / want - 1.0).abs() < 1e-3, "{se:?}");
        }
    }

    #[test]
    fn recovers_simulated_parameters() {
        let truth = [0.8, 4.0, 1.5, 4.0];
        let obs = simulate(truth, Variant::Mbg, 5000, 11);
        let fit = fit_purchase_model(PurchaseModelKind::MbgNbd, &obs, &FitOptions::default()).unwrap();
        assert!(fit.converged());
        let got: Vec<f64> = fit.parameters().into_iter().map(|(_, v)| v).collect();
        assert!((got[0] / truth[0] - 1.0).abs() < 0.15, "{got:?}");
        assert!((got[1] / truth[1] - 1.0).abs() < 0.2, "{got:?}");
        let mean_p = |a: f64, b: f64| a / (a + b);
        assert!((mean_p(got[2], got[3]) - mean_p(truth[2], truth[3])).abs() < 0.05, "{got:?}");
        assert!((got[2] / truth[2] - 1.0).abs() < 0.5 && (got[3] / truth[3] - 1.0).abs() < 0.5, "{got:?}");
        // The truth lies within four standard errors of every estimate.
        let se = fit.std_errors().expect("standard errors");
        for ((estimate, want), se) in got.iter().zip(truth).zip(&se) {
            assert!((estimate - want).abs() < 4.0 * se, "{got:?} ± {se:?}");
        }
    }
}
