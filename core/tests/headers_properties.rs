//! The header parser on generated input: arbitrary bytes never panic and
//! stay within the documented bounds, and valid headers written in each
//! family read back as what was written.

use proptest::prelude::*;
use ratekeeper_core::headers::{Format, MAX_COUNT, MAX_WAIT, QUOTA_CAPACITY, WARNING_CAPACITY};
use ratekeeper_core::{Nanos, ParseOptions, Profile, RateLimitInfo, UnixTime};

const CASES: u32 = 10_000;

/// Names the parser knows, so that arbitrary values reach every reader.
const KNOWN: [&str; 24] = [
    "date",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-resettime",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-next",
    "x-ratelimit-fillrate",
    "x-ratelimit-interval-seconds",
    "x-rate-limit",
    "x-rate-limit-reset",
    "x-ratelimit-reset-tokens",
    "x-shopify-shop-api-call-limit",
    "sforce-limit-info",
    "zendesk-ratelimit-tickets-index",
    "requestlimit-default-retryafter",
    "x-hubspot-ratelimit-secondly",
];

fn header() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        proptest::sample::select(&KNOWN[..]).prop_map(|n| n.as_bytes().to_vec()),
    ];
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        // Bytes from the grammar's alphabet find the deeper paths.
        proptest::collection::vec(
            proptest::sample::select(&b"0123456789.,;=:-\"/ ()TZ+qrwtlimitreseGMTNov"[..]),
            0..48
        ),
    ];
    (name, value)
}

fn check_bounds(info: &RateLimitInfo) {
    assert!(info.quotas().len() <= QUOTA_CAPACITY);
    assert!(info.warnings().len() <= WARNING_CAPACITY);
    for quota in info.quotas() {
        assert!(quota.limit.is_none_or(|l| l <= MAX_COUNT));
        assert!(
            quota
                .remaining
                .is_none_or(|r| r <= MAX_COUNT && quota.limit.is_none_or(|l| r <= l))
        );
        assert!(quota.reset_after.is_none_or(|t| t <= MAX_WAIT));
        assert!(quota.window.is_none_or(|t| t <= MAX_WAIT));
    }
    assert!(info.retry_after().is_none_or(|t| t <= MAX_WAIT));
    assert_eq!(info.governing().is_some(), !info.quotas().is_empty());
}

/// What one generated response says.
#[derive(Debug, Clone)]
struct Stated {
    limit: u64,
    remaining: u64,
    reset_secs: u64,
    window_secs: u64,
    now_secs: u64,
}

fn stated() -> impl Strategy<Value = Stated> {
    (
        1u64..1_000_000_000,
        0u64..=100,
        0u64..86_400,
        1u64..86_400,
        1_000_000_000u64..4_000_000_000,
    )
        .prop_map(|(limit, share, reset_secs, window_secs, now_secs)| Stated {
            limit,
            remaining: limit / 100 * share,
            reset_secs,
            window_secs,
            now_secs,
        })
}

/// An IMF-fixdate for unix seconds `secs`, written independently of the
/// parser (civil-from-days).
fn imf_fixdate(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {name} {year} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The response written in family `family`, and the format it should read as.
fn write(family: usize, s: &Stated) -> (Vec<(String, String)>, Format, bool) {
    let Stated {
        limit,
        remaining,
        reset_secs: reset,
        window_secs: window,
        now_secs: now,
    } = *s;
    let h = |n: &str, v: String| (n.to_string(), v);
    match family {
        0 => (
            vec![h(
                "RateLimit",
                format!("limit={limit}; remaining={remaining}; reset={reset}"),
            )],
            Format::Close,
            false,
        ),
        1 => (
            vec![
                h(
                    "RateLimit",
                    format!("limit={limit}, remaining={remaining}, reset={reset}"),
                ),
                h("RateLimit-Policy", format!("{limit};w={window}")),
            ],
            Format::IetfDictionary,
            true,
        ),
        2 => (
            vec![
                h("RateLimit-Policy", format!("\"p\";q={limit};w={window}")),
                h("RateLimit", format!("\"p\";r={remaining};t={reset}")),
            ],
            Format::IetfList,
            true,
        ),
        3 => (
            vec![
                h("RateLimit-Limit", format!("{limit}, {limit};w={window}")),
                h("RateLimit-Remaining", remaining.to_string()),
                h("RateLimit-Reset", reset.to_string()),
            ],
            Format::IetfFields,
            true,
        ),
        4 => (
            vec![
                h("Date", imf_fixdate(now)),
                h("X-RateLimit-Limit", limit.to_string()),
                h("X-RateLimit-Remaining", remaining.to_string()),
                h("X-RateLimit-Reset", (now + reset).to_string()),
            ],
            Format::XRateLimit,
            false,
        ),
        5 => (
            vec![
                h("x-rate-limit-limit", limit.to_string()),
                h("x-rate-limit-remaining", format!("{remaining}.0")),
                h("x-rate-limit-reset", imf_fixdate(now + reset)),
                h("date", imf_fixdate(now)),
            ],
            Format::XRateLimitDashed,
            false,
        ),
        6 => (
            vec![
                h("X-RateLimit-Used", (limit - remaining).to_string()),
                h("X-RateLimit-Remaining", remaining.to_string()),
                h("X-RateLimit-Reset-After", format!("{reset}.000")),
            ],
            Format::XRateLimit,
            false,
        ),
        7 => (
            vec![
                h("x-ratelimit-limit-requests", limit.to_string()),
                h("x-ratelimit-remaining-requests", remaining.to_string()),
                h(
                    "x-ratelimit-reset-requests",
                    format!("{}m{}s", reset / 60, reset % 60),
                ),
            ],
            Format::OpenAi,
            false,
        ),
        _ => (
            vec![h(
                "zendesk-ratelimit-tickets-index",
                format!("total={limit}; remaining={remaining}; resets={reset}"),
            )],
            Format::Zendesk,
            false,
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_headers_never_panic_and_stay_bounded(
        headers in proptest::collection::vec(header(), 0..12),
        status in proptest::option::of(any::<u16>()),
        now in any::<u64>(),
        host in proptest::sample::select(&["", "api.github.com", "api.prisjakt.nu", "openrouter.ai", "api.close.com"][..]),
    ) {
        let pairs = headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
        let options = ParseOptions::new().with_now(UnixTime::from_nanos(now)).with_profile(Profile::for_host(host.as_bytes()));
        check_bounds(&RateLimitInfo::parse(status, pairs.clone(), &options));
        check_bounds(&RateLimitInfo::parse(status, pairs, &ParseOptions::new()));
    }

    #[test]
    fn valid_headers_round_trip_in_every_family(family in 0usize..9, s in stated()) {
        let (headers, format, has_window) = write(family, &s);
        let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let info = RateLimitInfo::parse(Some(200), pairs, &ParseOptions::new());
        prop_assert!(info.warnings().is_empty(), "{:?} {:?}", headers, info.warnings());
        prop_assert_eq!(info.format(), Some(format));
        prop_assert_eq!(info.limit(), Some(s.limit));
        prop_assert_eq!(info.remaining(), Some(s.remaining));
        prop_assert_eq!(info.reset_after(), Some(Nanos::from_secs(s.reset_secs)));
        prop_assert_eq!(info.window(), has_window.then(|| Nanos::from_secs(s.window_secs)));
    }

    #[test]
    fn retry_after_round_trips_as_seconds_and_as_a_date(now in 1_000_000_000u64..4_000_000_000, delay in 0u64..100_000) {
        let date = imf_fixdate(now);
        let later = imf_fixdate(now + delay);
        let delay_text = delay.to_string();
        for value in [delay_text.as_str(), later.as_str()] {
            let headers: [(&[u8], &[u8]); 2] = [(b"Date", date.as_bytes()), (b"Retry-After", value.as_bytes())];
            let info = RateLimitInfo::parse(Some(429), headers, &ParseOptions::new());
            prop_assert_eq!(info.retry_after(), Some(Nanos::from_secs(delay)));
            prop_assert!(info.retry_after_applies());
        }
    }

    #[test]
    fn the_governing_quota_is_closest_to_exhaustion(a in stated(), b in stated()) {
        let policy = format!("\"a\";q={};w=1, \"b\";q={};w=2", a.limit, b.limit);
        let items = format!("\"a\";r={}, \"b\";r={}", a.remaining, b.remaining);
        let headers: [(&[u8], &[u8]); 2] = [(b"RateLimit-Policy", policy.as_bytes()), (b"RateLimit", items.as_bytes())];
        let info = RateLimitInfo::parse(Some(200), headers, &ParseOptions::new());
        let governing = info.governing().unwrap();
        for quota in info.quotas() {
            let (r, l) = (u128::from(quota.remaining.unwrap()), u128::from(quota.limit.unwrap()));
            let (gr, gl) = (u128::from(governing.remaining.unwrap()), u128::from(governing.limit.unwrap()));
            prop_assert!(gr * l <= r * gl);
        }
    }
}
