//! Parsing typical responses' headers: Close, IETF draft-08, GitHub. Each
//! response carries the ordinary headers around its rate-limit fields, as
//! a real one does, since skipping those is part of the cost.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ratekeeper_core::{ParseOptions, Profile, RateLimitInfo, UnixTime};

type Headers = [(&'static [u8], &'static [u8])];

const CLOSE: &Headers = &[
    (b"Date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
    (b"Content-Type", b"application/json"),
    (b"Content-Length", b"1234"),
    (b"Connection", b"keep-alive"),
    (b"Server", b"nginx"),
    (b"Vary", b"Accept-Encoding"),
    (b"ratelimit", b"limit=160; remaining=159; reset=8"),
    (b"Strict-Transport-Security", b"max-age=31536000"),
];

const IETF_DRAFT_08: &Headers = &[
    (b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
    (b"content-type", b"application/json"),
    (b"cf-ray", b"8a1b2c3d4e5f6789-AMS"),
    (b"server", b"cloudflare"),
    (
        b"ratelimit-policy",
        b"\"burst\";q=100;w=60, \"day\";q=5000;w=86400",
    ),
    (b"ratelimit", b"\"burst\";r=50;t=30, \"day\";r=4000;t=40000"),
    (b"cache-control", b"no-store"),
];

const GITHUB: &Headers = &[
    (b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
    (b"content-type", b"application/json; charset=utf-8"),
    (b"cache-control", b"private, max-age=60, s-maxage=60"),
    (b"etag", b"W/\"0123456789abcdef\""),
    (b"x-github-media-type", b"github.v3; format=json"),
    (b"x-ratelimit-limit", b"5000"),
    (b"x-ratelimit-remaining", b"4987"),
    (b"x-ratelimit-reset", b"1795348800"),
    (b"x-ratelimit-used", b"13"),
    (b"x-ratelimit-resource", b"core"),
    (b"x-github-request-id", b"C0DE:1234:5678:9ABC:DEF0"),
    (b"server", b"github.com"),
];

fn parse(c: &mut Criterion) {
    let now = UnixTime::from_secs(1_795_348_000);
    let cases = [
        ("close", CLOSE, Profile::for_host(b"api.close.com")),
        (
            "ietf-draft-08",
            IETF_DRAFT_08,
            Profile::for_host(b"api.cloudflare.com"),
        ),
        ("github", GITHUB, Profile::for_host(b"api.github.com")),
    ];
    let mut group = c.benchmark_group("headers/parse");
    for (name, headers, profile) in cases {
        let options = ParseOptions::new().with_now(now).with_profile(profile);
        assert!(
            RateLimitInfo::parse(Some(200), headers.iter().copied(), &options)
                .limit()
                .is_some()
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                RateLimitInfo::parse(
                    black_box(Some(200)),
                    black_box(headers).iter().copied(),
                    black_box(&options),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
