//! Numbering a sample's orders 1, 2, … by time (ties by customer chunk, then row), as an
//! order system would, without holding every order in memory.
//!
//! A first pass over the chunks writes each order's key (its second, chunk and row; 16
//! bytes) to a file per span of time; each span's keys are then sorted and numbered in
//! turn, and the numbers written to a file per group of chunks. While the rows are
//! written, chunk after chunk, each group's numbers are read back once. Memory holds one
//! span or one group, whatever the sample's size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use tempfile::NamedTempFile;

use super::generate::{Chunks, Transaction};

/// Chunks whose order numbers are read back at once.
const CHUNKS_PER_GROUP: usize = 64;

/// Customers whose orders share a span of time, on average (a few orders each).
const CUSTOMERS_PER_SPAN: usize = 50_000;

/// At most this many span files are open at once.
const MAX_SPANS: usize = 512;

/// The order numbers of a sample, read back group by group.
pub struct OrderIds {
    /// One file of (chunk, row, number) per group of chunks.
    groups: Vec<NamedTempFile>,
    per_group: usize,
    /// The group read last, by chunk: the number of each of its rows.
    loaded: Option<(usize, HashMap<usize, Vec<u64>>)>,
}

impl OrderIds {
    /// Numbers the orders of every chunk of `chunks`, generated on `threads` threads,
    /// with scratch files in `dir`.
    pub fn number(chunks: &Chunks<'_>, threads: usize, dir: &Path) -> std::io::Result<OrderIds> {
        let spans = (chunks.customers() / CUSTOMERS_PER_SPAN).clamp(1, MAX_SPANS);
        Self::number_in(chunks, threads, dir, spans, CHUNKS_PER_GROUP)
    }

    /// [`Self::number`] with `spans` spans of time and groups of `per_group` chunks.
    fn number_in(
        chunks: &Chunks<'_>,
        threads: usize,
        dir: &Path,
        spans: usize,
        per_group: usize,
    ) -> std::io::Result<OrderIds> {
        let (start, seconds) = chunks.window();
        let width = (seconds / spans as i64).max(1);
        let mut span_files = (0..spans).map(|_| scratch(dir)).collect::<std::io::Result<Vec<_>>>()?;
        let mut failure = None;
        chunks.each(0..chunks.count(), threads, |chunk, data| {
            for (row, transaction) in data.transactions.iter().enumerate() {
                let second = (transaction.order_ts - start).num_seconds();
                let span = ((second / width) as usize).min(spans - 1);
                let (_, writer) = &mut span_files[span];
                let written = writer
                    .write_all(&second.to_le_bytes())
                    .and_then(|()| writer.write_all(&(chunk as u32).to_le_bytes()))
                    .and_then(|()| writer.write_all(&(row as u32).to_le_bytes()));
                if let Err(error) = written {
                    failure = Some(error);
                    return false;
                }
            }
            true
        });
        if let Some(error) = failure {
            return Err(error);
        }
        let groups = chunks.count().div_ceil(per_group);
        let mut group_files = (0..groups).map(|_| scratch(dir)).collect::<std::io::Result<Vec<_>>>()?;
        let mut next: u64 = 1;
        for (file, writer) in span_files {
            drop(writer);
            let mut keys: Vec<(i64, u32, u32)> = read_all(&file)?
                .chunks_exact(16)
                .map(|k| (le_i64(&k[..8]), le_u32(&k[8..12]), le_u32(&k[12..])))
                .collect();
            keys.sort_unstable();
            for (_, chunk, row) in keys {
                let (_, writer) = &mut group_files[chunk as usize / per_group];
                writer.write_all(&chunk.to_le_bytes())?;
                writer.write_all(&row.to_le_bytes())?;
                writer.write_all(&next.to_le_bytes())?;
                next += 1;
            }
        }
        let groups = group_files
            .into_iter()
            .map(|(file, mut writer)| writer.flush().map(|()| file))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(OrderIds { groups, per_group, loaded: None })
    }

    /// Sets the `order_id` of the orders of chunk `chunk`.
    pub fn assign(&mut self, chunk: usize, transactions: &mut [Transaction]) -> std::io::Result<()> {
        let group = chunk / self.per_group;
        if self.loaded.as_ref().is_none_or(|(loaded, _)| *loaded != group) {
            let mut numbers: HashMap<usize, Vec<u64>> = HashMap::new();
            for entry in read_all(&self.groups[group])?.chunks_exact(16) {
                let (chunk, row, number) =
                    (le_u32(&entry[..4]) as usize, le_u32(&entry[4..8]) as usize, le_u64(&entry[8..]));
                let rows = numbers.entry(chunk).or_default();
                if rows.len() <= row {
                    rows.resize(row + 1, 0);
                }
                rows[row] = number;
            }
            self.loaded = Some((group, numbers));
        }
        let numbers = self.loaded.as_ref().and_then(|(_, numbers)| numbers.get(&chunk));
        for (row, transaction) in transactions.iter_mut().enumerate() {
            transaction.order_id = numbers.and_then(|n| n.get(row).copied()).unwrap_or_default();
        }
        Ok(())
    }
}

/// A scratch file and a buffered writer to it.
fn scratch(dir: &Path) -> std::io::Result<(NamedTempFile, BufWriter<File>)> {
    let file = NamedTempFile::new_in(dir)?;
    let writer = BufWriter::with_capacity(64 * 1024, file.reopen()?);
    Ok((file, writer))
}

fn read_all(file: &NamedTempFile) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    BufReader::new(file.reopen()?).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn le_i64(bytes: &[u8]) -> i64 {
    i64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_data::generate::{SampleSpec, generate};

    #[test]
    fn numbers_follow_time_as_numbering_all_orders_at_once_does() {
        let spec = SampleSpec {
            customers: 20_000,
            seed: 11,
            end_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            years: 2,
        };
        let whole = generate(&spec);
        let chunks = Chunks::new(&spec);
        assert!(chunks.count() > 4, "several chunks and groups");
        let dir = tempfile::tempdir().unwrap();
        let mut ids = OrderIds::number_in(&chunks, 3, dir.path(), 7, 2).unwrap();
        let mut numbered = Vec::new();
        for chunk in 0..chunks.count() {
            let mut data = chunks.chunk(chunk);
            ids.assign(chunk, &mut data.transactions).unwrap();
            numbered.extend(data.transactions);
        }
        assert_eq!(numbered, whole.transactions);
    }
}
