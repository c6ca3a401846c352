//! How a [`Policy`] is written to Redis and read back.
//!
//! A policy's instants (`learned_at`, `observed_at`) are on the caller's
//! clock, which means nothing to another instance. So the store writes
//! *ages*: how long before the write each happened, next to the server's
//! `TIME` at the write. A reader adds the time elapsed on the server since
//! the write and subtracts the total from its own now. Instance clocks
//! never meet; only spans cross the network.
//!
//! The value is one line of space-separated integers and words:
//! `"<server s> <server µs> <limit> <window ns> <source> <learned age ns>"`,
//! followed by `" <remaining> <reset ns> <observed age ns>"` when the server's
//! view is known. The first two fields are written by the script itself.

use ratekeeper_core::{Instant, Nanos, Policy, PolicySource, ServerView};

/// The script that stores a policy: `KEYS[1]`, `ARGV[1]` the encoded
/// policy without the server's time, `ARGV[2]` the time to live in ms.
pub(crate) const SET_SOURCE: &str = "local t = redis.call('TIME')\nredis.call('SET', KEYS[1], t[1] .. ' ' .. t[2] .. ' ' .. ARGV[1], 'PX', ARGV[2])\nreturn 1\n";

/// The script that reads a policy with the server's now:
/// `{value, seconds, microseconds}`, or nil.
pub(crate) const GET_SOURCE: &str = "local v = redis.call('GET', KEYS[1])\nif not v then return false end\nlocal t = redis.call('TIME')\nreturn {v, t[1], t[2]}\n";

/// The policy as written (the script prepends the server's time).
pub(crate) fn encode(policy: &Policy, local_now: Instant) -> String {
    let age = |at: Instant| local_now.saturating_duration_since(at).as_nanos();
    let mut text = format!(
        "{} {} {} {}",
        policy.limit(),
        policy.window().as_nanos(),
        policy.source.as_str(),
        age(policy.learned_at)
    );
    if let Some(server) = policy.server {
        text.push_str(&format!(
            " {} {} {}",
            server.remaining,
            server.reset_after.as_nanos(),
            age(server.observed_at)
        ));
    }
    text
}

/// Microseconds since the epoch from `TIME`'s two fields.
fn server_micros(seconds: u64, micros: u64) -> u64 {
    seconds.saturating_mul(1_000_000).saturating_add(micros)
}

/// Reads a stored policy; `server_now` is `TIME` at the read (seconds,
/// microseconds). `None` for a value this version does not understand,
/// which the store treats as no policy at all.
pub(crate) fn decode(value: &str, server_now: (u64, u64), local_now: Instant) -> Option<Policy> {
    let fields: Vec<&str> = value.split(' ').collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let written = server_micros(number(0)?, number(1)?);
    let limit = u32::try_from(number(2)?).ok()?;
    let window = Nanos::from_nanos(number(3)?);
    let source = PolicySource::parse(fields.get(4)?)?;
    let learned_age = Nanos::from_nanos(number(5)?);
    let server_view = match fields.len() {
        6 => None,
        9 => Some((u32::try_from(number(6)?).ok()?, number(7)?, number(8)?)),
        _ => return None,
    };
    let elapsed = Nanos::from_micros(server_micros(server_now.0, server_now.1).saturating_sub(written));
    let at = |age: Nanos| local_now.saturating_sub(elapsed.saturating_add(age));
    let policy = Policy::new(limit, window, source, at(learned_age)).ok()?;
    Some(match server_view {
        Some((remaining, reset_after, observed_age)) => policy.with_server(ServerView {
            remaining,
            reset_after: Nanos::from_nanos(reset_after),
            observed_at: at(Nanos::from_nanos(observed_age)),
        }),
        None => policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_time(seconds: u64, micros: u64, body: &str) -> String {
        format!("{seconds} {micros} {body}")
    }

    #[test]
    fn ages_travel_instead_of_instants() {
        let policy = Policy::new(
            16,
            Nanos::from_secs(1),
            PolicySource::Header,
            Instant::from_nanos(7_000_000_000),
        )
        .unwrap();
        // Written at local 10 s (age 3 s) when the server said 100 s.
        let value = with_time(100, 0, &encode(&policy, Instant::from_nanos(10_000_000_000)));
        // Read 2 s later on the server, by an instance whose clock reads 50 s.
        let read = decode(&value, (102, 0), Instant::from_nanos(50_000_000_000)).unwrap();
        assert_eq!(read.learned_at, Instant::from_nanos(45_000_000_000));
        assert_eq!(
            (read.limit(), read.window(), read.source),
            (16, Nanos::from_secs(1), PolicySource::Header)
        );
    }

    #[test]
    fn foreign_values_are_no_policy() {
        for value in [
            "",
            "1 2",
            "1 2 3 4 nonsense 5",
            "1 2 0 1000 header 5",
            "1 2 3 4 header 5 6",
            "x y z",
        ] {
            assert_eq!(decode(value, (1, 0), Instant::ZERO), None, "{value:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn round_trip_on_one_clock(
            limit in 1u32..,
            window in 1u64..,
            source in 0usize..4,
            learned_age in 0u64..1 << 50,
            server in proptest::option::of((any::<u32>(), any::<u64>(), 0u64..1 << 50)),
            now in 1u64 << 52..1 << 62,
            server_seconds in 0u64..1 << 33,
            server_micros in 0u64..1_000_000,
        ) {
            let sources = [PolicySource::Default, PolicySource::Observed, PolicySource::Configured, PolicySource::Header];
            let local_now = Instant::from_nanos(now);
            let mut policy = Policy::new(limit, Nanos::from_nanos(window), sources[source], local_now - Nanos::from_nanos(learned_age)).unwrap();
            if let Some((remaining, reset, observed_age)) = server {
                policy = policy.with_server(ServerView {
                    remaining,
                    reset_after: Nanos::from_nanos(reset),
                    observed_at: local_now - Nanos::from_nanos(observed_age),
                });
            }
            let value = with_time(server_seconds, server_micros, &encode(&policy, local_now));
            // Read at the same instant on both clocks: nothing moved.
            prop_assert_eq!(decode(&value, (server_seconds, server_micros), local_now), Some(policy));
        }
    }
}
