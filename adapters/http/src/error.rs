//! The gate's own errors: a stable code, a message for end users, and the
//! facts behind them.

use core::fmt;

use ratekeeper_core::Nanos;

/// Why the gate refused or gave up on a call, as a stable code.
///
/// The first five are the core's [`ratekeeper_core::ErrorKind`]s, with the
/// same codes; the gate adds the store failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Every retry allowed was spent and the call still failed.
    MaxRetriesExceeded,
    /// The time allowed for the call and its retries ran out.
    RetryBudgetExceeded,
    /// The circuit breaker of the endpoint is open: nothing was sent.
    CircuitOpen,
    /// The server refused the call for its rate limit and the call could
    /// not be retried (not safe to repeat, or retries are off).
    RateLimited,
    /// The bucket would have made the call wait longer than the configured
    /// `max_wait`: nothing was sent.
    WaitTooLong,
    /// The store of buckets and policies failed (Redis unreachable and no
    /// fallback, ...): nothing was sent.
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
    /// use ratekeeper_http::ErrorKind;
    ///
    /// assert_eq!(ErrorKind::CircuitOpen.code(), "RATE_LIMIT_CIRCUIT_OPEN");
    /// assert_eq!(ErrorKind::StoreUnavailable.code(), "RATE_LIMIT_STORE_UNAVAILABLE");
    /// ```
    pub const fn code(self) -> &'static str {
        match self.core() {
            Some(kind) => kind.code(),
            None => "RATE_LIMIT_STORE_UNAVAILABLE",
        }
    }

    /// A sentence to show an end user.
    ///
    /// ```
    /// use ratekeeper_http::ErrorKind;
    ///
    /// assert!(ErrorKind::WaitTooLong.user_message().starts_with("The service is busy"));
    /// ```
    pub const fn user_message(self) -> &'static str {
        match self.core() {
            Some(kind) => kind.user_message(),
            None => "The service is temporarily unavailable. Please try again in a few moments.",
        }
    }

    /// The core's kind, for every kind but [`ErrorKind::StoreUnavailable`].
    pub const fn core(self) -> Option<ratekeeper_core::ErrorKind> {
        use ratekeeper_core::ErrorKind as Core;
        Some(match self {
            ErrorKind::MaxRetriesExceeded => Core::MaxRetriesExceeded,
            ErrorKind::RetryBudgetExceeded => Core::RetryBudgetExceeded,
            ErrorKind::CircuitOpen => Core::CircuitOpen,
            ErrorKind::RateLimited => Core::RateLimited,
            ErrorKind::WaitTooLong => Core::WaitTooLong,
            ErrorKind::StoreUnavailable => return None,
        })
    }

    /// The kind with this code.
    ///
    /// ```
    /// use ratekeeper_http::ErrorKind;
    ///
    /// assert_eq!(ErrorKind::from_code("RATE_LIMIT_WAIT_TOO_LONG"), Some(ErrorKind::WaitTooLong));
    /// ```
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

impl From<ratekeeper_core::ErrorKind> for ErrorKind {
    fn from(kind: ratekeeper_core::ErrorKind) -> ErrorKind {
        use ratekeeper_core::ErrorKind as Core;
        match kind {
            Core::MaxRetriesExceeded => ErrorKind::MaxRetriesExceeded,
            Core::RetryBudgetExceeded => ErrorKind::RetryBudgetExceeded,
            Core::CircuitOpen => ErrorKind::CircuitOpen,
            Core::RateLimited => ErrorKind::RateLimited,
            // The core's kinds are non-exhaustive; a new one is a wait.
            _ => ErrorKind::WaitTooLong,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The gate refused or gave up on a call.
///
/// `Display` gives the code and the end-user message; [`Error::endpoint`],
/// [`Error::attempts`], [`Error::status`] and [`Error::retry_after`] the
/// facts for logs.
///
/// ```
/// use ratekeeper_http::{Error, ErrorKind};
///
/// let error = Error::new(ErrorKind::CircuitOpen, "api.example.com/items");
/// assert_eq!(error.code(), "RATE_LIMIT_CIRCUIT_OPEN");
/// assert!(error.to_string().starts_with("RATE_LIMIT_CIRCUIT_OPEN: Too many requests"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    endpoint: String,
    attempts: u32,
    status: Option<u16>,
    retry_after: Option<Nanos>,
    detail: Option<String>,
}

impl Error {
    /// An error of `kind` on the bucket `endpoint`, before any attempt.
    pub fn new(kind: ErrorKind, endpoint: impl Into<String>) -> Error {
        Error {
            kind,
            endpoint: endpoint.into(),
            attempts: 0,
            status: None,
            retry_after: None,
            detail: None,
        }
    }

    /// The gate's error for a core error (a give-up or a breaker refusal).
    pub(crate) fn from_core(error: ratekeeper_core::Error, endpoint: &str) -> Error {
        let mut this = Error::new(error.kind().into(), endpoint);
        this.attempts = error.attempts();
        this.retry_after = error.retry_after();
        this
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Error {
        self.attempts = attempts;
        self
    }

    pub(crate) fn with_status(mut self, status: Option<u16>) -> Error {
        self.status = status;
        self
    }

    pub(crate) fn with_retry_after(mut self, wait: Nanos) -> Error {
        self.retry_after = Some(wait);
        self
    }

    pub(crate) fn with_detail(mut self, detail: String) -> Error {
        self.detail = Some(detail);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable code, e.g. `RATE_LIMIT_MAX_RETRIES_EXCEEDED`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The message for an end user.
    pub fn user_message(&self) -> &'static str {
        self.kind.user_message()
    }

    /// The bucket (endpoint key) of the call.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Requests sent for the call (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The status of the last response, if one came.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The least wait before trying again makes sense, when known.
    pub fn retry_after(&self) -> Option<Nanos> {
        self.retry_after
    }

    /// Technical detail for logs (a store's error), when there is one.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.kind.user_message())
    }
}

impl std::error::Error for Error {}
