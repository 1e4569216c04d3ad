//! Phase two of loading a pipeline: from the file as written to a [`Pipeline`] whose
//! names all resolve, with every problem found reported at once, each with its
//! file, line and a fix.

mod quality;

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::{Component, Path, PathBuf};

use datafusion::error::DataFusionError;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{self, Expr, Value, visit_expressions};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use super::layers::{self, Layer, Layered, Read};
use super::locate::locate;
use super::quality::Declared;
use super::raw::{RawPipeline, RawReport, RawSource, RawStage};
use super::schema_file::{self, RawSchemaFile, SchemaFile};
use super::{AS_OF, Check, Column, Fact, Outputs, Param, Pipeline, Report, Source, SqlFile, Stage, TIMEZONE};
use crate::config::types::{ParamType, ParamValue};
use crate::error::{Diagnostic, Error, Result};

/// Reads, parses and compiles the pipeline file at `path`.
pub fn load(path: &Path) -> Result<Pipeline> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        Error::config(
            &file,
            format!("cannot read the pipeline file: {error}"),
            "check the path; pipelines live in `pipelines/`, e.g. `fidelis run pipelines/loyalty.yaml`",
        )
    })?;
    let raw: RawPipeline =
        parse(&text, &file, "the pipeline reference is in README.md").map_err(|d| Error::Config(vec![d]))?;
    Compiler { file, text: &text, path, diagnostics: Vec::new() }.compile(raw)
}

/// Phase one: the YAML as written (a pipeline or a schema file), with the path and line
/// of the first error; `reference` says where the file's keys are described.
fn parse<T: DeserializeOwned>(text: &str, file: &str, reference: &str) -> std::result::Result<T, Diagnostic> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let location = inner.location().map(|l| (l.line(), l.column()));
        let mut message = inner.to_string();
        // serde_yaml appends the position, which the diagnostic already shows.
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        // serde_yaml may already name (part of) the path; name it once.
        let message = match message.split_once(": ") {
            Some((prefix, rest)) if path.starts_with(prefix) => format!("{path}: {rest}"),
            _ if path == "." || path.is_empty() => message,
            _ => format!("{path}: {message}"),
        };
        let hint = if message.contains("unknown field") {
            format!("check the spelling of the key; {reference}")
        } else if message.contains("missing field") {
            format!("add the missing key; {reference}")
        } else {
            format!("fix the value; {reference}")
        };
        Diagnostic { file: file.to_string(), location, message, hint: Some(hint) }
    })
}

struct Compiler<'a> {
    file: String,
    text: &'a str,
    path: &'a Path,
    diagnostics: Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn error(&mut self, at: &[&str], message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            location: locate(self.text, at),
            message: message.into(),
            hint: Some(hint.into()),
        });
    }

    fn compile(mut self, raw: RawPipeline) -> Result<Pipeline> {
        let dir = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let sql_dir = self.folder(&dir, raw.sql_dir.as_deref(), "sql_dir");
        let templates_dir = self.folder(&dir, raw.templates_dir.as_deref(), "templates_dir");
        let params = self.params(raw.params);
        let sources = self.sources(raw.sources, &params);
        let stages = self.stages(raw.stages, &sql_dir, &sources, &params);
        let outputs = raw.outputs.map(|outputs| {
            for (index, table) in outputs.tables.iter().enumerate() {
                if !stages.iter().any(|stage| &stage.name == table) {
                    let index = index.to_string();
                    self.error(
                        &["outputs", "tables", &index],
                        format!("output table `{table}` is not a stage"),
                        "list stage names under `outputs.tables`",
                    );
                }
            }
            self.placeholders(&outputs.root, &params, &["outputs", "root"]);
            Outputs { root: outputs.root, tables: outputs.tables }
        });
        let published: Vec<&String> = outputs.iter().flat_map(|o| &o.tables).collect();
        let reports = raw
            .reports
            .into_iter()
            .enumerate()
            .map(|(index, report)| self.report(index, report, &templates_dir, &stages, &published))
            .collect();
        if !self.diagnostics.is_empty() {
            return Err(Error::Config(self.diagnostics));
        }
        Ok(Pipeline {
            name: raw.name,
            description: raw.description,
            file: self.path.to_path_buf(),
            params,
            sources,
            stages,
            outputs,
            reports,
            templates_dir,
        })
    }

    /// A report: its template exists, its output path stays in the report folder, and
    /// the tables it reads are published stages (`fidelis report` reads them back).
    fn report(
        &mut self,
        index: usize,
        report: RawReport,
        templates_dir: &Path,
        stages: &[Stage],
        published: &[&String],
    ) -> Report {
        let index = index.to_string();
        if !templates_dir.join(&report.template).is_file() {
            self.error(
                &["reports", &index, "template"],
                format!("template `{}` not found in {}", report.template, templates_dir.display()),
                "create the template or fix `templates_dir` / `template`",
            );
        }
        let inside = Path::new(&report.path).components().all(|c| matches!(c, Component::Normal(_)));
        if report.path.is_empty() || !inside {
            self.error(
                &["reports", &index, "path"],
                format!("report path `{}` leaves the report folder", report.path),
                "write a file name (or a relative path without `.` or `..` segments) such as `report.html`",
            );
        }
        for (position, table) in report.tables.iter().enumerate() {
            let at = ["reports", &index, "tables", &position.to_string()];
            if !stages.iter().any(|stage| &stage.name == table) {
                self.error(&at, format!("report table `{table}` is not a stage"), "list stage names under `tables`");
            } else if !published.contains(&table) {
                self.error(
                    &at,
                    format!("report table `{table}` is not among `outputs.tables`"),
                    "add it to `outputs.tables`: reports are rendered from published tables",
                );
            }
        }
        Report { template: report.template, path: report.path, tables: report.tables }
    }

    fn folder(&mut self, dir: &Path, configured: Option<&str>, key: &str) -> PathBuf {
        let folder = configured
            .map_or_else(|| dir.to_path_buf(), |relative| crate::storage::lexically_normal(&dir.join(relative)));
        if !folder.is_dir() {
            self.error(
                &[key],
                format!("`{key}` folder {} does not exist", folder.display()),
                "paths in the pipeline file are relative to the file's own folder",
            );
        }
        folder
    }

    fn params(&mut self, raw: IndexMap<String, super::raw::RawParam>) -> IndexMap<String, Param> {
        let mut params = IndexMap::new();
        params.insert(
            AS_OF.to_string(),
            Param {
                kind: ParamType::Date,
                default: None,
                allowed: Vec::new(),
                description: Some("the day the run computes everything as of (default: yesterday)".into()),
            },
        );
        params.insert(
            TIMEZONE.to_string(),
            Param {
                kind: ParamType::String,
                default: Some(ParamValue::String("UTC".into())),
                allowed: Vec::new(),
                description: Some("IANA timezone in which timestamps become calendar days".into()),
            },
        );
        for (name, spec) in raw {
            if !is_identifier(&name) {
                self.error(
                    &["params", &name],
                    format!("parameter name `{name}` is not a lowercase identifier"),
                    "use lowercase letters, digits and `_`, starting with a letter",
                );
                continue;
            }
            if name == AS_OF && spec.kind != ParamType::Date || name == TIMEZONE && spec.kind != ParamType::String {
                self.error(
                    &["params", &name, "type"],
                    format!("built-in parameter `{name}` cannot change its type"),
                    "`as_of` is a date and `timezone` a string",
                );
                continue;
            }
            let convert = |this: &mut Self, value: &serde_yaml::Value, at: &[&str]| {
                spec.kind.from_yaml(value).map_err(|message| {
                    this.error(
                        at,
                        format!("parameter `{name}`: {message}"),
                        format!("give a value of type {}", spec.kind),
                    );
                })
            };
            let allowed: Vec<ParamValue> = spec
                .allowed
                .iter()
                .flatten()
                .filter_map(|value| convert(self, value, &["params", &name, "allowed"]).ok())
                .collect();
            let default = match &spec.default {
                Some(value) => convert(self, value, &["params", &name, "default"]).ok(),
                None => None,
            };
            if let Some(value) = &default
                && !allowed.is_empty()
                && !allowed.contains(value)
            {
                self.error(
                    &["params", &name, "default"],
                    format!("the default `{value}` of `{name}` is not among its allowed values"),
                    "change the default or add it to `allowed`",
                );
            }
            if name == TIMEZONE
                && let Some(ParamValue::String(zone)) = &default
                && zone.parse::<chrono_tz::Tz>().is_err()
            {
                self.error(
                    &["params", &name, "default"],
                    format!("`{zone}` is not an IANA timezone"),
                    "use a name such as `UTC`, `Europe/Rome` or `America/New_York`",
                );
            }
            let default = if name == AS_OF {
                default
            } else {
                default.or_else(|| params.get(&name).and_then(|p: &Param| p.default.clone()))
            };
            params.insert(name, Param { kind: spec.kind, default, allowed, description: spec.description });
        }
        params
    }

    fn placeholders(&mut self, template: &str, params: &IndexMap<String, Param>, at: &[&str]) {
        for name in url_placeholders(template) {
            if !params.contains_key(name) {
                self.error(
                    at,
                    format!("`${{{name}}}` is not a declared parameter"),
                    format!("declare `{name}` under `params`, or fix the name"),
                );
            }
        }
    }

    fn sources(
        &mut self,
        raw: IndexMap<String, RawSource>,
        params: &IndexMap<String, Param>,
    ) -> IndexMap<String, Source> {
        let mut sources = IndexMap::new();
        for (name, spec) in raw {
            if !is_identifier(&name) {
                self.error(
                    &["sources", &name],
                    format!("source name `{name}` is not a lowercase identifier"),
                    "SQL refers to sources by name: use lowercase letters, digits and `_`",
                );
            }
            self.placeholders(&spec.url, params, &["sources", &name, "url"]);
            if let Some(glob) = &spec.glob
                && let Err(error) = globset::Glob::new(glob)
            {
                self.error(
                    &["sources", &name, "glob"],
                    format!("invalid glob `{glob}`: {error}"),
                    "use `*`, `**`, `?` and `{a,b}`",
                );
            }
            let columns = spec.columns.map(|columns| {
                columns
                    .into_iter()
                    .map(|(column, raw)| Column {
                        name: column,
                        description: raw.description,
                        kind: raw.kind,
                        required: raw.required,
                        from: raw.from,
                    })
                    .collect::<Vec<_>>()
            });
            if spec.optional && columns.is_none() {
                self.error(
                    &["sources", &name, "optional"],
                    format!("optional source `{name}` declares no `columns`"),
                    "an absent optional source becomes an empty table of its declared schema: declare `columns`",
                );
            }
            if !spec.unique.is_empty() && columns.is_none() {
                // Unique columns are checked on the typed rows, by their declared names.
                self.error(
                    &["sources", &name, "unique"],
                    format!("source `{name}` declares `unique` but no `columns`"),
                    "declare the source's `columns` (with the unique ones among them)",
                );
            }
            let known = |column: &str| columns.as_ref().is_none_or(|cs| cs.iter().any(|c| c.name == column));
            let mut unknown = Vec::new();
            for (index, column) in spec.unique.iter().enumerate() {
                if !known(column) {
                    unknown.push((
                        vec!["sources".to_string(), name.clone(), "unique".into(), index.to_string()],
                        column.clone(),
                    ));
                }
            }
            for (index, check) in spec.checks.iter().enumerate() {
                let at = ["sources", &name, "checks", &index.to_string(), "condition"].map(String::from);
                if let Err(error) = parse_condition(&check.condition) {
                    let at: Vec<&str> = at.iter().map(String::as_str).collect();
                    self.error(
                        &at,
                        format!("check `{}` of source `{name}`: invalid SQL condition: {error}", check.name),
                        "write a SQL boolean expression over the source's columns, e.g. `amount >= 0`",
                    );
                }
                if let Some(column) = &check.column
                    && !known(column)
                {
                    unknown.push((at[..4].to_vec(), column.clone()));
                }
            }
            for (at, column) in unknown {
                let at: Vec<&str> = at.iter().map(String::as_str).collect();
                self.error(
                    &at,
                    format!("source `{name}` has no declared column `{column}`"),
                    "declare the column under `columns`, or fix the name",
                );
            }
            let checks = spec
                .checks
                .into_iter()
                .map(|check| Check { name: check.name, condition: check.condition, column: check.column })
                .collect();
            let freshness = spec.freshness.and_then(|raw| self.freshness(&name, raw, columns.as_deref()));
            let volume = spec.volume.and_then(|raw| self.volume(&name, raw));
            sources.insert(
                name.clone(),
                Source {
                    name,
                    description: spec.description,
                    url: spec.url,
                    glob: spec.glob,
                    format: spec.format,
                    optional: spec.optional,
                    on_bad_rows: spec.on_bad_rows,
                    columns,
                    unique: spec.unique,
                    checks,
                    metrics: spec.metrics,
                    freshness,
                    volume,
                },
            );
        }
        sources
    }

    fn stages(
        &mut self,
        raw: IndexMap<String, RawStage>,
        sql_dir: &Path,
        sources: &IndexMap<String, Source>,
        params: &IndexMap<String, Param>,
    ) -> Vec<Stage> {
        let names: BTreeSet<&str> = raw.keys().map(String::as_str).collect();
        let mut stages = Vec::new();
        for (name, spec) in &raw {
            if !is_identifier(name) {
                self.error(
                    &["stages", name],
                    format!("stage name `{name}` is not a lowercase identifier"),
                    "SQL refers to stages by name: use lowercase letters, digits and `_`",
                );
            }
            if sources.contains_key(name) {
                self.error(
                    &["stages", name],
                    format!("`{name}` is both a source and a stage"),
                    "rename one of them; SQL refers to both by name",
                );
            }
            let tests = self.tests(name, &spec.tests, sources, &names);
            let (sql, origin, file) = match (&spec.sql, &spec.query) {
                (Some(_), Some(_)) => {
                    self.error(
                        &["stages", name],
                        format!("stage `{name}` has both `sql` and `query`"),
                        "keep one of them",
                    );
                    continue;
                }
                (None, Some(query)) => (query.clone(), format!("stages.{name}.query"), None),
                (file, None) => {
                    let path = sql_dir.join(file.clone().unwrap_or_else(|| format!("{name}.sql")));
                    match std::fs::read_to_string(&path) {
                        Ok(sql) => {
                            let file = self.sql_file(sql_dir, &path);
                            (sql, path.display().to_string(), Some(file))
                        }
                        Err(error) => {
                            let at: &[&str] = if file.is_some() { &["stages", name, "sql"] } else { &["stages", name] };
                            self.error(
                                at,
                                format!("cannot read the SQL of stage `{name}` at {}: {error}", path.display()),
                                "create the file, or set `sql:` (relative to `sql_dir`) or an inline `query:`",
                            );
                            continue;
                        }
                    }
                }
            };
            match analyze_sql(&sql) {
                Ok(analysis) => {
                    let mut depends_on = Vec::new();
                    for table in analysis.tables {
                        if sources.contains_key(&table) || names.contains(table.as_str()) {
                            depends_on.push(table);
                        } else {
                            let known: Vec<&str> =
                                sources.keys().map(String::as_str).chain(names.iter().copied()).collect();
                            self.error(
                                &["stages", name],
                                format!(
                                    "stage `{name}` ({origin}) reads `{table}`, which is neither a source nor a stage"
                                ),
                                format!("known tables: {}", known.join(", ")),
                            );
                        }
                    }
                    for placeholder in analysis.placeholders {
                        if !params.contains_key(&placeholder) {
                            self.error(
                                &["stages", name],
                                format!(
                                    "stage `{name}` ({origin}) uses `${placeholder}`, which is not a declared parameter"
                                ),
                                format!("declare `{placeholder}` under `params`, or fix the name"),
                            );
                        }
                    }
                    self.counts(name, spec);
                    let facts = self.facts(name, spec);
                    let description = self.description(name, spec, file.as_ref());
                    stages.push(Stage {
                        name: name.clone(),
                        description,
                        sql,
                        origin,
                        file,
                        sql_reads: depends_on.clone(),
                        depends_on,
                        counts: spec.counts.clone(),
                        facts,
                        on_error: spec.on_error,
                        tests,
                    });
                }
                Err((message, location)) => self.diagnostics.push(Diagnostic {
                    file: origin,
                    location,
                    message: format!("stage `{name}`: {message}"),
                    hint: Some("each stage is one SELECT (CTEs welcome); parameters are `$name`".into()),
                }),
            }
        }
        self.layering(&stages, sources, sql_dir);
        self.test_reads(&mut stages);
        self.order(stages)
    }

    /// The stage's SQL file at `path` below `sql_dir`, with its layer and schema file.
    fn sql_file(&mut self, sql_dir: &Path, path: &Path) -> SqlFile {
        let relative = crate::storage::lexically_normal(path).strip_prefix(sql_dir).map(Path::to_path_buf).ok();
        let layer = relative.as_deref().and_then(Layer::of);
        let schema_path = schema_file::path_of(path);
        let schema = match std::fs::read_to_string(&schema_path) {
            Ok(text) => {
                let shown = schema_path.display().to_string();
                let reference = "schema files are described in README.md (Layers and docs)";
                match parse::<RawSchemaFile>(&text, &shown, reference) {
                    Ok(raw) => Some(SchemaFile::new(&schema_path, &text, raw)),
                    Err(diagnostic) => {
                        self.diagnostics.push(diagnostic);
                        None
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                self.diagnostics.push(Diagnostic {
                    file: schema_path.display().to_string(),
                    location: None,
                    message: format!("cannot read the schema file: {error}"),
                    hint: Some("check the file's permissions".into()),
                });
                None
            }
        };
        SqlFile { path: relative.unwrap_or_else(|| path.to_path_buf()), layer, schema }
    }

    /// The stage's description: from its schema file or from the pipeline, not both.
    fn description(&mut self, name: &str, spec: &RawStage, file: Option<&SqlFile>) -> Option<String> {
        let schema = file.and_then(|file| file.schema.as_ref());
        match (&spec.description, schema) {
            (Some(_), Some(schema)) => {
                self.error(
                    &["stages", name, "description"],
                    format!("stage `{name}` is described twice: here and in its schema file {}", schema.path),
                    "keep the description in the schema file; `description:` in the pipeline is for stages without one",
                );
                spec.description.clone()
            }
            (None, Some(schema)) => Some(schema.description.clone()),
            (description, None) => description.clone(),
        }
    }

    /// Stage `name`'s `counts` conditions are SQL boolean expressions.
    fn counts(&mut self, name: &str, spec: &RawStage) {
        for (count, condition) in &spec.counts {
            if let Err(error) = parse_condition(condition) {
                self.error(
                    &["stages", name, "counts", count],
                    format!("stage `{name}`: count `{count}`: invalid SQL condition `{condition}`: {error}"),
                    "write a SQL boolean expression over the stage's columns, e.g. `capped_shares: capped`",
                );
            }
        }
    }

    /// Stage `name`'s `facts`, each a SQL expression (whether it aggregates the stage's
    /// columns is known when it is planned: `fidelis validate`, or the run).
    fn facts(&mut self, name: &str, spec: &RawStage) -> Vec<Fact> {
        let mut facts = Vec::with_capacity(spec.facts.len());
        for (fact, expression) in &spec.facts {
            let at = ["stages", name, "facts", fact.as_str()];
            if let Err(error) = parse_condition(expression) {
                self.error(
                    &at,
                    format!("stage `{name}`: fact `{fact}`: invalid SQL expression `{expression}`: {error}"),
                    "write a SQL aggregate expression over the stage's columns, e.g. `selected_model: max(model) FILTER (WHERE selected)`",
                );
            }
            facts.push(Fact {
                name: fact.clone(),
                expression: expression.clone(),
                declared: Declared { file: self.file.clone(), location: locate(self.text, &at) },
            });
        }
        facts
    }

    /// Every layered stage's SQL reads only what its layer may read (see [`layers`]); its
    /// tests may read any table.
    fn layering(&mut self, stages: &[Stage], sources: &IndexMap<String, Source>, sql_dir: &Path) {
        let staging_of = |source: &str| -> Vec<String> {
            stages
                .iter()
                .filter(|stage| stage.layer() == Some(Layer::Staging) && stage.sql_reads.iter().any(|d| d == source))
                .map(|stage| stage.name.clone())
                .collect()
        };
        for stage in stages {
            let Some(layer) = stage.layer() else { continue };
            let reader = Layered { name: &stage.name, layer, origin: &stage.origin };
            for table in &stage.sql_reads {
                let read = match stages.iter().find(|other| &other.name == table) {
                    Some(other) => Read::Stage { layer: other.layer(), origin: &other.origin },
                    None if sources.contains_key(table) => Read::Source,
                    None => continue,
                };
                if let Some(breach) = layers::check(&reader, table, read, sql_dir, &staging_of) {
                    self.error(&["stages", &stage.name], breach.message, breach.hint);
                }
            }
        }
    }

    /// Adds what each stage's tests read to what the stage reads. A test may not read a
    /// stage that reads its own: tests run when their stage finishes, before that one can.
    fn test_reads(&mut self, stages: &mut [Stage]) {
        let sql_reads: HashMap<String, Vec<String>> =
            stages.iter().map(|stage| (stage.name.clone(), stage.depends_on.clone())).collect();
        for stage in stages.iter_mut() {
            for test in &stage.tests {
                let Some(reference) = test.reference() else { continue };
                let table = &reference.table;
                if *table == stage.name || stage.depends_on.contains(table) {
                    continue;
                }
                if reads(&sql_reads, table, &stage.name) {
                    self.diagnostics.push(test.declared.diagnostic(
                        format!(
                            "test `{}` of stage `{}` reads `{table}`, which reads `{}`: the test runs when `{}` finishes, before `{table}` can",
                            test.name, stage.name, stage.name, stage.name
                        ),
                        format!("declare the test on `{table}` the other way round, or on a stage that reads both"),
                    ));
                    continue;
                }
                stage.depends_on.push(table.clone());
            }
        }
    }

    /// Topological order, ties in declaration order so runs are reproducible.
    fn order(&mut self, stages: Vec<Stage>) -> Vec<Stage> {
        let mut pending: Vec<Stage> = stages;
        let mut ordered: Vec<Stage> = Vec::new();
        while !pending.is_empty() {
            let stage_names: BTreeSet<String> = pending.iter().map(|s| s.name.clone()).collect();
            let ready = pending
                .iter()
                .position(|stage| stage.depends_on.iter().all(|dependency| !stage_names.contains(dependency)));
            match ready {
                Some(index) => ordered.push(pending.remove(index)),
                None => {
                    let cycle = find_cycle(&pending);
                    let first = cycle.first().cloned().unwrap_or_default();
                    self.error(
                        &["stages", &first],
                        format!("stages depend on each other in a cycle: {}", cycle.join(" → ")),
                        "a stage can only read sources and stages that do not read it back",
                    );
                    break;
                }
            }
        }
        ordered
    }
}

/// Whether the stage `from` reads `target`, directly or through other stages.
fn reads(sql_reads: &HashMap<String, Vec<String>>, from: &str, target: &str) -> bool {
    let mut pending = vec![from];
    let mut seen = BTreeSet::new();
    while let Some(table) = pending.pop() {
        if table == target {
            return true;
        }
        if seen.insert(table) {
            pending.extend(sql_reads.get(table).into_iter().flatten().map(String::as_str));
        }
    }
    false
}

/// One cycle among stages none of which can run, as `a → b → a`.
fn find_cycle(stages: &[Stage]) -> Vec<String> {
    let by_name: HashMap<&str, &Stage> = stages.iter().map(|s| (s.name.as_str(), s)).collect();
    let Some(start) = stages.first() else {
        return Vec::new();
    };
    let mut path: Vec<&str> = vec![start.name.as_str()];
    loop {
        let current = by_name[path[path.len() - 1]];
        let Some(next) = current.depends_on.iter().find(|d| by_name.contains_key(d.as_str())) else {
            return path.iter().map(|s| s.to_string()).collect();
        };
        if let Some(at) = path.iter().position(|p| p == next) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.clone());
            return cycle;
        }
        path.push(next);
    }
}

/// What a stage's SQL reads and which parameters it uses.
struct SqlAnalysis {
    tables: Vec<String>,
    placeholders: BTreeSet<String>,
}

fn analyze_sql(sql: &str) -> std::result::Result<SqlAnalysis, (String, Option<(usize, usize)>)> {
    let statements = DFParser::parse_sql(sql).map_err(|error| {
        let message = error.to_string();
        (message.clone(), sql_error_location(&message))
    })?;
    let statement = match (statements.len(), statements.front()) {
        (1, Some(statement)) => statement,
        (count, _) => {
            return Err((format!("expected exactly one SQL statement, found {count}"), None));
        }
    };
    let Statement::Statement(inner) = statement else {
        return Err(("expected a SELECT query".into(), None));
    };
    if !matches!(inner.as_ref(), ast::Statement::Query(_)) {
        let text = inner.to_string();
        let keyword = text.split_whitespace().next().unwrap_or_default();
        return Err((
            format!("expected a query (SELECT, WITH … SELECT or VALUES), found a `{keyword}` statement"),
            None,
        ));
    }
    let (tables, _ctes) = resolve_table_references(statement, true).map_err(|error| (error.to_string(), None))?;
    let mut placeholders = BTreeSet::new();
    let _ = visit_expressions(inner.as_ref(), |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &value.value
            && let Some(name) = name.strip_prefix('$')
        {
            placeholders.insert(name.to_string());
        }
        ControlFlow::<()>::Continue(())
    });
    let mut names: Vec<String> = tables.iter().map(|t| t.table().to_string()).collect();
    names.dedup();
    Ok(SqlAnalysis { tables: names, placeholders })
}

/// Parses a SQL boolean expression (a source's check, a stage's count) as the run
/// will: the whole text, one expression.
fn parse_condition(condition: &str) -> std::result::Result<(), String> {
    DFParser::parse_sql_into_expr(condition).map(|_| ()).map_err(|error| match error.find_root() {
        DataFusionError::SQL(parser_error, _) => parser_error.to_string(),
        root => root.to_string(),
    })
}

/// sqlparser writes positions as "Line: 3, Column: 5".
fn sql_error_location(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.find("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// The parameter names used as `${name}` in a URL template.
pub fn url_placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split("${").skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_analysis_finds_tables_and_placeholders_but_not_ctes() {
        let analysis = analyze_sql(
            "WITH days AS (SELECT * FROM transactions WHERE d <= $as_of)\nSELECT * FROM days JOIN customers USING (id) WHERE x = $window",
        )
        .unwrap();
        let mut tables = analysis.tables.clone();
        tables.sort();
        assert_eq!(tables, ["customers", "transactions"]);
        assert_eq!(analysis.placeholders.into_iter().collect::<Vec<_>>(), ["as_of", "window"]);
    }

    #[test]
    fn sql_syntax_errors_carry_their_position() {
        let (message, location) = analyze_sql("SELECT a\nFROM t\nWHERE )").err().unwrap();
        assert!(message.contains("Line"), "{message}");
        assert_eq!(location, Some((3, 7)));
    }

    #[test]
    fn a_stage_is_one_query_not_another_statement() {
        for (sql, keyword) in [
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("DROP TABLE orders", "DROP"),
            ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ] {
            let (message, _) = analyze_sql(sql).err().unwrap();
            assert_eq!(
                message,
                format!("expected a query (SELECT, WITH … SELECT or VALUES), found a `{keyword}` statement")
            );
        }
        let (message, _) = analyze_sql("SELECT 1; SELECT 2").err().unwrap();
        assert_eq!(message, "expected exactly one SQL statement, found 2");
        assert!(analyze_sql("VALUES (1), (2)").is_ok());
    }

    #[test]
    fn url_placeholders_are_found() {
        assert_eq!(url_placeholders("${input}/x/${y}").collect::<Vec<_>>(), ["input", "y"]);
    }
}
