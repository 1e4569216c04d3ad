//! Helpers shared by the integration tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use fidelis::manifest::Manifest;
use fidelis::plan::Overrides;
use tempfile::TempDir;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder for one test's pipeline, inputs and outputs.
pub struct Workspace {
    pub dir: TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace { dir: tempfile::tempdir().expect("temporary folder") }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `content` to `relative`, creating folders.
    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("a parent folder")).expect("create folders");
        fs::write(&path, content).expect("write file");
        path
    }

    /// Replaces the temporary folder's path in `text`, for snapshots.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.dir.path().display().to_string(), "[TMP]")
    }
}

/// Overrides for a run as of `as_of` with `--set` values.
pub fn overrides(as_of: &str, set: &[(&str, &str)]) -> Overrides {
    Overrides {
        as_of: Some(as_of.parse().expect("a YYYY-MM-DD date")),
        set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        env: Vec::new(),
        only: Vec::new(),
        ..Overrides::default()
    }
}

/// Loads and runs the pipeline at `path`.
pub async fn run(path: &Path, as_of: &str, set: &[(&str, &str)]) -> fidelis::Result<Manifest> {
    run_only(path, as_of, set, &[]).await
}

/// Loads and runs the pipeline at `path`, only the `only` stages (and what they read).
pub async fn run_only(path: &Path, as_of: &str, set: &[(&str, &str)], only: &[&str]) -> fidelis::Result<Manifest> {
    let pipeline = fidelis::config::load(path)?;
    let mut bound = overrides(as_of, set);
    bound.only = only.iter().map(|s| s.to_string()).collect();
    fidelis::run::run(&pipeline, &bound).await
}

/// The batches of a published Parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a Parquet reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("readable batches")
}

/// The partition file of `table` under output root `root`.
pub fn partition_file(root: &Path, table: &str, as_of: &str) -> PathBuf {
    root.join(table).join(format!("as_of={as_of}")).join("part-00000.parquet")
}

/// A published table as an aligned text table, for exact comparisons.
pub fn table(root: &Path, table: &str, as_of: &str) -> String {
    let batches = read_parquet(&partition_file(root, table, as_of));
    pretty_format_batches(&batches).expect("printable batches").to_string()
}

/// Every file below `dir`, relative, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).expect("below dir").display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// The `fidelis` binary built for these tests.
pub fn fidelis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fidelis"));
    command.current_dir(repo()).env_remove("FIDELIS_INPUT").env_remove("FIDELIS_OUTPUT").env("NO_COLOR", "1");
    command
}

/// A one-source pipeline over `transactions` files in `{input}/transactions/`, with
/// the transactions contract and `on_bad_rows` as given, and the given stages.
pub fn transactions_pipeline(on_bad_rows: &str, stages: &str, tables: &str) -> String {
    format!(
        r#"name: test
params:
  input: {{type: string, default: input}}
  output: {{type: string, default: out}}
sources:
  transactions:
    url: ${{input}}/transactions/
    on_bad_rows: {on_bad_rows}
    columns:
      order_id: {{type: string, required: true}}
      customer_id: {{type: string, required: true}}
      order_ts: {{type: timestamp, required: true}}
      amount: {{type: "decimal(18,2)", required: true}}
      kind: string
    unique: [order_id]
    checks:
      - name: amount not negative
        column: amount
        condition: amount >= 0
stages:
{stages}
outputs:
  root: ${{output}}
  tables: [{tables}]
"#
    )
}

/// Runs `query` over the published `tables` of the run under `root` as of `as_of`.
pub async fn query(root: &Path, as_of: &str, tables: &[&str], query: &str) -> Vec<RecordBatch> {
    let ctx = datafusion::prelude::SessionContext::new();
    for table in tables {
        let file = partition_file(root, table, as_of).display().to_string();
        ctx.register_parquet(*table, &file, datafusion::prelude::ParquetReadOptions::default())
            .await
            .expect("register");
    }
    ctx.sql(query).await.expect(query).collect().await.expect(query)
}
