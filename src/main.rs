//! The `fidelis` binary: parse arguments, run, turn errors into exit codes.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = fidelis::cli::Cli::parse();
    if let Err(error) = fidelis::cli::execute(cli).await {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}
