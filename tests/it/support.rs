//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use fidelis::manifest::Manifest;
use fidelis::plan::Overrides;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
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

/// A copy of the shipped pipeline in `ws` (its SQL, templates and seeds still those of
/// the repository), with each `(from, to)` of `edits` replaced.
pub fn shipped_pipeline(ws: &Workspace, edits: &[(&str, &str)]) -> PathBuf {
    let mut yaml = fs::read_to_string(repo().join("pipelines/loyalty.yaml")).expect("the shipped pipeline");
    let folders = [("sql_dir: ../sql", "sql"), ("templates_dir: ../templates", "templates")];
    for (key, folder) in folders {
        let (name, _) = key.split_once(':').expect("a key");
        yaml = yaml.replace(key, &format!("{name}: {}", repo().join(folder).display()));
    }
    yaml = yaml.replace("default: pipelines/seeds", &format!("default: {}", repo().join("pipelines/seeds").display()));
    for (from, to) in edits {
        assert!(yaml.contains(from), "the shipped pipeline has no `{from}`");
        yaml = yaml.replace(from, to);
    }
    ws.write("pipeline.yaml", yaml)
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

/// Every file below `dir`, relative, sorted, but the partitions' lease files
/// (`_runs/as_of=…/_lease/`), which stay behind, released, after a run.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("_lease") {
                    pending.push(path);
                }
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

/// The bucket the S3 tests use.
pub const BUCKET: &str = "fidelis-test";

/// A moto S3 server on a free loopback port, stopped when dropped.
pub struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 must be installed for this test");
        let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}") };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto's S3 server did not start on port {port} within 20 s; install it with `pip install 'moto[server]'` (scripts/test does)"
        );
    }

    /// Creates a bucket with a plain HTTP request (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to moto");
        write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        assert!(response.starts_with("HTTP/1.1 200"), "bucket creation failed: {response}");
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_bucket_name(BUCKET)
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key("testing-secret")
                .build()
                .expect("an S3 client"),
        )
    }

    /// The environment a `fidelis` process needs to reach the server.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing-secret".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    pub fn env(&self, command: &mut Command) {
        command.envs(self.variables());
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An output root under test, local or on moto, read back through object_store the way
/// fidelis writes it.
pub struct Output {
    /// What `--set output=` gets.
    pub url: String,
    store: Arc<dyn ObjectStore>,
    prefix: object_store::path::Path,
    /// The S3 settings a `fidelis` process needs, when the root is on moto.
    env: Vec<(&'static str, String)>,
}

impl Output {
    /// The folder `relative` of `ws`.
    pub fn local(ws: &Workspace, relative: &str) -> Output {
        let folder = ws.path(relative);
        Output {
            url: folder.display().to_string(),
            store: Arc::new(LocalFileSystem::new()),
            prefix: object_store::path::Path::from_absolute_path(&folder).expect("an absolute path"),
            env: Vec::new(),
        }
    }

    /// The prefix `prefix` of the test bucket on `server`.
    pub fn s3(server: &S3Server, prefix: &str) -> Output {
        Output {
            url: format!("s3://{BUCKET}/{prefix}"),
            store: server.store(),
            prefix: prefix.into(),
            env: server.variables(),
        }
    }

    /// The `fidelis` binary, set up to reach this output.
    pub fn fidelis(&self) -> Command {
        let mut command = fidelis();
        command.envs(self.env.iter().map(|(key, value)| (*key, value)));
        command
    }

    /// Every object below the root (relative path → bytes), but the lease files.
    pub async fn contents(&self) -> BTreeMap<String, Vec<u8>> {
        let listed: Vec<_> = self.store.list(Some(&self.prefix)).try_collect().await.expect("list the output");
        let mut contents = BTreeMap::new();
        for meta in listed {
            let relative: Vec<String> = meta
                .location
                .prefix_match(&self.prefix)
                .expect("below the root")
                .map(|p| p.as_ref().to_string())
                .collect();
            if relative.iter().any(|part| part == "_lease") {
                continue;
            }
            let bytes = self.store.get(&meta.location).await.expect("read").bytes().await.expect("bytes");
            contents.insert(relative.join("/"), bytes.to_vec());
        }
        contents
    }

    /// Replaces everything below the root, lease files included, with `contents`.
    pub async fn restore(&self, contents: &BTreeMap<String, Vec<u8>>) {
        let listed: Vec<_> = self.store.list(Some(&self.prefix)).try_collect().await.expect("list the output");
        for meta in listed {
            self.store.delete(&meta.location).await.expect("delete");
        }
        for (relative, bytes) in contents {
            let path = relative.split('/').fold(self.prefix.clone(), |path, part| path.join(part));
            self.store.put(&path, PutPayload::from(bytes.clone())).await.expect("write");
        }
    }
}

/// A `fidelis` process running in the background, its standard error kept in a file.
pub struct Running {
    child: Child,
    stderr: PathBuf,
    ready: PathBuf,
}

/// How long a test waits for a `fidelis` process before it calls it hung.
const HUNG: Duration = Duration::from_secs(180);

/// How a `fidelis` process ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    pub stderr: String,
}

impl Running {
    /// Starts `command`; `name` names its files in `ws` (`{name}.stderr`, `{name}.ready`, which
    /// the process creates when it reaches its failure point).
    pub fn start(mut command: Command, ws: &Workspace, name: &str) -> Running {
        let stderr = ws.path(&format!("{name}.stderr"));
        let ready = ws.path(&format!("{name}.ready"));
        let file = fs::File::create(&stderr).expect("a file for standard error");
        let child = command
            .env("FIDELIS_FAILPOINT_READY", &ready)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("fidelis starts");
        Running { child, stderr, ready }
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to standard error so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until `condition` holds, failing if the process ends first.
    fn wait_until(&mut self, what: &str, condition: impl Fn(&Running) -> bool) {
        let start = Instant::now();
        while !condition(self) {
            if let Some(status) = self.child.try_wait().expect("process status") {
                panic!("fidelis ended ({status}) before {what}:\n{}", self.stderr());
            }
            assert!(start.elapsed() < HUNG, "fidelis did not get to {what}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the process reaches its failure point.
    pub fn wait_ready(&mut self) {
        self.wait_until("its failure point", |running| running.ready.exists());
    }

    /// Waits until the process logs `text`.
    pub fn wait_for_log(&mut self, text: &str) {
        self.wait_until(&format!("logging `{text}`"), |running| running.stderr().contains(text));
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits for the process to end.
    pub fn finish(mut self) -> Ended {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                return Ended { code: status.code(), signal: status.signal(), stderr: self.stderr() };
            }
            if start.elapsed() > HUNG {
                let _ = self.child.kill();
                panic!("fidelis did not end:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `fidelis run` of the shipped pipeline's `customer_summary` (and what it reads) on
/// the one-source fixture `tests/fixtures/summary`, as of 2024-03-31, into `out`.
pub fn summary_run(out: &Path) -> Command {
    let mut command = fidelis();
    command
        .args(["run", "pipelines/loyalty.yaml", "--as-of", "2024-03-31", "--only", "customer_summary", "--set"])
        .arg(format!("input={}", repo().join("tests/fixtures/summary").display()))
        .arg("--set")
        .arg(format!("output={}", out.display()));
    command
}
