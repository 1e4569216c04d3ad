//! `fidelis cluster scheduler` and `fidelis cluster executor`: Ballista's scheduler and
//! executor with fidelis inside, configured through Ballista's extension points (session
//! builder, function registry, runtime producer, codecs), and [`Standalone`], both in one
//! process, for tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::error::BallistaError;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tracing::{info, warn};

use super::engine::WithoutMetrics;
use super::node::Node;
use super::{ClusterUrl, ExecutorOptions, SchedulerOptions};
use crate::error::{Error, Result};
use crate::memory::MemoryBudget;
use crate::signals;

/// Seconds a finished job's shuffle files stay on the executors: long enough for the
/// client to fetch its last stage's few rows.
const FINISHED_JOB_DATA_SECONDS: u64 = 60;

/// How long an executor may take to stop after SIGTERM: its running tasks' time to
/// finish (Kubernetes' grace period should be longer).
const STOP_SECONDS: u64 = 60;

/// How long an executor keeps trying to reach its scheduler when it starts (the
/// scheduler's container may start after it).
const SCHEDULER_CONNECT_SECONDS: u16 = 60;

fn ballista(what: &str) -> impl Fn(BallistaError) -> Error + '_ {
    move |error| Error::runtime(what.to_string(), error)
}

/// Runs a scheduler until the process ends.
pub async fn scheduler(options: &SchedulerOptions) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|e| Error::runtime(format!("cannot listen on {}", options.bind), e))?;
    let address = listener.local_addr().map_err(|e| Error::runtime("reading the scheduler's address", e))?;
    serve_scheduler(listener, address).await
}

async fn serve_scheduler(listener: tokio::net::TcpListener, address: SocketAddr) -> Result<()> {
    let node = Node::new();
    let (sessions, configs) = (node.clone(), node.clone());
    let config = SchedulerConfig {
        bind_host: address.ip().to_string(),
        bind_port: address.port(),
        // Partitions of a stage go to the executors in turn, not to the first one's cores.
        task_distribution: TaskDistributionPolicy::RoundRobin,
        finished_job_data_clean_up_interval_seconds: FINISHED_JOB_DATA_SECONDS,
        // Clients fetch results through the scheduler: they need to reach it alone.
        enable_embedded_flight_proxy: true,
        override_session_builder: Some(Arc::new(move |config| sessions.scheduler_session(config))),
        override_config_producer: Some(Arc::new(move || configs.config())),
        override_logical_codec: Some(node.logical_codec()),
        override_physical_codec: Some(node.physical_codec()),
        ..SchedulerConfig::default()
    };
    config.validate().map_err(ballista("configuring the scheduler"))?;
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(ballista("starting the scheduler"))?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
        .await
        .map_err(ballista("starting the scheduler"))?;
    info!(address = %address, "cluster scheduler listening");
    start_grpc_service_with_listener(listener, server).await.map_err(ballista("running the scheduler"))
}

/// A port of `host` free now: `port` itself unless it is 0.
fn free_port(host: std::net::IpAddr, port: u16) -> Result<u16> {
    if port != 0 {
        return Ok(port);
    }
    let listener =
        TcpListener::bind((host, 0)).map_err(|e| Error::runtime(format!("finding a free port on {host}"), e))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| Error::runtime("finding a free port", e))
}

/// An executor's settings, its work folder held (and removed when dropped) when it has one of its own.
fn executor_config(options: &ExecutorOptions) -> Result<(ExecutorProcessConfig, Option<tempfile::TempDir>)> {
    let (own, work_dir) = match &options.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::runtime(format!("creating {}", dir.display()), e))?;
            (None, dir.clone())
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("fidelis-executor-")
                .tempdir()
                .map_err(|e| Error::runtime("creating the executor's work folder", e))?;
            let path = dir.path().to_path_buf();
            (Some(dir), path)
        }
    };
    let host = options.bind.ip();
    let port = free_port(host, options.bind.port())?;
    let mut grpc_port = free_port(host, options.grpc_port)?;
    while grpc_port == port {
        grpc_port = free_port(host, 0)?;
    }
    let budget = MemoryBudget::resolve(options.memory_limit);
    let node = Node::new();
    let (runtimes, configs, spill_dir) = (node.clone(), node.clone(), work_dir.clone());
    let config = ExecutorProcessConfig {
        bind_host: host.to_string(),
        external_host: options.advertise_host.clone(),
        port,
        grpc_port,
        scheduler_host: options.scheduler.host.clone(),
        scheduler_port: options.scheduler.port,
        scheduler_connect_timeout_seconds: SCHEDULER_CONNECT_SECONDS,
        vcores: options.vcores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        work_dir: Some(work_dir.display().to_string()),
        memory_pool_size: Some(budget.pool_bytes() as u64),
        override_function_registry: Some(Arc::new(node.function_registry())),
        override_execution_engine: Some(Arc::new(WithoutMetrics::new())),
        override_runtime_producer: Some(Arc::new(move |_| runtimes.runtime(Some(&spill_dir)))),
        override_config_producer: Some(Arc::new(move || configs.config())),
        override_logical_codec: Some(node.logical_codec()),
        override_physical_codec: Some(node.physical_codec()),
        ..ExecutorProcessConfig::default()
    };
    info!(
        scheduler = %options.scheduler, flight_port = port, grpc_port, vcores = config.vcores,
        memory_limit = %budget, work_dir = %work_dir.display(), "cluster executor starting"
    );
    Ok((config, own))
}

/// Runs an executor until the process is stopped (SIGTERM or SIGINT: it finishes its
/// tasks, tells the scheduler and removes its own work folder).
///
/// Ballista's executor stops on its own on SIGTERM, once its tasks are done and it has
/// told the scheduler; if that does not happen within [`STOP_SECONDS`] (a scheduler that
/// is gone never answers), it stops anyway. A second signal stops it at once.
pub async fn executor(options: &ExecutorOptions) -> Result<()> {
    let (config, work_dir) = executor_config(options)?;
    signals::listen()?;
    let overdue = async {
        signals::stopped().await;
        tokio::time::sleep(Duration::from_secs(STOP_SECONDS)).await;
    };
    let ran = tokio::select! {
        ran = start_executor_process(Arc::new(config)) => ran.map_err(ballista("running the executor")),
        () = overdue => {
            warn!("the executor did not stop within {STOP_SECONDS} s of the stop signal; stopping now");
            Ok(())
        }
    };
    drop(work_dir);
    ran
}

/// A scheduler and executors in this process, on loopback, until dropped: a cluster
/// for tests.
pub struct Standalone {
    url: ClusterUrl,
    tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
    _work_dirs: Vec<tempfile::TempDir>,
}

impl Standalone {
    /// Starts a scheduler and `executors` executors of `vcores` each, and waits until
    /// every executor has joined.
    pub async fn start(executors: usize, vcores: usize) -> Result<Standalone> {
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        let listener = tokio::net::TcpListener::bind((loopback, 0))
            .await
            .map_err(|e| Error::runtime("listening on loopback", e))?;
        let address = listener.local_addr().map_err(|e| Error::runtime("reading the scheduler's address", e))?;
        let url = ClusterUrl { host: loopback.to_string(), port: address.port() };
        let mut tasks = vec![tokio::spawn(serve_scheduler(listener, address))];
        let mut work_dirs = Vec::new();
        let mut flights = Vec::new();
        for _ in 0..executors {
            let options = ExecutorOptions {
                scheduler: url.clone(),
                bind: SocketAddr::new(loopback, 0),
                grpc_port: 0,
                advertise_host: Some(loopback.to_string()),
                work_dir: None,
                vcores: Some(vcores),
                memory_limit: None,
            };
            let (config, work_dir) = executor_config(&options)?;
            flights.push(SocketAddr::new(loopback, config.port));
            work_dirs.extend(work_dir);
            tasks.push(tokio::spawn(async move {
                start_executor_process(Arc::new(config)).await.map_err(ballista("running an executor"))
            }));
        }
        let standalone = Standalone { url, tasks, _work_dirs: work_dirs };
        standalone.wait_for(&flights).await?;
        Ok(standalone)
    }

    /// The scheduler's address.
    pub fn url(&self) -> &ClusterUrl {
        &self.url
    }

    /// Waits until every executor serves shuffle files, which it does once it has joined.
    async fn wait_for(&self, flights: &[SocketAddr]) -> Result<()> {
        let start = Instant::now();
        for flight in flights {
            while TcpStream::connect(flight).is_err() {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err(Error::Runtime(format!("the executor at {flight} did not join within 60 s")));
                }
                if let Some(ended) = self.tasks.iter().find(|task| task.is_finished()) {
                    return Err(Error::Runtime(format!("a cluster process ended while starting: {ended:?}")));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
