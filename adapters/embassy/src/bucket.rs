//! One bucket in 16 bytes: a 32-bit key hash, the TAT in nanoseconds, and
//! the end of the pause in 32 bits.
//!
//! # The encoding
//!
//! - `tat`: the TAT in nanoseconds on the store's clock, exact; `0` stands
//!   for "never set". That is no loss: a TAT at the clock's origin is in
//!   the past of every later instant, and a TAT in the past is a full
//!   bucket, exactly like no TAT at all.
//! - `pause`: the end of the pause in whole milliseconds since the clock's
//!   origin, rounded *up*, keeping only the low 32 bits; `0` stands for
//!   "not paused". The missing high bits are recovered from the TAT, which
//!   the encoding keeps at or after the pause's end: the pause ends at the
//!   latest millisecond at or before the TAT whose low 32 bits match.
//!
//! Raising a TAT that lies before the pause's end up to the pause's end
//! changes no decision (while the bucket is paused, GCRA starts from the
//! pause's end anyway, and afterwards both lie in the past), so the
//! encoding may do it. What the encoding does change, it changes in the
//! conservative direction only, admitting less and never more:
//!
//! - a pause ends on a whole millisecond, up to 1 ms later than asked;
//! - a pause whose end falls on a multiple of 2³² ms (about 49.7 days) is
//!   one millisecond longer, since that value means "not paused";
//! - a pause ending more than 49.7 days before the bucket's own TAT (only
//!   possible with a TAT weeks ahead, i.e. absurd reservations) is moved
//!   later, to within 49.7 days of the TAT;
//! - a pause ending past the last whole millisecond of the 584-year
//!   horizon ends on that millisecond.
//!
//! A pause already over when the bucket is written is dropped: a pause in
//! the past is the same as none.

#[cfg(test)]
use ratekeeper_core::{BucketState, Instant};

const NANOS_PER_MILLI: u64 = 1_000_000;
/// The last whole millisecond that fits the nanosecond range.
const LAST_MILLI: u64 = u64::MAX / NANOS_PER_MILLI;
/// The span of the 32 bits kept of a pause's end, in milliseconds.
const PAUSE_WRAP: u64 = 1 << 32;
const NOT_PAUSED: u32 = 0;

/// The 32-bit FNV-1a hash of `key`: how the store names a bucket.
///
/// Two keys with the same hash share one bucket and one policy. Sharing a
/// bucket paces both keys together (admitting less, never more), but a
/// shared policy could hand one endpoint the other's limit, so a firmware
/// should know its keys are distinct. With `n` keys in use the chance of
/// any collision is about `n² / 2³³` (one in two million for 64 keys), and
/// because the function is `const`, a firmware can prove at compile time
/// that its own keys never collide:
///
/// ```
/// use ratekeeper_embassy::key_hash;
///
/// const SEARCH: &str = "api.close.com/api/v1/data/search/";
/// const LEADS: &str = "api.close.com/api/v1/lead/{id}/";
/// const _: () = assert!(key_hash(SEARCH) != key_hash(LEADS));
/// assert_eq!(key_hash(""), 0x811c_9dc5);
/// ```
pub const fn key_hash(key: &str) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let bytes = key.as_bytes();
    let mut hash = OFFSET_BASIS;
    let mut i = 0;
    while i < bytes.len() {
        // `i < len` was just checked; `get` is not const-callable here.
        #[allow(clippy::indexing_slicing)]
        let byte = bytes[i];
        hash = (hash ^ byte as u32).wrapping_mul(PRIME);
        i += 1;
    }
    hash
}

/// One bucket's whole state in 16 bytes; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Bucket {
    tat: u64,
    key: u32,
    pause: u32,
}

impl Bucket {
    /// No bucket: no TAT, not paused (the state [`BucketState::EMPTY`]),
    /// held by no key.
    pub(crate) const VACANT: Bucket = Bucket {
        tat: 0,
        key: 0,
        pause: NOT_PAUSED,
    };

    /// The bucket of key hash `key` holding the TAT `tat` and a pause until
    /// `paused_until`, written at `now`: all in nanoseconds on the store's
    /// clock, `0` standing for "no TAT" and "not paused", as for
    /// [`Acquire::decide_nanos`](ratekeeper_core::Acquire::decide_nanos).
    pub(crate) fn new(key: u32, tat: u64, paused_until: u64, now: u64) -> Bucket {
        let mut tat = tat;
        let pause = if paused_until <= now {
            NOT_PAUSED
        } else {
            // `paused_until > now ≥ 0`, so `⌈until / 1 ms⌉ = (until − 1) /
            // 1 ms + 1`, exactly; capped at the last whole millisecond first.
            let last = paused_until.min(LAST_MILLI * NANOS_PER_MILLI);
            let end_ms = skip_not_paused(last.wrapping_sub(1) / NANOS_PER_MILLI + 1);
            // `end_ms ≤ LAST_MILLI`, so the product is exact.
            let end = end_ms.wrapping_mul(NANOS_PER_MILLI);
            tat = tat.max(end);
            // `⌊tat / 1 ms⌋ − end_ms ≥ 2³²` exactly when `tat − end ≥
            // 2³² ms` (`end` is a whole millisecond at or before `tat`):
            // only then is the TAT's millisecond worked out, and the pause
            // moved to end `2³² − 1` ms before it. Its low 32 bits are those
            // of the TAT's millisecond plus one, and when they read as "not
            // paused", one millisecond later: `1`.
            if tat.wrapping_sub(end) >= PAUSE_WRAP * NANOS_PER_MILLI {
                low_32(tat / NANOS_PER_MILLI).wrapping_add(1).max(1)
            } else {
                low_32(end_ms)
            }
        };
        Bucket { tat, key, pause }
    }

    /// Whether this bucket is the one of key hash `key`. A vacant bucket
    /// is no key's: every bucket written keeps a TAT above zero (see
    /// [`Bucket::is_stale`]), a vacant one has none.
    pub(crate) const fn holds(&self, key: u32) -> bool {
        self.key == key && self.tat != 0
    }

    /// The key hash this bucket belongs to.
    #[cfg(test)]
    pub(crate) const fn key(&self) -> u32 {
        self.key
    }

    /// Whether this slot holds no bucket.
    pub(crate) const fn is_vacant(&self) -> bool {
        self.tat == 0
    }

    /// The TAT in nanoseconds, `0` for none.
    pub(crate) const fn tat(&self) -> u64 {
        self.tat
    }

    /// The end of the pause in nanoseconds, `0` for none.
    pub(crate) fn paused_until(&self) -> u64 {
        if self.pause == NOT_PAUSED {
            return 0;
        }
        let tat_ms = self.tat / NANOS_PER_MILLI;
        // The encoding keeps `0 ≤ tat_ms − end_ms < 2³²`, so the
        // difference of the low 32 bits is the whole difference.
        // So `behind ≤ tat_ms`, and the end, at or before the TAT, is in
        // range: both steps are exact.
        let behind = u64::from(low_32(tat_ms).wrapping_sub(self.pause));
        tat_ms.wrapping_sub(behind).wrapping_mul(NANOS_PER_MILLI)
    }

    /// The state held, as the core's [`BucketState`].
    #[cfg(test)]
    pub(crate) fn state(&self) -> BucketState {
        let some = |nanos: u64| (nanos != 0).then_some(Instant::from_nanos(nanos));
        BucketState {
            tat: some(self.tat),
            paused_until: (self.pause != NOT_PAUSED).then_some(Instant::from_nanos(self.paused_until())),
        }
    }

    /// The bucket of key hash `key` holding `state`, written at `now`.
    #[cfg(test)]
    pub(crate) fn from_state(key: u32, state: &BucketState, now: Instant) -> Bucket {
        Bucket::new(
            key,
            state.tat.map_or(0, Instant::as_nanos),
            state.paused_until.map_or(0, Instant::as_nanos),
            now.as_nanos(),
        )
    }

    /// Whether forgetting this bucket at `now` changes nothing: its TAT and
    /// its pause are both in the past (a full, unpaused bucket).
    ///
    /// The encoding keeps a paused bucket's TAT at or after its pause's
    /// end (and above zero), so a TAT in the past means the pause is over
    /// too: one comparison, no decoding.
    pub(crate) const fn is_stale(&self, now: u64) -> bool {
        self.tat <= now
    }
}

/// The low 32 bits (the truncation is the point).
const fn low_32(value: u64) -> u32 {
    (value & 0xffff_ffff) as u32
}

/// `end_ms`, one later if its low 32 bits would read as "not paused".
/// `LAST_MILLI`'s low bits are not zero, so an `end_ms` at most
/// `LAST_MILLI` stays in range: the sum is exact.
const fn skip_not_paused(end_ms: u64) -> u64 {
    end_ms.wrapping_add((low_32(end_ms) == NOT_PAUSED) as u64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use ratekeeper_core::{Acquire, Gcra, Nanos};

    use super::*;

    const MS: u64 = NANOS_PER_MILLI;

    #[test]
    fn a_bucket_is_16_bytes() {
        assert_eq!(core::mem::size_of::<Bucket>(), 16);
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(key_hash("a"), 0xe40c_292c);
        assert_eq!(key_hash("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn a_vacant_bucket_is_empty() {
        assert_eq!(Bucket::VACANT.state(), BucketState::EMPTY);
    }

    #[test]
    fn an_empty_state_round_trips() {
        let bucket = Bucket::from_state(7, &BucketState::EMPTY, Instant::ZERO);
        assert_eq!(bucket.state(), BucketState::EMPTY);
        assert_eq!(bucket.key(), 7);
        assert!(bucket.is_stale(0));
    }

    #[test]
    fn a_pause_is_rounded_up_to_the_millisecond() {
        let now = Instant::from_nanos(5);
        let state = BucketState::EMPTY.paused_for(now, Nanos::from_nanos(2 * MS));
        let decoded = Bucket::from_state(0, &state, now).state();
        assert_eq!(decoded.paused_until, Some(Instant::from_nanos(3 * MS)));
        // The TAT is raised to the pause's end, which decides the same.
        assert_eq!(decoded.tat, Some(Instant::from_nanos(3 * MS)));
    }

    #[test]
    fn a_pause_over_is_dropped() {
        let state = BucketState::EMPTY.paused_for(Instant::ZERO, Nanos::from_millis(1));
        let bucket = Bucket::from_state(0, &state, Instant::from_nanos(MS));
        assert_eq!(bucket.state().paused_until, None);
    }

    #[test]
    fn the_not_paused_value_is_skipped() {
        // A pause ending exactly 2³² ms after the origin.
        let end = Instant::from_nanos(PAUSE_WRAP * MS);
        let state = BucketState {
            tat: None,
            paused_until: Some(end),
        };
        let decoded = Bucket::from_state(0, &state, Instant::ZERO).state();
        assert_eq!(decoded.paused_until, Some(end + Nanos::from_millis(1)));
    }

    #[test]
    fn a_pause_moved_up_to_the_tat_skips_the_not_paused_value() {
        // The TAT's millisecond ends in 32 one bits, and the pause lies more
        // than 2³² ms before it: moved to 2³² − 1 ms before the TAT, its low
        // bits would read 0.
        let state = BucketState {
            tat: Some(Instant::from_nanos(((5 << 32) - 1) * MS + 123)),
            paused_until: Some(Instant::from_nanos(10 * MS)),
        };
        let bucket = Bucket::from_state(0, &state, Instant::ZERO);
        assert_eq!(bucket, previous_new(0, &state, Instant::ZERO));
        assert_eq!(bucket.pause, 1);
    }

    #[test]
    fn pauses_at_the_horizon_stay_in_range() {
        let state = BucketState {
            tat: Some(Instant::MAX),
            paused_until: Some(Instant::MAX),
        };
        let decoded = Bucket::from_state(0, &state, Instant::ZERO).state();
        assert_eq!(decoded.tat, Some(Instant::MAX));
        assert_eq!(decoded.paused_until, Some(Instant::from_nanos(LAST_MILLI * MS)));
    }

    fn instant() -> impl Strategy<Value = Instant> {
        prop_oneof![
            (0..u64::MAX).prop_map(Instant::from_nanos),
            (0..1u64 << 45).prop_map(Instant::from_nanos),
            Just(Instant::ZERO),
            Just(Instant::MAX),
        ]
    }

    fn state() -> impl Strategy<Value = BucketState> {
        (proptest::option::of(instant()), proptest::option::of(instant()))
            .prop_map(|(tat, paused_until)| BucketState { tat, paused_until })
    }

    /// A TAT and a pause within hours of each other (and of the instant
    /// the test writes them), anywhere on the time line.
    fn near_state() -> impl Strategy<Value = (BucketState, Instant)> {
        let offset = || proptest::option::of(0..1u64 << 45);
        (instant(), offset(), offset(), 0..1u64 << 45).prop_map(|(base, tat, until, written)| {
            let at = |offset: u64| base.saturating_add(Nanos::from_nanos(offset));
            let state = BucketState {
                tat: tat.map(at),
                paused_until: until.map(at),
            };
            (state, at(written))
        })
    }

    fn request() -> impl Strategy<Value = Acquire> {
        (1..u64::MAX / 8, 1..8u32, 0..4u32, 0..u64::MAX).prop_map(|(interval, burst, cost, max_wait)| {
            let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap_or(Gcra::SLOWEST);
            Acquire::reserve(gcra, Nanos::from_nanos(max_wait)).with_cost(cost)
        })
    }

    /// `state` with its pause's end rounded up to the millisecond, as the
    /// encoding keeps it.
    fn on_the_millisecond(state: BucketState) -> BucketState {
        BucketState {
            tat: state.tat,
            paused_until: state.paused_until.map(|until| {
                let ms = until.as_nanos().div_ceil(MS).min(LAST_MILLI);
                Instant::from_nanos(ms * MS)
            }),
        }
    }

    /// `Bucket::new` as it was before its arithmetic was shortened: the
    /// model the encoding must match bit for bit.
    fn previous_new(key: u32, state: &BucketState, now: Instant) -> Bucket {
        let mut tat = state.tat.map_or(0, Instant::as_nanos);
        let pause_end_ms = state
            .paused_until
            .filter(|until| *until > now)
            .map(|until| until.as_nanos().div_ceil(NANOS_PER_MILLI).min(LAST_MILLI));
        let pause = match pause_end_ms {
            None => NOT_PAUSED,
            Some(mut end_ms) => {
                end_ms = skip_not_paused(end_ms);
                tat = tat.max(end_ms.saturating_mul(NANOS_PER_MILLI));
                let tat_ms = tat / NANOS_PER_MILLI;
                if tat_ms.saturating_sub(end_ms) >= PAUSE_WRAP {
                    end_ms = skip_not_paused(tat_ms.saturating_sub(PAUSE_WRAP - 1));
                }
                low_32(end_ms)
            }
        };
        Bucket { tat, key, pause }
    }

    /// An instant often on, just off, or far from a millisecond, or at a
    /// pause's wrap from another.
    fn edgy_instant() -> impl Strategy<Value = Instant> {
        prop_oneof![
            instant(),
            (0..u64::MAX / MS, 0..3u64)
                .prop_map(|(ms, ns)| Instant::from_nanos((ms * MS).saturating_add(ns).saturating_sub(1))),
            Just(Instant::from_nanos(LAST_MILLI * MS)),
            Just(Instant::from_nanos(LAST_MILLI * MS + 1)),
            Just(Instant::from_nanos(1)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// The encoding is the one it was, bit for bit: TATs and pauses
        /// anywhere, near each other, or a wrap of 2³² ms apart.
        #[test]
        fn encodes_as_before(
            tat in proptest::option::of(edgy_instant()),
            until in proptest::option::of(edgy_instant()),
            near in proptest::option::of((0..3u64, prop_oneof![Just(0u64), 0..1u64 << 34], 0..3u64)),
            written in edgy_instant(),
        ) {
            let state = match (near, until) {
                (Some((wraps, offset, ns)), Some(until)) => BucketState {
                    tat: Some(until.saturating_add(Nanos::from_nanos((wraps * PAUSE_WRAP * MS).saturating_add(offset).saturating_add(ns)))),
                    paused_until: Some(until),
                },
                _ => BucketState { tat, paused_until: until },
            };
            let now = if near.is_some() { state.paused_until.unwrap_or(written).saturating_sub(Nanos::from_nanos(1)) } else { written };
            prop_assert_eq!(Bucket::from_state(3, &state, now), previous_new(3, &state, now));
            prop_assert_eq!(Bucket::from_state(3, &state, written), previous_new(3, &state, written));
        }

        /// The decisive property: a stored bucket decides exactly as its
        /// state does (pauses taken on the millisecond), at the instant it
        /// was written and at any later one.
        #[test]
        fn a_stored_bucket_decides_as_its_state(
            (state, written) in near_state(),
            later in prop_oneof![0..1u64 << 46, 0..u64::MAX],
            request in request(),
        ) {
            let original = on_the_millisecond(state);
            let stored = Bucket::from_state(1, &original, written).state();
            let far_from_tat = match (original.tat, original.paused_until) {
                (Some(tat), Some(until)) => tat.saturating_duration_since(until).as_millis_floor() >= PAUSE_WRAP - 2,
                _ => false,
            };
            let wraps = original.paused_until.is_some_and(|until| (until.as_nanos() / MS).is_multiple_of(PAUSE_WRAP));
            prop_assume!(!far_from_tat && !wraps);
            for now in [written, written.saturating_add(Nanos::from_nanos(later))] {
                let (decision, next) = stored.decide(&request, now);
                let (expected, expected_next) = original.decide(&request, now);
                prop_assert_eq!(decision, expected);
                // The next states may differ in form (an expired pause, a
                // raised TAT) but must be stored alike.
                let store = |state: Option<BucketState>| state.map(|s| Bucket::from_state(1, &s, now));
                prop_assert_eq!(store(next), store(expected_next));
            }
        }

        /// Staleness read off the TAT alone is staleness of the decoded
        /// state: no TAT or pause still to come.
        #[test]
        fn staleness_is_the_decoded_states(state in state(), written in instant(), later in instant()) {
            let bucket = Bucket::from_state(1, &state, written);
            for now in [written, later] {
                let decoded = bucket.state();
                let stale = !decoded.is_paused(now) && decoded.tat.is_none_or(|tat| tat <= now);
                prop_assert_eq!(bucket.is_stale(now.as_nanos()), stale);
            }
        }

        /// In every case, a pause never ends earlier than asked, and the
        /// TAT only ever moves up to the pause's end.
        #[test]
        fn the_encoding_only_ever_admits_less(state in state(), written in instant()) {
            let stored = Bucket::from_state(1, &state, written).state();
            if let Some(until) = state.paused_until.filter(|until| *until > written) {
                let stored_until = stored.paused_until.unwrap_or(Instant::ZERO);
                let horizon = Instant::from_nanos(LAST_MILLI * MS);
                prop_assert!(stored_until >= until.min(horizon));
                let tat = stored.tat.unwrap_or(Instant::ZERO);
                prop_assert!(tat >= stored_until);
            } else {
                prop_assert_eq!(stored.paused_until, None);
            }
            prop_assert_eq!(
                stored.tat.unwrap_or(Instant::ZERO) >= state.tat.unwrap_or(Instant::ZERO),
                true
            );
        }
    }
}
