//! Runs ratekeeper and its anchors side by side in this process and prints
//! the figures (medians of several rounds; ratios are ratekeeper / anchor,
//! below 1 is faster).
//!
//! `cargo run --release -p ratekeeper-bench --bin compare -- --json [--rounds N]`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut json = false;
    let mut rounds = 7usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--rounds" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => rounds = n,
                _ => {
                    eprintln!("compare: --rounds takes a whole number above 0");
                    return ExitCode::FAILURE;
                }
            },
            other => {
                eprintln!("compare: unknown argument {other:?} (expected --json, --rounds N)");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut figures = serde_json::Map::new();
    for (name, value) in ratekeeper_bench::memory::figures(rounds)
        .into_iter()
        .chain(ratekeeper_bench::redis::figures(rounds))
    {
        figures.insert(name.to_owned(), value);
    }
    if json {
        println!("{}", serde_json::Value::Object(figures));
    } else {
        for (name, value) in &figures {
            println!("{name:32} {value}");
        }
    }
    ExitCode::SUCCESS
}
