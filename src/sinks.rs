//! The one place that writes Parquet, the publish of a run, and the layout of an output
//! root (the one place that spells it: [`partition`], [`partition_as_of`], [`table_file`],
//! [`part_file_name`]).
//!
//! Each table partition is a single file, `{root}/{table}/as_of={as_of}/part-00000.parquet`.
//! A run first takes the partition's lease (one writer per partition), repairs a publish
//! a dead run left half done, and removes dead runs' staging ([`Sink::open`]). It writes
//! every file to `{root}/_staging/as_of={as_of}/{run_id}/`; only when all of them are
//! written does it publish them with the manifest, through the publish journal that makes
//! the publish all or nothing even across crashes (`crate::publish::journal`). A run
//! that fails or is stopped before publishing leaves the published data untouched.
//! `_SUCCESS` is written last, and only beside a partition that is wholly one run's.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use futures::{Stream, StreamExt};
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::failpoints;
use crate::manifest::{Manifest, TableReport};
use crate::plan::Plan;
use crate::publish::journal::{self, Journal, Recovered};
use crate::publish::layout::{partition, runs_folder, table_file};
use crate::publish::lease::{Lease, LeaseOptions};
use crate::publish::published::{self, MANIFEST};
use crate::signals;
use crate::storage::{Location, Storage};

/// The object at `location`, or `None` when there is none.
pub async fn read_if_present(location: &Location) -> Result<Option<bytes::Bytes>> {
    let failed = |e: object_store::Error| Error::runtime(format!("reading {location}"), e);
    match location.store.get(&location.path).await {
        Ok(result) => result.bytes().await.map(Some).map_err(failed),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(failed(error)),
    }
}

/// Where a run writes: the output root, its as_of, its private staging area, and the
/// partition's lease, held until [`Sink::close`].
#[derive(Clone)]
pub struct Sink {
    root: Location,
    as_of: NaiveDate,
    run_id: String,
    staging: Location,
    lease: Arc<Lease>,
    published: Option<Arc<Manifest>>,
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

impl Sink {
    /// Opens partition `as_of` under `root` for run `run_id`: takes its lease (waiting as
    /// `lease` says, unless a stop signal comes first), finishes or rolls back a publish
    /// that a dead run left (logged; also returned), removes dead runs' staging, and reads
    /// the run published there.
    pub async fn open(
        root: Location,
        as_of: NaiveDate,
        run_id: &str,
        lease: &LeaseOptions,
    ) -> Result<(Sink, Vec<Recovered>)> {
        let runs = runs_folder(&root, as_of);
        let lease = signals::unless_stopped(Lease::acquire(&runs, run_id, lease)).await?;
        let prepared = async {
            let recovered = journal::recover(&runs).await?;
            for recovery in &recovered {
                warn!(partition = %runs, "{recovery}");
            }
            // Only the lease holder stages files for this partition: what is there is dead runs'.
            let staging = partition(&root, "_staging", as_of);
            remove_below(&staging).await?;
            let published = published::read(&root, as_of).await?;
            Ok::<_, Error>((recovered, staging, published))
        };
        match prepared.await {
            Ok((recovered, staging, published)) => {
                let sink = Sink {
                    staging: staging.child(run_id),
                    root,
                    as_of,
                    run_id: run_id.to_string(),
                    lease: Arc::new(lease),
                    published: published.map(Arc::new),
                };
                Ok((sink, recovered))
            }
            Err(error) => {
                lease.release().await;
                Err(error)
            }
        }
    }

    /// The run published in this partition when the sink was opened, if it is complete.
    pub fn published(&self) -> Option<&Manifest> {
        self.published.as_deref()
    }

    /// Resolves, with the run's error, if the partition's lease is lost while the run
    /// computes (see `crate::publish::lease`); never otherwise.
    pub async fn lease_lost(&self) -> Error {
        self.lease.lost().await
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
        batches: impl Stream<Item = datafusion::error::Result<RecordBatch>> + Send,
    ) -> Result<(StagedFile, TableReport)> {
        let target = table_file(&self.root, table, self.as_of);
        let staged = self.staged_table(table);
        let (rows, bytes) = write_parquet(&staged, schema, batches).await?;
        let report =
            TableReport { url: self.partition(table).to_string(), files: vec![target.to_string()], rows, bytes };
        Ok((StagedFile { staged, target }, report))
    }

    /// The run's work location, where a run on a cluster keeps its sources and stage
    /// results (`crate::cluster`): a folder of its staging area, removed with it.
    pub fn work(&self) -> Location {
        self.staging.child("_work")
    }

    /// Writes a report file to staging, to be published at
    /// `{root}/reports/as_of={as_of}/{path}`.
    pub async fn stage_report(&self, path: &str, bytes: Vec<u8>) -> Result<StagedFile> {
        let target = path.split('/').fold(self.partition("reports"), |location, segment| location.child(segment));
        let staged = self.staging.child(&format!("reports__{}", path.replace('/', "__")));
        journal::put(&staged, bytes).await?;
        Ok(StagedFile { staged, target })
    }

    /// Publishes the staged `files` and the `manifest` (when given) as one step, all or
    /// nothing (see `crate::publish::journal`): each file replaces its partition's
    /// contents, the `stale` partitions are removed, and `_SUCCESS` is written last when
    /// the publish has a manifest (a whole run's partition; otherwise it stays as it was).
    /// A stop signal received before this starts cancels it; one received during it waits
    /// for it to finish.
    pub async fn publish(&self, files: &[StagedFile], stale: &[Location], manifest: Option<&Manifest>) -> Result<()> {
        failpoints::reach("before-publish").await;
        if let Some(signal) = signals::requested() {
            return Err(Error::Stopped(signal));
        }
        self.lease.confirm().await?;
        let runs = runs_folder(&self.root, self.as_of);
        let mut moves: Vec<(Location, Location)> =
            files.iter().map(|file| (file.staged.clone(), file.target.clone())).collect();
        if let Some(manifest) = manifest {
            let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::runtime("writing the manifest", e))?;
            let staged = self.staging.child(MANIFEST);
            journal::put(&staged, json).await?;
            moves.push((staged, runs.child(MANIFEST)));
        }
        let removals = self.removals(files, stale).await?;
        let journal = Journal::plan(&runs, &self.run_id, &moves, &removals, manifest.is_some()).await?;
        journal.publish(&runs).await?;
        if let Some(signal) = signals::requested() {
            info!("{signal} received while publishing: the publish was completed first");
        }
        Ok(())
    }

    /// What the publish of `files` removes: whatever else is in their partition folders
    /// (a partition holds exactly what one run wrote there), and the `stale` partitions.
    async fn removals(&self, files: &[StagedFile], stale: &[Location]) -> Result<Vec<Location>> {
        let mut folders: Vec<Location> = Vec::new();
        for file in files {
            let folder = file.target.at(file.target.path.prefix_path());
            if !folders.iter().any(|f| f.path == folder.path) {
                folders.push(folder);
            }
        }
        let targets: Vec<&Path> = files.iter().map(|file| &file.target.path).collect();
        let mut removals = Vec::new();
        for folder in folders.iter().chain(stale) {
            for path in journal::list(folder).await? {
                if !targets.contains(&&path) {
                    removals.push(folder.at(path));
                }
            }
        }
        Ok(removals)
    }

    /// Ends the run's hold on the partition: removes its staging area and releases the
    /// lease. Called once, after publishing or giving up.
    pub async fn close(&self) {
        match remove_below(&self.staging).await {
            // `_staging/as_of=D/{run_id}`, and the two folders above when empty.
            Ok(()) => self.staging.remove_empty_folders(2),
            Err(error) => {
                warn!("could not remove the staging area {} (the next run removes it): {error}", self.staging)
            }
        }
        self.lease.release().await;
    }
}

/// Writes `batches` as one Parquet file at `location` (see [`ParquetFile`]); returns its
/// rows and bytes.
pub async fn write_parquet(
    location: &Location,
    schema: SchemaRef,
    batches: impl Stream<Item = datafusion::error::Result<RecordBatch>> + Send,
) -> Result<(u64, u64)> {
    let mut file = ParquetFile::create(location, &schema)?;
    let mut batches = std::pin::pin!(batches);
    while let Some(batch) = batches.next().await {
        file.write(&batch.map_err(|e| Error::runtime(format!("writing {location}"), e))?).await?;
    }
    file.finish().await
}

/// A Parquet file being written batch by batch (zstd; warehouse-readable types, or the
/// types as computed for files fidelis reads back): the one place in fidelis that
/// writes Parquet.
pub struct ParquetFile {
    location: Location,
    schema: SchemaRef,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

impl ParquetFile {
    /// Starts the file at `location` for batches of `schema`, in warehouse types.
    pub fn create(location: &Location, schema: &SchemaRef) -> Result<Self> {
        Self::start(location, warehouse_schema(schema), WriterProperties::builder())
    }

    /// Starts the file at `location` for batches of `schema`, in exactly those types
    /// (views and time units kept), in row groups of `row_group_rows` rows: a result
    /// that later stages read back (`crate::cluster`).
    pub fn create_as_computed(location: &Location, schema: &SchemaRef, row_group_rows: usize) -> Result<Self> {
        let properties = WriterProperties::builder().set_max_row_group_row_count(Some(row_group_rows));
        Self::start(location, Arc::clone(schema), properties)
    }

    fn start(
        location: &Location,
        schema: SchemaRef,
        properties: datafusion::parquet::file::properties::WriterPropertiesBuilder,
    ) -> Result<Self> {
        let properties = properties
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

/// The output root of `plan`'s pipeline, with its parameters filled in.
pub fn output_root(plan: &Plan<'_>, storage: &Storage) -> Result<Location> {
    let Some(outputs) = &plan.pipeline.outputs else {
        return Err(Error::config(
            plan.pipeline.file.display().to_string(),
            "the pipeline has no `outputs`, so a run would write nothing",
            "add `outputs: {root: …, tables: [...]}`, or use `fidelis validate` to only check it",
        ));
    };
    storage.resolve(&plan.fill(&outputs.root))
}

/// Removes every object below `folder`.
async fn remove_below(folder: &Location) -> Result<()> {
    for path in journal::list(folder).await? {
        journal::delete_if_present(&folder.at(path)).await?;
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
