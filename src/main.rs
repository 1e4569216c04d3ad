//! The `fidelis` binary: parse arguments, run, turn errors into exit codes.

use clap::Parser;

fn main() {
    // Before the runtime starts its threads.
    limit_allocator_retention();
    let cli = fidelis::cli::Cli::parse();
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => {
            let outcome = runtime.block_on(fidelis::cli::execute(cli));
            // A stopped run may leave threads busy in work it no longer needs (a source
            // being decoded): exit without waiting for them.
            runtime.shutdown_background();
            outcome
        }
        Err(error) => Err(fidelis::Error::runtime("starting the async runtime", error)),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(error.exit_code());
        }
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
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    // SAFETY: mallopt only sets allocator parameters; it is called before any other
    // thread exists. A rejected value leaves glibc's default, which is only slower.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_allocator_retention() {}
