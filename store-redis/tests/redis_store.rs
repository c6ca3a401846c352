//! The Redis store against real `redis-server` processes: decisions shared
//! by instances and processes, keys that expire, scripts the server forgot,
//! a server killed and restarted, and a three-node cluster.
//!
//! Decisions use the server's clock, so assertions are on counts that hold
//! whatever the timing: buckets refill once an hour, so a test that takes
//! seconds sees no refill. Every loop is bounded in count and time.

mod support;

use std::time::Duration;

use ratekeeper_core::{
    Acquire, AsyncStore, Decision, DenialCause, Gcra, Instant, Nanos, Policy, PolicySource,
};
use ratekeeper_redis::{RedisConfig, RedisStore};
use support::{RedisCluster, RedisServer};

/// A limit that does not refill during a test: `burst` now, then one an hour.
fn hourly(burst: u32) -> Gcra {
    Gcra::new(Nanos::from_secs(3600 / u64::from(burst)), burst).unwrap()
}

/// Generous deadlines: these tests are about Redis's answers, not about
/// falling back on a busy machine.
fn patient() -> RedisConfig {
    RedisConfig::default().with_deadline(Duration::from_secs(5))
}

async fn admitted(store: &RedisStore, key: &str, gcra: Gcra, attempts: usize) -> usize {
    let mut count = 0;
    for _ in 0..attempts {
        if store
            .acquire(key, &Acquire::check(gcra))
            .await
            .unwrap()
            .is_allowed()
        {
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_pauses_and_policies_are_shared_by_instances() {
    let server = RedisServer::start();
    let one = RedisStore::connect(&server.url(), patient()).await.unwrap();
    let two = RedisStore::connect(&server.url(), patient()).await.unwrap();
    let gcra = hourly(3);

    // One limit, two instances: three admissions between them.
    assert_eq!(admitted(&one, "api/items", gcra, 2).await, 2);
    assert_eq!(admitted(&two, "api/items", gcra, 3).await, 1);
    let denied = one
        .acquire("api/items", &Acquire::check(gcra))
        .await
        .unwrap()
        .denied()
        .unwrap();
    assert_eq!((denied.cause, denied.remaining), (DenialCause::Limit, 0));
    assert!(denied.retry_after > Nanos::ZERO && denied.retry_after <= gcra.emission_interval());

    // A reservation queues behind the spent burst instead of failing.
    let wait_long = Acquire::reserve(gcra, Nanos::from_secs(7200));
    let allowed = two
        .acquire("api/items", &wait_long)
        .await
        .unwrap()
        .allowed()
        .unwrap();
    assert!(allowed.wait > Nanos::ZERO && allowed.wait <= gcra.emission_interval());

    // More than the burst never passes, and costs no round trip.
    let too_big = Acquire::check(gcra).with_cost(4);
    assert_eq!(
        one.acquire("api/items", &too_big).await.unwrap(),
        Decision::Impossible { cost: 4, burst: 3 }
    );

    // A pause made by one instance holds for the other, and only grows.
    two.pause("api/orders", Nanos::from_secs(600)).await.unwrap();
    two.pause("api/orders", Nanos::from_secs(1)).await.unwrap();
    let paused = one
        .acquire("api/orders", &Acquire::check(gcra))
        .await
        .unwrap()
        .denied()
        .unwrap();
    assert_eq!(paused.cause, DenialCause::Paused);
    assert!(paused.retry_after > Nanos::from_secs(590), "{paused:?}");

    // A policy learned by one instance is known to the other.
    assert_eq!(two.policy("api/items").await.unwrap(), None);
    let policy = Policy::new(160, Nanos::from_secs(8), PolicySource::Header, Instant::ZERO).unwrap();
    one.set_policy("api/items", &policy).await.unwrap();
    let read = two.policy("api/items").await.unwrap().unwrap();
    assert_eq!(
        (read.limit(), read.window(), read.source),
        (160, Nanos::from_secs(8), PolicySource::Header)
    );

    for store in [&one, &two] {
        let status = store.status();
        assert!(status.on_redis && status.fallback_decisions == 0, "{status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_callers_never_exceed_the_limit() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), patient()).await.unwrap();
    let gcra = hourly(25);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move { admitted(&store, "api/busy", gcra, 10).await });
    }
    let mut total = 0;
    while let Some(count) = tasks.join_next().await {
        total += count.unwrap();
    }
    assert_eq!(total, 25, "exactly the burst across 160 attempts");
    assert_eq!(store.status().fallback_decisions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_and_policy_keys_expire() {
    let server = RedisServer::start();
    let config = patient()
        .with_key_prefix("app:")
        .with_policy_ttl(Duration::from_secs(3600));
    let store = RedisStore::connect(&server.url(), config).await.unwrap();
    let mut redis = server.connection();

    // A bucket lives until its TAT: 10 s for one request at one per 10 s.
    let slow = Gcra::new(Nanos::from_secs(10), 1).unwrap();
    assert!(
        store
            .acquire("a", &Acquire::check(slow))
            .await
            .unwrap()
            .is_allowed()
    );
    let ttl: i64 = redis::cmd("PTTL").arg("app:{a}:b").query(&mut redis).unwrap();
    assert!(ttl > 0 && ttl <= 10_001, "bucket PTTL {ttl}");

    // A pause keeps it longer.
    store.pause("a", Nanos::from_secs(100)).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("app:{a}:b").query(&mut redis).unwrap();
    assert!(ttl > 10_001 && ttl <= 100_001, "paused bucket PTTL {ttl}");

    // Policies live an hour from their last write.
    let policy = Policy::new(5, Nanos::from_secs(1), PolicySource::Observed, Instant::ZERO).unwrap();
    store.set_policy("a", &policy).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("app:{a}:p").query(&mut redis).unwrap();
    assert!(ttl > 0 && ttl <= 3_600_000, "policy PTTL {ttl}");

    // A fast bucket is gone soon after it is idle.
    let fast = Gcra::new(Nanos::from_millis(20), 1).unwrap();
    assert!(
        store
            .acquire("b", &Acquire::check(fast))
            .await
            .unwrap()
            .is_allowed()
    );
    let mut gone = false;
    for _ in 0..200 {
        let exists: i64 = redis::cmd("EXISTS").arg("app:{b}:b").query(&mut redis).unwrap();
        if exists == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "an idle bucket's key expires");
    // Forgotten equals full: the bucket admits again.
    assert!(
        store
            .acquire("b", &Acquire::check(fast))
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_is_loaded_again() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), patient()).await.unwrap();
    let gcra = hourly(2);
    assert!(
        store
            .acquire("k", &Acquire::check(gcra))
            .await
            .unwrap()
            .is_allowed()
    );
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.connection())
        .unwrap();
    assert!(
        store
            .acquire("k", &Acquire::check(gcra))
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        !store
            .acquire("k", &Acquire::check(gcra))
            .await
            .unwrap()
            .is_allowed()
    );
    let status = store.status();
    assert_eq!((status.redis_decisions, status.fallback_decisions), (3, 0));
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.connection())
        .unwrap();
    assert!(
        info.contains("cmdstat_eval:"),
        "the script was sent by source after NOSCRIPT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_moves_decisions_to_the_fallback_and_back() {
    let mut server = RedisServer::start();
    let config = RedisConfig::default()
        .with_deadline(Duration::from_secs(2))
        .with_probe_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .with_fleet_size(2);
    let store = RedisStore::connect(&server.url(), config).await.unwrap();
    let gcra = hourly(4);
    assert_eq!(admitted(&store, "k", gcra, 5).await, 4);
    assert!(store.status().on_redis);

    server.kill();
    // Every call is answered, within a bound, by the fallback's share: a
    // fleet of two halves the burst.
    let mut allowed = 0;
    for _ in 0..6 {
        let decision =
            tokio::time::timeout(Duration::from_secs(5), store.acquire("k", &Acquire::check(gcra)))
                .await
                .expect("no call hangs while Redis is away")
                .unwrap();
        allowed += usize::from(decision.is_allowed());
    }
    assert_eq!(allowed, 2);
    let status = store.status();
    assert!(!status.on_redis, "{status:?}");
    assert_eq!((status.fallbacks_entered, status.fallback_decisions), (1, 6));

    // A pause while Redis is away holds on the fallback.
    store.pause("p", Nanos::from_secs(600)).await.unwrap();
    let paused = store
        .acquire("p", &Acquire::check(gcra))
        .await
        .unwrap()
        .denied()
        .unwrap();
    assert_eq!(paused.cause, DenialCause::Paused);

    server.restart();
    let mut back = false;
    for _ in 0..400 {
        let _ = store
            .acquire("probe", &Acquire::check(hourly(1000)))
            .await
            .unwrap();
        if store.status().on_redis {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "decisions return to Redis once it answers");
    assert_eq!(store.status().recoveries, 1);
    // The new server started empty: the bucket is full again, on Redis.
    let before = store.status().redis_decisions;
    assert_eq!(admitted(&store, "k", gcra, 5).await, 4);
    assert_eq!(store.status().redis_decisions, before + 5);
}

/// The child side of `several_processes_share_one_limit`: does nothing
/// unless started by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_takes_what_it_can() {
    let (Ok(url), Ok(key)) = (
        std::env::var("RATEKEEPER_TEST_REDIS_URL"),
        std::env::var("RATEKEEPER_TEST_KEY"),
    ) else {
        return;
    };
    let store = RedisStore::connect(&url, patient()).await.unwrap();
    let count = admitted(&store, &key, hourly(10), 25).await;
    println!(
        "RESULT admitted={count} fallback={}",
        store.status().fallback_decisions
    );
}

#[test]
fn several_processes_share_one_limit() {
    let server = RedisServer::start();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_takes_what_it_can",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("RATEKEEPER_TEST_REDIS_URL", server.url())
                .env("RATEKEEPER_TEST_KEY", "api/shared")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut admitted, mut fallback) = (0, 0);
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8_lossy(&output.stdout);
        // The harness may print the test's name on the same line.
        let line = text
            .split("RESULT ")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .expect("the child's result");
        for field in line.split(' ') {
            match field.split_once('=') {
                Some(("admitted", n)) => admitted += n.parse::<u32>().unwrap(),
                Some(("fallback", n)) => fallback += n.parse::<u32>().unwrap(),
                _ => panic!("unexpected field {field:?}"),
            }
        }
    }
    assert_eq!(fallback, 0, "every decision was Redis's");
    assert_eq!(admitted, 10, "four processes, 100 attempts, one limit of 10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_shares_buckets() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
    let one = RedisStore::connect_cluster(&seeds, patient()).await.unwrap();
    let two = RedisStore::connect_cluster(&seeds[1..], patient()).await.unwrap();
    let gcra = hourly(3);

    // Buckets spread over the slots of all three nodes.
    let keys: Vec<String> = (0..12).map(|i| format!("tenant-{i}/api/items")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for key in &keys {
        for store in [&one, &two] {
            let (store, key) = (store.clone(), key.clone());
            tasks.spawn(async move { admitted(&store, &key, gcra, 3).await });
        }
    }
    let mut total = 0;
    while let Some(count) = tasks.join_next().await {
        total += count.unwrap();
    }
    assert_eq!(
        total,
        3 * keys.len(),
        "each bucket admits its burst once, across both instances"
    );

    let mut redis = cluster.nodes[0].connection();
    let mut slots = std::collections::HashSet::new();
    for key in &keys {
        let bucket: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(one.bucket_key(key))
            .query(&mut redis)
            .unwrap();
        let policy: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(one.policy_key(key))
            .query(&mut redis)
            .unwrap();
        assert_eq!(bucket, policy, "one bucket's keys share a slot");
        slots.insert(bucket / 5461);
    }
    assert_eq!(slots.len(), 3, "the buckets live on all three nodes");

    two.pause(&keys[0], Nanos::from_secs(600)).await.unwrap();
    let paused = one
        .acquire(&keys[0], &Acquire::check(hourly(1000)))
        .await
        .unwrap()
        .denied()
        .unwrap();
    assert_eq!(paused.cause, DenialCause::Paused);
    let policy = Policy::new(100, Nanos::from_secs(10), PolicySource::Configured, Instant::ZERO).unwrap();
    one.set_policy(&keys[1], &policy).await.unwrap();
    assert_eq!(two.policy(&keys[1]).await.unwrap().map(|p| p.limit()), Some(100));
    for store in [&one, &two] {
        assert_eq!(store.status().fallback_decisions, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_users_authenticate_through_the_url() {
    let server = RedisServer::start_with(
        support::free_port(false),
        &[
            "--user", "default", "off", "--user", "limiter", "on", ">s3cret", "~*", "&*", "+@all",
        ],
    );
    let url = format!("redis://limiter:s3cret@127.0.0.1:{}/", server.port());
    let store = RedisStore::connect(&url, patient()).await.unwrap();
    assert_eq!(admitted(&store, "k", hourly(2), 3).await, 2);
    assert_eq!(store.status().fallback_decisions, 0);

    // A wrong password is a Redis failure like any other: every call is
    // still answered, on the fallback.
    let url = format!("redis://limiter:wrong@127.0.0.1:{}/", server.port());
    let config = patient().with_deadline(Duration::from_secs(2)).with_fleet_size(1);
    let refused = RedisStore::connect(&url, config).await.unwrap();
    assert_eq!(admitted(&refused, "k", hourly(2), 3).await, 2);
    assert_eq!(refused.status().fallback_decisions, 3);
}
