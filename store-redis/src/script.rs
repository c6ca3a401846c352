//! The one Lua script behind every bucket operation, and how its arguments
//! and replies are laid out.
//!
//! # Why one script for a whole batch
//!
//! Calling a script costs Redis about 1.6 µs and `TIME` about 1.1 µs before
//! any work is done, so a script per decision cannot go much below 3 µs of
//! server time. The store therefore sends every operation waiting at the
//! moment as *one* call: the script reads `TIME` once, reads each bucket
//! once, decides the operations one after the other in the order they were
//! sent (each seeing the state the previous one left), and writes each
//! touched bucket once. That is exactly what the same operations would do
//! as separate calls at the same instant, so atomicity per key holds.
//!
//! # Exact arithmetic in Lua
//!
//! Redis's Lua numbers are doubles, exact for integers up to 2⁵³. Instants
//! since the Unix epoch in nanoseconds are larger than that, so the script
//! works relative to the server's now: it stores each instant as whole
//! microseconds since the epoch (below 2⁵³) plus a remainder in
//! nanoseconds, and does the GCRA on spans from now. Every span the client
//! sends is capped at [`MAX_SPAN`] (2⁵¹ ns, about 26 days), which keeps every
//! intermediate value below 2⁵³: within that range the script's decisions
//! equal [`BucketState::decide`]'s exactly (a property test compares them).
//!
//! # Layout
//!
//! `KEYS` are the distinct bucket keys of the batch. `ARGV` holds five
//! values per operation:
//!
//! - acquire: key index (1-based), emission interval, tolerance, `cost ×
//!   interval`, max wait (all nanoseconds);
//! - pause: key index, `0` (no interval is ever zero, so it marks a pause),
//!   `0`, `0`, span.
//!
//! The reply holds four integers per operation: a kind (see [`Reply`]) and
//! three spans or counts. The bucket's value is
//! `"<tat µs> <tat ns rem> <pause µs> <pause ns rem>"`, and the key expires
//! (`PX`) when both the TAT and the pause are in the past, so an idle
//! bucket costs nothing and forgetting it equals a full bucket.
//!
//! [`BucketState::decide`]: ratekeeper_core::BucketState::decide

use ratekeeper_core::{Acquire, Allowed, Decision, DenialCause, Denied, Instant, Nanos};

/// The longest span the script computes with exactly: 2⁵¹ ns, about 26
/// days. Longer intervals, tolerances, waits and pauses are capped to it
/// before they are sent.
pub const MAX_SPAN: Nanos = Nanos::from_nanos(1 << 51);

/// Reads the server's clock; keys live 1 ms past the later of TAT and pause.
const PRELUDE_SERVER_TIME: &str = "local t = redis.call('TIME')\nlocal px_pad = 1\n";

/// The same script on a clock given as the last two arguments (seconds,
/// microseconds), and keys that outlive the test: only the differential
/// test uses it, so it checks the very body the store runs.
#[cfg(test)]
const PRELUDE_GIVEN_TIME: &str = "local t = {ARGV[#ARGV - 1], ARGV[#ARGV]}\nlocal px_pad = 3600000\n";

/// The batch body. `t` and `px_pad` come from the prelude.
const BODY: &str = r#"
local now_us = t[1] * 1000000 + t[2]
local tats, pauses, dirty, out = {}, {}, {}, {}
local function floordiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
for i = 0, math.floor(#ARGV / 5) - 1 do
  local j = i * 5
  local k = tonumber(ARGV[j + 1])
  local tat, p = tats[k], pauses[k]
  if tat == nil then
    tat, p = 0, 0
    local v = redis.call('GET', KEYS[k])
    if v then
      local a, b, c, d = string.match(v, '^(%d+) (%d+) (%d+) (%d+)$')
      if a then
        tat = (a - now_us) * 1000 + b
        p = (c - now_us) * 1000 + d
        if tat < 0 then tat = 0 end
        if p < 0 then p = 0 end
      end
    end
  end
  local interval = tonumber(ARGV[j + 2])
  local o = i * 4
  if interval == 0 then
    local span = tonumber(ARGV[j + 5])
    if span > p then p = span end
    dirty[k] = true
    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 3, 0, 0, 0
  else
    local tau, need, max_wait = tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4]), tonumber(ARGV[j + 5])
    local base = tat
    if p > base then base = p end
    local new = base + need
    local wait = new - tau - p
    if wait < 0 then wait = 0 end
    local budget = max_wait - p
    local limit = budget
    if limit < 0 then limit = 0 end
    if wait > limit then
      local credit = p + tau - base
      if credit < 0 then credit = 0 end
      if p > 0 then
        out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 2, wait + p, 0, base
      else
        out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 1, wait, floordiv(credit, interval), base
      end
    elseif budget >= 0 then
      tat = new
      dirty[k] = true
      out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 0, wait + p, floordiv(p + wait + tau - new, interval), new
    else
      local ahead = tat - p
      if ahead < 0 then ahead = 0 end
      out[o + 1], out[o + 2], out[o + 3], out[o + 4] = 2, p, 0, p + ahead
    end
  end
  tats[k], pauses[k] = tat, p
end
for k in pairs(dirty) do
  local tat, p = tats[k], pauses[k]
  local tq, pq = floordiv(tat, 1000), floordiv(p, 1000)
  local last = tat
  if p > last then last = p end
  redis.call('SET', KEYS[k], string.format('%d %d %d %d', now_us + tq, tat - tq * 1000, now_us + pq, p - pq * 1000),
    'PX', floordiv(last, 1000000) + px_pad)
end
return out
"#;

/// The script the store runs.
pub(crate) fn source() -> String {
    let mut text = String::with_capacity(PRELUDE_SERVER_TIME.len() + BODY.len());
    text.push_str(PRELUDE_SERVER_TIME);
    text.push_str(BODY);
    text
}

/// The script on a given clock, for the differential test.
#[cfg(test)]
pub(crate) fn source_on_given_time() -> String {
    let mut text = String::from(PRELUDE_GIVEN_TIME);
    text.push_str(BODY);
    text
}

/// One operation of a batch, before its key index is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Decide and record a request.
    Acquire(Acquire),
    /// Pause the bucket for a span from the server's now.
    Pause(Nanos),
}

/// A span as the script's argument, capped at [`MAX_SPAN`].
fn capped(span: Nanos) -> u64 {
    span.min(MAX_SPAN).as_nanos()
}

impl Operation {
    /// The four arguments after the key index.
    pub(crate) fn arguments(&self) -> [u64; 4] {
        match self {
            Operation::Acquire(request) => {
                let interval = request.gcra.emission_interval().min(MAX_SPAN);
                let tolerance = request.gcra.tolerance().min(MAX_SPAN);
                // The cost is at most the burst (larger costs never reach
                // the script), so `cost × interval ≤ tolerance`.
                let need = interval.saturating_mul(u64::from(request.cost)).min(tolerance);
                [
                    interval.as_nanos(),
                    tolerance.as_nanos(),
                    need.as_nanos(),
                    capped(request.max_wait),
                ]
            }
            Operation::Pause(span) => [0, 0, 0, capped(*span)],
        }
    }
}

/// Reply kinds, the first of each operation's four integers.
const ALLOWED: i64 = 0;
const DENIED_LIMIT: i64 = 1;
const DENIED_PAUSED: i64 = 2;
const PAUSED: i64 = 3;

/// What the script said about one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The decision of an acquire.
    Decision(Decision),
    /// A pause was recorded.
    Paused,
}

/// Why a reply could not be read: the server ran something else, or a
/// foreign value sits under the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedReply;

fn span(value: i64) -> Result<Nanos, MalformedReply> {
    u64::try_from(value)
        .map(Nanos::from_nanos)
        .map_err(|_| MalformedReply)
}

fn count(value: i64) -> Result<u32, MalformedReply> {
    // Counts above u32::MAX saturate, as the core's do.
    u64::try_from(value)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .map_err(|_| MalformedReply)
}

/// Reads one operation's four integers.
pub(crate) fn decode(kind: i64, a: i64, b: i64, c: i64) -> Result<Reply, MalformedReply> {
    Ok(match kind {
        ALLOWED => Reply::Decision(Decision::Allowed(Allowed {
            // The TAT is an instant on the server's clock; it never leaves
            // the store, which answers with spans only.
            tat: Instant::ZERO,
            wait: span(a)?,
            remaining: count(b)?,
            reset_after: span(c)?,
        })),
        DENIED_LIMIT | DENIED_PAUSED => Reply::Decision(Decision::Denied(Denied {
            retry_after: span(a)?,
            remaining: count(b)?,
            reset_after: span(c)?,
            cause: if kind == DENIED_LIMIT {
                DenialCause::Limit
            } else {
                DenialCause::Paused
            },
        })),
        PAUSED => Reply::Paused,
        _ => return Err(MalformedReply),
    })
}

/// Reads a whole batch reply of `expected` operations.
pub(crate) fn decode_all(values: &[i64], expected: usize) -> Result<Vec<Reply>, MalformedReply> {
    if values.len() != expected.saturating_mul(4) {
        return Err(MalformedReply);
    }
    values
        .chunks_exact(4)
        .map(|chunk| match chunk {
            [kind, a, b, c] => decode(*kind, *a, *b, *c),
            _ => Err(MalformedReply),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The script against [`BucketState::decide`] on a real Redis: random
    //! sequences of batches (acquires and pauses) on one bucket, each batch
    //! at a given server time, and every decision compared.
    //!
    //! [`BucketState::decide`]: ratekeeper_core::BucketState::decide

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use ratekeeper_core::{BucketState, Gcra};

    #[derive(Clone, Debug)]
    enum Op {
        Acquire { cost: u32, max_wait: u64 },
        Pause(u64),
    }

    #[derive(Clone, Debug)]
    struct Case {
        interval: u64,
        burst: u32,
        start: (u64, u64),
        /// Microseconds to advance, then the batch sent at that time.
        steps: Vec<(u64, Vec<Op>)>,
    }

    fn case() -> impl Strategy<Value = Case> {
        let params = prop_oneof![
            4 => (1u64..=10_000_000_000, 1u32..=50),
            1 => (1u64..=1 << 45, 1u32..=50),
            1 => (1u64..=1_000, 1u32..=1_000_000),
        ];
        params.prop_flat_map(|(interval, burst)| {
            let tolerance = interval * u64::from(burst);
            let span = prop_oneof![
                2 => Just(0u64),
                4 => 0..=tolerance.saturating_mul(2).min(1 << 51),
                1 => 0u64..=1 << 51,
            ];
            let op = prop_oneof![
                6 => (0..=burst, span.clone()).prop_map(|(cost, max_wait)| Op::Acquire { cost, max_wait }),
                1 => span.prop_map(Op::Pause),
            ];
            let advance_us = prop_oneof![
                3 => Just(0u64),
                3 => 0..=(tolerance / 500).max(1),
                1 => 0..=(tolerance / 1_000).saturating_mul(60).max(1),
            ];
            let steps = prop::collection::vec((advance_us, prop::collection::vec(op, 1..4)), 1..24);
            (
                Just(interval),
                Just(burst),
                1_600_000_000u64..2_000_000_000,
                0u64..1_000_000,
                steps,
            )
                .prop_map(|(interval, burst, seconds, micros, steps)| Case {
                    interval,
                    burst,
                    start: (seconds, micros),
                    steps,
                })
        })
    }

    fn run_case(
        connection: &mut redis::Connection,
        script: &redis::Script,
        key: &str,
        case: &Case,
    ) -> Result<(), TestCaseError> {
        let gcra = Gcra::new(Nanos::from_nanos(case.interval), case.burst).unwrap();
        let (mut seconds, mut micros) = case.start;
        let mut state = BucketState::EMPTY;
        for (advance, ops) in &case.steps {
            let total = micros + advance;
            seconds += total / 1_000_000;
            micros = total % 1_000_000;
            let now = Instant::from_nanos(seconds * 1_000_000_000 + micros * 1_000);
            let mut invocation = script.key(key);
            let mut expected = Vec::new();
            for op in ops {
                let operation = match op {
                    Op::Acquire { cost, max_wait } => Operation::Acquire(
                        Acquire::reserve(gcra, Nanos::from_nanos(*max_wait)).with_cost(*cost),
                    ),
                    Op::Pause(span) => Operation::Pause(Nanos::from_nanos(*span)),
                };
                invocation.arg(1).arg(&operation.arguments()[..]);
                expected.push(match operation {
                    Operation::Acquire(request) => {
                        let (mut decision, next) = state.decide(&request, now);
                        if let Some(next) = next {
                            state = next;
                        }
                        if let Decision::Allowed(allowed) = &mut decision {
                            allowed.tat = Instant::ZERO;
                        }
                        Reply::Decision(decision)
                    }
                    Operation::Pause(span) => {
                        state = state.paused_for(now, span);
                        Reply::Paused
                    }
                });
            }
            let values: Vec<i64> = invocation
                .arg(seconds)
                .arg(micros)
                .invoke(connection)
                .map_err(|e| TestCaseError::fail(format!("script failed: {e}")))?;
            let replies =
                decode_all(&values, ops.len()).map_err(|_| TestCaseError::fail("malformed reply"))?;
            prop_assert_eq!(replies, expected, "at {:?} after {:?}", now, state);
        }
        Ok(())
    }

    #[test]
    fn the_script_decides_exactly_as_the_core() {
        let server = crate::test_support::RedisServer::start();
        let connection = std::cell::RefCell::new(server.connection());
        let script = redis::Script::new(&source_on_given_time());
        let mut runner = TestRunner::new(Config::with_cases(10_000));
        let bucket = std::cell::Cell::new(0u64);
        let result = runner.run(&case(), |case| {
            // A fresh bucket per case (shrinking reruns included).
            bucket.set(bucket.get() + 1);
            let key = format!("differential:{}", bucket.get());
            run_case(&mut connection.borrow_mut(), &script, &key, &case)
        });
        if let Err(failure) = result {
            panic!("{failure}");
        }
    }

    #[test]
    fn spans_beyond_the_exact_range_are_capped() {
        let gcra = Gcra::new(Nanos::from_nanos(u64::MAX / 2), 2).unwrap();
        let args = Operation::Acquire(Acquire::reserve(gcra, Nanos::MAX)).arguments();
        assert_eq!(args, [MAX_SPAN.as_nanos(); 4]);
        assert_eq!(
            Operation::Pause(Nanos::MAX).arguments(),
            [0, 0, 0, MAX_SPAN.as_nanos()]
        );
    }

    #[test]
    fn replies_of_the_wrong_shape_are_refused() {
        assert_eq!(decode_all(&[0, 1, 2], 1), Err(MalformedReply));
        assert_eq!(decode_all(&[9, 0, 0, 0], 1), Err(MalformedReply));
        assert_eq!(decode_all(&[0, -1, 0, 0], 1), Err(MalformedReply));
        assert_eq!(decode_all(&[3, 0, 0, 0], 1), Ok(vec![Reply::Paused]));
    }
}
