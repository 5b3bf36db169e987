//! The `hallpass` binary: parse the command line, read the configuration, start logging,
//! run the command. Everything else lives in the library half of this crate.
#![forbid(unsafe_code)]

use clap::Parser;
use hallpass_server::{cli, config::Config, telemetry};
use std::process::ExitCode;

// mimalloc: the hot path allocates and frees small buffers on every request (hyper's
// headers, extensions, futures); glibc malloc was a quarter of the server's instructions
// on get-session (callgrind, bench/README.md "Profile").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(outcome) = cli::run_without_config(&cli.command) {
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hallpass: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hallpass: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The server writes its log from a thread of its own; a one-shot command writes it in
    // line with what it prints, so its summary stays the last line.
    let writer = if matches!(cli.command, cli::Command::Serve) {
        telemetry::Writer::Background
    } else {
        telemetry::Writer::Inline
    };
    let _logs = telemetry::init(config.log_format, writer);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hallpass: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cli::run(cli, config));
    // Stop the runtime's threads before the log guard flushes the last lines.
    drop(runtime);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hallpass: {e:#}");
            ExitCode::FAILURE
        }
    }
}
