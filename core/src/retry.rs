//! Whether to retry a call, and when: which outcomes are worth another
//! try, which requests are safe to send twice, and the limits on both
//! attempts and total time.
//!
//! # Worth retrying
//!
//! An [`Outcome`] is worth retrying when the failure is likely to pass:
//! `408 Request Timeout`, `425 Too Early`, `429 Too Many Requests`, `500`,
//! `502`, `503`, `504`, a refused or reset connection, and a timeout. Every
//! other status is the server's considered answer (a `400` stays a `400`
//! however often it is asked), and so is a transport failure ratekeeper
//! cannot name ([`Outcome::OtherTransport`], such as a TLS or DNS error
//! that needs a person).
//!
//! # Safe to repeat
//!
//! A retry sends the request again, and the first one may have taken effect
//! before the failure was seen. So only methods whose repetition changes
//! nothing further are retried (`GET`, `HEAD`, `OPTIONS`, `PUT`, `DELETE`,
//! `TRACE`: RFC 9110 §9.2.2), plus `POST`, `PATCH` and the rest when the
//! request carries an idempotency key or the [`RetryPolicy`] opts in. A
//! refused connection is retried whatever the method: the request never
//! left.
//!
//! # Limits
//!
//! Every retry is scheduled by the [`Backoff`] of the policy, which bounds
//! the number of retries and never waits less than the server's
//! `Retry-After`. The policy also bounds the total time: a retry that would
//! start later than `budget` after the first call is not scheduled, and the
//! caller learns how long the server asked to wait, to pass on.
//!
//! ```
//! use ratekeeper_core::{Clock, ManualClock, Method, Nanos, Outcome, RequestKind, RetryDecision, RetryPolicy, RetryState, SplitMix64};
//!
//! let clock = ManualClock::new();
//! let mut rng = SplitMix64::new(1);
//! let mut retry = RetryState::new(RetryPolicy::GO_HIGH_LEVEL, RequestKind::new(Method::Get), clock.now());
//! // A 429 saying "come back in 10 s": the retry waits exactly that.
//! let decision = retry.decide(Outcome::Response(429), Some(Nanos::from_secs(10)), clock.now(), &mut rng);
//! assert_eq!(decision.wait(), Some(Nanos::from_secs(10)));
//! clock.advance(Nanos::from_secs(10));
//! assert_eq!(retry.decide(Outcome::Response(200), None, clock.now(), &mut rng), RetryDecision::Done);
//! ```

use crate::backoff::{Backoff, BackoffConfig, RandomSource};
use crate::breaker::CallResult;
use crate::error::{Error, ErrorKind};
use crate::time::{Instant, Nanos};

/// An HTTP request method, as far as retrying cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `POST`
    Post,
    /// `PATCH`
    Patch,
    /// `CONNECT`
    Connect,
    /// Any other method (an extension method).
    Other,
}

impl Method {
    /// The method named by `name`. Method names are case-sensitive
    /// (RFC 9110 §9.1), so `get` is an extension method, never `GET`: the
    /// safe reading, since extension methods are not retried.
    ///
    /// ```
    /// use ratekeeper_core::Method;
    ///
    /// assert_eq!(Method::parse(b"DELETE"), Method::Delete);
    /// assert_eq!(Method::parse(b"get"), Method::Other);
    /// ```
    pub fn parse(name: &[u8]) -> Method {
        match name {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"POST" => Method::Post,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// Whether sending the request twice has the same effect as sending it
    /// once (RFC 9110 §9.2.2).
    pub const fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Options | Method::Trace | Method::Put | Method::Delete
        )
    }
}

/// What became of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The server answered with this status.
    Response(u16),
    /// The connection was refused: nothing was sent.
    ConnectionRefused,
    /// The connection was reset or closed before an answer came.
    ConnectionReset,
    /// No answer came in time (connect, read or the whole call).
    Timeout,
    /// Any other transport failure (TLS, DNS, a malformed answer, ...).
    OtherTransport,
}

impl Outcome {
    /// Whether the call succeeded: any status below 400.
    pub const fn is_success(self) -> bool {
        // 1xx are not final answers, and 0 is no status at all.
        matches!(self, Outcome::Response(200..=399))
    }

    /// Whether the server said it is rate limiting (429).
    pub const fn is_rate_limited(self) -> bool {
        matches!(self, Outcome::Response(429))
    }

    /// Whether the failure is likely to pass, so a retry is worth it; see
    /// the [module docs](self) for the list.
    ///
    /// ```
    /// use ratekeeper_core::Outcome;
    ///
    /// assert!(Outcome::Response(503).is_retryable());
    /// assert!(Outcome::Timeout.is_retryable());
    /// assert!(!Outcome::Response(404).is_retryable());
    /// assert!(!Outcome::Response(200).is_retryable());
    /// ```
    pub const fn is_retryable(self) -> bool {
        match self {
            Outcome::Response(status) => matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504),
            Outcome::ConnectionRefused | Outcome::ConnectionReset | Outcome::Timeout => true,
            Outcome::OtherTransport => false,
        }
    }

    /// Whether the request certainly never reached the server, so any
    /// method may be sent again.
    pub const fn was_never_sent(self) -> bool {
        matches!(self, Outcome::ConnectionRefused)
    }

    /// What a circuit breaker should make of this outcome by default: the
    /// endpoint failing (5xx, timeouts, lost connections) is a failure; any
    /// other answer shows it up, a success; a 429 is neither (the endpoint
    /// is up and busy, which the limiter handles), and neither is a
    /// transport failure ratekeeper cannot name.
    ///
    /// ```
    /// use ratekeeper_core::{CallResult, Outcome};
    ///
    /// assert_eq!(Outcome::Response(502).for_breaker(), Some(CallResult::Failure));
    /// assert_eq!(Outcome::Response(404).for_breaker(), Some(CallResult::Success));
    /// assert_eq!(Outcome::Response(429).for_breaker(), None);
    /// ```
    pub const fn for_breaker(self) -> Option<CallResult> {
        match self {
            Outcome::Response(429) | Outcome::OtherTransport => None,
            Outcome::Response(status) if status >= 500 => Some(CallResult::Failure),
            Outcome::Response(_) => Some(CallResult::Success),
            Outcome::ConnectionRefused | Outcome::ConnectionReset | Outcome::Timeout => {
                Some(CallResult::Failure)
            }
        }
    }
}

/// What matters about a request for retrying it: its method and whether it
/// carries an idempotency key.
///
/// ```
/// use ratekeeper_core::{Method, RequestKind, RetryPolicy};
///
/// let policy = RetryPolicy::SUPABASE;
/// assert!(RequestKind::new(Method::Put).may_repeat(&policy));
/// assert!(!RequestKind::new(Method::Post).may_repeat(&policy));
/// assert!(RequestKind::new(Method::Post).with_idempotency_key().may_repeat(&policy));
/// assert!(RequestKind::new(Method::Post).may_repeat(&policy.retrying_any_method()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestKind {
    /// The request's method.
    pub method: Method,
    /// Whether it carries an idempotency key (such as `Idempotency-Key`),
    /// which makes the server apply it at most once.
    pub idempotency_key: bool,
}

impl RequestKind {
    /// A request with `method` and no idempotency key.
    pub const fn new(method: Method) -> RequestKind {
        RequestKind {
            method,
            idempotency_key: false,
        }
    }

    /// The same request, carrying an idempotency key.
    pub const fn with_idempotency_key(mut self) -> RequestKind {
        self.idempotency_key = true;
        self
    }

    /// Whether `policy` allows sending this request again.
    pub const fn may_repeat(&self, policy: &RetryPolicy) -> bool {
        self.method.is_idempotent() || self.idempotency_key || policy.retry_any_method
    }
}

/// When to retry: the backoff (which bounds the retries), the total time
/// budget, and whether methods that are not idempotent are retried anyway.
///
/// ```
/// use ratekeeper_core::{BackoffConfig, Nanos, RetryPolicy};
///
/// let policy = RetryPolicy::new(BackoffConfig::SUPABASE, Nanos::from_secs(5));
/// assert_eq!(policy.budget(), Nanos::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RetryPolicy {
    backoff: BackoffConfig,
    budget: Nanos,
    retry_any_method: bool,
}

impl RetryPolicy {
    /// GoHighLevel's plan ([`BackoffConfig::GO_HIGH_LEVEL`]) within two
    /// minutes: room for every backoff step and a one-minute `Retry-After`.
    pub const GO_HIGH_LEVEL: RetryPolicy =
        RetryPolicy::new(BackoffConfig::GO_HIGH_LEVEL, Nanos::from_secs(120));

    /// Supabase's plan ([`BackoffConfig::SUPABASE`]) within 2 s: it fails
    /// fast, as that plan asks, rather than hold a user waiting.
    pub const SUPABASE: RetryPolicy = RetryPolicy::new(BackoffConfig::SUPABASE, Nanos::from_secs(2));

    /// Retries shaped by `backoff`, none starting later than `budget` after
    /// the first call ([`Nanos::MAX`] for no time limit).
    pub const fn new(backoff: BackoffConfig, budget: Nanos) -> RetryPolicy {
        RetryPolicy {
            backoff,
            budget,
            retry_any_method: false,
        }
    }

    /// The same policy, retrying every method: the caller vouches that its
    /// `POST`s and `PATCH`es are safe to repeat.
    pub const fn retrying_any_method(mut self) -> RetryPolicy {
        self.retry_any_method = true;
        self
    }

    /// The backoff.
    pub const fn backoff(&self) -> &BackoffConfig {
        &self.backoff
    }

    /// The total time budget, from the first call to the start of the last
    /// retry.
    pub const fn budget(&self) -> Nanos {
        self.budget
    }

    /// Whether every method is retried.
    pub const fn retries_any_method(&self) -> bool {
        self.retry_any_method
    }
}

/// Why no retry follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GiveUpReason {
    /// The outcome is not worth retrying.
    NotRetryable,
    /// The outcome is, but the request is not safe to send again.
    NotRepeatable,
    /// Every retry allowed has been made.
    AttemptsExhausted,
    /// The next retry would start past the time budget.
    BudgetExhausted,
}

/// The end of a call's retries, short of success.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GiveUp {
    /// Why.
    pub reason: GiveUpReason,
    /// The last call's outcome.
    pub outcome: Outcome,
    /// Calls sent in all, the first one included.
    pub attempts: u32,
    /// The least wait before trying again makes sense, when known: the
    /// server's `Retry-After`, or the retry that did not fit the budget.
    pub retry_after: Option<Nanos>,
}

impl GiveUp {
    /// The error to report, or `None` when the server's own answer should
    /// go to the caller unchanged (an outcome not worth retrying, or one
    /// not safe to retry that is not a rate limit).
    ///
    /// ```
    /// use ratekeeper_core::{ErrorKind, GiveUp, GiveUpReason, Outcome};
    ///
    /// let give_up = GiveUp { reason: GiveUpReason::AttemptsExhausted, outcome: Outcome::Response(429), attempts: 6, retry_after: None };
    /// assert_eq!(give_up.error().unwrap().kind(), ErrorKind::MaxRetriesExceeded);
    /// ```
    pub const fn error(&self) -> Option<Error> {
        let kind = match self.reason {
            GiveUpReason::AttemptsExhausted => ErrorKind::MaxRetriesExceeded,
            GiveUpReason::BudgetExhausted => ErrorKind::RetryBudgetExceeded,
            GiveUpReason::NotRepeatable if self.outcome.is_rate_limited() => ErrorKind::RateLimited,
            GiveUpReason::NotRepeatable | GiveUpReason::NotRetryable => return None,
        };
        let error = Error::new(kind).with_attempts(self.attempts);
        Some(match self.retry_after {
            Some(wait) => error.with_retry_after(wait),
            None => error,
        })
    }
}

/// What to do after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetryDecision {
    /// The call succeeded: nothing to retry.
    Done,
    /// Send the request again after `wait`, at `at`.
    Retry {
        /// How long to wait from the decision's `now`.
        wait: Nanos,
        /// The instant to send at: `now + wait`.
        at: Instant,
        /// Which retry this is, from 1.
        retry: u32,
    },
    /// Stop: see why.
    GiveUp(GiveUp),
}

impl RetryDecision {
    /// The wait before the retry, if one was scheduled.
    pub const fn wait(&self) -> Option<Nanos> {
        match self {
            RetryDecision::Retry { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// The reason for stopping, if this is a give-up.
    pub const fn give_up(&self) -> Option<GiveUp> {
        match self {
            RetryDecision::GiveUp(give_up) => Some(*give_up),
            _ => None,
        }
    }
}

/// The retries of one call under a [`RetryPolicy`].
///
/// Made when the first call is sent; after each call, [`RetryState::decide`]
/// says retry (when) or stop (why).
///
/// ```
/// use ratekeeper_core::{GiveUpReason, Instant, Method, Outcome, RequestKind, RetryPolicy, RetryState, SplitMix64};
///
/// let mut rng = SplitMix64::new(9);
/// let mut retry = RetryState::new(RetryPolicy::SUPABASE, RequestKind::new(Method::Post), Instant::ZERO);
/// // A POST without an idempotency key is not sent twice.
/// let stop = retry.decide(Outcome::Response(503), None, Instant::ZERO, &mut rng).give_up().unwrap();
/// assert_eq!(stop.reason, GiveUpReason::NotRepeatable);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RetryState {
    // What `decide` needs of the policy and the request, worked out once:
    // the backoff (which holds the policy's backoff configuration), the
    // latest instant a retry may start, and whether the request may be
    // sent twice.
    backoff: Backoff,
    deadline: Instant,
    may_repeat: bool,
}

impl RetryState {
    /// The retries of a `request` whose first call is sent at `started_at`.
    pub const fn new(policy: RetryPolicy, request: RequestKind, started_at: Instant) -> RetryState {
        RetryState {
            backoff: Backoff::new(policy.backoff),
            deadline: started_at.saturating_add(policy.budget),
            may_repeat: request.may_repeat(&policy),
        }
    }

    /// Calls sent so far: the first one and every retry scheduled.
    pub const fn attempts(&self) -> u32 {
        self.backoff.retries().saturating_add(1)
    }

    /// The latest instant a retry may start.
    pub const fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Decides what follows a call that ended in `outcome` at `now`, the
    /// server having said `retry_after` (its `Retry-After` as a span from
    /// `now`, if any). A scheduled retry never comes before `retry_after`.
    ///
    /// Pass `retry_after` whenever the server sent one with a failure; for
    /// which statuses to honour it, see the header parser.
    pub fn decide(
        &mut self,
        outcome: Outcome,
        retry_after: Option<Nanos>,
        now: Instant,
        rng: &mut impl RandomSource,
    ) -> RetryDecision {
        if outcome.is_success() {
            return RetryDecision::Done;
        }
        // Every way of giving up builds the same `GiveUp`: once.
        let attempts = self.attempts();
        let mut retry_after = retry_after;
        let reason = if !outcome.is_retryable() {
            GiveUpReason::NotRetryable
        } else if !outcome.was_never_sent() && !self.may_repeat {
            GiveUpReason::NotRepeatable
        } else if let Some(wait) = self.backoff.next_delay(rng, retry_after) {
            match now.checked_add(wait) {
                Some(at) if at <= self.deadline => {
                    return RetryDecision::Retry {
                        wait,
                        at,
                        retry: self.backoff.retries(),
                    };
                }
                _ => {
                    retry_after = Some(wait);
                    GiveUpReason::BudgetExhausted
                }
            }
        } else {
            GiveUpReason::AttemptsExhausted
        };
        RetryDecision::GiveUp(GiveUp {
            reason,
            outcome,
            attempts,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::{Jitter, SplitMix64};
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn retryable_outcomes_are_exactly_the_listed_ones() {
        let retryable = [408u16, 425, 429, 500, 502, 503, 504];
        for status in 0..=u16::MAX {
            assert_eq!(
                Outcome::Response(status).is_retryable(),
                retryable.contains(&status)
            );
        }
        assert!(Outcome::ConnectionRefused.is_retryable());
        assert!(Outcome::ConnectionReset.is_retryable());
        assert!(Outcome::Timeout.is_retryable());
        assert!(!Outcome::OtherTransport.is_retryable());
    }

    #[test]
    fn safe_methods() {
        let policy = RetryPolicy::GO_HIGH_LEVEL;
        for name in [&b"GET"[..], b"HEAD", b"OPTIONS", b"PUT", b"DELETE"] {
            assert!(RequestKind::new(Method::parse(name)).may_repeat(&policy));
        }
        for name in [&b"POST"[..], b"PATCH", b"CONNECT", b"PURGE", b"get"] {
            let kind = RequestKind::new(Method::parse(name));
            assert!(!kind.may_repeat(&policy));
            assert!(kind.with_idempotency_key().may_repeat(&policy));
            assert!(kind.may_repeat(&policy.retrying_any_method()));
        }
    }

    #[test]
    fn go_high_level_retries_five_times_then_gives_up() {
        let clock = ManualClock::new();
        let mut rng = SplitMix64::new(42);
        let request = RequestKind::new(Method::Get);
        let mut retry = RetryState::new(RetryPolicy::GO_HIGH_LEVEL, request, clock.now());
        for n in 1..=5u32 {
            let decision = retry.decide(Outcome::Response(429), None, clock.now(), &mut rng);
            let RetryDecision::Retry {
                wait,
                at,
                retry: number,
            } = decision
            else {
                panic!("retry {n}: {decision:?}");
            };
            let step = Nanos::from_secs(1u64 << (n - 1));
            assert!(wait >= step && wait <= step + Nanos::from_secs(1), "{wait:?}");
            assert_eq!(number, n);
            clock.set(at);
        }
        let stop = retry
            .decide(Outcome::Response(429), None, clock.now(), &mut rng)
            .give_up()
            .unwrap();
        assert_eq!(stop.reason, GiveUpReason::AttemptsExhausted);
        assert_eq!(stop.attempts, 6);
        let error = stop.error().unwrap();
        assert_eq!(error.code(), "RATE_LIMIT_MAX_RETRIES_EXCEEDED");
    }

    #[test]
    fn supabase_retries_three_times_within_two_seconds() {
        let clock = ManualClock::new();
        let mut rng = SplitMix64::new(5);
        let mut retry = RetryState::new(
            RetryPolicy::SUPABASE,
            RequestKind::new(Method::Delete),
            clock.now(),
        );
        for millis in [100u64, 200, 400] {
            let wait = retry
                .decide(Outcome::Response(503), None, clock.now(), &mut rng)
                .wait()
                .unwrap();
            let step = Nanos::from_millis(millis);
            assert!(wait >= step && wait <= step + step / 5, "{wait:?}");
            clock.advance(wait);
        }
        let stop = retry
            .decide(Outcome::Timeout, None, clock.now(), &mut rng)
            .give_up()
            .unwrap();
        assert_eq!(stop.reason, GiveUpReason::AttemptsExhausted);
        assert_eq!(stop.attempts, 4);
    }

    #[test]
    fn retry_after_past_the_budget_gives_up_with_it() {
        let mut rng = SplitMix64::new(5);
        let mut retry = RetryState::new(
            RetryPolicy::SUPABASE,
            RequestKind::new(Method::Get),
            Instant::ZERO,
        );
        let decision = retry.decide(
            Outcome::Response(429),
            Some(Nanos::from_secs(30)),
            Instant::ZERO,
            &mut rng,
        );
        let stop = decision.give_up().unwrap();
        assert_eq!(stop.reason, GiveUpReason::BudgetExhausted);
        let error = stop.error().unwrap();
        assert_eq!(error.kind(), ErrorKind::RetryBudgetExceeded);
        assert_eq!(error.retry_after(), Some(Nanos::from_secs(30)));
    }

    #[test]
    fn post_is_retried_only_when_never_sent() {
        let mut rng = SplitMix64::new(5);
        let mut retry = RetryState::new(
            RetryPolicy::SUPABASE,
            RequestKind::new(Method::Post),
            Instant::ZERO,
        );
        assert!(
            retry
                .decide(Outcome::ConnectionRefused, None, Instant::ZERO, &mut rng)
                .wait()
                .is_some()
        );
        let stop = retry
            .decide(Outcome::Response(429), None, Instant::ZERO, &mut rng)
            .give_up()
            .unwrap();
        assert_eq!(stop.reason, GiveUpReason::NotRepeatable);
        assert_eq!(stop.error().map(|e| e.kind()), Some(ErrorKind::RateLimited));
        let stop = retry
            .decide(Outcome::Response(500), None, Instant::ZERO, &mut rng)
            .give_up()
            .unwrap();
        assert_eq!(stop.error(), None, "the server's own 500 goes to the caller");
    }

    #[test]
    fn not_retryable_and_success() {
        let mut rng = SplitMix64::new(5);
        let mut retry = RetryState::new(
            RetryPolicy::SUPABASE,
            RequestKind::new(Method::Get),
            Instant::ZERO,
        );
        assert_eq!(
            retry.decide(Outcome::Response(204), None, Instant::ZERO, &mut rng),
            RetryDecision::Done
        );
        let stop = retry
            .decide(Outcome::Response(404), None, Instant::ZERO, &mut rng)
            .give_up()
            .unwrap();
        assert_eq!(stop.reason, GiveUpReason::NotRetryable);
        assert_eq!(stop.attempts, 1);
    }

    #[test]
    fn extreme_clock_and_backoff_do_not_overflow() {
        let backoff = BackoffConfig::new(Nanos::MAX, Nanos::MAX, 3, Jitter::None).unwrap();
        let mut retry = RetryState::new(
            RetryPolicy::new(backoff, Nanos::MAX),
            RequestKind::new(Method::Get),
            Instant::MAX,
        );
        let stop = retry
            .decide(
                Outcome::Timeout,
                Some(Nanos::MAX),
                Instant::MAX,
                &mut SplitMix64::new(0),
            )
            .give_up()
            .unwrap();
        assert_eq!(stop.reason, GiveUpReason::BudgetExhausted);
    }
}
