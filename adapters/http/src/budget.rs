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
//! is the last number the server takes. The probe's answer, `remaining =
//! r` for probe `p`, says up to `p + r`. A later answer for request `n`,
//! stating `r`, says the server had then counted at most `limit - r`
//! requests; of ours, it had surely counted `n` itself and every request
//! of the window answered before `n` was let through (they were answered
//! before `n` was sent). Every other request of ours may still be on its
//! way, so the server takes up to `since - 1 + r + (answered before n) + 1`.
//! Each answer gives such a lower bound, whatever order requests reach the
//! server in, and the highest one is kept. Each answer also gives an upper
//! bound, whoever else spends the same window: no more than `r` after the
//! requests already let through; the lowest is kept, and wins. Further:
//!
//! - answers to requests let through before the window's probe are about
//!   an earlier window, and are not taken;
//! - a 429 or 503 ends the budget until the window's reset;
//! - only a window that resets within [`LONGEST_SPENT_WINDOW`] is spent at
//!   once: an hour's quota (GitHub's 5,000) sent in one burst would meet
//!   limits the server does not state (secondary, abuse), so it is paced;
//! - a sliding window's `remaining` is free now, and its reset frees only
//!   what the probe then finds stated: nothing is assumed of the next
//!   window.
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
    /// Requests sent and not yet answered, by admission number, with how
    /// many of the window's requests were answered when each was let
    /// through.
    in_flight: BTreeMap<u64, u64>,
    /// Answers to the current window's requests so far.
    window_answers: u64,
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
            window_answers: 0,
            answered: false,
            paused_until: now,
            admitted: 0,
        }
    }

    /// Counts one request in flight; returns its admission number.
    pub(crate) fn enter(&mut self) -> u64 {
        self.admitted = self.admitted.saturating_add(1);
        self.in_flight.insert(self.admitted, self.window_answers);
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

    /// A request that [`Step::Pace`] sent to the store was let through
    /// (`admitted`) or gave up waiting; returns its admission number.
    pub(crate) fn paced(&mut self, probe: bool, admitted: bool) -> Option<u64> {
        if probe {
            self.probe_pacing = false;
        }
        if !admitted {
            return None;
        }
        let seq = self.enter();
        if probe {
            self.probe = Some(seq);
            self.latest_probe = seq;
        }
        Some(seq)
    }

    /// Request `seq` ended without a response.
    pub(crate) fn release(&mut self, seq: u64) {
        self.in_flight.remove(&seq);
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
        let answered_before = self.in_flight.get(&seq).copied().unwrap_or(0);
        self.release(seq);
        self.answered = true;
        if !self.spend_stated {
            return;
        }
        let current = seq >= self.latest_probe;
        let live = self.budget.is_some_and(|budget| now < budget.until);
        let admitted = self.admitted;
        match (self.budget.as_mut(), governing(quotas)) {
            (Some(budget), Some((remaining, reset_after))) if current && live && seq >= budget.since => {
                self.window_answers = self.window_answers.saturating_add(1);
                // `n` itself and the window's requests answered before it
                // was let through are surely counted in what it states.
                let surely_counted = answered_before.saturating_add(1);
                let last = budget
                    .since
                    .saturating_sub(1)
                    .saturating_add(remaining)
                    .saturating_add(surely_counted);
                budget.last = budget.last.max(last);
                budget.cap = budget.cap.min(admitted.saturating_add(remaining));
                budget.until = budget.until.min(now.saturating_add(reset_after));
            }
            (_, Some((remaining, reset_after)))
                if current && !live && reset_after <= LONGEST_SPENT_WINDOW =>
            {
                // The window's first answer (its probe's, or the first
                // ever): what it states is all there is.
                self.budget = Some(ServerBudget {
                    last: seq.saturating_add(remaining),
                    cap: admitted.saturating_add(remaining),
                    until: now.saturating_add(reset_after),
                    since: seq,
                    refused: false,
                });
                self.window_answers = 1;
            }
            _ => {}
        }
        if throttled && let Some(budget) = self.budget.as_mut() {
            budget.refused = true;
        }
        if let Some(pause) = pause {
            self.paused_until = self.paused_until.max(now.saturating_add(pause));
            // The learner knows the window's boundary better than one
            // rounded `reset`: the next window starts when the pause ends.
            if let Some(budget) = self.budget.as_mut() {
                budget.until = budget.until.min(self.paused_until);
            }
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
        let probe = bucket.paced(true, true).unwrap();
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
        let probe = bucket.paced(true, true).unwrap();
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
        let probe = bucket.paced(true, true).unwrap();
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
        let seq = shared.paced(false, true).unwrap();
        shared.answered(seq, &quota(29, 3), false, None, at_ms(1));
        assert_eq!(shared.step(at_ms(1)), Step::Pace { probe: false });
        let mut silent = Budgeting::new(true, T0);
        assert_eq!(silent.step(T0), Step::Pace { probe: true });
        let seq = silent.paced(true, true).unwrap();
        silent.answered(seq, &[], false, None, at_ms(1));
        assert_eq!(silent.step(at_ms(1)), Step::Pace { probe: false });
    }

    #[test]
    fn a_long_window_is_paced_not_spent_at_once() {
        let mut bucket = Budgeting::new(true, T0);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        let probe = bucket.paced(true, true).unwrap();
        bucket.answered(probe, &quota(4_999, 3_600), false, None, at_ms(1));
        assert_eq!(bucket.budget(), None);
        assert_eq!(bucket.step(at_ms(1)), Step::Pace { probe: false });
    }

    #[test]
    fn a_lost_probe_does_not_hold_the_bucket() {
        let mut bucket = Budgeting::new(true, T0);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        let probe = bucket.paced(true, true).unwrap();
        assert!(matches!(bucket.step(T0), Step::AwaitProbe(_)));
        bucket.release(probe);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
        // A probe that gave up waiting for its slot, too.
        assert_eq!(bucket.paced(true, false), None);
        assert_eq!(bucket.step(T0), Step::Pace { probe: true });
    }

    #[test]
    fn what_is_stated_for_requests_from_before_the_window_is_not_taken() {
        let mut bucket = Budgeting::new(true, T0);
        bucket.step(T0);
        let probe = bucket.paced(true, true).unwrap();
        bucket.answered(probe, &quota(2, 1), false, None, at_ms(1));
        let Step::Go(a) = bucket.step(at_ms(1)) else {
            panic!()
        };
        let Step::Go(_) = bucket.step(at_ms(1)) else {
            panic!()
        };
        // The window ends; the next one's probe answers first.
        assert_eq!(bucket.step(at_ms(1_001)), Step::Pace { probe: true });
        let probe = bucket.paced(true, true).unwrap();
        bucket.answered(probe, &quota(29, 3), false, None, at_ms(1_002));
        // A straggler of the old window says nothing is left: of that window.
        bucket.answered(a, &quota(0, 1), false, None, at_ms(1_003));
        assert_eq!(bucket.budget().unwrap().last, probe + 29);
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
            travelling.push(bucket.paced(true, true).unwrap());
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
