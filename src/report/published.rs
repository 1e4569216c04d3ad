//! Reading back what a run published, so reports can be rendered again without
//! recomputing the tables. The layout is the one `crate::sinks` writes.

use bytes::Bytes;
use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::ObjectStoreExt;

use super::Tables;
use crate::error::{Error, Result};
use crate::sinks::PART_FILE;
use crate::storage::Location;

/// What the report reads of the published tables of `as_of` among `tables` (missing
/// ones left out), and the manifest.
pub(super) async fn read(root: &Location, tables: &[String], as_of: NaiveDate) -> Result<(Tables, serde_json::Value)> {
    let partition = format!("as_of={as_of}");
    let manifest_location = root.child("_runs").child(&partition).child("manifest.json");
    let Some(manifest) = fetch(&manifest_location).await? else {
        return Err(Error::Data(format!(
            "no run published for as_of {as_of} at {root}: {manifest_location} does not exist; run the pipeline \
             for that day first (fidelis run PIPELINE --as-of {as_of})"
        )));
    };
    let manifest: serde_json::Value = serde_json::from_slice(&manifest)
        .map_err(|e| Error::Data(format!("{manifest_location} is not a run manifest: {e}")))?;
    let mut read = Tables::new();
    for table in tables {
        let mut file = root.clone();
        // Tables such as `_quarantine/transactions` live in nested folders.
        for segment in table.split('/') {
            file = file.child(segment);
        }
        let file = file.child(&partition).child(PART_FILE);
        let Some(bytes) = fetch(&file).await? else { continue };
        if let Some(needed) = super::needed(table, &parquet_batches(&file, bytes)?) {
            read.insert(table.clone(), needed);
        }
    }
    Ok((read, manifest))
}

/// The object at `location`, or `None` when there is none.
async fn fetch(location: &Location) -> Result<Option<Bytes>> {
    let failed = |e: object_store::Error| Error::runtime(format!("reading {location}"), e);
    match location.store.get(&location.path).await {
        Ok(result) => result.bytes().await.map(Some).map_err(failed),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(failed(error)),
    }
}

fn parquet_batches(location: &Location, bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let failed = |e: &dyn std::fmt::Display| Error::Data(format!("{location} is not a readable Parquet file: {e}"));
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| failed(&e))?
        .build()
        .map_err(|e| failed(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| failed(&e))
}
