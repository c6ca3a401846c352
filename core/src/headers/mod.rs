//! What a response says about rate limits, read from its `(name, value)`
//! header pairs: every header family in use, zero allocation, no panic on
//! any input.
//!
//! [`RateLimitInfo::parse`] reads one response's headers (and its status)
//! into a small `Copy` value: the [`Quota`]s it states (limit, remaining,
//! time until reset, window; up to [`QUOTA_CAPACITY`]), the governing one,
//! `Retry-After`, and [`Warning`]s saying which fields were ignored or
//! clamped and why.
//!
//! ```
//! use ratekeeper_core::headers::{ParseOptions, RateLimitInfo};
//! use ratekeeper_core::Nanos;
//!
//! // Close, as observed on /api/v1/data/search/.
//! let headers: [(&[u8], &[u8]); 2] = [
//!     (b"Content-Type", b"application/json"),
//!     (b"RateLimit", b"limit=16; remaining=14; reset=1"),
//! ];
//! let info = RateLimitInfo::parse(Some(200), headers, &ParseOptions::new());
//! assert_eq!(info.limit(), Some(16));
//! assert_eq!(info.remaining(), Some(14));
//! assert_eq!(info.reset_after(), Some(Nanos::from_secs(1)));
//! assert!(info.warnings().is_empty());
//! ```
//!
//! # Selecting families
//!
//! [`RateLimitInfo::parse`] reads every family below and every value form
//! (dates, Go durations). A build that talks to known APIs can read only
//! their families with [`RateLimitInfo::parse_families`], whose const
//! argument is a bit set of [`Families`]: only the selected readers, name
//! tables and date parsers are linked, which is what a firmware image
//! wants. A header of a family not selected is skipped as an unknown one;
//! a value in a form not selected is ignored with
//! [`WarningKind::Malformed`].
//!
//! ```
//! use ratekeeper_core::headers::{Families, ParseOptions, RateLimitInfo};
//!
//! const READ: u32 = Families::IETF | Families::RETRY_AFTER;
//! let headers: [(&[u8], &[u8]); 2] = [
//!     (b"RateLimit-Policy", b"\"default\";q=20;w=2"),
//!     (b"RateLimit", b"\"default\";r=19;t=2"),
//! ];
//! let info = RateLimitInfo::parse_families::<READ>(Some(200), headers, &ParseOptions::new());
//! assert_eq!((info.limit(), info.remaining()), (Some(20), Some(19)));
//! ```
//!
//! # Families
//!
//! Header names are matched without regard to case (HTTP/2 lowercases
//! them; draft-03 itself mixes `RateLimit-` and `Ratelimit-`).
//!
//! - `RateLimit` with `limit=`/`remaining=`/`reset=` keys: Close
//!   (`;`-separated, as observed) or the draft-07 SF Dictionary
//!   (`,`-separated). Both separators are accepted in both, because Close's
//!   own client and its observed responses disagree.
//! - `RateLimit` as a List of named items (`"default";r=50;t=30`, drafts 08
//!   to 10, Cloudflare) joined to `RateLimit-Policy` items
//!   (`"burst";q=100;w=60`) by name. A List may be split over several field
//!   lines. When names do not match but there is exactly one of each, they
//!   are joined anyway with a [`WarningKind::PolicyNameMismatch`], because
//!   Cloudflare's own documented example does exactly that.
//! - `RateLimit-Limit`/`-Remaining`/`-Reset` (drafts 00–06, GitLab with
//!   `-Observed` and `-ResetTime`, Zendesk, Persona); `RateLimit-Limit` may
//!   carry quota policies (`100, 100;w=10`); `RateLimit-Policy` Integer items
//!   (`100;w=10`, drafts 06–07) join to a limit by quota value, and two
//!   policies with one quota value are ambiguous (draft-06 calls
//!   `10;w=1, 10;w=60` invalid), so neither is joined.
//!   pre-WG `window=` is read like `w=`.
//! - `X-RateLimit-*` (GitHub, Discord, Reddit, Supabase, GoHighLevel's
//!   `-Max` and `-Interval-Milliseconds`, Atlassian's `-Interval-Seconds`
//!   and `-FillRate`, Akamai's `-Next`, WHOOP's list-valued `-Limit`),
//!   `X-Rate-Limit-*` and the bare `X-Rate-Limit` (X, Okta, Zendesk,
//!   CometChat, Prisjakt), and vendor prefixes: `X-HubSpot-RateLimit-*`,
//!   `X-Sib-RateLimit-*` (Brevo), `anthropic-ratelimit-{requests,tokens,
//!   input-tokens,output-tokens}-*`, OpenAI's `x-ratelimit-*-{requests,tokens}`,
//!   X's `x-{app,user}-limit-24hour-*`, GoHighLevel's
//!   `X-RateLimit-Limit-Daily`/`-Daily-Remaining`. Name suffixes that state a
//!   window (`-Daily`, `-Secondly`, `-24hour-`) become the quota's window.
//! - Used/limit ratios: Shopify `X-Shopify-Shop-Api-Call-Limit: 32/40`,
//!   Salesforce `Sforce-Limit-Info: api-usage=18/5000; api-bursts=1/750`
//!   (and the older `per-app-api-usage=17/250(appName=…)`), Zendesk's
//!   `zendesk-ratelimit-tickets-index: total=100; remaining=99; resets=41`.
//!   Where only used and remaining are stated (Reddit), the limit is their
//!   sum; where only used and limit are, remaining is their difference.
//! - `Retry-After` (delay seconds, a decimal like Shopify's `2.0`, or an
//!   HTTP-date in any of the three RFC 9110 forms), and where it is absent
//!   MailerLite's `X-RateLimit-Retry-After`, Wildberries' `X-Ratelimit-Retry`
//!   (seconds) and Oracle's `RequestLimit-Default-RetryAfter` (milliseconds).
//!   It is reported whatever the status; [`RateLimitInfo::retry_after_applies`]
//!   says whether it binds (429 and 503) or is advice.
//!
//! # Units, and why
//!
//! - Counts are non-negative decimals; a fraction (Reddit's `599.0`) is
//!   rounded down, since overstating what is left is the costly mistake.
//!   Counts above [`MAX_COUNT`] are clamped to it.
//! - A reset field holding a date is read as one: an HTTP-date or
//!   JavaScript date string (polli-00, GitLab's `-ResetTime`, lemlist), or
//!   ISO 8601 (Jira Cloud, Akamai, Anthropic). One holding a Go duration
//!   (`6m0s`, `12ms`: OpenAI) is a span.
//! - A bare number in a reset field is read by the host's [`Profile`] when
//!   it has a rule, and otherwise by magnitude: from 10¹² up it is unix
//!   milliseconds (OpenRouter), from 10⁹ up unix seconds (GitHub, X, Okta,
//!   Discord with its fraction, GitLab under the IETF name), and below that
//!   seconds from now (every IETF draft, Close, Reddit, Supabase, Zendesk).
//!   10⁹ seconds from now is 31 years, and 10⁹ unix seconds is 2001, so the
//!   ranges cannot meet for any real value; the one case magnitude gets
//!   wrong, Prisjakt's milliseconds from now, needs its profile.
//! - `*-Reset-After` (Discord) is float seconds from now and is preferred
//!   over the absolute reset, as it needs no clock; `*-Interval-Milliseconds`
//!   is milliseconds, `*-Interval-Seconds` seconds, draft `w=` seconds.
//! - An absolute time becomes a span against the response's own `Date`
//!   header when present (so the client's clock skew does not matter), else
//!   against the "now" in [`ParseOptions`]; with neither it is ignored
//!   ([`WarningKind::NoReferenceTime`]). A time up to a day in the past
//!   means the window has already reset (zero); further off it is
//!   [`WarningKind::ImplausibleTime`] and ignored, as is one more than
//!   [`MAX_WAIT`] ahead.
//! - A span longer than [`MAX_WAIT`] (a year and a day) is clamped to it.
//! - Atlassian's token bucket (`-Limit` tokens, refilled `-FillRate` per
//!   `-Interval-Seconds`) is stated as its full-refill window,
//!   `interval × limit / fill rate`, which is the same sustained rate.
//!
//! # Malformed input
//!
//! A field that cannot be read is ignored, never guessed into a limit of
//! zero or of infinity: not a number, negative (`-1` is "unknown" at Azure
//! OpenAI), `NaN`, a repeated singleton with a different value (`991, 98`),
//! a date that does not exist. A remaining count above the limit is
//! clamped to the limit. Each such decision is a [`Warning`] naming the
//! header's position in the input; at most [`WARNING_CAPACITY`] are kept
//! and the rest are counted.
//!
//! # Choosing the governing quota
//!
//! As the IETF drafts say, the quota closest to exhaustion governs: the one
//! with the smallest share remaining (`remaining / limit`), then the fewest
//! remaining, then the longest until reset. Request quotas are preferred
//! over token or byte quotas, which do not pace requests. Quotas with no
//! `remaining` govern only when no quota states one.

mod dates;
mod families;
#[cfg(feature = "json-body")]
mod json_body;
mod numbers;
mod profiles;
mod structured;

use core::fmt;

use crate::time::Nanos;

pub use profiles::{Profile, ResetUnit};

/// The largest count read; larger ones are clamped to it (10¹²: far above
/// any request quota, and above the token quotas of LLM APIs).
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// The longest span read (366 days): longer resets and retry-afters are
/// clamped to it, absolute times further ahead are ignored.
pub const MAX_WAIT: Nanos = Nanos::from_secs(366 * 86_400);

/// How many quotas one response can state; more are dropped with a
/// [`WarningKind::TooManyQuotas`].
pub const QUOTA_CAPACITY: usize = 6;

/// How many warnings are kept; more are only counted.
pub const WARNING_CAPACITY: usize = 8;

/// A point in wall-clock time: nanoseconds since 1970-01-01T00:00:00Z.
///
/// ```
/// use ratekeeper_core::headers::UnixTime;
/// assert_eq!(UnixTime::from_secs(2).as_nanos(), 2_000_000_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnixTime(u64);

impl UnixTime {
    /// `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> UnixTime {
        UnixTime(nanos)
    }

    /// `secs` seconds after the epoch, saturating.
    pub const fn from_secs(secs: u64) -> UnixTime {
        UnixTime(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds after the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds after the epoch, rounding down.
    pub const fn as_secs_floor(self) -> u64 {
        self.0 / 1_000_000_000
    }
}

/// Which header families and value forms [`RateLimitInfo::parse_families`]
/// reads: a bit set, given as a const generic argument so that a build
/// links only the readers it selects (a firmware that reads one API's
/// headers need not carry the other fifteen grammars, nor a calendar).
///
/// A *family* is a set of header names (listed on each constant). A header
/// whose family is not selected is skipped exactly as an unknown header is:
/// reading a response with a selection gives what [`RateLimitInfo::parse`]
/// gives for the same response with those headers removed. `RateLimit-Policy`
/// belongs to two families ([`Families::IETF`] and
/// [`Families::IETF_FIELDS`]) and is read when either is selected.
///
/// A *form* is a way of writing a value: a date or a Go duration. A value
/// written in a form that is not selected is ignored with a
/// [`WarningKind::Malformed`] warning, as a value that is no date at all.
/// Bare numbers are always read, the epoch-magnitude rule included (unix
/// times need a reference time, from [`Families::DATE`] or
/// [`ParseOptions::with_now`], but no calendar).
///
/// [`RateLimitInfo::parse`] reads [`Families::ALL`].
///
/// ```
/// use ratekeeper_core::headers::{Families, ParseOptions, RateLimitInfo, WarningKind};
/// use ratekeeper_core::Nanos;
///
/// // What a firmware talking to one IETF-style API reads: `RateLimit` and
/// // `RateLimit-Policy`, and `Retry-After` in seconds (no wall clock, so
/// // no dates).
/// const READ: u32 = Families::IETF | Families::RETRY_AFTER;
/// let headers: [(&[u8], &[u8]); 3] = [
///     (b"RateLimit", b"limit=16, remaining=15, reset=1"),
///     (b"X-RateLimit-Limit", b"5000"),
///     (b"Retry-After", b"2"),
/// ];
/// let info = RateLimitInfo::parse_families::<READ>(Some(429), headers, &ParseOptions::new());
/// assert_eq!(info.limit(), Some(16));
/// assert_eq!(info.quotas().len(), 1); // X-RateLimit-Limit is not selected
/// assert_eq!(info.retry_after(), Some(Nanos::from_secs(2)));
///
/// // An HTTP-date is a form this selection leaves out.
/// let date: [(&[u8], &[u8]); 1] = [(b"Retry-After", b"Sun, 06 Nov 1994 08:49:37 GMT")];
/// let info = RateLimitInfo::parse_families::<READ>(Some(429), date, &ParseOptions::new());
/// assert_eq!(info.retry_after(), None);
/// assert_eq!(info.warnings()[0].kind, WarningKind::Malformed);
/// ```
#[derive(Debug)]
pub struct Families(());

impl Families {
    /// `RateLimit` (Close, the draft-07 Dictionary, the draft-08 List) and
    /// `RateLimit-Policy`.
    pub const IETF: u32 = 1 << 0;
    /// `RateLimit-Limit`, `-Remaining`, `-Reset`, `-Observed`, `-ResetTime`
    /// (drafts 00–06, GitLab) and `RateLimit-Policy`.
    pub const IETF_FIELDS: u32 = 1 << 1;
    /// `X-RateLimit-Limit`, `-Remaining`, `-Used`, `-Reset`, `-Reset-After`,
    /// `-Next`, `-Max`, `-FillRate`, `-Interval-Seconds`,
    /// `-Interval-Milliseconds`.
    pub const X_RATELIMIT: u32 = 1 << 2;
    /// `X-Rate-Limit`, `X-Rate-Limit-Limit`, `-Remaining`, `-Reset`.
    pub const X_RATE_LIMIT: u32 = 1 << 3;
    /// GoHighLevel's `X-RateLimit-Limit-Daily` and
    /// `X-RateLimit-Daily-Remaining`.
    pub const GOHIGHLEVEL_DAILY: u32 = 1 << 4;
    /// `X-HubSpot-RateLimit-*`.
    pub const HUBSPOT: u32 = 1 << 5;
    /// X's `x-app-limit-24hour-*` and `x-user-limit-24hour-*`.
    pub const X_24HOUR: u32 = 1 << 6;
    /// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
    pub const OPENAI: u32 = 1 << 7;
    /// `anthropic-ratelimit-*`.
    pub const ANTHROPIC: u32 = 1 << 8;
    /// Brevo's `X-Sib-RateLimit-*`.
    pub const BREVO: u32 = 1 << 9;
    /// `X-Shopify-Shop-Api-Call-Limit`.
    pub const SHOPIFY: u32 = 1 << 10;
    /// `Sforce-Limit-Info`.
    pub const SALESFORCE: u32 = 1 << 11;
    /// `zendesk-ratelimit-tickets-index`.
    pub const ZENDESK: u32 = 1 << 12;
    /// `Retry-After`.
    pub const RETRY_AFTER: u32 = 1 << 13;
    /// The vendors' retry-afters, read when `Retry-After` is absent:
    /// `X-RateLimit-Retry-After`, `X-Ratelimit-Retry`,
    /// `RequestLimit-Default-RetryAfter`.
    pub const VENDOR_RETRY_AFTER: u32 = 1 << 14;
    /// The `Date` header: the reference time absolute times are read
    /// against (read in the date forms selected).
    pub const DATE: u32 = 1 << 15;
    /// Every header family (the `Date` header included).
    pub const ALL_FAMILIES: u32 = (1 << 16) - 1;

    /// Form: HTTP-dates in RFC 9110's three forms (`Sun, 06 Nov 1994
    /// 08:49:37 GMT`, RFC 850, asctime).
    pub const HTTP_DATE: u32 = 1 << 16;
    /// Form: JavaScript's `Date.prototype.toString()` (`Mon Jan 01 2024
    /// 12:00:00 GMT+0100 (Central European Standard Time)`).
    pub const JS_DATE: u32 = 1 << 17;
    /// Form: ISO 8601 / RFC 3339 times (`2024-01-01T12:00Z`).
    pub const ISO_8601: u32 = 1 << 18;
    /// Form: Go durations (`6m0s`, `12ms`: OpenAI's resets).
    pub const GO_DURATION: u32 = 1 << 19;
    /// Every value form.
    pub const ALL_FORMS: u32 =
        Families::HTTP_DATE | Families::JS_DATE | Families::ISO_8601 | Families::GO_DURATION;

    /// Everything: what [`RateLimitInfo::parse`] reads.
    pub const ALL: u32 = Families::ALL_FAMILIES | Families::ALL_FORMS;
}

/// Which header grammar a [`Quota`] was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Format {
    /// `RateLimit: limit=..; remaining=..; reset=..` with `;` (Close).
    Close,
    /// `RateLimit: limit=.., remaining=.., reset=..` (draft-07 Dictionary).
    IetfDictionary,
    /// `RateLimit: "name";r=..;t=..` with `RateLimit-Policy` (drafts 08–10).
    IetfList,
    /// `RateLimit-Limit`/`-Remaining`/`-Reset` (drafts 00–06).
    IetfFields,
    /// `X-RateLimit-*`.
    XRateLimit,
    /// `X-Rate-Limit-*` and `X-Rate-Limit`.
    XRateLimitDashed,
    /// GoHighLevel's `X-RateLimit-Limit-Daily`/`-Daily-Remaining`.
    GoHighLevelDaily,
    /// `X-HubSpot-RateLimit-*`.
    HubSpot,
    /// X's `x-app-limit-24hour-*` and `x-user-limit-24hour-*`.
    X24Hour,
    /// OpenAI's `x-ratelimit-*-requests` and `-tokens`.
    OpenAi,
    /// `anthropic-ratelimit-*`.
    Anthropic,
    /// Brevo's `X-Sib-RateLimit-*`.
    Brevo,
    /// `X-Shopify-Shop-Api-Call-Limit: used/limit`.
    Shopify,
    /// `Sforce-Limit-Info: api-usage=used/limit`.
    Salesforce,
    /// `zendesk-ratelimit-*: total=..; remaining=..; resets=..`.
    Zendesk,
    /// Only a `Retry-After` (or a vendor's equivalent).
    RetryAfter,
    /// Shopify GraphQL's `extensions.cost.throttleStatus` (feature
    /// `json-body`).
    ShopifyGraphQl,
}

impl Format {
    /// A stable lowercase name, as `ratekeeper parse` prints it.
    ///
    /// ```
    /// # use ratekeeper_core::headers::Format;
    /// assert_eq!(Format::IetfList.as_str(), "ietf-draft-08");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Close => "close",
            Format::IetfDictionary => "ietf-draft-07",
            Format::IetfList => "ietf-draft-08",
            Format::IetfFields => "ietf-fields",
            Format::XRateLimit => "x-ratelimit",
            Format::XRateLimitDashed => "x-rate-limit",
            Format::GoHighLevelDaily => "gohighlevel-daily",
            Format::HubSpot => "hubspot",
            Format::X24Hour => "x-24hour",
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
            Format::Brevo => "brevo",
            Format::Shopify => "shopify",
            Format::Salesforce => "salesforce",
            Format::Zendesk => "zendesk",
            Format::RetryAfter => "retry-after",
            Format::ShopifyGraphQl => "shopify-graphql",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QuotaUnit {
    /// Requests: what ratekeeper paces.
    Requests,
    /// LLM tokens (OpenAI, Anthropic).
    Tokens,
    /// Anything else a draft-08 `qu` names (bytes, concurrency).
    Other,
}

/// One limit a response states: all fields optional, since servers state
/// different subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quota {
    /// The grammar it was read from.
    pub format: Format,
    /// What it counts.
    pub unit: QuotaUnit,
    /// The quota per window.
    pub limit: Option<u64>,
    /// What is left in the current window (never above `limit`).
    pub remaining: Option<u64>,
    /// Time until the window resets.
    pub reset_after: Option<Nanos>,
    /// The window's length, when the response states it.
    pub window: Option<Nanos>,
}

impl Quota {
    const fn new(format: Format, unit: QuotaUnit) -> Quota {
        Quota {
            format,
            unit,
            limit: None,
            remaining: None,
            reset_after: None,
            window: None,
        }
    }
}

/// Why a field was ignored or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WarningKind {
    /// Not in the field's grammar; ignored.
    Malformed,
    /// A negative number; ignored.
    Negative,
    /// Above [`MAX_COUNT`] or [`MAX_WAIT`]; clamped to the bound.
    Clamped,
    /// A field that must occur once came again with a different value;
    /// both ignored.
    Conflicting,
    /// An absolute time with neither a `Date` header nor a given now;
    /// ignored.
    NoReferenceTime,
    /// An absolute time more than a day past or [`MAX_WAIT`] ahead;
    /// ignored.
    ImplausibleTime,
    /// Policies that cannot be joined to a limit unambiguously; not joined.
    AmbiguousPolicy,
    /// A draft-08 item joined to the only policy despite a different name.
    PolicyNameMismatch,
    /// Remaining above the limit; clamped to the limit.
    RemainingAboveLimit,
    /// More than [`QUOTA_CAPACITY`] quotas; the rest dropped.
    TooManyQuotas,
    /// More rate-limit fields than the parser keeps; the rest ignored.
    TooManyFields,
}

impl WarningKind {
    /// A short explanation fit for a log line.
    pub const fn as_str(self) -> &'static str {
        match self {
            WarningKind::Malformed => "malformed value, ignored",
            WarningKind::Negative => "negative value, ignored",
            WarningKind::Clamped => "value out of range, clamped",
            WarningKind::Conflicting => "repeated with a different value, ignored",
            WarningKind::NoReferenceTime => "absolute time with no Date header or current time, ignored",
            WarningKind::ImplausibleTime => "absolute time too far in the past or future, ignored",
            WarningKind::AmbiguousPolicy => "policy cannot be joined to one limit, ignored",
            WarningKind::PolicyNameMismatch => "policy name differs from the limit's, joined as the only one",
            WarningKind::RemainingAboveLimit => "remaining above limit, clamped to the limit",
            WarningKind::TooManyQuotas => "too many quotas, the rest dropped",
            WarningKind::TooManyFields => "too many rate-limit fields, the rest ignored",
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field that was ignored or changed, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Warning {
    /// The field's position among the headers given (0-based; saturates at
    /// `u16::MAX`).
    pub header: u16,
    /// What was wrong.
    pub kind: WarningKind,
}

/// Warnings, up to [`WARNING_CAPACITY`], and a count of the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Warnings {
    kept: [Warning; WARNING_CAPACITY],
    len: u8,
    dropped: u16,
}

impl Warnings {
    const EMPTY: Warnings = Warnings {
        kept: [Warning {
            header: 0,
            kind: WarningKind::Malformed,
        }; WARNING_CAPACITY],
        len: 0,
        dropped: 0,
    };

    fn push(&mut self, header: u16, kind: WarningKind) {
        match self.kept.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = Warning { header, kind };
                // Below the capacity, as a slot was found: never wraps.
                self.len = self.len.wrapping_add(1);
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }

    fn as_slice(&self) -> &[Warning] {
        self.kept.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// How to read one response: what "now" is and which provider it is from.
///
/// ```
/// use ratekeeper_core::headers::{ParseOptions, Profile, UnixTime};
///
/// let options = ParseOptions::new()
///     .with_now(UnixTime::from_secs(1_700_000_000))
///     .with_profile(Profile::for_host(b"api.github.com"));
/// assert_eq!(options.profile().name(), "github");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParseOptions {
    now: Option<UnixTime>,
    now_overrides_date: bool,
    profile: Profile,
}

impl ParseOptions {
    /// No wall clock (absolute times are read against `Date` only) and the
    /// generic profile.
    pub const fn new() -> ParseOptions {
        ParseOptions {
            now: None,
            now_overrides_date: false,
            profile: Profile::GENERIC,
        }
    }

    /// The current wall-clock time, used for absolute times when the
    /// response has no valid `Date` header.
    pub const fn with_now(mut self, now: UnixTime) -> ParseOptions {
        self.now = Some(now);
        self.now_overrides_date = false;
        self
    }

    /// A fixed "now" that absolute times are read against even when the
    /// response has a `Date` header (replaying recorded responses).
    pub const fn with_fixed_now(mut self, now: UnixTime) -> ParseOptions {
        self.now = Some(now);
        self.now_overrides_date = true;
        self
    }

    /// The provider profile (see [`Profile::for_host`]).
    pub const fn with_profile(mut self, profile: Profile) -> ParseOptions {
        self.profile = profile;
        self
    }

    /// The provider profile in use.
    pub const fn profile(&self) -> Profile {
        self.profile
    }
}

/// Everything one response says about rate limits.
///
/// ```
/// use ratekeeper_core::headers::{Format, ParseOptions, RateLimitInfo, UnixTime};
/// use ratekeeper_core::Nanos;
///
/// // GitHub: epoch-seconds reset, read against the response's Date.
/// let headers: [(&[u8], &[u8]); 5] = [
///     (b"date", b"Tue, 14 Nov 2023 22:13:20 GMT"),
///     (b"x-ratelimit-limit", b"5000"),
///     (b"x-ratelimit-remaining", b"4999"),
///     (b"x-ratelimit-used", b"1"),
///     (b"x-ratelimit-reset", b"1700000060"),
/// ];
/// let info = RateLimitInfo::parse(Some(200), headers, &ParseOptions::new());
/// assert_eq!(info.format(), Some(Format::XRateLimit));
/// assert_eq!(info.reset_after(), Some(Nanos::from_secs(60)));
/// assert_eq!(info.retry_after(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimitInfo {
    status: Option<u16>,
    quotas: [Quota; QUOTA_CAPACITY],
    quota_count: u8,
    governing: Option<u8>,
    retry_after: Option<Nanos>,
    date: Option<UnixTime>,
    warnings: Warnings,
}

impl RateLimitInfo {
    /// Reads one response: its `status` (if known) and its header pairs.
    /// Never panics and never allocates, whatever the bytes.
    /// Reads every family and form; the same as
    /// [`RateLimitInfo::parse_families`] with [`Families::ALL`].
    pub fn parse<'a, I>(status: Option<u16>, headers: I, options: &ParseOptions) -> RateLimitInfo
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        RateLimitInfo::parse_families::<{ Families::ALL }>(status, headers, options)
    }

    /// Reads one response as [`RateLimitInfo::parse`] does, but only the
    /// header families and value forms `FAMILIES` selects (a bit set of
    /// [`Families`] constants); only their readers are linked.
    ///
    /// ```
    /// use ratekeeper_core::headers::{Families, Format, ParseOptions, RateLimitInfo};
    ///
    /// let headers: [(&[u8], &[u8]); 2] = [
    ///     (b"x-ratelimit-limit", b"5000"),
    ///     (b"x-ratelimit-remaining", b"4999"),
    /// ];
    /// let options = ParseOptions::new();
    /// let github = RateLimitInfo::parse_families::<{ Families::X_RATELIMIT }>(Some(200), headers, &options);
    /// assert_eq!(github.format(), Some(Format::XRateLimit));
    /// assert_eq!(github.remaining(), Some(4999));
    /// // Not selected: skipped like an unknown header.
    /// let ietf = RateLimitInfo::parse_families::<{ Families::IETF }>(Some(200), headers, &options);
    /// assert_eq!(ietf.format(), None);
    /// assert!(ietf.warnings().is_empty());
    /// ```
    pub fn parse_families<'a, const FAMILIES: u32>(
        status: Option<u16>,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        options: &ParseOptions,
    ) -> RateLimitInfo {
        let mut info = RateLimitInfo::empty(status);
        families::parse::<FAMILIES, _>(&mut info, headers, options);
        info
    }

    /// Reads one response as [`RateLimitInfo::parse_families`] does and
    /// hands the result to `read` where it was built, returning what `read`
    /// returns: the result is never moved, which spares a small target a
    /// block copy of it.
    ///
    /// ```
    /// use ratekeeper_core::headers::{Families, ParseOptions, RateLimitInfo};
    ///
    /// let headers: [(&[u8], &[u8]); 1] = [(b"retry-after", b"30")];
    /// let (wait, applies) = RateLimitInfo::parse_families_with::<{ Families::RETRY_AFTER }, _>(
    ///     Some(429),
    ///     headers,
    ///     &ParseOptions::new(),
    ///     |info| (info.retry_after().map(|wait| wait.as_secs_floor()), info.retry_after_applies()),
    /// );
    /// assert_eq!(wait, Some(30));
    /// assert!(applies);
    /// ```
    pub fn parse_families_with<'a, const FAMILIES: u32, R>(
        status: Option<u16>,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        options: &ParseOptions,
        read: impl FnOnce(&RateLimitInfo) -> R,
    ) -> R {
        let mut info = RateLimitInfo::empty(status);
        families::parse::<FAMILIES, _>(&mut info, headers, options);
        read(&info)
    }

    /// Nothing read: all zero bytes (first variants, `None`s), so that a
    /// build clears a result in place rather than copying a template.
    const EMPTY: RateLimitInfo = RateLimitInfo {
        status: None,
        quotas: [families::EMPTY_QUOTA; QUOTA_CAPACITY],
        quota_count: 0,
        governing: None,
        retry_after: None,
        date: None,
        warnings: Warnings::EMPTY,
    };

    const fn empty(status: Option<u16>) -> RateLimitInfo {
        let mut info = RateLimitInfo::EMPTY;
        info.status = status;
        info
    }

    /// The response status, as given.
    pub const fn status(&self) -> Option<u16> {
        self.status
    }

    /// Every quota stated, in the order read.
    pub fn quotas(&self) -> &[Quota] {
        self.quotas
            .get(..usize::from(self.quota_count))
            .unwrap_or_default()
    }

    /// The quota closest to exhaustion (see the module docs).
    pub fn governing(&self) -> Option<Quota> {
        self.governing_quota().copied()
    }

    /// The governing quota in place: the accessors read one field of it
    /// without copying the whole.
    fn governing_quota(&self) -> Option<&Quota> {
        self.governing.and_then(|at| self.quotas.get(usize::from(at)))
    }

    /// The governing quota's grammar, or [`Format::RetryAfter`] when only a
    /// retry-after was stated.
    pub fn format(&self) -> Option<Format> {
        match self.governing_quota() {
            Some(quota) => Some(quota.format),
            None => self.retry_after.map(|_| Format::RetryAfter),
        }
    }

    /// The governing quota's limit.
    pub fn limit(&self) -> Option<u64> {
        self.governing_quota().and_then(|q| q.limit)
    }

    /// The governing quota's remaining count.
    pub fn remaining(&self) -> Option<u64> {
        self.governing_quota().and_then(|q| q.remaining)
    }

    /// Time until the governing quota's window resets.
    pub fn reset_after(&self) -> Option<Nanos> {
        self.governing_quota().and_then(|q| q.reset_after)
    }

    /// The governing quota's window, when stated.
    pub fn window(&self) -> Option<Nanos> {
        self.governing_quota().and_then(|q| q.window)
    }

    /// How long the server asks to wait before retrying, whatever the
    /// status; see [`RateLimitInfo::retry_after_applies`].
    pub const fn retry_after(&self) -> Option<Nanos> {
        self.retry_after
    }

    /// Whether the retry-after binds: on 429 and 503 it does (RFC 9110 and
    /// every IETF draft give it precedence); on other statuses it is advice.
    pub const fn retry_after_applies(&self) -> bool {
        self.retry_after.is_some() && matches!(self.status, Some(429 | 503))
    }

    /// The response's `Date`, when present and valid.
    pub const fn date(&self) -> Option<UnixTime> {
        self.date
    }

    /// Why fields were ignored or changed, in input order.
    pub fn warnings(&self) -> &[Warning] {
        self.warnings.as_slice()
    }

    /// How many warnings did not fit in [`WARNING_CAPACITY`].
    pub const fn warnings_dropped(&self) -> u16 {
        self.warnings.dropped
    }
}
