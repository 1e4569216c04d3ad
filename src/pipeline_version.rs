//! The pipeline version: a fingerprint of everything besides parameters and input data
//! that decides what a run computes. Recorded in the manifest; `--skip-existing` and
//! `--only` compare it with the published run's.
//!
//! It covers fidelis's own version, the pipeline file, the SQL of every stage, the files
//! of `templates_dir` (when the pipeline has reports), and the seeds: the files of the
//! sources located in the `seeds` folder beside the pipeline file (`pipelines/seeds/`,
//! where dbt keeps them too), reference tables that are part of the pipeline rather than
//! data. It is the first 16 hex digits of a SHA-256.

use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use crate::error::{Error, Result};
use crate::plan::Plan;

/// The version of `plan`'s pipeline, with its parameters bound (they place the seeds).
pub fn pipeline_version(plan: &Plan<'_>) -> Result<String> {
    let pipeline = plan.pipeline;
    let mut hash = Fingerprint(Context::new(&SHA256));
    hash.add("fidelis", env!("CARGO_PKG_VERSION").as_bytes());
    hash.add("pipeline", &read(&pipeline.file)?);
    for stage in &pipeline.stages {
        hash.add(&stage.name, stage.sql.as_bytes());
    }
    if !pipeline.reports.is_empty() {
        hash.add_files(&pipeline.templates_dir)?;
    }
    let seeds = canonical(&pipeline.file.parent().unwrap_or(Path::new(".")).join("seeds"));
    for source in pipeline.sources.values() {
        let url = plan.fill(&source.url);
        let path = url.strip_prefix("file://").unwrap_or(&url);
        if url.contains("://") && !url.starts_with("file://") {
            continue;
        }
        let path = canonical(Path::new(path));
        if path.starts_with(&seeds) && path.exists() {
            hash.add_files(&path)?;
        }
    }
    let digest = hash.0.finish();
    Ok(digest.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect())
}

struct Fingerprint(Context);

impl Fingerprint {
    /// Adds a named item; names and lengths keep items from running into each other.
    fn add(&mut self, name: &str, bytes: &[u8]) {
        for part in [name.as_bytes(), bytes] {
            self.0.update(&(part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    /// Adds the file at `path`, or every file below the folder at `path` in name order.
    fn add_files(&mut self, path: &Path) -> Result<()> {
        if path.is_file() {
            self.add(&path.display().to_string(), &read(path)?);
            return Ok(());
        }
        let mut files = Vec::new();
        let mut pending = vec![path.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let entries = std::fs::read_dir(&folder)
                .map_err(|e| Error::runtime(format!("reading the folder {}", folder.display()), e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::runtime(format!("reading the folder {}", folder.display()), e))?;
                let found = entry.path();
                if found.is_dir() { pending.push(found) } else { files.push(found) }
            }
        }
        files.sort();
        for file in files {
            let name = file.strip_prefix(path).unwrap_or(&file).display().to_string();
            self.add(&name, &read(&file)?);
        }
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::runtime(format!("reading {} for the pipeline version", path.display()), e))
}

/// `path` made absolute with links resolved, or as given when it does not exist.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Overrides, bind};

    fn version(folder: &Path) -> String {
        let pipeline = crate::config::load(&folder.join("pipeline.yaml")).unwrap();
        pipeline_version(&bind(&pipeline, &Overrides::default()).unwrap()).unwrap()
    }

    #[test]
    fn the_version_changes_with_the_sql_and_the_seeds_not_with_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        // Data beside the pipeline, but not among its seeds.
        write("data/orders.csv", "id\n1\n");
        write(
            "pipeline.yaml",
            &format!(
                "name: t\nsources:\n  seeds: {{url: {}}}\n  orders: {{url: {}}}\nstages:\n  s: {{sql: s.sql}}\n",
                dir.path().join("seeds/map.csv").display(),
                dir.path().join("data/orders.csv").display()
            ),
        );
        write("seeds/map.csv", "a,b\n1,2\n");
        write("s.sql", "SELECT * FROM orders, seeds");
        let first = version(dir.path());
        assert_eq!(first.len(), 16);
        assert_eq!(version(dir.path()), first, "the same files, the same version");

        write("data/orders.csv", "id\n1\n2\n");
        assert_eq!(version(dir.path()), first, "input data is not part of the version");
        write("s.sql", "SELECT id FROM orders, seeds");
        let changed_sql = version(dir.path());
        assert_ne!(changed_sql, first);
        write("seeds/map.csv", "a,b\n1,3\n");
        assert_ne!(version(dir.path()), changed_sql, "a seed is part of the version");
    }
}
