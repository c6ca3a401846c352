//! The header parser against its earlier form (`headers_model`), response
//! for response: over hostile bytes and realistic headers of every family,
//! with and without a wall clock, under every provider profile's unit
//! rule, the parser and its model must read the same quotas, governing
//! quota, retry-after, date and warnings, both reading everything and
//! reading the selections a build makes (the firmware's among them).

mod headers_model;

use proptest::prelude::*;
use ratekeeper_core::headers::Families;
use ratekeeper_core::{ParseOptions, Profile, RateLimitInfo, UnixTime};

const CASES: u32 = 10_000;

/// Every name the parser knows, and a few it does not.
const NAMES: [&str; 40] = [
    "date",
    "Date",
    "retry-after",
    "Retry-After",
    "ratelimit",
    "RateLimit",
    "ratelimit-policy",
    "RateLimit-Policy",
    " ratelimit ",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-observed",
    "ratelimit-resettime",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-next",
    "x-ratelimit-max",
    "x-ratelimit-fillrate",
    "x-ratelimit-interval-seconds",
    "x-ratelimit-interval-milliseconds",
    "x-rate-limit",
    "x-rate-limit-limit",
    "x-rate-limit-reset",
    "x-ratelimit-limit-daily",
    "x-hubspot-ratelimit-secondly",
    "x-app-limit-24hour-reset",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-tokens-remaining",
    "x-sib-ratelimit-limit",
    "x-shopify-shop-api-call-limit",
    "sforce-limit-info",
    "zendesk-ratelimit-tickets-index",
    "x-ratelimit-retry-after",
    "x-ratelimit-retry",
    "requestlimit-default-retryafter",
    "content-type",
];

/// Values in the forms servers write, and near misses of them.
const VALUES: [&str; 44] = [
    "limit=16, remaining=15, reset=1",
    "limit=16; remaining=15; reset=1",
    "LIMIT=160;Remaining=159; Reset=8",
    "limit=10, remaining=20, reset=1700000000",
    "limit=5, remaining=1, reset=1700000000000",
    "limit=5;remaining=x;reset=-1",
    "limit=99999999999999999999999, reset=1.5",
    "limit=1;q=2, remaining=0;w=3",
    "\"default\";r=19;t=2",
    "\"default\";q=20;w=2",
    "\"burst\";q=100;w=60, \"day\";q=5000;w=86400",
    "\"burst\";r=50;t=30, \"day\";r=4000;t=40000",
    "\"burst\";r=50;t=30,,\"x\";r=1",
    "\"a\";q=10;w=1;qu=\"requests\", \"b\";q=5;qu=\"bytes\";window=9",
    "\"a\";r=1;t=99999999999, \"b\";r=-1",
    "100;w=10",
    "10;w=1, 10;w=60",
    "100, 100;w=10",
    "100, 100;window=60, 10000;window=86400",
    "100;w=10, 200;w=20, 300;w=30, 400;w=40, 500;w=50, 600;w=60, 700;w=70, 800;w=80, 900;w=90",
    "\"x\";q=abc",
    ":AQ==:;r=1",
    "default;r=3;t=1",
    "1",
    " 2.0 ",
    "-1",
    "1.",
    "0.000000001",
    "31622401",
    "99999999999999999999",
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
    "Tue, 14 Nov 2023 22:13:20 GMT",
    "Mon Jan 01 2024 12:00:00 GMT+0100 (Central European Standard Time)",
    "2023-11-14T22:14:20Z",
    "2024-01-01T12:00:00.5+01:00",
    "6m0s",
    "12ms",
    "1700000060",
    "1700000060123",
    "32/40",
    "api-usage=18/5000; per-app-api-usage=17/250(appName=x)",
    "total=100; remaining=99; resets=41",
];

/// A number as servers write them, and as they should not.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..=30).prop_map(|n| n.to_string()),
        2 => (0u64..=100_000).prop_map(|n| n.to_string()),
        1 => (0u64..=99, 0u64..=999).prop_map(|(w, f)| format!("{w}.{f}")),
        1 => proptest::sample::select(&[
            "-1", "1.", "x", "", " 7 ", "1700000000", "1700000000000", "31622400", "31622401",
            "99999999999999999999", "1000000000000", "1000000000001", "0.5", "+3", "2.000000000123",
        ][..]).prop_map(str::to_owned),
    ]
}

/// A draft-08 List member (policy or item) or a draft-07/Close key, with
/// parameters, in the spellings servers use and some they should not.
fn member() -> impl Strategy<Value = String> {
    let head = prop_oneof![
        4 => proptest::sample::select(&["\"default\"", "\"burst\"", "\"day\"", "\"a;b\""][..])
            .prop_map(str::to_owned),
        1 => proptest::sample::select(&["default", "*x", ":AQ==:", "?1", "\"open", ""][..]).prop_map(str::to_owned),
        2 => number(),
        3 => (proptest::sample::select(&["limit", "remaining", "reset", "LIMIT", "Reset", "reset "][..]), number())
            .prop_map(|(k, v)| format!("{k}={v}")),
    ];
    let param = (
        proptest::sample::select(&["q", "w", "r", "t", "qu", "window", "Q", "W", "R", "T", "pk", "x", "limit", "remaining", "reset"][..]),
        prop_oneof![
            4 => number(),
            1 => proptest::sample::select(&["\"requests\"", "\"bytes\"", "requests", " \"requests\" ", " requests", ":AQ==:"][..]).prop_map(str::to_owned),
        ],
        any::<bool>(),
    )
        .prop_map(|(k, v, bare)| if bare && v.is_empty() { k.to_owned() } else { format!("{k}={v}") });
    (head, proptest::collection::vec(param, 0..4), any::<bool>()).prop_map(|(head, params, spaced)| {
        let mut member = head;
        for param in params {
            member.push_str(if spaced { "; " } else { ";" });
            member.push_str(&param);
        }
        member
    })
}

/// A structured value: members joined as a List or Dictionary is.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(member(), 1..5),
        proptest::sample::select(&[", ", ",", " , ", ",,", "; "][..]),
    )
        .prop_map(|(members, separator)| members.join(separator).into_bytes())
}

/// A value: one written by a server, one spliced from server tokens, or
/// arbitrary bytes.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        proptest::sample::select(&VALUES[..]).prop_map(|v| v.as_bytes().to_vec()),
        proptest::collection::vec(
            proptest::sample::select(&b"0123456789.,;=:-\"\\/ ()TZ+qrwtlimitreseGMTNovdfau*"[..]),
            0..12
        ),
    ];
    prop_oneof![
        4 => proptest::sample::select(&VALUES[..]).prop_map(|v| v.as_bytes().to_vec()),
        6 => structured(),
        3 => proptest::collection::vec(token, 1..4).prop_map(|parts| parts.concat()),
        2 => proptest::collection::vec(
            proptest::sample::select(&b"0123456789.,;=:-\"\\/ ()TZ+qrwtlimitreseGMTNov"[..]),
            0..48
        ),
        1 => proptest::collection::vec(any::<u8>(), 0..48),
    ]
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::sample::select(&NAMES[..8]).prop_map(|n| n.as_bytes().to_vec()),
        6 => proptest::sample::select(&NAMES[..]).prop_map(|n| n.as_bytes().to_vec()),
        2 => proptest::sample::select(&NAMES[..]).prop_map(|n| n.to_ascii_uppercase().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

/// A response: mostly a few headers, sometimes more than the parser keeps.
fn headers() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop_oneof![
        8 => proptest::collection::vec((name(), value()), 0..8),
        1 => proptest::collection::vec((name(), value()), 8..40),
    ]
}

/// The options and the model's copy of them.
fn options() -> impl Strategy<Value = (ParseOptions, headers_model::ParseOptions)> {
    let host = proptest::sample::select(
        &[
            "example.org",
            "api.close.com",
            "api.github.com",
            "prisjakt.nu",
            "openrouter.ai",
            "reddit.com",
        ][..],
    );
    let now = prop_oneof![
        Just(None),
        (1_000_000_000u64..2_000_000_000).prop_map(Some),
        Just(Some(0u64)),
        any::<u64>().prop_map(Some),
    ];
    (host, now, any::<bool>()).prop_map(|(host, now, fixed)| {
        let profile = Profile::for_host(host.as_bytes());
        let mut options = ParseOptions::new().with_profile(profile);
        let now = now.map(UnixTime::from_secs);
        if let Some(now) = now {
            options = if fixed {
                options.with_fixed_now(now)
            } else {
                options.with_now(now)
            };
        }
        let model = headers_model::ParseOptions {
            now,
            now_overrides_date: now.is_some() && fixed,
            profile,
        };
        (options, model)
    })
}

/// The parser and the model read `headers` alike with selection `F`, and
/// `parse_families_with` reads them as `parse_families` does.
fn same<const F: u32>(
    status: Option<u16>,
    headers: &[(&[u8], &[u8])],
    options: &ParseOptions,
    model_options: &headers_model::ParseOptions,
) -> Result<(), TestCaseError> {
    let info = RateLimitInfo::parse_families::<F>(status, headers.iter().copied(), options);
    let model = headers_model::parse::<F>(status, headers.iter().copied(), model_options);
    prop_assert_eq!(info.status(), model.status, "status, selection {:#x}", F);
    prop_assert_eq!(info.quotas(), model.quotas(), "quotas, selection {:#x}", F);
    let governing = model.governing.map(|at| model.quotas[usize::from(at)]);
    prop_assert_eq!(info.governing(), governing, "governing, selection {:#x}", F);
    prop_assert_eq!(
        info.retry_after(),
        model.retry_after,
        "retry-after, selection {:#x}",
        F
    );
    prop_assert_eq!(info.date(), model.date, "date, selection {:#x}", F);
    prop_assert_eq!(info.warnings(), model.warnings(), "warnings, selection {:#x}", F);
    prop_assert_eq!(
        info.warnings_dropped(),
        model.warnings_dropped(),
        "dropped, selection {:#x}",
        F
    );
    let with =
        RateLimitInfo::parse_families_with::<F, _>(status, headers.iter().copied(), options, |read| *read);
    prop_assert_eq!(with, info, "parse_families_with, selection {:#x}", F);
    Ok(())
}

const FIRMWARE: u32 = Families::IETF | Families::RETRY_AFTER;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_selection_reads_as_the_model(
        status in prop_oneof![Just(None), Just(Some(200u16)), Just(Some(429)), Just(Some(503))],
        headers in headers(),
        (options, model) in options(),
    ) {
        let headers: Vec<(&[u8], &[u8])> =
            headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        let info = RateLimitInfo::parse(status, headers.iter().copied(), &options);
        prop_assert_eq!(info, RateLimitInfo::parse_families::<{ Families::ALL }>(status, headers.iter().copied(), &options));
        same::<{ Families::ALL }>(status, &headers, &options, &model)?;
        same::<FIRMWARE>(status, &headers, &options, &model)?;
        same::<{ Families::IETF }>(status, &headers, &options, &model)?;
        same::<{ Families::RETRY_AFTER }>(status, &headers, &options, &model)?;
        same::<{ FIRMWARE | Families::DATE | Families::HTTP_DATE }>(status, &headers, &options, &model)?;
        same::<{ Families::IETF | Families::IETF_FIELDS | Families::X_RATELIMIT }>(status, &headers, &options, &model)?;
        same::<{ Families::ALL_FAMILIES }>(status, &headers, &options, &model)?;
        same::<{ Families::ALL & !Families::IETF }>(status, &headers, &options, &model)?;
    }
}
