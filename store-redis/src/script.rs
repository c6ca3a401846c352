//! The one Lua script behind every bucket operation, and how its arguments
//! and replies are laid out.
//!
//! # The script keeps state; the core decides
//!
//! Calling a script costs Redis about 1.6 µs and `TIME` about 1.1 µs before
//! any work is done, and every line of Lua costs more. So the script does
//! the least that must happen on the server, atomically: it reads `TIME`
//! and each bucket once, advances each bucket's TAT and pause through the
//! batch's operations in order (the admission test of GCRA is four lines),
//! writes each changed bucket once, and replies with every bucket's state
//! *before and after* the batch, as spans from the server's now.
//!
//! The client then replays the batch from the "before" state with the
//! core's own [`BucketState::decide`] — the very function every other store
//! uses — to produce each operation's full decision (wait, remaining,
//! reset, cause), and checks that its replay ends in the "after" state the
//! script stored. Decisions are therefore the core's by construction, and a
//! property test checks that the script's state follows the core's exactly
//! over random sequences.
//!
//! # Batches
//!
//! Every operation waiting at the moment goes in one call, decided in the
//! order sent, each seeing the state the previous one left: exactly what
//! separate calls at the same instant would do, so atomicity per key holds,
//! while the fixed cost of a call is shared by all the waiters.
//!
//! # Exact arithmetic in Lua
//!
//! Redis's Lua numbers are doubles, exact for integers up to 2⁵³. Instants
//! since the Unix epoch in nanoseconds are larger, so the script stores
//! each instant as whole microseconds since the epoch (below 2⁵³) plus a
//! remainder in nanoseconds, and computes with spans from now. Every
//! request is capped first ([`capped`]: intervals, tolerances, waits and
//! pauses at most [`MAX_SPAN`], 2⁵¹ ns, about 26 days), which keeps every
//! intermediate value at most 2⁵³.
//!
//! # Layout
//!
//! `KEYS` are the distinct bucket keys of the batch. `ARGV` holds five
//! values per *run* of identical operations on one key (the common case of
//! many waiters on one bucket): the key's index (1-based), then for an
//! acquire the tolerance, `cost × interval`, the max wait and how many, for
//! a pause `0`, `0`, the span and `1` (a tolerance is never zero). The reply holds four integers per
//! key: TAT and pause end before the batch, then after it, each as
//! nanoseconds from now (zero when past). A bucket's value is
//! `"<tat µs> <tat ns> <pause µs> <pause ns>"`, and its key expires (`PX`)
//! once both are past, so an idle bucket costs nothing and forgetting it
//! equals a full bucket.

use ratekeeper_core::{Acquire, BucketState, Decision, Gcra, Instant, Nanos};

/// The longest span the script computes with exactly: 2⁵¹ ns, about 26
/// days.
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
local argv, keys, tonumber, floor = ARGV, KEYS, tonumber, math.floor
local now_us = t[1] * 1000000 + t[2]
local nkeys = #keys
local values = redis.call('MGET', unpack(keys))
local tats, pauses, dirty, out = {}, {}, {}, {}
for k = 1, nkeys do
  local tat, p = 0, 0
  local v = values[k]
  if v then
    local a, b, c, d = string.match(v, '^(%d+) (%d+) (%d+) (%d+)$')
    if a then
      tat = (a - now_us) * 1000 + b
      p = (c - now_us) * 1000 + d
      if tat < 0 then tat = 0 end
      if p < 0 then p = 0 end
    end
  end
  tats[k], pauses[k] = tat, p
  out[4 * k - 3], out[4 * k - 2] = tat, p
end
for j = 1, floor(#argv / 5) * 5, 5 do
  local k = tonumber(argv[j])
  local tau, need, span = tonumber(argv[j + 1]), tonumber(argv[j + 2]), tonumber(argv[j + 3])
  local p = pauses[k]
  if tau == 0 then
    if span > p then
      pauses[k] = span
      dirty[k] = true
    end
  else
    local tat = tats[k]
    for _ = 1, tonumber(argv[j + 4]) do
      if p > tat then tat = p end
      tat = tat + need
      local wait = tat - tau - p
      if wait < 0 then wait = 0 end
      -- Once one of a run is refused, the rest are too: nothing changed.
      if wait + p > span then break end
      tats[k] = tat
      dirty[k] = true
    end
  end
end
for k = 1, nkeys do
  local tat, p = tats[k], pauses[k]
  out[4 * k - 1], out[4 * k] = tat, p
  if dirty[k] then
    local tq, pq = floor(tat / 1000), floor(p / 1000)
    local last = tat
    if p > last then last = p end
    redis.call('SET', keys[k], string.format('%d %d %d %d', now_us + tq, tat - tq * 1000, now_us + pq, p - pq * 1000),
      'PX', floor(last / 1000000) + px_pad)
  end
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

/// `request` within the script's exact range: an interval above
/// [`MAX_SPAN`] becomes [`MAX_SPAN`], a burst whose tolerance would exceed
/// it shrinks (the rate stays; bursts of more than 26 days are not a
/// practical limit), and the max wait is capped. Requests inside the range
/// are unchanged.
///
/// ```
/// use ratekeeper_core::{Acquire, Gcra, Nanos};
/// use ratekeeper_redis::script::capped;
///
/// let everyday = Acquire::reserve(Gcra::new(Nanos::from_millis(100), 10).unwrap(), Nanos::from_secs(60));
/// assert_eq!(capped(&everyday), everyday);
/// ```
pub fn capped(request: &Acquire) -> Acquire {
    let interval = request.gcra.emission_interval().min(MAX_SPAN);
    let most_burst = MAX_SPAN.as_nanos().checked_div(interval.as_nanos()).unwrap_or(1);
    let burst = u64::from(request.gcra.burst()).min(most_burst).max(1);
    let burst = u32::try_from(burst).unwrap_or(u32::MAX);
    let gcra = if interval == request.gcra.emission_interval() && burst == request.gcra.burst() {
        request.gcra
    } else {
        Gcra::new(interval, burst).unwrap_or(Gcra::SLOWEST)
    };
    Acquire {
        gcra,
        cost: request.cost,
        max_wait: request.max_wait.min(MAX_SPAN),
    }
}

/// One operation of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// Decide and record a request, already [`capped`], of a cost at most
    /// its burst.
    Acquire(Acquire),
    /// Pause the bucket for a span (capped when sent) from the server's now.
    Pause(Nanos),
}

impl Operation {
    /// The three arguments after the key index.
    fn arguments(&self) -> [u64; 3] {
        match self {
            Operation::Acquire(request) => {
                let gcra = request.gcra;
                let need = gcra.emission_interval().saturating_mul(u64::from(request.cost));
                [
                    gcra.tolerance().as_nanos(),
                    need.as_nanos(),
                    request.max_wait.as_nanos(),
                ]
            }
            Operation::Pause(span) => [0, 0, (*span).min(MAX_SPAN).as_nanos()],
        }
    }
}

/// The script's `ARGV` for `operations` (each with its 0-based key index):
/// consecutive identical operations on one key travel as one run.
pub(crate) fn encode(operations: &[(usize, Operation)]) -> Vec<u64> {
    let mut args: Vec<u64> = Vec::with_capacity(operations.len().saturating_mul(5));
    let mut rest = operations;
    while let Some((first, _)) = rest.split_first() {
        let run = match first.1 {
            Operation::Acquire(_) => rest.iter().take_while(|op| *op == first).count(),
            Operation::Pause(_) => 1,
        };
        let key = u64::try_from(first.0).unwrap_or(u64::MAX).saturating_add(1);
        let [tolerance, need, span] = first.1.arguments();
        args.extend([key, tolerance, need, span, u64::try_from(run).unwrap_or(u64::MAX)]);
        rest = rest.get(run.max(1)..).unwrap_or_default();
    }
    args
}

/// What the batch did for one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The decision of an acquire; an allowed TAT is relative to [`ORIGIN`].
    Decision(Decision),
    /// A pause was recorded.
    Paused,
}

/// Why a reply could not be used: the server ran something else, or the
/// script and the core disagree (which the property test rules out within
/// the exact range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MalformedReply;

/// The instant that stands for the server's now when a batch is replayed:
/// far from both ends of the time line, so no saturation differs from the
/// script's arithmetic on spans.
pub(crate) const ORIGIN: Instant = Instant::from_nanos(1 << 62);

/// One bucket's state as the script reports it: TAT and pause end, as
/// nanoseconds from now.
fn state_at_origin(tat: i64, pause: i64) -> Result<BucketState, MalformedReply> {
    let span = |value: i64| {
        u64::try_from(value)
            .map(Nanos::from_nanos)
            .map_err(|_| MalformedReply)
    };
    Ok(BucketState {
        tat: Some(ORIGIN.saturating_add(span(tat)?)),
        paused_until: Some(ORIGIN.saturating_add(span(pause)?)),
    })
}

/// Turns the script's reply into one [`Reply`] per operation by replaying
/// `operations` (each with its 0-based key index) with
/// [`BucketState::decide`] from the "before" states, and checks the replay
/// ends where the script did.
pub(crate) fn replay(
    values: &[i64],
    operations: &[(usize, Operation)],
    keys: usize,
) -> Result<Vec<Reply>, MalformedReply> {
    if values.len() != keys.saturating_mul(4) {
        return Err(MalformedReply);
    }
    let mut states = Vec::with_capacity(keys);
    let mut after = Vec::with_capacity(keys);
    for chunk in values.chunks_exact(4) {
        let [tat, pause, tat_after, pause_after] = chunk else {
            return Err(MalformedReply);
        };
        states.push(state_at_origin(*tat, *pause)?);
        after.push(state_at_origin(*tat_after, *pause_after)?);
    }
    let mut replies = Vec::with_capacity(operations.len());
    for (key, operation) in operations {
        let state = states.get_mut(*key).ok_or(MalformedReply)?;
        replies.push(match operation {
            Operation::Acquire(request) => {
                let (decision, next) = state.decide(request, ORIGIN);
                if let Some(next) = next {
                    *state = next;
                }
                Reply::Decision(decision)
            }
            Operation::Pause(span) => {
                *state = state.paused_for(ORIGIN, (*span).min(MAX_SPAN));
                Reply::Paused
            }
        });
    }
    if states != after {
        return Err(MalformedReply);
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    //! The script against [`BucketState::decide`] on a real Redis: random
    //! sequences of batches (acquires and pauses) on one bucket, each batch
    //! at a given server time. The state the script reports before each
    //! batch must equal the core's, and the decisions of the replay must
    //! equal the core's decisions made on its own absolute clock.

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

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
                6 => (0..=burst, span.clone(), 1usize..=4)
                    .prop_map(|(cost, max_wait, repeat)| vec![Op::Acquire { cost, max_wait }; repeat]),
                1 => span.prop_map(|span| vec![Op::Pause(span)]),
            ];
            let advance_us = prop_oneof![
                3 => Just(0u64),
                3 => 0..=(tolerance / 500).max(1),
                1 => 0..=(tolerance / 1_000).saturating_mul(60).max(1),
            ];
            let batch = prop::collection::vec(op, 1..4).prop_map(|runs| runs.concat());
            let steps = prop::collection::vec((advance_us, batch), 1..24);
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

    /// A state as spans from `now`, the way the script reports it.
    fn relative(state: &BucketState, now: Instant) -> (Nanos, Nanos) {
        let ahead = |at: Option<Instant>| at.map_or(Nanos::ZERO, |at| at.saturating_duration_since(now));
        (ahead(state.tat), ahead(state.paused_until))
    }

    /// A decision with its TAT as a span from `now`.
    fn normalized(decision: Decision, now: Instant) -> (Decision, Option<Nanos>) {
        match decision {
            Decision::Allowed(mut allowed) => {
                let tat = allowed.tat.saturating_duration_since(now);
                allowed.tat = Instant::ZERO;
                (Decision::Allowed(allowed), Some(tat))
            }
            other => (other, None),
        }
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
            let before = relative(&state, now);
            let mut operations = Vec::new();
            let mut expected = Vec::new();
            for op in ops {
                let operation = match op {
                    Op::Acquire { cost, max_wait } => {
                        let request = Acquire::reserve(gcra, Nanos::from_nanos(*max_wait)).with_cost(*cost);
                        prop_assert_eq!(capped(&request), request, "inside the exact range");
                        Operation::Acquire(request)
                    }
                    Op::Pause(span) => Operation::Pause(Nanos::from_nanos(*span)),
                };
                operations.push((0, operation));
                expected.push(match operation {
                    Operation::Acquire(request) => {
                        let (decision, next) = state.decide(&request, now);
                        if let Some(next) = next {
                            state = next;
                        }
                        normalized(decision, now)
                    }
                    Operation::Pause(span) => {
                        state = state.paused_for(now, span);
                        (Decision::Impossible { cost: 0, burst: 0 }, None)
                    }
                });
            }
            let values: Vec<i64> = script
                .key(key)
                .arg(encode(&operations))
                .arg(seconds)
                .arg(micros)
                .invoke(connection)
                .map_err(|e| TestCaseError::fail(format!("script failed: {e}")))?;
            let reported = state_at_origin(values[0], values[1]).unwrap();
            prop_assert_eq!(
                relative(&reported, ORIGIN),
                before,
                "state before the batch at {:?}",
                now
            );
            let replies = replay(&values, &operations, 1)
                .map_err(|_| TestCaseError::fail("the script's state after the batch is not the core's"))?;
            let replies: Vec<_> = replies
                .into_iter()
                .map(|reply| match reply {
                    Reply::Decision(decision) => normalized(decision, ORIGIN),
                    Reply::Paused => (Decision::Impossible { cost: 0, burst: 0 }, None),
                })
                .collect();
            prop_assert_eq!(replies, expected, "at {:?}", now);
        }
        Ok(())
    }

    #[test]
    fn the_script_keeps_state_exactly_as_the_core() {
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
    fn requests_beyond_the_exact_range_are_capped() {
        let huge = Acquire::reserve(Gcra::new(Nanos::from_nanos(u64::MAX / 2), 2).unwrap(), Nanos::MAX);
        let capped = capped(&huge);
        assert_eq!(capped.gcra.emission_interval(), MAX_SPAN);
        assert_eq!(capped.gcra.burst(), 1);
        assert_eq!(capped.max_wait, MAX_SPAN);
        let wide = Gcra::new(Nanos::from_secs(1), u32::MAX).unwrap();
        let capped = super::capped(&Acquire::check(wide));
        assert_eq!(
            capped.gcra.tolerance(),
            Nanos::from_secs(MAX_SPAN.as_nanos() / 1_000_000_000)
        );
        assert_eq!(
            encode(&[(0, Operation::Pause(Nanos::MAX))]),
            [1, 0, 0, MAX_SPAN.as_nanos(), 1]
        );
    }

    #[test]
    fn identical_operations_travel_as_runs() {
        let gcra = Gcra::new(Nanos::from_nanos(10), 3).unwrap();
        let check = Operation::Acquire(Acquire::check(gcra));
        let pause = Operation::Pause(Nanos::from_nanos(7));
        let args = encode(&[
            (0, check),
            (0, check),
            (1, check),
            (0, pause),
            (0, pause),
            (0, check),
        ]);
        assert_eq!(
            args,
            [
                1, 30, 10, 0, 2, 2, 30, 10, 0, 1, 1, 0, 0, 7, 1, 1, 0, 0, 7, 1, 1, 30, 10, 0, 1
            ]
        );
    }

    #[test]
    fn replies_that_disagree_with_the_core_are_refused() {
        let gcra = Gcra::new(Nanos::from_secs(1), 1).unwrap();
        let ops = [(0, Operation::Acquire(Acquire::check(gcra)))];
        // Admitted from a full bucket: the TAT moves one interval ahead.
        let good = replay(&[0, 0, 1_000_000_000, 0], &ops, 1).unwrap();
        assert!(matches!(good[0], Reply::Decision(Decision::Allowed(_))));
        assert_eq!(replay(&[0, 0, 0, 0], &ops, 1), Err(MalformedReply));
        assert_eq!(replay(&[0, 0, 1], &ops, 1), Err(MalformedReply));
        assert_eq!(replay(&[-1, 0, 0, 0], &ops, 1), Err(MalformedReply));
        assert_eq!(
            replay(&[0, 0, 0, 0], &[(1, Operation::Pause(Nanos::ZERO))], 1),
            Err(MalformedReply)
        );
    }
}
