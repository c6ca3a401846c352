//! The gate's own errors: a stable code, a message for end users, and the
//! facts behind them.
//!
//! The kinds are the core's [`ErrorKind`]s, so one code means one thing in
//! the middleware, the tower layer, the CLI and the firmware.

use core::fmt;

use ratekeeper_core::{ErrorKind, Nanos};

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
        let mut this = Error::new(error.kind(), endpoint);
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

    /// Technical detail for logs, when there is one: a store's error, or
    /// the last transport failure of a call that got no response.
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
