//! What the Redis store reads back from Redis: stored policy values and the
//! batch script's replies, whatever the server (or whatever else wrote to
//! the keys) sends. Never a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ratekeeper_core::{Acquire, Gcra, Nanos};

#[derive(Debug, Arbitrary)]
struct Request {
    key: u8,
    interval: u64,
    burst: u32,
    cost: u32,
    max_wait: u64,
    pause: Option<u64>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    policy: String,
    server_seconds: u64,
    server_micros: u64,
    local_now: u64,
    values: Vec<i64>,
    keys: u8,
    requests: Vec<Request>,
}

fuzz_target!(|input: Input| {
    ratekeeper_redis::fuzzing::policy_value(
        &input.policy,
        (input.server_seconds, input.server_micros),
        input.local_now,
    );
    let operations: Vec<_> = input
        .requests
        .iter()
        .filter_map(|r| {
            let op = match r.pause {
                Some(span) => Err(Nanos::from_nanos(span)),
                Option::None => {
                    let gcra = Gcra::new(Nanos::from_nanos(r.interval), r.burst).ok()?;
                    Ok(Acquire::reserve(gcra, Nanos::from_nanos(r.max_wait)).with_cost(r.cost.min(r.burst)))
                }
            };
            Some((usize::from(r.key), op))
        })
        .collect();
    ratekeeper_redis::fuzzing::script_reply(&input.values, &operations, usize::from(input.keys));
});
