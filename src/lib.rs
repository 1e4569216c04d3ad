//! fidelis: customer-loyalty analytics as YAML pipelines of SQL stages.
//!
//! Data flows one way: pipeline YAML → [`config`] (typed, validated) → [`plan`]
//! (parameters bound, stages chosen) → [`run`] (one DataFusion session:
//! [`sources`], [`stages`], [`functions`], in the order [`schedule`] picks; each
//! stage's data tests, [`quality`]) → [`sinks`] (staged Parquet, atomic publish; [`publish`]:
//! the partition's lease and the publish journal) and [`manifest`] → [`report`]
//! (templates rendered over the tables a report declares). [`storage`] turns URLs into
//! object stores and takes credentials out of what is recorded; [`lineage`] sends a run's
//! OpenLineage events. Around runs: [`signals`] (stopping cleanly), [`backfill`] (a run
//! per date), [`repair`], [`summary`] (`--result-json`). [`docs`] prints a
//! pipeline's DAG and column docs and checks the docs against what the stages output.

pub mod backfill;
pub mod cli;
pub mod config;
pub mod docs;
pub mod error;
pub mod failpoints;
pub mod functions;
pub mod lineage;
pub mod logging;
pub mod manifest;
pub mod memory;
pub mod models;
pub mod pipeline_version;
pub mod plan;
pub mod publish;
pub mod quality;
pub mod repair;
pub mod report;
pub mod results;
pub mod run;
pub mod sample_data;
pub mod schedule;
pub mod signals;
pub mod sinks;
pub mod sources;
pub mod stages;
pub mod storage;
pub mod summary;
pub mod threads;

pub use error::{Error, Result};
