//! The learner: the Close header teaches the search endpoint's limit, and a
//! 429 with `Retry-After` pauses the lead endpoint in the store, so the next
//! acquire sleeps at least that long.
//!
//! The learner is used in plain functions, never across an `.await`, so it
//! does not sit in the task's future (static RAM).
//!
//! It learns with [`LearnerCapabilities::STATED`], chosen at compile time,
//! which leaves out the code of what Close's API never needs (about 2 KB of
//! flash). Close states its limit in every response, so discovery from 429s
//! alone would never act: a 429 still pauses (`Retry-After`, else the
//! backoff). Its windows are one second long, with resets in whole seconds,
//! which leaves reset tracking nothing to narrow from one response: without
//! it a spent quota pauses for its reset as stated (a second at most), and
//! what remains is not spread over that second, the pause covering it.

use core::future::Future;
use core::task::Poll;

use ratekeeper_core::{
    Acquire, Clock, Learner, LearnerCapabilities, LearnerConfig, Nanos, Policy, PolicyConfig, PolicySource,
    Store,
};
use ratekeeper_embassy::{EmbassyClock, acquire};

use super::limiter::{MAX_WAIT, STORE, outcome};
use super::{checks, headers};
use crate::report::Report;

/// The endpoint the 429 comes from.
const PAUSED: &str = "api.close.com/api/v1/activity/";

/// The firmware's learner: the stated limits alone (see the module).
type CloseLearner = Learner<{ LearnerCapabilities::STATED }>;

/// What a new learner makes of one response, `headers` with `status`:
/// the policy it learned into `policy`, the pause it asks for, and the
/// server's `Retry-After`. One copy of the learner's calls serves every
/// observation of the stage; each result is read where it was built (an
/// observation, a policy and what a learner learned are larger than a
/// 32-bit target copies inline at opt-level "z").
#[inline(never)]
fn learn(
    status: u16,
    headers: &[(&'static [u8], &'static [u8])],
    policy: &mut Option<Policy>,
) -> (Option<Nanos>, Option<Nanos>) {
    let now = EmbassyClock.now();
    headers::read(status, headers, |info| {
        let learned =
            CloseLearner::with_capabilities(LearnerConfig::DEFAULT, now).observe_info(info, Nanos::ZERO, now);
        *policy = learned.policy;
        (learned.pause, info.retry_after())
    })
}

/// Writes into `policy` what the Close header on a 200 teaches a new
/// learner. The policy is learned where it is used: returned, it would be
/// copied out (inline, or by a block copy routine), which costs code.
#[inline(always)]
pub fn learn_from_close(policy: &mut Option<Policy>) {
    learn(200, &headers::CLOSE, policy);
}

/// A 429 with `Retry-After: 1`: the pause it sets on the bucket, and the
/// server's `Retry-After`.
fn throttled() -> (Option<Nanos>, Option<Nanos>) {
    let (pause, retry_after) = learn(429, &headers::TOO_MANY, &mut None);
    let paused = pause.filter(|&pause| STORE.pause(PAUSED, pause).is_ok());
    (paused, retry_after)
}

/// Checks what the Close header teaches. Its own function, so that the
/// policy learned lives only while it runs, not across the stage's wait:
/// no part of the task's future (static RAM).
fn taught(report: &mut Report) {
    let mut learned = None;
    learn_from_close(&mut learned);
    report.verify(&[
        learned.as_ref().map_or(0, |p| p.limit().into()),
        learned.as_ref().map_or(0, |p| p.window().as_nanos()),
        u64::from(learned.as_ref().is_some_and(|p| p.source == PolicySource::Header)),
    ]);
}

pub async fn run(report: &mut Report) {
    report.stage(checks::LEARNER);
    taught(report);
    let paused_at = EmbassyClock.now();
    let (pause, retry_after) = throttled();
    let retry_after = retry_after.unwrap_or(Nanos::MAX);
    report.verify(&[
        retry_after.as_nanos(),
        u64::from(pause.is_some_and(|pause| pause >= retry_after)),
    ]);
    // The paused endpoint's pace is unknown: that of a bucket never seen,
    // as of the 429.
    let gcra = PolicyConfig::DEFAULT
        .default_policy(paused_at)
        .to_gcra(&PolicyConfig::DEFAULT);
    // Read where the acquire answers, by reference (as the limiter stage
    // does): moving a decision out of the await would cost a block copy
    // routine.
    let reserve = Acquire::reserve(gcra, MAX_WAIT);
    let mut acquire = core::pin::pin!(acquire(&STORE, PAUSED, &reserve));
    let [kind, wait] = core::future::poll_fn(|cx| match acquire.as_mut().poll(cx) {
        Poll::Ready(decision) => Poll::Ready(outcome(decision)),
        Poll::Pending => Poll::Pending,
    })
    .await;
    // The pause began at or after `paused_at`, read on the store's own
    // clock: waking before its end would show as less than Retry-After
    // since then.
    let since_pause = EmbassyClock.now().saturating_duration_since(paused_at);
    report.verify(&[
        u64::from(kind == checks::OUTCOME_ALLOWED && wait <= retry_after.as_nanos()),
        u64::from(since_pause >= retry_after),
    ]);
}
