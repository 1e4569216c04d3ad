//! SQL layers, as in dbt: staging models read sources, intermediate models read staging
//! and other intermediate models, marts read staging and intermediate models (and other
//! marts). A stage's layer is the first folder of its SQL file below `sql_dir`
//! (`staging/`, `intermediate/`, `marts/`). Stages outside those folders — inline
//! `query:` stages, files elsewhere — have no layer: what they read is not checked and
//! any stage may read them (ad-hoc analyses, test stubs). The rules concern what a
//! stage's SQL reads; its data tests may read any table.

use std::fmt;
use std::path::Path;

/// The layer a stage's SQL file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// `staging/`: one source cleaned up (days in the pipeline's timezone, as_of applied).
    Staging,
    /// `intermediate/`: building blocks shared by several marts.
    Intermediate,
    /// `marts/`: the tables people read.
    Marts,
}

impl Layer {
    /// Every layer, in the order data flows through them.
    pub const ALL: [Layer; 3] = [Layer::Staging, Layer::Intermediate, Layer::Marts];

    /// The layer of a SQL file at `path`, relative to `sql_dir`.
    pub fn of(path: &Path) -> Option<Layer> {
        let folder = path.components().next()?.as_os_str();
        Layer::ALL.into_iter().find(|layer| folder == layer.folder())
    }

    /// The layer's folder below `sql_dir`.
    pub fn folder(self) -> &'static str {
        match self {
            Layer::Staging => "staging",
            Layer::Intermediate => "intermediate",
            Layer::Marts => "marts",
        }
    }

    /// What a stage of this layer reads, for messages.
    fn reads(self) -> &'static str {
        match self {
            Layer::Staging => "staging models read sources (and other staging models) only",
            Layer::Intermediate => "intermediate models read staging and other intermediate models, never marts",
            Layer::Marts => "marts read staging and intermediate models (and other marts), never sources",
        }
    }
}

impl fmt::Display for Layer {
    /// The name of a stage of this layer: `staging model`, `intermediate model`, `mart`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Staging => "staging model",
            Layer::Intermediate => "intermediate model",
            Layer::Marts => "mart",
        })
    }
}

/// A stage of a layer, as its messages name it.
pub struct Layered<'a> {
    pub name: &'a str,
    pub layer: Layer,
    /// Where its SQL is (`sql/marts/rfm.sql`).
    pub origin: &'a str,
}

/// A table a stage reads: a source, or a stage with its layer (if any) and SQL origin.
pub enum Read<'a> {
    Source,
    Stage { layer: Option<Layer>, origin: &'a str },
}

/// A stage reading a table it must not read, with how to fix it.
#[derive(Debug, PartialEq, Eq)]
pub struct Breach {
    pub message: String,
    pub hint: String,
}

/// Whether `stage` may read `table`; a [`Breach`] when it may not. `sql_dir` is shown in
/// hints; `staging_of` names the staging models that read a source, to suggest one.
pub fn check(
    stage: &Layered<'_>,
    table: &str,
    read: Read<'_>,
    sql_dir: &Path,
    staging_of: &dyn Fn(&str) -> Vec<String>,
) -> Option<Breach> {
    let Layered { name, layer, origin } = *stage;
    let folder = |layer: Layer| sql_dir.join(layer.folder()).display().to_string();
    let this = format!("stage `{name}` ({origin}) is {} {layer}", article(layer));
    match (layer, read) {
        (Layer::Staging, Read::Source) | (_, Read::Stage { layer: None, .. }) => None,
        (Layer::Intermediate | Layer::Marts, Read::Source) => {
            let staging = staging_of(table);
            let hint = match staging.as_slice() {
                [] => format!(
                    "add a staging model that reads it, e.g. {}/stg_{table}.sql (SELECT … FROM {table}), and read that instead",
                    folder(Layer::Staging)
                ),
                found => format!("read its staging model instead: {}", quoted(found)),
            };
            Some(Breach {
                message: format!("{this} and reads the source `{table}`: only staging models read sources"),
                hint,
            })
        }
        (_, Read::Stage { layer: Some(read), origin: read_origin }) => {
            let allowed = match layer {
                Layer::Staging => read == Layer::Staging,
                Layer::Intermediate => read <= Layer::Intermediate,
                Layer::Marts => true,
            };
            if allowed {
                return None;
            }
            let hint = match layer {
                Layer::Staging => format!(
                    "a staging model only cleans up a source: move `{name}` to {}/ (or {}/ if it is published)",
                    folder(Layer::Intermediate),
                    folder(Layer::Marts)
                ),
                _ => format!(
                    "move what both need into an intermediate model in {}/ that `{table}` and `{name}` both read",
                    folder(Layer::Intermediate)
                ),
            };
            Some(Breach {
                message: format!("{this} and reads the {read} `{table}` ({read_origin}): {}", layer.reads()),
                hint,
            })
        }
    }
}

fn article(layer: Layer) -> &'static str {
    match layer {
        Layer::Intermediate => "an",
        Layer::Staging | Layer::Marts => "a",
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Vec<String> {
        Vec::new()
    }

    #[test]
    fn the_layer_is_the_first_folder_below_sql_dir() {
        assert_eq!(Layer::of(Path::new("staging/stg_orders.sql")), Some(Layer::Staging));
        assert_eq!(Layer::of(Path::new("intermediate/days.sql")), Some(Layer::Intermediate));
        assert_eq!(Layer::of(Path::new("marts/finance/revenue.sql")), Some(Layer::Marts));
        assert_eq!(Layer::of(Path::new("summary.sql")), None);
        assert_eq!(Layer::of(Path::new("analyses/marts/x.sql")), None);
    }

    #[test]
    fn each_layer_reads_the_layers_below_it() {
        let stage = |layer| Read::Stage { layer: Some(layer), origin: "x.sql" };
        let allowed = |layer, read| {
            let reader = Layered { name: "s", layer, origin: "s.sql" };
            check(&reader, "t", read, Path::new("sql"), &none).is_none()
        };
        assert!(allowed(Layer::Staging, Read::Source));
        assert!(allowed(Layer::Staging, stage(Layer::Staging)));
        assert!(!allowed(Layer::Staging, stage(Layer::Intermediate)));
        assert!(!allowed(Layer::Intermediate, Read::Source));
        assert!(allowed(Layer::Intermediate, stage(Layer::Staging)));
        assert!(allowed(Layer::Intermediate, stage(Layer::Intermediate)));
        assert!(!allowed(Layer::Intermediate, stage(Layer::Marts)));
        assert!(!allowed(Layer::Marts, Read::Source));
        assert!(allowed(Layer::Marts, stage(Layer::Intermediate)));
        assert!(allowed(Layer::Marts, stage(Layer::Marts)));
        // Stages without a layer are read by anyone.
        assert!(allowed(Layer::Staging, Read::Stage { layer: None, origin: "stages.t.query" }));
    }

    #[test]
    fn a_source_read_above_staging_points_at_its_staging_model() {
        let staging = |source: &str| vec![format!("stg_{source}")];
        let rfm = Layered { name: "rfm", layer: Layer::Marts, origin: "sql/marts/rfm.sql" };
        let breach = check(&rfm, "seeds", Read::Source, Path::new("sql"), &staging).unwrap();
        assert_eq!(
            breach.message,
            "stage `rfm` (sql/marts/rfm.sql) is a mart and reads the source `seeds`: only staging models read sources"
        );
        assert_eq!(breach.hint, "read its staging model instead: `stg_seeds`");
    }
}
