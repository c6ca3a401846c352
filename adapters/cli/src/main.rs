//! The `ratekeeper` command.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod parse;
mod schedule;

/// Keep programs under the rate limits of the APIs they call.
#[derive(Debug, Parser)]
#[command(name = "ratekeeper", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show when each of N requests would be sent under a limit, paced by
    /// ratekeeper's GCRA (one JSON object per request on stdout).
    Schedule(schedule::ScheduleArgs),
    /// Read response headers from stdin and print what they say about rate
    /// limits as one JSON object (reasons for ignored fields on stderr).
    Parse(parse::ParseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Schedule(args) => schedule::run(&args, &mut out),
        Command::Parse(args) => parse::run(
            &args,
            &mut std::io::stdin().lock(),
            &mut out,
            &mut std::io::stderr(),
        ),
    };
    match result.and_then(|()| out.flush().map_err(|e| e.to_string())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ratekeeper: {message}");
            ExitCode::FAILURE
        }
    }
}
