//! Special functions on plain `f64`: log-gamma, log-beta, digamma and the
//! Gauss hypergeometric function 2F1 in the two shapes the purchase models
//! need.
//!
//! 2F1 is the power series Σ_j (a)_j (b)_j / ((c)_j j!) z^j (Abramowitz &
//! Stegun 1972, 15.1.1), which Fader & Hardie (2005) "A Note on Deriving the
//! Pareto/NBD Model and Related Expressions", Section 1, introduce for the
//! Pareto/NBD likelihood. Summed naively it overflows for frequencies in the
//! hundreds (terms grow like (1 − z)^(−b) before they shrink) and converges
//! slowly as z → 1, so both entry points below transform first (Euler's and
//! Pfaff's transformations, A&S 15.3.3–15.3.5) into a series whose
//! coefficients stay bounded, and sum in a rescaled form.

/// Relative size of the first neglected part of a series at which summing stops.
const SERIES_EPSILON: f64 = 1e-16;

/// Hard cap on series terms. Convergence is geometric with ratio → z, so the
/// cap is only reached for z within ~1e-5 of 1 (e.g. a horizon 10^5 times
/// longer than α + T), where the partial sum is returned.
const MAX_SERIES_TERMS: usize = 2_000_000;

/// Partial sums are divided by this whenever they exceed it, the exponent
/// being carried in log space, so sums far beyond f64 range stay finite.
const RESCALE: f64 = 1e200;

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

/// ln 2F1(a, b; c; z) for a, b, c > 0 and 0 ≤ z < 1, where every series term
/// is positive (A&S 15.1.1); NaN outside that domain.
///
/// When c − a − b < 0 the function diverges like (1 − z)^(c−a−b) as z → 1,
/// so Euler's transformation 2F1(a, b; c; z) = (1 − z)^(c−a−b) 2F1(c − a,
/// c − b; c; z) (A&S 15.3.3) moves that factor out of the series; this is the
/// case of the Pareto/NBD likelihood (Fader & Hardie 2005 note, Section 3),
/// where c = a + 1 and the transformed series has term ratio below z, so
/// frequencies in the hundreds neither overflow nor slow the sum down.
pub(crate) fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(a > 0.0 && b > 0.0 && c > 0.0 && (0.0..1.0).contains(&z)) {
        return f64::NAN;
    }
    let excess = c - a - b;
    if excess < 0.0 && c - a > 0.0 && c - b > 0.0 {
        excess * (-z).ln_1p() + ln_positive_series(c - a, c - b, c, z)
    } else {
        ln_positive_series(a, b, c, z)
    }
}

/// ln Σ_j (a)_j (b)_j / ((c)_j j!) z^j for a, b, c > 0, 0 ≤ z < 1.
fn ln_positive_series(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut log_scale = 0.0;
    for n in 0..MAX_SERIES_TERMS {
        let n = n as f64;
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        if sum > RESCALE {
            sum /= RESCALE;
            term /= RESCALE;
            log_scale += RESCALE.ln();
        }
        // Later ratios approach z, so bound the tail by a geometric series
        // with the larger of the two; the current term alone would stop far
        // too early when z is close to 1.
        let bound = ratio.max(z);
        if bound < 1.0 && term * bound <= SERIES_EPSILON * sum * (1.0 - bound) {
            break;
        }
    }
    log_scale + sum.ln()
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

    #[test]
    fn ln_hyp2f1_matches_closed_forms_and_direct_series() {
        // 2F1(1, 1; 2; z) = −ln(1 − z)/z (A&S 15.1.3).
        for z in [1e-6f64, 0.3, 0.9, 0.999] {
            let expected = -(-z).ln_1p() / z;
            assert!(close(ln_hyp2f1(1.0, 1.0, 2.0, z), expected.ln(), 1e-13), "z = {z}");
        }
        // 2F1(a, b; b; z) = (1 − z)^(−a) (A&S 15.1.8), via the Euler branch.
        let z: f64 = 0.97;
        assert!(close(ln_hyp2f1(2.5, 4.0, 4.0, z), -2.5 * (1.0 - z).ln(), 1e-13));
        // Direct series at moderate z, both branches.
        for &(a, b, c, z) in
            &[(3.1, 1.6, 4.1, 0.4), (0.7, 0.3, 1.7, 0.8), (12.0, 11.5, 13.0, 0.5), (2.0, 0.5, 6.0, 0.6)]
        {
            let expected = naive_hyp2f1(a, b, c, z).ln();
            assert!(close(ln_hyp2f1(a, b, c, z), expected, 1e-13), "{a} {b} {c} {z}");
        }
        assert_eq!(ln_hyp2f1(1.0, 1.0, 2.0, 0.0), 0.0);
        assert!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0).is_nan());
    }

    #[test]
    fn ln_hyp2f1_stays_finite_for_huge_parameters() {
        // Frequency 500 in the Pareto/NBD shape 2F1(r+s+x, r+x; r+s+x+1; z):
        // the untransformed terms would reach ~(1 − z)^(−500) = 10^500.
        let value = ln_hyp2f1(501.2, 500.6, 502.2, 0.99);
        assert!(value.is_finite() && value > 0.0);
        // Agrees with the rescaled direct series (no Euler transformation).
        let direct = ln_positive_series(501.2, 500.6, 502.2, 0.99);
        assert!(close(value, direct, 1e-12), "{value} vs {direct}");
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
