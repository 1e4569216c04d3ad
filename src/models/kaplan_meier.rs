//! The Kaplan–Meier product-limit estimator of a survival function under right
//! censoring (Kaplan & Meier 1958, "Nonparametric estimation from incomplete
//! observations", JASA 53(282), eq. (2)), with weighted observations so that a
//! histogram of identical durations counts like the individual rows it stands for.

/// A duration until the event (`observed`) or until censoring, with a weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub time: f64,
    pub observed: bool,
    pub weight: f64,
}

/// Ŝ(t) = Π_{t_i ≤ t} (1 − d_i / n_i) at each distinct event time t_i, where d_i is the
/// weight of events at t_i and n_i the weight still at risk just before t_i. Censorings
/// tied with events at t_i count as at risk at t_i (the usual convention, eq. (2)).
/// Returns the (time, survival) steps in increasing time.
pub fn survival_curve(observations: &[Observation]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<&Observation> = observations.iter().filter(|o| o.weight > 0.0).collect();
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
            survival *= 1.0 - events / at_risk;
            steps.push((time, survival));
        }
        at_risk -= leaving;
    }
    steps
}

/// The median survival time: the smallest event time at which Ŝ(t) ≤ 0.5, or `None`
/// when the curve never falls that low (fewer than half reached the event).
pub fn median(observations: &[Observation]) -> Option<f64> {
    survival_curve(observations).into_iter().find(|&(_, survival)| survival <= 0.5).map(|(time, _)| time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(time: f64, observed: bool) -> Observation {
        Observation { time, observed, weight: 1.0 }
    }

    #[test]
    fn hand_computed_curve_with_ties_and_censoring() {
        // Times 1, 2, 2+, 3, 4+, 5: at 1: 1-1/6 = 0.8333; at 2 (the censoring at 2 is still
        // at risk): ×(1-1/5) = 0.6667; at 3 (3 at risk): ×(1-1/3) = 0.4444; at 5: 0.
        let data = [obs(1.0, true), obs(2.0, true), obs(2.0, false), obs(3.0, true), obs(4.0, false), obs(5.0, true)];
        let curve = survival_curve(&data);
        let expected = [(1.0, 5.0 / 6.0), (2.0, 2.0 / 3.0), (3.0, 4.0 / 9.0), (5.0, 0.0)];
        assert_eq!(curve.len(), expected.len());
        for ((t, s), (et, es)) in curve.iter().zip(expected) {
            assert_eq!(*t, et);
            assert!((s - es).abs() < 1e-12, "{s} vs {es}");
        }
        assert_eq!(median(&data), Some(3.0));
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
        assert_eq!(median(&weighted), Some(2.0));
    }

    #[test]
    fn median_is_none_when_survival_stays_above_half() {
        let data = [obs(1.0, true), obs(5.0, false), obs(6.0, false)];
        assert_eq!(median(&data), None);
        assert_eq!(median(&[]), None);
    }
}
