//! The Kaplan–Meier product-limit estimator of a survival function under right
//! censoring (Kaplan & Meier 1958, "Nonparametric estimation from incomplete
//! observations", JASA 53(282), 457–481, the product-limit estimate), with weighted observations so
//! that a histogram of identical durations counts like the individual rows it
//! stands for.
//!
//! Every function takes either [`Observation`]s or plain `(duration,
//! event_observed)` pairs (weight 1).

/// A duration until the event (`observed`) or until censoring, with a weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub time: f64,
    pub observed: bool,
    pub weight: f64,
}

impl From<(f64, bool)> for Observation {
    /// `(duration, event_observed)` with weight 1.
    fn from((time, observed): (f64, bool)) -> Self {
        Observation { time, observed, weight: 1.0 }
    }
}

/// Ŝ(t) = Π_{t_i ≤ t} (1 − d_i / n_i) at each distinct event time t_i, where d_i is the
/// weight of events at t_i and n_i the weight still at risk just before t_i (Kaplan &
/// Meier 1958, the product-limit estimate). Censorings tied with events at t_i count as at risk at t_i:
/// events are taken to happen before censorings at equal times, the paper's convention.
/// Returns the (time, survival) steps in increasing time.
///
/// Observations with a non-finite time or a weight that is not a positive
/// finite number carry no information and are ignored.
pub fn survival_curve<O: Copy + Into<Observation>>(observations: &[O]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<Observation> = observations
        .iter()
        .map(|&o| o.into())
        .filter(|o| o.time.is_finite() && o.weight.is_finite() && o.weight > 0.0)
        .collect();
    sorted.sort_by(|a, b| a.time.total_cmp(&b.time));
    let mut at_risk: f64 = sorted.iter().map(|o| o.weight).sum();
    let mut survival = 1.0;
    let mut steps = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let time = sorted[i].time;
        let (mut events, mut leaving) = (0.0, 0.0);
        while i < sorted.len() && sorted[i].time == time {
            if sorted[i].observed {
                events += sorted[i].weight;
            }
            leaving += sorted[i].weight;
            i += 1;
        }
        if events > 0.0 {
            // max(0): with fractional weights rounding could leave a hair below zero.
            survival *= (1.0 - events / at_risk).max(0.0);
            steps.push((time, survival));
        }
        at_risk -= leaving;
    }
    steps
}

/// Ŝ(t) of [`survival_curve`]: 1 before the first event time, right-continuous steps.
pub fn survival_at<O: Copy + Into<Observation>>(observations: &[O], t: f64) -> f64 {
    let steps = survival_curve(observations);
    let after = steps.partition_point(|&(time, _)| time <= t);
    if after == 0 { 1.0 } else { steps[after - 1].1 }
}

/// The median survival time: the smallest event time at which Ŝ(t) ≤ 0.5, or `None`
/// when the curve never falls that low (fewer than half reached the event).
pub fn median<O: Copy + Into<Observation>>(observations: &[O]) -> Option<f64> {
    // The product of factors rounds: 11/12·10/11·9/10·7/9·6/7 is 0.5000000000000001 in
    // f64, yet exactly one half, which counts as reached.
    const ROUNDING: f64 = 1e-12;
    survival_curve(observations).into_iter().find(|&(_, survival)| survival <= 0.5 + ROUNDING).map(|(time, _)| time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(time: f64, observed: bool) -> Observation {
        Observation { time, observed, weight: 1.0 }
    }

    fn assert_curve(curve: &[(f64, f64)], expected: &[(f64, f64)]) {
        assert_eq!(curve.len(), expected.len(), "{curve:?}");
        for ((t, s), (et, es)) in curve.iter().zip(expected) {
            assert_eq!(t, et);
            assert!((s - es).abs() < 1e-12, "t={t}: {s} vs {es}");
        }
    }

    #[test]
    fn hand_computed_curve_with_ties_and_censoring() {
        // Times 1, 2, 2+, 3, 4+, 5: at 1: 1-1/6 = 0.8333; at 2 (the censoring at 2 is still
        // at risk): ×(1-1/5) = 0.6667; at 3 (3 at risk): ×(1-1/3) = 0.4444; at 5: 0.
        let data = [obs(1.0, true), obs(2.0, true), obs(2.0, false), obs(3.0, true), obs(4.0, false), obs(5.0, true)];
        assert_curve(&survival_curve(&data), &[(1.0, 5.0 / 6.0), (2.0, 2.0 / 3.0), (3.0, 4.0 / 9.0), (5.0, 0.0)]);
        assert_eq!(median(&data), Some(3.0));
    }

    #[test]
    fn hand_computed_pairs_with_several_tied_events() {
        // 1 (event), 2 (event, event, censored), 3+, 4 (event), 5+, 6 (event):
        // t=1: 8 at risk → 7/8; t=2: 7 at risk (the censoring at 2 included), 2 events
        // → 7/8 · 5/7 = 5/8; t=4: 3 at risk → 5/8 · 2/3 = 5/12; t=6: 1 at risk → 0.
        let data =
            [(2.0, true), (1.0, true), (2.0, false), (4.0, true), (2.0, true), (3.0, false), (6.0, true), (5.0, false)];
        assert_curve(&survival_curve(&data), &[(1.0, 7.0 / 8.0), (2.0, 5.0 / 8.0), (4.0, 5.0 / 12.0), (6.0, 0.0)]);
        assert_eq!(survival_at(&data, 0.5), 1.0);
        assert_eq!(survival_at(&data, 1.0), 7.0 / 8.0);
        assert!((survival_at(&data, 3.9) - 5.0 / 8.0).abs() < 1e-15);
        assert_eq!(survival_at(&data, 100.0), 0.0);
        assert_eq!(median(&data), Some(4.0));
        // Exactly 0.5 counts: Ŝ = 3/4, 1/2, … at 1, 2, ….
        assert_eq!(median(&[(1.0, true), (2.0, true), (3.0, true), (4.0, true)]), Some(2.0));
    }

    #[test]
    fn weights_count_like_repeated_rows() {
        let repeated = [obs(2.0, true), obs(2.0, true), obs(7.0, false), obs(9.0, true)];
        let weighted = [
            Observation { time: 2.0, observed: true, weight: 2.0 },
            Observation { time: 7.0, observed: false, weight: 1.0 },
            Observation { time: 9.0, observed: true, weight: 1.0 },
        ];
        assert_eq!(survival_curve(&repeated), survival_curve(&weighted));
        // A Vec, as the km_median aggregate passes it.
        let rows: Vec<Observation> = weighted.to_vec();
        assert_eq!(median(&rows), Some(2.0));
    }

    #[test]
    fn a_survival_of_exactly_one_half_after_rounding_is_the_median() {
        // Regression: 12 at risk; one event at 1, 2 and 3, two at 4, one at 5, six censored
        // at 9: S(5) = 11/12 · 10/11 · 9/10 · 7/9 · 6/7 = 1/2, computed as 0.5000000000000001.
        let mut data = vec![(1.0, true), (2.0, true), (3.0, true), (4.0, true), (4.0, true), (5.0, true)];
        data.extend([(9.0, false); 6]);
        assert_eq!(median(&data), Some(5.0));
    }

    #[test]
    fn median_is_none_when_survival_stays_above_half() {
        let data = [obs(1.0, true), obs(5.0, false), obs(6.0, false)];
        assert_eq!(median(&data), None);
        assert_eq!(median(&[(1.0, true), (2.0, false), (3.0, false), (4.0, false)]), None);
        assert_eq!(median::<Observation>(&[]), None);
        assert_eq!(survival_at::<(f64, bool)>(&[], 3.0), 1.0);
    }

    #[test]
    fn ignores_observations_without_information() {
        let clean = [(1.0, true), (2.0, true), (3.0, false)];
        let noisy = [(1.0, true), (f64::NAN, true), (2.0, true), (f64::INFINITY, false), (3.0, false)];
        assert_eq!(survival_curve(&noisy), survival_curve(&clean));
        let zero_weight = [obs(1.0, true), Observation { time: 0.5, observed: true, weight: 0.0 }];
        assert_eq!(survival_curve(&zero_weight), vec![(1.0, 0.0)]);
    }
}
