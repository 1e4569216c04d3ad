//! The library's error type and the process exit codes it maps to.
//!
//! Errors are split by what a scheduler should do about them: configuration and
//! usage errors and bad input data will fail the same way on a retry, while runtime
//! and I/O failures (a network blip, a full disk) may not.

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
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit_code::CONFIG,
            Error::Data(_) => exit_code::DATA,
            Error::Runtime(_) | Error::Resources(_) => exit_code::RUNTIME,
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
        }
    }
}

impl std::error::Error for Error {}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
