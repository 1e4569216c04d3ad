//! Binding a pipeline for one run: parameter values resolved (`--set` over
//! environment over defaults), locations filled in, and the stages to run chosen.

use std::collections::BTreeSet;

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;

use crate::config::{AS_OF, ParamValue, Pipeline, Source, Stage, TIMEZONE};
use crate::error::{Error, Result};
use crate::publish::lease::LeaseOptions;

/// What the command line and environment say about a run.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--as-of`.
    pub as_of: Option<NaiveDate>,
    /// `--set KEY=VALUE`, in order.
    pub set: Vec<(String, String)>,
    /// Environment variables `FIDELIS_{PARAM}` (upper case), already read.
    pub env: Vec<(String, String)>,
    /// `--only`: stages to run (with what they read); empty means all.
    pub only: Vec<String>,
    /// `--memory-limit` (or `FIDELIS_MEMORY_LIMIT`) in bytes; `None`: what the machine implies.
    pub memory_limit: Option<u64>,
    /// `--spill-dir`; `None`: the system's temporary folder.
    pub spill_dir: Option<std::path::PathBuf>,
    /// `--threads` (or `FIDELIS_THREADS`); `None`: the cores available.
    pub threads: Option<usize>,
    /// `--wait-for-lock` and `--lease-ttl`: how the run takes its partition's lease.
    pub lease: LeaseOptions,
}

impl Overrides {
    /// The `FIDELIS_*` variables of this process's environment.
    pub fn from_env() -> Vec<(String, String)> {
        std::env::vars().filter(|(key, _)| key.starts_with("FIDELIS_")).collect()
    }
}

/// A pipeline bound for one run.
#[derive(Debug)]
pub struct Plan<'p> {
    pub pipeline: &'p Pipeline,
    /// Every parameter's value, `as_of` and `timezone` included.
    pub params: IndexMap<String, ParamValue>,
    pub as_of: NaiveDate,
    pub timezone: Tz,
    /// Sources the chosen stages read.
    pub sources: Vec<&'p Source>,
    /// Stages to run, in dependency order.
    pub stages: Vec<&'p Stage>,
    /// Output tables among the stages to run.
    pub tables: Vec<String>,
}

/// Binds `pipeline` with `overrides`; all problems are reported together.
pub fn bind<'p>(pipeline: &'p Pipeline, overrides: &Overrides) -> Result<Plan<'p>> {
    let mut problems = Vec::new();
    let mut given: IndexMap<String, (String, String)> = IndexMap::new();
    for (key, value) in &overrides.env {
        let name = key.trim_start_matches("FIDELIS_").to_ascii_lowercase();
        if pipeline.params.contains_key(&name) {
            given.insert(name, (value.clone(), format!("environment variable {key}")));
        }
    }
    for (key, value) in &overrides.set {
        if pipeline.params.contains_key(key) {
            given.insert(key.clone(), (value.clone(), format!("--set {key}")));
        } else {
            let known: Vec<&str> = pipeline.params.keys().map(String::as_str).collect();
            problems.push(format!(
                "--set {key}: `{key}` is not a parameter of this pipeline (parameters: {})",
                known.join(", ")
            ));
        }
    }
    let mut params = IndexMap::new();
    for (name, param) in &pipeline.params {
        let value = match given.get(name) {
            Some((text, origin)) => match param.kind.parse(text) {
                Ok(value) => Some(value),
                Err(message) => {
                    problems.push(format!("{origin}: {message}"));
                    continue;
                }
            },
            None => param.default.clone(),
        };
        if let Some(value) = &value
            && !param.allowed.is_empty()
            && !param.allowed.contains(value)
        {
            let allowed: Vec<String> = param.allowed.iter().map(ToString::to_string).collect();
            problems.push(format!("parameter `{name}` = `{value}` is not one of: {}", allowed.join(", ")));
        }
        if let Some(value) = value {
            params.insert(name.clone(), value);
        }
    }
    let timezone = match params.get(TIMEZONE) {
        Some(ParamValue::String(zone)) => zone.parse::<Tz>().unwrap_or_else(|_| {
            problems.push(format!("`{zone}` is not an IANA timezone (e.g. UTC, Europe/Rome, America/New_York)"));
            Tz::UTC
        }),
        _ => Tz::UTC,
    };
    let as_of = match (overrides.as_of, params.get(AS_OF)) {
        (Some(date), _) => date,
        (None, Some(ParamValue::Date(date))) => *date,
        // Yesterday in the pipeline's timezone: the last complete day.
        _ => Utc::now().with_timezone(&timezone).date_naive() - Duration::days(1),
    };
    params.shift_insert(0, AS_OF.to_string(), ParamValue::Date(as_of));
    for (name, param) in &pipeline.params {
        if !params.contains_key(name) {
            problems.push(format!(
                "parameter `{name}` ({}) has no value; give it with --set {name}=… or FIDELIS_{}",
                param.kind,
                name.to_ascii_uppercase()
            ));
        }
    }

    let stages = choose_stages(pipeline, &overrides.only, &mut problems);
    let needed: BTreeSet<&str> = stages.iter().flat_map(|s| s.depends_on.iter().map(String::as_str)).collect();
    let sources = pipeline.sources.values().filter(|s| needed.contains(s.name.as_str())).collect();
    let tables = pipeline
        .outputs
        .iter()
        .flat_map(|o| &o.tables)
        .filter(|table| stages.iter().any(|s| &s.name == *table))
        .cloned()
        .collect();
    if !problems.is_empty() {
        return Err(Error::Usage(problems.join("\n")));
    }
    Ok(Plan { pipeline, params, as_of, timezone, sources, stages, tables })
}

/// The stages named by `--only` and every stage they read, in pipeline order.
fn choose_stages<'p>(pipeline: &'p Pipeline, only: &[String], problems: &mut Vec<String>) -> Vec<&'p Stage> {
    if only.is_empty() {
        return pipeline.stages.iter().collect();
    }
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    let mut pending: Vec<&str> = Vec::new();
    for name in only {
        match pipeline.stage(name) {
            Some(stage) => pending.push(&stage.name),
            None => problems.push(format!("--only {name}: no stage of that name")),
        }
    }
    while let Some(name) = pending.pop() {
        if wanted.insert(name)
            && let Some(stage) = pipeline.stage(name)
        {
            pending.extend(stage.depends_on.iter().map(String::as_str));
        }
    }
    pipeline.stages.iter().filter(|s| wanted.contains(s.name.as_str())).collect()
}

impl Plan<'_> {
    /// Whether every stage of the pipeline runs (no `--only`).
    pub fn runs_everything(&self) -> bool {
        self.stages.len() == self.pipeline.stages.len()
    }

    /// `template` with every `${param}` replaced by its value.
    pub fn fill(&self, template: &str) -> String {
        let mut filled = template.to_string();
        for (name, value) in &self.params {
            filled = filled.replace(&format!("${{{name}}}"), &value.to_string());
        }
        filled
    }
}
