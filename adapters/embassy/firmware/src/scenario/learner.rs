//! The learner: the Close header teaches the search endpoint's limit, and a
//! 429 with `Retry-After` pauses the lead endpoint in the store, so the next
//! acquire sleeps at least that long.
//!
//! The learner is used in plain functions, never across an `.await`, so it
//! does not sit in the task's future (static RAM).

use embassy_time::Instant;
use ratekeeper_core::{
    Acquire, Clock, Learner, LearnerConfig, Nanos, Observation, Policy, PolicyConfig, PolicySource, Store,
};
use ratekeeper_embassy::{EmbassyClock, acquire};

use super::limiter::{MAX_WAIT, STORE, nanos, wait_of};
use super::{checks, headers};
use crate::report::Report;

/// The endpoint the 429 comes from.
const PAUSED: &str = "api.close.com/api/v1/activity/";

/// The policy the Close header on a 200 teaches a new learner.
pub fn learn_from_close() -> Option<Policy> {
    let now = EmbassyClock.now();
    let info = headers::parse(200, &headers::CLOSE);
    Learner::new(LearnerConfig::DEFAULT, now)
        .observe(&Observation::from_info(&info), now)
        .policy
}

/// A 429 with `Retry-After: 1`: the pause it sets on the bucket, and the
/// server's `Retry-After`.
fn throttled() -> (Option<Nanos>, Option<Nanos>) {
    let now = EmbassyClock.now();
    let info = headers::parse(429, &headers::TOO_MANY);
    let learned = Learner::new(LearnerConfig::DEFAULT, now).observe(&Observation::from_info(&info), now);
    let paused = learned.pause.filter(|&pause| STORE.pause(PAUSED, pause).is_ok());
    (paused, info.retry_after())
}

pub async fn run(report: &mut Report) {
    let learned = learn_from_close();
    report.check(
        checks::LEARNER_LEARNS,
        learned.is_some_and(|p| {
            (p.limit(), p.window(), p.source) == (16, Nanos::from_secs(1), PolicySource::Header)
        }),
    );
    let paused_at = Instant::now();
    let (pause, retry_after) = throttled();
    let retry_after = retry_after.unwrap_or(Nanos::MAX);
    report.check(
        checks::LEARNER_PAUSES,
        pause.is_some_and(|pause| pause >= retry_after),
    );
    let gcra = PolicyConfig::DEFAULT
        .default_policy(EmbassyClock.now())
        .to_gcra(&PolicyConfig::DEFAULT);
    let wait = wait_of(acquire(&STORE, PAUSED, &Acquire::reserve(gcra, MAX_WAIT)).await);
    // The pause began at or after `paused_at`: waking before its end
    // would show as less than Retry-After since then.
    let since_pause = nanos(paused_at.elapsed());
    report.check(
        checks::LEARNER_WAITS,
        wait.is_some_and(|wait| wait <= retry_after) && since_pause >= retry_after,
    );
}
