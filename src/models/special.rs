//! Special functions on plain `f64`: log-gamma, log-beta, digamma and the
//! Gauss hypergeometric function 2F1 in the two shapes the purchase models
//! need.
//!
//! 2F1 is the power series Σ_j (a)_j (b)_j / ((c)_j j!) z^j (Abramowitz &
//! Stegun 1972, 15.1.1), which Fader & Hardie (2005) "A Note on Deriving the
//! Pareto/NBD Model and Related Expressions", Section 1, introduce for the
//! Pareto/NBD likelihood. Summed naively it overflows for frequencies in the
//! hundreds (terms grow like (1 − z)^(−b) before they shrink) and converges
//! slowly as z → 1, so the models transform first (Euler's and Pfaff's
//! transformations, A&S 15.3.3–15.3.5) into series whose terms stay bounded:
//! 2F1(1, b; c; z) with c > b for Pareto/NBD, [1 − 2F1]/b for BG/NBD.

/// Relative size of the first neglected part of a series at which summing stops.
const SERIES_EPSILON: f64 = 1e-16;

/// Hard cap on series terms. Convergence is geometric with ratio → z, so the
/// cap is only reached for z within ~1e-5 of 1 (e.g. a horizon 10^5 times
/// longer than α + T), where the partial sum is returned.
const MAX_SERIES_TERMS: usize = 2_000_000;

/// ln Γ(x) for x > 0 (libm's `lgamma_r`, accurate to a few ulp).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma_r(x).0
}

/// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b) for a, b > 0 (A&S 6.2.2).
pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Digamma ψ(x) = d ln Γ(x) / dx for x > 0: the recurrence ψ(x) = ψ(x + 1) −
/// 1/x (A&S 6.3.5) lifts x to ≥ 10, where the asymptotic series (A&S 6.3.18)
/// truncated after the x^−14 term is accurate to ~1e-16.
pub(crate) fn digamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let tail = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
    shift + x.ln() - 0.5 * inv - tail
}

/// ln 2F1(1, b; c; z) and its partial derivatives, see [`UnitASeries`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LnHyp2f1 {
    /// ln 2F1(1, b; c; z).
    pub value: f64,
    /// ∂/∂b, ∂/∂c and ∂/∂z of the logarithm (0 when not asked for).
    pub d_b: f64,
    pub d_c: f64,
    pub d_z: f64,
}

/// 2F1(1, b; c; z) = Σ_n k_n z^n with k_n = (b)_n / (c)_n for 0 < b < c (A&S 15.1.1
/// with a = 1, where (1)_n = n! cancels), evaluated in log space at many z for one
/// (b, c).
///
/// This is the shape the Pareto/NBD likelihood takes after Euler's transformation
/// (A&S 15.3.3; see [`super::pareto_nbd`]), where one (b, c) serves every time t of
/// customers with the same frequency. The coefficients k_n are computed once, as far
/// as the largest z asks, so each evaluation costs a multiplication and an addition
/// per term instead of a division. Every ratio k_{n+1}/k_n = (b+n)/(c+n) is below 1,
/// so the terms u_n = k_n z^n never exceed 1 (no overflow for frequencies in the
/// hundreds) and the tail after a term u is below u·z/(1−z).
///
/// The derivatives are sums over the same terms: ∂u_n/∂b = u_n H_b(n), ∂u_n/∂c =
/// −u_n H_c(n) with H_b(n) = Σ_{j<n} 1/(b+j) (likewise H_c), and ∂u_n/∂z = n u_n / z.
/// Summing stops when the geometric bound of every remaining tail is below
/// [`SERIES_EPSILON`] of the sum. Convergence slows as z → 1 (about 37/(1 − z)
/// terms); [`MAX_SERIES_TERMS`] caps it.
#[derive(Clone, Debug)]
pub(crate) struct UnitASeries {
    b: f64,
    c: f64,
    derivatives: bool,
    /// k_n.
    k: Vec<f64>,
    /// H_b(n) and H_c(n), and 1/(b+n) and 1/(c+n) for the tail bounds (only
    /// with derivatives).
    h_b: Vec<f64>,
    h_c: Vec<f64>,
    inv_b: Vec<f64>,
    inv_c: Vec<f64>,
}

impl UnitASeries {
    pub(crate) fn new(b: f64, c: f64, derivatives: bool) -> UnitASeries {
        let one = |v: f64| if derivatives { vec![v] } else { Vec::new() };
        UnitASeries {
            b,
            c,
            derivatives,
            k: vec![1.0],
            h_b: one(0.0),
            h_c: one(0.0),
            inv_b: one(1.0 / b),
            inv_c: one(1.0 / c),
        }
    }

    /// Appends k_{n+1} (and its harmonic sums) for n the last index.
    fn extend(&mut self) {
        let n = (self.k.len() - 1) as f64;
        let last = self.k[self.k.len() - 1];
        self.k.push(last * (self.b + n) / (self.c + n));
        if self.derivatives {
            let (inv_b, inv_c) = (self.inv_b[self.inv_b.len() - 1], self.inv_c[self.inv_c.len() - 1]);
            self.h_b.push(self.h_b[self.h_b.len() - 1] + inv_b);
            self.h_c.push(self.h_c[self.h_c.len() - 1] + inv_c);
            self.inv_b.push(1.0 / (self.b + n + 1.0));
            self.inv_c.push(1.0 / (self.c + n + 1.0));
        }
    }

    /// ln 2F1(1, b; c; z) and, if the series was made with derivatives, its
    /// partial derivatives.
    pub(crate) fn ln_at(&mut self, z: f64) -> LnHyp2f1 {
        if !(self.b > 0.0 && self.c > self.b && (0.0..1.0).contains(&z)) {
            return LnHyp2f1 { value: f64::NAN, d_b: f64::NAN, d_c: f64::NAN, d_z: f64::NAN };
        }
        let odds = z / (1.0 - z);
        let spread = 1.0 / (1.0 - z);
        // power = z^n; sums of u_n, u_n H_b(n), u_n H_c(n) and n u_n / z.
        let (mut power, mut sum) = (1.0, 1.0);
        let (mut sum_b, mut sum_c, mut sum_z) = (0.0, 0.0, 0.0);
        for n in 1..=MAX_SERIES_TERMS {
            if n == self.k.len() {
                self.extend();
            }
            let previous_power = power;
            power *= z;
            let term = self.k[n] * power;
            sum += term;
            let tail = if self.derivatives {
                let (h_b, h_c) = (self.h_b[n], self.h_c[n]);
                sum_b += term * h_b;
                sum_c += term * h_c;
                sum_z += n as f64 * self.k[n] * previous_power;
                // Bounds of the tails with u_{n+j} ≤ u_n z^j: Σ_j u_{n+j} (H_b(n) +
                // j/(b+n)) for the b-sum (likewise c), Σ_j (n+j) u_{n+j}/z for the z-sum.
                let steps = spread * (self.inv_b[n] + self.inv_c[n]);
                term * (odds * (1.0 + h_b + h_c + steps) + (n as f64 + spread) * spread)
            } else {
                term * odds
            };
            if tail <= SERIES_EPSILON * sum {
                break;
            }
        }
        LnHyp2f1 { value: sum.ln(), d_b: sum_b / sum, d_c: -sum_c / sum, d_z: sum_z / sum }
    }
}

/// [1 − 2F1(a, b; c; w)] / b for w ≤ 0, a > 0, b > −1, c > 0; continuous at
/// b = 0.
///
/// This is the shape of the BG/NBD and MBG/NBD expectations: Fader, Hardie &
/// Lee (2005) eqs. (7) and (10) and Batislam, Denizel & Filiztekin (2007)
/// write them as (C/(a_BG − 1))·[1 − (1 − z)^A 2F1(A, B; C; z)], which after
/// Pfaff's transformation (A&S 15.3.4) is (C/b)·[1 − 2F1(A, b; C; w)] with
/// b = a_BG − 1 and w = z/(z − 1) ≤ 0. Computing 1 − 2F1 and dividing by b
/// directly loses every digit as a_BG → 1, so this applies Pfaff's
/// transformation in the other parameter, 2F1(a, b; c; w) = (1 − z)^b
/// 2F1(c − a, b; c; z) with z = w/(w − 1) ∈ [0, 1), and uses (b)_j = b (b+1)_{j−1}
/// to divide by b analytically:
/// [1 − 2F1]/b = −expm1(b·ln(1 − z))/b − (1 − z)^b Σ_{j≥1} (c−a)_j (b+1)_{j−1} / ((c)_j j!) z^j.
/// The remaining series has parameters that do not grow with the customer's
/// frequency (a = r + x enters only through c − a), so it cannot overflow.
pub(crate) fn one_minus_hyp2f1_over_b(a: f64, b: f64, c: f64, w: f64) -> f64 {
    if !(a > 0.0 && b > -1.0 && c > 0.0 && w <= 0.0) {
        return f64::NAN;
    }
    let z = -w / (1.0 - w);
    let ln_one_minus_z = -(-w).ln_1p();
    let head = if b == 0.0 { -ln_one_minus_z } else { -(b * ln_one_minus_z).exp_m1() / b };
    let top = c - a;
    let mut term = 1.0;
    let mut sum = 0.0;
    for n in 0..MAX_SERIES_TERMS {
        let n = n as f64;
        // Term j = n + 1 from term j = n: (top + n)(b + n) / ((c + n)(n + 1)) z,
        // with (b + 1)_{j−1} contributing (b + n) from j = 2 on and 1 for j = 1.
        let b_factor = if n == 0.0 { 1.0 } else { b + n };
        let ratio = (top + n) * b_factor / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        let bound = ratio.abs().max(z);
        if bound < 1.0 && term.abs() * bound <= SERIES_EPSILON * (sum.abs() + head.abs()) * (1.0 - bound) {
            break;
        }
    }
    head - (b * ln_one_minus_z).exp() * sum
}

/// The plain Gauss series of 2F1(a, b; c; z), summed to 5,000 terms: the literal
/// definition that tests compare the stable evaluations and the papers' formulas with,
/// where it converges fast (|z| well below 1).
#[cfg(test)]
pub(crate) fn hyp2f1_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 0..5000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct series Σ_j (a)_j (b)_j / ((c)_j j!) z^j without any transformation,
    /// as a reference for moderate arguments.
    fn naive_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let mut term = 1.0;
        let mut sum = 1.0;
        for n in 0..100_000 {
            let n = n as f64;
            term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
            sum += term;
            if term.abs() < 1e-17 * sum.abs() && n > 10.0 {
                break;
            }
        }
        sum
    }

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_and_beta_match_known_values() {
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-15));
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-15));
        // B(2, 3) = 1/12.
        assert!(close(ln_beta(2.0, 3.0), (1.0f64 / 12.0).ln(), 1e-14));
    }

    #[test]
    fn digamma_matches_known_values() {
        let euler_gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler_gamma).abs() < 1e-14);
        // ψ(1/2) = −γ − 2 ln 2 (A&S 6.3.3).
        assert!((digamma(0.5) + euler_gamma + 2.0 * 2f64.ln()).abs() < 1e-14);
        // ψ(x + 1) = ψ(x) + 1/x at a point above the recurrence threshold.
        assert!((digamma(25.3) - digamma(24.3) - 1.0 / 24.3).abs() < 1e-14);
        // Central difference of ln Γ.
        let h = 1e-5;
        let numeric = (ln_gamma(3.7 + h) - ln_gamma(3.7 - h)) / (2.0 * h);
        assert!((digamma(3.7) - numeric).abs() < 1e-9);
    }

    /// One evaluation of a fresh series.
    fn ln_hyp2f1_unit_a(b: f64, c: f64, z: f64, derivatives: bool) -> LnHyp2f1 {
        UnitASeries::new(b, c, derivatives).ln_at(z)
    }

    #[test]
    fn a_shared_series_gives_what_fresh_ones_give_in_any_order() {
        // The coefficients are extended as far as each z needs; the values do not
        // depend on which z came first.
        let zs = [0.2, 0.999, 0.0, 0.5, 0.9999, 0.3];
        for derivatives in [false, true] {
            let mut shared = UnitASeries::new(1.61, 3.1, derivatives);
            for z in zs.iter().chain(zs.iter().rev()) {
                assert_eq!(shared.ln_at(*z), ln_hyp2f1_unit_a(1.61, 3.1, *z, derivatives), "{z}");
            }
        }
    }

    #[test]
    fn ln_hyp2f1_unit_a_matches_closed_forms_and_direct_series() {
        for z in [1e-6f64, 0.3, 0.9, 0.999] {
            // 2F1(1, 1; 2; z) = −ln(1 − z)/z (A&S 15.1.3).
            let expected = -(-z).ln_1p() / z;
            assert!(close(ln_hyp2f1_unit_a(1.0, 2.0, z, false).value.exp(), expected, 1e-13), "z = {z}");
            // 2F1(1, 2; 3; z) = Σ 2 z^n/(n + 2) = 2(−ln(1 − z) − z)/z² (which cancels at small z).
            let expected = 2.0 * (-(-z).ln_1p() - z) / (z * z);
            assert!(close(ln_hyp2f1_unit_a(2.0, 3.0, z, true).value.exp(), expected, 1e-9), "z = {z}");
        }
        // The direct series, including the Pareto/NBD shape at frequency 500 near z = 1.
        for &(b, c, z) in &[(3.1, 4.1, 0.4), (0.3, 1.7, 0.8), (12.0, 13.0, 0.5), (0.5, 6.0, 0.6), (500.6, 502.2, 0.99)]
        {
            let expected = naive_hyp2f1(1.0, b, c, z).ln();
            let got = ln_hyp2f1_unit_a(b, c, z, true);
            assert!(close(got.value, expected, 1e-13), "{b} {c} {z}");
            assert_eq!(
                got.value,
                ln_hyp2f1_unit_a(b, c, z, false).value,
                "the value does not depend on the derivatives"
            );
        }
        let at_zero = ln_hyp2f1_unit_a(2.0, 5.0, 0.0, true);
        assert_eq!(at_zero, LnHyp2f1 { value: 0.0, d_b: 0.0, d_c: 0.0, d_z: 0.4 });
        assert!(ln_hyp2f1_unit_a(1.0, 2.0, 1.0, false).value.is_nan());
        assert!(ln_hyp2f1_unit_a(2.0, 2.0, 0.5, false).value.is_nan(), "c must exceed b");
    }

    #[test]
    fn ln_hyp2f1_unit_a_derivatives_match_central_differences() {
        // Small and large parameters, z from 0 to near 1 (where the series is long).
        for &(b, c, z) in &[
            (0.7, 1.9, 0.0),
            (0.7, 1.9, 0.35),
            (2.5, 2.6, 0.9),
            (0.55, 2.16, 0.999),
            (180.3, 181.2, 0.97),
            (1.61, 3.1, 0.9999),
            (0.05, 0.13, 0.999),
            (25.0, 37.0, 0.9997),
        ] {
            let got = ln_hyp2f1_unit_a(b, c, z, true);
            let f = |b: f64, c: f64, z: f64| ln_hyp2f1_unit_a(b, c, z, false).value;
            let h = 1e-6;
            let d_b = (f(b + h * b, c, z) - f(b - h * b, c, z)) / (2.0 * h * b);
            let d_c = (f(b, c + h * c, z) - f(b, c - h * c, z)) / (2.0 * h * c);
            let dz = h * (1.0 - z);
            let d_z = (f(b, c, z + dz) - f(b, c, (z - dz).max(0.0))) / (z + dz - (z - dz).max(0.0));
            for (name, analytic, numeric) in [("b", got.d_b, d_b), ("c", got.d_c, d_c), ("z", got.d_z, d_z)] {
                let scale = numeric.abs().max(1e-3);
                assert!((analytic - numeric).abs() < 1e-6 * scale, "∂{name} at {b} {c} {z}: {analytic} vs {numeric}");
            }
        }
    }

    #[test]
    fn one_minus_hyp2f1_over_b_matches_direct_difference() {
        for &(a, b, c, w) in
            &[(0.243, -0.207, 2.219, -0.2), (2.243, -0.207, 4.219, -0.7), (1.5, 0.8, 3.2, -0.5), (5.0, 2.0, 3.0, -0.3)]
        {
            let expected = (1.0 - naive_hyp2f1(a, b, c, w)) / b;
            assert!(close(one_minus_hyp2f1_over_b(a, b, c, w), expected, 1e-12));
        }
    }

    #[test]
    fn one_minus_hyp2f1_over_b_is_continuous_at_b_zero() {
        let at_zero = one_minus_hyp2f1_over_b(0.7, 0.0, 2.3, -3.0);
        let near = one_minus_hyp2f1_over_b(0.7, 1e-9, 2.3, -3.0);
        assert!(at_zero.is_finite());
        assert!(close(near, at_zero, 1e-8), "{near} vs {at_zero}");
        // w far below −1, where the untransformed series diverges.
        assert!(one_minus_hyp2f1_over_b(0.7, 0.2, 2.3, -1e4).is_finite());
    }
}
