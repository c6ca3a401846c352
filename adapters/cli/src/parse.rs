//! `ratekeeper parse`: what a response's headers say about rate limits, as
//! one JSON object (the contract in the project's design notes).
//!
//! Reads `Name: value` lines from stdin, with an optional `HTTP/1.1 429 ...`
//! status line first; stops at the first blank line after a header, so a
//! whole recorded response can be piped in. Malformed fields are left out
//! and explained on stderr; the exit status is 0 unless stdin cannot be
//! read.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use ratekeeper_core::{Nanos, ParseOptions, Profile, RateLimitInfo, UnixTime};
use serde::Serialize;

/// Arguments of `ratekeeper parse`.
#[derive(Debug, Args)]
pub(crate) struct ParseArgs {
    /// The current time in unix seconds; absolute times are read against
    /// it. Default: the response's Date header if present, else the system
    /// clock.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    now: Option<u64>,
    /// The request's host, so that host-specific unit rules apply.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
}

/// The output object: all six keys, always.
#[derive(Debug, Serialize)]
struct Parsed {
    format: Option<&'static str>,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_after_ms: Option<u64>,
    retry_after_ms: Option<u64>,
    window_ms: Option<u64>,
}

/// One header line as read: where it was, its name and its value.
struct Line<'a> {
    number: usize,
    name: &'a [u8],
    value: &'a [u8],
}

pub(crate) fn run(
    args: &ParseArgs,
    input: &mut impl Read,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), String> {
    let mut text = Vec::new();
    input
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let (status, lines) = split_response(&text, err);
    let mut options = ParseOptions::new();
    options = match args.now {
        Some(secs) => options.with_fixed_now(UnixTime::from_secs(secs)),
        None => options.with_now(system_now()),
    };
    if let Some(host) = &args.host {
        options = options.with_profile(Profile::for_host(host.as_bytes()));
    }
    let info = RateLimitInfo::parse(status, lines.iter().map(|l| (l.name, l.value)), &options);
    for warning in info.warnings() {
        if let Some(line) = lines.get(usize::from(warning.header)) {
            let _ = writeln!(
                err,
                "ratekeeper parse: line {} ({}): {}",
                line.number,
                String::from_utf8_lossy(line.name),
                warning.kind
            );
        }
    }
    if info.warnings_dropped() > 0 {
        let _ = writeln!(err, "ratekeeper parse: {} more warnings", info.warnings_dropped());
    }
    let parsed = Parsed {
        format: info.format().map(|f| f.as_str()),
        limit: info.limit(),
        remaining: info.remaining(),
        // Waits round up: waiting a fraction of a millisecond too long is
        // harmless, too short is a 429.
        reset_after_ms: info.reset_after().map(Nanos::as_millis_ceil),
        retry_after_ms: info.retry_after().map(Nanos::as_millis_ceil),
        window_ms: info.window().map(Nanos::as_millis_floor),
    };
    serde_json::to_writer(&mut *out, &parsed).map_err(|e| e.to_string())?;
    writeln!(out).map_err(|e| e.to_string())
}

fn system_now() -> UnixTime {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    UnixTime::from_nanos(Nanos::from_duration(since).as_nanos())
}

/// The status from an optional first `HTTP/x y ...` line, and the header
/// lines up to the first blank line after a header.
fn split_response<'a>(text: &'a [u8], err: &mut impl Write) -> (Option<u16>, Vec<Line<'a>>) {
    let mut status = None;
    let mut lines = Vec::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.trim_ascii().is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        if lines.is_empty() && status.is_none() && line.starts_with(b"HTTP/") {
            status = line
                .split(|&b| b == b' ')
                .filter(|w| !w.is_empty())
                .nth(1)
                .and_then(|code| std::str::from_utf8(code).ok())
                .and_then(|code| code.parse().ok());
            if status.is_none() {
                let _ = writeln!(
                    err,
                    "ratekeeper parse: line {number}: status line without a status code"
                );
            }
            continue;
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) if colon > 0 && !line[0].is_ascii_whitespace() => lines.push(Line {
                number,
                name: line[..colon].trim_ascii(),
                value: line[colon + 1..].trim_ascii(),
            }),
            _ => {
                let _ = writeln!(
                    err,
                    "ratekeeper parse: line {number}: not a \"Name: value\" header, ignored"
                );
            }
        }
    }
    (status, lines)
}
