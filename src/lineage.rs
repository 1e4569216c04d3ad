//! OpenLineage run events (<https://openlineage.io>), so lineage catalogues (Marquez,
//! DataHub, Google's Data Lineage, …) know which tables a run read and wrote.
//!
//! A run sends `START` when it begins and `COMPLETE` or `FAIL` when it ends. Events go
//! where `--lineage` says (`file:PATH`, `console`, or an HTTP URL), or else where the
//! OpenLineage clients' environment variables say: `OPENLINEAGE_URL` (with
//! `OPENLINEAGE_ENDPOINT`, default `api/v1/lineage`, and `OPENLINEAGE_API_KEY`, sent
//! as a bearer token); `OPENLINEAGE_DISABLED=true` turns them off. Nothing is sent
//! when neither is set.
//!
//! - The job is `{OPENLINEAGE_NAMESPACE or "fidelis"}` / the pipeline's name.
//! - The run id is the UUID v5 (URL namespace) of `fidelis:{pipeline}:{as_of}:{run_id}`,
//!   all three in the manifest, so a manifest leads to its lineage run and back.
//! - Inputs are the sources, with their declared columns (schema facet) and, at the
//!   end, the rows, bytes and files read; outputs are the published tables (quarantine
//!   tables included), with the schema of the Parquet written and its rows, bytes and
//!   files (outputStatistics).
//! - `OPENLINEAGE_PARENT_ID` (`{namespace}/{job name}/{run id}`, what the Airflow
//!   OpenLineage provider's `lineage_parent_id` macro gives) and
//!   `OPENLINEAGE_ROOT_PARENT_ID` become the parent run facet, as in OpenLineage's dbt
//!   integration.
//!
//! Lineage is a side channel: a failure to send an event is a warning, never a
//! failed run. Dataset names follow OpenLineage's naming: `s3://bucket` + object
//! path, `file` + absolute path.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::FOOTER_SIZE;
use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use indexmap::IndexMap;
use object_store::ObjectStoreExt;
use serde_json::{Value, json};
use tracing::{debug, warn};
use url::Url;
use uuid::Uuid;

use crate::error::Error;
use crate::manifest::TableReport;
use crate::plan::Plan;
use crate::sources::SourceReport;
use crate::storage::{Storage, redact};

/// Who wrote the events (and their facets): a URI naming fidelis and its version.
const PRODUCER: &str = concat!("urn:fidelis:", env!("CARGO_PKG_VERSION"));
/// The OpenLineage spec version of the events.
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SCHEMA_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const INPUT_STATISTICS_FACET: &str = "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet";
const OUTPUT_STATISTICS_FACET: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const PARENT_FACET: &str = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const NOMINAL_TIME_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet";
const PROCESSING_ENGINE_FACET: &str =
    "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
const ERROR_MESSAGE_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const JOB_TYPE_FACET: &str = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
/// The job namespace when `OPENLINEAGE_NAMESPACE` is not set.
const DEFAULT_NAMESPACE: &str = "fidelis";
/// How long one HTTP delivery may take: lineage must not hold up a run.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// POSTed as JSON to an OpenLineage HTTP endpoint, with an optional bearer token.
    Http { endpoint: Url, api_key: Option<String> },
    /// Appended to a file, one JSON event per line.
    File(PathBuf),
    /// Printed on standard output, one JSON event per line.
    Console,
}

impl FromStr for Transport {
    type Err = String;

    /// `--lineage`: `file:PATH`, `console`, or the URL of an OpenLineage server
    /// (`OPENLINEAGE_ENDPOINT` and `OPENLINEAGE_API_KEY` apply to it).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "console" {
            return Ok(Transport::Console);
        }
        if let Some(path) = text.strip_prefix("file:").filter(|path| !path.is_empty()) {
            return Ok(Transport::File(PathBuf::from(path)));
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Transport::http(text, |name| std::env::var(name).ok());
        }
        Err(format!("`{}` is not file:PATH, console or an http(s):// URL", redact(text)))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Http { endpoint, .. } => f.write_str(&redact(endpoint.as_str())),
            Transport::File(path) => write!(f, "file:{}", path.display()),
            Transport::Console => f.write_str("console"),
        }
    }
}

impl Transport {
    /// The HTTP transport to server `url`, as the OpenLineage clients configure it.
    fn http(url: &str, var: impl Fn(&str) -> Option<String>) -> Result<Transport, String> {
        let base = Url::parse(url).map_err(|error| format!("`{}` is not a URL: {error}", redact(url)))?;
        let endpoint = var("OPENLINEAGE_ENDPOINT").filter(|e| !e.is_empty()).unwrap_or_else(|| "api/v1/lineage".into());
        let endpoint = base.join(&endpoint).map_err(|error| format!("OPENLINEAGE_ENDPOINT `{endpoint}`: {error}"))?;
        let api_key = var("OPENLINEAGE_API_KEY").filter(|key| !key.is_empty());
        Ok(Transport::Http { endpoint, api_key })
    }

    /// The transport the OpenLineage environment variables ask for, if any.
    fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Transport> {
        if var("OPENLINEAGE_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
            return None;
        }
        let url = var("OPENLINEAGE_URL").filter(|url| !url.is_empty())?;
        match Transport::http(&url, var) {
            Ok(transport) => Some(transport),
            Err(message) => {
                warn!("OPENLINEAGE_URL: {message}; no lineage events are sent");
                None
            }
        }
    }
}

/// Where this process sends its events, chosen once.
static TRANSPORT: OnceLock<Option<Transport>> = OnceLock::new();

/// Chooses where this process's runs send their events: `flag` (`--lineage`) when
/// given, the OpenLineage environment variables otherwise. Without a call, the
/// environment decides.
pub fn configure(flag: Option<Transport>) {
    let _ = TRANSPORT.set(flag.or_else(|| Transport::from_env(|name| std::env::var(name).ok())));
}

fn transport() -> Option<&'static Transport> {
    TRANSPORT.get_or_init(|| Transport::from_env(|name| std::env::var(name).ok())).as_ref()
}

/// A source as an OpenLineage input dataset.
struct Input {
    source: String,
    namespace: String,
    name: String,
    schema: Option<Value>,
}

/// The lineage of one run: [`RunLineage::start`] has sent `START`;
/// [`RunLineage::complete`] or [`RunLineage::fail`] sends the end.
pub struct RunLineage {
    /// `None` when no events are sent.
    transport: Option<&'static Transport>,
    client: Option<reqwest::Client>,
    run_id: Uuid,
    job: Value,
    run_facets: Value,
    inputs: Vec<Input>,
}

impl RunLineage {
    /// Sends the `START` event of the run `run_id` of `plan` (when events are sent at all).
    pub async fn start(plan: &Plan<'_>, storage: &Storage, run_id: &str) -> RunLineage {
        let pipeline = &plan.pipeline.name;
        let name = format!("fidelis:{pipeline}:{}:{run_id}", plan.as_of);
        let mut lineage = RunLineage {
            transport: transport(),
            client: None,
            run_id: Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()),
            job: Value::Null,
            run_facets: Value::Null,
            inputs: Vec::new(),
        };
        let Some(transport) = lineage.transport else { return lineage };
        if let Transport::Http { .. } = transport {
            match reqwest::Client::builder().timeout(HTTP_TIMEOUT).connect_timeout(HTTP_TIMEOUT).build() {
                Ok(client) => lineage.client = Some(client),
                Err(error) => {
                    warn!("OpenLineage: cannot set up an HTTP client ({error}); no lineage events are sent");
                    lineage.transport = None;
                    return lineage;
                }
            }
        }
        let namespace = std::env::var("OPENLINEAGE_NAMESPACE")
            .ok()
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        let job_type = json!({"processingType": "BATCH", "integration": "FIDELIS", "jobType": "JOB"});
        lineage.job = json!({
            "namespace": namespace,
            "name": pipeline,
            "facets": {"jobType": facet(JOB_TYPE_FACET, job_type)},
        });
        let mut run_facets = serde_json::Map::new();
        run_facets.insert(
            "processing_engine".into(),
            facet(PROCESSING_ENGINE_FACET, json!({"name": "fidelis", "version": env!("CARGO_PKG_VERSION")})),
        );
        if let Some(nominal) = nominal_time(plan) {
            run_facets.insert("nominalTime".into(), nominal);
        }
        if let Some(parent) = parent_facet(|name| std::env::var(name).ok()) {
            run_facets.insert("parent".into(), parent);
        }
        lineage.run_facets = run_facets.into();
        // A source whose location does not resolve fails the run anyway, with its error.
        lineage.inputs = plan
            .sources
            .iter()
            .filter_map(|source| {
                let location = storage.resolve(&plan.fill(&source.url)).ok()?;
                let (namespace, name) = dataset(&location.to_string());
                let schema = source.columns.as_ref().map(|columns| {
                    schema_facet(columns.iter().map(|column| (column.name.clone(), column.kind.to_string())))
                });
                Some(Input { source: source.name.clone(), namespace, name, schema })
            })
            .collect();
        let inputs = lineage.inputs.iter().map(|input| input.dataset(None)).collect();
        lineage.emit(lineage.event("START", lineage.run_facets.clone(), inputs, Vec::new())).await;
        lineage
    }

    /// Sends `COMPLETE`: the sources as read, and `written` (tables and quarantine
    /// tables as published) with their schemas and sizes.
    pub async fn complete<'a>(
        &self,
        sources: &IndexMap<String, SourceReport>,
        written: impl IntoIterator<Item = &'a TableReport>,
    ) {
        if self.transport.is_none() {
            return;
        }
        let inputs = self
            .inputs
            .iter()
            .map(|input| {
                let statistics = sources.get(&input.source).map(|report| {
                    facet(
                        INPUT_STATISTICS_FACET,
                        json!({
                            "rowCount": report.rows_read,
                            "size": report.files.iter().map(|file| file.size).sum::<u64>(),
                            "fileCount": report.files.len(),
                        }),
                    )
                });
                input.dataset(statistics)
            })
            .collect();
        let storage = Storage::new();
        let mut outputs = Vec::new();
        for table in written {
            // The dataset is the table, `{root}/{table}`, not this run's partition of it.
            let folder = table.url.rsplit_once('/').map_or(table.url.as_str(), |(folder, _)| folder);
            let (namespace, name) = dataset(folder);
            let mut facets = serde_json::Map::new();
            if let Some(schema) = published_schema(&storage, table).await {
                facets.insert("schema".into(), schema);
            }
            let statistics = json!({"rowCount": table.rows, "size": table.bytes, "fileCount": table.files.len()});
            outputs.push(json!({
                "namespace": namespace,
                "name": name,
                "facets": facets,
                "outputFacets": {"outputStatistics": facet(OUTPUT_STATISTICS_FACET, statistics)},
            }));
        }
        self.emit(self.event("COMPLETE", self.run_facets.clone(), inputs, outputs)).await;
    }

    /// Sends `FAIL`, with the error's message (credentials taken out).
    pub async fn fail(&self, error: &Error) {
        if self.transport.is_none() {
            return;
        }
        let mut run_facets = self.run_facets.clone();
        run_facets["errorMessage"] =
            facet(ERROR_MESSAGE_FACET, json!({"message": redact(&error.to_string()), "programmingLanguage": "Rust"}));
        let inputs = self.inputs.iter().map(|input| input.dataset(None)).collect();
        self.emit(self.event("FAIL", run_facets, inputs, Vec::new())).await;
    }

    fn event(&self, event_type: &str, run_facets: Value, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
        json!({
            "eventType": event_type,
            "eventTime": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "run": {"runId": self.run_id.to_string(), "facets": run_facets},
            "job": self.job,
            "inputs": inputs,
            "outputs": outputs,
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
        })
    }

    /// Delivers `event`; a failure is logged, never raised.
    async fn emit(&self, event: Value) {
        let Some(transport) = self.transport else { return };
        let line = event.to_string();
        let delivered = match transport {
            Transport::Http { endpoint, api_key } => match &self.client {
                Some(client) => post(client, endpoint, api_key.as_deref(), line).await,
                None => Err("no HTTP client".into()),
            },
            Transport::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| writeln!(file, "{line}"))
                .map_err(|error| error.to_string()),
            Transport::Console => writeln!(std::io::stdout().lock(), "{line}").map_err(|error| error.to_string()),
        };
        let event_type = event["eventType"].as_str().unwrap_or_default();
        match delivered {
            Ok(()) => debug!(event = event_type, to = %transport, run_id = %self.run_id, "OpenLineage event sent"),
            Err(message) => warn!(
                "OpenLineage {event_type} event not delivered to {transport}: {}; the run goes on without it",
                redact(&message)
            ),
        }
    }
}

impl Input {
    fn dataset(&self, statistics: Option<Value>) -> Value {
        let mut dataset = json!({"namespace": self.namespace, "name": self.name, "facets": {}});
        if let Some(schema) = &self.schema {
            dataset["facets"]["schema"] = schema.clone();
        }
        if let Some(statistics) = statistics {
            dataset["inputFacets"] = json!({"inputStatistics": statistics});
        }
        dataset
    }
}

async fn post(client: &reqwest::Client, endpoint: &Url, api_key: Option<&str>, body: String) -> Result<(), String> {
    let mut request =
        client.post(endpoint.clone()).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|error| error.to_string())?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("the server answered {status}")),
    }
}

/// A facet: its fields with the `_producer` and `_schemaURL` every facet carries.
fn facet(schema_url: &str, mut fields: Value) -> Value {
    fields["_producer"] = PRODUCER.into();
    fields["_schemaURL"] = schema_url.into();
    fields
}

fn schema_facet(columns: impl Iterator<Item = (String, String)>) -> Value {
    let fields: Vec<Value> = columns.map(|(name, kind)| json!({"name": name, "type": kind})).collect();
    facet(SCHEMA_FACET, json!({"fields": fields}))
}

/// The schema facet of a published table, read from its Parquet footer: the types
/// readers see (decimals, UTC timestamps, plain strings). `None` (and a warning)
/// when it cannot be read.
async fn published_schema(storage: &Storage, table: &TableReport) -> Option<Value> {
    let file = table.files.first()?;
    let read = async {
        let failed = |error: &dyn fmt::Display| error.to_string();
        let location = storage.resolve(file).map_err(|e| failed(&e))?;
        let (store, path, size) = (&location.store, &location.path, table.bytes);
        let tail =
            store.get_range(path, size.saturating_sub(FOOTER_SIZE as u64)..size).await.map_err(|e| failed(&e))?;
        let tail: &[u8; FOOTER_SIZE] = tail.as_ref().try_into().map_err(|_| "the file is too short".to_string())?;
        let footer = FooterTail::try_new(tail).map_err(|e| failed(&e))?;
        let start = size.saturating_sub((FOOTER_SIZE + footer.metadata_length()) as u64);
        let metadata = store.get_range(path, start..size - FOOTER_SIZE as u64).await.map_err(|e| failed(&e))?;
        let metadata = ParquetMetaDataReader::decode_metadata(&metadata).map_err(|e| failed(&e))?;
        let file_metadata = metadata.file_metadata();
        parquet_to_arrow_schema(file_metadata.schema_descr(), file_metadata.key_value_metadata())
            .map_err(|e| failed(&e))
    };
    match read.await {
        Ok(schema) => Some(schema_facet(
            schema.fields().iter().map(|field| (field.name().clone(), column_type(field.data_type()))),
        )),
        Err(message) => {
            warn!("OpenLineage: cannot read the schema of {file}: {message}; the event goes without it");
            None
        }
    }
}

/// An Arrow type in the words of the pipeline's column types.
fn column_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "integer".into(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "float".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            format!("decimal({precision},{scale})")
        }
        other => other.to_string(),
    }
}

/// A location's OpenLineage dataset namespace and name: `file` and the absolute path
/// for local files, `scheme://bucket` and the object path for object stores.
fn dataset(url: &str) -> (String, String) {
    let url = url.trim_end_matches('/');
    match url.split_once("://") {
        Some(("file", path)) => ("file".into(), path.into()),
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => (format!("{scheme}://{authority}"), path.into()),
            None => (format!("{scheme}://{rest}"), String::new()),
        },
        None => ("file".into(), url.into()),
    }
}

/// The day the run computes, as the nominal time: as_of from midnight to midnight in
/// the pipeline's timezone.
fn nominal_time(plan: &Plan<'_>) -> Option<Value> {
    let midnight = |day: chrono::NaiveDate| {
        let local = day.and_hms_opt(0, 0, 0)?.and_local_timezone(plan.timezone).earliest()?;
        Some(local.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Secs, true))
    };
    let start = midnight(plan.as_of)?;
    let end = midnight(plan.as_of.succ_opt()?)?;
    Some(facet(NOMINAL_TIME_FACET, json!({"nominalStartTime": start, "nominalEndTime": end})))
}

/// The parent run facet from `OPENLINEAGE_PARENT_ID` and `OPENLINEAGE_ROOT_PARENT_ID`
/// (`{namespace}/{job name}/{run id}`; the root defaults to the parent).
fn parent_facet(var: impl Fn(&str) -> Option<String>) -> Option<Value> {
    let parse = |name: &str| {
        let text = var(name).filter(|text| !text.is_empty())?;
        let parsed = text.split_once('/').and_then(|(namespace, rest)| {
            let (job, run) = rest.rsplit_once('/')?;
            let run = Uuid::parse_str(run).ok()?;
            Some((namespace.to_string(), job.to_string(), run.to_string()))
        });
        if parsed.is_none() {
            warn!(
                "{name}=`{text}` is not `{{namespace}}/{{job name}}/{{run id (a UUID)}}`; it is left out of the lineage events"
            );
        }
        parsed
    };
    let (namespace, job, run) = parse("OPENLINEAGE_PARENT_ID")?;
    let (root_namespace, root_job, root_run) =
        parse("OPENLINEAGE_ROOT_PARENT_ID").unwrap_or_else(|| (namespace.clone(), job.clone(), run.clone()));
    Some(facet(
        PARENT_FACET,
        json!({
            "run": {"runId": run},
            "job": {"namespace": namespace, "name": job},
            "root": {"run": {"runId": root_run}, "job": {"namespace": root_namespace, "name": root_job}},
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    }

    #[test]
    fn the_lineage_flag_names_a_file_the_console_or_a_server() {
        assert_eq!("console".parse(), Ok(Transport::Console));
        assert_eq!("file:/tmp/events.jsonl".parse(), Ok(Transport::File("/tmp/events.jsonl".into())));
        assert!("file:".parse::<Transport>().is_err());
        let error = "kafka://user:secret@broker".parse::<Transport>().unwrap_err();
        assert_eq!(error, "`kafka://broker` is not file:PATH, console or an http(s):// URL");
    }

    #[test]
    fn the_environment_configures_http_as_the_openlineage_clients_do() {
        assert_eq!(Transport::from_env(env(&[])), None);
        assert_eq!(
            Transport::from_env(env(&[("OPENLINEAGE_URL", "http://marquez:5000"), ("OPENLINEAGE_API_KEY", "k")])),
            Some(Transport::Http {
                endpoint: Url::parse("http://marquez:5000/api/v1/lineage").unwrap(),
                api_key: Some("k".into())
            })
        );
        assert_eq!(
            Transport::from_env(env(&[("OPENLINEAGE_URL", "https://lineage/"), ("OPENLINEAGE_ENDPOINT", "events")])),
            Some(Transport::Http { endpoint: Url::parse("https://lineage/events").unwrap(), api_key: None })
        );
        assert_eq!(
            Transport::from_env(env(&[("OPENLINEAGE_URL", "http://marquez:5000"), ("OPENLINEAGE_DISABLED", "TRUE")])),
            None
        );
    }

    #[test]
    fn datasets_are_named_as_openlineage_names_them() {
        assert_eq!(dataset("s3://bucket/warehouse/clv/"), ("s3://bucket".into(), "warehouse/clv".into()));
        assert_eq!(dataset("file:///data/raw/orders"), ("file".into(), "/data/raw/orders".into()));
        assert_eq!(dataset("gs://bucket"), ("gs://bucket".into(), String::new()));
    }

    #[test]
    fn parent_ids_are_namespace_job_and_run() {
        let parent = parent_facet(env(&[(
            "OPENLINEAGE_PARENT_ID",
            "airflow/loyalty_monthly.fidelis/01890f5e-8d2a-7f3e-9c4b-2a1d3e4f5a6b",
        )]))
        .unwrap();
        assert_eq!(parent["job"], json!({"namespace": "airflow", "name": "loyalty_monthly.fidelis"}));
        assert_eq!(parent["run"]["runId"], "01890f5e-8d2a-7f3e-9c4b-2a1d3e4f5a6b");
        assert_eq!(parent["root"]["job"]["name"], "loyalty_monthly.fidelis", "the root defaults to the parent");
        assert_eq!(parent["_schemaURL"], PARENT_FACET);
        assert_eq!(parent_facet(env(&[("OPENLINEAGE_PARENT_ID", "airflow/no-run-id")])), None);
    }

    #[test]
    fn arrow_types_are_named_like_column_types() {
        assert_eq!(column_type(&DataType::Utf8View), "string");
        assert_eq!(column_type(&DataType::Decimal128(18, 2)), "decimal(18,2)");
        assert_eq!(column_type(&DataType::Int64), "integer");
    }
}
