//! The library's error type and the process exit codes it maps to.
//!
//! Errors are split by what a scheduler should do about them: configuration and
//! usage errors and bad input data will fail the same way on a retry, while runtime
//! and I/O failures (a network blip, a full disk) may not; a partition locked by
//! another run, or a run stopped by a signal, is worth running again later.

use std::fmt;

/// Exit codes of the `fidelis` binary. Documented in the README and in `--help`.
pub mod exit_code {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad configuration or command-line usage: fix the pipeline or the command; do not retry.
    pub const CONFIG: i32 = 2;
    /// Bad input data (or data a model cannot be fitted to): fix the data; do not retry.
    pub const DATA: i32 = 3;
    /// Runtime or I/O failure (storage unreachable, disk full, …): retrying may help.
    pub const RUNTIME: i32 = 4;
    /// An internal error (a panic): a bug in fidelis, to be reported; retrying will not
    /// help. 70 is `EX_SOFTWARE` of BSD's `sysexits.h`.
    pub const INTERNAL: i32 = 70;
    /// Another run holds the partition's lease: retry later, or wait with `--wait-for-lock`.
    pub const LOCKED: i32 = 5;
    /// Stopped by SIGINT (Ctrl-C) before publishing; nothing was published (128 + 2, as shells report it).
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM before publishing; nothing was published (128 + 15, as shells report it).
    pub const TERMINATED: i32 = 143;

    /// The worst of several runs' exit codes (a backfill's), worst being what most needs a
    /// person: a stop by signal (the whole job was stopped), then an internal error or any
    /// code not listed here (a bug), then configuration, data, runtime, locked, success. A scheduler that
    /// retries on 4 and 5 only retries a backfill whose every failure is retryable.
    pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
        let rank = |code: i32| match code {
            OK => 0,
            LOCKED => 1,
            RUNTIME => 2,
            DATA => 3,
            CONFIG => 4,
            INTERRUPTED | TERMINATED => 6,
            // INTERNAL, and any code fidelis does not document.
            _ => 5,
        };
        codes.into_iter().max_by_key(|code| rank(*code)).unwrap_or(OK)
    }
}

/// One problem found in a pipeline file, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The pipeline file (or SQL file) the problem is in.
    pub file: String,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  help: {hint}")?;
        }
        Ok(())
    }
}

/// Every error the library returns.
#[derive(Debug)]
pub enum Error {
    /// The pipeline configuration is invalid; all problems found are listed.
    Config(Vec<Diagnostic>),
    /// The command line asks for something impossible.
    Usage(String),
    /// Input data is bad (or a model cannot be fitted to it).
    Data(String),
    /// Storage, I/O or execution failed.
    Runtime(String),
    /// The work does not fit the run's memory budget, or its spill disk, even with spilling.
    Resources(String),
    /// Another run holds the partition's lease (the message names it).
    Locked(String),
    /// A signal stopped the run before it published anything.
    Stopped(Signal),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit_code::CONFIG,
            Error::Data(_) => exit_code::DATA,
            Error::Runtime(_) | Error::Resources(_) => exit_code::RUNTIME,
            Error::Locked(_) => exit_code::LOCKED,
            Error::Stopped(signal) => signal.exit_code(),
        }
    }

    /// A single configuration problem without a known location.
    pub fn config(file: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Config(vec![Diagnostic {
            file: file.into(),
            location: None,
            message: message.into(),
            hint: Some(hint.into()),
        }])
    }

    /// A runtime error with context saying what was being done.
    pub fn runtime(context: impl fmt::Display, source: impl fmt::Display) -> Self {
        Error::Runtime(format!("{context}: {source}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(diagnostics) => {
                let count = diagnostics.len();
                writeln!(f, "the pipeline configuration has {count} error{}:", if count == 1 { "" } else { "s" })?;
                for diagnostic in diagnostics {
                    writeln!(f, "{diagnostic}")?;
                }
                Ok(())
            }
            Error::Usage(message) => write!(f, "usage error: {message}"),
            Error::Data(message) => write!(f, "bad input data: {message}"),
            Error::Runtime(message) | Error::Resources(message) => write!(f, "run failed: {message}"),
            Error::Locked(message) => write!(f, "partition locked: {message}"),
            Error::Stopped(signal) => {
                write!(f, "stopped by {signal} before publishing: the published data is unchanged")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: a scheduler stopping the job.
    Terminate,
}

impl Signal {
    /// The process exit code after this signal stopped a run (128 + the signal's number).
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => exit_code::INTERRUPTED,
            Signal::Terminate => exit_code::TERMINATED,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code::*;

    #[test]
    fn the_worst_exit_code_is_the_one_that_most_needs_a_person() {
        assert_eq!(worst([OK, LOCKED, RUNTIME]), RUNTIME);
        assert_eq!(worst([RUNTIME, DATA, OK]), DATA);
        assert_eq!(worst([DATA, CONFIG]), CONFIG);
        assert_eq!(worst([CONFIG, 101]), 101, "an unknown code is a bug");
        assert_eq!(worst([101, TERMINATED, OK]), TERMINATED);
        assert_eq!(worst([]), OK);
    }
}
