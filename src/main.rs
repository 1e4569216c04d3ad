//! The `fidelis` binary: parse arguments, run, turn errors into exit codes.

use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use fidelis::error::exit_code;
use fidelis::storage::redact;

/// Set by the panic hook: whatever a panic turned into on its way up (a failed task
/// is a runtime error, exit 4, which a scheduler retries), the run hit a bug.
static PANICKED: AtomicBool = AtomicBool::new(false);

fn main() {
    // Before the runtime starts its threads.
    limit_allocator_retention();
    panic::set_hook(Box::new(report_bug));
    let cli = fidelis::cli::Cli::parse();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Some(bytes) = cli.thread_stack_bytes() {
            runtime.thread_stack_size(bytes);
        }
        let runtime = runtime.enable_all().build();
        match runtime {
            Ok(runtime) => {
                let outcome = runtime.block_on(async {
                    #[cfg(debug_assertions)]
                    panic_when_asked().await?;
                    fidelis::cli::execute(cli).await
                });
                // A stopped run may leave threads busy in work it no longer needs (a
                // source being decoded): exit without waiting for them.
                runtime.shutdown_background();
                outcome
            }
            Err(error) => Err(fidelis::Error::runtime("starting the async runtime", error)),
        }
    }));
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {}", redact(&error.to_string()));
            error.exit_code()
        }
        // The hook has said what happened.
        Err(_) => exit_code::INTERNAL,
    };
    std::process::exit(if PANICKED.load(Ordering::SeqCst) { exit_code::INTERNAL } else { code });
}

/// The panic hook: a panic is a bug, whichever thread it happens on. Says so, with
/// the panic's message and where it happened (and a backtrace with `RUST_BACKTRACE=1`).
fn report_bug(info: &PanicHookInfo<'_>) {
    PANICKED.store(true, Ordering::SeqCst);
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let location = info.location().map_or_else(|| "an unknown place".into(), ToString::to_string);
    eprintln!(
        "internal error: fidelis {} panicked at {location}: {}\n\
         This is a bug in fidelis, not a problem with the pipeline or the data; retrying will not help. \
         Please report it with this message and the command that ran (exit code {}).",
        env!("CARGO_PKG_VERSION"),
        redact(&message),
        exit_code::INTERNAL,
    );
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        eprintln!("{backtrace}");
    }
}

/// Debug builds only: `FIDELIS_DEBUG_PANIC=main` panics on the main task and `=task`
/// in a spawned task (whose failure arrives as an error, as a stage's would), so
/// tests can check what a bug looks like to a scheduler.
#[cfg(debug_assertions)]
async fn panic_when_asked() -> fidelis::Result<()> {
    match std::env::var("FIDELIS_DEBUG_PANIC").as_deref() {
        Ok("main") => panic!("FIDELIS_DEBUG_PANIC=main"),
        Ok("task") => tokio::spawn(async { panic!("FIDELIS_DEBUG_PANIC=task") })
            .await
            .map_err(|error| fidelis::Error::runtime("running a task", error)),
        _ => Ok(()),
    }
}

/// glibc's allocator gives threads arenas of their own (up to eight per core) and,
/// once such a buffer has been freed, serves buffers of up to 32 MiB from them. A run
/// allocates and frees Arrow buffers of megabytes from several threads, so the process
/// kept hundreds of megabytes it no longer used: at a million customers, 2.3-2.5 GiB
/// resident for about 1.9 GiB in use. One arena per core, and buffers of 16 MiB or
/// more mapped on their own (returned to the system when freed), keep what the process
/// holds close to what it uses. (A lower threshold saves a little more memory but
/// costs more in page faults than it saves.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_allocator_retention() {
    let cores = fidelis::threads::available();
    // SAFETY: mallopt only sets allocator parameters; it is called before any other
    // thread exists. A rejected value leaves glibc's default, which is only slower.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_allocator_retention() {}
