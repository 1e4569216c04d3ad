//! The common API of the purchase (transaction-count) models: which model, its
//! fit, and its predictions, dispatched to the model's own module.

use super::covariance::LogCovariance;
use super::error::FitError;
use super::observations::{Compressed, Observation, interner};
use super::optimize::{self, FitOptions, Stall};
use super::parallel::map_chunks;
use super::{bg_nbd, mbg_nbd, pareto_nbd};

/// Which purchase model to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PurchaseModelKind {
    /// BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy
    /// Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2).
    BgNbd,
    /// Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting Your
    /// Customers: Who Are They and What Will They Do Next?", Management
    /// Science 33(1), as derived in Fader & Hardie (2005), "A Note on
    /// Deriving the Pareto/NBD Model and Related Expressions".
    ParetoNbd,
    /// MBG/NBD: Batislam, Denizel & Filiztekin (2007), "Empirical validation
    /// and comparison of models for customer base analysis", International
    /// Journal of Research in Marketing 24(3).
    MbgNbd,
}

impl PurchaseModelKind {
    /// The model's name in configuration and reports: `"bg_nbd"`,
    /// `"pareto_nbd"` or `"mbg_nbd"`.
    pub fn name(self) -> &'static str {
        match self {
            PurchaseModelKind::BgNbd => "bg_nbd",
            PurchaseModelKind::ParetoNbd => "pareto_nbd",
            PurchaseModelKind::MbgNbd => "mbg_nbd",
        }
    }

    /// Parameter names in the order of [`PurchaseFit::parameters`] and
    /// [`PurchaseFit::from_parameters`]: r, alpha, a, b (BG/NBD, MBG/NBD) or
    /// r, alpha, s, beta (Pareto/NBD).
    pub fn parameter_names(self) -> [&'static str; 4] {
        match self {
            PurchaseModelKind::BgNbd | PurchaseModelKind::MbgNbd => ["r", "alpha", "a", "b"],
            PurchaseModelKind::ParetoNbd => ["r", "alpha", "s", "beta"],
        }
    }
}

/// One customer's purchase summary over the calibration period, in the
/// pipeline's time unit.
impl std::str::FromStr for PurchaseModelKind {
    type Err = String;

    /// The model a [`PurchaseModelKind::name`] names.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [PurchaseModelKind::BgNbd, PurchaseModelKind::ParetoNbd, PurchaseModelKind::MbgNbd]
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| format!("unknown purchase model `{name}` (bg_nbd, pareto_nbd, mbg_nbd)"))
    }
}

/// A fitted (or given) purchase model: parameters plus fit diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct PurchaseFit {
    kind: PurchaseModelKind,
    params: [f64; 4],
    log_likelihood: f64,
    iterations: usize,
    converged: bool,
    customers: usize,
    covariance: Option<LogCovariance>,
}

/// Fewest repeat buyers with which the purchase models are fitted at all:
/// below this the purchase-rate and dropout parameters are not identified.
pub const MIN_REPEAT_BUYERS: usize = 10;

/// Fits `kind` by maximum likelihood (BFGS on log-parameters; see
/// [`FitOptions`]) to `observations`.
///
/// Customers with identical (x, t_x, T) are merged into weighted cells first,
/// so cost grows with the number of distinct triples, not customers. A
/// converged fit carries the asymptotic covariance of its log-parameters
/// ([`PurchaseFit::log_covariance`], [`PurchaseFit::std_errors`]) unless the
/// information matrix is singular or not positive definite.
///
/// Errors: [`FitError::InvalidInput`] for negative, non-finite or
/// fractional frequencies, recency > age, or recency > 0 with frequency 0;
/// [`FitError::InsufficientData`] with fewer than [`MIN_REPEAT_BUYERS`]
/// repeat buyers; [`FitError::NotConverged`].
pub fn fit_purchase_model(
    kind: PurchaseModelKind,
    observations: &[Observation],
    options: &FitOptions,
) -> Result<PurchaseFit, FitError> {
    let model = kind.name();
    let data = Compressed::new(model, observations)?;
    if data.repeat_buyers < MIN_REPEAT_BUYERS {
        return Err(FitError::InsufficientData {
            model,
            customers: data.customers,
            usable: data.repeat_buyers,
            required: MIN_REPEAT_BUYERS,
            usable_means: "repeat buyers (frequency > 0)",
        });
    }
    let threads = options.threads.max(1);
    let start = start(kind, &data);
    let minimum = match kind {
        PurchaseModelKind::BgNbd => {
            minimize(&bg_nbd::Objective::new(&data, bg_nbd::Variant::Bg, threads), &start, options, data.customers)
        }
        PurchaseModelKind::MbgNbd => {
            minimize(&bg_nbd::Objective::new(&data, bg_nbd::Variant::Mbg, threads), &start, options, data.customers)
        }
        PurchaseModelKind::ParetoNbd => {
            minimize(&pareto_nbd::Objective::new(&data, threads), &start, options, data.customers)
        }
    };
    let Some((minimum, covariance)) = minimum else {
        return Err(FitError::NotConverged { model, iterations: 0, log_likelihood: f64::NAN, diverging: None });
    };
    let log_likelihood = -minimum.value * data.customers as f64;
    let params = exp4(&minimum.theta);
    match minimum.stall {
        Some(Stall::Diverged(i)) => Err(FitError::NotConverged {
            model,
            iterations: minimum.iterations,
            log_likelihood,
            diverging: Some(kind.parameter_names()[i]),
        }),
        Some(_) if !options.allow_unconverged => {
            Err(FitError::NotConverged { model, iterations: minimum.iterations, log_likelihood, diverging: None })
        }
        stall => Ok(PurchaseFit {
            kind,
            params,
            log_likelihood,
            iterations: minimum.iterations,
            converged: stall.is_none(),
            customers: data.customers,
            covariance,
        }),
    }
}

/// Log-parameter starting point, scaled to the data's time unit: r = 1 with
/// α matching the observed repeat-purchase rate (the gamma mean r/α); a = b
/// = 1 (a uniform prior on the dropout probability) or s = 1 with β = α (a
/// mean lifetime as long as the mean time between purchases).
fn start(kind: PurchaseModelKind, data: &Compressed) -> [f64; 4] {
    let total_x: f64 = data.cells.iter().map(|c| c.weight * data.frequencies[c.x as usize]).sum();
    let total_age: f64 = data.cells.iter().map(|c| c.weight * data.times[c.age as usize]).sum();
    let alpha = if total_x > 0.0 && total_age > 0.0 { (total_age / total_x).clamp(1e-6, 1e9) } else { 1.0 };
    let dropout_scale = if kind == PurchaseModelKind::ParetoNbd { alpha.ln() } else { 0.0 };
    [0.0, alpha.ln(), 0.0, dropout_scale]
}

/// The minimum, with the covariance of the log-parameters when the optimiser
/// converged (at a point where it stalled the Hessian says nothing useful) and
/// the options ask for it.
fn minimize<O: optimize::Objective>(
    objective: &O,
    start: &[f64; 4],
    options: &FitOptions,
    customers: usize,
) -> Option<(optimize::Minimum, Option<LogCovariance>)> {
    let minimum = optimize::minimize(objective, start, options.max_iterations, options.tolerance)?;
    let covariance = match minimum.stall {
        None if options.standard_errors => LogCovariance::at_minimum(objective, &minimum.theta, customers),
        _ => None,
    };
    Some((minimum, covariance))
}

fn exp4(theta: &[f64]) -> [f64; 4] {
    [theta[0].exp(), theta[1].exp(), theta[2].exp(), theta[3].exp()]
}

impl PurchaseFit {
    /// A model with known parameters, e.g. stored from an earlier run or
    /// taken from a paper, in [`PurchaseModelKind::parameter_names`] order.
    /// Its [`log_likelihood`](Self::log_likelihood) is NaN, `iterations` and
    /// `customers` are 0, and `converged` is true.
    pub fn from_parameters(kind: PurchaseModelKind, params: [f64; 4]) -> Result<PurchaseFit, FitError> {
        let names = kind.parameter_names();
        if let Some(i) = params.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(FitError::InvalidInput {
                model: kind.name(),
                reason: format!(
                    "parameter `{}` is {}; all parameters must be finite and positive",
                    names[i], params[i]
                ),
            });
        }
        Ok(PurchaseFit {
            kind,
            params,
            log_likelihood: f64::NAN,
            iterations: 0,
            converged: true,
            customers: 0,
            covariance: None,
        })
    }

    /// The same model with `covariance` as the uncertainty of its
    /// log-parameters (e.g. stored with the parameters by an earlier fit).
    pub fn with_log_covariance(mut self, covariance: LogCovariance) -> Result<PurchaseFit, FitError> {
        if covariance.dim() != self.params.len() {
            return Err(FitError::InvalidInput {
                model: self.kind.name(),
                reason: format!("a covariance of {} parameters for a model of 4", covariance.dim()),
            });
        }
        self.covariance = Some(covariance);
        Ok(self)
    }

    /// Asymptotic covariance of the log-parameters (in
    /// [`parameters`](Self::parameters) order): `None` for a model built from
    /// parameters, a fit that did not converge, or one whose information
    /// matrix is singular or not positive definite.
    pub fn log_covariance(&self) -> Option<&LogCovariance> {
        self.covariance.as_ref()
    }

    /// Standard errors of the parameters in their natural scale (the
    /// inverse of the observed information matrix, see
    /// [`LogCovariance`]), in [`parameters`](Self::parameters) order; `None`
    /// when [`log_covariance`](Self::log_covariance) is.
    pub fn std_errors(&self) -> Option<Vec<f64>> {
        self.covariance.as_ref().map(|c| c.std_errors(&self.params))
    }

    /// Which model this is.
    pub fn kind(&self) -> PurchaseModelKind {
        self.kind
    }

    /// Named parameters: r, alpha, a, b (BG/NBD, MBG/NBD) or r, alpha, s,
    /// beta (Pareto/NBD).
    pub fn parameters(&self) -> Vec<(&'static str, f64)> {
        self.kind.parameter_names().into_iter().zip(self.params).collect()
    }

    /// Maximised log-likelihood summed over customers (natural log; NaN for
    /// [`from_parameters`](Self::from_parameters)).
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
    pub fn customers(&self) -> usize {
        self.customers
    }

    /// Log-likelihood of `observations` under this model's parameters, summed
    /// over customers: BG/NBD eq. (6), the MBG/NBD likelihood of Batislam et
    /// al. (2007), or Pareto/NBD (Fader & Hardie 2005 note, Section 3).
    pub fn log_likelihood_of(&self, observations: &[Observation]) -> Result<f64, FitError> {
        let data = Compressed::new(self.kind.name(), observations)?;
        let theta = self.params.map(f64::ln);
        let mean = match self.kind {
            PurchaseModelKind::BgNbd => {
                optimize::Objective::evaluate(&bg_nbd::Objective::new(&data, bg_nbd::Variant::Bg, 1), &theta, None)
            }
            PurchaseModelKind::MbgNbd => {
                optimize::Objective::evaluate(&bg_nbd::Objective::new(&data, bg_nbd::Variant::Mbg, 1), &theta, None)
            }
            PurchaseModelKind::ParetoNbd => {
                optimize::Objective::evaluate(&pareto_nbd::Objective::new(&data, 1), &theta, None)
            }
        };
        Ok(-mean * data.customers as f64)
    }

    /// Probability that a customer with history (x, t_x, T) is still alive
    /// at T. BG/NBD: Fader, Hardie & Lee's note "Computing P(alive) Using
    /// the BG/NBD Model", which is 1 for x = 0 by construction (a BG/NBD
    /// customer can only drop out right after a repeat purchase). MBG/NBD:
    /// Batislam et al. (2007), below 1 for x = 0 (dropout can also happen
    /// right after the first purchase). Pareto/NBD: Fader & Hardie (2005 note), Section 5.
    pub fn p_alive(&self, x: f64, t_x: f64, age: f64) -> f64 {
        match self.kind {
            PurchaseModelKind::BgNbd => bg_nbd::p_alive(&self.params, bg_nbd::Variant::Bg, x, t_x, age),
            PurchaseModelKind::MbgNbd => mbg_nbd::p_alive(&self.params, x, t_x, age),
            PurchaseModelKind::ParetoNbd => pareto_nbd::p_alive(&self.params, x, t_x, age),
        }
    }

    /// Unconditional E[X(t)]: expected repeat purchases in (0, t] for a
    /// customer whose first purchase was at 0. BG/NBD: eq. (7); MBG/NBD:
    /// Batislam et al. (2007); Pareto/NBD: Fader & Hardie (2005
    /// note), Section 4.
    pub fn expected_purchases(&self, t: f64) -> f64 {
        match self.kind {
            PurchaseModelKind::BgNbd => bg_nbd::expected_purchases(&self.params, bg_nbd::Variant::Bg, t),
            PurchaseModelKind::MbgNbd => mbg_nbd::expected_purchases(&self.params, t),
            PurchaseModelKind::ParetoNbd => pareto_nbd::expected_purchases(&self.params, t),
        }
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] given the
    /// customer's history. BG/NBD: eq. (10); MBG/NBD: Batislam et al.
    /// (2007); Pareto/NBD: Fader & Hardie (2005 note), Section 6.
    pub fn conditional_expected_purchases(&self, t: f64, x: f64, t_x: f64, age: f64) -> f64 {
        self.p_alive(x, t_x, age) * self.alive_expected_purchases(t, x, age)
    }

    /// [`conditional_expected_purchases`](Self::conditional_expected_purchases)
    /// for many customers: the same values, but the expensive part (a 2F1
    /// series for BG/NBD and MBG/NBD) is computed once per distinct
    /// (x, T) and spread over `threads` threads, which is what makes a
    /// million customers with day-granular histories cheap.
    pub fn conditional_expected_purchases_many(&self, t: f64, customers: &[Observation], threads: usize) -> Vec<f64> {
        self.p_alive_times(customers, threads, |keys| self.alive_expected_purchases_table(&[t], keys))
    }

    /// [`p_alive`](Self::p_alive) of many customers: the same values, with
    /// Pareto/NBD's 2F1 series computed once per distinct (x, t) among the
    /// customers' (x, t_x) and (x, T) rather than twice per customer.
    pub fn p_alive_many(&self, customers: &[Observation]) -> Vec<f64> {
        match self.kind {
            PurchaseModelKind::ParetoNbd => pareto_nbd::p_alive_many(&self.params, customers),
            _ => customers.iter().map(|o| self.p_alive(o.frequency, o.recency, o.age)).collect(),
        }
    }

    /// P(alive) of each customer times `per_frequency_and_age(keys)[k]`, where
    /// `keys` are the customers' distinct (x, T) and k the customer's: what
    /// depends on (x, T) alone is computed once per key; spread over `threads` threads.
    pub(crate) fn p_alive_times<F>(
        &self,
        customers: &[Observation],
        threads: usize,
        per_frequency_and_age: F,
    ) -> Vec<f64>
    where
        F: Fn(&[(f64, f64)]) -> Vec<f64> + Sync,
    {
        let (keys, slots) = frequency_and_age_keys(customers);
        let values = map_chunks(keys.len(), threads, |range| per_frequency_and_age(&keys[range])).concat();
        map_chunks(customers.len(), threads, |range| {
            let p_alive = self.p_alive_many(&customers[range.clone()]);
            range.zip(p_alive).map(|(i, p)| p * values[slots[i] as usize]).collect::<Vec<f64>>()
        })
        .concat()
    }

    /// [`p_alive_times`](Self::p_alive_times) for customers prepared once
    /// ([`Histories`]) and valued under many parameter values: `per_key` holds
    /// the value of each of [`Histories::keys`].
    pub(crate) fn p_alive_times_prepared(&self, histories: &Histories, per_key: &[f64]) -> Vec<f64> {
        let p_alive = match (&histories.j_arguments, self.kind) {
            (Some(arguments), PurchaseModelKind::ParetoNbd) => {
                pareto_nbd::p_alive_of_pairs(&self.params, &histories.customers, arguments)
            }
            _ => self.p_alive_many(&histories.customers),
        };
        p_alive.iter().zip(&histories.slots).map(|(p, &slot)| p * per_key[slot as usize]).collect()
    }

    /// [`alive_expected_purchases`](Self::alive_expected_purchases) at every
    /// time of `times` for every (x, T) of `keys`, row-major by key. Pareto/NBD's
    /// factors that depend on t are computed once per distinct T.
    pub(crate) fn alive_expected_purchases_table(&self, times: &[f64], keys: &[(f64, f64)]) -> Vec<f64> {
        match self.kind {
            PurchaseModelKind::ParetoNbd => pareto_nbd::alive_expected_purchases_table(&self.params, times, keys),
            _ => keys
                .iter()
                .flat_map(|&(x, age)| times.iter().map(move |&t| self.alive_expected_purchases(t, x, age)))
                .collect(),
        }
    }

    /// E[Y(t) | x, T, alive at T]: the conditional expectation without its
    /// P(alive) factor. It does not depend on t_x, which lets CLV reuse it
    /// across customers and horizons.
    pub(crate) fn alive_expected_purchases(&self, t: f64, x: f64, age: f64) -> f64 {
        match self.kind {
            PurchaseModelKind::BgNbd => bg_nbd::alive_expected_purchases(&self.params, bg_nbd::Variant::Bg, t, x, age),
            PurchaseModelKind::MbgNbd => mbg_nbd::alive_expected_purchases(&self.params, t, x, age),
            PurchaseModelKind::ParetoNbd => pareto_nbd::alive_expected_purchases(&self.params, t, x, age),
        }
    }
}

/// The distinct (x, T) of `customers` in order of first appearance (−0 taken
/// as 0), and the index of each customer's.
fn frequency_and_age_keys(customers: &[Observation]) -> (Vec<(f64, f64)>, Vec<u32>) {
    let mut keys = Vec::new();
    let slots = {
        let mut key = interner(&mut keys);
        customers.iter().map(|o| key(((o.frequency + 0.0).to_bits(), (o.age + 0.0).to_bits()))).collect()
    };
    (keys.into_iter().map(|(x, age)| (f64::from_bits(x), f64::from_bits(age))).collect(), slots)
}

/// Customers to be valued under many parameter values of one model (the draws
/// of an interval): their distinct (x, T) and, for Pareto/NBD, the arguments
/// of its 2F1 series, found once rather than per draw.
#[derive(Clone, Debug)]
pub(crate) struct Histories {
    customers: Vec<Observation>,
    keys: Vec<(f64, f64)>,
    /// Per customer: index into `keys`.
    slots: Vec<u32>,
    j_arguments: Option<pareto_nbd::JArguments>,
}

impl Histories {
    pub(crate) fn new(kind: PurchaseModelKind, customers: Vec<Observation>) -> Histories {
        let (keys, slots) = frequency_and_age_keys(&customers);
        let j_arguments = (kind == PurchaseModelKind::ParetoNbd).then(|| pareto_nbd::JArguments::new(&customers));
        Histories { customers, keys, slots, j_arguments }
    }

    /// The customers, in the order given.
    pub(crate) fn customers(&self) -> &[Observation] {
        &self.customers
    }

    /// The customers' distinct (x, T), in order of first appearance.
    pub(crate) fn keys(&self) -> &[(f64, f64)] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(frequency: f64, recency: f64, age: f64) -> Observation {
        Observation { frequency, recency, age }
    }

    fn cdnow() -> Vec<Observation> {
        crate::models::bg_nbd::tests::cdnow().into_iter().map(|(o, _)| o).collect()
    }

    #[test]
    fn rejects_invalid_input_with_row_and_reason() {
        let cases = [
            (obs(-1.0, 0.0, 5.0), "frequency is -1"),
            (obs(1.0, f64::NAN, 5.0), "recency is NaN"),
            (obs(1.0, 2.0, f64::INFINITY), "age is inf"),
            (obs(1.5, 2.0, 5.0), "not a whole number"),
            (obs(2.0, 6.0, 5.0), "greater than age"),
            (obs(0.0, 1.0, 5.0), "must be 0"),
        ];
        for kind in [PurchaseModelKind::BgNbd, PurchaseModelKind::ParetoNbd, PurchaseModelKind::MbgNbd] {
            for (bad, expected) in &cases {
                let data = vec![obs(1.0, 1.0, 5.0), *bad];
                let err = fit_purchase_model(kind, &data, &FitOptions::default()).unwrap_err();
                let FitError::InvalidInput { model, reason } = &err else { panic!("{err:?}") };
                assert_eq!(*model, kind.name());
                assert!(reason.starts_with("row 1:") && reason.contains(expected), "{reason}");
                assert!(err.to_string().starts_with(kind.name()));
            }
        }
    }

    #[test]
    fn all_one_time_buyers_are_insufficient_data() {
        let data = vec![obs(0.0, 0.0, 30.0); 1000];
        for kind in [PurchaseModelKind::BgNbd, PurchaseModelKind::ParetoNbd, PurchaseModelKind::MbgNbd] {
            let err = fit_purchase_model(kind, &data, &FitOptions::default()).unwrap_err();
            assert_eq!(
                err,
                FitError::InsufficientData {
                    model: kind.name(),
                    customers: 1000,
                    usable: 0,
                    required: MIN_REPEAT_BUYERS,
                    usable_means: "repeat buyers (frequency > 0)",
                }
            );
            let message = err.to_string();
            assert!(message.contains("only 0 of 1000") && message.contains("time_unit: day"), "{message}");
        }
        assert!(fit_purchase_model(PurchaseModelKind::BgNbd, &[], &FitOptions::default()).is_err());
    }

    #[test]
    fn iteration_limit_is_not_converged_unless_allowed() {
        let data = cdnow();
        let options = FitOptions { max_iterations: 2, ..FitOptions::default() };
        let err = fit_purchase_model(PurchaseModelKind::BgNbd, &data, &options).unwrap_err();
        let FitError::NotConverged { model, iterations, log_likelihood, diverging } = err.clone() else {
            panic!("{err:?}")
        };
        assert_eq!((model, iterations, diverging), ("bg_nbd", 2, None));
        assert!(log_likelihood.is_finite() && log_likelihood < -9582.4);
        assert!(err.to_string().contains("after 2 iterations") && err.to_string().contains("another model"));
        let fit =
            fit_purchase_model(PurchaseModelKind::BgNbd, &data, &FitOptions { allow_unconverged: true, ..options })
                .unwrap();
        assert!(!fit.converged());
        assert_eq!(fit.iterations(), 2);
    }

    #[test]
    fn runaway_parameters_are_reported() {
        // Everyone buys weekly right up to the end: no sign of dropout, so the
        // dropout probability is driven to 0 (b → ∞).
        let data: Vec<Observation> = (0..200).map(|i| obs(20.0 + (i % 5) as f64, 30.0, 30.0)).collect();
        let err = fit_purchase_model(PurchaseModelKind::BgNbd, &data, &FitOptions::default()).unwrap_err();
        let FitError::NotConverged { diverging, .. } = &err else { panic!("{err:?}") };
        assert!(diverging.is_some(), "{err}");
        assert!(err.to_string().contains("runs off"), "{err}");
    }

    #[test]
    fn fits_are_deterministic_and_thread_independent() {
        let data = cdnow();
        let one =
            fit_purchase_model(PurchaseModelKind::MbgNbd, &data, &FitOptions { threads: 1, ..FitOptions::default() })
                .unwrap();
        let two =
            fit_purchase_model(PurchaseModelKind::MbgNbd, &data, &FitOptions { threads: 2, ..FitOptions::default() })
                .unwrap();
        assert_eq!(one, two);
        // Nor on the order of the customers, which a query's partitioning decides.
        let shuffled: Vec<Observation> =
            data.iter().step_by(2).chain(data.iter().skip(1).step_by(2)).rev().copied().collect();
        for kind in [PurchaseModelKind::BgNbd, PurchaseModelKind::MbgNbd, PurchaseModelKind::ParetoNbd] {
            let fit = |data: &[Observation]| fit_purchase_model(kind, data, &FitOptions::default()).unwrap();
            assert_eq!(fit(&data), fit(&shuffled), "{kind:?}");
        }
    }

    #[test]
    fn holdout_predictions_match_lifetimes_on_the_cdnow_split() {
        // The CDNOW summary (times rounded to 0.01 weeks) is the calibration period
        // (1997-01-01..09-30) of the standard split; each model fitted to it predicts the
        // 39-week holdout. lifetimes 0.11.3's `load_cdnow_summary()`, `fit` and
        // `conditional_expected_number_of_purchases_up_to_time(39, ...)` for customers 1-5
        // and summed over all 2,357 (src/models/testdata/lifetimes_reference.py). lifetimes
        // stops its Pareto/NBD fit a little earlier than we do, hence the looser tolerance.
        let data = cdnow();
        let cases = [
            (
                PurchaseModelKind::BgNbd,
                [1.2259104241744068, 0.20325062425618798, 0.19478085793947836],
                1653.423283330691,
                1e-4,
            ),
            (
                PurchaseModelKind::MbgNbd,
                [1.2626707787139375, 0.18878924037050474, 0.15395364436667586],
                1576.7356993135181,
                1e-4,
            ),
            (
                PurchaseModelKind::ParetoNbd,
                [1.455138656017584, 0.17098538250294565, 0.10706218240522092],
                1665.5657661214436,
                1e-3,
            ),
        ];
        for (kind, first, total, tolerance) in cases {
            let fit = fit_purchase_model(kind, &data, &FitOptions::default()).unwrap();
            let predicted = fit.conditional_expected_purchases_many(39.0, &data, 2);
            // Customers 3, 4 and 5 share one history (x = 0, T = 38.86).
            for (i, want) in [first[0], first[1], first[2], first[2], first[2]].into_iter().enumerate() {
                assert!((predicted[i] / want - 1.0).abs() < tolerance, "{kind:?} customer {}: {}", i + 1, predicted[i]);
            }
            let sum: f64 = predicted.iter().sum();
            assert!((sum / total - 1.0).abs() < tolerance, "{kind:?}: {sum} vs {total}");
        }
    }

    #[test]
    fn batched_and_prepared_evaluations_equal_one_customer_at_a_time() {
        // CDNOW and a copy with −0 recencies (the same keys as 0).
        let mut customers = cdnow();
        customers.extend(cdnow().iter().take(300).map(|o| Observation { recency: o.recency * -0.0, ..*o }));
        let times = [1.0, 26.0, 39.0];
        for (kind, params) in [
            (PurchaseModelKind::BgNbd, [0.243, 4.414, 0.793, 2.426]),
            (PurchaseModelKind::MbgNbd, [0.243, 4.414, 0.793, 2.426]),
            (PurchaseModelKind::ParetoNbd, [0.55, 10.58, 0.61, 11.67]),
        ] {
            let fit = PurchaseFit::from_parameters(kind, params).unwrap();
            let p_alive = fit.p_alive_many(&customers);
            let expected = fit.conditional_expected_purchases_many(26.0, &customers, 2);
            let histories = Histories::new(kind, customers.clone());
            let table = fit.alive_expected_purchases_table(&times, histories.keys());
            for (k, &(x, age)) in histories.keys().iter().enumerate() {
                for (i, &t) in times.iter().enumerate() {
                    assert_eq!(table[k * times.len() + i].to_bits(), fit.alive_expected_purchases(t, x, age).to_bits());
                }
            }
            let per_key: Vec<f64> =
                histories.keys().iter().map(|&(x, age)| fit.alive_expected_purchases(26.0, x, age)).collect();
            let prepared = fit.p_alive_times_prepared(&histories, &per_key);
            for (i, o) in customers.iter().enumerate() {
                let one = fit.conditional_expected_purchases(26.0, o.frequency, o.recency, o.age);
                assert_eq!(
                    p_alive[i].to_bits(),
                    fit.p_alive(o.frequency, o.recency, o.age).to_bits(),
                    "{kind:?} {o:?}"
                );
                assert_eq!(expected[i].to_bits(), one.to_bits(), "{kind:?} {o:?}");
                assert_eq!(prepared[i].to_bits(), one.to_bits(), "{kind:?} {o:?}");
            }
        }
    }

    #[test]
    fn from_parameters_validates_and_names_parameters() {
        let fit = PurchaseFit::from_parameters(PurchaseModelKind::ParetoNbd, [0.55, 10.58, 0.61, 11.67]).unwrap();
        assert_eq!(fit.parameters()[2], ("s", 0.61));
        assert!(fit.log_likelihood().is_nan());
        let err = PurchaseFit::from_parameters(PurchaseModelKind::BgNbd, [0.2, -1.0, 1.0, 1.0]).unwrap_err();
        assert!(err.to_string().contains("`alpha`"), "{err}");
        assert_eq!(PurchaseModelKind::MbgNbd.name(), "mbg_nbd");
    }
}
