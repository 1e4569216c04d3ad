//! The command line: argument definitions (the `--help` text) and dispatch to the
//! library. Errors come back typed; `main` turns them into exit codes.

use std::path::PathBuf;

use chrono::{Duration, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use tracing::info;

use crate::config::{self, Format};
use crate::error::{Error, Result};
use crate::logging::{self, LogFormat, Step};
use crate::memory;
use crate::plan::Overrides;
use crate::run;
use crate::sample_data::{self, SampleSpec};
use crate::storage::Storage;

const EXIT_CODES: &str = "Exit codes:
  0  success
  2  bad configuration or usage (fix the pipeline or command; retrying will not help)
  3  bad input data, or data a model cannot be fitted to (fix the data; retrying will not help)
  4  runtime or I/O failure (storage unreachable, disk full, …; retrying may help)";

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
    /// `{root}/_runs/as_of={as_of}/` last.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Check a pipeline without running it: parameters, sources reachable, every stage planned.
    #[command(after_help = EXIT_CODES)]
    Validate(BindArgs),
    /// Render the pipeline's reports again from the tables already published for an as_of,
    /// without recomputing them (after changing a template, say).
    #[command(after_help = EXIT_CODES)]
    Report(BindArgs),
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

    /// Run only these stages (comma-separated) and the stages they read; only their
    /// output tables are published.
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
}

fn parse_date(text: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date in the form YYYY-MM-DD"))
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
            ..self.bind.overrides()
        }
    }
}

/// Runs the parsed command line.
pub async fn execute(cli: Cli) -> Result<()> {
    logging::init(cli.log_format);
    match cli.command {
        Command::Run(args) => {
            let pipeline = config::load(&args.bind.pipeline)?;
            run::run(&pipeline, &args.overrides()).await?;
        }
        Command::Report(args) => {
            let pipeline = config::load(&args.pipeline)?;
            for written in run::report(&pipeline, &args.overrides()).await? {
                println!("{written}");
            }
        }
        Command::SampleData(args) => {
            if args.customers == 0 || args.years == 0 {
                return Err(Error::Usage("--customers and --years must be at least 1".into()));
            }
            let end_date = args.end_date.unwrap_or_else(|| Utc::now().date_naive() - Duration::days(1));
            let spec = SampleSpec { customers: args.customers, seed: args.seed, end_date, years: args.years };
            let out = Storage::new().resolve(&args.out)?;
            let step = Step::start(format!("generating {} customers", args.customers));
            let data = sample_data::generate::generate(&spec);
            let written = sample_data::write(&data, &out, args.format).await?;
            drop(step);
            for (table, rows) in written {
                info!(table, rows, "sample table written");
                println!("{table}: {rows} rows → {}", out.child(table));
            }
        }
        Command::Validate(args) => {
            let pipeline = config::load(&args.pipeline)?;
            let validation = run::validate(&pipeline, &args.overrides()).await?;
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
    Ok(())
}
