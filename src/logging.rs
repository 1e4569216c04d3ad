//! Logs and progress: human-readable lines by default, JSON lines for log
//! collectors, and spinners for long steps only when a person is watching.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// Where spinners are drawn, when they are: stages run concurrently, so several may
/// spin at once, one line each.
static SPINNERS: OnceLock<Option<MultiProgress>> = OnceLock::new();

/// Installs the global logger. `FIDELIS_LOG` filters events (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("FIDELIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        LogFormat::Human => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    let _ = SPINNERS.set((format == LogFormat::Human && std::io::stderr().is_terminal()).then(MultiProgress::new));
}

/// A spinner shown while a long step runs, on a terminal in human mode only.
pub struct Step(Option<ProgressBar>);

impl Step {
    /// Starts a step; the spinner disappears when the step is dropped.
    pub fn start(message: String) -> Step {
        let Some(Some(spinners)) = SPINNERS.get() else {
            return Step(None);
        };
        let bar = spinners.add(ProgressBar::new_spinner().with_message(message));
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Step(Some(bar))
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
