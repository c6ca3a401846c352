//! The header parser: a Close header, an IETF draft-08 pair and a 429's
//! `Retry-After`, values checked. The firmware reads only what its API
//! sends ([`READ`]): `RateLimit` (Close and the draft-07 Dictionary, the
//! draft-08 List) with `RateLimit-Policy`, and `Retry-After` in seconds;
//! with no wall clock it reads no dates, so only those readers are linked.

use ratekeeper_core::headers::Families;
use ratekeeper_core::{Format, Nanos, ParseOptions, RateLimitInfo};

use super::checks;
use crate::report::Report;

/// Close's header on its search endpoint: 16 requests per second, in the
/// `,`-separated form of Close's client (and of IETF draft-07, which is
/// what the parser names it).
pub const CLOSE: [(&[u8], &[u8]); 1] = [(b"ratelimit", b"limit=16, remaining=15, reset=1")];
/// The same figures as Close's servers are observed to send them.
const CLOSE_OBSERVED: [(&[u8], &[u8]); 1] = [(b"RateLimit", b"limit=16; remaining=15; reset=1")];
/// A 429 that says when to come back.
pub const TOO_MANY: [(&[u8], &[u8]); 1] = [(b"retry-after", b"1")];

/// The header families and forms the firmware reads: `RateLimit` and
/// `RateLimit-Policy`, and `Retry-After` (in seconds: no date form is
/// selected, so an HTTP-date would be ignored as malformed).
pub const READ: u32 = Families::IETF | Families::RETRY_AFTER;

/// The default options, in flash: read in place by every parse, rather
/// than built for each.
const OPTIONS: ParseOptions = ParseOptions::new();

/// What `read` makes of the response `headers` with `status`, read
/// without a wall clock, where the result was built (it is never moved).
pub fn read<R>(
    status: u16,
    headers: &[(&'static [u8], &'static [u8])],
    read: impl FnOnce(&RateLimitInfo) -> R,
) -> R {
    RateLimitInfo::parse_families_with::<READ, _>(Some(status), headers.iter().copied(), &OPTIONS, read)
}

/// What the stage checks of the response `headers` with `status`, read
/// without a wall clock, written into `out`: whether the governing quota is in `format`, its limit,
/// remaining, reset and window, the retry-after and whether it applies.
/// The result is read where it was built (one copy of the parser serves
/// every response, and the result is never moved), and the figures are
/// written where the check reads them, so none is moved either.
#[inline(never)]
fn figures(status: u16, headers: &[(&'static [u8], &'static [u8])], format: Format, out: &mut [u64; 7]) {
    read(status, headers, |info| {
        *out = [
            u64::from(info.format() == Some(format)),
            figure(info.limit()),
            figure(info.remaining()),
            nanos(info.reset_after()),
            nanos(info.window()),
            nanos(info.retry_after()),
            u64::from(info.retry_after_applies()),
        ];
    });
}

/// An optional figure as an observed value (`u64::MAX` when absent).
fn figure(value: Option<impl Into<u64>>) -> u64 {
    value.map_or(u64::MAX, Into::into)
}

fn nanos(value: Option<Nanos>) -> u64 {
    value.map_or(u64::MAX, Nanos::as_nanos)
}

pub fn run(report: &mut Report) {
    report.stage(checks::HEADERS);
    // Close's figures as observed, then as its client sends them: the
    // format, limit, remaining and reset of each, in one check, written
    // where it reads them (the second response's figures start where the
    // first's reset ends).
    let mut close = [0; 11];
    if let Some(observed) = close.first_chunk_mut() {
        figures(200, &CLOSE_OBSERVED, Format::Close, observed);
    }
    if let Some(client) = close.last_chunk_mut() {
        figures(200, &CLOSE, Format::IetfDictionary, client);
    }
    report.verify(close.first_chunk::<8>().unwrap_or(&[0; 8]));
    // The format, limit, remaining, reset and window, read in place.
    let mut read = [0; 7];
    figures(
        200,
        &[
            (b"RateLimit-Policy", b"\"default\";q=20;w=2"),
            (b"RateLimit", b"\"default\";r=19;t=2"),
        ],
        Format::IetfList,
        &mut read,
    );
    report.verify(read.first_chunk::<5>().unwrap_or(&[0; 5]));
    // The retry-after and whether it applies.
    figures(429, &TOO_MANY, Format::RetryAfter, &mut read);
    report.verify(read.last_chunk::<2>().unwrap_or(&[0; 2]));
}
