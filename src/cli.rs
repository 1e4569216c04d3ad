//! The command line: argument definitions (the `--help` text) and dispatch to the
//! library. Errors come back typed; `main` turns them into exit codes.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use tracing::info;

use crate::backfill::{self, Every};
use crate::config::{self, Format};
use crate::error::{Error, Result, exit_code};
use crate::lineage::{self, Transport};
use crate::logging::{self, LogFormat, Step};
use crate::memory;
use crate::plan::Overrides;
use crate::publish::lease::{DEFAULT_TTL, LeaseOptions};
use crate::sample_data::{self, SampleSpec};
use crate::storage::Storage;
use crate::summary::{self, RunSummary};
use crate::{docs, repair, run, signals};

const EXIT_CODES: &str = "Exit codes:
  0    success
  2    bad configuration or usage (fix the pipeline or command; retrying will not help)
  3    bad input data, or data a model cannot be fitted to (fix the data; retrying will not help)
  4    runtime or I/O failure (storage unreachable, disk full, …; retrying may help)
  5    another run holds the partition's lease (retry later, or use --wait-for-lock)
  70   internal error: a bug in fidelis (please report it; retrying will not help)
  130  stopped by SIGINT (Ctrl-C) before publishing: nothing was published (retrying may help)
  143  stopped by SIGTERM before publishing: nothing was published (retrying may help)
A backfill exits with the worst code of its dates: 130/143, then 70, 2, 3, 4, 5, 0.";

/// Customer-loyalty analytics: YAML pipelines of SQL stages over object storage,
/// published as warehouse-ready Parquet tables and a monthly KPI report.
#[derive(Debug, Parser)]
#[command(name = "fidelis", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Log format on standard error: `human` lines or `json` lines for log collectors.
    #[arg(long, global = true, value_enum, default_value = "human", env = "FIDELIS_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: load sources, run its SQL stages, publish its tables atomically.
    ///
    /// Tables are written as Parquet under `{root}/{table}/as_of={as_of}/`; a rerun of the
    /// same as_of replaces them. The run manifest and `_SUCCESS` land in
    /// `{root}/_runs/as_of={as_of}/` last. A run holds the partition's lease from start to
    /// end (another run of the same as_of fails with exit code 5, or waits with
    /// --wait-for-lock), and first repairs a publish that a killed run left half done.
    /// SIGTERM or SIGINT before publishing stops the run, published data unchanged (exit
    /// 143 or 130); during publishing, the publish is finished first.
    #[command(after_help = EXIT_CODES)]
    Run(Box<RunArgs>),
    /// Check a pipeline without running it: parameters, sources reachable, every stage planned.
    ///
    /// Also checks the SQL layers (staging models read sources, intermediate models read
    /// staging and intermediate models, marts never read sources) and the docs: every mart
    /// has a schema file beside its SQL that describes each column it outputs, and no other.
    #[command(after_help = EXIT_CODES)]
    Validate(BindArgs),
    /// Print a pipeline's documentation as Markdown: its sources, its stages layer by layer
    /// with what each reads, and the column docs of its schema files.
    ///
    /// Reads only the pipeline file, its SQL files and their schema files (no data):
    /// `fidelis docs pipelines/loyalty.yaml > docs/pipeline.md`.
    #[command(after_help = EXIT_CODES)]
    Docs(DocsArgs),
    /// Render the pipeline's reports again from the tables already published for an as_of,
    /// without recomputing them (after changing a template, say).
    #[command(after_help = EXIT_CODES)]
    Report(LeasedArgs),
    /// Repair a partition after a run was killed while publishing: finish or roll back its
    /// publish, remove dead runs' staging. Every run does this first; `repair` does only that.
    ///
    /// Prints what it did. Readers never see `_SUCCESS` beside a half-published partition,
    /// so repairing is needed only to bring `_SUCCESS` back before the next run.
    #[command(after_help = EXIT_CODES)]
    Repair(LeasedArgs),
    /// Write deterministic synthetic inputs that follow the data contract.
    ///
    /// Writes `{out}/transactions/`, `customers/`, `loyalty_events/`, `survey_responses/` and
    /// `wallet/`. Purchases follow a buy-till-you-die process (BG/NBD with Gamma-Gamma spend),
    /// with refunds, same-day orders, channels, categories, discounts and loyalty programme
    /// activity, so every metric and model has something real to work on. The same seed and
    /// arguments always give the same files.
    #[command(after_help = EXIT_CODES)]
    SampleData(SampleArgs),
}

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// The pipeline file, e.g. `pipelines/loyalty.yaml`.
    pub pipeline: PathBuf,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// How many customers (registered non-buyers included).
    #[arg(long)]
    pub customers: usize,

    /// Output root: a path or object-store URL.
    #[arg(long, value_name = "URI")]
    pub out: String,

    /// Seed of the random generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// File format to write.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,

    /// Last day of the data (default: yesterday, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub end_date: Option<NaiveDate>,

    /// Years of history before the end date.
    #[arg(long, default_value_t = 3)]
    pub years: u32,
}

/// How a command takes the partition's lease.
#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// When another run holds the partition's lease, wait up to this long for it (e.g. `10m`)
    /// instead of failing at once with exit code 5.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,

    /// How long this run's lease outlives its last renewal (renewed every third of it): a run
    /// that dies without releasing its lease blocks the partition this long. Default: 60s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lease_ttl: Option<Duration>,
}

impl LeaseArgs {
    fn options(&self) -> LeaseOptions {
        LeaseOptions { wait: self.wait_for_lock.unwrap_or_default(), ttl: self.lease_ttl.unwrap_or(DEFAULT_TTL) }
    }
}

/// Arguments of the commands that write a partition besides `run`.
#[derive(Debug, Args)]
pub struct LeasedArgs {
    #[command(flatten)]
    pub bind: BindArgs,

    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// Arguments that bind a pipeline for one as_of.
#[derive(Debug, Args)]
pub struct BindArgs {
    /// The pipeline file, e.g. `pipelines/loyalty.yaml`.
    pub pipeline: PathBuf,

    /// Compute everything as of this day (YYYY-MM-DD, inclusive). Default: yesterday in the
    /// pipeline's timezone. Also `--set as_of=…` or FIDELIS_AS_OF.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub as_of: Option<NaiveDate>,

    /// Set a parameter, e.g. `--set input=s3://bucket/raw`. Repeatable. Overrides the
    /// environment variable FIDELIS_{NAME}, which overrides the pipeline's default.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub bind: BindArgs,

    /// Run only these stages (comma-separated) and the stages they read, and publish their
    /// tables into the partition beside the other tables of the run published there, which
    /// are kept (and listed as kept in the manifest). Refused if that run used another
    /// pipeline version or other parameters: run everything, or use another output.
    #[arg(long, value_delimiter = ',', value_name = "STAGE,...")]
    pub only: Vec<String>,

    /// Memory the whole run may use, e.g. `4GiB`, `512MiB` (binary units; KB/MB/GB are
    /// decimal). Sorts, aggregations and joins spill to `--spill-dir` beyond it, and
    /// source data and stage results that do not fit live there; work that cannot fit even
    /// so fails with exit code 4. Default: the container's memory limit minus headroom
    /// (10 %, at least 256 MiB), else 75 % of physical memory.
    #[arg(long, value_name = "SIZE", env = "FIDELIS_MEMORY_LIMIT", value_parser = memory::parse_size)]
    pub memory_limit: Option<u64>,

    /// Folder for spill files (removed at the end of the run, success or failure).
    /// Default: the system's temporary folder (TMPDIR).
    #[arg(long, value_name = "DIR", env = "FIDELIS_SPILL_DIR")]
    pub spill_dir: Option<PathBuf>,

    /// Threads the run keeps busy: source loads and stages at once, and Parquet row
    /// groups decoded at once; a stage running while fewer jobs than threads run gets the
    /// idle threads as extra partitions. Default: the cores available (a container's CPU
    /// quota included).
    #[arg(long, value_name = "N", env = "FIDELIS_THREADS")]
    pub threads: Option<usize>,

    /// Send OpenLineage run events (START, then COMPLETE or FAIL) to `file:PATH` (one
    /// JSON event per line, appended), `console` (standard output) or an OpenLineage
    /// server's URL. Default: OPENLINEAGE_URL when set (with OPENLINEAGE_ENDPOINT,
    /// OPENLINEAGE_API_KEY, OPENLINEAGE_NAMESPACE), else none. A failure to send is a
    /// warning, never a failed run.
    #[arg(long, value_name = "file:PATH|console|URL", env = "FIDELIS_LINEAGE")]
    pub lineage: Option<Transport>,

    /// Backfill: run every date from this one to --to, oldest first, each an ordinary run.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, requires = "to", conflicts_with = "as_of")]
    pub from: Option<NaiveDate>,

    /// The last date of a backfill (included).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,

    /// Which dates of --from..--to a backfill runs: each month's last day, every seventh day
    /// from --from, or every day.
    #[arg(long, value_enum, default_value = "month", requires = "from")]
    pub every: Every,

    /// In a backfill, skip the dates already published completely (`_SUCCESS`) with the same
    /// pipeline version and parameters.
    #[arg(long, requires = "from")]
    pub skip_existing: bool,

    #[command(flatten)]
    pub lease: LeaseArgs,

    /// Write a JSON summary of the outcome here when the command ends, success or not
    /// (status, exit_code, as_of, run_id, tables with rows and URLs, reports, warnings,
    /// error; a backfill's has one per date under `runs`). For Airflow:
    /// `/airflow/xcom/return.json`.
    #[arg(long, value_name = "PATH")]
    pub result_json: Option<PathBuf>,
}

fn parse_date(text: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date in the form YYYY-MM-DD"))
}

fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration such as 90s, 10m or 1h: {e}"))
}

fn parse_key_value(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.trim().to_string(), value.to_string()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

impl BindArgs {
    fn overrides(&self) -> Overrides {
        Overrides { as_of: self.as_of, set: self.set.clone(), env: Overrides::from_env(), ..Overrides::default() }
    }
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            only: self.only.clone(),
            memory_limit: self.memory_limit,
            spill_dir: self.spill_dir.clone(),
            threads: self.threads,
            lease: self.lease.options(),
            ..self.bind.overrides()
        }
    }
}

impl LeasedArgs {
    fn overrides(&self) -> Overrides {
        Overrides { lease: self.lease.options(), ..self.bind.overrides() }
    }
}

/// Runs the parsed command line; returns the exit code (a backfill's is the worst of
/// its dates').
pub async fn execute(cli: Cli) -> Result<i32> {
    logging::init(cli.log_format);
    match cli.command {
        Command::Run(args) => {
            signals::listen()?;
            lineage::configure(args.lineage.clone());
            return run(args).await;
        }
        Command::Report(args) => {
            signals::listen()?;
            let pipeline = config::load(&args.bind.pipeline)?;
            for written in run::report(&pipeline, &args.overrides()).await? {
                println!("{written}");
            }
        }
        Command::Repair(args) => {
            signals::listen()?;
            let pipeline = config::load(&args.bind.pipeline)?;
            let recovered = repair::repair(&pipeline, &args.overrides()).await?;
            if recovered.is_empty() {
                println!("nothing to repair: no publish was interrupted");
            }
            for recovery in recovered {
                println!("{recovery}");
            }
        }
        Command::SampleData(args) => {
            if args.customers == 0 || args.years == 0 {
                return Err(Error::Usage("--customers and --years must be at least 1".into()));
            }
            let end_date = args.end_date.unwrap_or_else(|| Utc::now().date_naive() - chrono::Duration::days(1));
            let spec = SampleSpec { customers: args.customers, seed: args.seed, end_date, years: args.years };
            let out = Storage::new().resolve(&args.out)?;
            let step = Step::start(format!("generating {} customers", args.customers));
            let written = sample_data::write(&spec, &out, args.format).await?;
            drop(step);
            for (table, rows) in written {
                info!(table, rows, "sample table written");
                println!("{table}: {rows} rows → {}", out.child(table));
            }
        }
        Command::Docs(args) => {
            let pipeline = config::load(&args.pipeline)?;
            print!("{}", docs::render(&pipeline));
        }
        Command::Validate(args) => {
            let pipeline = config::load(&args.pipeline)?;
            let validation = run::validate(&pipeline, &args.overrides()).await?;
            docs::check(&pipeline, &validation)?;
            println!("pipeline `{}` is valid", pipeline.name);
            if let Some(description) = &pipeline.description {
                println!("  {}", description.trim());
            }
            for (source, files) in &validation.sources {
                println!("  source {source}: {files} file{}", if *files == 1 { "" } else { "s" });
            }
            for (stage, description, columns) in &validation.stages {
                println!("  stage {stage}: {}", columns.join(", "));
                if let Some(description) = description {
                    println!("    {}", description.trim());
                }
            }
        }
    }
    Ok(exit_code::OK)
}

/// `fidelis run`: one run, or a backfill; writes the result JSON when asked to.
async fn run(args: Box<RunArgs>) -> Result<i32> {
    let pipeline = match config::load(&args.bind.pipeline) {
        Ok(pipeline) => pipeline,
        Err(error) => {
            if let Some(path) = &args.result_json {
                summary::write(path, &RunSummary::failed(None, args.bind.as_of, &error))?;
            }
            return Err(error);
        }
    };
    if let (Some(from), Some(to)) = (args.from, args.to) {
        let dates = backfill::dates(from, to, args.every)?;
        let done = backfill::backfill(&pipeline, &args.overrides(), &dates, args.skip_existing).await;
        print!("{done}");
        if let Some(path) = &args.result_json {
            summary::write(path, &done)?;
        }
        return Ok(done.exit_code);
    }
    let outcome = run::run(&pipeline, &args.overrides()).await;
    if let Some(path) = &args.result_json {
        let summary = match &outcome {
            Ok(manifest) => RunSummary::published(manifest),
            Err(error) => RunSummary::failed(Some(&pipeline.name), args.bind.as_of, error),
        };
        summary::write(path, &summary)?;
    }
    outcome.map(|_| exit_code::OK)
}
