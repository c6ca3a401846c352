//! The Redis store against Redis's own `PING`, on a `redis-server` this
//! section starts on a free loopback port (and kills when done).
//!
//! Both sides run 16 tasks in flight on one tokio thread over the same kind
//! of connection (the `redis` crate's connection manager), so the ratio
//! `redis_acquire / redis_ping` says how close a decision comes to the
//! cheapest possible round trip. `redis_server_us_per_decision` is Redis's
//! own CPU time for the scripts (`INFO commandstats`, `EVALSHA` and `EVAL`)
//! divided by the decisions they made.
//!
//! Rates are medians over the rounds; ratios are medians of each round's
//! own ratio.
//!
//! The headline figures are 16 callers on one bucket (a bulk job on one
//! endpoint: the waiters share each script call). The `_16_buckets`
//! figures are 16 callers each on its own bucket, where every decision
//! still reads and writes its own key.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ratekeeper_core::{Acquire, AsyncStore, Gcra, Nanos};
use ratekeeper_redis::{RedisConfig, RedisStore};
use serde_json::json;

use crate::{Figure, median};

const IN_FLIGHT: usize = 16;
const OPERATIONS_PER_ROUND: usize = 32_000;

/// Figures of the Redis store, or none (said on stderr) without `redis-server`.
pub fn figures(rounds: usize) -> Vec<Figure> {
    let Some(server) = Server::start() else {
        eprintln!("redis: redis-server is not available; no Redis figures (scripts/check installs it)");
        return Vec::new();
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("redis: no tokio runtime ({error}); no Redis figures");
            return Vec::new();
        }
    };
    match runtime.block_on(measure(&server.url(), rounds)) {
        Ok(figures) => figures,
        Err(error) => {
            eprintln!("redis: measurement failed ({error}); no Redis figures");
            Vec::new()
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

async fn measure(url: &str, rounds: usize) -> Result<Vec<Figure>, BoxError> {
    let client = redis::Client::open(url)?;
    let ping_connection = redis::aio::ConnectionManager::new(client.clone()).await?;
    let mut admin = redis::aio::ConnectionManager::new(client).await?;
    // A deadline long enough that a busy machine never sends a decision to
    // the fallback: these figures are Redis's.
    let store =
        RedisStore::connect(url, RedisConfig::default().with_deadline(Duration::from_secs(1))).await?;
    // Generous enough that nearly every check is admitted; the cost of a
    // refusal is the same anyway.
    let gcra = Gcra::new(Nanos::from_nanos(1_000), 1_000_000)?;

    // Warm up both paths (connections, script cache).
    ping_rate(&ping_connection, 2_000).await?;
    acquire_rate(&store, gcra, 2_000, false).await?;

    let (mut ping, mut spread, mut hot) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hot_ratios, mut spread_ratios) = (Vec::new(), Vec::new());
    let (mut spread_cost, mut hot_cost, mut ping_cost) = (Cost::default(), Cost::default(), Cost::default());
    for round in 0..rounds {
        // Each round measures PING and the store back to back, in turns
        // first and last, and the ratio is taken within the round: the
        // load of a shared machine drifts slower than a round lasts.
        let mut round_ping = Vec::new();
        let (mut round_hot, mut round_spread) = (0.0, 0.0);
        for side in [round % 2, 1 - round % 2] {
            reset_stats(&mut admin).await?;
            if side == 0 {
                round_ping.push(ping_rate(&ping_connection, OPERATIONS_PER_ROUND).await?);
                ping_cost
                    .add(&mut admin, &["ping"], OPERATIONS_PER_ROUND as u64)
                    .await?;
            } else {
                let before = store.status().redis_decisions;
                round_hot = acquire_rate(&store, gcra, OPERATIONS_PER_ROUND, true).await?;
                hot_cost
                    .add(
                        &mut admin,
                        &["evalsha", "eval"],
                        store.status().redis_decisions - before,
                    )
                    .await?;
                let before = store.status().redis_decisions;
                round_spread = acquire_rate(&store, gcra, OPERATIONS_PER_ROUND, false).await?;
                spread_cost
                    .add(
                        &mut admin,
                        &["evalsha", "eval"],
                        store.status().redis_decisions - before,
                    )
                    .await?;
            }
        }
        let round_ping = round_ping.iter().sum::<f64>() / round_ping.len().max(1) as f64;
        hot_ratios.push(round_hot / round_ping);
        spread_ratios.push(round_spread / round_ping);
        ping.push(round_ping);
        hot.push(round_hot);
        spread.push(round_spread);
    }

    let ping = median(&mut ping).unwrap_or(f64::NAN);
    let spread = median(&mut spread).unwrap_or(f64::NAN);
    let hot = median(&mut hot).unwrap_or(f64::NAN);
    let hot_ratio = median(&mut hot_ratios).unwrap_or(f64::NAN);
    let spread_ratio = median(&mut spread_ratios).unwrap_or(f64::NAN);
    Ok(vec![
        ("redis_acquire_per_s_16_in_flight", json!(hot.round())),
        ("redis_ping_per_s_16_in_flight", json!(ping.round())),
        ("ratio_redis_vs_ping", json!(round3(hot_ratio))),
        (
            "redis_server_us_per_decision",
            json!(round3(hot_cost.usec_per_operation())),
        ),
        (
            "redis_decisions_per_script_call",
            json!(round3(hot_cost.operations_per_call())),
        ),
        (
            "redis_acquire_per_s_16_in_flight_16_buckets",
            json!(spread.round()),
        ),
        ("ratio_redis_vs_ping_16_buckets", json!(round3(spread_ratio))),
        (
            "redis_server_us_per_decision_16_buckets",
            json!(round3(spread_cost.usec_per_operation())),
        ),
        (
            "redis_decisions_per_script_call_16_buckets",
            json!(round3(spread_cost.operations_per_call())),
        ),
        (
            "redis_server_us_per_ping",
            json!(round3(ping_cost.usec_per_operation())),
        ),
        (
            "redis_fallback_decisions",
            json!(store.status().fallback_decisions),
        ),
    ])
}

/// Redis CPU spent on some commands, and the operations they served.
#[derive(Default)]
struct Cost {
    calls: u64,
    usec: u64,
    operations: u64,
}

impl Cost {
    /// Adds what `INFO commandstats` says of `commands` since the last
    /// reset, then resets.
    async fn add(
        &mut self,
        admin: &mut redis::aio::ConnectionManager,
        commands: &[&str],
        operations: u64,
    ) -> Result<(), BoxError> {
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(admin).await?;
        for (calls, usec) in commands
            .iter()
            .filter_map(|command| command_stats(&info, command))
        {
            self.calls += calls;
            self.usec += usec;
        }
        self.operations += operations;
        reset_stats(admin).await
    }

    fn usec_per_operation(&self) -> f64 {
        self.usec as f64 / self.operations.max(1) as f64
    }

    fn operations_per_call(&self) -> f64 {
        self.operations as f64 / self.calls.max(1) as f64
    }
}

async fn reset_stats(admin: &mut redis::aio::ConnectionManager) -> Result<(), BoxError> {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(admin).await?;
    Ok(())
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `calls` and `usec` of `cmdstat_<command>` in `INFO commandstats`.
fn command_stats(info: &str, command: &str) -> Option<(u64, u64)> {
    let prefix = format!("cmdstat_{command}:");
    let line = info.lines().find(|line| line.starts_with(&prefix))?;
    let field = |name: &str| {
        line.trim_start_matches(&prefix)
            .split(',')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok())
    };
    Some((field("calls")?, field("usec")?))
}

/// `PING`s per second with 16 in flight.
async fn ping_rate(connection: &redis::aio::ConnectionManager, total: usize) -> Result<f64, BoxError> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let mut connection = connection.clone();
        tasks.spawn(async move {
            for _ in 0..total / IN_FLIGHT {
                let _: String = redis::cmd("PING").query_async(&mut connection).await?;
            }
            Ok::<(), redis::RedisError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Decisions per second with 16 in flight, each task on its own bucket or
/// all on one.
async fn acquire_rate(
    store: &RedisStore,
    gcra: Gcra,
    total: usize,
    one_bucket: bool,
) -> Result<f64, BoxError> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..IN_FLIGHT {
        let store = store.clone();
        let key = if one_bucket {
            String::from("bench/hot")
        } else {
            format!("bench/endpoint-{task}")
        };
        tasks.spawn(async move {
            for _ in 0..total / IN_FLIGHT {
                store.acquire(&key, &Acquire::check(gcra)).await?;
            }
            Ok::<(), ratekeeper_redis::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("redis: redis-server did not start listening within 10 s");
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
