//! Stopping on SIGTERM and SIGINT, the way schedulers and people stop a run.
//!
//! Kubernetes sends SIGTERM (then SIGKILL after the grace period), Airflow sends SIGTERM
//! to a task it gives up on, a person presses Ctrl-C. Once [`listen`] has been called,
//! the first of these asks the run to stop: work before publishing is dropped
//! ([`unless_stopped`]), which cancels the DataFusion queries in flight, and the run
//! removes its staging and exits with 130 (SIGINT) or 143 (SIGTERM). A publish already
//! under way is finished first, never left half done (see `crate::publish`). A second
//! signal ends the process at once; the publish journal and the lease's expiry make that
//! safe too.

use std::future::Future;
use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result, Signal};

/// The first stop signal received, if any; the sender lives for the whole process.
fn stop() -> &'static watch::Sender<Option<Signal>> {
    static STOP: OnceLock<watch::Sender<Option<Signal>>> = OnceLock::new();
    STOP.get_or_init(|| watch::channel(None).0)
}

/// Handles SIGTERM and SIGINT from now on, instead of their default (ending the
/// process at once). Call it from within the runtime, for commands that stop cleanly.
pub fn listen() -> Result<()> {
    let listening = |kind: SignalKind| signal(kind).map_err(|e| Error::runtime("listening for SIGTERM and SIGINT", e));
    let (mut terminate, mut interrupt) = (listening(SignalKind::terminate())?, listening(SignalKind::interrupt())?);
    tokio::spawn(async move {
        let mut next = async || {
            tokio::select! {
                _ = terminate.recv() => Signal::Terminate,
                _ = interrupt.recv() => Signal::Interrupt,
            }
        };
        let first = next().await;
        stop().send_replace(Some(first));
        let second = next().await;
        eprintln!("error: {second} received again: stopping at once");
        std::process::exit(second.exit_code());
    });
    Ok(())
}

/// The stop signal received so far, if any.
pub fn requested() -> Option<Signal> {
    *stop().borrow()
}

/// Resolves, with the error a stopped run returns, once a stop signal arrives; never
/// when none does.
pub async fn stopped() -> Error {
    let mut receiver = stop().subscribe();
    match receiver.wait_for(Option::is_some).await.map(|signal| *signal) {
        Ok(Some(signal)) => Error::Stopped(signal),
        _ => std::future::pending().await,
    }
}

/// Runs `work` unless a stop signal arrives first, in which case `work` is dropped
/// (cancelling whatever it was waiting for) and the run's stop error returned.
pub async fn unless_stopped<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        biased;
        error = stopped() => Err(error),
        done = work => done,
    }
}
