//! Finding the rows that repeat an earlier row's value: the `unique` check of a
//! source, run over millions of keys (order ids) on every load, as the rows stream by.
//!
//! Only each row's hash and position are kept, 16 bytes a row, in memory up to a
//! limit and beyond it in bucket files on disk (by the hash's top bits), so the check
//! needs bounded memory whatever the number of rows. At the end, rows are grouped by
//! hash one bucket at a time; groups of more than one row are the candidates. Values
//! are then compared only within candidate groups (fetched by position from the stored
//! rows: in clean data there are none), so distinct values sharing a hash never pass
//! as repeats, and one code path serves every column type.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::{Result, ScalarValue};

/// Bucket files once the pairs no longer fit their memory share.
const BUCKETS: usize = 64;

/// A row's position among the rows checked.
pub type Position = u64;

/// The hashes and positions of one column's non-null values, as rows stream by.
pub struct Hashes {
    state: RandomState,
    pairs: Vec<(u64, Position)>,
    /// Pairs held in memory before they go to the bucket files.
    limit: usize,
    buckets: Option<Vec<(tempfile::NamedTempFile, BufWriter<File>)>>,
    spool_dir: std::path::PathBuf,
    scratch: Vec<u64>,
}

impl Hashes {
    /// Hashes holding at most `limit_bytes` in memory, spilling to `spool_dir` beyond.
    pub fn new(limit_bytes: usize, spool_dir: &Path) -> Self {
        Hashes {
            state: RandomState::with_seed(0),
            pairs: Vec::new(),
            limit: (limit_bytes / 16).max(1024),
            buckets: None,
            spool_dir: spool_dir.to_path_buf(),
            scratch: Vec::new(),
        }
    }

    /// Adds `values`, whose rows are at positions `first`, `first + 1`, …
    pub fn add(&mut self, values: &ArrayRef, first: Position) -> Result<()> {
        self.scratch.clear();
        self.scratch.resize(values.len(), 0);
        create_hashes([values.as_ref()], &self.state, &mut self.scratch)?;
        let nulls = values.logical_nulls();
        for (row, &hash) in self.scratch.iter().enumerate() {
            if nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row)) {
                self.pairs.push((hash, first + row as Position));
            }
        }
        if self.pairs.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Moves the pairs in memory to the bucket files.
    fn spill(&mut self) -> Result<()> {
        if self.buckets.is_none() {
            let mut buckets = Vec::with_capacity(BUCKETS);
            for _ in 0..BUCKETS {
                let file = tempfile::NamedTempFile::new_in(&self.spool_dir)?;
                let writer = BufWriter::new(file.reopen()?);
                buckets.push((file, writer));
            }
            self.buckets = Some(buckets);
        }
        let buckets = self.buckets.as_mut().expect("created above");
        for &(hash, position) in &self.pairs {
            let (_, writer) = &mut buckets[bucket(hash)];
            writer.write_all(&hash.to_le_bytes())?;
            writer.write_all(&position.to_le_bytes())?;
        }
        self.pairs.clear();
        Ok(())
    }

    /// The groups of positions whose values share a hash, each in order of position.
    pub fn candidates(mut self) -> Result<Vec<Vec<Position>>> {
        if self.buckets.is_none() {
            return Ok(groups(&mut self.pairs));
        }
        self.spill()?;
        let mut buckets = self.buckets.take().expect("spilled");
        let mut found = Vec::new();
        for (file, mut writer) in buckets.drain(..) {
            writer.flush()?;
            drop(writer);
            let mut bytes = Vec::new();
            BufReader::new(file.reopen()?).read_to_end(&mut bytes)?;
            let mut pairs: Vec<(u64, Position)> = bytes
                .chunks_exact(16)
                .map(|pair| {
                    let (hash, position) = pair.split_at(8);
                    (
                        u64::from_le_bytes(hash.try_into().expect("8 bytes")),
                        u64::from_le_bytes(position.try_into().expect("8 bytes")),
                    )
                })
                .collect();
            found.extend(groups(&mut pairs));
        }
        Ok(found)
    }
}

fn bucket(hash: u64) -> usize {
    (hash >> (64 - BUCKETS.trailing_zeros())) as usize
}

/// Runs of equal hashes longer than one, positions in order.
fn groups(pairs: &mut [(u64, Position)]) -> Vec<Vec<Position>> {
    pairs.sort_unstable();
    pairs
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
        .map(|run| run.iter().map(|&(_, position)| position).collect())
        .collect()
}

/// The repeats within candidate `groups`, given the value at each of their positions:
/// (repeating position, the first position with that value), in no particular order.
pub fn repeats(groups: &[Vec<Position>], value: impl Fn(Position) -> Option<ScalarValue>) -> Vec<(Position, Position)> {
    let mut found = Vec::new();
    for group in groups {
        let values: Vec<Option<ScalarValue>> = group.iter().map(|&position| value(position)).collect();
        for (index, &position) in group.iter().enumerate() {
            let Some(here) = &values[index] else { continue };
            if let Some(first) = (0..index).find(|&earlier| values[earlier].as_ref() == Some(here)) {
                found.push((position, group[first]));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringViewArray};

    use super::*;

    /// The repeats of `batches` (one column, batch after batch) found by `Hashes` with
    /// room for `limit_bytes` in memory.
    fn found(batches: &[ArrayRef], limit_bytes: usize) -> Vec<(Position, Position)> {
        let spool = tempfile::tempdir().unwrap();
        let mut hashes = Hashes::new(limit_bytes, spool.path());
        let mut first = 0;
        for batch in batches {
            hashes.add(batch, first).unwrap();
            first += batch.len() as Position;
        }
        let all: Vec<ScalarValue> = batches
            .iter()
            .flat_map(|batch| (0..batch.len()).map(|row| ScalarValue::try_from_array(batch, row).unwrap()))
            .collect();
        let mut pairs = repeats(&hashes.candidates().unwrap(), |position| Some(all[position as usize].clone()));
        pairs.sort();
        pairs
    }

    #[test]
    fn later_rows_point_to_the_first_across_batches_and_nulls_repeat_nothing() {
        let a: ArrayRef =
            Arc::new(StringViewArray::from(vec![Some("o1"), None, Some("o2"), Some("a-much-longer-order-id")]));
        let b: ArrayRef =
            Arc::new(StringViewArray::from(vec![None, Some("o2"), Some("a-much-longer-order-id"), Some("o2")]));
        assert_eq!(found(&[a, b], 1 << 20), vec![(5, 2), (6, 3), (7, 2)]);
    }

    #[test]
    fn values_sharing_a_hash_are_told_apart() {
        // Every position in one group, as if all values had the same hash.
        let values = [7, 8, 9, 8, 9, 10];
        let group = vec![(0..6).collect::<Vec<Position>>()];
        let mut pairs = repeats(&group, |position| Some(ScalarValue::Int64(Some(values[position as usize]))));
        pairs.sort();
        assert_eq!(pairs, vec![(3, 1), (4, 2)]);
    }

    #[test]
    fn agrees_with_a_plain_hash_map_in_memory_and_spilled_to_buckets() {
        // 200,000 keys in 7 batches, every 13th a repeat of a key 5 rows earlier.
        let keys: Vec<i64> = (0..200_000).map(|i| if i % 13 == 12 { i - 5 } else { i }).collect();
        let batches: Vec<ArrayRef> =
            keys.chunks(30_000).map(|chunk| Arc::new(Int64Array::from(chunk.to_vec())) as ArrayRef).collect();
        let mut first = HashMap::new();
        let mut expected = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            match first.get(key) {
                Some(&earlier) => expected.push((position as Position, earlier as Position)),
                None => {
                    first.insert(*key, position);
                }
            }
        }
        expected.sort();
        assert_eq!(expected.len(), 200_000 / 13);
        assert_eq!(found(&batches, 64 << 20), expected, "in memory");
        assert_eq!(found(&batches, 64 << 10), expected, "through bucket files");
    }
}
