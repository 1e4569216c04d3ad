//! The one place that renders templates: loads every file of the templates folder
//! into Tera, registers the report filters, and renders one report at a time with
//! the escaping its output format needs.
//!
//! Escaping follows the *output* file, not the template's name: `report.html` is
//! HTML-escaped and `report.md` Markdown-escaped, whatever the templates are
//! called, and partials share the escaping of the report that includes them. So
//! `{{ segment.segment }}` of a segment named `<script>` is text in both. Values
//! that are markup on purpose (the SVG charts) are inserted with `| safe`.

use std::error::Error as _;
use std::path::{Path, PathBuf};

use tera::Tera;

use super::filters::{self, escape_html};
use super::format::Locale;
use crate::config::Report;
use crate::error::{Diagnostic, Error, Result};

/// What help says when a template fails.
const HINT: &str = "fix the template; the context it can use is listed in the README (report context)";

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

/// Escapes text for Markdown (CommonMark and GitHub tables): every character that can
/// start markup or split a table cell is backslash-escaped, and line breaks become
/// spaces so that a value cannot end a table row.
pub(crate) fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_output_file() {
        assert_eq!(Escaping::for_output("report.html"), Escaping::Html);
        assert_eq!(Escaping::for_output("out/Report.HTM"), Escaping::Html);
        assert_eq!(Escaping::for_output("report.md"), Escaping::Markdown);
        assert_eq!(Escaping::for_output("report.txt"), Escaping::None);
        assert_eq!(Escaping::for_output("README"), Escaping::None);
    }

    #[test]
    fn markdown_escaping_keeps_text_as_text() {
        assert_eq!(escape_markdown("<script>a|b</script>"), r"\<script\>a\|b\</script\>");
        assert_eq!(escape_markdown("Can't Lose *Them*_\n# x"), r"Can't Lose \*Them\*\_ \# x");
    }
}
