//! The `ratekeeper` command.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod demo;
mod inspect;
mod mock;
mod parse;
mod run;
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
    /// Run a JSONL file of requests to completion through the limiter:
    /// one result line per id, resumable after a crash.
    Run(run::RunArgs),
    /// Start a local mock API with hidden limits and show ratekeeper
    /// learning them: progress, then a table of learned vs true limits.
    Demo(demo::DemoArgs),
    /// Show what the fleet has learned per endpoint (limit, window, source,
    /// age) and what is paused, from the Redis store.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => return finish(run::run(args)),
        Command::Demo(args) => return finish(demo::run(args).map(|()| true)),
        Command::Inspect(args) => return finish(inspect::run(args).map(|()| true)),
        Command::Schedule(_) | Command::Parse(_) => {}
    }
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
        Command::Run(_) | Command::Demo(_) | Command::Inspect(_) => Ok(()),
    };
    match result.and_then(|()| out.flush().map_err(|e| e.to_string())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ratekeeper: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a command that runs requests: 0 when every one
/// succeeded, 1 when some failed, 2 when the command itself failed.
fn finish(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("ratekeeper: {message}");
            ExitCode::from(2)
        }
    }
}
