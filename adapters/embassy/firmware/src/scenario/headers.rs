//! The header parser: a Close header, an IETF draft-08 pair and a 429's
//! `Retry-After`, read with `RateLimitInfo::parse`, values checked.

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

/// The response `headers` with `status`, read without a wall clock.
pub fn parse(status: u16, headers: &[(&'static [u8], &'static [u8])]) -> RateLimitInfo {
    RateLimitInfo::parse(Some(status), headers.iter().copied(), &ParseOptions::new())
}

#[inline(never)]
pub fn run(report: &mut Report) {
    let observed = parse(200, &CLOSE_OBSERVED);
    let client = parse(200, &CLOSE);
    let figures = |info: &RateLimitInfo| {
        info.limit() == Some(16)
            && info.remaining() == Some(15)
            && info.reset_after() == Some(Nanos::from_secs(1))
    };
    report.check(
        checks::HEADERS_CLOSE,
        observed.format() == Some(Format::Close)
            && figures(&observed)
            && client.format() == Some(Format::IetfDictionary)
            && figures(&client),
    );
    let ietf = parse(
        200,
        &[
            (b"RateLimit-Policy", b"\"default\";q=20;w=2"),
            (b"RateLimit", b"\"default\";r=19;t=2"),
        ],
    );
    report.check(
        checks::HEADERS_IETF,
        ietf.format() == Some(Format::IetfList)
            && ietf.limit() == Some(20)
            && ietf.remaining() == Some(19)
            && ietf.reset_after() == Some(Nanos::from_secs(2))
            && ietf.window() == Some(Nanos::from_secs(2)),
    );
    let refused = parse(429, &TOO_MANY);
    report.check(
        checks::HEADERS_RETRY_AFTER,
        refused.retry_after() == Some(Nanos::from_secs(1)) && refused.retry_after_applies(),
    );
}
