//! Limits in JSON bodies (feature `json-body`): Shopify GraphQL and Close's
//! legacy 429 body, and bodies that are neither.
#![cfg(feature = "json-body")]

use ratekeeper_core::Nanos;
use ratekeeper_core::headers::{Format, ParseOptions, QuotaUnit, RateLimitInfo, WarningKind};

fn with_body(status: u16, headers: &[(&str, &str)], body: &str) -> RateLimitInfo {
    let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    RateLimitInfo::parse(Some(status), pairs, &ParseOptions::new()).with_json_body(body.as_bytes())
}

#[test]
fn shopify_graphql_throttle_status_in_extensions_cost() {
    // shopify.dev GraphQL Admin API rate limits: cost data is in the body's extensions.cost.
    let body = r#"{"data":{"products":{"edges":[{"node":{"title":"A \"quoted\" name"}}]}},
        "extensions":{"cost":{"requestedQueryCost":101,"actualQueryCost":46,
        "throttleStatus":{"maximumAvailable":2000.0,"currentlyAvailable":1500,"restoreRate":100.0}}}}"#;
    let info = with_body(200, &[], body);
    let quota = info.governing().expect("a quota");
    assert_eq!(quota.format, Format::ShopifyGraphQl);
    assert_eq!(
        (quota.limit, quota.remaining, quota.unit),
        (Some(2000), Some(1500), QuotaUnit::Other)
    );
    assert_eq!(
        (quota.window, quota.reset_after),
        (Some(Nanos::from_secs(20)), Some(Nanos::from_secs(5)))
    );
    // Request quotas from headers still govern over cost points.
    let info = with_body(
        200,
        &[("X-RateLimit-Limit", "10"), ("X-RateLimit-Remaining", "9")],
        body,
    );
    assert_eq!((info.limit(), info.quotas().len()), (Some(10), 2));
}

#[test]
fn close_legacy_429_body_rate_reset() {
    // Close docs: on 429 "sleep/pause for the number of seconds specified by the rate_reset value";
    // changelog 2024-04-24 deprecates the body in favour of headers, which win when both are present.
    let body =
        r#"{"error":{"rate_reset":8.25,"message":"API call count exceeded for this 15 second window"}}"#;
    let info = with_body(429, &[], body);
    assert_eq!(info.retry_after(), Some(Nanos::from_millis(8250)));
    let info = with_body(429, &[("Retry-After", "3")], body);
    assert_eq!(info.retry_after(), Some(Nanos::from_secs(3)));
}

#[test]
fn other_and_hostile_bodies_change_nothing_or_warn() {
    for body in [
        "",
        "not json",
        "[]",
        "{\"data\":null}",
        "{\"extensions\":{\"cost\":",
        "{\"error\":\"rate limited\"}",
        "\u{0}",
    ] {
        let info = with_body(429, &[], body);
        assert_eq!((info.quotas().len(), info.retry_after()), (0, None), "{body:?}");
    }
    let info = with_body(
        200,
        &[],
        r#"{"extensions":{"cost":{"throttleStatus":{"maximumAvailable":-1,"currentlyAvailable":1,"restoreRate":0}}},"error":{"rate_reset":-5}}"#,
    );
    assert_eq!(info.quotas().len(), 0);
    assert_eq!(
        info.warnings().iter().map(|w| w.kind).collect::<Vec<_>>(),
        [WarningKind::Malformed, WarningKind::Malformed]
    );
}
