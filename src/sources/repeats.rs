//! Finding the rows that repeat an earlier row's value: the `unique` check of a
//! source, run over millions of keys (order ids) on every load.
//!
//! A hash table of millions of keys is mostly cache misses. Rows are first bucketed by
//! the top bits of their value's hash, keeping row order within a bucket, and each
//! bucket is checked on its own with a table small enough to stay in the CPU's cache.
//! Values are compared only when their hashes are equal, so one code path serves
//! every column type.

use datafusion::arrow::array::{Array, ArrayRef, DynComparator, make_comparator};
use datafusion::arrow::compute::SortOptions;
use datafusion::common::HashMap as FastMap;
use datafusion::common::Result;
use datafusion::common::hash_map::Entry;
use datafusion::common::hash_utils::{RandomState, create_hashes};

/// Rows per bucket (on average): its table of hashes fits in a core's L2 cache.
const BUCKET_ROWS: usize = 16 * 1024;

/// A row of a column in batches: (batch, row within the batch).
pub type Row = (usize, usize);

/// The rows of `batches` (one column, batch after batch) whose value an earlier row
/// already had, each with the first row that had the value. Nulls repeat nothing.
/// Pairs come in no particular order.
pub fn repeats(batches: &[&ArrayRef]) -> Result<Vec<(Row, Row)>> {
    let mut starts = Vec::with_capacity(batches.len());
    let mut rows = 0;
    for batch in batches {
        starts.push(rows);
        rows += batch.len();
    }
    let mut hashes = vec![0; rows];
    let state = RandomState::with_seed(0);
    for (batch, &start) in batches.iter().zip(&starts) {
        create_hashes([batch.as_ref()], &state, &mut hashes[start..start + batch.len()])?;
    }
    repeats_by_hash(batches, &starts, &hashes)
}

/// `repeats` given each row's hash; `starts` are the batches' first positions.
fn repeats_by_hash(batches: &[&ArrayRef], starts: &[usize], hashes: &[u64]) -> Result<Vec<(Row, Row)>> {
    let rows = hashes.len();

    // Non-null rows in bucket order (a counting sort on the hash's top bits), each with
    // its hash, so that a bucket is then read in one sequential pass.
    let bits = (rows / BUCKET_ROWS).next_power_of_two().trailing_zeros();
    let bucket = |hash: u64| if bits == 0 { 0 } else { (hash >> (64 - bits)) as usize };
    let non_null = || {
        batches.iter().zip(starts).flat_map(|(batch, &start)| {
            let nulls = batch.logical_nulls();
            (0..batch.len())
                .filter(move |&row| nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row)))
                .map(move |row| start + row)
        })
    };
    let mut ends = vec![0; (1 << bits) + 1];
    for position in non_null() {
        ends[bucket(hashes[position]) + 1] += 1;
    }
    for b in 1..ends.len() {
        ends[b] += ends[b - 1];
    }
    let mut ordered = vec![(0, 0); ends[ends.len() - 1]];
    let mut next = ends.clone();
    for position in non_null() {
        let hash = hashes[position];
        let slot = &mut next[bucket(hash)];
        ordered[*slot] = (hash, position);
        *slot += 1;
    }

    let mut values = Values { batches, starts, comparators: FastMap::default() };
    let mut found = Vec::new();
    let mut first: FastMap<u64, usize> = FastMap::with_capacity_and_hasher(2 * BUCKET_ROWS, Default::default());
    // Distinct values sharing a hash: vanishingly rare, but they must not pass as repeats.
    let mut colliding: FastMap<u64, Vec<usize>> = FastMap::default();
    for bucket in ends.windows(2) {
        first.clear();
        colliding.clear();
        for &(hash, position) in &ordered[bucket[0]..bucket[1]] {
            let earlier = match first.entry(hash) {
                Entry::Vacant(slot) => {
                    slot.insert(position);
                    continue;
                }
                Entry::Occupied(slot) => *slot.get(),
            };
            if values.equal(earlier, position)? {
                found.push((values.locate(position), values.locate(earlier)));
                continue;
            }
            let others = colliding.entry(hash).or_default();
            let mut same = None;
            for &other in others.iter() {
                if values.equal(other, position)? {
                    same = Some(other);
                    break;
                }
            }
            match same {
                Some(other) => found.push((values.locate(position), values.locate(other))),
                None => others.push(position),
            }
        }
    }
    Ok(found)
}

/// The values at positions across batches, compared for equality.
struct Values<'a> {
    batches: &'a [&'a ArrayRef],
    starts: &'a [usize],
    /// One comparator per pair of batches, made when first needed.
    comparators: FastMap<(usize, usize), DynComparator>,
}

impl Values<'_> {
    fn locate(&self, position: usize) -> Row {
        let batch = self.starts.partition_point(|&start| start <= position) - 1;
        (batch, position - self.starts[batch])
    }

    fn equal(&mut self, a: usize, b: usize) -> Result<bool> {
        let ((batch_a, row_a), (batch_b, row_b)) = (self.locate(a), self.locate(b));
        let compare = match self.comparators.entry((batch_a, batch_b)) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => slot.insert(make_comparator(
                self.batches[batch_a].as_ref(),
                self.batches[batch_b].as_ref(),
                SortOptions::default(),
            )?),
        };
        Ok(compare(row_a, row_b).is_eq())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringViewArray};

    use super::*;

    fn sorted(mut pairs: Vec<(Row, Row)>) -> Vec<(Row, Row)> {
        pairs.sort();
        pairs
    }

    #[test]
    fn later_rows_point_to_the_first_across_batches_and_nulls_repeat_nothing() {
        let a: ArrayRef =
            Arc::new(StringViewArray::from(vec![Some("o1"), None, Some("o2"), Some("a-much-longer-order-id")]));
        let b: ArrayRef =
            Arc::new(StringViewArray::from(vec![None, Some("o2"), Some("a-much-longer-order-id"), Some("o2")]));
        let found = sorted(repeats(&[&a, &b]).unwrap());
        assert_eq!(found, vec![((1, 1), (0, 2)), ((1, 2), (0, 3)), ((1, 3), (0, 2))]);
    }

    #[test]
    fn values_sharing_a_hash_are_told_apart() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![7, 8, 9, 8]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![9, 10]));
        // Every row has the same hash: only equal values may count as repeats.
        let found = sorted(repeats_by_hash(&[&a, &b], &[0, 4], &[42; 6]).unwrap());
        assert_eq!(found, vec![((0, 3), (0, 1)), ((1, 0), (0, 2))]);
    }

    #[test]
    fn agrees_with_a_plain_hash_map_over_many_buckets() {
        // 200,000 keys in 7 batches, every 13th a repeat of a key 5 rows earlier.
        let keys: Vec<i64> = (0..200_000).map(|i| if i % 13 == 12 { i - 5 } else { i }).collect();
        let batches: Vec<ArrayRef> =
            keys.chunks(30_000).map(|chunk| Arc::new(Int64Array::from(chunk.to_vec())) as ArrayRef).collect();
        let refs: Vec<&ArrayRef> = batches.iter().collect();
        let at = |position: usize| (position / 30_000, position % 30_000);
        let mut first = std::collections::HashMap::new();
        let mut expected = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            match first.get(key) {
                Some(&earlier) => expected.push((at(position), at(earlier))),
                None => {
                    first.insert(*key, position);
                }
            }
        }
        assert_eq!(expected.len(), 200_000 / 13);
        assert_eq!(sorted(repeats(&refs).unwrap()), sorted(expected));
    }
}
