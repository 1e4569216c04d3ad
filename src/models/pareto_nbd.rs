//! Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting Your
//! Customers: Who Are They and What Will They Do Next?", Management Science
//! 33(1), 1–24, in the form derived by Fader & Hardie (2005), "A Note on
//! Deriving the Pareto/NBD Model and Related Expressions" (cited below as
//! "the note").
//!
//! Parameters `[r, alpha, s, beta]`: purchase rates λ ~ Gamma(r, α), dropout
//! rates μ ~ Gamma(s, β), exponential lifetimes.
//!
//! Everything here is built on one integral, I(a, b; t) = ∫_t^∞ (α+τ)^{−a}
//! (β+τ)^{−b} dτ ([`TailIntegral`]), whose derivatives in all four parameters come
//! with it: the note's J(t) is I(r+x, s+1; t), and the likelihood is written
//! with a second one so that the fit has an analytic gradient (see
//! [`Objective`]).

use super::observations::{Compressed, FastMap, Observation, interner};
use super::optimize;
use super::parallel::{map_chunks, sum_arrays};
use super::special::{UnitASeries, digamma, ln_gamma};

/// I(a, b; t) = ∫_t^∞ (α+τ)^{−a} (β+τ)^{−b} dτ (a, b > 0, a + b > 1) in log space,
/// with its gradient in (a, α, b, β), for one (α, β, a, b) at many t: customers of
/// one frequency share it, and with it the coefficients of its 2F1 series.
///
/// The substitution w = (α+t)/(α+τ) makes I an Euler integral (A&S 15.3.1):
/// for α ≥ β, I = 2F1(a+b−1, b; a+b; z) / ((a+b−1)(α+t)^{a+b−1}) with
/// z = (α−β)/(α+t) — for a = r+x, b = s+1 the note's J(t) (Section 3) — and
/// Euler's transformation (A&S 15.3.3), with 1 − z = (β+t)/(α+t), turns it
/// into I = (α+t)^{−a} (β+t)^{1−b} 2F1(1, a; a+b; z) / (a+b−1), a series of
/// bounded terms ([`UnitASeries`]). For α < β, (α, a) and (β, b) swap
/// roles. The case split keeps z in [0, 1): with a single formula it would be
/// negative and exceed 1 in modulus whenever β > 2α + t. The gradient follows
/// term by term from the series' own derivatives in its parameters and in z,
/// with ∂z/∂α = (β+t)/(α+t)² and ∂z/∂β = −1/(α+t) (mirrored for α < β); it is
/// continuous across α = β, where z = 0 in both cases.
struct TailIntegral {
    alpha_is_big: bool,
    /// (rate, exponent) of the larger and of the smaller of α and β.
    big: (f64, f64),
    small: (f64, f64),
    /// ln(a+b−1) and 1/(a+b−1).
    ln_k: f64,
    inv_k: f64,
    series: UnitASeries,
}

impl TailIntegral {
    fn new(alpha: f64, beta: f64, a: f64, b: f64, gradient: bool) -> TailIntegral {
        let alpha_is_big = alpha >= beta;
        let (big, small) = if alpha_is_big { ((alpha, a), (beta, b)) } else { ((beta, b), (alpha, a)) };
        let k = a + b - 1.0;
        TailIntegral {
            alpha_is_big,
            big,
            small,
            ln_k: k.ln(),
            inv_k: 1.0 / k,
            series: UnitASeries::new(big.1, a + b, gradient),
        }
    }

    /// ln I(a, b; t) and (with a gradient series) ∂/∂(a, α, b, β), given
    /// ln(α+t) and ln(β+t).
    fn at(&mut self, t: f64, ln_alpha_t: f64, ln_beta_t: f64) -> (f64, [f64; 4]) {
        let ((big, big_power), (small, small_power)) = (self.big, self.small);
        let (ln_big, ln_small) = if self.alpha_is_big { (ln_alpha_t, ln_beta_t) } else { (ln_beta_t, ln_alpha_t) };
        let (big_t, small_t) = (big + t, small + t);
        let series = self.series.ln_at((big - small) / big_t);
        let value = -big_power * ln_big + (1.0 - small_power) * ln_small + series.value - self.ln_k;
        // ∂/∂(big_power, big, small_power, small).
        let d = [
            -ln_big + series.d_b + series.d_c - self.inv_k,
            -big_power / big_t + series.d_z * small_t / (big_t * big_t),
            -ln_small + series.d_c - self.inv_k,
            (1.0 - small_power) / small_t - series.d_z / big_t,
        ];
        let [d_big_power, d_big, d_small_power, d_small] = d;
        (value, if self.alpha_is_big { d } else { [d_small_power, d_small, d_big_power, d_big] })
    }
}

/// ln J(t) = ln I(r+x, s+1; t), the note's integral (Section 3), without gradient.
fn ln_j(p: &[f64; 4], x: f64, t: f64) -> f64 {
    let [r, alpha, s, beta] = *p;
    TailIntegral::new(alpha, beta, r + x, s + 1.0, false).at(t, (alpha + t).ln(), (beta + t).ln()).0
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
    let [_, alpha, s, beta] = *p;
    let ln_age = ((alpha + age).ln(), (beta + age).ln());
    ln_terms_given(p, s.ln(), x, ln_age, ln_j(p, x, t_x), ln_j(p, x, age))
}

/// [`ln_terms`] with ln s, ln(α+T), ln(β+T), ln J(t_x) and ln J(T) already computed.
fn ln_terms_given(p: &[f64; 4], ln_s: f64, x: f64, ln_age: (f64, f64), ln_j_recency: f64, ln_j_age: f64) -> (f64, f64) {
    let [r, _, s, _] = *p;
    let alive = -(r + x) * ln_age.0 - s * ln_age.1;
    let died = ln_s + ln_j_recency + ln_one_minus_exp(ln_j_age - ln_j_recency);
    (alive, died)
}

/// ln L(r, α, s, β | x, t_x, T) for one customer, the note's Section 3 as
/// written: the reference the fit's form of it ([`Objective`]) is tested against.
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
    p_alive_of_pairs(p, customers, &JArguments::new(customers))
}

/// The distinct (x, t) at which [`p_alive`] of some customers needs J — their
/// (x, t_x) and (x, T) — and which two each customer needs: found once for
/// customers valued under many parameter draws. The pairs are sorted by x, so
/// that pairs of one frequency share a [`TailIntegral`].
#[derive(Clone, Debug)]
pub(crate) struct JArguments {
    /// Distinct times among the customers' t_x and T.
    times: Vec<f64>,
    /// Distinct (x, index into `times`), those of one x together.
    pairs: Vec<(f64, u32)>,
    /// Per customer: indices of (x, t_x) and (x, T) into `pairs`, and of T into `times`.
    of_customer: Vec<(u32, u32, u32)>,
}

impl JArguments {
    pub(crate) fn new(customers: &[Observation]) -> JArguments {
        let (mut time_bits, mut pair_keys) = (Vec::new(), Vec::new());
        let mut of_customer: Vec<(u32, u32, u32)> = {
            let (mut time, mut pair) = (interner(&mut time_bits), interner(&mut pair_keys));
            customers
                .iter()
                .map(|o| {
                    let (recency, age) = (time(o.recency.to_bits()), time(o.age.to_bits()));
                    (pair((o.frequency.to_bits(), recency)), pair((o.frequency.to_bits(), age)), age)
                })
                .collect()
        };
        // Pairs of one frequency next to each other, to share a TailIntegral.
        let rank = sort_keys(&mut pair_keys);
        for (recency, age, _) in &mut of_customer {
            (*recency, *age) = (rank[*recency as usize], rank[*age as usize]);
        }
        let times = time_bits.into_iter().map(f64::from_bits).collect();
        let pairs = pair_keys.into_iter().map(|(x, t)| (f64::from_bits(x), t)).collect();
        JArguments { times, pairs, of_customer }
    }
}

/// [`p_alive`] of `customers`, whose J arguments `arguments` are.
pub(crate) fn p_alive_of_pairs(p: &[f64; 4], customers: &[Observation], arguments: &JArguments) -> Vec<f64> {
    let [r, alpha, s, beta] = *p;
    let ln_alpha: Vec<f64> = arguments.times.iter().map(|t| (alpha + t).ln()).collect();
    let ln_beta: Vec<f64> = arguments.times.iter().map(|t| (beta + t).ln()).collect();
    let mut ln_js = Vec::with_capacity(arguments.pairs.len());
    for run in arguments.pairs.chunk_by(|a, b| a.0.to_bits() == b.0.to_bits()) {
        let mut integral = TailIntegral::new(alpha, beta, r + run[0].0, s + 1.0, false);
        for &(_, t) in run {
            let t = t as usize;
            ln_js.push(integral.at(arguments.times[t], ln_alpha[t], ln_beta[t]).0);
        }
    }
    let ln_s = s.ln();
    customers
        .iter()
        .zip(&arguments.of_customer)
        .map(|(o, &(recency, age, t))| {
            let ln_age = (ln_alpha[t as usize], ln_beta[t as usize]);
            alive_share(ln_terms_given(p, ln_s, o.frequency, ln_age, ln_js[recency as usize], ln_js[age as usize]))
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
/// the note's conditional expectation (Section 6) without its P(alive) factor:
/// [`alive_rate_scale`] × [`alive_horizon_factor`].
pub(crate) fn alive_expected_purchases(p: &[f64; 4], t: f64, x: f64, age: f64) -> f64 {
    alive_rate_scale(p, x, age) * alive_horizon_factor(p, t, age)
}

/// [`alive_expected_purchases`] at every time of `times` for every (x, T) of
/// `keys`, row-major by key, with [`alive_horizon_factor`] computed once per
/// distinct T.
pub(crate) fn alive_expected_purchases_table(p: &[f64; 4], times: &[f64], keys: &[(f64, f64)]) -> Vec<f64> {
    let mut rows: FastMap<u64, usize> = FastMap::default();
    let mut factors: Vec<f64> = Vec::new();
    let mut table = Vec::with_capacity(keys.len() * times.len());
    for &(x, age) in keys {
        let next = factors.len();
        let row = *rows.entry(age.to_bits()).or_insert(next);
        if row == next {
            factors.extend(times.iter().map(|&t| alive_horizon_factor(p, t, age)));
        }
        let scale = alive_rate_scale(p, x, age);
        table.extend(factors[row..row + times.len()].iter().map(|factor| scale * factor));
    }
    table
}

/// (r+x)(β+T)/(α+T), the part of [`alive_expected_purchases`] that depends on x.
pub(crate) fn alive_rate_scale(p: &[f64; 4], x: f64, age: f64) -> f64 {
    let [r, alpha, _, beta] = *p;
    (r + x) * (beta + age) / (alpha + age)
}

/// [1 − ((β+T)/(β+T+t))^{s−1}]/(s−1), the part of [`alive_expected_purchases`]
/// that depends on t, and not on x: customers of one age share it.
pub(crate) fn alive_horizon_factor(p: &[f64; 4], t: f64, age: f64) -> f64 {
    let [_, _, s, beta] = *p;
    one_minus_exp_over(s - 1.0, -(t / (beta + age)).ln_1p())
}

/// ln(e^u + e^v) = max + ln(1 + e^−|u−v|): one exponential, no overflow.
#[cfg(test)]
fn ln_add_exp(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    if m == f64::NEG_INFINITY { m } else { m + (-(u - v).abs()).exp().ln_1p() }
}

/// Mean negative log-likelihood per customer over (ln r, ln α, ln s, ln β),
/// with its analytic gradient.
///
/// Integrating the note's "alive" term by parts, (α+T)^{−(r+x)} (β+T)^{−s} =
/// (r+x) I(r+x+1, s; T) + s I(r+x, s+1; T), so the braces of the likelihood
/// (Section 3), alive + s[J(t_x) − J(T)], equal P(T) + s J(t_x) with
/// P(T) = (r+x) I(r+x+1, s; T):
/// L = Γ(r+x) α^r β^s / Γ(r) · [P(T) + s J(t_x)].
/// Both terms are positive, so ln L needs no cancelling difference (the note's
/// form subtracts J(T) from J(t_x)), costs one exponential per cell, and its
/// gradient is the two terms' gradients ([`TailIntegral`]) weighted by their shares.
/// P is needed once per distinct (x, T), J once per distinct (x, t_x); the pairs
/// are sorted by x, so that one [`TailIntegral`] — one set of series
/// coefficients — serves every time of a frequency.
pub(crate) struct Objective<'a> {
    data: &'a Compressed,
    /// Distinct (frequency index, time index) of the cells' (x, t_x): where J is needed.
    recency_pairs: Vec<(u32, u32)>,
    /// Distinct (frequency index, time index) of the cells' (x, T): where P is needed.
    age_pairs: Vec<(u32, u32)>,
    /// The cells, sorted by their pairs so that the pass over them reads the
    /// pairs' terms in order.
    cells: Vec<PairedCell>,
    threads: usize,
}

/// A cell of customers as [`Objective`] sums it.
#[derive(Clone, Copy, Debug)]
struct PairedCell {
    /// Customers in the cell.
    weight: f64,
    /// Indices into `recency_pairs` and `age_pairs`.
    recency: u32,
    age: u32,
}

/// Sorts `keys` and returns each old index's new one.
fn sort_keys<K: Copy + Ord>(keys: &mut Vec<K>) -> Vec<u32> {
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_unstable_by_key(|&i| keys[i as usize]);
    let mut rank = vec![0u32; keys.len()];
    for (position, &i) in order.iter().enumerate() {
        rank[i as usize] = position as u32;
    }
    *keys = order.iter().map(|&i| keys[i as usize]).collect();
    rank
}

impl<'a> Objective<'a> {
    pub(crate) fn new(data: &'a Compressed, threads: usize) -> Self {
        let (mut recency_pairs, mut age_pairs) = (Vec::new(), Vec::new());
        let mut cells: Vec<PairedCell> = {
            let (mut recency, mut age) = (interner(&mut recency_pairs), interner(&mut age_pairs));
            data.cells
                .iter()
                .map(|c| PairedCell { weight: c.weight, recency: recency((c.x, c.recency)), age: age((c.x, c.age)) })
                .collect()
        };
        // Pairs of one frequency next to each other, to share a TailIntegral.
        let (recency_rank, age_rank) = (sort_keys(&mut recency_pairs), sort_keys(&mut age_pairs));
        for cell in &mut cells {
            (cell.recency, cell.age) = (recency_rank[cell.recency as usize], age_rank[cell.age as usize]);
        }
        cells.sort_unstable_by_key(|c| (c.recency, c.age));
        Objective { data, recency_pairs, age_pairs, cells, threads }
    }

    /// [ln, ∂/∂r, ∂/∂α, ∂/∂s, ∂/∂β] of ln c + ln I(a, b; t) at each of `pairs`
    /// (sorted by frequency), spread over the threads: `term(x)` gives the
    /// integral of frequency x and [ln c, ∂ln c/∂r, ∂ln c/∂s]; `ln_times` holds
    /// ln(α+t) and ln(β+t) of every time.
    fn at_pairs<F>(&self, pairs: &[(u32, u32)], ln_times: &[(f64, f64)], term: F) -> Vec<[f64; 5]>
    where
        F: Fn(f64) -> (TailIntegral, [f64; 3]) + Sync,
    {
        let data = self.data;
        map_chunks(pairs.len(), self.threads, |range| {
            let mut values = Vec::with_capacity(range.len());
            for run in pairs[range].chunk_by(|a, b| a.0 == b.0) {
                let (mut integral, [ln_c, d_r, d_s]) = term(data.frequencies[run[0].0 as usize]);
                for &(_, t) in run {
                    let (ln_alpha_t, ln_beta_t) = ln_times[t as usize];
                    let (ln, g) = integral.at(data.times[t as usize], ln_alpha_t, ln_beta_t);
                    values.push([ln_c + ln, g[0] + d_r, g[1], g[2] + d_s, g[3]]);
                }
            }
            values
        })
        .concat()
    }
}

impl optimize::Objective for Objective<'_> {
    fn evaluate(&self, theta: &[f64], gradient: Option<&mut [f64]>) -> f64 {
        let p = [theta[0].exp(), theta[1].exp(), theta[2].exp(), theta[3].exp()];
        let [r, alpha, s, beta] = p;
        let data = self.data;
        let want = gradient.is_some();
        // [ln, ∂/∂r, ∂/∂α, ∂/∂s, ∂/∂β] of s·J(t_x) and of P(T).
        let ln_times: Vec<(f64, f64)> = data.times.iter().map(|t| ((alpha + t).ln(), (beta + t).ln())).collect();
        let ln_s = s.ln();
        let recency = self.at_pairs(&self.recency_pairs, &ln_times, |x| {
            (TailIntegral::new(alpha, beta, r + x, s + 1.0, want), [ln_s, 0.0, 1.0 / s])
        });
        let age = self.at_pairs(&self.age_pairs, &ln_times, |x| {
            (TailIntegral::new(alpha, beta, r + x + 1.0, s, want), [(r + x).ln(), 1.0 / (r + x), 0.0])
        });

        // ln Γ(r+x) − ln Γ(r) + r ln α + s ln β, summed with the customers at each x.
        let (lg_r, dg_r, ln_alpha, ln_beta) = (ln_gamma(r), digamma(r), alpha.ln(), beta.ln());
        let mut total = [0.0f64; 5];
        for (&x, &w) in data.frequencies.iter().zip(&data.frequency_weights) {
            total[0] += w * (ln_gamma(r + x) - lg_r + r * ln_alpha + s * ln_beta);
            if want {
                total[1] += w * (digamma(r + x) - dg_r + ln_alpha);
                total[2] += w * r / alpha;
                total[3] += w * ln_beta;
                total[4] += w * s / beta;
            }
        }
        // Per cell ln[P(T) + s J(t_x)] and, with σ the share of s J(t_x), its
        // gradient (1 − σ) ∇ln P + σ ∇ln sJ.
        let parts = map_chunks(self.cells.len(), self.threads, |range| {
            let mut acc = [0.0f64; 5];
            for cell in &self.cells[range] {
                let (sj, pt) = (&recency[cell.recency as usize], &age[cell.age as usize]);
                let d = sj[0] - pt[0];
                let e = (-d.abs()).exp();
                let w = cell.weight;
                // ln(1 + e) as ln of the rounded 1 + e: off by at most 2⁻⁵³ in absolute
                // terms, nothing beside a log-likelihood of order one per customer, and
                // a logarithm cheaper than ln_1p's.
                let one_plus = 1.0 + e;
                acc[0] += w * (sj[0].max(pt[0]) + one_plus.ln());
                if want {
                    let share = if d >= 0.0 { 1.0 / one_plus } else { e / one_plus };
                    for i in 1..5 {
                        acc[i] += w * (pt[i] + share * (sj[i] - pt[i]));
                    }
                }
            }
            acc
        });
        for (t, part) in total.iter_mut().zip(sum_arrays(&parts)) {
            *t += part;
        }
        let n = data.customers as f64;
        if let Some(g) = gradient {
            // Chain rule to log-parameters, ∂/∂ln θ = θ ∂/∂θ; negated mean.
            for i in 0..4 {
                g[i] = -p[i] * total[i + 1] / n;
            }
        }
        -total[0] / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::bg_nbd::tests::cdnow;
    use crate::models::optimize::Objective as _;
    use crate::models::{FitOptions, PurchaseFit, PurchaseModelKind, fit_purchase_model};
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
        // The fit's form of the likelihood, P(T) + s J(t_x), is the note's.
        let by_customer: f64 = obs.iter().map(|o| log_likelihood(&CDNOW, o.frequency, o.recency, o.age)).sum();
        assert!((ll - by_customer).abs() < 1e-8, "{ll} vs {by_customer}");
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

    /// CDNOW's customers and a few heavy buyers with long histories.
    fn gradient_test_customers() -> Vec<Observation> {
        let mut customers: Vec<Observation> = cdnow().into_iter().map(|(o, _)| o).collect();
        for (frequency, recency, age) in [(180.0, 150.0, 156.0), (60.0, 20.0, 156.0), (0.0, 0.0, 0.5)] {
            customers.push(Observation { frequency, recency, age });
        }
        customers
    }

    /// Parameter points for the gradient tests: α < β and α ≥ β, α = β, the 2F1
    /// argument near 1, r + x < 1, and r, α, s, β from 0.02 to 2,000. (Beyond a
    /// ratio of about 10⁵ between α and β the 2F1 series of one-time buyers needs
    /// more than its 2,000,000 terms and is cut short.)
    const GRADIENT_TEST_POINTS: [[f64; 4]; 9] = [
        // CDNOW's estimates (α < β), and α ≥ β.
        CDNOW,
        [0.55, 12.0, 0.61, 4.0],
        // α = β, where the two cases meet at z = 0.
        [0.8, 7.0, 1.3, 7.0],
        // The 2F1 argument near 1 (z = 1 − 1e-4 for one-time buyers), in both cases.
        [0.55, 100.0, 0.61, 0.01],
        [0.55, 0.01, 0.61, 100.0],
        // r + x < 1 for one-time buyers with α < β; s > 1.
        [0.3, 2.0, 2.5, 40.0],
        // Small shapes and a tiny α against a large β, and the reverse with large shapes.
        [0.05, 0.02, 0.08, 50.0],
        [25.0, 2000.0, 12.0, 0.5],
        [3.0, 0.3, 0.02, 0.4],
    ];

    /// The analytic gradient of the fit's objective on `customers` against central
    /// differences of its value, and the value against the note's likelihood summed
    /// customer by customer, at every point of [`GRADIENT_TEST_POINTS`].
    fn check_gradient(customers: &[Observation]) {
        let data = crate::models::observations::Compressed::new("test", customers).unwrap();
        let objective = Objective::new(&data, 1);
        for params in GRADIENT_TEST_POINTS {
            let theta = params.map(f64::ln);
            let mut analytic = [0.0; 4];
            let value = objective.evaluate(&theta, Some(&mut analytic));
            let mut numeric = [0.0; 4];
            optimize::central_difference(|t| objective.evaluate(t, None), &theta, &mut numeric);
            for (a, n) in analytic.iter().zip(numeric) {
                assert!((a - n).abs() < 1e-6 * (1.0 + n.abs()), "{params:?}: {analytic:?} vs {numeric:?}");
            }
            let note: f64 = customers.iter().map(|o| log_likelihood(&params, o.frequency, o.recency, o.age)).sum();
            let mean = -note / customers.len() as f64;
            assert!((value - mean).abs() < 1e-10 * mean.abs().max(1.0), "{params:?}: {value} vs {mean}");
        }
    }

    #[test]
    fn analytic_gradient_matches_central_differences() {
        check_gradient(&gradient_test_customers());
    }

    #[test]
    fn analytic_gradient_matches_central_differences_for_one_time_buyers_alone() {
        // x = 0 everywhere: only the P(T) and J(0) terms, with t_x = 0.
        let customers: Vec<Observation> = [0.5, 3.0, 38.86, 156.0, 1000.0]
            .iter()
            .map(|&age| Observation { frequency: 0.0, recency: 0.0, age })
            .collect();
        check_gradient(&customers);
    }

    #[test]
    fn hessian_from_analytic_gradients_matches_second_differences() {
        let data = crate::models::observations::Compressed::new("test", &gradient_test_customers()).unwrap();
        let objective = Objective::new(&data, 1);
        let theta = CDNOW.map(f64::ln);
        let from_gradients = optimize::hessian(&objective, &theta);
        let from_values = optimize::value_differences(&objective, &theta, 1e-3);
        let scale = from_values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in from_gradients.iter().zip(&from_values) {
            assert!((a - b).abs() < 1e-6 * scale, "{from_gradients:?} vs {from_values:?}");
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
