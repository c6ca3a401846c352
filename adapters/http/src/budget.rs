//! Spending what the server says is left.
//!
//! When a response states how many requests remain until its window
//! resets, those requests are the server's to give, and it has said it
//! will take them: a fixed window of 30 per 3 s accepts 30 at once, where
//! even pacing would need the whole window for 30. So, when the store is
//! private to this process (no other instance spends the same window
//! through it), a bucket spends the stated `remaining` without pacing,
//! then waits for the reset, and one request (the *probe*) finds out what
//! the next window allows while the others wait for its answer.
//!
//! What is left is counted so that it is never more than the server has:
//! requests are numbered as they are let through, and a window's budget
//! is the last number the server takes. An answer to request `n` stating
//! `remaining = r` says the server, when it counted `n`, would take `r`
//! more; neither a fixed window's reset nor a sliding window's oldest
//! request leaving takes any of them back. Of ours, the ones it may count
//! after `n` are those let through after `n` and those *uncertain* at
//! `n`: let through before `n` and not answered when `n` was let through
//! (still on their way, they may reach the server after `n` does,
//! stragglers of an earlier window included; a request that ended
//! without an answer stays uncertain until the window after its own, as
//! it may still arrive). So the server takes every number up to `n + r -
//! (uncertain at n)`. Each answer gives such a lower bound, whatever
//! order requests reach the server in, and the highest one is kept. Each
//! answer also gives an upper bound, whoever else spends the same window:
//! no more than `r` after the requests already let through; the lowest is
//! kept, and wins. Further:
//!
//! - answers to requests let through before the window's probe are about
//!   an earlier window and its reset, and are not taken;
//! - a 429 or 503 ends the budget until the window's reset;
//! - only a window that resets within [`LONGEST_SPENT_WINDOW`] is spent at
//!   once: an hour's quota (GitHub's 5,000) sent in one burst would meet
//!   limits the server does not state (secondary, abuse), so it is paced;
//! - a sliding window's `remaining` is free now, and its reset frees only
//!   what the probe then finds stated: nothing is assumed of the next
//!   window;
//! - the window ends at the reset stated by the answer whose bound is
//!   spent (by then the server has freed something that bound did not
//!   count), never sooner: not at an earlier answer's reset, which a
//!   sliding window may have freed into what a later answer counted as
//!   left, nor at the boundary the learner tracks across fixed windows
//!   (a sliding window spent in one burst looks like a fixed one);
//! - a request the store lets through after an answer began a window (or
//!   paused the bucket) keeps to that window, probe or not.
//!
//! With a shared store the gate paces with the fleet's GCRA instead: other
//! instances spend the same `remaining`, and spending it here would spend
//! it twice.

use std::collections::BTreeMap;

use ratekeeper_core::learn::StatedQuota;
use ratekeeper_core::{Instant, Nanos};

/// The longest reset whose `remaining` is spent at once; past it, paced.
pub(crate) const LONGEST_SPENT_WINDOW: Nanos = Nanos::from_secs(60);

/// How long a request waits for a probe's answer before it looks again:
/// a probe that is lost (its caller dropped) must not hold the bucket.
const PROBE_PATIENCE: Nanos = Nanos::from_secs(1);

/// A window's worth of requests the server said it still accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerBudget {
    /// The last admission number the server surely takes in the window,
    /// if it is our only client.
    pub(crate) last: u64,
    /// The last admission number the server can take, whoever else
    /// spends the window.
    pub(crate) cap: u64,
    /// When the window ends.
    pub(crate) until: Instant,
    /// The admission number of the window's first answer (its probe).
    pub(crate) since: u64,
    /// A 429 or 503 came: nothing more until `until`.
    pub(crate) refused: bool,
}

/// What a request does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Go now, on the server's budget, as admission `seq`.
    Go(u64),
    /// Wait until then (or until the bucket's state changes), and ask again.
    Wait(Instant),
    /// Wait for the probe's answer (at most until then), and ask again.
    AwaitProbe(Instant),
    /// Be paced by the store; `probe`: as the request that finds out what
    /// a new window allows.
    Pace { probe: bool },
}

/// A request let through and not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    /// Requests that were let through before it and not yet answered when
    /// it was: the server may count them after it.
    uncertain: u64,
    /// It ended without an answer; it may still reach the server.
    released: bool,
}

/// One bucket's budget and the requests in flight on it.
#[derive(Debug)]
pub(crate) struct Budgeting {
    /// Whether the stated `remaining` may be spent without pacing.
    spend_stated: bool,
    budget: Option<ServerBudget>,
    /// The admission number of the probe in flight.
    probe: Option<u64>,
    /// A probe is waiting for its slot from the store.
    probe_pacing: bool,
    /// The admission number of the latest probe: answers to earlier
    /// requests are about an earlier window.
    latest_probe: u64,
    /// Requests sent and not yet answered, by admission number.
    in_flight: BTreeMap<u64, InFlight>,
    /// Whether any response came back yet.
    answered: bool,
    paused_until: Instant,
    admitted: u64,
}

impl Budgeting {
    pub(crate) fn new(spend_stated: bool, now: Instant) -> Budgeting {
        Budgeting {
            spend_stated,
            budget: None,
            probe: None,
            probe_pacing: false,
            latest_probe: 0,
            in_flight: BTreeMap::new(),
            answered: false,
            paused_until: now,
            admitted: 0,
        }
    }

    /// Counts one request in flight; returns its admission number.
    pub(crate) fn enter(&mut self) -> u64 {
        self.admitted = self.admitted.saturating_add(1);
        let request = InFlight {
            uncertain: self.in_flight.len() as u64,
            released: false,
        };
        self.in_flight.insert(self.admitted, request);
        self.admitted
    }

    /// What the next request does at `now`.
    pub(crate) fn step(&mut self, now: Instant) -> Step {
        if !self.spend_stated {
            return Step::Pace { probe: false };
        }
        if self.paused_until > now {
            return Step::Wait(self.paused_until);
        }
        let probe_out = self.probe.is_some() || self.probe_pacing;
        match self.budget {
            Some(budget) if now < budget.until => {
                if !budget.refused && self.admitted < budget.last.min(budget.cap) {
                    Step::Go(self.enter())
                } else {
                    Step::Wait(budget.until)
                }
            }
            // Nothing stated (a server that states nothing): paced.
            None if self.answered => Step::Pace { probe: false },
            // A new window, or the first request: one request finds out
            // what it allows while the others wait for its answer.
            _ if probe_out => Step::AwaitProbe(now.saturating_add(PROBE_PATIENCE)),
            _ => {
                self.probe_pacing = true;
                Step::Pace { probe: true }
            }
        }
    }

    /// A request that [`Step::Pace`] sent to the store gave up waiting
    /// (or was dropped) before it was let through.
    pub(crate) fn gave_up_pacing(&mut self, probe: bool) {
        if probe {
            self.probe_pacing = false;
        }
    }

    /// The store let a request that [`Step::Pace`] sent to it through at
    /// `now`: its admission number, or `None` when it must ask
    /// [`Budgeting::step`] again. While it waited for the store, an answer
    /// may have begun a window whose budget it must keep to (an answer
    /// from before the window's end that came after it), or paused the
    /// bucket; the store's pace is no licence past either.
    pub(crate) fn paced(&mut self, probe: bool, now: Instant) -> Option<u64> {
        self.gave_up_pacing(probe);
        if self.spend_stated {
            if self.paused_until > now {
                return None;
            }
            if let Some(budget) = self.budget.filter(|budget| now < budget.until) {
                if budget.refused || self.admitted >= budget.last.min(budget.cap) {
                    return None;
                }
                // Within the window's budget: an ordinary request of it.
                return Some(self.enter());
            }
        }
        let seq = self.enter();
        if probe {
            // Requests that ended without an answer before the previous
            // probe are no longer counted as possibly on their way.
            let previous = self.latest_probe;
            self.in_flight
                .retain(|&admitted, request| !request.released || admitted >= previous);
            self.probe = Some(seq);
            self.latest_probe = seq;
        }
        Some(seq)
    }

    /// Request `seq` ended without a response.
    pub(crate) fn release(&mut self, seq: u64) {
        // It may still reach the server: uncertain for later requests while
        // there is a budget to spend (without one nothing is counted).
        match self.in_flight.get_mut(&seq) {
            Some(request) if self.spend_stated && self.budget.is_some() => request.released = true,
            _ => {
                self.in_flight.remove(&seq);
            }
        }
        if self.probe == Some(seq) {
            self.probe = None;
        }
    }

    /// The response to request `seq` came at `now`, stating `quotas`;
    /// `throttled`: it was a 429 or 503; `pause`: what the learner paused
    /// the bucket for.
    pub(crate) fn answered(
        &mut self,
        seq: u64,
        quotas: &[StatedQuota],
        throttled: bool,
        pause: Option<Nanos>,
        now: Instant,
    ) {
        let uncertain = self.in_flight.remove(&seq).map_or(0, |request| request.uncertain);
        if self.probe == Some(seq) {
            self.probe = None;
        }
        self.answered = true;
        if !self.spend_stated {
            return;
        }
        let current = seq >= self.latest_probe;
        let live = self.budget.is_some_and(|budget| now < budget.until);
        let admitted = self.admitted;
        match (self.budget.as_mut(), governing(quotas)) {
            (Some(budget), Some((remaining, reset_after))) if current && live && seq >= budget.since => {
                let last = seq.saturating_add(remaining).saturating_sub(uncertain);
                let until = now.saturating_add(reset_after);
                // The window ends at the reset of the answer the budget is
                // spent on: by then the server has freed something that
                // budget did not count (a fixed window all of it, a sliding
                // one at least its oldest request). An earlier answer's
                // reset may have freed only what a later answer already
                // counted as left, and been spent.
                if last > budget.last {
                    budget.last = last;
                    budget.until = until;
                } else if last == budget.last {
                    budget.until = budget.until.min(until);
                }
                budget.cap = budget.cap.min(admitted.saturating_add(remaining));
            }
            (_, Some((remaining, reset_after)))
                if current && !live && reset_after <= LONGEST_SPENT_WINDOW =>
            {
                // The window's first answer (its probe's, or the first
                // ever): what it states is all there is.
                self.budget = Some(ServerBudget {
                    last: seq.saturating_add(remaining).saturating_sub(uncertain),
                    cap: admitted.saturating_add(remaining),
                    until: now.saturating_add(reset_after),
                    since: seq,
                    refused: false,
                });
            }
            _ => {}
        }
        if throttled && let Some(budget) = self.budget.as_mut() {
            budget.refused = true;
        }
        // The window ends when its reset says, not sooner: a pause the
        // learner ends earlier, at the boundary it tracks across fixed
        // windows, holds requests back but does not end the window. A
        // sliding window spent in one burst looks like a fixed one, and
        // its reset is the burst's, not a recurring boundary's.
        if let Some(pause) = pause {
            self.paused_until = self.paused_until.max(now.saturating_add(pause));
        }
    }

    #[cfg(test)]
    fn budget(&self) -> Option<ServerBudget> {
        self.budget
    }
}

/// The quota a response's budget is read from: the one with the least
/// `remaining` (and a stated reset), as `(remaining, reset_after)`.
fn governing(quotas: &[StatedQuota]) -> Option<(u64, Nanos)> {
    quotas
        .iter()
        .filter_map(|quota| Some((quota.remaining?, quota.reset_after?)))
        .min_by_key(|&(remaining, _)| remaining)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn quota(remaining: u64, reset_secs: u64) -> [StatedQuota; 1] {
        [StatedQuota {
            limit: Some(30),
            window: Some(Nanos::from_secs(3)),
            remaining: Some(remaining),
            reset_after: Some(Nanos::from_secs(reset_secs)),
        }]
    }

    const T0: Instant = Instant::ZERO;

    fn at_ms(ms: u64) -> Instant {
        T0.saturating_add(Nanos::from_millis(ms))
    }

    #[test]
    fn one_probe_then_the_stated_remaining_at_once_then_a_probe_per_window() {
        let mut bucket = Budgeting::new(true, T0);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        // Everyone else waits for the probe's answer.
        assert!(matches!(bucket.step(T0), Step::AwaitProbe(_)));
        let probe = bucket.paced(true, T0).unwrap();
        bucket.answered(probe, &quota(29, 3), false, None, at_ms(10));
        let mut sent = 0;
        while let Step::Go(seq) = bucket.step(at_ms(10)) {
            bucket.answered(seq, &quota(28 - sent, 3), false, None, at_ms(20));
            sent += 1;
        }
        assert_eq!(sent, 29);
        assert_eq!(bucket.step(at_ms(20)), Step::Wait(at_ms(3_010)));
        assert_eq!(bucket.step(at_ms(3_010)), Step::Pace { probe: true });
    }

    #[test]
    fn answers_that_know_less_lower_nothing_and_others_spending_lowers_the_cap() {
        let mut bucket = Budgeting::new(true, T0);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        let probe = bucket.paced(true, T0).unwrap();
        // A limit of 11: the probe leaves 10, so numbers up to 11 go.
        bucket.answered(probe, &quota(10, 3), false, None, at_ms(1));
        let sent: Vec<u64> = (0..4)
            .map(|_| match bucket.step(at_ms(1)) {
                Step::Go(seq) => seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bucket.budget().unwrap().last, 11);
        // Number 4 reached the server after 2, 3 and 5: it states 6 left,
        // and says nothing new.
        bucket.answered(sent[2], &quota(6, 3), false, None, at_ms(2));
        assert_eq!(bucket.budget().unwrap().last, 11);
        assert_eq!(bucket.budget().unwrap().cap, 11);
        // Someone else spent 4 of the window: 2 left after ours.
        bucket.answered(sent[3], &quota(2, 3), false, None, at_ms(3));
        assert_eq!(bucket.budget().unwrap().cap, 7);
        let mut more = 0;
        while let Step::Go(_) = bucket.step(at_ms(3)) {
            more += 1;
        }
        assert_eq!(more, 2);
    }

    #[test]
    fn a_response_stating_more_changes_nothing_and_a_429_spends_all() {
        let mut bucket = Budgeting::new(true, T0);
        bucket.step(T0);
        let probe = bucket.paced(true, T0).unwrap();
        bucket.answered(probe, &quota(5, 3), false, None, at_ms(1));
        let Step::Go(a) = bucket.step(at_ms(1)) else {
            panic!()
        };
        let Step::Go(b) = bucket.step(at_ms(1)) else {
            panic!()
        };
        bucket.answered(b, &quota(2, 3), false, None, at_ms(2));
        assert_eq!(bucket.budget().unwrap().last.min(bucket.budget().unwrap().cap), 5);
        bucket.answered(a, &quota(4, 3), false, None, at_ms(3));
        assert_eq!(bucket.budget().unwrap().last.min(bucket.budget().unwrap().cap), 5);
        let Step::Go(c) = bucket.step(at_ms(3)) else {
            panic!()
        };
        bucket.answered(c, &quota(0, 3), true, Some(Nanos::from_secs(2)), at_ms(4));
        assert_eq!(bucket.step(at_ms(5)), Step::Wait(at_ms(2_004)));
    }

    #[test]
    fn a_shared_store_is_always_paced_and_a_silent_server_too() {
        let mut shared = Budgeting::new(false, T0);
        let seq = shared.paced(false, T0).unwrap();
        shared.answered(seq, &quota(29, 3), false, None, at_ms(1));
        assert_eq!(shared.step(at_ms(1)), Step::Pace { probe: false });
        let mut silent = Budgeting::new(true, T0);
        assert_eq!(silent.step(T0), Step::Pace { probe: true });
        let seq = silent.paced(true, T0).unwrap();
        silent.answered(seq, &[], false, None, at_ms(1));
        assert_eq!(silent.step(at_ms(1)), Step::Pace { probe: false });
    }

    #[test]
    fn a_long_window_is_paced_not_spent_at_once() {
        let mut bucket = Budgeting::new(true, T0);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        let probe = bucket.paced(true, T0).unwrap();
        bucket.answered(probe, &quota(4_999, 3_600), false, None, at_ms(1));
        assert_eq!(bucket.budget(), None);
        assert_eq!(bucket.step(at_ms(1)), Step::Pace { probe: false });
    }

    #[test]
    fn a_lost_probe_does_not_hold_the_bucket() {
        let mut bucket = Budgeting::new(true, T0);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        let probe = bucket.paced(true, T0).unwrap();
        assert!(matches!(bucket.step(T0), Step::AwaitProbe(_)));
        bucket.release(probe);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        // A probe that gave up waiting for its slot, too.
        bucket.gave_up_pacing(true);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
    }

    #[test]
    fn what_is_stated_for_requests_from_before_the_window_is_not_taken() {
        let mut bucket = Budgeting::new(true, T0);
        bucket.step(T0);
        let probe = bucket.paced(true, T0).unwrap();
        bucket.answered(probe, &quota(2, 1), false, None, at_ms(1));
        let Step::Go(a) = bucket.step(at_ms(1)) else {
            panic!()
        };
        let Step::Go(_) = bucket.step(at_ms(1)) else {
            panic!()
        };
        // The window ends; the next one's probe answers first.
        assert_eq!(bucket.step(at_ms(1_001)), Step::Pace { probe: true });
        let probe = bucket.paced(true, at_ms(1_001)).unwrap();
        bucket.answered(probe, &quota(29, 3), false, None, at_ms(1_002));
        // Both of the old window's requests are still on their way: they
        // may reach the server after the probe, and spend two of its 29.
        assert_eq!(bucket.budget().unwrap().last, probe + 27);
        // A straggler of the old window says nothing is left: of that window.
        bucket.answered(a, &quota(0, 1), false, None, at_ms(1_003));
        assert_eq!(bucket.budget().unwrap().last, probe + 27);
    }

    #[test]
    fn a_probe_let_through_after_an_answer_began_a_window_keeps_to_its_budget() {
        let mut bucket = Budgeting::new(true, T0);
        bucket.step(T0);
        let probe = bucket.paced(true, T0).unwrap();
        bucket.answered(probe, &quota(1, 1), false, None, at_ms(1));
        let Step::Go(late) = bucket.step(at_ms(1)) else {
            panic!()
        };
        // The window ends before `late` is answered: a probe waits for the
        // store's pace.
        assert_eq!(bucket.step(at_ms(1_001)), Step::Pace { probe: true });
        // `late` was counted in the next window, and says one is left.
        bucket.answered(late, &quota(1, 3), false, None, at_ms(1_100));
        // Let through by the store now, the probe is that one...
        let one = bucket.paced(true, at_ms(1_200)).unwrap();
        assert_eq!(one, late + 1);
        // ...and a second, let through as a probe, waits for the window.
        assert_eq!(bucket.step(at_ms(1_200)), Step::Wait(at_ms(4_100)));
        assert_eq!(bucket.paced(true, at_ms(1_300)), None);
        // A pause that began while it waited holds it back too.
        bucket.answered(one, &quota(0, 3), true, Some(Nanos::from_secs(3)), at_ms(1_400));
        assert_eq!(bucket.paced(false, at_ms(1_500)), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Against a fixed window that counts requests as they arrive
        /// (and, with `others`, takes requests from another client too),
        /// requests arriving in any order and answered in any order, no
        /// more requests go than the server has left, less what the other
        /// client spent after our last answer.
        #[test]
        fn never_more_than_the_server_has_left(
            limit in 1u64..50,
            others in 0u64..10,
            events in prop::collection::vec(any::<prop::sample::Index>(), 0..400),
        ) {
            let mut bucket = Budgeting::new(true, T0);
            let mut counted = 0u64;
            let mut sent = 0u64;
            let mut others_left = others;
            // Sent, not arrived; arrived (with what was stated), not answered.
            let mut travelling: Vec<u64> = Vec::new();
            let mut arrived: Vec<(u64, u64, bool)> = Vec::new();
            let now = at_ms(1);
            prop_assert_eq!(bucket.step(T0), Step::Pace { probe: true });
            travelling.push(bucket.paced(true, T0).unwrap());
            sent += 1;
            for event in events {
                match event.index(4) {
                    0 => {
                        if let Step::Go(seq) = bucket.step(now) {
                            sent += 1;
                            travelling.push(seq);
                        }
                    }
                    1 if !travelling.is_empty() => {
                        let seq = travelling.remove(event.index(travelling.len()));
                        counted += 1;
                        arrived.push((seq, limit.saturating_sub(counted), counted > limit));
                    }
                    2 if !arrived.is_empty() => {
                        let (seq, remaining, refused) = arrived.remove(event.index(arrived.len()));
                        bucket.answered(seq, &quota(remaining, 3), refused, None, now);
                    }
                    3 if others_left > 0 => {
                        others_left -= 1;
                        counted += 1;
                    }
                    _ => {}
                }
                // Ours that go past what the server takes are refused: with
                // no other client, none; with one, no more than it took.
                prop_assert!(sent <= limit + others, "{} sent against a limit of {}", sent, limit);
                if others == 0 {
                    prop_assert!(sent <= limit, "{} sent against a limit of {}", sent, limit);
                }
            }
        }
    }
}
