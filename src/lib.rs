//! fidelis: customer-loyalty analytics as YAML pipelines of SQL stages.
//!
//! Data flows one way: pipeline YAML → [`config`] (typed, validated) → [`plan`]
//! (parameters bound, stages chosen) → [`run`] (one DataFusion session:
//! [`sources`], [`stages`], [`functions`], in the order [`schedule`] picks) →
//! [`sinks`] (staged Parquet, atomic publish) and [`manifest`] → [`report`] (templates
//! rendered over the tables a report declares).

pub mod cli;
pub mod config;
pub mod error;
pub mod functions;
pub mod logging;
pub mod manifest;
pub mod memory;
pub mod models;
pub mod plan;
pub mod report;
pub mod results;
pub mod run;
pub mod sample_data;
pub mod schedule;
pub mod sinks;
pub mod sources;
pub mod stages;
pub mod storage;

pub use error::{Error, Result};
