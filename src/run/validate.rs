//! `fidelis validate`: everything short of running, without reading data or writing.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::session;
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::plan::{Overrides, bind};
use crate::quality;
use crate::report;
use crate::sources;
use crate::stages;
use crate::storage::Storage;

/// Registers an empty table of `schema` as `name`, for planning.
fn register_empty(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<()> {
    let table =
        MemTable::try_new(schema, vec![vec![]]).map_err(|e| Error::runtime(format!("registering `{name}`"), e))?;
    ctx.register_table(name, Arc::new(table)).map_err(|e| Error::runtime(format!("registering `{name}`"), e))?;
    Ok(())
}

/// What `validate` found.
#[derive(Debug)]
pub struct Validation {
    /// (source, files found)
    pub sources: Vec<(String, usize)>,
    /// (stage, description, output columns)
    pub stages: Vec<(String, Option<String>, Vec<String>)>,
}

/// Checks `pipeline` without reading data or writing anything: parameters bind, the
/// report templates parse and read only the tables their report declares, every source
/// is reachable and has files (or is optional), every stage plans against the sources'
/// schemas and the stages before it, and so do its tests and facts.
pub async fn validate(pipeline: &Pipeline, overrides: &Overrides) -> Result<Validation> {
    let plan = bind(pipeline, overrides)?;
    report::check(&pipeline.reports, &pipeline.templates_dir, &plan.params, &pipeline.file)?;
    let storage = Storage::new();
    if let Some(outputs) = &pipeline.outputs {
        storage.resolve(&plan.fill(&outputs.root))?;
    }
    let ctx = session();
    let mut validation = Validation { sources: Vec::new(), stages: Vec::new() };
    // Every declared source, read by a stage or not.
    for source in pipeline.sources.values() {
        let location = storage.resolve(&plan.fill(&source.url))?;
        let found = sources::list_files(source, &location).await?;
        let schema = sources::schema(source, &location).await?;
        let columns = DFSchema::try_from(Arc::clone(&schema)).map_err(|e| Error::runtime("reading a schema", e))?;
        for check in &source.checks {
            ctx.parse_sql_expr(&check.condition, &columns).map_err(|error| {
                Error::config(
                    &source.name,
                    format!("check `{}`: cannot plan `{}`: {error}", check.name, check.condition),
                    "the condition may use the source's declared columns and SQL functions",
                )
            })?;
        }
        register_empty(&ctx, &source.name, schema)?;
        validation.sources.push((source.name.clone(), found.len()));
    }
    // Every test and fact that does not plan is reported, all together.
    let mut tests = Vec::new();
    for stage in &plan.stages {
        let logical = stages::plan(&ctx.state(), stage, &plan.params).await?;
        let schema: SchemaRef = Arc::new(logical.schema().as_arrow().clone());
        validation.stages.push((
            stage.name.clone(),
            stage.description.clone(),
            schema.fields().iter().map(|f| f.name().clone()).collect(),
        ));
        register_empty(&ctx, &stage.name, schema)?;
        match quality::plan(&ctx, stage).await {
            Err(Error::Config(diagnostics)) => tests.extend(diagnostics),
            planned => drop(planned?),
        }
        if !stage.facts.is_empty() {
            match stages::plan_facts(&ctx, stage).await {
                Err(Error::Config(diagnostics)) => tests.extend(diagnostics),
                planned => drop(planned?),
            }
        }
    }
    match tests.is_empty() {
        true => Ok(validation),
        false => Err(Error::Config(tests)),
    }
}
