//! `ratekeeper inspect`: what the fleet has learned, per endpoint, and
//! what is paused, read from the Redis store.
//!
//! It reads the keys the Redis store writes under its prefix
//! (`ratekeeper:` by default): `{prefix}{ENDPOINT}:p`, a learned policy
//! (`"<server s> <server µs> <limit> <window ns> <source> <learned age ns> ..."`),
//! and `{prefix}{ENDPOINT}:b`, a bucket (`"<TAT µs> <ns> <paused until µs> <ns>"`
//! on the server's clock). Ages and pauses are measured on the server's
//! `TIME`, so the reader's clock does not matter.

use std::collections::BTreeMap;

use clap::Args;

/// Arguments of `ratekeeper inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The Redis store: `redis://HOST:PORT/DB`.
    #[arg(long)]
    store: String,
    /// The prefix of the store's keys.
    #[arg(long, default_value = "ratekeeper:")]
    prefix: String,
}

#[derive(Debug, Default)]
struct Row {
    policy: Option<(u64, u64, String, u64)>,
    paused_for_us: Option<u64>,
}

/// `ratekeeper inspect`.
pub(crate) fn run(args: &InspectArgs) -> Result<(), String> {
    let client =
        redis::Client::open(args.store.as_str()).map_err(|e| format!("--store {}: {e}", args.store))?;
    let mut connection = client
        .get_connection_with_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| format!("cannot reach {}: {e}", args.store))?;
    let (seconds, micros): (u64, u64) = redis::cmd("TIME")
        .query(&mut connection)
        .map_err(|e| format!("TIME: {e}"))?;
    let now_us = seconds.saturating_mul(1_000_000).saturating_add(micros);
    let pattern = format!("{}{{*}}:?", escape_glob(&args.prefix));
    let keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut connection)
        .map_err(|e| format!("SCAN: {e}"))?
        .filter_map(Result::ok)
        .collect();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for key in keys {
        let Some(inner) = key.strip_prefix(&args.prefix) else {
            continue;
        };
        let (endpoint, kind) = match (inner.strip_suffix("}:p"), inner.strip_suffix("}:b")) {
            (Some(e), _) => (e, 'p'),
            (_, Some(e)) => (e, 'b'),
            _ => continue,
        };
        let endpoint = endpoint.trim_start_matches('{').to_owned();
        let value: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query(&mut connection)
            .map_err(|e| format!("GET {key}: {e}"))?;
        let Some(value) = value else { continue };
        let fields: Vec<&str> = value.split(' ').collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let row = rows.entry(endpoint).or_default();
        if kind == 'p' {
            if let (Some(s), Some(us), Some(limit), Some(window), Some(source), Some(age)) = (
                number(0),
                number(1),
                number(2),
                number(3),
                fields.get(4),
                number(5),
            ) {
                let written = s.saturating_mul(1_000_000).saturating_add(us);
                let age_us = now_us.saturating_sub(written).saturating_add(age / 1000);
                row.policy = Some((limit, window / 1_000_000, (*source).to_owned(), age_us));
            }
        } else if let Some(paused_until) = number(2) {
            row.paused_for_us = (paused_until > now_us).then(|| paused_until - now_us);
        }
    }
    if rows.is_empty() {
        println!("nothing learned under {:?} in {}", args.prefix, args.store);
        return Ok(());
    }
    println!(
        "{:<48} {:>8} {:>10} {:<9} {:>9}  paused",
        "endpoint", "limit", "window", "source", "age"
    );
    for (endpoint, row) in rows {
        let (limit, window, source, age) = match &row.policy {
            Some((limit, window_ms, source, age_us)) => (
                limit.to_string(),
                format!("{window_ms} ms"),
                source.clone(),
                format!("{:.1} s", *age_us as f64 / 1e6),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let paused = match row.paused_for_us {
            Some(us) => {
                let until = std::time::SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_micros(now_us.saturating_add(us));
                let since = until
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                format!("for {:.1} s more (until unix {since})", us as f64 / 1e6)
            }
            None => "no".into(),
        };
        println!("{endpoint:<48} {limit:>8} {window:>10} {source:<9} {age:>9}  {paused}");
    }
    Ok(())
}

/// `prefix` with the glob's special characters escaped for SCAN MATCH.
fn escape_glob(prefix: &str) -> String {
    prefix
        .chars()
        .flat_map(|c| match c {
            '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}
