//! A small deterministic quasi-Newton minimiser (BFGS; Nocedal & Wright
//! 2006, "Numerical Optimization", Algorithm 6.1, eq. 6.17 inverse-Hessian
//! update) for the 3–4 log-scale parameters of the models in this module.
//!
//! Stopping rules, checked in this order after every accepted step:
//! * diverged: a log-parameter moved more than [`MAX_LOG_DISTANCE`] from its
//!   start (a factor of ~9e6). The likelihood then flattens out as that
//!   parameter runs off to 0 or ∞, so the gradient can look converged while
//!   the estimate sits on the boundary of the parameter space; this is
//!   checked first so such fits are never reported as converged;
//! * converged: the largest gradient component is at most `tolerance`
//!   (objectives here are mean negative log-likelihoods per customer, so the
//!   tolerance does not scale with the number of customers), or at most
//!   [`ROUNDING_FLOOR`] × `tolerance` where not even a steepest-descent step
//!   lowers the value any more (its rounding is what is left);
//! * not converged: `max_iterations` accepted steps were taken, or the line
//!   search could not decrease the objective any further.
//!
//! There is no randomness and no dependence on thread count: the same inputs
//! give bit-identical results.

/// How far (in log space) a parameter may move from its data-derived start:
/// e^16 ≈ 8.9e6. Starts are scaled to the data (time and money units), so
/// legitimate estimates stay orders of magnitude inside this.
pub(crate) const MAX_LOG_DISTANCE: f64 = 16.0;

/// Settings for maximum likelihood estimation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// Maximum optimiser iterations (accepted BFGS steps).
    pub max_iterations: usize,
    /// Convergence threshold on the largest gradient component of the mean
    /// negative log-likelihood per customer with respect to the
    /// log-parameters.
    pub tolerance: f64,
    /// Threads for likelihood sums; results are identical for any value.
    pub threads: usize,
    /// Return a fit whose optimiser hit `max_iterations` or stalled (with
    /// [`PurchaseFit::converged`](super::PurchaseFit::converged) false) instead of
    /// [`FitError::NotConverged`](super::FitError::NotConverged). Fits whose parameters run off to 0 or ∞
    /// are errors regardless.
    pub allow_unconverged: bool,
    /// Compute the covariance of the estimates ([`PurchaseFit::std_errors`](super::PurchaseFit::std_errors)):
    /// a Hessian, 8 gradients' worth of work. Comparisons that only predict,
    /// such as the backtest, turn it off.
    pub standard_errors: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_iterations: 500,
            tolerance: 1e-7,
            threads: crate::threads::available().min(8),
            allow_unconverged: false,
            standard_errors: true,
        }
    }
}

/// Longest first trial step in any coordinate (log space: a factor e² ≈ 7.4),
/// so one poor curvature estimate cannot throw parameters into overflow.
const MAX_STEP: f64 = 2.0;

/// Armijo sufficient-decrease constant (Nocedal & Wright eq. 3.4).
const ARMIJO: f64 = 1e-4;

/// How far above the tolerance a gradient may stay and the minimum still count as
/// converged, when no step lowers the value any more in floating point: the value of a
/// likelihood summed over many customers is rounded at about 1e-15 of its size, and on
/// an ill-conditioned ridge (Gamma-Gamma's p and γ) that hides gradients of a few 1e-7.
const ROUNDING_FLOOR: f64 = 100.0;

/// Step halvings before the line search gives up.
const MAX_BACKTRACKS: usize = 60;

/// A function to minimise over log-parameters, with its analytic gradient: the
/// line search asks for the gradient at every trial point, since it comes at
/// about the cost of the value.
pub(crate) trait Objective {
    /// Objective value at `theta`; fills `gradient` when one is passed.
    /// Returns a non-finite value where the objective is undefined.
    fn evaluate(&self, theta: &[f64], gradient: Option<&mut [f64]>) -> f64;
}

/// Why the minimiser stopped without meeting the gradient tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stall {
    IterationLimit,
    /// Index of the parameter that ran off towards 0 or ∞.
    Diverged(usize),
    LineSearch,
}

/// Result of [`minimize`].
#[derive(Clone, Debug)]
pub(crate) struct Minimum {
    pub theta: Vec<f64>,
    pub value: f64,
    pub iterations: usize,
    /// `None` when the gradient tolerance was met.
    pub stall: Option<Stall>,
}

/// Minimises `objective` from `start` with BFGS and a backtracking Armijo line
/// search. Returns `None` if the objective is not finite at `start`.
pub(crate) fn minimize<O: Objective>(
    objective: &O,
    start: &[f64],
    max_iterations: usize,
    tolerance: f64,
) -> Option<Minimum> {
    let n = start.len();
    let mut theta = start.to_vec();
    let mut gradient = vec![0.0; n];
    let mut value = objective.evaluate(&theta, Some(&mut gradient));
    if !value.is_finite() || gradient.iter().any(|g| !g.is_finite()) {
        return None;
    }
    let mut inverse_hessian = identity(n);
    let mut first_update = true;
    let mut iterations = 0;
    let mut trial = vec![0.0; n];
    let mut trial_gradient = vec![0.0; n];
    let stall = loop {
        if let Some(i) = (0..n).position(|i| (theta[i] - start[i]).abs() > MAX_LOG_DISTANCE) {
            break Some(Stall::Diverged(i));
        }
        if max_abs(&gradient) <= tolerance {
            break None;
        }
        if iterations >= max_iterations {
            break Some(Stall::IterationLimit);
        }
        let mut direction = mat_vec(&inverse_hessian, &gradient);
        direction.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            // The curvature estimate went bad: restart from steepest descent.
            inverse_hessian = identity(n);
            first_update = true;
            direction = gradient.iter().map(|g| -g).collect();
            slope = dot(&gradient, &direction);
        }
        let longest = max_abs(&direction);
        let mut step = if longest > MAX_STEP { MAX_STEP / longest } else { 1.0 };
        let mut accepted = None;
        for _ in 0..MAX_BACKTRACKS {
            for i in 0..n {
                trial[i] = theta[i] + step * direction[i];
            }
            let trial_value = objective.evaluate(&trial, Some(&mut trial_gradient));
            // Strictly lower: where rounding hides the Armijo margin, an equal value
            // would pass it without any progress.
            if trial_value.is_finite() && trial_value < value && trial_value <= value + ARMIJO * step * slope {
                accepted = Some(trial_value);
                break;
            }
            step *= 0.5;
        }
        let Some(new_value) = accepted else {
            if first_update {
                // Not even steepest descent lowers the value: where the gradient is
                // already within ROUNDING_FLOOR of the tolerance, rounding in the
                // value, not the distance to the optimum, is what stops the search.
                break (max_abs(&gradient) > ROUNDING_FLOOR * tolerance).then_some(Stall::LineSearch);
            }
            // The curvature estimate leads nowhere: restart from steepest descent
            // (Nocedal & Wright Section 6.1), and stall only if that fails too.
            inverse_hessian = identity(n);
            first_update = true;
            continue;
        };
        if trial_gradient.iter().any(|g| !g.is_finite()) {
            break Some(Stall::LineSearch);
        }
        let s: Vec<f64> = (0..n).map(|i| trial[i] - theta[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| trial_gradient[i] - gradient[i]).collect();
        let sy = dot(&s, &y);
        // Skip updates that would break positive definiteness (Nocedal &
        // Wright Section 6.1 discusses the curvature condition s·y > 0).
        if sy > 1e-12 * norm(&s) * norm(&y) {
            if first_update {
                // Scale the initial guess so its size matches the observed
                // curvature (Nocedal & Wright eq. 6.20).
                let scale = sy / dot(&y, &y);
                inverse_hessian = identity(n);
                inverse_hessian.iter_mut().for_each(|row| row.iter_mut().for_each(|h| *h *= scale));
                first_update = false;
            }
            bfgs_update(&mut inverse_hessian, &s, &y, sy);
        }
        theta.copy_from_slice(&trial);
        gradient.copy_from_slice(&trial_gradient);
        value = new_value;
        iterations += 1;
    };
    Some(Minimum { theta, value, iterations, stall })
}

/// Central-difference gradient, which tests check the analytic ones against.
/// The step 1e-5 in log space balances truncation (∝ h²) against rounding
/// (∝ ε/h) for objectives of order one.
#[cfg(test)]
pub(crate) fn central_difference<F: Fn(&[f64]) -> f64>(f: F, theta: &[f64], gradient: &mut [f64]) {
    const H: f64 = 1e-5;
    let mut shifted = theta.to_vec();
    for i in 0..theta.len() {
        shifted[i] = theta[i] + H;
        let up = f(&shifted);
        shifted[i] = theta[i] - H;
        let down = f(&shifted);
        shifted[i] = theta[i];
        gradient[i] = (up - down) / (2.0 * H);
    }
}

/// Hessian of `objective` at `theta`, row-major, by central differences of the
/// analytic gradient (Nocedal & Wright 2006, Section 8.1, eq. 8.7 applied to each
/// gradient component), symmetrised: 2 gradients per parameter. A step of 1e-4
/// in log space keeps truncation (∝ h²) and rounding (∝ ε/h) far below 1e-8.
pub(crate) fn hessian<O: Objective>(objective: &O, theta: &[f64]) -> Vec<f64> {
    const H: f64 = 1e-4;
    let (n, h) = (theta.len(), H);
    let mut shifted = theta.to_vec();
    let (mut up, mut down) = (vec![0.0; n], vec![0.0; n]);
    let mut result = vec![0.0; n * n];
    for j in 0..n {
        shifted[j] = theta[j] + h;
        objective.evaluate(&shifted, Some(&mut up));
        shifted[j] = theta[j] - h;
        objective.evaluate(&shifted, Some(&mut down));
        shifted[j] = theta[j];
        for i in 0..n {
            result[i * n + j] = (up[i] - down[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (result[i * n + j] + result[j * n + i]);
            result[i * n + j] = mean;
            result[j * n + i] = mean;
        }
    }
    result
}

/// The Hessian from values alone, which tests check [`hessian`] against: the four-point second difference
/// [f(θ+hᵢ+hⱼ) − f(θ+hᵢ−hⱼ) − f(θ−hᵢ+hⱼ) + f(θ−hᵢ−hⱼ)] / 4h² (Abramowitz &
/// Stegun 1972, 25.3.26; on the diagonal the steps add up to 2h), row-major.
/// For objectives of order one a step of 1e-3 balances truncation (∝ h²)
/// against rounding (∝ ε/h²).
#[cfg(test)]
pub(crate) fn value_differences<O: Objective>(objective: &O, theta: &[f64], h: f64) -> Vec<f64> {
    let n = theta.len();
    let f = |i: usize, si: f64, j: usize, sj: f64| {
        let mut t = theta.to_vec();
        t[i] += si * h;
        t[j] += sj * h;
        objective.evaluate(&t, None)
    };
    let mut result = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let value =
                (f(i, 1.0, j, 1.0) - f(i, 1.0, j, -1.0) - f(i, -1.0, j, 1.0) + f(i, -1.0, j, -1.0)) / (4.0 * h * h);
            result[i * n + j] = value;
            result[j * n + i] = value;
        }
    }
    result
}

/// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ with ρ = 1/(yᵀs) (Nocedal & Wright eq. 6.17).
fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let rho = 1.0 / sy;
    let hy = mat_vec(h, y);
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i][j] += -rho * (s[i] * hy[j] + hy[i] * s[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect()
}

fn mat_vec(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    m.iter().map(|row| dot(row, v)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana function, the classic hard case for line searches.
    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn evaluate(&self, t: &[f64], gradient: Option<&mut [f64]>) -> f64 {
            let (x, y) = (t[0], t[1]);
            if let Some(g) = gradient {
                g[0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
                g[1] = 200.0 * (y - x * x);
            }
            (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
        }
    }

    /// 3(x−1)² + (y+2)² + xy, whose Hessian is [[6, 1], [1, 2]] everywhere.
    struct Quadratic;

    impl Objective for Quadratic {
        fn evaluate(&self, t: &[f64], gradient: Option<&mut [f64]>) -> f64 {
            if let Some(g) = gradient {
                g[0] = 6.0 * (t[0] - 1.0) + t[1];
                g[1] = 2.0 * (t[1] + 2.0) + t[0];
            }
            3.0 * (t[0] - 1.0).powi(2) + (t[1] + 2.0).powi(2) + t[0] * t[1]
        }
    }

    /// Decreases forever as its only parameter grows.
    struct Runaway;

    impl Objective for Runaway {
        fn evaluate(&self, t: &[f64], gradient: Option<&mut [f64]>) -> f64 {
            if let Some(g) = gradient {
                g[0] = -(-t[0]).exp();
            }
            (-t[0]).exp()
        }
    }

    /// A value that no step changes (as rounding makes a flat enough likelihood
    /// look) with a gradient that says otherwise.
    struct Rounded {
        value: f64,
        slope: f64,
    }

    impl Objective for Rounded {
        fn evaluate(&self, _: &[f64], gradient: Option<&mut [f64]>) -> f64 {
            if let Some(g) = gradient {
                g.fill(self.slope);
            }
            self.value
        }
    }

    #[test]
    fn a_value_no_step_lowers_stops_the_search_converged_only_near_the_tolerance() {
        let stall = |value: f64, slope: f64| {
            let minimum = minimize(&Rounded { value, slope }, &[0.0, 0.0], 500, 1e-7).unwrap();
            (minimum.iterations, minimum.stall)
        };
        // Within the rounding floor of the tolerance: converged, no steps taken.
        assert_eq!(stall(4.85, 5e-7), (0, None));
        assert_eq!(stall(0.0, 5e-7), (0, None));
        // Far above it: a line-search stall, not 500 steps that move nothing.
        assert_eq!(stall(4.85, 1e-3), (0, Some(Stall::LineSearch)));
        assert_eq!(stall(0.0, 1e-3), (0, Some(Stall::LineSearch)));
    }

    #[test]
    fn minimizes_rosenbrock() {
        let m = minimize(&Rosenbrock, &[-1.2, 1.0], 500, 1e-9).unwrap();
        assert_eq!(m.stall, None);
        assert!((m.theta[0] - 1.0).abs() < 1e-6 && (m.theta[1] - 1.0).abs() < 1e-6, "{m:?}");
    }

    #[test]
    fn minimizes_a_quadratic() {
        let m = minimize(&Quadratic, &[0.0, 0.0], 200, 1e-8).unwrap();
        assert_eq!(m.stall, None);
        // Stationary point of 3(x−1)² + (y+2)² + xy: 6x − 6 + y = 0, 2y + 4 + x = 0.
        let (x, y) = (16.0 / 11.0, -30.0 / 11.0);
        assert!((m.theta[0] - x).abs() < 1e-7 && (m.theta[1] - y).abs() < 1e-7, "{m:?}");
    }

    #[test]
    fn reports_iteration_limit_and_divergence() {
        let m = minimize(&Rosenbrock, &[-1.2, 1.0], 3, 1e-9).unwrap();
        assert_eq!((m.stall, m.iterations), (Some(Stall::IterationLimit), 3));
        let m = minimize(&Runaway, &[0.0], 10_000, 1e-30).unwrap();
        assert!(matches!(m.stall, Some(Stall::Diverged(0)) | Some(Stall::LineSearch)), "{m:?}");
    }

    #[test]
    fn hessian_matches_the_analytic_one() {
        // Rosenbrock at (0.5, 1): ∂²f/∂x² = 2 − 400(y − 3x²), ∂²f/∂x∂y = −400x, ∂²f/∂y² = 200.
        let h = hessian(&Rosenbrock, &[0.5, 1.0]);
        let want = [2.0 - 400.0 * (1.0 - 0.75), -200.0, -200.0, 200.0];
        for (got, want) in h.iter().zip(want) {
            assert!((got - want).abs() < 1e-6 * want.abs(), "{h:?}");
        }
        // The quadratic, from gradients and from values alone.
        for h in [hessian(&Quadratic, &[0.3, -1.0]), value_differences(&Quadratic, &[0.3, -1.0], 1e-3)] {
            for (got, want) in h.iter().zip([6.0, 1.0, 1.0, 2.0]) {
                assert!((got - want).abs() < 1e-6, "{h:?}");
            }
        }
    }

    #[test]
    fn is_deterministic() {
        let a = minimize(&Rosenbrock, &[-1.2, 1.0], 500, 1e-9).unwrap();
        let b = minimize(&Rosenbrock, &[-1.2, 1.0], 500, 1e-9).unwrap();
        assert_eq!(a.theta, b.theta);
        assert_eq!(a.iterations, b.iterations);
    }
}
