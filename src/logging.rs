//! Logs and progress: human-readable lines by default, JSON lines for log
//! collectors, and spinners for long steps only when a person is watching.
//!
//! Every line goes through [`redact`], so no URL credentials reach a log, whichever
//! library wrote the line. Colours only on a terminal, unless `NO_COLOR` says
//! otherwise (or `FORCE_COLOR`/`CLICOLOR_FORCE` ask for them in a pipe).

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing::warn;
use tracing_subscriber::EnvFilter;

use crate::storage::redact;

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

/// Installs the global logger. `FIDELIS_LOG` filters events (default `info`) with
/// `tracing`'s directives, except that a bare `debug` means fidelis's own detail: the
/// libraries it uses stay at `info` (the SQL parser alone writes thousands of debug
/// lines per stage). `trace` shows everything; a library's detail is asked for by
/// name, e.g. `debug,datafusion=debug`.
pub fn init(format: LogFormat) {
    let spec = std::env::var("FIDELIS_LOG").ok();
    let (filter, invalid) = match EnvFilter::try_new(filter_directives(spec.as_deref())) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let is_terminal = std::io::stderr().is_terminal();
    let ansi = format == LogFormat::Human && use_colors(is_terminal, |name| std::env::var(name).ok());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(ansi)
        .with_target(format == LogFormat::Json);
    let _ = match format {
        LogFormat::Human => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let (Some(error), Some(spec)) = (invalid, spec) {
        warn!("FIDELIS_LOG=`{spec}` is not a valid filter ({error}); logging at `info`");
    }
    let _ = SPINNERS.set((format == LogFormat::Human && is_terminal).then(MultiProgress::new));
}

/// The filter directives for a `FIDELIS_LOG` value.
fn filter_directives(spec: Option<&str>) -> String {
    let spec = spec.map(str::trim).filter(|spec| !spec.is_empty()).unwrap_or("info");
    let directives: Vec<&str> = spec
        .split(',')
        .map(|directive| match directive.trim() {
            level if level.eq_ignore_ascii_case("debug") => "info,fidelis=debug",
            other => other,
        })
        .collect();
    directives.join(",")
}

/// Whether log lines may carry ANSI colour codes: `NO_COLOR` (set and not empty)
/// forbids them, `FORCE_COLOR` or `CLICOLOR_FORCE` (set, not empty and not `0`)
/// asks for them even in a pipe, and otherwise only a terminal gets them.
fn use_colors(is_terminal: bool, var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|value| !value.is_empty() && value != "0");
    if var("NO_COLOR").is_some_and(|value| !value.is_empty()) {
        return false;
    }
    set("FORCE_COLOR") || set("CLICOLOR_FORCE") || is_terminal
}

/// Standard error, with URL credentials taken out of every line. The formatter
/// writes each event in one call, so a URL is never split between two writes.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        match std::str::from_utf8(buf) {
            Ok(text) if text.contains("://") => stderr.write_all(redact(text).as_bytes())?,
            _ => stderr.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
    }

    #[test]
    fn colours_only_on_a_terminal_unless_told_otherwise() {
        assert!(use_colors(true, env(&[])));
        assert!(!use_colors(false, env(&[])));
        assert!(!use_colors(true, env(&[("NO_COLOR", "1")])));
        assert!(use_colors(true, env(&[("NO_COLOR", "")])), "an empty NO_COLOR does not count");
        assert!(use_colors(false, env(&[("FORCE_COLOR", "1")])));
        assert!(use_colors(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!use_colors(false, env(&[("FORCE_COLOR", "0")])));
        assert!(!use_colors(false, env(&[("FORCE_COLOR", "1"), ("NO_COLOR", "1")])), "NO_COLOR wins");
    }

    #[test]
    fn a_bare_debug_level_is_fidelis_own_detail() {
        assert_eq!(filter_directives(None), "info");
        assert_eq!(filter_directives(Some(" ")), "info");
        assert_eq!(filter_directives(Some("DEBUG")), "info,fidelis=debug");
        assert_eq!(filter_directives(Some("trace")), "trace");
        assert_eq!(filter_directives(Some("warn")), "warn");
        assert_eq!(filter_directives(Some("debug,datafusion=debug")), "info,fidelis=debug,datafusion=debug");
        assert_eq!(filter_directives(Some("warn,fidelis::run=debug")), "warn,fidelis::run=debug");
    }
}
