//! Errors from fitting the models in [`crate::models`].

use std::fmt;

/// Why a model could not be fitted (or its inputs were rejected).
///
/// Every message names the model, says what went wrong, and suggests what to
/// try next, because these surface verbatim in pipeline run reports.
#[derive(Clone, Debug, PartialEq)]
pub enum FitError {
    /// An input value the model cannot use: negative or non-finite numbers,
    /// recency greater than age, a fractional frequency, non-positive
    /// parameters.
    InvalidInput {
        /// Model name, e.g. `"bg_nbd"`.
        model: &'static str,
        /// Which value was wrong and where (row index for per-customer data).
        reason: String,
    },
    /// Too few informative customers to identify the parameters.
    InsufficientData {
        /// Model name, e.g. `"bg_nbd"`.
        model: &'static str,
        /// Customers passed in.
        customers: usize,
        /// Customers that carry the needed information.
        usable: usize,
        /// Minimum number of such customers the model needs.
        required: usize,
        /// What makes a customer usable, e.g. "repeat buyers (frequency > 0)".
        usable_means: &'static str,
    },
    /// Maximum likelihood estimation stopped without meeting the tolerance.
    NotConverged {
        /// Model name, e.g. `"bg_nbd"`.
        model: &'static str,
        /// Optimiser iterations taken.
        iterations: usize,
        /// Log-likelihood (total over customers) at the last parameters.
        log_likelihood: f64,
        /// Parameter that ran off towards 0 or infinity, if that is why.
        diverging: Option<&'static str>,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::InvalidInput { model, reason } => write!(f, "{model}: invalid input: {reason}"),
            FitError::InsufficientData { model, customers, usable, required, usable_means } => write!(
                f,
                "{model}: only {usable} of {customers} customers are {usable_means}; the model needs \
                 at least {required} to estimate its parameters. Try a longer history window, \
                 `time_unit: day` so purchases are not merged into coarser periods, or a larger \
                 customer segment"
            ),
            FitError::NotConverged { model, iterations, log_likelihood, diverging } => {
                write!(
                    f,
                    "{model}: maximum likelihood did not converge after {iterations} iterations \
                     (log-likelihood {log_likelihood:.4})"
                )?;
                if let Some(parameter) = diverging {
                    write!(
                        f,
                        "; parameter `{parameter}` runs off towards 0 or infinity, so the data \
                         do not support this model"
                    )?;
                }
                write!(
                    f,
                    ". Try another model (bg_nbd, mbg_nbd, pareto_nbd), a longer history window, \
                     or a larger max_iterations"
                )
            }
        }
    }
}

impl std::error::Error for FitError {}
