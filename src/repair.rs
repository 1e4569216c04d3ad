//! `fidelis repair`: finishes or rolls back a publish that a killed run left half done,
//! and removes dead runs' staging, without running the pipeline. Every run does the same
//! first; `repair` is for when no run is due soon, or to see what was wrong.

use chrono::Utc;

use crate::config::Pipeline;
use crate::error::Result;
use crate::manifest::run_id;
use crate::plan::{Overrides, bind};
use crate::publish::journal::Recovered;
use crate::sinks::{Sink, output_root};
use crate::storage::Storage;

/// Repairs the partition of `pipeline`'s as_of, holding its lease while it does; returns
/// what it did to interrupted publishes.
pub async fn repair(pipeline: &Pipeline, overrides: &Overrides) -> Result<Vec<Recovered>> {
    let plan = bind(pipeline, overrides)?;
    let root = output_root(&plan, &Storage::new())?;
    let run_id = run_id(Utc::now(), Some("repair"));
    let (sink, recovered) = Sink::open(root, plan.as_of, &run_id, &overrides.lease).await?;
    sink.close().await;
    Ok(recovered)
}
