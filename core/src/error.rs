//! The errors ratekeeper hands to the code that called it, with stable
//! codes and messages fit for an end user.
//!
//! An [`Error`] is small and fixed-size: a [`ErrorKind`], how many attempts
//! were made, and when trying again makes sense, if known. The kind carries
//! two stable strings:
//!
//! - [`ErrorKind::code`]: a machine-readable code such as
//!   `RATE_LIMIT_MAX_RETRIES_EXCEEDED`, for logs, metrics, error trackers and
//!   API responses. Codes never change once released; new kinds may be added
//!   (the enum is `#[non_exhaustive]`).
//! - [`ErrorKind::user_message`]: a sentence to show a person, which says
//!   what to do and never blames them.
//!
//! Adapters (the HTTP middleware, the CLI) map their own failures onto these
//! kinds, so one code means one thing everywhere.
//!
//! ```
//! use ratekeeper_core::{Error, ErrorKind, Nanos};
//!
//! let error = Error::new(ErrorKind::CircuitOpen).with_retry_after(Nanos::from_secs(42));
//! assert_eq!(error.kind().code(), "RATE_LIMIT_CIRCUIT_OPEN");
//! assert_eq!(error.retry_after(), Some(Nanos::from_secs(42)));
//! ```

use core::fmt;

use crate::time::Nanos;

/// What went wrong, as a stable code and a message for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// Every retry allowed was spent and the call still failed.
    MaxRetriesExceeded,
    /// The total time allowed for the call and its retries ran out (or the
    /// server asked to wait past it).
    RetryBudgetExceeded,
    /// The circuit breaker is open: the endpoint failed repeatedly and calls
    /// are refused without being sent until it has had time to recover.
    CircuitOpen,
    /// The server refused the call for its rate limit, and the call was not
    /// retried (its method is not safe to repeat, or retries are off).
    RateLimited,
    /// The limiter would have had to wait longer than the caller allows
    /// before sending.
    WaitTooLong,
    /// The store of buckets and learned limits failed (a shared store that
    /// cannot be reached, with no fallback): nothing was sent.
    StoreUnavailable,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::MaxRetriesExceeded,
        ErrorKind::RetryBudgetExceeded,
        ErrorKind::CircuitOpen,
        ErrorKind::RateLimited,
        ErrorKind::WaitTooLong,
        ErrorKind::StoreUnavailable,
    ];

    /// The stable machine-readable code.
    ///
    /// ```
    /// use ratekeeper_core::ErrorKind;
    ///
    /// assert_eq!(ErrorKind::MaxRetriesExceeded.code(), "RATE_LIMIT_MAX_RETRIES_EXCEEDED");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::MaxRetriesExceeded => "RATE_LIMIT_MAX_RETRIES_EXCEEDED",
            ErrorKind::RetryBudgetExceeded => "RATE_LIMIT_RETRY_BUDGET_EXCEEDED",
            ErrorKind::CircuitOpen => "RATE_LIMIT_CIRCUIT_OPEN",
            ErrorKind::RateLimited => "RATE_LIMIT_EXCEEDED",
            ErrorKind::WaitTooLong => "RATE_LIMIT_WAIT_TOO_LONG",
            ErrorKind::StoreUnavailable => "RATE_LIMIT_STORE_UNAVAILABLE",
        }
    }

    /// The kind with this code: the inverse of [`ErrorKind::code`].
    ///
    /// ```
    /// use ratekeeper_core::ErrorKind;
    ///
    /// assert_eq!(ErrorKind::from_code("RATE_LIMIT_CIRCUIT_OPEN"), Some(ErrorKind::CircuitOpen));
    /// assert_eq!(ErrorKind::from_code("NOPE"), None);
    /// ```
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// A sentence to show an end user: what happened and what to do.
    ///
    /// ```
    /// use ratekeeper_core::ErrorKind;
    ///
    /// assert_eq!(
    ///     ErrorKind::CircuitOpen.user_message(),
    ///     "Too many requests. Please wait 1-2 minutes before trying again."
    /// );
    /// ```
    pub const fn user_message(self) -> &'static str {
        match self {
            ErrorKind::MaxRetriesExceeded => {
                "The system is temporarily overloaded. Please try again in a few moments."
            }
            ErrorKind::RetryBudgetExceeded => {
                "The service is busy and the request ran out of time. Please try again in a few moments."
            }
            ErrorKind::CircuitOpen => "Too many requests. Please wait 1-2 minutes before trying again.",
            ErrorKind::RateLimited => "Too many requests right now. Please try again shortly.",
            ErrorKind::WaitTooLong => {
                "The service is busy and the request could not be sent in time. Please try again shortly."
            }
            ErrorKind::StoreUnavailable => {
                "The service is temporarily unavailable. Please try again in a few moments."
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A failure ratekeeper reports to its caller: a kind, the attempts made,
/// and when trying again makes sense, if known.
///
/// `Display` prints the user message, then the code; with a known
/// retry-after it adds the wait in whole seconds, rounded up.
///
/// ```
/// use ratekeeper_core::{Error, ErrorKind, Nanos};
///
/// let error = Error::new(ErrorKind::MaxRetriesExceeded).with_attempts(6);
/// assert_eq!(error.attempts(), 6);
/// let shown = format!("{error}");
/// assert!(shown.starts_with("The system is temporarily overloaded."));
/// assert!(shown.ends_with("(RATE_LIMIT_MAX_RETRIES_EXCEEDED)"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Error {
    kind: ErrorKind,
    attempts: u32,
    retry_after: Option<Nanos>,
}

impl Error {
    /// An error of `kind`, with no attempts counted and no retry-after.
    pub const fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            attempts: 0,
            retry_after: None,
        }
    }

    /// The same error, saying `attempts` calls were sent in all.
    pub const fn with_attempts(mut self, attempts: u32) -> Error {
        self.attempts = attempts;
        self
    }

    /// The same error, saying trying again makes sense after `wait`.
    pub const fn with_retry_after(mut self, wait: Nanos) -> Error {
        self.retry_after = Some(wait);
        self
    }

    /// What went wrong.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable code of the kind.
    pub const fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The message for an end user.
    pub const fn user_message(&self) -> &'static str {
        self.kind.user_message()
    }

    /// How many calls were sent in all (the first one and every retry).
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long from the moment of the error until trying again makes
    /// sense, if known.
    pub const fn retry_after(&self) -> Option<Nanos> {
        self.retry_after
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.user_message())?;
        if let Some(wait) = self.retry_after {
            write!(f, " (retry in {} s)", wait.as_secs_ceil())?;
        }
        write!(f, " ({})", self.kind.code())
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_round_trip() {
        for (i, a) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(ErrorKind::from_code(a.code()), Some(*a));
            assert!(a.code().starts_with("RATE_LIMIT_"));
            assert!(a.user_message().ends_with('.'));
            for b in ErrorKind::ALL.iter().skip(i + 1) {
                assert_ne!(a.code(), b.code());
            }
        }
    }

    #[test]
    fn seed_codes_and_messages_are_kept() {
        assert_eq!(
            ErrorKind::MaxRetriesExceeded.code(),
            "RATE_LIMIT_MAX_RETRIES_EXCEEDED"
        );
        assert_eq!(
            ErrorKind::MaxRetriesExceeded.user_message(),
            "The system is temporarily overloaded. Please try again in a few moments."
        );
        assert_eq!(ErrorKind::CircuitOpen.code(), "RATE_LIMIT_CIRCUIT_OPEN");
        assert_eq!(
            ErrorKind::CircuitOpen.user_message(),
            "Too many requests. Please wait 1-2 minutes before trying again."
        );
        assert_eq!(ErrorKind::StoreUnavailable.code(), "RATE_LIMIT_STORE_UNAVAILABLE");
    }

    #[test]
    fn the_error_is_small() {
        assert!(core::mem::size_of::<Error>() <= 32);
    }
}
