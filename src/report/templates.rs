//! The one place that renders templates: loads every file of the templates folder
//! into Tera, registers the report filters and chart functions, renders one report at
//! a time with the escaping its output format needs, and checks which tables a report's
//! templates read.
//!
//! Escaping follows the *output* file, not the template's name: `report.html` is
//! HTML-escaped and `report.md` Markdown-escaped, whatever the templates are
//! called, and partials share the escaping of the report that includes them. So
//! `{{ segment.segment }}` of a segment named `<script>` is text in both. Values
//! that are markup on purpose (the SVG charts) are inserted with `| safe`.

use std::collections::BTreeSet;
use std::error::Error as _;
use std::path::{Path, PathBuf};

use tera::Tera;
use tera::ast::{Expr, ExprVal, Node};

use super::escape::{escape_html, escape_markdown};
use super::format::Locale;
use super::{chart_functions, filters};
use crate::config::Report;
use crate::error::{Diagnostic, Error, Result};

/// What help says when a template fails.
const HINT: &str = "fix the template; what it can use is described in docs/report-context.md";

/// The templates of a pipeline, parsed, with the report filters registered.
pub(crate) struct Templates {
    tera: Tera,
    dir: PathBuf,
}

/// How values are escaped in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escaping {
    Html,
    Markdown,
    /// Other formats (text, CSV): written as they are.
    None,
}

impl Escaping {
    fn for_output(path: &str) -> Self {
        let extension = Path::new(path).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("html" | "htm" | "xhtml" | "xml" | "svg") => Escaping::Html,
            Some("md" | "markdown") => Escaping::Markdown,
            _ => Escaping::None,
        }
    }
}

impl Templates {
    /// Parses every file below `dir` (except hidden ones), named by its path relative
    /// to `dir` with `/` separators, e.g. `partials/tiles.html.tera`.
    pub(crate) fn load(dir: &Path, locale: Locale, currency: &str) -> Result<Self> {
        let files = template_files(dir)?;
        let mut tera = Tera::default();
        tera.add_template_files(files.iter().map(|(path, name)| (path, Some(name.as_str()))).collect::<Vec<_>>())
            .map_err(|e| template_error(dir, &e))?;
        filters::register(&mut tera, locale, currency);
        chart_functions::register(&mut tera, locale, currency);
        // Tera's `get_env` would let a template publish any environment variable,
        // credentials included, in a report.
        tera.register_function("get_env", |_: &std::collections::HashMap<String, tera::Value>| {
            Err(tera::Error::msg("`get_env` is disabled: templates cannot read the environment"))
        });
        Ok(Self { tera, dir: dir.to_path_buf() })
    }

    /// Renders `report.template` with `context`, escaped for `report.path`.
    pub(crate) fn render(&self, report: &Report, context: &tera::Context) -> Result<String> {
        let mut tera = self.tera.clone();
        match Escaping::for_output(&report.path) {
            Escaping::Html => {
                // An empty suffix matches every template name: escaping is decided here.
                tera.autoescape_on(vec![""]);
                tera.set_escape_fn(escape_html);
            }
            Escaping::Markdown => {
                tera.autoescape_on(vec![""]);
                tera.set_escape_fn(escape_markdown);
            }
            Escaping::None => tera.autoescape_on(Vec::new()),
        }
        tera.render(&report.template, context).map_err(|e| template_error(&self.dir.join(&report.template), &e))
    }

    /// Checks that the templates of each report (the template, the ones it extends,
    /// includes and imports, and theirs) read only the tables the report declares, as
    /// `tables.<name>`; every problem is reported at once.
    pub(crate) fn check_tables(&self, reports: &[Report], pipeline_file: &Path) -> Result<()> {
        let mut problems = Vec::new();
        for report in reports {
            for name in self.reached(&report.template) {
                let Ok(template) = self.tera.get_template(&name) else { continue };
                let mut read = BTreeSet::new();
                tables_read(&template.ast, &mut read);
                for table in read.into_iter().filter(|t| !report.tables.contains(t)) {
                    problems.push(Diagnostic {
                        file: self.dir.join(&name).display().to_string(),
                        location: None,
                        message: format!(
                            "reads `tables.{table}`, which report `{}` does not declare (it declares: {})",
                            report.path,
                            if report.tables.is_empty() { "none".to_string() } else { report.tables.join(", ") }
                        ),
                        hint: Some(format!(
                            "add `{table}` to the report's `tables` in {} (it must be among `outputs.tables`), or \
                             remove it from the template",
                            pipeline_file.display()
                        )),
                    });
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Config(problems)) }
    }

    /// `template` and every template it reaches through `extends`, `include` and
    /// `import`.
    fn reached(&self, template: &str) -> BTreeSet<String> {
        let mut reached = BTreeSet::new();
        let mut pending = vec![template.to_string()];
        while let Some(name) = pending.pop() {
            let Ok(found) = self.tera.get_template(&name) else { continue };
            if !reached.insert(name) {
                continue;
            }
            pending.extend(found.parents.iter().cloned());
            pending.extend(found.imported_macro_files.iter().map(|(file, _)| file.clone()));
            includes(&found.ast, &mut pending);
        }
        reached
    }
}

/// The templates `nodes` include.
fn includes(nodes: &[Node], found: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Include(_, names, _) => found.extend(names.iter().cloned()),
            other => children(other, &mut |body| includes(body, found)),
        }
    }
}

/// Calls `visit` with every list of nodes directly inside `node`.
fn children(node: &Node, visit: &mut dyn FnMut(&[Node])) {
    match node {
        Node::MacroDefinition(_, definition, _) => visit(&definition.body),
        Node::FilterSection(_, section, _) => visit(&section.body),
        Node::Block(_, block, _) => visit(&block.body),
        Node::Forloop(_, forloop, _) => {
            visit(&forloop.body);
            if let Some(empty) = &forloop.empty_body {
                visit(empty);
            }
        }
        Node::If(branches, _) => {
            for (_, _, body) in &branches.conditions {
                visit(body);
            }
            if let Some((_, body)) = &branches.otherwise {
                visit(body);
            }
        }
        _ => {}
    }
}

/// The tables `nodes` read as `tables.<name>` (or `tables["name"]`).
fn tables_read(nodes: &[Node], read: &mut BTreeSet<String>) {
    for node in nodes {
        match node {
            Node::VariableBlock(_, expr) => expression_tables(expr, read),
            Node::Set(_, set) => expression_tables(&set.value, read),
            Node::Forloop(_, forloop, _) => expression_tables(&forloop.container, read),
            Node::If(branches, _) => {
                branches.conditions.iter().for_each(|(_, condition, _)| expression_tables(condition, read))
            }
            Node::FilterSection(_, section, _) => section.filter.args.values().for_each(|e| expression_tables(e, read)),
            _ => {}
        }
        children(node, &mut |body| tables_read(body, read));
    }
}

fn expression_tables(expr: &Expr, read: &mut BTreeSet<String>) {
    value_tables(&expr.val, read);
    for filter in &expr.filters {
        filter.args.values().for_each(|e| expression_tables(e, read));
    }
}

fn value_tables(value: &ExprVal, read: &mut BTreeSet<String>) {
    match value {
        ExprVal::Ident(ident) => read.extend(table_of(ident)),
        ExprVal::Math(math) => {
            expression_tables(&math.lhs, read);
            expression_tables(&math.rhs, read);
        }
        ExprVal::Logic(logic) => {
            expression_tables(&logic.lhs, read);
            expression_tables(&logic.rhs, read);
        }
        ExprVal::Test(test) => {
            read.extend(table_of(&test.ident));
            test.args.iter().for_each(|e| expression_tables(e, read));
        }
        ExprVal::MacroCall(call) => call.args.values().for_each(|e| expression_tables(e, read)),
        ExprVal::FunctionCall(call) => call.args.values().for_each(|e| expression_tables(e, read)),
        ExprVal::Array(items) => items.iter().for_each(|e| expression_tables(e, read)),
        ExprVal::StringConcat(concat) => concat.values.iter().for_each(|v| value_tables(v, read)),
        ExprVal::In(test) => {
            expression_tables(&test.lhs, read);
            expression_tables(&test.rhs, read);
        }
        ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
    }
}

/// The table an identifier such as `tables.report_trends.0.period` reads, if any.
fn table_of(ident: &str) -> Option<String> {
    let rest = ident.strip_prefix("tables")?;
    let name = if let Some(dotted) = rest.strip_prefix('.') {
        dotted.split(['.', '[']).next()?
    } else {
        let quoted = rest.strip_prefix("[\"").or_else(|| rest.strip_prefix("['"))?;
        quoted.split(['"', '\'']).next()?
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// Every non-hidden file below `dir` with its template name, sorted by name.
fn template_files(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            Error::config(
                folder.display().to_string(),
                format!("cannot read the templates folder: {e}"),
                "create it or point `templates_dir` in the pipeline at the folder holding the report templates",
            )
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::runtime(format!("reading {}", folder.display()), e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                // Template names are strings; a file Tera could not name cannot be used.
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let relative = format!("{prefix}{name}");
            if path.is_dir() {
                pending.push((path, format!("{relative}/")));
            } else {
                found.push((path, relative));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// A template problem as a configuration error naming `file`, with Tera's whole
/// message: Tera wraps the cause ("Variable `x` not found", a parse error with its
/// line) in a summary ("Failed to render 'report.html.tera'").
fn template_error(file: &Path, error: &tera::Error) -> Error {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Config(vec![Diagnostic {
        file: file.display().to_string(),
        location: None,
        message,
        hint: Some(HINT.to_string()),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_references_are_found_in_any_expression() {
        assert_eq!(table_of("tables.report_trends"), Some("report_trends".into()));
        assert_eq!(table_of("tables.report_trends.0.period"), Some("report_trends".into()));
        assert_eq!(table_of("tables[\"report_cohorts\"]"), Some("report_cohorts".into()));
        assert_eq!(table_of("tables"), None);
        assert_eq!(table_of("tablespoon.x"), None);
        let mut tera = Tera::default();
        tera.add_raw_template(
            "t",
            "{% set m = tables.a | first %}{% for r in tables.b | filter(attribute=\"x\", value=tables.c) %}\
             {{ f(rows=tables.d) }}{% endfor %}{% if tables.e is defined %}{{ \"x\" ~ tables.f }}{% endif %}",
        )
        .expect("parses");
        let mut read = BTreeSet::new();
        tables_read(&tera.get_template("t").expect("a template").ast, &mut read);
        assert_eq!(read.into_iter().collect::<Vec<_>>(), ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn escaping_follows_the_output_file() {
        assert_eq!(Escaping::for_output("report.html"), Escaping::Html);
        assert_eq!(Escaping::for_output("out/Report.HTM"), Escaping::Html);
        assert_eq!(Escaping::for_output("report.md"), Escaping::Markdown);
        assert_eq!(Escaping::for_output("report.txt"), Escaping::None);
        assert_eq!(Escaping::for_output("README"), Escaping::None);
    }
}
