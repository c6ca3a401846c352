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

/// The response `headers` with `status`, read without a wall clock.
pub fn parse(status: u16, headers: &[(&'static [u8], &'static [u8])]) -> RateLimitInfo {
    RateLimitInfo::parse_families::<READ>(Some(status), headers.iter().copied(), &ParseOptions::new())
}

/// An optional figure as an observed value (`u64::MAX` when absent).
fn figure(value: Option<impl Into<u64>>) -> u64 {
    value.map_or(u64::MAX, Into::into)
}

fn nanos(value: Option<Nanos>) -> u64 {
    value.map_or(u64::MAX, Nanos::as_nanos)
}

#[inline(never)]
pub fn run(report: &mut Report) {
    report.stage(checks::HEADERS);
    let observed = parse(200, &CLOSE_OBSERVED);
    let client = parse(200, &CLOSE);
    let figures = |info: &RateLimitInfo, format: Format| {
        [
            u64::from(info.format() == Some(format)),
            figure(info.limit()),
            figure(info.remaining()),
            nanos(info.reset_after()),
        ]
    };
    let [a, b, c, d] = figures(&observed, Format::Close);
    let [e, f, g, h] = figures(&client, Format::IetfDictionary);
    report.verify(&[a, b, c, d, e, f, g, h]);
    let ietf = parse(
        200,
        &[
            (b"RateLimit-Policy", b"\"default\";q=20;w=2"),
            (b"RateLimit", b"\"default\";r=19;t=2"),
        ],
    );
    let [a, b, c, d] = figures(&ietf, Format::IetfList);
    report.verify(&[a, b, c, d, nanos(ietf.window())]);
    let refused = parse(429, &TOO_MANY);
    report.verify(&[
        nanos(refused.retry_after()),
        u64::from(refused.retry_after_applies()),
    ]);
}
