//! The pipeline on an Apache Ballista cluster (the `cluster` feature): a scheduler, a
//! few executors, and `fidelis run --cluster df://HOST:PORT` as the client.
//!
//! - [`processes`]: `fidelis cluster scheduler` and `fidelis cluster executor` —
//!   Ballista's scheduler and executor with fidelis inside ([`node`]: its SQL functions,
//!   its object stores, how plans with its nodes cross processes ([`codec`]) and are
//!   planned).
//! - [`work`]: a run's side. Where a local run keeps sources and stage results in memory
//!   or local files (`crate::results`), a run on a cluster keeps them as Parquet files in
//!   its work location on the output store, and its stages run as the cluster's jobs:
//!   planned by the client, split into stages and partitions by the scheduler, run by
//!   the executors, which write each partition of a stage's result there themselves
//!   ([`write`]). Sources are read, typed and checked by the client, as locally. What a
//!   local run does on one partition because that is fastest on two cores gets a
//!   partition-aware form first ([`forms`]).
//! - [`stores`]: DataFusion's object store registry over `crate::storage`; [`engine`]:
//!   how executors run tasks (Ballista's engine, without the operator metrics that hung
//!   jobs).
//!
//! Without the feature, the command line and the run keep their cluster options, and
//! using them is a usage error saying how to get a build that has it: this module's
//! top is all that is built.

#[cfg(feature = "cluster")]
mod codec;
#[cfg(feature = "cluster")]
mod engine;
#[cfg(feature = "cluster")]
mod forms;
#[cfg(feature = "cluster")]
mod node;
#[cfg(feature = "cluster")]
mod processes;
#[cfg(feature = "cluster")]
mod stores;
#[cfg(feature = "cluster")]
mod work;
#[cfg(feature = "cluster")]
mod write;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

#[cfg(feature = "cluster")]
pub use processes::Standalone;

#[cfg(not(feature = "cluster"))]
use crate::error::Error;
use crate::error::Result;
use crate::results::Cluster;
use crate::storage::Location;

/// The scheduler Ballista's executors and clients talk to, Ballista's default port.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Partitions of each stage's query on a cluster, unless `--cluster-partitions` says.
pub const DEFAULT_PARTITIONS: usize = 16;

/// The stack of the threads that plan, encode and decode a cluster's queries: they
/// recurse through whole plans, and the shipped pipeline's deepest overflows tokio's
/// 2 MiB in a debug build. What Ballista's own scheduler runs with.
pub const STACK_BYTES: usize = 32 << 20;

/// Runs the future `work` makes to completion on a runtime of its own, whose threads and
/// the thread that drives it have [`STACK_BYTES`] of stack: for tests and tools that
/// start a [`Standalone`] cluster in their own process.
#[cfg(feature = "cluster")]
pub fn block_on_deep_stack<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F + Send + 'static) {
    let thread = std::thread::Builder::new().stack_size(STACK_BYTES).spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_stack_size(STACK_BYTES)
            .enable_all()
            .build()
            .expect("the operating system gives a runtime its threads");
        runtime.block_on(work());
    });
    // The work's own panic (a failed assertion) goes on up as it is.
    if let Err(panic) = thread.expect("the operating system gives a thread").join() {
        std::panic::resume_unwind(panic);
    }
}

/// How a run uses a cluster (`fidelis run --cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRun {
    /// The cluster's scheduler.
    pub url: ClusterUrl,
    /// Partitions of each stage's query.
    pub partitions: usize,
}

/// `fidelis cluster scheduler`: where it listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: SocketAddr,
}

/// `fidelis cluster executor`: its scheduler, where it listens, where it keeps shuffle
/// files, how many tasks it runs at once and in how much memory.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: ClusterUrl,
    /// Where its Arrow Flight service (shuffle files, results) listens; port 0: a free one.
    pub bind: SocketAddr,
    /// Its gRPC port, where the scheduler sends tasks; 0: a free one.
    pub grpc_port: u16,
    /// The host name other nodes reach it at; default: the address the scheduler sees.
    pub advertise_host: Option<String>,
    /// Where it keeps shuffle and spill files; default: a folder of its own in the
    /// system's temporary folder, removed when it stops.
    pub work_dir: Option<PathBuf>,
    /// Tasks it runs at once; default: its cores.
    pub vcores: Option<usize>,
    /// Its memory budget (`--memory-limit`), else the container's limit or a share of
    /// physical memory, as for a run.
    pub memory_limit: Option<u64>,
}

/// Runs a scheduler until the process ends.
pub async fn scheduler(options: &SchedulerOptions) -> Result<()> {
    #[cfg(feature = "cluster")]
    return processes::scheduler(options).await;
    #[cfg(not(feature = "cluster"))]
    return Err(without_feature(&format!("cannot start a scheduler on {}", options.bind)));
}

/// Runs an executor until the process is stopped (SIGTERM or SIGINT: it finishes its
/// tasks, tells the scheduler, and removes its own work folder).
pub async fn executor(options: &ExecutorOptions) -> Result<()> {
    #[cfg(feature = "cluster")]
    return processes::executor(options).await;
    #[cfg(not(feature = "cluster"))]
    return Err(without_feature(&format!("cannot start an executor for {}", options.scheduler)));
}

/// Connects a run to its cluster, its work location `work`.
pub async fn connect(run: &ClusterRun, work: Location) -> Result<Arc<dyn Cluster>> {
    #[cfg(feature = "cluster")]
    return Ok(Arc::new(work::Connection::open(&run.url, work, run.partitions).await?));
    #[cfg(not(feature = "cluster"))]
    return Err(without_feature(&format!("cannot run on {} (work location {work})", run.url)));
}

/// The usage error of a cluster command in a build without the `cluster` feature.
#[cfg(not(feature = "cluster"))]
fn without_feature(what: &str) -> Error {
    Error::Usage(format!(
        "{what}: this fidelis was built without cluster support; build it with `cargo build --release --features cluster` \
         (the Docker image has it)"
    ))
}

/// Where a cluster's scheduler listens: `df://HOST:PORT` (the port defaults to 50050;
/// `df://` may be left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    pub host: String,
    pub port: u16,
}

impl ClusterUrl {
    /// The scheduler's gRPC endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

impl FromStr for ClusterUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| {
            format!("`{text}` is not a cluster address ({why}): write df://HOST:PORT, e.g. df://scheduler:50050")
        };
        let rest = text.strip_prefix("df://").unwrap_or(text).trim_end_matches('/');
        if rest.contains("://") {
            return Err(invalid("its scheme is not df://"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| invalid("the port is not a number"))?),
            None => (rest, DEFAULT_SCHEDULER_PORT),
        };
        if host.is_empty() || host.contains('/') {
            return Err(invalid("it names no host"));
        }
        Ok(ClusterUrl { host: host.to_string(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_the_scheduler() {
        assert_eq!("df://scheduler:50051".parse(), Ok(ClusterUrl { host: "scheduler".into(), port: 50051 }));
        assert_eq!("df://10.0.0.7".parse(), Ok(ClusterUrl { host: "10.0.0.7".into(), port: 50050 }));
        assert_eq!("localhost:7".parse(), Ok(ClusterUrl { host: "localhost".into(), port: 7 }));
        assert_eq!(ClusterUrl { host: "h".into(), port: 1 }.endpoint(), "http://h:1");
        let error = "http://scheduler:50050".parse::<ClusterUrl>().unwrap_err();
        assert!(error.contains("its scheme is not df://"), "{error}");
        assert!("df://scheduler:port".parse::<ClusterUrl>().is_err());
        assert!("df://".parse::<ClusterUrl>().is_err());
    }
}
