//! Loading a source as its files stream in: each batch is typed, checked and stored (in
//! memory or on disk, as the memory budget allows) before the next is read, so a load
//! holds a few batches, not the source. Every row ends up loaded or counted as bad.
//!
//! The `unique` check needs all rows: as batches go by, only each value's hash and the
//! row's position are kept (see `repeats`); repeats are confirmed by value at the end
//! and, with `on_bad_rows: quarantine`, taken out of the stored rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::prelude::{SessionContext, col};
use futures::StreamExt;

use super::bad::{BadRow, BadRows, record_json};
use super::checks::Checks;
use super::read::{self, Malformed, Piece, RawChunk, ReadOptions};
use super::repeats::{self, Hashes, Position};
use super::{InputFile, LoadedSource, SourceReport, declared_schema, list_files, schema, typing};
use crate::config::{Format, OnBadRows, Source};
use crate::error::{Error, Result};
use crate::results::{ResultWriter, Results, Stored};
use crate::storage::Location;

/// Loads `source` from `location`, storing its rows in `results`.
pub async fn load(
    ctx: &SessionContext,
    source: &Source,
    location: &Location,
    timezone: Tz,
    results: &Results,
) -> Result<LoadedSource> {
    let mut files = list_files(source, location).await?;
    let options = ReadOptions {
        batch_rows: results.budget().batch_rows(),
        spool_dir: results.spill_dir().into(),
        decoders: results.threads(),
    };
    let read_files = files.clone();
    let mut loading = Loading::new(ctx, source, &read_files, timezone, results)?;
    let mut rows_read = 0;
    let mut row_groups = Vec::with_capacity(files.len());
    for (index, file) in files.iter_mut().enumerate() {
        let mut reader = read::open(location, file, source, &options);
        while let Some(piece) = reader.next().await {
            match piece {
                Piece::Rows(chunk) => loading.chunk(index, chunk).await?,
                Piece::Malformed(malformed) => loading.malformed(index, malformed).await?,
            }
        }
        let summary = reader.finish().await?;
        rows_read += summary.rows_read;
        file.rows_unknown = summary.rows_unknown;
        row_groups.push(summary.row_group_starts);
    }
    let (rows, quarantine, bad_rows) = loading.finish(location, &options, &row_groups).await?;
    let rows_loaded = rows.rows;
    let rows_quarantined = rows_read - rows_loaded;
    debug_assert_eq!(rows_quarantined, bad_rows, "every bad row is counted once");
    let status = if files.is_empty() { "absent" } else { "loaded" }.to_string();
    let report = SourceReport {
        url: location.to_string(),
        status,
        files,
        rows_read,
        rows_loaded,
        rows_quarantined,
        spilled_bytes: rows.spilled_bytes(),
        freshness: None,
        volume: None,
    };
    Ok(LoadedSource { rows, quarantine, report })
}

/// A load in progress.
struct Loading<'a> {
    ctx: &'a SessionContext,
    source: &'a Source,
    files: &'a [InputFile],
    timezone: Tz,
    results: &'a Results,
    /// The typed schema: declared, or (undeclared) the first file's.
    schema: Option<SchemaRef>,
    checks: Option<Checks<'a>>,
    writer: Option<ResultWriter>,
    bad: BadRows<'a>,
    /// For each `unique` column: its name, its index in the typed schema, the hashes.
    unique: Vec<(&'a str, usize, Hashes)>,
    origins: Origins,
    /// Rows stored so far: the position of the next.
    stored: Position,
}

impl<'a> Loading<'a> {
    fn new(
        ctx: &'a SessionContext,
        source: &'a Source,
        files: &'a [InputFile],
        timezone: Tz,
        results: &'a Results,
    ) -> Result<Self> {
        let mut loading = Loading {
            ctx,
            source,
            files,
            timezone,
            results,
            schema: None,
            checks: None,
            writer: None,
            bad: BadRows::new(source, files, results),
            unique: Vec::new(),
            origins: Origins::default(),
            stored: 0,
        };
        if let Some(schema) = declared_schema(source) {
            loading.start(schema)?;
        }
        Ok(loading)
    }

    /// Prepares checks, uniqueness and storage for rows of `schema`.
    fn start(&mut self, schema: SchemaRef) -> Result<()> {
        self.checks = Some(Checks::compile(self.ctx, self.source, &schema)?);
        // The hashes of a unique column take 16 bytes a row: they may use a sixteenth of
        // the memory pool before going to disk.
        let limit = self.results.budget().pool_bytes() / 16;
        for column in &self.source.unique {
            let index = schema.index_of(column).map_err(|_| {
                Error::config(
                    &self.source.name,
                    format!("`unique: [{column}]` names a column the source does not have"),
                    "list only declared columns under `unique`",
                )
            })?;
            self.unique.push((column.as_str(), index, Hashes::new(limit, self.results.spill_dir())));
        }
        self.writer = Some(self.results.writer(&self.source.name, Arc::clone(&schema)));
        self.schema = Some(schema);
        Ok(())
    }

    /// A part of a file that could not be read into rows.
    async fn malformed(&mut self, file: usize, malformed: Malformed) -> Result<()> {
        let Malformed { row, rows, reason, record } = malformed;
        self.bad.add(vec![BadRow { file, row, rows, column: None, reason, record }]).await
    }

    /// Types, checks and stores a chunk of rows read from `file`.
    async fn chunk(&mut self, file: usize, chunk: RawChunk) -> Result<()> {
        let (typed, problems) = match &self.source.columns {
            Some(columns) => typing::type_batch(&chunk.batch, columns, self.timezone),
            None => (chunk.batch.clone(), Vec::new()),
        };
        match &self.schema {
            None => self.start(typed.schema())?,
            Some(schema) if self.source.columns.is_none() && schema != &typed.schema() => {
                return Err(Error::Data(format!(
                    "source `{}`: {} has different columns than earlier files; declare `columns` to read them as one table",
                    self.source.name, self.files[file].url
                )));
            }
            Some(_) => {}
        }
        let mut bad: BTreeMap<usize, Vec<BadRow>> = BTreeMap::new();
        for problem in problems {
            let row = Some(chunk.rows[problem.index]);
            let (column, reason) = (Some(problem.column), problem.reason);
            let entry = BadRow { file, row, rows: 1, column, reason, record: String::new() };
            bad.entry(problem.index).or_default().push(entry);
        }
        let skip: Vec<bool> = (0..typed.num_rows()).map(|row| bad.contains_key(&row)).collect();
        let checks = self.checks.as_ref().expect("started before the first chunk");
        for (row, check) in checks.failures(&typed, &skip)? {
            let reason = format!("check `{}` failed: {}", check.name, check.condition);
            let entry = BadRow {
                file,
                row: Some(chunk.rows[row]),
                rows: 1,
                column: check.column.clone(),
                reason,
                record: String::new(),
            };
            bad.entry(row).or_default().push(entry);
        }
        let keep: Vec<bool> = (0..typed.num_rows()).map(|row| !bad.contains_key(&row)).collect();
        for (row, mut problems) in bad {
            let record = record_json(&chunk.batch, row);
            problems.iter_mut().for_each(|problem| problem.record.clone_from(&record));
            self.bad.add(problems).await?;
        }
        self.store(file, typed, &chunk.rows, &keep).await
    }

    /// Stores the rows of `typed` marked `keep`, remembering where they came from.
    async fn store(&mut self, file: usize, typed: RecordBatch, rows: &[u64], keep: &[bool]) -> Result<()> {
        let (typed, rows) = match keep.iter().all(|&k| k) {
            true => (typed, rows.to_vec()),
            false => {
                let mask = BooleanArray::from(keep.to_vec());
                let kept = filter_record_batch(&typed, &mask).map_err(|e| Error::runtime("removing bad rows", e))?;
                (kept, rows.iter().zip(keep).filter(|(_, k)| **k).map(|(row, _)| *row).collect())
            }
        };
        if typed.num_rows() == 0 {
            return Ok(());
        }
        for (_, index, hashes) in &mut self.unique {
            hashes.add(typed.column(*index), self.stored).map_err(|e| Error::runtime("checking uniqueness", e))?;
        }
        self.origins.push(self.stored, file, rows);
        self.stored += typed.num_rows() as Position;
        let writer = self.writer.as_mut().expect("started before the first chunk");
        let work = format!("storing source `{}`", self.source.name);
        writer.push(typed).await.map_err(|e| self.results.failure(&work, &work, e))
    }

    /// Confirms repeats of unique columns, and returns the stored rows without the bad
    /// ones, the quarantine table (or the error naming the bad rows), and how many input
    /// rows are bad.
    async fn finish(
        mut self,
        location: &Location,
        options: &ReadOptions,
        row_groups: &[Vec<u64>],
    ) -> Result<(Stored, Option<Stored>, u64)> {
        let (results, work) = (self.results, format!("storing source `{}`", self.source.name));
        let storing = |e| results.failure(&work, &work, e);
        let mut rows = match self.writer.take() {
            Some(writer) => writer.finish().await.map_err(storing)?,
            None => {
                // No rows at all: an empty table of the first file's columns, if any.
                let schema = schema(self.source, location).await.unwrap_or_else(|_| Arc::new(Schema::empty()));
                self.results.writer(&self.source.name, schema).finish().await.map_err(storing)?
            }
        };
        let repeats = self.repeats(&rows).await?;
        if !repeats.is_empty() {
            let records = self.raw_records(location, options, repeats.keys()).await?;
            for (position, (column, first)) in &repeats {
                let (file, row) = self.origins.locate(*position);
                let (first_file, first_row) = self.origins.locate(*first);
                let label = if self.files[first_file].kind == Format::Parquet { "row" } else { "line" };
                let url = &self.files[first_file].url;
                let reason = format!("duplicate `{column}`: the same value is in {url} {label} {first_row}");
                let record = records.get(position).cloned().unwrap_or_default();
                let column = Some(column.to_string());
                self.bad.add(vec![BadRow { file, row: Some(row), rows: 1, column, reason, record }]).await?;
            }
            if self.source.on_bad_rows == OnBadRows::Quarantine {
                rows = without(self.results, &self.source.name, &rows, &repeats.keys().copied().collect()).await?;
            }
        }
        let bad_rows = self.bad.rows();
        let quarantine = match self.bad.finish(row_groups).await? {
            Some(quarantine) => Some(by_file_and_row(self.ctx, self.results, quarantine).await?),
            None => None,
        };
        Ok((rows, quarantine, bad_rows))
    }

    /// The repeats of every unique column: repeating position → (column, first position).
    /// A row repeating values of two columns counts once, for the first.
    async fn repeats(&mut self, rows: &Stored) -> Result<BTreeMap<Position, (&'a str, Position)>> {
        let mut found = BTreeMap::new();
        for (column, index, hashes) in std::mem::take(&mut self.unique) {
            let groups = hashes.candidates().map_err(|e| Error::runtime("checking uniqueness", e))?;
            if groups.is_empty() {
                continue;
            }
            let wanted: BTreeSet<Position> = groups.iter().flatten().copied().collect();
            let values = values_at(rows, index, &wanted).await?;
            for (repeat, first) in repeats::repeats(&groups, |position| values.get(&position).cloned()) {
                found.entry(repeat).or_insert((column, first));
            }
        }
        Ok(found)
    }

    /// The raw records of stored rows at `positions`, read again from their files.
    async fn raw_records(
        &self,
        location: &Location,
        options: &ReadOptions,
        positions: impl Iterator<Item = &Position>,
    ) -> Result<HashMap<Position, String>> {
        let mut wanted: BTreeMap<usize, HashMap<u64, Position>> = BTreeMap::new();
        for &position in positions {
            let (file, row) = self.origins.locate(position);
            wanted.entry(file).or_default().insert(row, position);
        }
        let mut records = HashMap::new();
        for (file, rows) in wanted {
            let mut reader = read::open(location, &self.files[file], self.source, options);
            while let Some(piece) = reader.next().await {
                let Piece::Rows(chunk) = piece else { continue };
                for (index, row) in chunk.rows.iter().enumerate() {
                    if let Some(&position) = rows.get(row) {
                        records.insert(position, record_json(&chunk.batch, index));
                    }
                }
            }
            reader.finish().await?;
        }
        Ok(records)
    }
}

/// The values of column `index` at `positions` of the stored rows.
async fn values_at(
    rows: &Stored,
    index: usize,
    positions: &BTreeSet<Position>,
) -> Result<HashMap<Position, ScalarValue>> {
    let mut values = HashMap::with_capacity(positions.len());
    let mut start: Position = 0;
    let mut batches = rows.batches();
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| Error::runtime("reading stored rows", e))?;
        let end = start + batch.num_rows() as Position;
        for &position in positions.range(start..end) {
            let value = ScalarValue::try_from_array(batch.column(index), (position - start) as usize)
                .map_err(|e| Error::runtime("reading stored rows", e))?;
            values.insert(position, value);
        }
        start = end;
    }
    Ok(values)
}

/// `rows` without the rows at `positions`, stored again.
async fn without(results: &Results, name: &str, rows: &Stored, positions: &BTreeSet<Position>) -> Result<Stored> {
    let failed = |e| Error::runtime(format!("removing duplicates of source `{name}`"), e);
    let mut writer = results.writer(name, Arc::clone(&rows.schema));
    let mut start: Position = 0;
    let mut batches = rows.batches();
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(failed)?;
        let end = start + batch.num_rows() as Position;
        let keep: BooleanArray = (start..end).map(|position| Some(!positions.contains(&position))).collect();
        writer.push(filter_record_batch(&batch, &keep).map_err(|e| failed(e.into()))?).await.map_err(failed)?;
        start = end;
    }
    writer.finish().await.map_err(failed)
}

/// The quarantine table sorted by file and row (repeats are found after the other
/// problems), stored again.
async fn by_file_and_row(ctx: &SessionContext, results: &Results, quarantine: Stored) -> Result<Stored> {
    let failed = |e| Error::runtime("sorting quarantined rows", e);
    let name = "quarantine";
    let sorted = ctx
        .read_table(Arc::new(quarantine).table())
        .and_then(|frame| frame.sort(vec![col("source_file").sort(true, true), col("row_number").sort(true, true)]))
        .map_err(failed)?;
    let schema = Arc::new(sorted.schema().as_arrow().clone());
    let stream = sorted.execute_stream().await.map_err(failed)?;
    results.store(name, schema, vec![stream]).await.map_err(failed)
}

/// Where each stored row came from: chunk by chunk, its file and row numbers.
#[derive(Default)]
struct Origins {
    /// (position of the chunk's first row, file, its rows)
    chunks: Vec<(Position, usize, Rows)>,
}

/// The row numbers of a chunk's rows: consecutive (most chunks), or listed.
enum Rows {
    From(u64),
    Listed(Vec<u64>),
}

impl Origins {
    fn push(&mut self, first: Position, file: usize, rows: Vec<u64>) {
        let consecutive = rows.windows(2).all(|pair| pair[1] == pair[0] + 1);
        let rows = match (consecutive, rows.first()) {
            (true, Some(&start)) => Rows::From(start),
            _ => Rows::Listed(rows),
        };
        self.chunks.push((first, file, rows));
    }

    /// The file and row number of the stored row at `position`.
    fn locate(&self, position: Position) -> (usize, u64) {
        let chunk = self.chunks.partition_point(|(first, _, _)| *first <= position) - 1;
        let (first, file, rows) = &self.chunks[chunk];
        let offset = (position - first) as usize;
        match rows {
            Rows::From(start) => (*file, start + offset as u64),
            Rows::Listed(rows) => (*file, rows[offset]),
        }
    }
}
