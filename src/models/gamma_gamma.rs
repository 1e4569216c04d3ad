//! Gamma-Gamma model of spend per transaction: Fader, Hardie & Lee (2005),
//! "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
//! Journal of Marketing Research 42(4), 415–430, Section "Adding Monetary
//! Value", and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary
//! Value" (cited below as "the note").
//!
//! Spend per transaction z ~ Gamma(p, ν), ν ~ Gamma(q, γ) across customers;
//! a customer's mean spend m̄ over x transactions is Gamma(px, νx).

use super::covariance::LogCovariance;
use super::error::FitError;
use super::optimize::{self, FitOptions, Stall};
use super::parallel::{map_chunks, sum_arrays};
use super::special::{digamma, ln_gamma};

/// Fewest customers with a repeat purchase and positive mean spend the model
/// is fitted to; below it p, q and γ are not identified.
pub const MIN_SPEND_CUSTOMERS: usize = 10;

/// Model name in errors and reports.
const MODEL: &str = "gamma_gamma";

/// Fitted (or given) Gamma-Gamma parameters and fit diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct GammaGammaFit {
    p: f64,
    q: f64,
    gamma: f64,
    log_likelihood: f64,
    iterations: usize,
    converged: bool,
    customers_used: usize,
    customers_left_out: usize,
    covariance: Option<LogCovariance>,
}

/// Fits p, q, γ by maximum likelihood to `(frequency, mean spend)` pairs.
///
/// Pairs with frequency 0 (no repeat transactions, so no spend observed in
/// the model's sense; their mean spend may be anything, even NaN) or mean
/// spend ≤ 0 (returns, free orders) are left out
/// and counted in [`GammaGammaFit::customers_left_out`], rather than turning
/// the likelihood into NaN. The likelihood is the density of m̄ given x
/// (the note's likelihood; FHL 2005 give the same density):
/// f(m̄ | p, q, γ; x) = Γ(px+q)/(Γ(px)Γ(q)) · γ^q m̄^{px−1} x^{px} / (γ + m̄x)^{px+q}.
///
/// Errors: [`FitError::InvalidInput`] for negative, non-finite or fractional
/// frequencies, or a non-finite mean spend with frequency > 0; [`FitError::InsufficientData`] with fewer than
/// [`MIN_SPEND_CUSTOMERS`] usable pairs; [`FitError::NotConverged`].
pub fn fit_gamma_gamma(pairs: &[(f64, f64)], options: &FitOptions) -> Result<GammaGammaFit, FitError> {
    let data = SpendData::new(pairs)?;
    let used = data.y.len();
    if used < MIN_SPEND_CUSTOMERS {
        return Err(FitError::InsufficientData {
            model: MODEL,
            customers: pairs.len(),
            usable: used,
            required: MIN_SPEND_CUSTOMERS,
            usable_means: "repeat buyers with positive mean spend",
        });
    }
    let objective = Objective { data: &data, threads: options.threads.max(1) };
    // Start at p = 1, q = 3 with γ chosen so the population mean pγ/(q−1)
    // equals the observed mean of m̄.
    let mean_spend = data.y.iter().map(|(y, x)| y / x).sum::<f64>() / used as f64;
    let start = [0.0, 3f64.ln(), (2.0 * mean_spend).ln()];
    let not_converged = |iterations, log_likelihood, diverging| FitError::NotConverged {
        model: MODEL,
        iterations,
        log_likelihood,
        diverging,
    };
    let Some(minimum) = optimize::minimize(&objective, &start, options.max_iterations, options.tolerance) else {
        return Err(not_converged(0, f64::NAN, None));
    };
    let log_likelihood = -minimum.value * used as f64;
    match minimum.stall {
        Some(Stall::Diverged(i)) => {
            Err(not_converged(minimum.iterations, log_likelihood, Some(["p", "q", "gamma"][i])))
        }
        Some(_) if !options.allow_unconverged => Err(not_converged(minimum.iterations, log_likelihood, None)),
        stall => Ok(GammaGammaFit {
            // A converged fit carries the covariance of ln p, ln q, ln γ
            // (see [`LogCovariance`]); at a stalled point it means nothing.
            covariance: match stall {
                None if options.standard_errors => LogCovariance::at_minimum(&objective, &minimum.theta, used),
                _ => None,
            },
            p: minimum.theta[0].exp(),
            q: minimum.theta[1].exp(),
            gamma: minimum.theta[2].exp(),
            log_likelihood,
            iterations: minimum.iterations,
            converged: stall.is_none(),
            customers_used: used,
            customers_left_out: pairs.len() - used,
        }),
    }
}

impl GammaGammaFit {
    /// A model with known p, q, γ (e.g. stored from an earlier run). Its
    /// log-likelihood is NaN and its counts are 0.
    pub fn from_parameters(p: f64, q: f64, gamma: f64) -> Result<GammaGammaFit, FitError> {
        for (name, value) in [("p", p), ("q", q), ("gamma", gamma)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(FitError::InvalidInput {
                    model: MODEL,
                    reason: format!("parameter `{name}` is {value}; all parameters must be finite and positive"),
                });
            }
        }
        Ok(GammaGammaFit {
            p,
            q,
            gamma,
            log_likelihood: f64::NAN,
            iterations: 0,
            converged: true,
            customers_used: 0,
            customers_left_out: 0,
            covariance: None,
        })
    }

    /// The same model with `covariance` as the uncertainty of ln p, ln q,
    /// ln γ (e.g. stored with the parameters by an earlier fit).
    pub fn with_log_covariance(mut self, covariance: LogCovariance) -> Result<GammaGammaFit, FitError> {
        if covariance.dim() != 3 {
            return Err(FitError::InvalidInput {
                model: MODEL,
                reason: format!("a covariance of {} parameters for a model of 3", covariance.dim()),
            });
        }
        self.covariance = Some(covariance);
        Ok(self)
    }

    /// Asymptotic covariance of (ln p, ln q, ln γ): `None` for a model built
    /// from parameters, a fit that did not converge, or a singular or
    /// indefinite information matrix.
    pub fn log_covariance(&self) -> Option<&LogCovariance> {
        self.covariance.as_ref()
    }

    /// Standard errors of p, q, γ in their natural scale (see
    /// [`LogCovariance`]); `None` when [`log_covariance`](Self::log_covariance) is.
    pub fn std_errors(&self) -> Option<Vec<f64>> {
        self.covariance.as_ref().map(|c| c.std_errors(&[self.p, self.q, self.gamma]))
    }

    /// `[("p", ..), ("q", ..), ("gamma", ..)]`.
    pub fn parameters(&self) -> Vec<(&'static str, f64)> {
        vec![("p", self.p), ("q", self.q), ("gamma", self.gamma)]
    }

    /// Maximised log-likelihood over the customers used (NaN when built
    /// from parameters).
    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood
    }

    /// Optimiser iterations used.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Whether the optimiser met the tolerance (false only with
    /// [`FitOptions::allow_unconverged`]).
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Customers the model was fitted to.
    pub fn customers_used(&self) -> usize {
        self.customers_used
    }

    /// Pairs left out for frequency 0 or mean spend ≤ 0.
    pub fn customers_left_out(&self) -> usize {
        self.customers_left_out
    }

    /// Population mean spend per transaction E[Z] = pγ/(q−1) (the note's
    /// mean of the gamma mixture); infinite when q ≤ 1.
    pub fn population_mean_spend(&self) -> f64 {
        if self.q > 1.0 { self.p * self.gamma / (self.q - 1.0) } else { f64::INFINITY }
    }

    /// E[M | x, m̄] = (pγ + p x m̄)/(px + q − 1) (FHL 2005 and the note's
    /// conditional expectation): a weighted average of the population mean and the customer's
    /// own mean spend. Customers with x = 0 or m̄ ≤ 0 get the population mean,
    /// matching how the fit leaves them out. Infinite when px + q ≤ 1.
    pub fn conditional_expected_spend(&self, frequency: f64, mean_spend: f64) -> f64 {
        if !(frequency > 0.0 && mean_spend > 0.0) {
            return self.population_mean_spend();
        }
        let denominator = self.p * frequency + self.q - 1.0;
        if denominator <= 0.0 {
            return f64::INFINITY;
        }
        self.p * (self.gamma + frequency * mean_spend) / denominator
    }
}

/// Usable pairs, with the sums that do not depend on the parameters.
struct SpendData {
    /// (x m̄, x) per customer: total spend and number of transactions.
    y: Vec<(f64, f64)>,
    /// Distinct frequencies with their customer counts.
    frequencies: Vec<(f64, f64)>,
    /// Σ ln m̄, Σ x ln m̄, Σ x ln x.
    sum_ln_m: f64,
    sum_x_ln_m: f64,
    sum_x_ln_x: f64,
}

impl SpendData {
    fn new(pairs: &[(f64, f64)]) -> Result<SpendData, FitError> {
        let mut data =
            SpendData { y: Vec::new(), frequencies: Vec::new(), sum_ln_m: 0.0, sum_x_ln_m: 0.0, sum_x_ln_x: 0.0 };
        let mut counts = std::collections::BTreeMap::<u64, f64>::new();
        let mut kept = Vec::with_capacity(pairs.len());
        for (row, &(x, m)) in pairs.iter().enumerate() {
            if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
                return Err(FitError::InvalidInput {
                    model: MODEL,
                    reason: format!("row {row}: frequency {x} is not a whole number >= 0"),
                });
            }
            // Without repeat purchases the mean spend is undefined upstream
            // (often 0/0 = NaN), so it is not looked at.
            if x == 0.0 {
                continue;
            }
            if !m.is_finite() {
                return Err(FitError::InvalidInput {
                    model: MODEL,
                    reason: format!("row {row}: mean spend is {m} for a customer with {x} repeat purchases"),
                });
            }
            if m <= 0.0 {
                continue;
            }
            kept.push((x, m));
        }
        // In the order of their values, so the sums below (and so the fit) do not
        // depend on the order the rows came in, which a query's partitioning decides.
        kept.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        for (x, m) in kept {
            data.y.push((x * m, x));
            // Frequencies are whole numbers, so their bit patterns order
            // like the values and the map iterates deterministically.
            *counts.entry(x.to_bits()).or_insert(0.0) += 1.0;
            let ln_m = m.ln();
            data.sum_ln_m += ln_m;
            data.sum_x_ln_m += x * ln_m;
            data.sum_x_ln_x += x * x.ln();
        }
        data.frequencies = counts.into_iter().map(|(bits, n)| (f64::from_bits(bits), n)).collect();
        Ok(data)
    }
}

/// Mean negative log-likelihood per customer over (ln p, ln q, ln γ), with
/// analytic gradient.
struct Objective<'a> {
    data: &'a SpendData,
    threads: usize,
}

impl optimize::Objective for Objective<'_> {
    fn evaluate(&self, theta: &[f64], gradient: Option<&mut [f64]>) -> f64 {
        let (p, q, gamma) = (theta[0].exp(), theta[1].exp(), theta[2].exp());
        let data = self.data;
        let n = data.y.len() as f64;
        let ln_gamma_q = ln_gamma(q);
        let mut ll = p * (data.sum_x_ln_m + data.sum_x_ln_x) - data.sum_ln_m + n * (q * gamma.ln() - ln_gamma_q);
        let (mut d_p, mut d_q) = (data.sum_x_ln_m + data.sum_x_ln_x, n * (gamma.ln() - digamma(q)));
        for &(x, count) in &data.frequencies {
            ll += count * (ln_gamma(p * x + q) - ln_gamma(p * x));
            if gradient.is_some() {
                let dg = digamma(p * x + q);
                d_p += count * x * (dg - digamma(p * x));
                d_q += count * dg;
            }
        }
        // Per customer only −(px+q) ln(γ + x m̄) remains; collect Σ ln(γ+y),
        // Σ x ln(γ+y), Σ 1/(γ+y), Σ x/(γ+y) so p and q enter after the loop.
        let want_gradient = gradient.is_some();
        let parts = map_chunks(data.y.len(), self.threads, |range| {
            let mut acc = [0.0f64; 4];
            for &(y, x) in &data.y[range] {
                let l = (gamma + y).ln();
                acc[0] += l;
                acc[1] += x * l;
                if want_gradient {
                    let u = 1.0 / (gamma + y);
                    acc[2] += u;
                    acc[3] += x * u;
                }
            }
            acc
        });
        let [sum_l, sum_xl, sum_u, sum_xu] = sum_arrays(&parts);
        ll -= p * sum_xl + q * sum_l;
        if let Some(g) = gradient {
            let d_gamma = n * q / gamma - (p * sum_xu + q * sum_u);
            g[0] = -p * (d_p - sum_xl) / n;
            g[1] = -q * (d_q - sum_l) / n;
            g[2] = -gamma * d_gamma / n;
        }
        -ll / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::bg_nbd::tests::cdnow;
    use crate::models::optimize::Objective as _;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Gamma, Poisson};

    /// CDNOW estimates, Fader, Hardie & Lee (2005) "RFM and CLV".
    const CDNOW: (f64, f64, f64) = (6.25, 3.74, 15.44);

    fn cdnow_pairs() -> Vec<(f64, f64)> {
        cdnow().into_iter().map(|(o, m)| (o.frequency, m)).collect()
    }

    /// The density of m̄ written out without logs.
    fn direct_density(p: f64, q: f64, gamma: f64, x: f64, m: f64) -> f64 {
        (ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)).exp()
            * gamma.powf(q)
            * m.powf(p * x - 1.0)
            * x.powf(p * x)
            / (gamma + m * x).powf(p * x + q)
    }

    #[test]
    fn conditional_expected_spend_matches_paper_example() {
        let (p, q, gamma) = CDNOW;
        let fit = GammaGammaFit::from_parameters(p, q, gamma).unwrap();
        // FHL (2005): a customer with x = 2 and m̄ = $22.35 is expected to spend ≈ $24.65.
        let got = fit.conditional_expected_spend(2.0, 22.35);
        assert!((got - 24.65).abs() < 0.02, "{got}");
        assert!((fit.population_mean_spend() - p * gamma / (q - 1.0)).abs() < 1e-12);
        assert_eq!(fit.conditional_expected_spend(0.0, 0.0), fit.population_mean_spend());
    }

    #[test]
    fn likelihood_matches_direct_density() {
        let pairs = [(1.0, 10.5), (2.0, 22.35), (5.0, 40.0), (2.0, 7.0)];
        let data = SpendData::new(&pairs).unwrap();
        let (p, q, gamma): (f64, f64, f64) = (2.5, 3.0, 12.0);
        let objective = Objective { data: &data, threads: 1 };
        let ours = -objective.evaluate(&[p.ln(), q.ln(), gamma.ln()], None) * pairs.len() as f64;
        let direct: f64 = pairs.iter().map(|&(x, m)| direct_density(p, q, gamma, x, m).ln()).sum();
        assert!((ours - direct).abs() < 1e-10, "{ours} vs {direct}");
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let pairs: Vec<(f64, f64)> = cdnow_pairs();
        let data = SpendData::new(&pairs).unwrap();
        let objective = Objective { data: &data, threads: 1 };
        let theta = [1.2f64.ln(), 2.5f64.ln(), 30f64.ln()];
        let mut analytic = [0.0; 3];
        objective.evaluate(&theta, Some(&mut analytic));
        let mut numeric = [0.0; 3];
        optimize::central_difference(|t| objective.evaluate(t, None), &theta, &mut numeric);
        for i in 0..3 {
            assert!((analytic[i] - numeric[i]).abs() < 1e-7 * (1.0 + numeric[i].abs()), "{analytic:?} vs {numeric:?}");
        }
    }

    #[test]
    fn the_fit_does_not_depend_on_the_order_of_the_customers() {
        let pairs = cdnow_pairs();
        let reversed: Vec<(f64, f64)> = pairs.iter().rev().copied().collect();
        let bits = |pairs: &[(f64, f64)]| {
            let fit = fit_gamma_gamma(pairs, &FitOptions::default()).unwrap();
            fit.parameters().into_iter().map(|(_, v)| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(&pairs), bits(&reversed));
    }

    #[test]
    fn a_flat_ridge_converges_to_the_precision_of_the_likelihood() {
        // On these customers no step lowers the likelihood in floating point once the
        // gradient is a few 1e-7 (above the 1e-7 tolerance); the fit is converged there,
        // in whatever order the customers come (before, a zero-length step was taken as
        // an iteration until the limit, and the fit failed as not converged).
        let pairs: Vec<(f64, f64)> = include_str!("testdata/gamma_gamma_ridge.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (x, m) = line.split_once(' ').unwrap();
                (x.parse().unwrap(), m.parse().unwrap())
            })
            .collect();
        let fit = fit_gamma_gamma(&pairs, &FitOptions::default()).unwrap();
        assert!(fit.converged());
        assert_eq!((fit.customers_used(), fit.customers_left_out()), (759, 613));
        assert!((fit.log_likelihood() - -3681.522524).abs() < 1e-6, "{}", fit.log_likelihood());
        let reversed: Vec<(f64, f64)> = pairs.iter().rev().copied().collect();
        assert_eq!(fit, fit_gamma_gamma(&reversed, &FitOptions::default()).unwrap());
        for ((name, got), want) in fit.parameters().into_iter().zip([5.568349, 3.847119, 31.938086]) {
            assert!((got / want - 1.0).abs() < 1e-5, "{name}: {got} vs {want}");
        }
    }

    #[test]
    fn fits_cdnow_to_published_estimates_and_leaves_out_non_repeaters() {
        let pairs = cdnow_pairs();
        let fit = fit_gamma_gamma(&pairs, &FitOptions::default()).unwrap();
        assert_eq!(fit.customers_used(), 946);
        assert_eq!(fit.customers_left_out(), 2357 - 946);
        let (p, q, gamma) = CDNOW;
        for ((name, got), want) in fit.parameters().into_iter().zip([p, q, gamma]) {
            assert!((got - want).abs() < 0.01 * want, "{name}: {got} vs {want}");
        }
        assert!(fit.log_likelihood().is_finite());
    }

    #[test]
    fn standard_errors_match_lifetimes_on_cdnow() {
        // lifetimes 0.11.3 `GammaGammaFitter` on CDNOW's 946 repeat buyers
        // (src/models/testdata/lifetimes_reference.py): se(coef) of p, q, v (= γ).
        let fit = fit_gamma_gamma(&cdnow_pairs(), &FitOptions::default()).unwrap();
        let se = fit.std_errors().expect("a positive definite information matrix");
        for (got, want) in se.iter().zip([1.1896870481, 0.2901656174, 4.1599939284]) {
            assert!((got / want - 1.0).abs() < 2e-3, "{se:?}");
        }
        let data = SpendData::new(&cdnow_pairs()).unwrap();
        let objective = Objective { data: &data, threads: 1 };
        let theta = [6.25f64.ln(), 3.74f64.ln(), 15.44f64.ln()];
        let from_gradients = optimize::hessian(&objective, &theta);
        let from_values = optimize::value_differences(&objective, &theta, 1e-3);
        let scale = from_values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in from_gradients.iter().zip(&from_values) {
            assert!((a - b).abs() < 1e-5 * scale, "{from_gradients:?} vs {from_values:?}");
        }
    }

    #[test]
    fn recovers_simulated_parameters() {
        let (p, q, gamma) = (3.0, 4.0, 20.0);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let nus = Gamma::new(q, 1.0 / gamma).unwrap();
        let counts = Poisson::new(3.0).unwrap();
        let pairs: Vec<(f64, f64)> = (0..4000)
            .map(|_| {
                let nu: f64 = nus.sample(&mut rng);
                let x: f64 = counts.sample(&mut rng);
                let spend = Gamma::new(p, 1.0 / nu).unwrap();
                let total: f64 = (0..x as usize).map(|_| spend.sample(&mut rng)).sum();
                (x, if x > 0.0 { total / x } else { 0.0 })
            })
            .collect();
        let fit = fit_gamma_gamma(&pairs, &FitOptions::default()).unwrap();
        let got: Vec<f64> = fit.parameters().into_iter().map(|(_, v)| v).collect();
        assert!((got[0] / p - 1.0).abs() < 0.15, "{got:?}");
        // q and γ trade off against each other; the population mean pins them.
        assert!((got[1] / q - 1.0).abs() < 0.3 && (got[2] / gamma - 1.0).abs() < 0.35, "{got:?}");
        // The truth lies within four standard errors of every estimate.
        let se = fit.std_errors().expect("standard errors");
        for ((estimate, want), se) in got.iter().zip([p, q, gamma]).zip(&se) {
            assert!((estimate - want).abs() < 4.0 * se, "{got:?} ± {se:?}");
        }
        assert!((fit.population_mean_spend() / (p * gamma / (q - 1.0)) - 1.0).abs() < 0.1, "{got:?}");
        assert!(fit.customers_left_out() > 0);
    }

    #[test]
    fn rejects_invalid_and_insufficient_data() {
        for bad in [(1.0, f64::NAN), (-1.0, 5.0), (1.5, 5.0), (f64::INFINITY, 5.0)] {
            let err = fit_gamma_gamma(&[(2.0, 3.0), bad], &FitOptions::default()).unwrap_err();
            let FitError::InvalidInput { reason, .. } = &err else { panic!("{err:?}") };
            assert!(reason.starts_with("row 1:"), "{err}");
        }
        // One-time buyers' mean spend is not looked at, even when it is 0/0.
        let mut pairs: Vec<(f64, f64)> = (1..=20).map(|i| (f64::from(i % 4 + 1), 10.0 + f64::from(i))).collect();
        pairs.extend([(0.0, f64::NAN), (0.0, 0.0), (3.0, -4.0), (2.0, 0.0)]);
        let fit = fit_gamma_gamma(&pairs, &FitOptions::default()).unwrap();
        assert_eq!((fit.customers_used(), fit.customers_left_out()), (20, 4));
        let pairs = vec![(0.0, 0.0); 500];
        let err = fit_gamma_gamma(&pairs, &FitOptions::default()).unwrap_err();
        assert!(matches!(err, FitError::InsufficientData { usable: 0, customers: 500, .. }), "{err}");
        assert!(err.to_string().contains("gamma_gamma"));
    }
}
