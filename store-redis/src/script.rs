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
