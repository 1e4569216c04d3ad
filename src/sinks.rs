//! The one place that writes Parquet, the atomic publish of a run, and the layout of
//! an output root (the one place that spells it: [`partition`], [`table_file`],
//! [`part_file_name`], [`manifest_file`]).
//!
//! Each table partition is a single file, `{root}/{table}/as_of={as_of}/part-00000.parquet`;
//! reports are published under `{root}/reports/as_of={as_of}/` and the run's manifest as
//! `{root}/_runs/as_of={as_of}/manifest.json`. A run writes every file to
//! `{root}/_staging/{run_id}/` first; only when all of them are written does it move
//! each into place. A move within a store replaces one
//! object with another in one step (a rename on local disks, a copy on object
//! stores), so a reader sees either the old partition or the new one, never a partial
//! file; and a run that fails before publishing leaves the published data untouched.
//! The run manifest and `_SUCCESS` are written last.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Location;

/// The partition folder of `table` for `as_of`: `{root}/{table}/as_of={as_of}/`. A table
/// may be a path below the root, e.g. `_quarantine/orders`.
pub fn partition(root: &Location, table: &str, as_of: NaiveDate) -> Location {
    let mut location = root.clone();
    for segment in table.split('/') {
        location = location.child(segment);
    }
    location.child(&format!("as_of={as_of}"))
}

/// The single data file of `table`'s partition for `as_of`.
pub fn table_file(root: &Location, table: &str, as_of: NaiveDate) -> Location {
    partition(root, table, as_of).child(&part_file_name("parquet"))
}

/// The name of a folder's single data file in `extension`'s format: `part-00000.parquet`.
pub fn part_file_name(extension: &str) -> String {
    format!("part-00000.{extension}")
}

/// The manifest of the run published for `as_of`.
pub fn manifest_file(root: &Location, as_of: NaiveDate) -> Location {
    partition(root, "_runs", as_of).child("manifest.json")
}

/// The object at `location`, or `None` when there is none.
pub async fn read_if_present(location: &Location) -> Result<Option<bytes::Bytes>> {
    let failed = |e: object_store::Error| Error::runtime(format!("reading {location}"), e);
    match location.store.get(&location.path).await {
        Ok(result) => result.bytes().await.map(Some).map_err(failed),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(failed(error)),
    }
}

/// Where a run writes: the output root, its as_of, and its private staging area.
#[derive(Clone)]
pub struct Sink {
    root: Location,
    as_of: NaiveDate,
    staging: Location,
}

/// A file written to staging, waiting to be published.
pub struct StagedFile {
    staged: Location,
    target: Location,
}

impl StagedFile {
    /// Where the file will be published, without credentials.
    pub fn url(&self) -> String {
        self.target.to_string()
    }
}

/// What the manifest records about a written table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    /// The partition's folder.
    pub url: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
}

impl Sink {
    /// A sink writing partition `as_of` under `root`, staging under `run_id`.
    pub fn new(root: Location, as_of: NaiveDate, run_id: &str) -> Self {
        let staging = root.child("_staging").child(run_id);
        Sink { root, as_of, staging }
    }

    /// The partition folder of `table` (a path below the root, e.g. `_quarantine/orders`).
    pub fn partition(&self, table: &str) -> Location {
        partition(&self.root, table, self.as_of)
    }

    /// Where [`Sink::stage_table`] writes `table` until the run publishes it: a run reads
    /// its output tables back from here (for its reports) before they are published.
    pub fn staged_table(&self, table: &str) -> Location {
        self.staging.child(&format!("{}.parquet", table.replace('/', "__")))
    }

    /// Writes `batches` as the staged Parquet file of `table`.
    pub async fn stage_table(
        &self,
        table: &str,
        schema: SchemaRef,
        batches: impl Iterator<Item = datafusion::error::Result<RecordBatch>> + Send,
    ) -> Result<(StagedFile, TableReport)> {
        let target = table_file(&self.root, table, self.as_of);
        let staged = self.staged_table(table);
        let (rows, bytes) = write_parquet(&staged, schema, batches).await?;
        let report =
            TableReport { url: self.partition(table).to_string(), files: vec![target.to_string()], rows, bytes };
        Ok((StagedFile { staged, target }, report))
    }

    /// Writes a report file to staging, to be published at
    /// `{root}/reports/as_of={as_of}/{path}`.
    pub async fn stage_report(&self, path: &str, bytes: Vec<u8>) -> Result<StagedFile> {
        let target = path.split('/').fold(self.partition("reports"), |location, segment| location.child(segment));
        let staged = self.staging.child(&format!("reports__{}", path.replace('/', "__")));
        staged
            .store
            .put(&staged.path, PutPayload::from(bytes))
            .await
            .map_err(|e| Error::runtime(format!("writing {staged}"), e))?;
        Ok(StagedFile { staged, target })
    }

    /// Moves every staged file into place, removes what earlier runs left in the
    /// replaced partitions (and `stale` partitions this run no longer produces),
    /// then writes the manifest and `_SUCCESS` last.
    pub async fn publish(&self, files: Vec<StagedFile>, stale: &[Location], manifest: &[u8]) -> Result<()> {
        let runs = self.partition("_runs");
        let success = runs.child("_SUCCESS");
        // Readers waiting for _SUCCESS must not trust this partition while it changes.
        delete_if_present(&success).await?;
        self.move_into_place(&files, stale).await?;
        put(&manifest_file(&self.root, self.as_of), manifest.to_vec()).await?;
        put(&success, Vec::new()).await?;
        self.abort().await;
        Ok(())
    }

    /// Moves staged files into place and removes what earlier runs left beside them and
    /// in the `stale` partitions; the manifest and `_SUCCESS` are not touched.
    pub async fn move_into_place(&self, files: &[StagedFile], stale: &[Location]) -> Result<()> {
        for file in files {
            file.target
                .store
                .rename(&file.staged.path, &file.target.path)
                .await
                .map_err(|e| Error::runtime(format!("publishing {}", file.target), e))?;
        }
        // Then remove what earlier runs left beside the new files (a partition folder
        // holds exactly what this run wrote there), and the partitions it no longer writes.
        let mut folders: Vec<(Location, Vec<&Path>)> = Vec::new();
        for file in files {
            let folder = file.target.at(file.target.path.prefix_path());
            match folders.iter_mut().find(|(f, _)| f.path == folder.path) {
                Some((_, keep)) => keep.push(&file.target.path),
                None => folders.push((folder, vec![&file.target.path])),
            }
        }
        for (folder, keep) in &folders {
            remove_others(folder, keep).await?;
        }
        for partition in stale {
            remove_others(partition, &[]).await?;
        }
        Ok(())
    }

    /// Removes this run's staging area; used after publishing and when a run fails.
    pub async fn abort(&self) {
        let listed: Vec<_> = self.staging.store.list(Some(&self.staging.path)).try_collect().await.unwrap_or_default();
        for meta in listed {
            let _ = self.staging.store.delete(&meta.location).await;
        }
    }
}

/// Writes `batches` as one Parquet file at `location` (zstd, warehouse-readable types);
/// returns its rows and bytes. The one function in fidelis that writes Parquet.
pub async fn write_parquet(
    location: &Location,
    schema: SchemaRef,
    batches: impl Iterator<Item = datafusion::error::Result<RecordBatch>> + Send,
) -> Result<(u64, u64)> {
    let failed = |e: &dyn std::fmt::Display| Error::runtime(format!("writing {location}"), e);
    let schema = warehouse_schema(&schema);
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("fidelis {}", env!("CARGO_PKG_VERSION")))
        .build();
    let writer = BufWriter::new(Arc::clone(&location.store), location.path.clone());
    let mut writer =
        AsyncArrowWriter::try_new(writer, Arc::clone(&schema), Some(properties)).map_err(|e| failed(&e))?;
    let mut rows = 0;
    for batch in batches {
        let batch = warehouse_types(&schema, &batch.map_err(|e| failed(&e))?).map_err(|e| failed(&e))?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).await.map_err(|e| failed(&e))?;
    }
    writer.close().await.map_err(|e| failed(&e))?;
    let bytes = location.store.head(&location.path).await.map_err(|e| failed(&e))?.size;
    Ok((rows, bytes))
}

trait PrefixPath {
    fn prefix_path(&self) -> Path;
}

impl PrefixPath for Path {
    /// The folder containing this object.
    fn prefix_path(&self) -> Path {
        let parts: Vec<_> = self.parts().collect();
        parts[..parts.len().saturating_sub(1)].iter().cloned().collect()
    }
}

async fn put(location: &Location, bytes: Vec<u8>) -> Result<()> {
    location
        .store
        .put(&location.path, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|e| Error::runtime(format!("writing {location}"), e))
}

async fn delete_if_present(location: &Location) -> Result<()> {
    match location.store.delete(&location.path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(Error::runtime(format!("deleting {location}"), error)),
    }
}

/// Deletes every object in `folder` except those in `keep`.
async fn remove_others(folder: &Location, keep: &[&Path]) -> Result<()> {
    let listed: Vec<_> = folder
        .store
        .list(Some(&folder.path))
        .try_collect()
        .await
        .map_err(|e| Error::runtime(format!("listing {folder}"), e))?;
    for meta in listed.into_iter().filter(|m| !keep.contains(&&m.location)) {
        delete_if_present(&folder.at(meta.location)).await?;
    }
    Ok(())
}

/// Column types every warehouse reads the same way: timestamps as UTC microseconds,
/// view and large strings as plain strings.
fn warehouse_schema(schema: &SchemaRef) -> SchemaRef {
    let target = |data_type: &DataType| match data_type {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        other => other.clone(),
    };
    let fields: Vec<Field> =
        schema.fields().iter().map(|f| Field::new(f.name(), target(f.data_type()), f.is_nullable())).collect();
    Arc::new(Schema::new(fields))
}

/// `batch` converted to the warehouse `schema`.
fn warehouse_types(schema: &SchemaRef, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| match column.data_type() == field.data_type() {
            true => Ok(Arc::clone(column)),
            false => cast(column, field.data_type()),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
