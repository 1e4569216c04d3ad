//! Customers' purchase histories as the purchase models read them: an
//! [`Observation`] per customer, validated and merged into weighted cells of
//! identical (x, t_x, T) ([`Compressed`]), with the hash map that merges them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::error::FitError;

/// One customer's purchase history, in the model's time unit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observation {
    /// x: number of repeat purchases (purchase days after the first); a
    /// whole number.
    pub frequency: f64,
    /// t_x: time of the last purchase since the first (0 when x = 0).
    pub recency: f64,
    /// T: time from the first purchase to the end of the calibration period.
    pub age: f64,
}

/// Interns keys in order of first appearance, returning each key's index.
pub(crate) fn interner<K: Copy + Eq + Hash>(keys: &mut Vec<K>) -> impl FnMut(K) -> u32 + '_ {
    let mut index: FastMap<K, u32> = FastMap::default();
    move |key| {
        let next = keys.len() as u32;
        let i = *index.entry(key).or_insert(next);
        if i == next {
            keys.push(key);
        }
        i
    }
}

/// Customers with identical (x, t_x, T), merged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    /// Index into [`Compressed::frequencies`].
    pub x: u32,
    /// Index of t_x into [`Compressed::times`].
    pub recency: u32,
    /// Index of T into [`Compressed::times`].
    pub age: u32,
    /// Number of customers in the cell.
    pub weight: f64,
}

/// Validated observations as weighted unique cells over tables of unique
/// frequencies and times. Likelihood terms that depend only on x or only on
/// a time are computed once per table entry per evaluation.
#[derive(Clone, Debug)]
pub(crate) struct Compressed {
    pub frequencies: Vec<f64>,
    /// Customers per unique frequency.
    pub frequency_weights: Vec<f64>,
    /// Unique values of t_x and T together.
    pub times: Vec<f64>,
    /// Cells in the order of their (x, t_x, T), which keeps sums deterministic.
    pub cells: Vec<Cell>,
    pub customers: usize,
    pub repeat_buyers: usize,
}

impl Compressed {
    pub(crate) fn new(model: &'static str, observations: &[Observation]) -> Result<Compressed, FitError> {
        // Room for a cell per two customers, about what day-granular histories give,
        // so the map rarely grows.
        let mut cell_index: FastMap<(u64, u64, u64), u32> =
            FastMap::with_capacity_and_hasher(observations.len() / 2, Default::default());
        let mut frequency_index: FastMap<u64, u32> = FastMap::default();
        let mut time_index: FastMap<u64, u32> = FastMap::default();
        let mut data = Compressed {
            frequencies: Vec::new(),
            frequency_weights: Vec::new(),
            times: Vec::new(),
            cells: Vec::new(),
            customers: observations.len(),
            repeat_buyers: 0,
        };
        for (row, obs) in observations.iter().enumerate() {
            validate(model, row, obs)?;
            // Adding 0.0 turns −0.0 into +0.0 so both land in one cell.
            let (x, t_x, age) = (obs.frequency + 0.0, obs.recency + 0.0, obs.age + 0.0);
            if x > 0.0 {
                data.repeat_buyers += 1;
            }
            let next = data.cells.len() as u32;
            let slot = *cell_index.entry((x.to_bits(), t_x.to_bits(), age.to_bits())).or_insert(next);
            if slot != next {
                data.cells[slot as usize].weight += 1.0;
                continue;
            }
            let intern = |table: &mut Vec<f64>, index: &mut FastMap<u64, u32>, v: f64| {
                let next = table.len() as u32;
                let i = *index.entry(v.to_bits()).or_insert(next);
                if i == next {
                    table.push(v);
                }
                i
            };
            let xi = intern(&mut data.frequencies, &mut frequency_index, x);
            let recency = intern(&mut data.times, &mut time_index, t_x);
            let age = intern(&mut data.times, &mut time_index, age);
            data.cells.push(Cell { x: xi, recency, age, weight: 1.0 });
        }
        data.in_order_of_values();
        data.frequency_weights = vec![0.0; data.frequencies.len()];
        for cell in &data.cells {
            data.frequency_weights[cell.x as usize] += cell.weight;
        }
        Ok(data)
    }
}

impl Compressed {
    /// Puts frequencies, times and cells in the order of their values instead of
    /// first appearance, so the likelihood's sums (and so the fit) do not depend on
    /// the order the customers came in, which a query's partitioning decides.
    fn in_order_of_values(&mut self) {
        fn sorted(values: &mut Vec<f64>) -> Vec<u32> {
            let mut order: Vec<u32> = (0..values.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
            let mut new_index = vec![0; values.len()];
            for (new, &old) in order.iter().enumerate() {
                new_index[old as usize] = new as u32;
            }
            *values = order.iter().map(|&i| values[i as usize]).collect();
            new_index
        }
        let (frequencies, times) = (sorted(&mut self.frequencies), sorted(&mut self.times));
        for cell in &mut self.cells {
            cell.x = frequencies[cell.x as usize];
            (cell.recency, cell.age) = (times[cell.recency as usize], times[cell.age as usize]);
        }
        self.cells.sort_unstable_by_key(|c| (c.x, c.recency, c.age));
    }
}

/// Largest accepted frequency; beyond it the data are surely not repeat
/// purchase days (and cell indices stay within u32).
const MAX_FREQUENCY: f64 = 1e9;

fn validate(model: &'static str, row: usize, obs: &Observation) -> Result<(), FitError> {
    let invalid = |reason: String| Err(FitError::InvalidInput { model, reason: format!("row {row}: {reason}") });
    let Observation { frequency, recency, age } = *obs;
    for (name, value) in [("frequency", frequency), ("recency", recency), ("age", age)] {
        if !value.is_finite() || value < 0.0 {
            return invalid(format!("{name} is {value}; frequency, recency and age must be finite and non-negative"));
        }
    }
    if frequency.fract() != 0.0 || frequency > MAX_FREQUENCY {
        return invalid(format!("frequency {frequency} is not a whole number of repeat purchases"));
    }
    if recency > age {
        return invalid(format!(
            "recency {recency} is greater than age {age}; both must be measured from the \
             customer's first purchase, in the same time unit"
        ));
    }
    if frequency == 0.0 && recency != 0.0 {
        return invalid(format!(
            "recency is {recency} with frequency 0; recency is the time of the last repeat \
             purchase, so it must be 0 for customers without one"
        ));
    }
    Ok(())
}

/// `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A fixed-seed multiplicative hasher for `u64` keys, several times faster
/// than SipHash when merging a million customers. Keys come from our own
/// validated data, so hash flooding is not a concern; determinism is kept by
/// never iterating the maps.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        // splitmix64's finaliser: f64 bit patterns of round numbers have all
        // their entropy in the high bits, which the table index ignores.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(frequency: f64, recency: f64, age: f64) -> Observation {
        Observation { frequency, recency, age }
    }

    #[test]
    fn compression_merges_identical_customers() {
        let data = [obs(1.0, 2.0, 5.0), obs(0.0, 0.0, 5.0), obs(1.0, 2.0, 5.0), obs(0.0, -0.0, 5.0)];
        let c = Compressed::new("test", &data).unwrap();
        assert_eq!(c.cells.len(), 2);
        assert_eq!(c.cells.iter().map(|c| c.weight).collect::<Vec<_>>(), vec![2.0, 2.0]);
        assert_eq!(c.times, vec![0.0, 2.0, 5.0]);
        assert_eq!((c.customers, c.repeat_buyers), (4, 2));
        // In the order of the values, whatever order the customers came in.
        let reversed: Vec<Observation> = data.iter().rev().copied().collect();
        let r = Compressed::new("test", &reversed).unwrap();
        assert_eq!((r.frequencies.clone(), r.times.clone()), (c.frequencies.clone(), c.times.clone()));
        let cells = |c: &Compressed| c.cells.iter().map(|c| (c.x, c.recency, c.age, c.weight)).collect::<Vec<_>>();
        assert_eq!(cells(&r), cells(&c));
        assert_eq!(cells(&c), vec![(0, 0, 2, 2.0), (1, 1, 2, 2.0)]);
    }
}
