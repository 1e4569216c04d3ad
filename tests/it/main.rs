//! fidelis integration tests: one binary (as ripgrep and delta-rs do), running real
//! pipelines on small fixtures and reading back the Parquet they publish.

mod backfill;
mod bad_input;
mod cli;
mod clv;
mod config_errors;
mod crash_safety;
mod customer_summary;
mod data_tests;
mod deploy;
mod docs;
mod formats;
mod freshness;
mod invariants;
mod layers;
mod layouts;
mod lease;
mod lineage;
mod load_checks;
mod memory;
mod metrics;
mod operations;
mod params_and_stages;
mod publish;
mod report;
mod result_json;
mod s3;
mod secrets;
mod signals;
mod support;
