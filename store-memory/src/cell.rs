//! One bucket's state in two atomic words, and the lock-free decision on it.

use std::sync::atomic::{AtomicU64, Ordering};

use ratekeeper_core::{
    Acquire, Allowed, BucketState, Clock, Decision, DenialCause, Denied, Gcra, Instant, Nanos,
};

/// A bucket's TAT and the end of its pause, each one atomic `u64` of
/// nanoseconds on the store's clock.
///
/// Zero stands for "never set". That is exact, not an approximation: for
/// [`BucketState::decide`] a TAT or a pause end at the clock's origin is
/// indistinguishable from none at all (both are at or before any `now`).
///
/// The TAT only ever grows (an admitted request stores
/// `max(TAT, now) + cost·T`), and so does the pause (`fetch_max`). Because
/// neither word ever returns to an earlier value, a successful
/// compare-and-swap proves the TAT did not change between its load and the
/// swap (no ABA), which is what makes the linearization argument in
/// [`Cell::acquire`] hold.
#[derive(Debug, Default)]
pub(crate) struct Cell {
    tat: AtomicU64,
    paused_until: AtomicU64,
}

impl Cell {
    /// Decides `request` at `now` and stores the result, atomically.
    ///
    /// Loads the TAT, then the pause, decides with
    /// [`BucketState::decide`], then either swaps the TAT (admitted) or
    /// re-reads it (refused). Either way the TAT is known to have held the
    /// loaded value from the first load to the last step, and the pause was
    /// read in between: the decision is the one a sequential store would
    /// have made at the moment the pause was read. A pause that lands after
    /// that moment orders after this decision; one that returned before this
    /// call began is always seen.
    #[inline]
    pub(crate) fn acquire(&self, request: &Acquire, now: Instant) -> Decision {
        self.acquire_seen(self.tat.load(Ordering::SeqCst), request, now)
    }

    /// [`Cell::acquire`] at the time `clock` tells, read after the TAT's
    /// first load rather than before: when threads contend for the bucket,
    /// the TAT's cache line is then on its way while the clock is read.
    /// The decision is as valid either way, since the swap proves the TAT
    /// unchanged from its load to the swap, and the clock is read in
    /// between.
    #[inline]
    pub(crate) fn acquire_by<C: Clock>(&self, request: &Acquire, clock: &C) -> Decision {
        let tat = self.tat.load(Ordering::SeqCst);
        self.acquire_seen(tat, request, clock.now())
    }

    /// [`Cell::acquire`] from the TAT `tat`, just loaded.
    #[inline]
    fn acquire_seen(&self, mut tat: u64, request: &Acquire, now: Instant) -> Decision {
        // The hot path, kept small enough to inline: an unpaused bucket
        // admitting a cost in `1..=B`, retried at once on a lost race with
        // the TAT the race returned. Anything else (a read, an impossible
        // cost, a refusal, a pause, a TAT past the horizon) goes the general
        // way, starting from the TAT last seen.
        let now_ns = now.as_nanos();
        let gcra = &request.gcra;
        if request.cost.wrapping_sub(1) < gcra.burst() {
            // `cost ≤ B`, so `cost·T ≤ T·B = τ`, which a `Gcra` keeps
            // within `u64`: the product is exact.
            let step = gcra
                .emission_interval()
                .as_nanos()
                .wrapping_mul(u64::from(request.cost));
            // The core admits when `max(TAT, now) + cost·T − τ − now`
            // (its wait) is at most `max_wait`, that is when the new TAT is
            // at most `now + τ + max_wait`; saturating, that bound is exact
            // too (a new TAT cannot exceed `u64::MAX`). Worked out once,
            // outside the retry loop, it leaves the loop a comparison.
            let limit = now_ns
                .saturating_add(gcra.tolerance().as_nanos())
                .saturating_add(request.max_wait.as_nanos());
            loop {
                if self.paused_until.load(Ordering::SeqCst) > now_ns {
                    break;
                }
                let new_tat = match tat.max(now_ns).checked_add(step) {
                    Some(new_tat) if new_tat <= limit => new_tat,
                    _ => break,
                };
                match self
                    .tat
                    .compare_exchange_weak(tat, new_tat, Ordering::SeqCst, Ordering::SeqCst)
                {
                    Ok(_) => return admitted(request, now_ns, new_tat, admitted_wait(gcra, now_ns, new_tat)),
                    Err(current) => tat = current,
                }
            }
        }
        self.acquire_from(tat, request, now)
    }

    /// [`Cell::acquire`] in general, from the TAT `tat` last seen: loops
    /// until the decision it made is known to have been made on the TAT in
    /// force. Only what the swap needs is worked out before it; the rest of
    /// the decision after, which keeps the window in which another thread
    /// can win the race short.
    #[cold]
    #[inline(never)]
    fn acquire_from(&self, mut tat: u64, request: &Acquire, now: Instant) -> Decision {
        let now_ns = now.as_nanos();
        loop {
            let paused_until = self.paused_until.load(Ordering::SeqCst);
            let plan = if paused_until <= now_ns {
                plan_unpaused(tat, request, now_ns)
            } else {
                None
            };
            let (decision, next_tat) = match plan {
                Some(Plan::Admit { new_tat, wait }) => {
                    match self
                        .tat
                        .compare_exchange_weak(tat, new_tat, Ordering::SeqCst, Ordering::SeqCst)
                    {
                        Ok(_) => return admitted(request, now_ns, new_tat, wait),
                        Err(current) => {
                            tat = current;
                            continue;
                        }
                    }
                }
                Some(Plan::Refuse { base, wait }) => (refused(request, now_ns, base, wait), None),
                Some(Plan::Impossible) => (impossible(request), None),
                None => decide_in_core(tat, paused_until, request, now),
            };
            match next_tat {
                Some(next_tat) if next_tat != tat => {
                    match self
                        .tat
                        .compare_exchange_weak(tat, next_tat, Ordering::SeqCst, Ordering::SeqCst)
                    {
                        Ok(_) => return decision,
                        Err(current) => tat = current,
                    }
                }
                // Refused, or admitted without moving the TAT (cost zero):
                // nothing to write, but the TAT must still be the one decided on.
                _ => {
                    let again = self.tat.load(Ordering::SeqCst);
                    if again == tat {
                        return decision;
                    }
                    tat = again;
                }
            }
        }
    }

    /// Extends the pause to `now + span`; never shortens it.
    pub(crate) fn pause(&self, now: Instant, span: Nanos) {
        let until = now.saturating_add(span).as_nanos();
        self.paused_until.fetch_max(until, Ordering::SeqCst);
    }

    /// The state as a [`BucketState`], `None` for words never set.
    pub(crate) fn state(&self) -> BucketState {
        let word = |w: &AtomicU64| match w.load(Ordering::SeqCst) {
            0 => None,
            nanos => Some(Instant::from_nanos(nanos)),
        };
        BucketState {
            tat: word(&self.tat),
            paused_until: word(&self.paused_until),
        }
    }

    /// When the bucket is full and unpaused again: forgetting it from then
    /// on changes no decision.
    pub(crate) fn settles_at(&self) -> u64 {
        self.tat
            .load(Ordering::SeqCst)
            .max(self.paused_until.load(Ordering::SeqCst))
    }
}

/// [`BucketState::decide`] on the two words: the decision and, when
/// admitted, the TAT to store.
///
/// The common case (not paused, no arithmetic near the 584-year horizon)
/// takes [`plan_unpaused`], the core's rule in `u64` arithmetic; every
/// other case calls `BucketState::decide` itself. The two agree on every
/// input (property-tested below).
#[cfg(test)]
fn decide(tat: u64, paused_until: u64, request: &Acquire, now: Instant) -> (Decision, Option<u64>) {
    let now_ns = now.as_nanos();
    let plan = if paused_until <= now_ns {
        plan_unpaused(tat, request, now_ns)
    } else {
        None
    };
    match plan {
        Some(Plan::Admit { new_tat, wait }) => (admitted(request, now_ns, new_tat, wait), Some(new_tat)),
        Some(Plan::Refuse { base, wait }) => (refused(request, now_ns, base, wait), None),
        Some(Plan::Impossible) => (impossible(request), None),
        None => decide_in_core(tat, paused_until, request, now),
    }
}

fn decide_in_core(tat: u64, paused_until: u64, request: &Acquire, now: Instant) -> (Decision, Option<u64>) {
    let state = BucketState {
        tat: Some(Instant::from_nanos(tat)),
        paused_until: Some(Instant::from_nanos(paused_until)),
    };
    let (decision, next) = state.decide(request, now);
    (decision, next.and_then(|next| next.tat).map(Instant::as_nanos))
}

/// The outcome of `Gcra::decide` for an unpaused bucket, reduced to what
/// the compare-and-swap needs.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// Admitted after `wait`: store `new_tat`.
    Admit { new_tat: u64, wait: u64 },
    /// Refused: `base` is `max(TAT, now)`, `wait` the time until it conforms.
    Refuse { base: u64, wait: u64 },
    /// The cost exceeds the burst.
    Impossible,
}

/// `Gcra::decide`'s rule for an unpaused bucket, in `u64` arithmetic:
/// `base = max(TAT, now)`, `new = base + cost·T`, admitted after
/// `wait = (new − τ) − now` (or at once) when that is within `max_wait`.
/// `None` when a step would leave the `u64` range; the caller then defers
/// to the core, which works in `u128`.
#[inline]
fn plan_unpaused(tat: u64, request: &Acquire, now: u64) -> Option<Plan> {
    let gcra = &request.gcra;
    if request.cost > gcra.burst() {
        return Some(Plan::Impossible);
    }
    if request.cost == 0 {
        // A read, which the core always allows (a queue of reservations
        // may run the TAT far ahead of now): its rule, not this one.
        return None;
    }
    let base = tat.max(now);
    let step = gcra
        .emission_interval()
        .as_nanos()
        .checked_mul(u64::from(request.cost))?;
    let new_tat = base.checked_add(step)?;
    let wait = admitted_wait(gcra, now, new_tat);
    Some(if wait > request.max_wait.as_nanos() {
        Plan::Refuse { base, wait }
    } else {
        Plan::Admit { new_tat, wait }
    })
}

/// How long after `now` a request whose admission stores `new_tat` may
/// go: `(new − τ) − now`, or zero.
#[inline]
fn admitted_wait(gcra: &Gcra, now: u64, new_tat: u64) -> u64 {
    new_tat
        .saturating_sub(gcra.tolerance().as_nanos())
        .saturating_sub(now)
}

/// The admission of [`Plan::Admit`], as the core words it.
#[inline]
fn admitted(request: &Acquire, now: u64, new_tat: u64, wait: u64) -> Decision {
    // `ready + τ − new`: zero after a wait (ready is then `new − τ`), and
    // `τ − (new − now)` at once (admitted at once means `new − now ≤ τ`).
    let credit = if wait == 0 {
        request
            .gcra
            .tolerance()
            .as_nanos()
            .saturating_sub(new_tat.wrapping_sub(now))
    } else {
        0
    };
    Decision::Allowed(Allowed {
        tat: Instant::from_nanos(new_tat),
        wait: Nanos::from_nanos(wait),
        remaining: units(credit, request.gcra.emission_interval().as_nanos()),
        reset_after: Nanos::from_nanos(new_tat.wrapping_sub(now)),
    })
}

/// The refusal of [`Plan::Refuse`], as the core words it.
#[inline]
fn refused(request: &Acquire, now: u64, base: u64, wait: u64) -> Decision {
    // `now + τ − base`, saturating at zero, without leaving `u64`.
    let credit = request
        .gcra
        .tolerance()
        .as_nanos()
        .saturating_sub(base.wrapping_sub(now));
    Decision::Denied(Denied {
        retry_after: Nanos::from_nanos(wait),
        remaining: units(credit, request.gcra.emission_interval().as_nanos()),
        reset_after: Nanos::from_nanos(base.wrapping_sub(now)),
        cause: DenialCause::Limit,
    })
}

fn impossible(request: &Acquire) -> Decision {
    Decision::Impossible {
        cost: request.cost,
        burst: request.gcra.burst(),
    }
}

/// Whole units of cost in `credit` nanoseconds, saturating at `u32::MAX`;
/// no division when there is less than one.
#[inline]
fn units(credit: u64, interval: u64) -> u32 {
    if credit < interval {
        return 0;
    }
    u32::try_from(credit.checked_div(interval).unwrap_or(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use ratekeeper_core::ManualClock;

    use super::*;

    /// Instants and spans from the whole `u64` range, biased towards small
    /// values and the horizon where the arithmetic changes.
    fn nanos() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..2_000,
            0u64..10_000_000_000,
            any::<u64>(),
            (0u64..2_000).prop_map(|n| u64::MAX - n),
        ]
    }

    fn gcra() -> impl Strategy<Value = Gcra> {
        (
            prop_oneof![1u64..100, 1u64..1_000_000_000, any::<u64>()],
            prop_oneof![1u32..5, any::<u32>()],
        )
            .prop_filter_map("interval × burst fits", |(interval, burst)| {
                Gcra::new(Nanos::from_nanos(interval), burst).ok()
            })
    }

    fn request() -> impl Strategy<Value = Acquire> {
        (gcra(), prop_oneof![0u32..4, any::<u32>()], nanos()).prop_map(|(gcra, cost, max_wait)| Acquire {
            gcra,
            cost,
            max_wait: Nanos::from_nanos(max_wait),
        })
    }

    /// A cell whose words hold `tat` and `paused` (zero: never set).
    fn cell_holding(tat: u64, paused: u64) -> Cell {
        let cell = Cell::default();
        cell.tat.store(tat, Ordering::SeqCst);
        cell.paused_until.store(paused, Ordering::SeqCst);
        cell
    }

    fn word(nanos: u64) -> Option<Instant> {
        (nanos != 0).then_some(Instant::from_nanos(nanos))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// The two words decide exactly as the core's `BucketState`, with
        /// zero standing for "never set".
        #[test]
        fn decides_as_the_core(tat in nanos(), paused in nanos(), request in request(), now in nanos()) {
            let now = Instant::from_nanos(now);
            let core = BucketState { tat: word(tat), paused_until: word(paused) };
            let (expected, next) = core.decide(&request, now);
            let (decision, next_tat) = decide(tat, paused, &request, now);
            prop_assert_eq!(decision, expected);
            prop_assert_eq!(next_tat, next.and_then(|next| next.tat).map(Instant::as_nanos));
            // The state a cell keeps after `acquire` is the core's next state.
            let cell = cell_holding(tat, paused);
            prop_assert_eq!(cell.acquire(&request, now), expected);
            let kept = next.unwrap_or(core);
            prop_assert_eq!(cell.state().tat.map_or(0, Instant::as_nanos), kept.tat.map_or(0, Instant::as_nanos));
            prop_assert_eq!(cell.state().paused_until, core.paused_until);
            // And so does a cell that reads the clock itself.
            let clock = ManualClock::new();
            clock.advance(now.since_origin());
            let cell = cell_holding(tat, paused);
            prop_assert_eq!(cell.acquire_by(&request, &clock), expected);
            prop_assert_eq!(cell.state().tat.map_or(0, Instant::as_nanos), kept.tat.map_or(0, Instant::as_nanos));
        }

        /// On the edge of admission (the new TAT a few nanoseconds either
        /// side of `now + τ + max_wait`, where the hot path's bound decides)
        /// and of the pause, the cell decides as the core and keeps its
        /// next state.
        #[test]
        fn decides_as_the_core_at_the_edge(
            request in request(),
            now in nanos(),
            edge in -3i64..=3,
            paused_edge in -2i64..=2,
        ) {
            let now_ns = now;
            let now = Instant::from_nanos(now_ns);
            let step = request.gcra.emission_interval().as_nanos().saturating_mul(u64::from(request.cost));
            let limit = u128::from(now_ns) + u128::from(request.gcra.tolerance().as_nanos()) + u128::from(request.max_wait.as_nanos());
            // The TAT for which `TAT + cost·T = limit + edge`, when in range.
            let target = i128::try_from(limit).unwrap_or(i128::MAX) + i128::from(edge) - i128::from(step);
            let tat = u64::try_from(target.max(0)).unwrap_or(u64::MAX);
            let paused = u64::try_from(i128::from(now_ns) + i128::from(paused_edge)).unwrap_or(0);
            let core = BucketState { tat: word(tat), paused_until: word(paused) };
            let (expected, next) = core.decide(&request, now);
            let cell = cell_holding(tat, paused);
            prop_assert_eq!(cell.acquire(&request, now), expected);
            let kept = next.unwrap_or(core);
            prop_assert_eq!(cell.state().tat.map_or(0, Instant::as_nanos), kept.tat.map_or(0, Instant::as_nanos));
        }

        /// A pause on the cell is the core's `paused_for`.
        #[test]
        fn pauses_as_the_core(paused in nanos(), now in nanos(), span in nanos()) {
            let (now, span) = (Instant::from_nanos(now), Nanos::from_nanos(span));
            let cell = Cell::default();
            cell.paused_until.store(paused, Ordering::SeqCst);
            cell.pause(now, span);
            let core = BucketState { tat: None, paused_until: word(paused) }.paused_for(now, span);
            prop_assert_eq!(cell.state().paused_until.map_or(0, Instant::as_nanos), core.paused_until.map_or(0, Instant::as_nanos));
        }
    }
}
