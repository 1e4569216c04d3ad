//! fidelis integration tests: one binary (as ripgrep and delta-rs do), running real
//! pipelines on small fixtures and reading back the Parquet they publish.

mod bad_input;
mod cli;
mod clv;
mod config_errors;
mod customer_summary;
mod formats;
mod invariants;
mod layouts;
mod metrics;
mod params_and_stages;
mod publish;
mod report;
mod s3;
mod support;
