//! The publish journal: how a run replaces a partition so that a crash at any point of
//! the publish (SIGKILL, power loss, a lost connection) is repaired by the next run or
//! `fidelis repair`, and `_SUCCESS` never stands beside a partition mixing two runs.
//!
//! Before the first change the run writes `_runs/as_of={D}/_publish/{run_id}.json`: every
//! move (staged file → published file, and where the file it replaces is kept), the
//! objects the new partition no longer has, and whether `_SUCCESS` existed. Then:
//!
//! 1. `_SUCCESS` is removed: readers waiting for it know the partition is changing;
//! 2. for each file, the published version is copied aside (`_publish/{run_id}/{n}`),
//!    then the staged file is moved over it (a rename on local disk; a copy then a delete
//!    on object stores, which have no rename); a reader sees the old file or the new
//!    one, never a partial or a missing one;
//! 3. the commit marker `_publish/{run_id}.committed` is written: the commit point;
//! 4. the objects the new partition no longer has and the previous versions are removed,
//!    `_SUCCESS` is written, and the journal and its marker are removed.
//!
//! A journal found without its marker is rolled back (the previous versions moved back, the
//! files new to the partition removed, `_SUCCESS` put back if it was there); one with
//! its marker is rolled forward (step 4). Every step of either can be repeated, so a
//! crash during a recovery is repaired by the next one. Only the holder of the
//! partition's lease publishes or recovers.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::failpoints::{self, Steps};
use crate::storage::Location;

/// The folder of the journals, below a partition's `_runs` folder.
const JOURNALS: &str = "_publish";

/// A planned publish, as written before its first move.
#[derive(Debug, Serialize, Deserialize)]
pub struct Journal {
    /// The run publishing.
    run_id: String,
    /// Whether the partition had `_SUCCESS` before: a rollback puts it back.
    success_existed: bool,
    /// Whether the partition is complete once published (a run's publish, manifest and
    /// all), so `_SUCCESS` is written; otherwise (`fidelis report`) it ends as it was.
    completes: bool,
    /// Files moved into place, in order.
    moves: Vec<Move>,
    /// Objects removed once the publish is committed: what the new partition no longer has.
    removals: Vec<String>,
}

/// One file moved into place (object paths in the store).
#[derive(Debug, Serialize, Deserialize)]
struct Move {
    staged: String,
    target: String,
    /// Where the published file it replaces is kept until the commit point; `None` when
    /// the target did not exist.
    previous: Option<String>,
}

/// What recovering an interrupted publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// Interrupted before its commit point: the partition is as it was before it.
    RolledBack { run_id: String },
    /// Interrupted after its commit point: the partition is the run's, completed.
    Completed { run_id: String },
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recovered::RolledBack { run_id } => {
                write!(f, "rolled back the publish of run {run_id}, interrupted before its commit point")
            }
            Recovered::Completed { run_id } => {
                write!(f, "completed the publish of run {run_id}, interrupted after its commit point")
            }
        }
    }
}

impl Journal {
    /// Plans a publish into the partition whose `_runs` folder is `runs`: `moves` (staged
    /// file, target) in order, then `removals`; `completes`: whether the partition is then
    /// complete. Looks at what is published now, to know what a rollback must put back.
    pub async fn plan(
        runs: &Location,
        run_id: &str,
        moves: &[(Location, Location)],
        removals: &[Location],
        completes: bool,
    ) -> Result<Journal> {
        let previous_folder = runs.child(JOURNALS).child(run_id);
        let mut planned = Vec::with_capacity(moves.len());
        for (number, (staged, target)) in moves.iter().enumerate() {
            let previous = exists(target).await?.then(|| previous_folder.child(&number.to_string()).path.to_string());
            planned.push(Move { staged: staged.path.to_string(), target: target.path.to_string(), previous });
        }
        let mut removal_paths: Vec<String> = removals.iter().map(|r| r.path.to_string()).collect();
        removal_paths.sort();
        removal_paths.dedup();
        Ok(Journal {
            run_id: run_id.to_string(),
            success_existed: exists(&success(runs)).await?,
            completes,
            moves: planned,
            removals: removal_paths,
        })
    }

    /// Carries the publish out. A failure before the commit point rolls it back at once
    /// (and if that fails too, the next run does); a failure after it leaves the journal
    /// for the next run to complete.
    pub async fn publish(&self, runs: &Location) -> Result<()> {
        let journal = journal_file(runs, &self.run_id);
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::runtime("writing the publish journal", e))?;
        failpoints::step(Steps::Publish).await;
        put(&journal, json).await?;
        if let Err(error) = self.move_into_place(runs).await {
            return match self.roll_back(runs, Steps::Publish).await {
                Ok(()) => Err(error),
                Err(rollback) => Err(Error::Runtime(format!(
                    "{error}; rolling the publish back failed too ({rollback}): the next run on this partition, or \
                     `fidelis repair`, rolls it back"
                ))),
            };
        }
        failpoints::step(Steps::Publish).await;
        put(&commit_marker(runs, &self.run_id), Vec::new()).await?;
        self.roll_forward(runs, Steps::Publish).await
    }

    async fn move_into_place(&self, runs: &Location) -> Result<()> {
        failpoints::step(Steps::Publish).await;
        delete_if_present(&success(runs)).await?;
        for file in &self.moves {
            let target = at(runs, &file.target)?;
            if let Some(previous) = &file.previous {
                failpoints::step(Steps::Publish).await;
                let previous = at(runs, previous)?;
                runs.store
                    .copy(&target.path, &previous.path)
                    .await
                    .map_err(|e| Error::runtime(format!("keeping {target} as {previous} until the commit point"), e))?;
            }
            failpoints::step(Steps::Publish).await;
            let staged = at(runs, &file.staged)?;
            runs.store
                .rename(&staged.path, &target.path)
                .await
                .map_err(|e| Error::runtime(format!("publishing {target}"), e))?;
        }
        Ok(())
    }

    /// After the commit point: removes what the new partition no longer has and the
    /// previous versions, writes `_SUCCESS` (if the partition is complete), removes the
    /// journal (then its marker: a marker without a journal means nothing, a journal
    /// without its marker means roll back).
    async fn roll_forward(&self, runs: &Location, steps: Steps) -> Result<()> {
        let previous = self.moves.iter().filter_map(|m| m.previous.as_ref());
        for path in self.removals.iter().chain(previous) {
            failpoints::step(steps).await;
            delete_if_present(&at(runs, path)?).await?;
        }
        if self.completes || self.success_existed {
            failpoints::step(steps).await;
            put(&success(runs), Vec::new()).await?;
        }
        self.remove(runs, steps).await
    }

    /// Before the commit point: puts every previous version back and removes the files new to
    /// the partition, in reverse order, then `_SUCCESS` if it was there.
    async fn roll_back(&self, runs: &Location, steps: Steps) -> Result<()> {
        for file in self.moves.iter().rev() {
            let target = at(runs, &file.target)?;
            match &file.previous {
                Some(previous) => {
                    let previous = at(runs, previous)?;
                    // No copy: it was never made (the target is the previous file) or it
                    // is back in place already.
                    if exists(&previous).await? {
                        failpoints::step(steps).await;
                        runs.store
                            .rename(&previous.path, &target.path)
                            .await
                            .map_err(|e| Error::runtime(format!("putting {previous} back as {target}"), e))?;
                    }
                }
                None => {
                    failpoints::step(steps).await;
                    delete_if_present(&target).await?;
                }
            }
        }
        if self.success_existed {
            failpoints::step(steps).await;
            put(&success(runs), Vec::new()).await?;
        }
        self.remove(runs, steps).await
    }

    async fn remove(&self, runs: &Location, steps: Steps) -> Result<()> {
        failpoints::step(steps).await;
        delete_if_present(&journal_file(runs, &self.run_id)).await?;
        failpoints::step(steps).await;
        delete_if_present(&commit_marker(runs, &self.run_id)).await
    }
}

/// Rolls back or completes every publish interrupted in the partition whose `_runs`
/// folder is `runs`, then removes what is left of their journals. The caller holds the
/// partition's lease, so no publish there is alive.
pub async fn recover(runs: &Location) -> Result<Vec<Recovered>> {
    let folder = runs.child(JOURNALS);
    let mut recovered = Vec::new();
    for path in list(&folder).await? {
        let is_journal = path.prefix_match(&folder.path).is_some_and(|mut rest| {
            rest.next().is_some_and(|name| name.as_ref().ends_with(".json")) && rest.next().is_none()
        });
        if !is_journal {
            continue;
        }
        let location = folder.at(path);
        let bytes = match location.store.get(&location.path).await {
            Ok(found) => found.bytes().await,
            Err(error) => Err(error),
        }
        .map_err(|e| Error::runtime(format!("reading the publish journal {location}"), e))?;
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Runtime(format!("{location} is not a publish journal fidelis wrote ({e}); move it away to go on"))
        })?;
        let run_id = journal.run_id.clone();
        if exists(&commit_marker(runs, &run_id)).await? {
            journal.roll_forward(runs, Steps::Recover).await?;
            recovered.push(Recovered::Completed { run_id });
        } else {
            journal.roll_back(runs, Steps::Recover).await?;
            recovered.push(Recovered::RolledBack { run_id });
        }
    }
    // Markers without a journal, previous versions of finished publishes.
    for path in list(&folder).await? {
        delete_if_present(&folder.at(path)).await?;
    }
    Ok(recovered)
}

/// `_SUCCESS`: every file of the partition is the manifest's run's.
pub fn success(runs: &Location) -> Location {
    runs.child("_SUCCESS")
}

fn journal_file(runs: &Location, run_id: &str) -> Location {
    runs.child(JOURNALS).child(&format!("{run_id}.json"))
}

fn commit_marker(runs: &Location, run_id: &str) -> Location {
    runs.child(JOURNALS).child(&format!("{run_id}.committed"))
}

/// An object path recorded in a journal, in the store of `runs`.
fn at(runs: &Location, path: &str) -> Result<Location> {
    Path::parse(path)
        .map(|path| runs.at(path))
        .map_err(|e| Error::Runtime(format!("the publish journal names an invalid object path `{path}`: {e}")))
}

/// Every object below `folder`.
pub async fn list(folder: &Location) -> Result<Vec<Path>> {
    folder
        .store
        .list(Some(&folder.path))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| Error::runtime(format!("listing {folder}"), e))
}

async fn exists(location: &Location) -> Result<bool> {
    match location.store.head(&location.path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(error) => Err(Error::runtime(format!("looking for {location}"), error)),
    }
}

/// Writes `bytes` at `location`, replacing what is there in one step.
pub async fn put(location: &Location, bytes: Vec<u8>) -> Result<()> {
    location
        .store
        .put(&location.path, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|e| Error::runtime(format!("writing {location}"), e))
}

/// Deletes `location`; already absent is fine (S3 says so, local disks complain).
pub async fn delete_if_present(location: &Location) -> Result<()> {
    match location.store.delete(&location.path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(Error::runtime(format!("deleting {location}"), error)),
    }
}
