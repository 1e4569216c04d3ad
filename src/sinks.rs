//! The one place that writes Parquet, and the atomic publish of a run.
//!
//! Each table partition is a single file, `{root}/{table}/as_of={as_of}/part-00000.parquet`.
//! A run writes every file to `{root}/_staging/{run_id}/` first; only when all of
//! them are written does it move each into place. A move within a store replaces one
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
use serde::Serialize;

use crate::error::{Error, Result};
use crate::storage::Location;

/// The single data file of each partition.
pub(crate) const PART_FILE: &str = "part-00000.parquet";

/// Where a run writes: the output root, its as_of, and its private staging area.
#[derive(Clone)]
pub struct Sink {
    root: Location,
    partition: String,
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
#[derive(Debug, Clone, Serialize)]
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
        Sink { root, partition: format!("as_of={as_of}"), staging }
    }

    /// The partition folder of `table` (a path below the root, e.g. `_quarantine/orders`).
    pub fn partition(&self, table: &str) -> Location {
        let mut location = self.root.clone();
        for segment in table.split('/') {
            location = location.child(segment);
        }
        location.child(&self.partition)
    }

    /// Writes `batches` as the staged Parquet file of `table`.
    pub async fn stage_table(
        &self,
        table: &str,
        schema: SchemaRef,
        batches: impl Iterator<Item = datafusion::error::Result<RecordBatch>> + Send,
    ) -> Result<(StagedFile, TableReport)> {
        let target = self.partition(table).child(PART_FILE);
        let staged = self.staging.child(&format!("{}.parquet", table.replace('/', "__")));
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
        put(&runs.child("manifest.json"), manifest.to_vec()).await?;
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

/// Writes `batches` as one Parquet file at `location` (see [`ParquetFile`]); returns its
/// rows and bytes.
pub async fn write_parquet(
    location: &Location,
    schema: SchemaRef,
    batches: impl Iterator<Item = datafusion::error::Result<RecordBatch>> + Send,
) -> Result<(u64, u64)> {
    let mut file = ParquetFile::create(location, &schema)?;
    for batch in batches {
        file.write(&batch.map_err(|e| Error::runtime(format!("writing {location}"), e))?).await?;
    }
    file.finish().await
}

/// A Parquet file being written batch by batch (zstd, warehouse-readable types): the one
/// place in fidelis that writes Parquet.
pub struct ParquetFile {
    location: Location,
    schema: SchemaRef,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

impl ParquetFile {
    /// Starts the file at `location` for batches of `schema`.
    pub fn create(location: &Location, schema: &SchemaRef) -> Result<Self> {
        let schema = warehouse_schema(schema);
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_created_by(format!("fidelis {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = BufWriter::new(Arc::clone(&location.store), location.path.clone());
        let writer = AsyncArrowWriter::try_new(writer, Arc::clone(&schema), Some(properties))
            .map_err(|e| Error::runtime(format!("writing {location}"), e))?;
        Ok(ParquetFile { location: location.clone(), schema, writer, rows: 0 })
    }

    /// Appends `batch`.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let failed = |e: &dyn std::fmt::Display| Error::runtime(format!("writing {}", self.location), e);
        let batch = warehouse_types(&self.schema, batch).map_err(|e| failed(&e))?;
        self.rows += batch.num_rows() as u64;
        self.writer.write(&batch).await.map_err(|e| failed(&e))
    }

    /// Completes the file; returns its rows and bytes.
    pub async fn finish(self) -> Result<(u64, u64)> {
        let failed = |e: &dyn std::fmt::Display| Error::runtime(format!("writing {}", self.location), e);
        self.writer.close().await.map_err(|e| failed(&e))?;
        let bytes = self.location.store.head(&self.location.path).await.map_err(|e| failed(&e))?.size;
        Ok((self.rows, bytes))
    }
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
