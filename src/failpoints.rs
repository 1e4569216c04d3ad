//! Failure points: named places where the integration tests make a real `fidelis`
//! process die as if killed, or wait for a signal, to check crash safety and signal
//! handling deterministically instead of racing a running process with sleeps.
//!
//! `FIDELIS_FAILPOINT=POINT=ACTION` arms one point; `ACTION` is `abort` (the process
//! ends at once, as with SIGKILL: no cleanup, no destructors) or `pause` (wait until a
//! stop signal arrives, then go on). When the point is reached, the file named by
//! `FIDELIS_FAILPOINT_READY` (if set) is created, so the test knows when to act.
//! Points: `before-publish` (all staged, the publish not begun), and `publish:K` /
//! `recover:K` before the K-th step (counted from 1) that changes the store during a
//! publish / during the recovery of an interrupted one. Unset, a point costs one check.
//!
//! `stage:NAME=out-of-memory` makes stage NAME run out of memory whenever it runs beside
//! other jobs, as a large stage can at a scale no test can afford, so that the executor's
//! rerun of such a stage alone is tested deterministically; `tests:NAME=out-of-memory`
//! does the same to the data tests of stage NAME.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::warn;

use crate::signals;

/// What to do at the armed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Abort,
    Pause,
    OutOfMemory,
}

/// The armed point and its action, read from the environment once.
fn armed() -> Option<&'static (String, Action)> {
    static ARMED: OnceLock<Option<(String, Action)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("FIDELIS_FAILPOINT").ok()?;
            let (point, action) = spec.rsplit_once('=')?;
            let action = match action {
                "abort" => Action::Abort,
                "pause" => Action::Pause,
                "out-of-memory" => Action::OutOfMemory,
                other => {
                    warn!("FIDELIS_FAILPOINT: unknown action `{other}` (abort, pause or out-of-memory); ignored");
                    return None;
                }
            };
            Some((point.to_string(), action))
        })
        .as_ref()
}

/// Reaching the point `name`.
pub async fn reach(name: &str) {
    let Some((point, action)) = armed() else { return };
    if point != name {
        return;
    }
    if let Ok(ready) = std::env::var("FIDELIS_FAILPOINT_READY") {
        // The test waits for this file; a failure shows as the test timing out.
        let _ = std::fs::write(ready, name);
    }
    match action {
        Action::Abort => std::process::abort(),
        Action::Pause => {
            signals::stopped().await;
        }
        // Only stages run out of memory, see [`out_of_memory`].
        Action::OutOfMemory => {}
    }
}

/// Whether `work` (`stage:NAME` or `tests:NAME`), about to run beside other jobs, is to
/// run out of memory.
pub fn out_of_memory(work: &str) -> bool {
    matches!(armed(), Some((point, Action::OutOfMemory)) if point == work)
}

/// Steps of a publish (`publish:K`) and of a recovery (`recover:K`) so far.
static PUBLISH_STEPS: AtomicUsize = AtomicUsize::new(0);
static RECOVER_STEPS: AtomicUsize = AtomicUsize::new(0);

/// A sequence of numbered steps: `publish` or `recover`.
#[derive(Debug, Clone, Copy)]
pub enum Steps {
    Publish,
    Recover,
}

/// Reaching the next step of `steps`.
pub async fn step(steps: Steps) {
    if armed().is_none() {
        return;
    }
    let (counter, prefix) = match steps {
        Steps::Publish => (&PUBLISH_STEPS, "publish"),
        Steps::Recover => (&RECOVER_STEPS, "recover"),
    };
    let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
    reach(&format!("{prefix}:{number}")).await;
}
