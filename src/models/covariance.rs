//! The uncertainty of maximum likelihood estimates: standard errors and
//! parameter draws from the estimates' asymptotic normal distribution.
//!
//! The models are fitted over log-parameters θ = ln φ (see [`super::optimize`]),
//! so the Hessian comes in log space. With f the mean negative log-likelihood
//! per customer, n customers and D = diag(φ), the observed information in the
//! natural parameters is I(φ) = n · D⁻¹ (∇²_θ f − diag ∇_θ f) D⁻¹ — the
//! change of variables for second derivatives; the gradient term vanishes at
//! an exact optimum. The asymptotic covariance of φ̂ is I(φ)⁻¹ (e.g. Casella &
//! Berger 2002, "Statistical Inference", Section 10.1.3), so the standard error
//! of φ_i is φ_i · sqrt(C_ii) with C = [n (∇²_θ f − diag ∇_θ f)]⁻¹, the
//! covariance of the log-parameters by the delta method. This is what the
//! `lifetimes` package reports as `se(coef)`.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::optimize::{self, Objective};

/// A Cholesky pivot at or below this share of the largest diagonal element
/// counts as zero: the information matrix is then singular to working
/// precision, and standard errors would be noise.
const SINGULAR: f64 = 1e-13;

/// Asymptotic covariance C of a fit's log-parameters, the inverse of the
/// observed information in log space (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct LogCovariance {
    dim: usize,
    /// C, row-major.
    matrix: Vec<f64>,
    /// Lower Cholesky factor L of C (C = L Lᵀ), row-major; draws are θ̂ + L z.
    factor: Vec<f64>,
}

impl LogCovariance {
    /// C = [n (H − diag g)]⁻¹ from the Hessian `hessian` (row-major) and the
    /// gradient `gradient` of the mean negative log-likelihood over
    /// log-parameters at the optimum, for `customers` = n. `None` when the
    /// information matrix is not positive definite (the optimum is not a
    /// proper maximum, or a parameter is not identified by the data).
    pub(crate) fn at_optimum(hessian: &[f64], gradient: &[f64], customers: f64) -> Option<LogCovariance> {
        let dim = gradient.len();
        let mut information: Vec<f64> = hessian.iter().map(|h| h * customers).collect();
        for (i, g) in gradient.iter().enumerate() {
            information[i * dim + i] -= g * customers;
        }
        let inverse = invert_positive_definite(&information, dim)?;
        LogCovariance::from_values(dim, inverse)
    }

    /// C at the minimum `theta` of `objective` (a mean negative log-likelihood
    /// over `customers` customers), with the Hessian from
    /// [`optimize::hessian`]; `None` when it is not positive definite.
    pub(crate) fn at_minimum<O: Objective>(objective: &O, theta: &[f64], customers: usize) -> Option<LogCovariance> {
        let mut gradient = vec![0.0; theta.len()];
        objective.evaluate(theta, Some(&mut gradient));
        LogCovariance::at_optimum(&optimize::hessian(objective, theta), &gradient, customers as f64)
    }

    /// A covariance given as `dim` × `dim` values, row-major (as [`values`]
    /// returns them). `None` unless the matrix is finite, symmetric and
    /// positive definite.
    ///
    /// [`values`]: LogCovariance::values
    pub fn from_values(dim: usize, matrix: Vec<f64>) -> Option<LogCovariance> {
        if matrix.len() != dim * dim || matrix.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let symmetric = (0..dim).all(|i| {
            (0..i).all(|j| {
                let (a, b) = (matrix[i * dim + j], matrix[j * dim + i]);
                (a - b).abs() <= 1e-9 * (a.abs() + b.abs())
            })
        });
        if !symmetric {
            return None;
        }
        let factor = cholesky(&matrix, dim)?;
        Some(LogCovariance { dim, matrix, factor })
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// C, row-major.
    pub fn values(&self) -> &[f64] {
        &self.matrix
    }

    /// Standard errors in the natural scale, φ_i · sqrt(C_ii), for the
    /// estimates `params` (φ, in the order of the covariance's rows).
    pub fn std_errors(&self, params: &[f64]) -> Vec<f64> {
        params.iter().enumerate().map(|(i, p)| p * self.matrix[i * self.dim + i].sqrt()).collect()
    }

    /// A parameter vector drawn from the asymptotic normal distribution of the
    /// log-parameters around ln `params`: φ* = exp(ln φ̂ + L z), z standard
    /// normal from `rng`. Drawing in log space keeps every parameter positive.
    pub fn draw<R: Rng>(&self, params: &[f64], rng: &mut R) -> Vec<f64> {
        let z: Vec<f64> = (0..self.dim).map(|_| StandardNormal.sample(rng)).collect();
        (0..self.dim)
            .map(|i| {
                let shift: f64 = (0..=i).map(|j| self.factor[i * self.dim + j] * z[j]).sum();
                (params[i].ln() + shift).exp()
            })
            .collect()
    }
}

/// Lower Cholesky factor of the symmetric `m` (row-major, `dim` × `dim`),
/// or `None` when a pivot is not clearly positive (Golub & Van Loan 2013,
/// "Matrix Computations", Algorithm 4.2.1).
fn cholesky(m: &[f64], dim: usize) -> Option<Vec<f64>> {
    let largest = (0..dim).map(|i| m[i * dim + i].abs()).fold(0.0, f64::max);
    let mut l = vec![0.0; dim * dim];
    for j in 0..dim {
        let pivot = m[j * dim + j] - (0..j).map(|k| l[j * dim + k] * l[j * dim + k]).sum::<f64>();
        // NaN pivots fail this test too.
        if pivot.is_nan() || pivot <= SINGULAR * largest {
            return None;
        }
        l[j * dim + j] = pivot.sqrt();
        for i in j + 1..dim {
            let sum: f64 = (0..j).map(|k| l[i * dim + k] * l[j * dim + k]).sum();
            l[i * dim + j] = (m[i * dim + j] - sum) / l[j * dim + j];
        }
    }
    Some(l)
}

/// The inverse of a symmetric positive definite matrix through its Cholesky
/// factor (solving L Lᵀ X = I column by column), symmetrised; `None` when it
/// is not positive definite.
fn invert_positive_definite(m: &[f64], dim: usize) -> Option<Vec<f64>> {
    let l = cholesky(m, dim)?;
    let mut inverse = vec![0.0; dim * dim];
    for column in 0..dim {
        // Forward substitution L y = e_column, then back substitution Lᵀ x = y.
        let mut y = vec![0.0; dim];
        for i in 0..dim {
            let known: f64 = (0..i).map(|k| l[i * dim + k] * y[k]).sum();
            y[i] = (if i == column { 1.0 } else { 0.0 } - known) / l[i * dim + i];
        }
        let mut x = vec![0.0; dim];
        for i in (0..dim).rev() {
            let known: f64 = (i + 1..dim).map(|k| l[k * dim + i] * x[k]).sum();
            x[i] = (y[i] - known) / l[i * dim + i];
        }
        for (i, value) in x.into_iter().enumerate() {
            inverse[i * dim + column] = value;
        }
    }
    for i in 0..dim {
        for j in 0..i {
            let mean = 0.5 * (inverse[i * dim + j] + inverse[j * dim + i]);
            inverse[i * dim + j] = mean;
            inverse[j * dim + i] = mean;
        }
    }
    Some(inverse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn inverts_a_positive_definite_matrix() {
        let m = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let inverse = invert_positive_definite(&m, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let product: f64 = (0..3).map(|k| m[i * 3 + k] * inverse[k * 3 + j]).sum();
                assert!((product - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14, "{i} {j}: {product}");
            }
        }
    }

    #[test]
    fn singular_and_indefinite_matrices_have_no_covariance() {
        // Rank one: a parameter the data do not identify.
        assert!(LogCovariance::at_optimum(&[1.0, 1.0, 1.0, 1.0], &[0.0, 0.0], 100.0).is_none());
        // A saddle point, not a maximum of the likelihood.
        assert!(LogCovariance::at_optimum(&[1.0, 0.0, 0.0, -0.5], &[0.0, 0.0], 100.0).is_none());
        assert!(LogCovariance::at_optimum(&[f64::NAN, 0.0, 0.0, 1.0], &[0.0, 0.0], 100.0).is_none());
        assert!(LogCovariance::from_values(2, vec![1.0, 0.5, 0.4, 1.0]).is_none(), "not symmetric");
    }

    #[test]
    fn standard_errors_are_in_the_natural_scale() {
        // Mean Hessian diag(2, 8) over 50 customers: C = diag(1/100, 1/400).
        let c = LogCovariance::at_optimum(&[2.0, 0.0, 0.0, 8.0], &[0.0, 0.0], 50.0).unwrap();
        assert_eq!(c.values(), &[0.01, 0.0, 0.0, 0.0025]);
        let se = c.std_errors(&[3.0, 10.0]);
        assert!((se[0] - 0.3).abs() < 1e-15 && (se[1] - 0.5).abs() < 1e-15, "{se:?}");
        // The gradient term: H − diag g with g = (0.5, 0) is diag(1.5, 8).
        let c = LogCovariance::at_optimum(&[2.0, 0.0, 0.0, 8.0], &[0.5, 0.0], 50.0).unwrap();
        assert!((c.values()[0] - 1.0 / 75.0).abs() < 1e-15);
    }

    #[test]
    fn draws_follow_the_log_normal_and_are_reproducible() {
        // ln φ ~ N(ln (2, 5), C) with correlation 0.6.
        let c = LogCovariance::from_values(2, vec![0.04, 0.012, 0.012, 0.01]).unwrap();
        let draws_with = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20_000).map(|_| c.draw(&[2.0, 5.0], &mut rng)).collect::<Vec<_>>()
        };
        let draws = draws_with(7);
        assert_eq!(draws, draws_with(7));
        assert_ne!(draws[0], draws_with(8)[0]);
        let logs: Vec<(f64, f64)> = draws.iter().map(|d| (d[0].ln(), d[1].ln())).collect();
        let n = logs.len() as f64;
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| logs.iter().map(f).sum::<f64>() / n;
        let (m0, m1) = (mean(&|d| d.0), mean(&|d| d.1));
        assert!((m0 - 2f64.ln()).abs() < 0.005 && (m1 - 5f64.ln()).abs() < 0.003, "{m0} {m1}");
        let v0 = mean(&|d| (d.0 - m0).powi(2));
        let v01 = mean(&|d| (d.0 - m0) * (d.1 - m1));
        assert!((v0 / 0.04 - 1.0).abs() < 0.05 && (v01 / 0.012 - 1.0).abs() < 0.08, "{v0} {v01}");
        assert!(draws.iter().all(|d| d.iter().all(|p| *p > 0.0)));
    }
}
