//! `ratekeeper run`: a JSONL file of requests, run to completion through
//! the gate, each id in the results exactly once — also across a crash and
//! a rerun with the same `--out`, which resumes.
//!
//! Results are appended one line per request, each with a single `write`
//! of the whole line, so after a crash the file holds whole lines and at
//! most one torn last line. A rerun reads the whole lines as done,
//! truncates the torn one away and runs every id not yet written.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ratekeeper_core::{AsyncStore, Clock};
use ratekeeper_http::{Config, EndpointReport, Gate};
use serde::Serialize;
use serde_json::Value;

use crate::client::{Completion, RequestSpec, Sender};

/// Arguments of `ratekeeper run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The requests, one JSON object per line:
    /// {"id": string, "method": string, "url": string, "headers": {..}?, "body": any?}
    pub(crate) requests: PathBuf,
    /// Where results go, one JSON object per line; an existing file is
    /// resumed: the ids already in it are not run again.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: u32,
    /// Where buckets, learned limits and pauses live: `memory` (this
    /// process alone) or `redis://HOST:PORT/DB` (shared by every process
    /// on it). Default: the configuration's `store_url`, else `memory`.
    #[arg(long)]
    pub(crate) store: Option<String>,
    /// Write a summary of the run as JSON to this file.
    #[arg(long)]
    pub(crate) summary: Option<PathBuf>,
    /// The most times one request is sent (retries after 429/503 included).
    /// Default: the configuration's `max_attempts`, else 6.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) max_attempts: Option<u32>,
    /// The gate's configuration: a TOML file as ratekeeper-http reads it
    /// (per host and per endpoint settings, `enabled = false` to switch
    /// limiting off). Default: the file named by `RATEKEEPER_CONFIG`.
    /// `RATEKEEPER_*` variables go over the file, and flags over both.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Serve Prometheus metrics on this address while the run lasts.
    #[arg(long)]
    pub(crate) metrics_addr: Option<SocketAddr>,
}

/// One line of RESULTS (contract).
#[derive(Debug, Serialize)]
struct ResultLine<'a> {
    id: &'a str,
    status: Option<u16>,
    attempts: u32,
    outcome: &'static str,
    error: Option<&'a str>,
}

/// SUMMARY (contract).
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) total: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) responses_429: u64,
    pub(crate) retries: u64,
    pub(crate) elapsed_ms: u64,
    pub(crate) endpoints: std::collections::BTreeMap<String, EndpointSummary>,
}

/// What was learned about one endpoint (contract).
#[derive(Debug, Serialize)]
pub(crate) struct EndpointSummary {
    pub(crate) limit: u32,
    pub(crate) window_ms: u64,
    pub(crate) source: &'static str,
}

impl From<&EndpointReport> for EndpointSummary {
    fn from(report: &EndpointReport) -> EndpointSummary {
        EndpointSummary {
            limit: report.limit,
            window_ms: report.window.as_millis_floor(),
            source: report.source.as_str(),
        }
    }
}

/// The configuration of a run: the file (`--config`, else the one named by
/// `RATEKEEPER_CONFIG`), `RATEKEEPER_*` variables over it, flags over both.
pub(crate) fn configuration(
    file: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
    store: Option<&str>,
    max_attempts: Option<u32>,
) -> Result<Config, String> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let named = vars
        .iter()
        .find(|(name, _)| name == "RATEKEEPER_CONFIG")
        .map(|(_, path)| PathBuf::from(path))
        .filter(|path| !path.as_os_str().is_empty());
    let mut config = match file.map(Path::to_path_buf).or(named) {
        Some(path) => Config::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => Config::default(),
    }
    .with_env(vars)
    .map_err(|e| e.to_string())?;
    if let Some(store) = store {
        config.store_url = store.to_owned();
    }
    if let Some(max_attempts) = max_attempts {
        config.max_attempts = max_attempts;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// A request to run, with its input line number.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) request: RequestSpec,
}

/// The results file, appended one whole line per write.
#[derive(Debug)]
pub(crate) struct ResultsFile {
    file: Mutex<File>,
    tally: Mutex<Tally>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) total: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) retries: u64,
}

impl ResultsFile {
    /// Opens `path` for appending after reading the ids it already holds.
    /// A last line without its newline (a write cut by a crash) is cut off.
    pub(crate) fn open(path: &Path) -> Result<(ResultsFile, HashSet<String>), String> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let whole = text
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i.saturating_add(1));
        if whole < text.len() {
            eprintln!(
                "ratekeeper run: {}: discarded a torn last line ({} bytes) left by an interrupted run; its request runs again",
                path.display(),
                text.len().saturating_sub(whole)
            );
            file.set_len(u64::try_from(whole).unwrap_or(u64::MAX))
                .map_err(|e| format!("cannot truncate {}: {e}", path.display()))?;
        }
        let mut done = HashSet::new();
        let mut tally = Tally::default();
        for (index, line) in text
            .get(..whole)
            .unwrap_or_default()
            .split(|&b| b == b'\n')
            .enumerate()
        {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed: Option<(String, Value)> = serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|v| Some((v.get("id")?.as_str()?.to_owned(), v)));
            match parsed {
                Some((id, value)) => {
                    if done.insert(id) {
                        tally.total = tally.total.saturating_add(1);
                        if value.get("outcome").and_then(Value::as_str) == Some("ok") {
                            tally.succeeded = tally.succeeded.saturating_add(1);
                        } else {
                            tally.failed = tally.failed.saturating_add(1);
                        }
                        let attempts = value.get("attempts").and_then(Value::as_u64).unwrap_or(0);
                        tally.retries = tally.retries.saturating_add(attempts.saturating_sub(1));
                    }
                }
                None => eprintln!(
                    "ratekeeper run: {}: line {} is not a result, ignored",
                    path.display(),
                    index.saturating_add(1)
                ),
            }
        }
        Ok((
            ResultsFile {
                file: Mutex::new(file),
                tally: Mutex::new(tally),
            },
            done,
        ))
    }

    /// Appends one result with a single write.
    pub(crate) fn write(&self, id: &str, completion: &Completion) -> Result<(), String> {
        let ok = completion.error.is_none();
        let line = ResultLine {
            id,
            status: completion.status,
            attempts: completion.attempts,
            outcome: if ok { "ok" } else { "failed" },
            error: completion.error.as_deref(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        {
            let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(&bytes)
                .and_then(|()| file.flush())
                .map_err(|e| format!("cannot write a result: {e}"))?;
        }
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.total = tally.total.saturating_add(1);
        if ok {
            tally.succeeded = tally.succeeded.saturating_add(1);
        } else {
            tally.failed = tally.failed.saturating_add(1);
        }
        tally.retries = tally
            .retries
            .saturating_add(u64::from(completion.attempts.saturating_sub(1)));
        Ok(())
    }

    pub(crate) fn tally(&self) -> Tally {
        *self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sync(&self) -> Result<(), String> {
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.sync_all()
            .map_err(|e| format!("cannot sync the results: {e}"))
    }
}

/// Reads one input line as a request; the error names what is wrong.
fn parse_request(line: &str) -> Result<(String, RequestSpec), (Option<String>, String)> {
    let value: Value = serde_json::from_str(line).map_err(|e| (None, format!("not JSON: {e}")))?;
    let object = value.as_object().ok_or((None, "not a JSON object".to_owned()))?;
    let id = match object.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(_) => return Err((None, "\"id\" is not a string".to_owned())),
        None => return Err((None, "no \"id\"".to_owned())),
    };
    let bad = |message: String| (Some(id.clone()), message);
    let method = match object.get("method") {
        Some(Value::String(m)) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad(format!("\"method\" {m:?} is not an HTTP method")))?,
        _ => return Err(bad("\"method\" is missing or not a string".to_owned())),
    };
    let url = match object.get("url") {
        Some(Value::String(u)) => reqwest::Url::parse(u).map_err(|e| bad(format!("\"url\" {u:?}: {e}")))?,
        _ => return Err(bad("\"url\" is missing or not a string".to_owned())),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "\"url\" scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| bad(format!("header {name:?} is not a string")))?;
                reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(format!("header name {name:?} is not valid")))?;
                reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| bad(format!("header {name:?} has an invalid value")))?;
                headers.push((name.clone(), value.to_owned()));
            }
        }
        Some(_) => return Err(bad("\"headers\" is not an object".to_owned())),
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => None,
        // A string is sent as it is; anything else as its JSON.
        Some(Value::String(text)) => Some(text.clone().into_bytes()),
        Some(other) => {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
            }
            Some(other.to_string().into_bytes())
        }
    };
    Ok((
        id,
        RequestSpec {
            method,
            url,
            headers,
            body,
        },
    ))
}

/// Reads the input: jobs to run; bad lines are written as failed at once,
/// and ids already done or repeated are skipped. Returns the jobs and how
/// many lines were problems (bad or duplicate).
pub(crate) fn plan(
    input: &str,
    results: &ResultsFile,
    done: &HashSet<String>,
) -> Result<(Vec<Job>, u64), String> {
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut jobs = Vec::new();
    let mut problems = 0_u64;
    for (index, line) in input.lines().enumerate() {
        let number = index.saturating_add(1);
        if line.trim().is_empty() {
            continue;
        }
        let (id, parsed) = match parse_request(line) {
            Ok((id, request)) => (id.clone(), Ok(Job { id, request })),
            // A line without a usable id is known by its line number.
            Err((id, message)) => (id.unwrap_or_else(|| format!("line:{number}")), Err(message)),
        };
        if let Some(first) = first_line.get(&id) {
            problems = problems.saturating_add(1);
            eprintln!(
                "ratekeeper run: line {number}: duplicate id {id:?} (first on line {first}): not run, its result is the first one's"
            );
            continue;
        }
        first_line.insert(id.clone(), number);
        match parsed {
            Ok(job) => {
                if !done.contains(&id) {
                    jobs.push(job);
                }
            }
            Err(message) => {
                problems = problems.saturating_add(1);
                eprintln!("ratekeeper run: line {number}: {message}");
                if !done.contains(&id) {
                    let completion = Completion {
                        status: None,
                        attempts: 0,
                        error: Some(format!("input line {number}: {message}")),
                    };
                    results.write(&id, &completion)?;
                }
            }
        }
    }
    Ok((jobs, problems))
}

/// Runs `jobs` through `sender` with `concurrency` workers, writing each
/// result as it ends; `progress` advances by one per request.
pub(crate) async fn drive(
    sender: Sender,
    jobs: Vec<Job>,
    results: Arc<ResultsFile>,
    concurrency: u32,
    progress: ProgressBar,
) -> Result<(), String> {
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (sender, queue, results, progress) = (
            sender.clone(),
            Arc::clone(&queue),
            Arc::clone(&results),
            progress.clone(),
        );
        workers.spawn(async move {
            loop {
                let Some(job) = queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front() else {
                    return Ok::<(), String>(());
                };
                let completion = sender.execute(&job.request).await;
                results.write(&job.id, &completion)?;
                progress.inc(1);
            }
        });
    }
    let mut outcome = Ok(());
    while let Some(joined) = workers.join_next().await {
        let result = joined
            .map_err(|e| format!("a worker failed: {e}"))
            .and_then(|r| r);
        if let Err(e) = result {
            outcome = Err(e);
            workers.abort_all();
        }
    }
    outcome
}

/// A progress bar on stderr when it is a terminal; otherwise a line every
/// few seconds.
pub(crate) fn progress_bar(length: u64, label: &str) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(length);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        let bar = ProgressBar::hidden();
        bar.set_length(length);
        let watched = bar.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            while !watched.is_finished() {
                tick.tick().await;
                if !watched.is_finished() {
                    eprintln!(
                        "{label}: {}/{} done",
                        watched.position(),
                        watched.length().unwrap_or(0)
                    );
                }
            }
        });
        bar
    }
}

/// `ratekeeper run`. Returns whether every request succeeded.
pub(crate) fn run(args: &RunArgs) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &RunArgs) -> Result<bool, String> {
    let started = std::time::Instant::now();
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    }
    let input = std::fs::read_to_string(&args.requests)
        .map_err(|e| format!("cannot read {}: {e}", args.requests.display()))?;
    let (results, done) = ResultsFile::open(&args.out)?;
    let results = Arc::new(results);
    let (jobs, problems) = plan(&input, &results, &done)?;
    if !done.is_empty() {
        eprintln!(
            "ratekeeper run: resuming: {} results already in {}, {} requests to run",
            done.len(),
            args.out.display(),
            jobs.len()
        );
    }
    let config = configuration(
        args.config.as_deref(),
        std::env::vars(),
        args.store.as_deref(),
        args.max_attempts,
    )?;
    if !config.enabled {
        eprintln!(
            "ratekeeper run: limiting is switched off (enabled = false): requests go unpaced and unretried"
        );
    }
    let store = config.store_url.trim();
    let (responses_429, endpoints) = if store == "memory" {
        let gate = Arc::new(Gate::memory(&config).map_err(|e| e.to_string())?);
        (
            execute(args, &config, &gate, jobs, &results).await?,
            gate.endpoints(),
        )
    } else if store.starts_with("redis://") || store.starts_with("rediss://") {
        let redis = ratekeeper_redis::RedisStore::connect(store, ratekeeper_redis::RedisConfig::default())
            .await
            .map_err(|e| format!("cannot use the store {store}: {e}"))?;
        // Shared with every process on the same Redis: paced by the
        // fleet's buckets, never on what one process was told is left.
        let gate = Arc::new(Gate::new(redis, &config).map_err(|e| e.to_string())?);
        (
            execute(args, &config, &gate, jobs, &results).await?,
            gate.endpoints(),
        )
    } else {
        return Err(format!(
            "--store {store:?}: expected `memory` or `redis://HOST:PORT/DB`"
        ));
    };
    results.sync()?;
    let tally = results.tally();
    if let Some(path) = &args.summary {
        let summary = Summary {
            total: tally.total,
            succeeded: tally.succeeded,
            failed: tally.failed,
            responses_429,
            retries: tally.retries,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            endpoints: endpoints
                .iter()
                .map(|report| (report.key.clone(), report.into()))
                .collect(),
        };
        let mut text = serde_json::to_vec_pretty(&summary).map_err(|e| e.to_string())?;
        text.push(b'\n');
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "ratekeeper run: {} requests: {} succeeded, {} failed; {} responses were 429",
        tally.total, tally.succeeded, tally.failed, responses_429
    );
    Ok(tally.failed == 0 && problems == 0)
}

async fn execute<S, C>(
    args: &RunArgs,
    config: &Config,
    gate: &Arc<Gate<S, C>>,
    jobs: Vec<Job>,
    results: &Arc<ResultsFile>,
) -> Result<u64, String>
where
    S: AsyncStore + Send + Sync + 'static,
    S::Error: Send,
    C: Clock + Send + Sync + 'static,
{
    let sender = Sender::new(gate, config.max_attempts)?;
    let counted = sender.clone();
    let progress = progress_bar(u64::try_from(jobs.len()).unwrap_or(u64::MAX), "ratekeeper run");
    let outcome = drive(
        sender,
        jobs,
        Arc::clone(results),
        args.concurrency,
        progress.clone(),
    )
    .await;
    progress.finish();
    outcome.map(|()| counted.responses_429())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn variables_go_over_the_file_and_flags_over_both() {
        let dir = std::env::temp_dir().join(format!("ratekeeper-cli-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ratekeeper.toml");
        std::fs::write(
            &file,
            "max_attempts = 3\nstore_url = \"redis://127.0.0.1:1/0\"\nbreaker_failures = 7\n\
             [hosts.\"api.close.com\"]\nmax_attempts = 2\n",
        )
        .unwrap();
        let config = configuration(Some(&file), vars(&[]), None, None).unwrap();
        assert_eq!((config.max_attempts, config.breaker_failures), (3, 7));
        assert_eq!(config.hosts["api.close.com"].max_attempts, Some(2));
        let config = configuration(
            Some(&file),
            vars(&[("RATEKEEPER_MAX_ATTEMPTS", "4"), ("RATEKEEPER_ENABLED", "off")]),
            None,
            None,
        )
        .unwrap();
        assert_eq!(config.max_attempts, 4);
        assert!(!config.enabled);
        let config = configuration(
            Some(&file),
            vars(&[("RATEKEEPER_MAX_ATTEMPTS", "4")]),
            Some("memory"),
            Some(9),
        )
        .unwrap();
        assert_eq!((config.max_attempts, config.store_url.as_str()), (9, "memory"));
        // RATEKEEPER_CONFIG names the file when --config does not.
        let named = vars(&[("RATEKEEPER_CONFIG", file.to_str().unwrap())]);
        assert_eq!(configuration(None, named, None, None).unwrap().max_attempts, 3);
        assert_eq!(
            configuration(None, vars(&[]), None, None).unwrap(),
            Config::default()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_configuration_is_named_by_its_key() {
        let dir = std::env::temp_dir().join(format!("ratekeeper-cli-bad-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ratekeeper.toml");
        std::fs::write(&file, "[hosts.\"api.close.com\"]\nbreaker_open_ms = 0\n").unwrap();
        let error = configuration(Some(&file), vars(&[]), None, None).unwrap_err();
        assert!(
            error.contains("hosts.\"api.close.com\".breaker_open_ms"),
            "{error}"
        );
        let error = configuration(None, vars(&[("RATEKEEPER_BURST", "lots")]), None, None).unwrap_err();
        assert!(error.contains("RATEKEEPER_BURST"), "{error}");
        let error = configuration(Some(&dir.join("missing.toml")), vars(&[]), None, None).unwrap_err();
        assert!(error.contains("missing.toml"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
