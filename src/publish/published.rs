//! What fidelis reads back of a published partition: the manifest of the run that
//! published it, when `_SUCCESS` says the partition is complete.

use chrono::NaiveDate;
use object_store::ObjectStoreExt;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::publish::journal;
use crate::publish::layout::{RUNS, partition_as_of, runs_folder};
use crate::storage::Location;

/// The manifest's name in the runs folder.
pub const MANIFEST: &str = "manifest.json";

/// The manifest of the run published for `as_of` under `root`, if the partition is
/// complete.
pub async fn read(root: &Location, as_of: NaiveDate) -> Result<Option<Manifest>> {
    let runs = runs_folder(root, as_of);
    let success = journal::success(&runs);
    match success.store.head(&success.path).await {
        Ok(_) => {}
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(Error::runtime(format!("looking for {success}"), error)),
    }
    let manifest = runs.child(MANIFEST);
    let bytes = match manifest.store.get(&manifest.path).await {
        Ok(found) => found.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => Err(error),
    }
    .map_err(|e| Error::runtime(format!("reading {manifest}"), e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Runtime(format!("{manifest} is not a run manifest fidelis wrote: {e}")))
}

/// The latest complete partition under `root` dated before `as_of`: its as_of and the
/// manifest of the run published there.
pub async fn latest_before(root: &Location, as_of: NaiveDate) -> Result<Option<(NaiveDate, Manifest)>> {
    let runs = root.child(RUNS);
    let listed = match runs.store.list_with_delimiter(Some(&runs.path)).await {
        Ok(listed) => listed.common_prefixes,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(error) => return Err(Error::runtime(format!("listing {runs}"), error)),
    };
    let mut earlier: Vec<NaiveDate> =
        listed.iter().filter_map(|folder| partition_as_of(folder.filename()?)).filter(|date| *date < as_of).collect();
    earlier.sort_unstable_by(|a, b| b.cmp(a));
    for date in earlier {
        if let Some(manifest) = read(root, date).await? {
            return Ok(Some((date, manifest)));
        }
    }
    Ok(None)
}
