//! The header parser against every provider and family in ratekeeper's
//! reference notes on rate-limit headers. Each test names its source: the
//! provider's documentation, a specification, or a recorded response.

use ratekeeper_core::Nanos;
use ratekeeper_core::headers::{
    Format, MAX_COUNT, MAX_WAIT, ParseOptions, Profile, QuotaUnit, RateLimitInfo, UnixTime, WarningKind,
};

fn parse_with(status: u16, headers: &[(&str, &str)], options: &ParseOptions) -> RateLimitInfo {
    RateLimitInfo::parse(
        Some(status),
        headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        options,
    )
}

fn parse(status: u16, headers: &[(&str, &str)]) -> RateLimitInfo {
    parse_with(status, headers, &ParseOptions::new())
}

fn secs(s: u64) -> Option<Nanos> {
    Some(Nanos::from_secs(s))
}

fn ms(m: u64) -> Option<Nanos> {
    Some(Nanos::from_millis(m))
}

fn kinds(info: &RateLimitInfo) -> Vec<WarningKind> {
    info.warnings().iter().map(|w| w.kind).collect()
}

// --- Close -----------------------------------------------------------------

#[test]
fn close_observed_semicolon_form_mailerautomation_plan_599cea1() {
    // whiteboard-geeks/MailerAutomation plan.md @599cea1: /api/v1/me/ and /api/v1/data/search/.
    let info = parse(200, &[("ratelimit", "limit=160; remaining=159; reset=8")]);
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(160), Some(159), secs(8))
    );
    assert_eq!(info.format(), Some(Format::Close));
    let info = parse(200, &[("RateLimit", "limit=16; remaining=14; reset=1")]);
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(16), Some(14), secs(1))
    );
    assert!(info.warnings().is_empty());
}

#[test]
fn close_official_client_comma_form_closeio_api_48d1503() {
    // closeio/closeio-api 48d1503 tests send "limit=100, remaining=0, reset=1";
    // MailerAutomation tests/utils/close_api.py:76 claims "limit=240, remaining=238, reset=8".
    let info = parse(429, &[("RateLimit", "limit=100, remaining=0, reset=1")]);
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(100), Some(0), secs(1))
    );
    let host = ParseOptions::new().with_profile(Profile::for_host(b"api.close.com"));
    let info = parse_with(200, &[("ratelimit", "remaining=238, reset=8, limit=240")], &host);
    assert_eq!(
        (info.limit(), info.remaining(), info.format()),
        (Some(240), Some(238), Some(Format::Close))
    );
}

// --- IETF drafts -----------------------------------------------------------

#[test]
fn ietf_draft_01_limit_with_quota_policies() {
    // draft-ietf-httpapi-ratelimit-headers-01: RateLimit-Limit = expiring-limit [, 1#quota-policy].
    let info = parse(
        200,
        &[
            ("RateLimit-Limit", "100, 100;w=10"),
            ("RateLimit-Remaining", "50"),
            ("RateLimit-Reset", "5"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after(), info.window()),
        (Some(100), Some(50), secs(5), secs(10))
    );
    assert_eq!(info.format(), Some(Format::IetfFields));
}

#[test]
fn ietf_draft_03_mixed_casing_and_429_with_remaining() {
    // draft-03 examples mix RateLimit-Remaining and Ratelimit-Remaining; a 429 has remaining=15, Retry-After: 20.
    let info = parse(
        429,
        &[
            ("Ratelimit-Limit", "100"),
            ("RATELIMIT-REMAINING", "15"),
            ("ratelimit-reset", "40"),
            ("Retry-After", "20"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(100), Some(15), secs(40))
    );
    assert_eq!(info.retry_after(), secs(20));
    assert!(info.retry_after_applies());
}

#[test]
fn ietf_draft_06_policy_field_and_its_invalid_example() {
    // draft-06: RateLimit-Policy: 100;w=10 joins by quota value; "10;w=1, 10;w=60" is INVALID.
    let info = parse(
        200,
        &[
            ("RateLimit-Limit", "100"),
            ("RateLimit-Remaining", "1"),
            ("RateLimit-Policy", "100;w=10"),
        ],
    );
    assert_eq!(info.window(), secs(10));
    let info = parse(
        200,
        &[
            ("RateLimit-Limit", "10"),
            ("RateLimit-Remaining", "1"),
            ("RateLimit-Policy", "10;w=1, 10;w=60"),
        ],
    );
    assert_eq!((info.limit(), info.window()), (Some(10), None));
    assert!(kinds(&info).contains(&WarningKind::AmbiguousPolicy));
}

#[test]
fn ietf_draft_07_dictionary_with_policy() {
    // draft-07: RateLimit SF Dictionary (limit, remaining, reset); parameters on values MUST be ignored.
    let info = parse(
        200,
        &[
            ("RateLimit", "limit=100, remaining=50, reset=5"),
            ("RateLimit-Policy", "100;w=10, 1000;w=3600"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after(), info.window()),
        (Some(100), Some(50), secs(5), secs(10))
    );
    assert_eq!(info.format(), Some(Format::IetfDictionary));
    // The other policy is a quota of its own, with nothing known of what remains.
    assert_eq!(info.quotas().len(), 2);
    assert_eq!(info.quotas()[1].limit, Some(1000));
    let info = parse(
        200,
        &[("RateLimit", "limit=100;w=10, remaining=50;foo=bar, reset=5")],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(100), Some(50), secs(5))
    );
}

#[test]
fn ietf_draft_08_to_10_named_items_split_across_lines() {
    // draft-08..10: RateLimit-Policy List of String items (q, qu, w, pk); RateLimit items (r, t, pk);
    // lists may be split across field lines; Retry-After MUST take precedence.
    let info = parse(
        429,
        &[
            ("RateLimit-Policy", "\"hour\";q=1000;w=3600;qu=\"requests\""),
            ("RateLimit-Policy", "\"day\";q=5000;w=86400;pk=:AQIDBA==:"),
            ("RateLimit", "\"day\";r=4000;t=400"),
            ("RateLimit", "\"hour\";r=10;t=20;pk=:AQIDBA==:"),
            ("Retry-After", "30"),
        ],
    );
    assert_eq!(info.format(), Some(Format::IetfList));
    // The hour policy is closest to exhaustion (10/1000 < 4000/5000).
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after(), info.window()),
        (Some(1000), Some(10), secs(20), secs(3600))
    );
    assert_eq!(info.quotas().len(), 2);
    assert_eq!(info.retry_after(), secs(30));
}

#[test]
fn ietf_draft_08_non_request_quota_units_do_not_govern() {
    // draft-08: qu="content-bytes" counts bytes, not requests.
    let info = parse(
        200,
        &[
            (
                "RateLimit-Policy",
                "\"b\";q=1000;qu=\"content-bytes\", \"r\";q=10",
            ),
            ("RateLimit", "\"b\";r=0, \"r\";r=9"),
        ],
    );
    assert_eq!((info.limit(), info.remaining()), (Some(10), Some(9)));
    assert_eq!(info.quotas()[0].unit, QuotaUnit::Other);
}

#[test]
fn draft_polli_00_imf_fixdate_reset_and_window_parameter() {
    // draft-polli-ratelimit-headers-00: RateLimit-Reset = delta-seconds / IMF-fixdate; parameter `window=`.
    let info = parse(
        200,
        &[
            ("Date", "Sun, 06 Nov 1994 08:49:00 GMT"),
            ("RateLimit-Limit", "10, 10;window=60"),
            ("RateLimit-Remaining", "3"),
            ("RateLimit-Reset", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ],
    );
    assert_eq!(
        (info.limit(), info.reset_after(), info.window()),
        (Some(10), secs(37), secs(60))
    );
}

// --- Providers -------------------------------------------------------------

#[test]
fn cloudflare_mismatched_policy_names_changelog_2025_09_03() {
    // developers.cloudflare.com/fundamentals/api/reference/limits: `"default";r=50;t=30` and `"burst";q=100;w=60`.
    let info = parse(
        200,
        &[
            ("Ratelimit", "\"default\";r=50;t=30"),
            ("Ratelimit-Policy", "\"burst\";q=100;w=60"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after(), info.window()),
        (Some(100), Some(50), secs(30), secs(60))
    );
    assert_eq!(kinds(&info), [WarningKind::PolicyNameMismatch]);
    // Changelog 2026-03-12: the 1015 error page sends Retry-After: 30.
    let info = parse(429, &[("Retry-After", "30")]);
    assert_eq!(
        (info.format(), info.retry_after()),
        (Some(Format::RetryAfter), secs(30))
    );
}

#[test]
fn github_epoch_reset_used_and_403_docs_rate_limits_for_the_rest_api() {
    // github/docs rate-limits-for-the-rest-api.md: x-ratelimit-reset "in UTC epoch seconds"; 403 or 429.
    let headers = [
        ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-used", "5000"),
        ("x-ratelimit-reset", "1700000060"),
        ("x-ratelimit-resource", "core"),
    ];
    let info = parse(403, &headers);
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(5000), Some(0), secs(60))
    );
    // Without a Date header, the given now is the reference.
    let options = ParseOptions::new()
        .with_now(UnixTime::from_secs(1_700_000_030))
        .with_profile(Profile::for_host(b"api.github.com"));
    let info = parse_with(403, &headers[1..], &options);
    assert_eq!(info.reset_after(), secs(30));
    // Secondary limits: "If the retry-after response header is present, ... that many seconds".
    let info = parse(403, &[("retry-after", "60")]);
    assert_eq!(info.retry_after(), secs(60));
}

#[test]
fn x_twitter_epoch_reset_and_24_hour_fields() {
    // docs.x.com/fundamentals/rate-limits; 24-hour names from node-twitter-api-v2 #495 and #553.
    let info = parse(
        429,
        &[
            ("date", "Tue, 16 Jan 2024 15:45:00 GMT"),
            ("x-rate-limit-limit", "900"),
            ("x-rate-limit-remaining", "847"),
            ("x-rate-limit-reset", "1705420800"),
            ("x-app-limit-24hour-limit", "1667"),
            ("x-app-limit-24hour-remaining", "0"),
            ("x-app-limit-24hour-reset", "1705500000"),
        ],
    );
    assert_eq!(info.quotas().len(), 2);
    assert_eq!(info.quotas()[0].reset_after, secs(900));
    // The spent 24-hour quota governs.
    assert_eq!(
        (info.format(), info.limit(), info.remaining(), info.window()),
        (Some(Format::X24Hour), Some(1667), Some(0), secs(86_400))
    );
}

#[test]
fn discord_fractional_epoch_reset_after_and_shared_429() {
    // discord-api-docs docs/topics/rate-limits.md: Reset 1470173023.123 (epoch), Reset-After 64.57 (float s),
    // and a 429 example with X-RateLimit-Remaining: 9 and Retry-After: 1337.
    let info = parse(
        429,
        &[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "9"),
            ("X-RateLimit-Reset", "1470173023.123"),
            ("X-RateLimit-Reset-After", "64.57"),
            ("X-RateLimit-Scope", "shared"),
            ("Retry-After", "1337"),
        ],
    );
    assert_eq!(
        (info.remaining(), info.reset_after(), info.retry_after()),
        (Some(9), ms(64_570), secs(1337))
    );
    let options = ParseOptions::new().with_now(UnixTime::from_secs(1_470_173_000));
    let info = parse_with(
        200,
        &[
            ("X-RateLimit-Limit", "5"),
            ("X-RateLimit-Remaining", "4"),
            ("X-RateLimit-Reset", "1470173023.123"),
        ],
        &options,
    );
    assert_eq!(info.reset_after(), ms(23_123));
}

#[test]
fn reddit_prawcore_cassettes_and_folded_values() {
    // prawcore VCR cassette 2021-06-09: remaining "599.0", reset "582", used "1".
    let options = ParseOptions::new().with_profile(Profile::for_host(b"oauth.reddit.com"));
    let info = parse_with(
        200,
        &[
            ("x-ratelimit-remaining", "599.0"),
            ("x-ratelimit-reset", "582"),
            ("x-ratelimit-used", "1"),
        ],
        &options,
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(600), Some(599), secs(582))
    );
    // 2021-05-24: a 429 with only retry-after: 4; 2021-05-25: a 429 with nothing.
    assert_eq!(parse(429, &[("retry-after", "4")]).retry_after(), secs(4));
    let info = parse(429, &[("content-type", "text/html")]);
    assert_eq!(
        (info.format(), info.retry_after(), info.quotas().len()),
        (None, None, 0)
    );
    // prawcore#173: "could not convert string to float: '991, 98'": a folded repeat is ignored.
    let info = parse(
        200,
        &[("x-ratelimit-remaining", "991, 98"), ("x-ratelimit-used", "9")],
    );
    assert_eq!(info.remaining(), None);
    assert_eq!(kinds(&info), [WarningKind::Malformed]);
    // The same repeat on two lines.
    let info = parse(
        200,
        &[
            ("x-ratelimit-remaining", "991"),
            ("X-Ratelimit-Remaining", "98"),
            ("x-ratelimit-used", "9"),
        ],
    );
    assert_eq!(info.remaining(), None);
    assert_eq!(kinds(&info), [WarningKind::Conflicting]);
    // reddit-archive/reddit#1458: integer headers (2015).
    let info = parse(
        200,
        &[
            ("x-ratelimit-remaining", "59"),
            ("x-ratelimit-reset", "30"),
            ("x-ratelimit-used", "1"),
        ],
    );
    assert_eq!((info.limit(), info.remaining()), (Some(60), Some(59)));
}

#[test]
fn shopify_call_limit_ratio_and_decimal_retry_after() {
    // shopify.dev admin-rest rate limits: "X-Shopify-Shop-Api-Call-Limit: 32/40"; a 429 has "Retry-After: 2.0".
    let info = parse(200, &[("X-Shopify-Shop-Api-Call-Limit", "32/40")]);
    assert_eq!(
        (info.format(), info.limit(), info.remaining()),
        (Some(Format::Shopify), Some(40), Some(8))
    );
    let info = parse(
        429,
        &[("X-Shopify-Shop-Api-Call-Limit", "40/40"), ("Retry-After", "2.0")],
    );
    assert_eq!((info.remaining(), info.retry_after()), (Some(0), secs(2)));
}

#[test]
fn stripe_and_instantly_429_without_quota_headers() {
    // docs.stripe.com/rate-limits (no quota headers); Stripe-Rate-Limited-Reason is secondary and carries no quota.
    // developer.instantly.ai: a 429 with no documented headers.
    let info = parse(
        429,
        &[
            ("Stripe-Rate-Limited-Reason", "global-rate"),
            ("Request-Id", "req_123"),
        ],
    );
    assert_eq!(
        (info.format(), info.limit(), info.retry_after()),
        (None, None, None)
    );
    assert!(!info.retry_after_applies());
}

#[test]
fn okta_epoch_reset_rl_best_practices() {
    // developer.okta.com rl-best-practices: X-Rate-Limit-Reset is "UTC epoch time (in seconds)".
    let options = ParseOptions::new().with_now(UnixTime::from_secs(1_609_459_140));
    let info = parse_with(
        200,
        &[
            ("X-Rate-Limit-Limit", "1200"),
            ("X-Rate-Limit-Remaining", "1199"),
            ("X-Rate-Limit-Reset", "1609459200"),
        ],
        &options,
    );
    assert_eq!(
        (info.format(), info.limit(), info.remaining(), info.reset_after()),
        (Some(Format::XRateLimitDashed), Some(1200), Some(1199), secs(60))
    );
}

#[test]
fn zendesk_three_families_in_one_response() {
    // developer.zendesk.com rate limits: X-Rate-Limit: 700, X-Rate-Limit-Remaining: 699; ticket list endpoints add
    // ratelimit-* and zendesk-ratelimit-tickets-index: total=100; remaining=99; resets=41.
    let info = parse(
        200,
        &[
            ("X-Rate-Limit", "700"),
            ("X-Rate-Limit-Remaining", "699"),
            ("ratelimit-limit", "100"),
            ("ratelimit-remaining", "9"),
            ("ratelimit-reset", "41"),
            (
                "zendesk-ratelimit-tickets-index",
                "total=100; remaining=99; resets=41",
            ),
        ],
    );
    assert_eq!(info.quotas().len(), 3);
    assert_eq!(
        info.quotas()[2],
        ratekeeper_core::Quota {
            format: Format::Zendesk,
            unit: QuotaUnit::Requests,
            limit: Some(100),
            remaining: Some(99),
            reset_after: secs(41),
            window: None
        }
    );
    assert_eq!(
        (info.format(), info.remaining(), info.reset_after()),
        (Some(Format::IetfFields), Some(9), secs(41))
    );
    assert_eq!(parse(429, &[("Retry-After", "93")]).retry_after(), secs(93));
}

#[test]
fn hubspot_daily_and_secondly_changelog_2018_11_06() {
    // HubSpot changelog 2018-11-06; -Interval-Milliseconds/-Max/-Remaining from third-party client code.
    let info = parse(
        200,
        &[
            ("X-HubSpot-RateLimit-Daily", "250000"),
            ("X-HubSpot-RateLimit-Daily-Remaining", "1000"),
            ("X-HubSpot-RateLimit-Secondly", "10"),
            ("X-HubSpot-RateLimit-Secondly-Remaining", "9"),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"),
            ("X-HubSpot-RateLimit-Max", "100"),
            ("X-HubSpot-RateLimit-Remaining", "99"),
        ],
    );
    assert_eq!(info.quotas().len(), 3);
    // Daily: 1000/250000 is closest to exhaustion.
    assert_eq!(
        (info.format(), info.limit(), info.window()),
        (Some(Format::HubSpot), Some(250_000), secs(86_400))
    );
    assert_eq!(info.quotas()[1].window, secs(1));
    assert_eq!(info.quotas()[2].window, secs(10));
}

#[test]
fn gohighlevel_burst_and_daily_marketplace_docs() {
    // marketplace.gohighlevel.com/docs/other/rate-limits: 100 per 10 s burst, 200,000 daily.
    let info = parse(
        200,
        &[
            ("X-RateLimit-Limit-Daily", "200000"),
            ("X-RateLimit-Daily-Remaining", "199990"),
            ("X-RateLimit-Interval-Milliseconds", "10000"),
            ("X-RateLimit-Max", "100"),
            ("X-RateLimit-Remaining", "5"),
        ],
    );
    assert_eq!(
        (
            info.format(),
            info.limit(),
            info.remaining(),
            info.window(),
            info.reset_after()
        ),
        (Some(Format::XRateLimit), Some(100), Some(5), secs(10), None)
    );
    assert_eq!(info.quotas().len(), 2);
    assert_eq!(info.quotas()[1].window, secs(86_400));
}

#[test]
fn supabase_management_api_delta_seconds_reset() {
    // supabase _partials/api_rate_limits.mdx: X-RateLimit-Reset is "the number of seconds remaining".
    let info = parse(
        200,
        &[
            ("X-RateLimit-Limit", "120"),
            ("X-RateLimit-Remaining", "119"),
            ("X-RateLimit-Reset", "60"),
        ],
    );
    assert_eq!(info.reset_after(), secs(60));
}

#[test]
fn salesforce_limit_info_header_forms() {
    // Salesforce Limit Info Header: api-usage=18/5000; api-usage=10018/100000; api-bursts=1/750;
    // older per-app-api-usage=17/250(appName=sample-connected-app).
    let info = parse(200, &[("Sforce-Limit-Info", "api-usage=18/5000")]);
    assert_eq!(
        (info.format(), info.limit(), info.remaining()),
        (Some(Format::Salesforce), Some(5000), Some(4982))
    );
    let info = parse(
        200,
        &[("Sforce-Limit-Info", "api-usage=10018/100000; api-bursts=700/750")],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.quotas().len()),
        (Some(750), Some(50), 2)
    );
    let info = parse(
        200,
        &[(
            "Sforce-Limit-Info",
            "per-app-api-usage=17/250(appName=sample-connected-app)",
        )],
    );
    assert_eq!((info.limit(), info.remaining()), (Some(250), Some(233)));
}

#[test]
fn atlassian_jira_cloud_iso8601_reset_jraccloud_69262() {
    // JRACLOUD-69262: X-RateLimit-Reset is ISO 8601, yyyy-MM-ddTHH:mmZ.
    let info = parse(
        429,
        &[
            ("Date", "Mon, 01 Jan 2024 12:00:00 GMT"),
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "2024-01-01T12:01Z"),
            ("Retry-After", "60"),
            ("RateLimit-Reason", "jira-burst-based"),
            ("X-RateLimit-NearLimit", "true"),
        ],
    );
    assert_eq!((info.reset_after(), info.retry_after()), (secs(60), secs(60)));
}

#[test]
fn atlassian_data_center_token_bucket_and_retry_after_zero() {
    // confluence.atlassian.com conf87: -Limit, -Remaining, -Interval-Seconds, -FillRate; retry-after 0 with tokens left.
    let info = parse(
        200,
        &[
            ("X-RateLimit-Limit", "20"),
            ("X-RateLimit-Remaining", "19"),
            ("X-RateLimit-Interval-Seconds", "1"),
            ("X-RateLimit-FillRate", "2"),
            ("Retry-After", "0"),
        ],
    );
    // 20 tokens refilled 2 per second: a full bucket every 10 s.
    assert_eq!((info.limit(), info.window()), (Some(20), secs(10)));
    assert_eq!(info.retry_after(), Some(Nanos::ZERO));
    assert!(!info.retry_after_applies());
    // atlassian-python-api #1499/#1593/#1600: a Retry-After too large for time.sleep is clamped.
    let info = parse(503, &[("Retry-After", "99999999999999999999")]);
    assert_eq!(info.retry_after(), Some(MAX_WAIT));
    assert_eq!(kinds(&info), [WarningKind::Clamped]);
}

#[test]
fn gitlab_epoch_reset_under_the_ietf_name_gitlab_199738() {
    // gitlab-org/gitlab#199738 (and the doc example quoted in #217312).
    let info = parse(
        429,
        &[
            ("Date", "Thu, 30 Jan 2020 14:14:17 GMT"),
            ("RateLimit-Limit", "600"),
            ("RateLimit-Observed", "5"),
            ("RateLimit-Remaining", "595"),
            ("RateLimit-Reset", "1580393717"),
            ("RateLimit-ResetTime", "Thu, 30 Jan 2020 14:15:17 GMT"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(600), Some(595), secs(60))
    );
    // -ResetTime alone says the same.
    let info = parse(
        429,
        &[
            ("Date", "Thu, 30 Jan 2020 14:14:17 GMT"),
            ("RateLimit-Limit", "600"),
            ("RateLimit-ResetTime", "Thu, 30 Jan 2020 14:15:17 GMT"),
        ],
    );
    assert_eq!(info.reset_after(), secs(60));
}

#[test]
fn slack_retry_after_seconds_slack_ruby_client() {
    // slack-ruby-client: response.headers['retry-after'].to_i.
    let info = parse(429, &[("Retry-After", "30")]);
    assert!(info.retry_after_applies());
    assert_eq!(info.retry_after(), secs(30));
}

#[test]
fn rfc9110_retry_after_every_form() {
    // RFC 9110 Retry-After = HTTP-date / delay-seconds; recipients MUST accept all three date forms.
    let date = ("Date", "Sun, 06 Nov 1994 08:49:00 GMT");
    for value in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "37",
    ] {
        let info = parse(503, &[date, ("Retry-After", value)]);
        assert_eq!(info.retry_after(), secs(37), "{value}");
        assert!(info.retry_after_applies());
    }
    // Attio: Retry-After is always an HTTP-date, "usually the following second".
    let info = parse(429, &[("Retry-After", "Sun, 06 Nov 1994 08:49:01 GMT"), date]);
    assert_eq!(info.retry_after(), secs(1));
    // With no Date and no now, an HTTP-date cannot be read.
    let info = parse(429, &[("Retry-After", "Sun, 06 Nov 1994 08:49:01 GMT")]);
    assert_eq!(
        (info.retry_after(), kinds(&info)),
        (None, vec![WarningKind::NoReferenceTime])
    );
}

#[test]
fn openai_go_duration_resets_community_openai() {
    // community.openai.com: observed duration strings such as 12ms and 6m0s.
    let info = parse(
        200,
        &[
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-reset-requests", "12ms"),
            ("x-ratelimit-limit-tokens", "2000000"),
            ("x-ratelimit-remaining-tokens", "1000"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ],
    );
    // Tokens are nearly spent, but requests are what is paced.
    assert_eq!(
        (info.format(), info.remaining(), info.reset_after()),
        (Some(Format::OpenAi), Some(9999), ms(12))
    );
    assert_eq!(info.quotas()[1].reset_after, secs(360));
    assert_eq!(info.quotas()[1].unit, QuotaUnit::Tokens);
    let info = parse(
        200,
        &[
            ("x-ratelimit-limit-requests", "10"),
            ("x-ratelimit-remaining-requests", "1"),
            ("x-ratelimit-reset-requests", "2m30.5s"),
        ],
    );
    assert_eq!(info.reset_after(), ms(150_500));
}

#[test]
fn azure_openai_minus_one_and_rack_ratelimit_3_negative() {
    // learn.microsoft.com Q&A: -1 values; rack-ratelimit#3: remaining -1; flask-limiter#56: negative values.
    let info = parse(
        200,
        &[
            ("x-ratelimit-limit-requests", "-1"),
            ("x-ratelimit-remaining-requests", "-1"),
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "-1"),
            ("X-RateLimit-Reset", "-5"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.reset_after()),
        (Some(10), None, None)
    );
    assert!(kinds(&info).iter().all(|k| *k == WarningKind::Negative));
    assert_eq!(info.warnings().len(), 4);
}

#[test]
fn anthropic_rfc3339_resets_promptfoo_10322() {
    // promptfoo#10322 and MockServer docs: anthropic-ratelimit-*-reset in RFC 3339.
    let info = parse(
        200,
        &[
            ("date", "Mon, 01 Jan 2024 12:00:00 GMT"),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2024-01-01T12:00:01Z"),
            ("anthropic-ratelimit-input-tokens-limit", "40000"),
            ("anthropic-ratelimit-input-tokens-remaining", "100"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2024-01-01T12:00:30.500Z",
            ),
        ],
    );
    assert_eq!(
        (info.format(), info.limit(), info.reset_after()),
        (Some(Format::Anthropic), Some(50), secs(1))
    );
    assert_eq!(info.quotas()[1].reset_after, ms(30_500));
}

#[test]
fn openrouter_epoch_millisecond_reset_hermes_agent_96005() {
    // As claimed in hermes-agent#96005: reset in epoch milliseconds.
    let options = ParseOptions::new().with_now(UnixTime::from_secs(1_700_000_000));
    let info = parse_with(
        200,
        &[
            ("X-RateLimit-Limit", "20"),
            ("X-RateLimit-Remaining", "19"),
            ("X-RateLimit-Reset", "1700000002500"),
        ],
        &options,
    );
    assert_eq!(info.reset_after(), ms(2500));
}

#[test]
fn lemlist_javascript_date_reset_and_retry_after() {
    // lemlist: X-RateLimit-Reset in JS Date.toString(), Retry-After always present.
    let info = parse(
        200,
        &[
            ("Date", "Mon, 01 Jan 2024 12:00:00 GMT"),
            ("X-RateLimit-Limit", "20"),
            ("X-RateLimit-Remaining", "19"),
            (
                "X-RateLimit-Reset",
                "Mon Jan 01 2024 13:00:10 GMT+0100 (Central European Standard Time)",
            ),
            ("Retry-After", "10"),
        ],
    );
    assert_eq!((info.reset_after(), info.retry_after()), (secs(10), secs(10)));
    assert!(!info.retry_after_applies());
}

#[test]
fn prisjakt_millisecond_reset_needs_its_profile() {
    // Prisjakt: X-Rate-Limit-Reset: 600000 in milliseconds.
    let headers = [
        ("X-Rate-Limit-Limit", "1000"),
        ("X-Rate-Limit-Remaining", "999"),
        ("X-Rate-Limit-Reset", "600000"),
    ];
    let options = ParseOptions::new().with_profile(Profile::for_host(b"api.prisjakt.nu"));
    assert_eq!(parse_with(200, &headers, &options).reset_after(), secs(600));
    // Without it, the magnitude rule reads seconds (documented as the one case it gets wrong).
    assert_eq!(parse(200, &headers).reset_after(), secs(600_000));
}

#[test]
fn whoop_list_valued_limit_with_windows() {
    // WHOOP: X-RateLimit-Limit = "100, 100;window=60, 10000;window=86400".
    let info = parse(
        200,
        &[
            ("X-RateLimit-Limit", "100, 100;window=60, 10000;window=86400"),
            ("X-RateLimit-Remaining", "98"),
            ("X-RateLimit-Reset", "10"),
        ],
    );
    assert_eq!(
        (info.limit(), info.remaining(), info.window(), info.reset_after()),
        (Some(100), Some(98), secs(60), secs(10))
    );
    assert_eq!(info.quotas().len(), 2);
    assert_eq!(
        (info.quotas()[1].limit, info.quotas()[1].window),
        (Some(10_000), secs(86_400))
    );
}

#[test]
fn app_net_delta_seconds_and_persona_lowercase_fields() {
    // App.net: delta-seconds reset (confirmed by a maintainer); Persona: lowercase ratelimit-*, delta seconds.
    let info = parse(
        200,
        &[
            ("X-RateLimit-Limit", "5000"),
            ("X-RateLimit-Remaining", "4999"),
            ("X-RateLimit-Reset", "3600"),
        ],
    );
    assert_eq!(info.reset_after(), secs(3600));
    let info = parse(
        200,
        &[
            ("ratelimit-limit", "300"),
            ("ratelimit-remaining", "299"),
            ("ratelimit-reset", "58"),
        ],
    );
    assert_eq!(
        (info.format(), info.reset_after()),
        (Some(Format::IetfFields), secs(58))
    );
}

#[test]
fn akamai_next_as_iso8601_time() {
    // Akamai: X-RateLimit-Next as an ISO 8601 time.
    let info = parse(
        429,
        &[
            ("Date", "Mon, 01 Jan 2024 12:00:00 GMT"),
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Next", "2024-01-01T12:00:05Z"),
        ],
    );
    assert_eq!(info.reset_after(), secs(5));
}

#[test]
fn vendor_retry_after_fields_mailerlite_wildberries_oracle() {
    // MailerLite classic X-RateLimit-Retry-After; Wildberries X-Ratelimit-Retry (third-party plan);
    // Oracle Access Governance RequestLimit-Default-RetryAfter in ms.
    assert_eq!(
        parse(429, &[("X-RateLimit-Retry-After", "5")]).retry_after(),
        secs(5)
    );
    assert_eq!(parse(429, &[("X-Ratelimit-Retry", "3")]).retry_after(), secs(3));
    assert_eq!(
        parse(429, &[("RequestLimit-Default-RetryAfter", "1500")]).retry_after(),
        ms(1500)
    );
    // Retry-After proper takes precedence over all of them.
    assert_eq!(
        parse(
            429,
            &[("RequestLimit-Default-RetryAfter", "1500"), ("Retry-After", "7")]
        )
        .retry_after(),
        secs(7)
    );
}

#[test]
fn brevo_sib_prefix_seconds_reset() {
    // Brevo: x-sib-ratelimit-*, reset in "the granularity unit (typically seconds)".
    let info = parse(
        200,
        &[
            ("x-sib-ratelimit-limit", "10"),
            ("x-sib-ratelimit-remaining", "9"),
            ("x-sib-ratelimit-reset", "1"),
        ],
    );
    assert_eq!(
        (info.format(), info.limit(), info.reset_after()),
        (Some(Format::Brevo), Some(10), secs(1))
    );
}

#[test]
fn claap_remaining_above_limit_is_clamped() {
    // Claap docs example: remaining 20 > limit 3.
    let info = parse(
        200,
        &[("X-RateLimit-Limit", "3"), ("X-RateLimit-Remaining", "20")],
    );
    assert_eq!((info.limit(), info.remaining()), (Some(3), Some(3)));
    assert_eq!(kinds(&info), [WarningKind::RemainingAboveLimit]);
}

#[test]
fn cometchat_bare_x_rate_limit_and_epoch_reset() {
    // CometChat: X-Rate-Limit, and X-Rate-Limit-Reset as epoch.
    let options = ParseOptions::new().with_now(UnixTime::from_secs(1_700_000_000));
    let info = parse_with(
        200,
        &[
            ("X-Rate-Limit", "60"),
            ("X-Rate-Limit-Remaining", "59"),
            ("X-Rate-Limit-Reset", "1700000042"),
        ],
        &options,
    );
    assert_eq!((info.limit(), info.reset_after()), (Some(60), secs(42)));
}

#[test]
fn seyfert_419_nan_and_other_non_numbers_are_ignored() {
    // seyfert#419: a NaN reset bypassed a limiter. Never read as 0 or infinity.
    for bad in [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "0x10",
        "",
        "  ",
        "12abc",
        "1.2.3",
        "+-1",
    ] {
        let info = parse(
            429,
            &[
                ("X-RateLimit-Limit", bad),
                ("X-RateLimit-Remaining", bad),
                ("X-RateLimit-Reset", bad),
                ("Retry-After", bad),
            ],
        );
        assert_eq!(
            (
                info.limit(),
                info.remaining(),
                info.reset_after(),
                info.retry_after()
            ),
            (None, None, None, None),
            "{bad:?}"
        );
        assert_eq!(info.warnings().len(), 4, "{bad:?}");
    }
}

#[test]
fn mre_rate_limits_header_name_casing_does_not_matter() {
    // mre/rate-limits keys its vendor table on header-name casing; names are case-insensitive (RFC 9110).
    for name in [
        "x-ratelimit-limit",
        "X-RateLimit-Limit",
        "X-RATELIMIT-LIMIT",
        "x-RateLimit-limit",
    ] {
        let info = parse(200, &[(name, "10"), ("X-RATELIMIT-REMAINING", "1")]);
        assert_eq!(info.limit(), Some(10), "{name}");
    }
}

// --- Bounds, references and hostile input ------------------------------------

#[test]
fn absurd_counts_are_clamped_and_implausible_times_ignored() {
    let info = parse(
        200,
        &[
            ("X-RateLimit-Limit", "99999999999999999999999"),
            ("X-RateLimit-Remaining", "5"),
        ],
    );
    assert_eq!(info.limit(), Some(MAX_COUNT));
    assert_eq!(kinds(&info), [WarningKind::Clamped]);
    // An epoch reset a year before Date, and one ten years after.
    for reset in ["1600000000", "2100000000"] {
        let info = parse(
            200,
            &[
                ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ("X-RateLimit-Limit", "5"),
                ("X-RateLimit-Reset", reset),
            ],
        );
        assert_eq!(
            (info.reset_after(), kinds(&info)),
            (None, vec![WarningKind::ImplausibleTime]),
            "{reset}"
        );
    }
    // A few seconds in the past: already reset.
    let info = parse(
        200,
        &[
            ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("X-RateLimit-Limit", "5"),
            ("X-RateLimit-Reset", "1699999990"),
        ],
    );
    assert_eq!(info.reset_after(), Some(Nanos::ZERO));
}

#[test]
fn date_header_is_the_reference_unless_now_is_fixed() {
    let headers = [
        ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ("X-RateLimit-Limit", "5"),
        ("X-RateLimit-Reset", "1700000010"),
    ];
    let skewed = ParseOptions::new().with_now(UnixTime::from_secs(1_700_000_005));
    assert_eq!(parse_with(200, &headers, &skewed).reset_after(), secs(10));
    let fixed = ParseOptions::new().with_fixed_now(UnixTime::from_secs(1_700_000_005));
    assert_eq!(parse_with(200, &headers, &fixed).reset_after(), secs(5));
    // A malformed Date falls back to the given now, and says so.
    let info = parse_with(200, &[("Date", "yesterday"), headers[1], headers[2]], &skewed);
    assert_eq!(
        (info.reset_after(), kinds(&info)),
        (secs(5), vec![WarningKind::Malformed])
    );
}

#[test]
fn hostile_inputs_stay_bounded() {
    let long = "9".repeat(10_000);
    let many_items = (0..50)
        .map(|i| format!("\"p{i}\";r={i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let quotes = "\"".repeat(1000);
    let headers: Vec<(&str, &str)> = vec![
        ("RateLimit", &many_items),
        ("RateLimit-Policy", &quotes),
        ("X-RateLimit-Limit", &long),
        ("Retry-After", &long),
        ("ratelimit", "limit=;remaining==;reset"),
        ("ratelimit-policy", ";;;,,,;w=;q=\"\""),
        ("\u{0}x-ratelimit-limit", "5"),
        ("", ""),
    ];
    let info = parse(200, &headers);
    assert!(info.quotas().len() <= ratekeeper_core::headers::QUOTA_CAPACITY);
    assert!(info.warnings().len() <= ratekeeper_core::headers::WARNING_CAPACITY);
    assert!(info.warnings_dropped() > 0);
    // Many repeated headers: the first 32 recognised are kept, then a warning.
    let repeated: Vec<(&str, &str)> = (0..100).map(|_| ("x-ratelimit-limit", "5")).collect();
    let info = parse(200, &repeated);
    assert_eq!(info.limit(), Some(5));
    assert_eq!(kinds(&info), [WarningKind::TooManyFields]);
}
