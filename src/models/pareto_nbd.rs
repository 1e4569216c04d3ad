//! Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting Your
//! Customers: Who Are They and What Will They Do Next?", Management Science
//! 33(1), 1–24, in the form derived by Fader & Hardie (2005), "A Note on
//! Deriving the Pareto/NBD Model and Related Expressions" (cited below as
//! "the note").
//!
//! Parameters `[r, alpha, s, beta]`: purchase rates λ ~ Gamma(r, α), dropout
//! rates μ ~ Gamma(s, β), exponential lifetimes.

use super::optimize;
use super::parallel::map_chunks;
use super::purchase::{Compressed, FastMap, Observation};
use super::special::{ln_gamma, ln_hyp2f1};

/// ln J(t), where J(t) = ∫_t^∞ (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ.
///
/// The note's likelihood (Section 3) is
/// L = Γ(r+x) α^r β^s / Γ(r) · { 1/((α+T)^{r+x} (β+T)^s) + s/(r+s+x) · A₀ },
/// and A₀ is (r+s+x)[J(t_x) − J(T)]: for α ≥ β
/// J(t) = 2F1(r+s+x, s+1; r+s+x+1; (α−β)/(α+t)) / ((r+s+x)(α+t)^{r+s+x}),
/// and for α < β the roles swap, 2F1(r+s+x, r+x; r+s+x+1; (β−α)/(β+t)) over
/// (β+t)^{r+s+x}. The case split keeps the 2F1 argument in [0, 1) — with a
/// single formula it would be negative and exceed 1 in modulus whenever
/// β > 2α + t — and [`ln_hyp2f1`] handles z near 1 and x in the hundreds.
fn ln_tail_integral(p: &[f64; 4], x: f64, t: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let rsx = r + s + x;
    let (z, ln_base, b) = if alpha >= beta {
        ((alpha - beta) / (alpha + t), (alpha + t).ln(), s + 1.0)
    } else {
        ((beta - alpha) / (beta + t), (beta + t).ln(), r + x)
    };
    ln_hyp2f1(rsx, b, rsx + 1.0, z) - rsx.ln() - rsx * ln_base
}

/// ln(1 − e^d) for d ≤ 0 (−∞ at d = 0), accurate at both ends (Mächler 2012,
/// "Accurately Computing log(1 − exp(−|a|))").
fn ln_one_minus_exp(d: f64) -> f64 {
    if d >= 0.0 {
        f64::NEG_INFINITY
    } else if d > -std::f64::consts::LN_2 {
        (-d.exp_m1()).ln()
    } else {
        (-d.exp()).ln_1p()
    }
}

/// ln of the two terms in braces of the note's likelihood (Section 3), each
/// without the common factor Γ(r+x) α^r β^s / Γ(r): "alive at T" =
/// −(r+x) ln(α+T) − s ln(β+T), and "died in (t_x, T]" = ln s + ln(J(t_x) − J(T)).
fn ln_terms(p: &[f64; 4], x: f64, t_x: f64, age: f64) -> (f64, f64) {
    ln_terms_given(p, x, age, ln_tail_integral(p, x, t_x), ln_tail_integral(p, x, age))
}

/// [`ln_terms`] with ln J(t_x) and ln J(T) already computed.
fn ln_terms_given(p: &[f64; 4], x: f64, age: f64, ln_j_recency: f64, ln_j_age: f64) -> (f64, f64) {
    let [r, alpha, s, beta] = *p;
    let alive = -(r + x) * (alpha + age).ln() - s * (beta + age).ln();
    let died = s.ln() + ln_j_recency + ln_one_minus_exp(ln_j_age - ln_j_recency);
    (alive, died)
}

/// ln L(r, α, s, β | x, t_x, T) for one customer (the note, Section 3).
#[cfg(test)]
pub(crate) fn log_likelihood(p: &[f64; 4], x: f64, t_x: f64, age: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    let (alive, died) = ln_terms(p, x, t_x, age);
    ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln() + ln_add_exp(alive, died)
}

/// P(alive at T | x, t_x, T) = 1 / (1 + s/(r+s+x) (α+T)^{r+x} (β+T)^s A₀)
/// (the note, Section 5): the "alive" share of the likelihood.
pub(crate) fn p_alive(p: &[f64; 4], x: f64, t_x: f64, age: f64) -> f64 {
    alive_share(ln_terms(p, x, t_x, age))
}

/// [`p_alive`] of many customers, with J (a 2F1 series) computed once per
/// distinct (x, t) among their recencies and ages rather than twice per
/// customer: customers share frequencies and days far more than whole histories.
pub(crate) fn p_alive_many(p: &[f64; 4], customers: &[Observation]) -> Vec<f64> {
    let mut memo: FastMap<(u64, u64), f64> = FastMap::default();
    let mut ln_j =
        |x: f64, t: f64| *memo.entry((x.to_bits(), t.to_bits())).or_insert_with(|| ln_tail_integral(p, x, t));
    customers
        .iter()
        .map(|o| {
            let (recency, age) = (ln_j(o.frequency, o.recency), ln_j(o.frequency, o.age));
            alive_share(ln_terms_given(p, o.frequency, o.age, recency, age))
        })
        .collect()
}

/// e^alive / (e^alive + e^died) without overflow.
fn alive_share((alive, died): (f64, f64)) -> f64 {
    let d = died - alive;
    if d.is_nan() {
        return f64::NAN;
    }
    let e = (-d.abs()).exp();
    if d <= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) }
}

/// [1 − e^{k·l}] / k, continuous at k = 0 (where it is −l).
fn one_minus_exp_over(k: f64, l: f64) -> f64 {
    if k == 0.0 { -l } else { -(k * l).exp_m1() / k }
}

/// E[X(t)] = rβ/(α(s−1)) · [1 − (β/(β+t))^{s−1}] (the note, Section 4);
/// continuous at s = 1.
pub(crate) fn expected_purchases(p: &[f64; 4], t: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    r * beta / alpha * one_minus_exp_over(s - 1.0, -(t / beta).ln_1p())
}

/// E[Y(t) | x, T, alive at T] = (r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^{s−1}],
/// the note's conditional expectation (Section 6) without its P(alive) factor.
pub(crate) fn alive_expected_purchases(p: &[f64; 4], t: f64, x: f64, age: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    (r + x) * (beta + age) / (alpha + age) * one_minus_exp_over(s - 1.0, -(t / (beta + age)).ln_1p())
}

/// ln(e^u + e^v) = max + ln(1 + e^−|u−v|): one exponential, no overflow.
fn ln_add_exp(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    if m == f64::NEG_INFINITY { m } else { m + (-(u - v).abs()).exp().ln_1p() }
}

/// Mean negative log-likelihood per customer over (ln r, ln α, ln s, ln β).
/// Gradients are central differences: differentiating 2F1 in its parameters
/// would need another series per parameter for a model off the hot path.
pub(crate) struct Objective<'a> {
    data: &'a Compressed,
    /// Distinct (frequency index, time index) pairs whose J(t) is needed.
    pairs: Vec<(u32, u32)>,
    /// Per cell: indices into `pairs` of (x, t_x) and (x, T).
    cell_pairs: Vec<(u32, u32)>,
    threads: usize,
}

impl<'a> Objective<'a> {
    pub(crate) fn new(data: &'a Compressed, threads: usize) -> Self {
        let mut index: FastMap<(u32, u32), u32> = FastMap::default();
        let mut pairs = Vec::new();
        let mut intern = |key: (u32, u32)| {
            let next = pairs.len() as u32;
            let i = *index.entry(key).or_insert(next);
            if i == next {
                pairs.push(key);
            }
            i
        };
        let cell_pairs = data.cells.iter().map(|c| (intern((c.x, c.recency)), intern((c.x, c.age)))).collect();
        Objective { data, pairs, cell_pairs, threads }
    }

    fn value(&self, theta: &[f64]) -> f64 {
        let p = [theta[0].exp(), theta[1].exp(), theta[2].exp(), theta[3].exp()];
        let [r, alpha, s, beta] = p;
        let data = self.data;
        let ln_j: Vec<f64> = map_chunks(self.pairs.len(), self.threads, |range| {
            self.pairs[range]
                .iter()
                .map(|&(x, t)| ln_tail_integral(&p, data.frequencies[x as usize], data.times[t as usize]))
                .collect::<Vec<f64>>()
        })
        .concat();
        let head = ln_gamma(r) - r * alpha.ln() - s * beta.ln();
        let per_x: Vec<f64> = data.frequencies.iter().map(|&x| ln_gamma(r + x) - head).collect();
        let ln_s = s.ln();
        // ln(α + t) and ln(β + t) once per distinct time, not per cell.
        let ln_alpha_time: Vec<f64> = data.times.iter().map(|t| (alpha + t).ln()).collect();
        let ln_beta_time: Vec<f64> = data.times.iter().map(|t| (beta + t).ln()).collect();
        let parts = map_chunks(data.cells.len(), self.threads, |range| {
            let mut sum = 0.0;
            for (cell, &(j_rec, j_age)) in data.cells[range.clone()].iter().zip(&self.cell_pairs[range]) {
                let x = data.frequencies[cell.x as usize];
                let age = cell.age as usize;
                let alive = -(r + x) * ln_alpha_time[age] - s * ln_beta_time[age];
                let ln_j_rec = ln_j[j_rec as usize];
                let died = ln_s + ln_j_rec + ln_one_minus_exp(ln_j[j_age as usize] - ln_j_rec);
                sum += cell.weight * (per_x[cell.x as usize] + ln_add_exp(alive, died));
            }
            sum
        });
        -parts.iter().sum::<f64>() / data.customers as f64
    }
}

impl optimize::Objective for Objective<'_> {
    const CHEAP_GRADIENT: bool = false;

    fn evaluate(&self, theta: &[f64], gradient: Option<&mut [f64]>) -> f64 {
        if let Some(g) = gradient {
            optimize::central_difference(|t| self.value(t), theta, g);
        }
        self.value(theta)
    }

    fn gradient(&self, theta: &[f64], gradient: &mut [f64]) {
        optimize::central_difference(|t| self.value(t), theta, gradient);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::bg_nbd::tests::cdnow;
    use crate::models::purchase::{FitOptions, PurchaseFit, PurchaseModelKind, fit_purchase_model};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Exp, Gamma};

    /// CDNOW Pareto/NBD estimates (weeks), Fader & Hardie's note.
    const CDNOW: [f64; 4] = [0.55, 10.58, 0.61, 11.67];

    fn simulate(params: [f64; 4], n: usize, seed: u64) -> Vec<Observation> {
        let [r, alpha, s, beta] = params;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rates = Gamma::new(r, 1.0 / alpha).unwrap();
        let deaths = Gamma::new(s, 1.0 / beta).unwrap();
        (0..n)
            .map(|_| {
                let age = rng.random_range(20.0..60.0);
                let lambda: f64 = rates.sample(&mut rng);
                let mu: f64 = deaths.sample(&mut rng);
                let end = Exp::new(mu).unwrap().sample(&mut rng).min(age);
                let gaps = Exp::new(lambda).unwrap();
                let (mut x, mut t_x, mut t) = (0.0, 0.0, 0.0);
                loop {
                    t += gaps.sample(&mut rng);
                    if t > end {
                        break;
                    }
                    x += 1.0;
                    t_x = t;
                }
                Observation { frequency: x, recency: t_x, age }
            })
            .collect()
    }

    /// The likelihood by numerical integration over the death time instead of
    /// 2F1: L = C [ (α+T)^{−(r+x)} (β+T)^{−s} + s ∫_{t_x}^T (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ ].
    fn quadrature_likelihood(p: [f64; 4], x: f64, t_x: f64, age: f64) -> f64 {
        let [r, alpha, s, beta] = p;
        let c = (ln_gamma(r + x) - ln_gamma(r)).exp() * alpha.powf(r) * beta.powf(s);
        // Composite Simpson's rule in v = ln((m+τ)/(m+t_x)), m = min(α, β),
        // which flattens the integrand's peak at τ = t_x when m is small.
        let m = alpha.min(beta);
        let f = |v: f64| {
            let tau = (m + t_x) * v.exp() - m;
            (alpha + tau).powf(-(r + x)) * (beta + tau).powf(-(s + 1.0)) * (m + tau)
        };
        let steps = 20_000;
        let h = ((m + age) / (m + t_x)).ln() / steps as f64;
        let mut integral = f(0.0) + f(steps as f64 * h);
        for i in 1..steps {
            integral += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        integral *= h / 3.0;
        c * ((alpha + age).powf(-(r + x)) * (beta + age).powf(-s) + s * integral)
    }

    #[test]
    fn likelihood_matches_quadrature_in_both_branches() {
        for params in [CDNOW, [0.55, 10.58, 0.61, 30.0], [0.9, 3.0, 1.4, 0.2], [0.4, 12.0, 0.5, 12.0]] {
            for &(x, t_x, age) in &[(0.0, 0.0, 38.86), (2.0, 30.43, 38.86), (6.0, 10.0, 30.0)] {
                let direct = quadrature_likelihood(params, x, t_x, age).ln();
                let ours = log_likelihood(&params, x, t_x, age);
                assert!((ours - direct).abs() < 1e-11, "{params:?} {x}: {ours} vs {direct}");
            }
        }
    }

    #[test]
    fn reproduces_published_cdnow_log_likelihood() {
        // Fader & Hardie's note reports LL = −9595.0 at these estimates.
        let obs: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, CDNOW).unwrap();
        let ll = fit.log_likelihood_of(&obs).unwrap();
        assert!((ll - -9595.0).abs() < 0.5, "{ll}");
    }

    #[test]
    fn fits_cdnow_to_published_estimates() {
        let obs: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        let fit = fit_purchase_model(PurchaseModelKind::ParetoNbd, &obs, &FitOptions::default()).unwrap();
        for ((name, got), want) in fit.parameters().into_iter().zip(CDNOW) {
            assert!((got - want).abs() < 0.01 * want, "{name}: {got} vs {want}");
        }
        assert!((fit.log_likelihood() - -9595.0).abs() < 0.1, "{}", fit.log_likelihood());
    }

    #[test]
    fn standard_errors_match_an_independent_numerical_hessian() {
        // lifetimes has no standard errors for Pareto/NBD: these are numdifftools'
        // Hessian of lifetimes' Pareto/NBD log-likelihood in the natural parameters,
        // maximised tightly with scipy (src/models/testdata/lifetimes_reference.py).
        let obs: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        let fit = fit_purchase_model(PurchaseModelKind::ParetoNbd, &obs, &FitOptions::default()).unwrap();
        let se = fit.std_errors().expect("a positive definite information matrix");
        for (got, want) in se.iter().zip([0.047628455733359, 0.8427218590979602, 0.1872763591104343, 6.210914685485795])
        {
            assert!((got / want - 1.0).abs() < 2e-3, "{se:?}");
        }
    }

    #[test]
    fn hessian_from_numerical_gradients_matches_second_differences() {
        let obs: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        let data = crate::models::purchase::Compressed::new("test", &obs).unwrap();
        let objective = Objective::new(&data, 1);
        let theta = CDNOW.map(f64::ln);
        // The fit's Hessian (second differences of values) against central differences
        // of the finite-difference gradient.
        let from_values = optimize::hessian(&objective, &theta);
        let from_gradients = optimize::gradient_differences(&objective, &theta, 1e-3);
        let scale = from_values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in from_gradients.iter().zip(&from_values) {
            assert!((a - b).abs() < 1e-4 * scale, "{from_gradients:?} vs {from_values:?}");
        }
    }

    #[test]
    fn p_alive_and_expectations_match_literal_formulas() {
        let [r, alpha, s, beta] = CDNOW;
        let (x, t_x, age) = (2.0, 30.43, 38.86);
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, CDNOW).unwrap();
        // P(alive) = alive term / likelihood, both by quadrature.
        let c = (ln_gamma(r + x) - ln_gamma(r)).exp() * alpha.powf(r) * beta.powf(s);
        let alive_term = c * (alpha + age).powf(-(r + x)) * (beta + age).powf(-s);
        let p = alive_term / quadrature_likelihood(CDNOW, x, t_x, age);
        assert!((fit.p_alive(x, t_x, age) - p).abs() < 1e-10);
        let t = 39.0;
        let e = r * beta / (alpha * (s - 1.0)) * (1.0 - (beta / (beta + t)).powf(s - 1.0));
        assert!((fit.expected_purchases(t) - e).abs() < 1e-12);
        let cond = p * (r + x) * (beta + age) / ((alpha + age) * (s - 1.0))
            * (1.0 - ((beta + age) / (beta + age + t)).powf(s - 1.0));
        assert!((fit.conditional_expected_purchases(t, x, t_x, age) - cond).abs() < 1e-10);
        // Continuity at s = 1.
        let at = expected_purchases(&[r, alpha, 1.0, beta], t);
        let near = expected_purchases(&[r, alpha, 1.0 + 1e-9, beta], t);
        assert!((at - near).abs() < 1e-8);
    }

    #[test]
    fn p_alive_of_many_customers_is_p_alive_of_each() {
        let customers: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        let many = p_alive_many(&CDNOW, &customers);
        for (o, got) in customers.iter().zip(many) {
            assert_eq!(got.to_bits(), p_alive(&CDNOW, o.frequency, o.recency, o.age).to_bits());
        }
    }

    #[test]
    fn numerically_stable_for_heavy_buyers_and_long_histories() {
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, CDNOW).unwrap();
        for params in [CDNOW, [0.55, 10.58, 0.61, 0.01], [0.55, 0.01, 0.61, 10.0]] {
            for t_x in [0.5, 100.0, 4990.0, 5000.0] {
                let ll = log_likelihood(&params, 500.0, t_x, 5000.0);
                assert!(ll.is_finite(), "{params:?} {t_x}: {ll}");
            }
        }
        for t_x in [100.0, 4990.0] {
            let p = fit.p_alive(500.0, t_x, 5000.0);
            assert!((0.0..=1.0).contains(&p), "{p}");
            assert!(fit.conditional_expected_purchases(52.0, 500.0, t_x, 5000.0).is_finite());
        }
        assert!(fit.p_alive(500.0, 4990.0, 5000.0) > 0.9);
        assert!(fit.p_alive(500.0, 100.0, 5000.0) < 1e-6);
        assert_eq!(fit.p_alive(3.0, 20.0, 20.0), 1.0);
    }

    #[test]
    fn recovers_simulated_parameters() {
        let truth = [0.7, 6.0, 0.9, 12.0];
        let obs = simulate(truth, 4000, 5);
        let fit = fit_purchase_model(PurchaseModelKind::ParetoNbd, &obs, &FitOptions::default()).unwrap();
        assert!(fit.converged());
        let got: Vec<f64> = fit.parameters().into_iter().map(|(_, v)| v).collect();
        assert!((got[0] / truth[0] - 1.0).abs() < 0.15, "{got:?}");
        assert!((got[1] / truth[1] - 1.0).abs() < 0.2, "{got:?}");
        // s and β are weakly identified; their ratio (mean dropout rate) is not.
        assert!((got[2] / truth[2] - 1.0).abs() < 0.5 && (got[3] / truth[3] - 1.0).abs() < 0.6, "{got:?}");
        assert!(((got[2] / got[3]) / (truth[2] / truth[3]) - 1.0).abs() < 0.25, "{got:?}");
        // The truth lies within four standard errors of every estimate.
        let se = fit.std_errors().expect("standard errors");
        for ((estimate, want), se) in got.iter().zip(truth).zip(&se) {
            assert!((estimate - want).abs() < 4.0 * se, "{got:?} ± {se:?}");
        }
    }
}
