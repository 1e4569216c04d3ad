//! One writer per partition: a run holds a lease on `{root}/_runs/as_of={D}/` from
//! before it writes anything until after it has published (or given up).
//!
//! Leases are numbered files, `_runs/as_of={D}/_lease/{generation}.json`, each naming
//! its holder (run id, host, pid, start) and when it expires. A run takes the lease by
//! creating the file after the newest one with a conditional create (`PutMode::Create`:
//! a hard link on local disk, `If-None-Match: *` on S3), which exactly one contender
//! wins; it may do so only when there is no lease yet, or the newest is released or
//! expired. Generations only grow (older files are removed by the new holder, the
//! newest is kept, released), so a contender that looked at an old lease can never
//! create a file beside a newer holder's. The holder renews its file every third of the
//! lease's time to live, and before publishing checks that no newer lease exists and
//! its own has not expired. A holder that dies leaves a lease that expires `ttl` after
//! its last renewal; expiry compares the holder's clock with the reader's, so hosts'
//! clocks must agree to within seconds (NTP).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::storage::Location;

/// How long a lease lasts after its last renewal unless the command line says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// How often a run waiting for a lease looks again.
const POLL: Duration = Duration::from_millis(500);

/// How a run takes its lease.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// How long to wait for another run's lease to end (`--wait-for-lock`); zero fails at once.
    pub wait: Duration,
    /// How long the lease outlives its last renewal (`--lease-ttl`).
    pub ttl: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions { wait: Duration::ZERO, ttl: DEFAULT_TTL }
    }
}

/// Who holds a lease, as its file says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    /// RFC 3339, UTC.
    started_at: String,
    /// RFC 3339, UTC: the last renewal plus the time to live.
    expires_at: String,
    /// Set when the run ended and gave the partition up.
    released: bool,
}

impl Holder {
    /// Whether another run may take over from this holder at `now`.
    fn is_over(&self, now: DateTime<Utc>) -> bool {
        // A time that does not parse was not written by fidelis: treat it as long past.
        self.released || DateTime::parse_from_rfc3339(&self.expires_at).map_or(true, |expires| expires <= now)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} on host {} (pid {}), started {}, holding the lease until {}",
            self.run_id, self.host, self.pid, self.started_at, self.expires_at
        )
    }
}

/// A lease held by this run. Renewed in the background until released or dropped.
pub struct Lease {
    folder: Location,
    generation: u64,
    holder: Holder,
    /// Until when the lease is known to be ours: the expiry of the last renewal written.
    valid_until: Arc<Mutex<DateTime<Utc>>>,
    /// Why the lease was lost, once it is.
    lost: watch::Receiver<Option<String>>,
    renewal: JoinHandle<()>,
}

impl Lease {
    /// Takes the lease of the partition whose `_runs` folder is `runs`, waiting up to
    /// `options.wait` for another holder to release it or for its lease to expire.
    pub async fn acquire(runs: &Location, run_id: &str, options: &LeaseOptions) -> Result<Lease> {
        let folder = runs.child("_lease");
        let deadline = Instant::now() + options.wait;
        let mut waiting_for: Option<String> = None;
        loop {
            let holder = match take(&folder, run_id, options.ttl).await? {
                Taken::Ours(generation, holder) => return Ok(Lease::start(folder, generation, holder, options.ttl)),
                Taken::Raced => continue,
                Taken::Held(holder) => holder,
            };
            let now = Instant::now();
            if now >= deadline {
                let hint = match options.wait.is_zero() {
                    true => "wait for it with --wait-for-lock DURATION, or run again later".to_string(),
                    false => {
                        format!("waited {}: wait longer, or run again later", humantime::format_duration(options.wait))
                    }
                };
                return Err(Error::Locked(format!(
                    "{runs} is being written by another {holder}; {hint}. A run that died keeps its lease until \
                     it expires ({} after its last renewal unless the run set --lease-ttl)",
                    humantime::format_duration(DEFAULT_TTL)
                )));
            }
            if waiting_for.as_deref() != Some(&holder.run_id) {
                info!(partition = %runs, holder = %holder, "waiting for the partition's lease");
                waiting_for = Some(holder.run_id.clone());
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
    }

    fn start(folder: Location, generation: u64, holder: Holder, ttl: Duration) -> Lease {
        let expires = DateTime::parse_from_rfc3339(&holder.expires_at).map_or_else(|_| Utc::now(), |t| t.to_utc());
        let valid_until = Arc::new(Mutex::new(expires));
        let (lost_sender, lost) = watch::channel(None);
        let renewal =
            tokio::spawn(renew(folder.clone(), generation, holder.clone(), ttl, Arc::clone(&valid_until), lost_sender));
        Lease { folder, generation, holder, valid_until, lost, renewal }
    }

    /// Resolves, with the error the run returns, if the lease is lost while running
    /// (a renewal failed until it expired, or another run took it over); never otherwise.
    pub async fn lost(&self) -> Error {
        let mut lost = self.lost.clone();
        match lost.wait_for(Option::is_some).await.map(|reason| reason.clone()) {
            Ok(Some(reason)) => {
                Error::Locked(format!("lost the lease of {}: {reason}; nothing was published", self.folder))
            }
            _ => std::future::pending().await,
        }
    }

    /// Checks, right before publishing, that the lease is still this run's.
    pub async fn confirm(&self) -> Result<()> {
        let lost = |reason: String| {
            Error::Locked(format!("lost the lease of {}: {reason}; nothing was published", self.folder))
        };
        if let Some(newer) = newer_holder(&self.folder, self.generation).await? {
            return Err(lost(format!("another {newer} took it over")));
        }
        let valid_until = *self.valid_until.lock().map_err(|_| Error::Runtime("lease state poisoned".into()))?;
        if valid_until <= Utc::now() {
            return Err(lost(format!("it expired at {} without being renewed", time(valid_until))));
        }
        Ok(())
    }

    /// Gives the partition up. A failure is only logged: the lease then expires.
    pub async fn release(&self) {
        self.renewal.abort();
        let released = async {
            if newer_holder(&self.folder, self.generation).await?.is_none() {
                let holder = Holder { released: true, ..self.holder.clone() };
                write(&self.folder.child(&file_name(self.generation)), &holder, PutMode::Overwrite).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(error) = released.await {
            warn!("could not release the lease of {} (it expires on its own): {error}", self.folder);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// What an attempt to take the lease found.
enum Taken {
    /// The lease is ours, with this generation.
    Ours(u64, Holder),
    /// Another run holds it.
    Held(Holder),
    /// The leases changed while we looked; look again.
    Raced,
}

async fn take(folder: &Location, run_id: &str, ttl: Duration) -> Result<Taken> {
    let leases = generations(folder).await?;
    let next = match leases.last() {
        None => 1,
        Some(&newest) => match read(folder, newest).await? {
            None => return Ok(Taken::Raced),
            Some(holder) if !holder.is_over(Utc::now()) => return Ok(Taken::Held(holder)),
            Some(_) => newest + 1,
        },
    };
    let now = Utc::now();
    let holder = Holder {
        run_id: run_id.to_string(),
        host: host_name(),
        pid: std::process::id(),
        started_at: time(now),
        expires_at: time(now + ttl),
        released: false,
    };
    if !write(&folder.child(&file_name(next)), &holder, PutMode::Create).await? {
        return Ok(Taken::Raced);
    }
    // Only the newest lease matters; the older ones are ours to clean up now.
    for older in leases {
        let location = folder.child(&file_name(older));
        if let Err(error) = location.store.delete(&location.path).await {
            warn!("could not remove the old lease {location}: {error}");
        }
    }
    Ok(Taken::Ours(next, holder))
}

/// Renews the lease every third of its time to live until aborted, or until it is lost.
async fn renew(
    folder: Location,
    generation: u64,
    mut holder: Holder,
    ttl: Duration,
    valid_until: Arc<Mutex<DateTime<Utc>>>,
    lost: watch::Sender<Option<String>>,
) {
    let mut ticks = tokio::time::interval(ttl / 3);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let renewed = async {
            if let Some(newer) = newer_holder(&folder, generation).await? {
                return Ok(Some(format!("another {newer} took it over")));
            }
            let expires = Utc::now() + ttl;
            holder.expires_at = time(expires);
            write(&folder.child(&file_name(generation)), &holder, PutMode::Overwrite).await?;
            if let Ok(mut valid) = valid_until.lock() {
                *valid = expires;
            }
            Ok::<_, Error>(None)
        };
        let reason = match renewed.await {
            Ok(None) => continue,
            Ok(Some(reason)) => reason,
            Err(error) => {
                let expired = valid_until.lock().map_or(true, |valid| *valid <= Utc::now());
                if !expired {
                    warn!("could not renew the lease of {folder} (trying again): {error}");
                    continue;
                }
                format!("it could not be renewed before it expired: {error}")
            }
        };
        lost.send_replace(Some(reason));
        return;
    }
}

/// The generations of the leases in `folder`, oldest first.
async fn generations(folder: &Location) -> Result<Vec<u64>> {
    let listed: Vec<_> = folder
        .store
        .list(Some(&folder.path))
        .try_collect()
        .await
        .map_err(|e| Error::runtime(format!("listing the leases in {folder}"), e))?;
    let mut found: Vec<u64> =
        listed.iter().filter_map(|meta| meta.location.filename()?.strip_suffix(".json")?.parse().ok()).collect();
    found.sort_unstable();
    Ok(found)
}

/// The holder of a lease newer than `generation`, if there is one.
async fn newer_holder(folder: &Location, generation: u64) -> Result<Option<Holder>> {
    match generations(folder).await?.last() {
        Some(&newest) if newest > generation => Ok(Some(read(folder, newest).await?.unwrap_or_else(|| Holder {
            run_id: format!("(lease {newest}, since removed)"),
            host: "?".into(),
            pid: 0,
            started_at: "?".into(),
            expires_at: "?".into(),
            released: false,
        }))),
        _ => Ok(None),
    }
}

/// The holder of lease `generation`, or `None` if it has just been removed.
async fn read(folder: &Location, generation: u64) -> Result<Option<Holder>> {
    let location = folder.child(&file_name(generation));
    let bytes = match location.store.get(&location.path).await {
        Ok(found) => found.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => Err(error),
    }
    .map_err(|e| Error::runtime(format!("reading the lease {location}"), e))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::Runtime(format!(
            "{location} is not a lease fidelis wrote ({e}); if no run is writing this partition, delete the file"
        ))
    })
}

/// Writes a lease file; `false` when a conditional create found one there.
async fn write(location: &Location, holder: &Holder, mode: PutMode) -> Result<bool> {
    let bytes = serde_json::to_vec_pretty(holder).map_err(|e| Error::runtime("writing a lease", e))?;
    match location.store.put_opts(&location.path, PutPayload::from(bytes), mode.into()).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(object_store::Error::NotImplemented { operation, .. }) => Err(Error::Runtime(format!(
            "{location}: the store does not support {operation}, which the partition lease needs (S3-compatible \
             stores must support `If-None-Match: *` on PUT, as AWS S3, MinIO, R2 and moto do)"
        ))),
        Err(error) => Err(Error::runtime(format!("writing the lease {location}"), error)),
    }
}

/// `00000000000000000042.json`: names that sort in generation order.
fn file_name(generation: u64) -> String {
    format!("{generation:020}.json")
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// This machine's name (the pod's name on Kubernetes), for the lease's holder.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}
