//! The header parser on generated input: arbitrary bytes never panic and
//! stay within the documented bounds, and valid headers written in each
//! family read back as what was written.

use proptest::prelude::*;
use ratekeeper_core::headers::{Families, Format, MAX_COUNT, MAX_WAIT, QUOTA_CAPACITY, WARNING_CAPACITY};
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

/// Every name the parser knows and the families that select it, written
/// out from the documentation of [`Families`]: the model a selection is
/// checked against.
const FAMILY_OF: [(&str, u32); 65] = [
    ("date", Families::DATE),
    ("ratelimit", Families::IETF),
    ("ratelimit-policy", Families::IETF | Families::IETF_FIELDS),
    ("ratelimit-limit", Families::IETF_FIELDS),
    ("ratelimit-remaining", Families::IETF_FIELDS),
    ("ratelimit-reset", Families::IETF_FIELDS),
    ("ratelimit-observed", Families::IETF_FIELDS),
    ("ratelimit-resettime", Families::IETF_FIELDS),
    ("x-ratelimit-limit", Families::X_RATELIMIT),
    ("x-ratelimit-remaining", Families::X_RATELIMIT),
    ("x-ratelimit-used", Families::X_RATELIMIT),
    ("x-ratelimit-reset", Families::X_RATELIMIT),
    ("x-ratelimit-reset-after", Families::X_RATELIMIT),
    ("x-ratelimit-next", Families::X_RATELIMIT),
    ("x-ratelimit-max", Families::X_RATELIMIT),
    ("x-ratelimit-fillrate", Families::X_RATELIMIT),
    ("x-ratelimit-interval-seconds", Families::X_RATELIMIT),
    ("x-ratelimit-interval-milliseconds", Families::X_RATELIMIT),
    ("x-rate-limit", Families::X_RATE_LIMIT),
    ("x-rate-limit-limit", Families::X_RATE_LIMIT),
    ("x-rate-limit-remaining", Families::X_RATE_LIMIT),
    ("x-rate-limit-reset", Families::X_RATE_LIMIT),
    ("x-ratelimit-limit-daily", Families::GOHIGHLEVEL_DAILY),
    ("x-ratelimit-daily-remaining", Families::GOHIGHLEVEL_DAILY),
    ("x-hubspot-ratelimit-max", Families::HUBSPOT),
    ("x-hubspot-ratelimit-remaining", Families::HUBSPOT),
    ("x-hubspot-ratelimit-interval-milliseconds", Families::HUBSPOT),
    ("x-hubspot-ratelimit-daily", Families::HUBSPOT),
    ("x-hubspot-ratelimit-daily-remaining", Families::HUBSPOT),
    ("x-hubspot-ratelimit-secondly", Families::HUBSPOT),
    ("x-hubspot-ratelimit-secondly-remaining", Families::HUBSPOT),
    ("x-app-limit-24hour-limit", Families::X_24HOUR),
    ("x-app-limit-24hour-remaining", Families::X_24HOUR),
    ("x-app-limit-24hour-reset", Families::X_24HOUR),
    ("x-user-limit-24hour-limit", Families::X_24HOUR),
    ("x-user-limit-24hour-remaining", Families::X_24HOUR),
    ("x-user-limit-24hour-reset", Families::X_24HOUR),
    ("x-ratelimit-limit-requests", Families::OPENAI),
    ("x-ratelimit-remaining-requests", Families::OPENAI),
    ("x-ratelimit-reset-requests", Families::OPENAI),
    ("x-ratelimit-limit-tokens", Families::OPENAI),
    ("x-ratelimit-remaining-tokens", Families::OPENAI),
    ("x-ratelimit-reset-tokens", Families::OPENAI),
    ("anthropic-ratelimit-requests-limit", Families::ANTHROPIC),
    ("anthropic-ratelimit-requests-remaining", Families::ANTHROPIC),
    ("anthropic-ratelimit-requests-reset", Families::ANTHROPIC),
    ("anthropic-ratelimit-tokens-limit", Families::ANTHROPIC),
    ("anthropic-ratelimit-tokens-remaining", Families::ANTHROPIC),
    ("anthropic-ratelimit-tokens-reset", Families::ANTHROPIC),
    ("anthropic-ratelimit-input-tokens-limit", Families::ANTHROPIC),
    ("anthropic-ratelimit-input-tokens-remaining", Families::ANTHROPIC),
    ("anthropic-ratelimit-input-tokens-reset", Families::ANTHROPIC),
    ("anthropic-ratelimit-output-tokens-limit", Families::ANTHROPIC),
    ("anthropic-ratelimit-output-tokens-remaining", Families::ANTHROPIC),
    ("anthropic-ratelimit-output-tokens-reset", Families::ANTHROPIC),
    ("x-sib-ratelimit-limit", Families::BREVO),
    ("x-sib-ratelimit-remaining", Families::BREVO),
    ("x-sib-ratelimit-reset", Families::BREVO),
    ("x-shopify-shop-api-call-limit", Families::SHOPIFY),
    ("sforce-limit-info", Families::SALESFORCE),
    ("zendesk-ratelimit-tickets-index", Families::ZENDESK),
    ("retry-after", Families::RETRY_AFTER),
    ("x-ratelimit-retry-after", Families::VENDOR_RETRY_AFTER),
    ("x-ratelimit-retry", Families::VENDOR_RETRY_AFTER),
    ("requestlimit-default-retryafter", Families::VENDOR_RETRY_AFTER),
];

/// The families that select header `name` (none for an unknown name).
fn families_of(name: &[u8]) -> u32 {
    let name = name.trim_ascii();
    FAMILY_OF
        .iter()
        .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(name))
        .map_or(0, |&(_, families)| families)
}

/// `headers` with those of the families `selected` leaves out renamed to a
/// name no family has (so no header moves): what `parse` must read as
/// `parse_families` does with that selection.
fn only(headers: &[(Vec<u8>, Vec<u8>)], selected: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = if families_of(name) & selected != 0 {
                name.clone()
            } else {
                b"x-not-selected".to_vec()
            };
            (name, value.clone())
        })
        .collect()
}

/// A response: one family written as its server writes it, among
/// arbitrary headers (known names with arbitrary values included).
fn response() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    (
        0usize..9,
        stated(),
        proptest::collection::vec(header(), 0..8),
        0usize..9,
    )
        .prop_map(|(family, s, noise, at)| {
            let (written, _, _) = write(family, &s);
            let mut headers: Vec<(Vec<u8>, Vec<u8>)> = noise;
            let at = at.min(headers.len());
            for (offset, (name, value)) in written.into_iter().enumerate() {
                headers.insert(at + offset, (name.into_bytes(), value.into_bytes()));
            }
            headers
        })
}

/// What `parse_families::<F>` and `parse` of the selected headers give,
/// with the options and status of one case.
fn both<const F: u32>(
    headers: &[(Vec<u8>, Vec<u8>)],
    status: Option<u16>,
    options: &ParseOptions,
) -> (RateLimitInfo, RateLimitInfo) {
    fn pairs(h: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
        h.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect()
    }
    let selected = RateLimitInfo::parse_families::<F>(status, pairs(headers), options);
    let filtered = only(headers, F);
    let model = RateLimitInfo::parse(status, pairs(&filtered), options);
    (selected, model)
}

/// A value in a date or duration form, tagged with its [`Families`] form bit.
fn dated(now: u64, ahead: u64, which: usize) -> (String, String, u32) {
    match which {
        0 => (
            "Retry-After".into(),
            imf_fixdate(now + ahead),
            Families::HTTP_DATE,
        ),
        1 => (
            "RateLimit-Reset".into(),
            imf_fixdate(now + ahead).replacen(", ", "day, ", 1),
            Families::HTTP_DATE,
        ),
        2 => {
            // JavaScript: the IMF-fixdate's fields in `toString()` order.
            let imf = imf_fixdate(now + ahead);
            let w: Vec<&str> = imf.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            (
                "X-RateLimit-Reset".into(),
                format!(
                    "{} {} {} {} {} GMT+0000 (Coordinated Universal Time)",
                    w[0], w[2], w[1], w[3], w[4]
                ),
                Families::JS_DATE,
            )
        }
        3 => {
            let imf = imf_fixdate(now + ahead);
            let w: Vec<&str> = imf.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            let months = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let month = months.iter().position(|m| *m == w[2]).unwrap() + 1;
            (
                "RateLimit-ResetTime".into(),
                format!("{}-{month:02}-{}T{}Z", w[3], w[1], w[4]),
                Families::ISO_8601,
            )
        }
        4 => (
            "x-ratelimit-reset-tokens".into(),
            format!("{}m{}s", ahead / 60, ahead % 60),
            Families::GO_DURATION,
        ),
        _ => ("Date".into(), imf_fixdate(now), Families::HTTP_DATE),
    }
}

/// Names whose values can be read as a date or a duration.
fn reads_dates(name: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.trim_ascii();
    name == b"ratelimit"
        || name == b"date"
        || name.ends_with(b"reset")
        || name.ends_with(b"resettime")
        || name.ends_with(b"-next")
        || name.ends_with(b"reset-tokens")
        || name.ends_with(b"reset-requests")
        || families_of(name) & (Families::RETRY_AFTER | Families::VENDOR_RETRY_AFTER) != 0
}

/// A response whose dates and durations are known: every family's
/// headers, values in each form, and arbitrary headers whose names never
/// read a date.
fn dated_response() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>, u32)>> {
    (
        0usize..9,
        stated(),
        proptest::collection::vec((0usize..6, 0u64..200_000), 0..4),
        proptest::collection::vec(header(), 0..6),
    )
        .prop_map(|(family, s, forms, noise)| {
            let (written, _, _) = write(family, &s);
            let mut headers: Vec<(Vec<u8>, Vec<u8>, u32)> = written
                .into_iter()
                .map(|(name, value)| {
                    // The writers put dates in IMF-fixdate and OpenAI's
                    // resets in Go durations; every other value is numeric.
                    let form = if value.ends_with("GMT") {
                        Families::HTTP_DATE
                    } else if name.ends_with("-requests") && value.ends_with('s') {
                        Families::GO_DURATION
                    } else {
                        0
                    };
                    (name.into_bytes(), value.into_bytes(), form)
                })
                .collect();
            for (which, ahead) in forms {
                let (name, value, form) = dated(s.now_secs, ahead, which);
                headers.push((name.into_bytes(), value.into_bytes(), form));
            }
            for (name, value) in noise {
                if !reads_dates(&name) {
                    headers.push((name, value, 0));
                }
            }
            headers
        })
}

/// Checks that a selection of every family and the value forms `F` holds
/// reads `headers` as `parse` reads them with each value in a form `F`
/// leaves out prefixed with `x` (no date, and no number: ignored with the
/// same warning, and still distinct from other values for the conflict
/// rule), since no reader of a form left out is linked.
fn check_forms<const F: u32>(headers: &[(Vec<u8>, Vec<u8>, u32)], options: &ParseOptions) {
    let pairs: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(n, v, _)| (n.as_slice(), v.as_slice()))
        .collect();
    let model: Vec<(&[u8], Vec<u8>)> = headers
        .iter()
        .map(|(n, v, form)| {
            let kept = *form == 0 || form & F != 0;
            let value = if kept { v.clone() } else { [&b"x"[..], v].concat() };
            (n.as_slice(), value)
        })
        .collect();
    assert_eq!(
        RateLimitInfo::parse_families::<F>(Some(429), pairs, options),
        RateLimitInfo::parse(Some(429), model.iter().map(|(n, v)| (*n, v.as_slice())), options),
        "{F:#x}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_family_selected_is_parse(
        headers in response(),
        status in proptest::option::of(any::<u16>()),
        now in proptest::option::of(any::<u64>()),
    ) {
        let options = now.map_or(ParseOptions::new(), |now| ParseOptions::new().with_now(UnixTime::from_nanos(now)));
        let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        let full = RateLimitInfo::parse(status, pairs.iter().copied(), &options);
        prop_assert_eq!(RateLimitInfo::parse_families::<{ Families::ALL }>(status, pairs.iter().copied(), &options), full);
        // Bits no family uses change nothing.
        prop_assert_eq!(RateLimitInfo::parse_families::<{ u32::MAX }>(status, pairs.iter().copied(), &options), full);
    }

    #[test]
    fn a_result_read_in_place_is_the_result_returned(
        headers in response(),
        status in proptest::option::of(any::<u16>()),
        now in proptest::option::of(any::<u64>()),
    ) {
        const READ: u32 = Families::IETF | Families::RETRY_AFTER;
        let options = now.map_or(ParseOptions::new(), |now| ParseOptions::new().with_now(UnixTime::from_nanos(now)));
        let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        let full = RateLimitInfo::parse(status, pairs.iter().copied(), &options);
        let read = RateLimitInfo::parse_families_with::<{ Families::ALL }, _>(status, pairs.iter().copied(), &options, |info| *info);
        prop_assert_eq!(read, full);
        let selected = RateLimitInfo::parse_families::<READ>(status, pairs.iter().copied(), &options);
        let read = RateLimitInfo::parse_families_with::<READ, _>(status, pairs.iter().copied(), &options, |info| *info);
        prop_assert_eq!(read, selected);
    }

    #[test]
    fn a_selection_reads_what_parse_reads_of_its_families(
        headers in response(),
        status in proptest::option::of(any::<u16>()),
        now in proptest::option::of(any::<u64>()),
        host in proptest::sample::select(&["", "api.github.com", "api.prisjakt.nu", "api.close.com"][..]),
    ) {
        let mut options = ParseOptions::new().with_profile(Profile::for_host(host.as_bytes()));
        if let Some(now) = now {
            options = options.with_now(UnixTime::from_nanos(now));
        }
        const FORMS: u32 = Families::ALL_FORMS;
        let (a, b) = both::<{ Families::IETF | FORMS }>(&headers, status, &options);
        prop_assert_eq!(a, b);
        let (a, b) = both::<{ Families::IETF_FIELDS | Families::X_RATELIMIT | Families::DATE | FORMS }>(&headers, status, &options);
        prop_assert_eq!(a, b);
        let (a, b) = both::<{ (Families::ALL_FAMILIES & !Families::DATE) | FORMS }>(&headers, status, &options);
        prop_assert_eq!(a, b);
        let (a, b) = both::<{
            Families::X_RATE_LIMIT | Families::OPENAI | Families::SHOPIFY | Families::SALESFORCE
                | Families::ZENDESK | Families::VENDOR_RETRY_AFTER | Families::RETRY_AFTER | Families::DATE | FORMS
        }>(&headers, status, &options);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a_form_left_out_is_malformed(headers in dated_response(), now in proptest::option::of(1_000_000_000u64..4_000_000_000)) {
        let options = now.map_or(ParseOptions::new(), |now| ParseOptions::new().with_now(UnixTime::from_secs(now)));
        check_forms::<{ Families::ALL_FAMILIES }>(&headers, &options);
        check_forms::<{ Families::ALL_FAMILIES | Families::HTTP_DATE }>(&headers, &options);
        check_forms::<{ Families::ALL_FAMILIES | Families::JS_DATE | Families::ISO_8601 }>(&headers, &options);
        check_forms::<{ Families::ALL_FAMILIES | Families::GO_DURATION }>(&headers, &options);
        check_forms::<{ Families::ALL }>(&headers, &options);
    }

    #[test]
    fn the_firmware_selection_reads_its_families_in_seconds(headers in dated_response(), noise in response()) {
        // `RateLimit` and `RateLimit-Policy`, `Retry-After`, no date form.
        const READ: u32 = Families::IETF | Families::RETRY_AFTER;
        let mut headers: Vec<(Vec<u8>, Vec<u8>, u32)> = headers
            .into_iter()
            .filter(|(name, _, _)| families_of(name) & READ != 0)
            .collect();
        headers.extend(
            noise
                .iter()
                .filter(|(n, _)| families_of(n) & READ != 0 && !reads_dates(n))
                .map(|(n, v)| (n.clone(), v.clone(), 0)),
        );
        check_forms::<READ>(&headers, &ParseOptions::new());
        // And the headers of other families change nothing.
        let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v, _)| (n.as_slice(), v.as_slice())).collect();
        let mut more = pairs.clone();
        more.extend(noise.iter().filter(|(n, _)| families_of(n) & READ == 0).map(|(n, v)| (n.as_slice(), v.as_slice())));
        // (Appended, they move no header's position.)
        prop_assert_eq!(
            RateLimitInfo::parse_families::<READ>(Some(429), pairs, &ParseOptions::new()),
            RateLimitInfo::parse_families::<READ>(Some(429), more, &ParseOptions::new())
        );
    }
}
