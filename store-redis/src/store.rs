//! The store: connections, batching, deadlines and the fallback.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ratekeeper_core::{
    Acquire, AsyncStore, Clock, Decision, Gcra, Instant, MonotonicClock, Nanos, Policy, Store,
};
use ratekeeper_memory::MemoryStore;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, RedisError, RedisResult, Script, ServerErrorKind, ToRedisArgs, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::config::RedisConfig;
use crate::health::{Health, Route};
use crate::policy_codec;
use crate::script::{self, Operation, Reply};

/// Why a store could not be made, or (rarely) why an operation failed.
///
/// Operations fail only when Redis *and* the in-process fallback fail;
/// Redis failing alone moves decisions to the fallback.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The settings were refused; the message says which.
    InvalidConfig(&'static str),
    /// The URL could not be used, or a cluster could not be reached.
    Connect(RedisError),
    /// The in-process fallback failed (its error, formatted).
    Fallback(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(why) => write!(f, "invalid Redis store settings: {why}"),
            Error::Connect(error) => write!(f, "cannot connect to Redis: {error}"),
            Error::Fallback(error) => write!(f, "the in-process fallback failed: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(error) => Some(error),
            _ => None,
        }
    }
}

/// A snapshot of where a store decides and how often it fell back, for
/// health checks and tests.
///
/// ```no_run
/// # async fn run(store: ratekeeper_redis::RedisStore) {
/// let status = store.status();
/// if !status.on_redis {
///     eprintln!("rate limits are local until Redis answers again");
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStatus {
    /// Whether decisions currently go to Redis.
    pub on_redis: bool,
    /// Decisions made by Redis.
    pub redis_decisions: u64,
    /// Decisions made by the fallback.
    pub fallback_decisions: u64,
    /// How many times the store moved to the fallback.
    pub fallbacks_entered: u64,
    /// How many times it moved back to Redis.
    pub recoveries: u64,
}

/// A clock shared by the store and its fallback.
#[derive(Debug)]
struct SharedClock<C>(Arc<C>);

impl<C: Clock> Clock for SharedClock<C> {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// A connection to one server (through a manager that reconnects) or to
/// a cluster.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    async fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Connection::Single(manager) => cmd.query_async(manager).await,
            Connection::Cluster(cluster) => cmd.query_async(cluster).await,
        }
    }

    /// Runs `script` by its hash, and by its source when the server has
    /// forgotten it (`NOSCRIPT`: a restart, a `SCRIPT FLUSH`, a failover).
    /// `EVAL` both runs and caches it, on whichever node owns the keys.
    async fn run<A: ToRedisArgs>(
        &mut self,
        script: &Script,
        source: &str,
        keys: &[String],
        args: &[A],
    ) -> RedisResult<Value> {
        let mut by_hash = redis::cmd("EVALSHA");
        by_hash.arg(script.get_hash()).arg(keys.len()).arg(keys).arg(args);
        match self.query(&by_hash).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let mut by_source = redis::cmd("EVAL");
                by_source.arg(source).arg(keys.len()).arg(keys).arg(args);
                self.query(&by_source).await
            }
            other => other,
        }
    }
}

/// Why an operation did not get Redis's answer.
#[derive(Clone, Debug)]
enum Failure {
    Redis(RedisError),
    Late,
    Malformed,
    Dropped,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Redis(error) => write!(f, "{error}"),
            Failure::Late => f.write_str("no answer within the deadline"),
            Failure::Malformed => f.write_str("the script's reply could not be read"),
            Failure::Dropped => f.write_str("the batch was dropped"),
        }
    }
}

/// An operation waiting to be sent.
struct Pending {
    key: String,
    operation: Operation,
    reply: oneshot::Sender<Result<Reply, Failure>>,
}

/// What the batch driver needs.
struct Shared {
    connection: Connection,
    cluster: bool,
    script: Script,
    source: String,
    deadline: Duration,
    max_batch: usize,
    batches: Arc<Semaphore>,
}

struct Inner<C> {
    connection: Connection,
    queue: mpsc::UnboundedSender<Pending>,
    config: RedisConfig,
    clock: Arc<C>,
    fallback: MemoryStore<SharedClock<C>>,
    health: Health,
    policy_get: Script,
    policy_set: Script,
    redis_decisions: AtomicU64,
    fallback_decisions: AtomicU64,
}

/// Buckets, pauses and policies in Redis, shared by every instance; see the
/// [crate docs](crate) for the design. Cloning is cheap and shares
/// everything.
pub struct RedisStore<C = MonotonicClock> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for RedisStore<C> {
    fn clone(&self) -> RedisStore<C> {
        RedisStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.inner.config)
            .field("on_redis", &self.inner.health.on_redis())
            .finish_non_exhaustive()
    }
}

fn install_tls_provider() {
    #[cfg(feature = "tls")]
    {
        // Another part of the program may have installed one already;
        // either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl RedisStore<MonotonicClock> {
    /// A store on the server at `url` (`redis://[user:password@]host:port/db`,
    /// or `rediss://` with the `tls` feature). Connects lazily: a server
    /// that is down at first only means decisions start on the fallback.
    /// Must be called within a tokio runtime.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<RedisStore, Error> {
        RedisStore::connect_with_clock(url, config, MonotonicClock::new()).await
    }

    /// A store on the Redis Cluster reached through `seeds` (URLs of some
    /// of its nodes). Connects at once, to learn the slot map.
    pub async fn connect_cluster(seeds: &[&str], config: RedisConfig) -> Result<RedisStore, Error> {
        RedisStore::connect_cluster_with_clock(seeds, config, MonotonicClock::new()).await
    }
}

impl<C: Clock + Send + Sync + 'static> RedisStore<C> {
    /// [`RedisStore::connect`] with the caller's clock, on which policy
    /// instants and [`Allowed::tat`](ratekeeper_core::Allowed::tat) are
    /// read and the fallback decides.
    pub async fn connect_with_clock(
        url: &str,
        config: RedisConfig,
        clock: C,
    ) -> Result<RedisStore<C>, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        install_tls_provider();
        let client = redis::Client::open(url).map_err(Error::Connect)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.deadline))
            .set_connection_timeout(Some(config.deadline.max(Duration::from_millis(250))))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(config.probe_backoff_max);
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(Error::Connect)?;
        Ok(RedisStore::start(
            Connection::Single(manager),
            false,
            config,
            clock,
        ))
    }

    /// [`RedisStore::connect_cluster`] with the caller's clock.
    pub async fn connect_cluster_with_clock(
        seeds: &[&str],
        config: RedisConfig,
        clock: C,
    ) -> Result<RedisStore<C>, Error> {
        config.validate().map_err(Error::InvalidConfig)?;
        install_tls_provider();
        let client = redis::cluster::ClusterClient::builder(seeds.iter().copied())
            .connection_timeout(config.deadline.max(Duration::from_millis(250)))
            .response_timeout(config.deadline)
            .retries(2)
            .build()
            .map_err(Error::Connect)?;
        let connection = client.get_async_connection().await.map_err(Error::Connect)?;
        Ok(RedisStore::start(
            Connection::Cluster(connection),
            true,
            config,
            clock,
        ))
    }

    fn start(connection: Connection, cluster: bool, config: RedisConfig, clock: C) -> RedisStore<C> {
        let clock = Arc::new(clock);
        let source = script::source();
        let (queue, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            connection: connection.clone(),
            cluster,
            script: Script::new(&source),
            source,
            deadline: config.deadline,
            max_batch: config.max_batch,
            batches: Arc::new(Semaphore::new(config.batches_in_flight)),
        });
        tokio::spawn(drive(shared, receiver));
        RedisStore {
            inner: Arc::new(Inner {
                connection,
                queue,
                fallback: MemoryStore::new(SharedClock(Arc::clone(&clock))),
                clock,
                health: Health::new(config.probe_backoff_min, config.probe_backoff_max),
                config,
                policy_get: Script::new(policy_codec::GET_SOURCE),
                policy_set: Script::new(policy_codec::SET_SOURCE),
                redis_decisions: AtomicU64::new(0),
                fallback_decisions: AtomicU64::new(0),
            }),
        }
    }

    /// Where the store decides now, and how often it fell back.
    pub fn status(&self) -> StoreStatus {
        let inner = &self.inner;
        StoreStatus {
            on_redis: inner.health.on_redis(),
            redis_decisions: inner.redis_decisions.load(Ordering::Relaxed),
            fallback_decisions: inner.fallback_decisions.load(Ordering::Relaxed),
            fallbacks_entered: inner.health.fallbacks_entered.load(Ordering::Relaxed),
            recoveries: inner.health.recoveries.load(Ordering::Relaxed),
        }
    }

    /// The Redis key of bucket `key`'s state.
    ///
    /// ```
    /// # use ratekeeper_redis::{RedisConfig, RedisStore};
    /// # async fn run() -> Result<(), ratekeeper_redis::Error> {
    /// let store = RedisStore::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?;
    /// assert_eq!(store.bucket_key("api.example.com/items"), "ratekeeper:{api.example.com/items}:b");
    /// # Ok(())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
    /// ```
    pub fn bucket_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:b", self.inner.config.key_prefix)
    }

    /// The Redis key of bucket `key`'s policy.
    pub fn policy_key(&self, key: &str) -> String {
        format!("{}{{{key}}}:p", self.inner.config.key_prefix)
    }

    /// Sends one operation through the batch queue and waits for its
    /// reply, at most the deadline.
    async fn submit(&self, key: &str, operation: Operation) -> Result<Reply, Failure> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key: self.bucket_key(key),
            operation,
            reply,
        };
        if self.inner.queue.send(pending).is_err() {
            return Err(Failure::Dropped);
        }
        match tokio::time::timeout(self.inner.config.deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::Dropped),
            Err(_) => Err(Failure::Late),
        }
    }

    /// The fallback's share of `gcra`: `fleet` times slower, a `fleet`-th
    /// of the burst (but never less than the request's own cost).
    fn share(&self, request: &Acquire) -> Acquire {
        let fleet = self.inner.config.fleet_size;
        let gcra = request.gcra;
        let burst = (gcra.burst() / fleet).max(request.cost.min(gcra.burst())).max(1);
        let interval = gcra.emission_interval().saturating_mul(u64::from(fleet));
        let gcra = Gcra::new(interval, burst).unwrap_or(Gcra::SLOWEST);
        Acquire { gcra, ..*request }
    }

    fn fallback_acquire(&self, key: &str, request: &Acquire) -> Result<Decision, Error> {
        self.inner.fallback_decisions.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ratekeeper_redis_fallback_decisions_total").increment(1);
        Store::acquire(&self.inner.fallback, key, &self.share(request))
            .map_err(|e| Error::Fallback(format!("{e:?}")))
    }

    fn fallback_pause(&self, key: &str, span: Nanos) -> Result<(), Error> {
        Store::pause(&self.inner.fallback, key, span).map_err(|e| Error::Fallback(format!("{e:?}")))
    }

    fn fallback_set_policy(&self, key: &str, policy: &Policy) -> Result<(), Error> {
        Store::set_policy(&self.inner.fallback, key, policy).map_err(|e| Error::Fallback(format!("{e:?}")))
    }

    async fn acquire_on_redis(&self, key: &str, request: &Acquire) -> Result<Decision, Error> {
        let request = &script::capped(request);
        if request.cost > request.gcra.burst() {
            // Never admitted, whatever the state: no need to ask.
            return Ok(Decision::Impossible {
                cost: request.cost,
                burst: request.gcra.burst(),
            });
        }
        let route = self.inner.health.route();
        if route == Route::Fallback {
            return self.fallback_acquire(key, request);
        }
        match self.submit(key, Operation::Acquire(*request)).await {
            Ok(Reply::Decision(mut decision)) => {
                self.inner.health.succeeded();
                self.inner.redis_decisions.fetch_add(1, Ordering::Relaxed);
                if let Decision::Allowed(allowed) = &mut decision {
                    // Spans only cross the network; the TAT is handed
                    // back on the caller's clock.
                    let ahead = allowed.tat.saturating_duration_since(script::ORIGIN);
                    allowed.tat = self.inner.clock.now().saturating_add(ahead);
                }
                Ok(decision)
            }
            Ok(Reply::Paused) => {
                self.inner.health.failed(route, &Failure::Malformed);
                self.fallback_acquire(key, request)
            }
            Err(failure) => {
                self.inner.health.failed(route, &failure);
                self.fallback_acquire(key, request)
            }
        }
    }

    async fn pause_on_redis(&self, key: &str, span: Nanos) -> Result<(), Error> {
        // Written through, so the pause holds on the fallback too.
        self.fallback_pause(key, span)?;
        let route = self.inner.health.route();
        if route == Route::Fallback {
            return Ok(());
        }
        match self.submit(key, Operation::Pause(span)).await {
            Ok(Reply::Paused) => self.inner.health.succeeded(),
            Ok(Reply::Decision(_)) => self.inner.health.failed(route, &Failure::Malformed),
            Err(failure) => self.inner.health.failed(route, &failure),
        }
        Ok(())
    }

    async fn policy_from_redis(&self, key: &str) -> Result<Option<Policy>, Error> {
        let route = self.inner.health.route();
        if route != Route::Fallback {
            let mut connection = self.inner.connection.clone();
            let keys = [self.policy_key(key)];
            let read = connection.run(
                &self.inner.policy_get,
                policy_codec::GET_SOURCE,
                &keys,
                &[] as &[&str],
            );
            match tokio::time::timeout(self.inner.config.deadline, read).await {
                Ok(Ok(value)) => {
                    self.inner.health.succeeded();
                    let policy = decode_policy(value, self.inner.clock.now());
                    if let Some(policy) = &policy {
                        self.fallback_set_policy(key, policy)?;
                    }
                    return Ok(policy);
                }
                Ok(Err(error)) => self.inner.health.failed(route, &Failure::Redis(error)),
                Err(_) => self.inner.health.failed(route, &Failure::Late),
            }
        }
        Store::policy(&self.inner.fallback, key).map_err(|e| Error::Fallback(format!("{e:?}")))
    }

    async fn set_policy_on_redis(&self, key: &str, policy: &Policy) -> Result<(), Error> {
        self.fallback_set_policy(key, policy)?;
        let route = self.inner.health.route();
        if route == Route::Fallback {
            return Ok(());
        }
        let mut connection = self.inner.connection.clone();
        let keys = [self.policy_key(key)];
        let encoded = policy_codec::encode(policy, self.inner.clock.now());
        let ttl = self.inner.config.policy_ttl.as_millis().to_string();
        let args = [encoded.as_str(), ttl.as_str()];
        let write = connection.run(&self.inner.policy_set, policy_codec::SET_SOURCE, &keys, &args);
        match tokio::time::timeout(self.inner.config.deadline, write).await {
            Ok(Ok(_)) => self.inner.health.succeeded(),
            Ok(Err(error)) => self.inner.health.failed(route, &Failure::Redis(error)),
            Err(_) => self.inner.health.failed(route, &Failure::Late),
        }
        Ok(())
    }
}

fn decode_policy(value: Value, local_now: Instant) -> Option<Policy> {
    let Value::Array(fields) = value else {
        return None;
    };
    let text = |value: Option<&Value>| match value {
        Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Some(Value::Int(n)) => Some(n.to_string()),
        _ => None,
    };
    let stored = text(fields.first())?;
    let seconds = text(fields.get(1))?.parse().ok()?;
    let micros = text(fields.get(2))?.parse().ok()?;
    policy_codec::decode(&stored, (seconds, micros), local_now)
}

impl<C: Clock + Send + Sync + 'static> AsyncStore for RedisStore<C> {
    type Error = Error;

    fn acquire(&self, key: &str, request: &Acquire) -> impl Future<Output = Result<Decision, Error>> + Send {
        self.acquire_on_redis(key, request)
    }

    fn pause(&self, key: &str, span: Nanos) -> impl Future<Output = Result<(), Error>> + Send {
        self.pause_on_redis(key, span)
    }

    fn policy(&self, key: &str) -> impl Future<Output = Result<Option<Policy>, Error>> + Send {
        self.policy_from_redis(key)
    }

    fn set_policy(&self, key: &str, policy: &Policy) -> impl Future<Output = Result<(), Error>> + Send {
        self.set_policy_on_redis(key, policy)
    }
}

/// Takes every operation waiting, up to a batch, and sends it as one script
/// call (one per bucket on a cluster); up to `batches_in_flight` calls at
/// once. Ends when the store is dropped.
async fn drive(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = queue.recv().await {
        // Waiting for a free call slot first lets more operations gather.
        let Ok(permit) = Arc::clone(&shared.batches).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < shared.max_batch {
            match queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if shared.cluster {
                let mut by_key: HashMap<String, Vec<Pending>> = HashMap::new();
                for pending in batch {
                    by_key.entry(pending.key.clone()).or_default().push(pending);
                }
                let mut calls = tokio::task::JoinSet::new();
                for (_, group) in by_key {
                    calls.spawn(send_batch(Arc::clone(&shared), group));
                }
                while calls.join_next().await.is_some() {}
            } else {
                send_batch(Arc::clone(&shared), batch).await;
            }
            drop(permit);
        });
    }
}

/// One script call for `batch`; every operation gets its reply or the
/// reason it has none.
async fn send_batch(shared: Arc<Shared>, batch: Vec<Pending>) {
    let mut keys: Vec<String> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut operations = Vec::with_capacity(batch.len());
    for pending in &batch {
        let position = match index.get(pending.key.as_str()) {
            Some(position) => *position,
            None => {
                let position = keys.len();
                keys.push(pending.key.clone());
                index.insert(pending.key.as_str(), position);
                position
            }
        };
        operations.push((position, pending.operation));
    }
    let args = script::encode(&operations);
    let mut connection = shared.connection.clone();
    let call = connection.run(&shared.script, &shared.source, &keys, &args);
    let outcome = match tokio::time::timeout(shared.deadline, call).await {
        Ok(Ok(value)) => read_replies(value, &operations, keys.len()),
        Ok(Err(error)) => Err(Failure::Redis(error)),
        Err(_) => Err(Failure::Late),
    };
    match outcome {
        Ok(replies) => {
            for (pending, reply) in batch.into_iter().zip(replies) {
                // A caller that gave up (deadline) no longer listens.
                let _ = pending.reply.send(Ok(reply));
            }
        }
        Err(failure) => {
            for pending in batch {
                let _ = pending.reply.send(Err(failure.clone()));
            }
        }
    }
}

fn read_replies(value: Value, operations: &[(usize, Operation)], keys: usize) -> Result<Vec<Reply>, Failure> {
    let Value::Array(items) = value else {
        return Err(Failure::Malformed);
    };
    let numbers = items
        .into_iter()
        .map(|item| match item {
            Value::Int(n) => Ok(n),
            _ => Err(Failure::Malformed),
        })
        .collect::<Result<Vec<i64>, Failure>>()?;
    script::replay(&numbers, operations, keys).map_err(|_| Failure::Malformed)
}
