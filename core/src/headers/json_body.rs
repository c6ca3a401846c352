//! Limits carried in a JSON response body rather than in headers (feature
//! `json-body`), read with `serde-json-core`: no allocation.
//!
//! - Shopify GraphQL Admin API: `extensions.cost.throttleStatus` with
//!   `maximumAvailable`, `currentlyAvailable` and `restoreRate` (cost
//!   points, refilled at `restoreRate` per second). It becomes a quota of
//!   unit [`QuotaUnit::Other`] (points, not requests) whose window is the
//!   time to refill from empty, `maximumAvailable / restoreRate`, and whose
//!   reset is the time to refill what is spent.
//! - Close's legacy 429 body: `{"error": {"rate_reset": 8.2, ...}}`, the
//!   seconds to wait, read as a retry-after when the headers gave none.
//!
//! Numbers that are negative, not finite or beyond the documented bounds
//! are ignored or clamped exactly as header values are.

use serde_nostd::Deserialize;

use super::{Format, MAX_COUNT, MAX_WAIT, Quota, QuotaUnit, RateLimitInfo, WarningKind};
use crate::time::Nanos;

#[derive(Deserialize)]
#[serde(crate = "serde_nostd")]
struct Body {
    extensions: Option<Extensions>,
    error: Option<CloseError>,
}

#[derive(Deserialize)]
#[serde(crate = "serde_nostd")]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Deserialize)]
#[serde(crate = "serde_nostd")]
struct Cost {
    #[serde(rename = "throttleStatus")]
    throttle_status: Option<ThrottleStatus>,
}

#[derive(Deserialize)]
#[serde(crate = "serde_nostd")]
struct ThrottleStatus {
    #[serde(rename = "maximumAvailable")]
    maximum_available: f64,
    #[serde(rename = "currentlyAvailable")]
    currently_available: f64,
    #[serde(rename = "restoreRate")]
    restore_rate: f64,
}

#[derive(Deserialize)]
#[serde(crate = "serde_nostd")]
struct CloseError {
    rate_reset: Option<f64>,
}

/// A finite, non-negative count, rounded down and clamped to [`MAX_COUNT`].
fn count(value: f64) -> Option<u64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    // `as` saturates; the bound keeps it exact below 2^53.
    Some((value.min(MAX_COUNT as f64)) as u64)
}

/// Finite, non-negative seconds, clamped to [`MAX_WAIT`].
fn seconds(value: f64) -> Option<Nanos> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let max = MAX_WAIT.as_nanos() as f64;
    Some(Nanos::from_nanos((value * 1e9).min(max) as u64))
}

impl RateLimitInfo {
    /// Adds what a JSON response body says (see the module docs) to what
    /// the headers said. A body that is not JSON, or not one of the known
    /// shapes, changes nothing; a known shape with unreadable numbers adds
    /// a [`WarningKind::Malformed`] warning (at header index `u16::MAX`).
    ///
    /// ```
    /// use ratekeeper_core::headers::{ParseOptions, QuotaUnit, RateLimitInfo};
    /// use ratekeeper_core::Nanos;
    ///
    /// let body = br#"{"data":{"shop":{"name":"x"}},"extensions":{"cost":{"requestedQueryCost":101,
    ///   "actualQueryCost":46,"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":954,"restoreRate":50.0}}}}"#;
    /// let headers: [(&[u8], &[u8]); 0] = [];
    /// let info = RateLimitInfo::parse(Some(200), headers, &ParseOptions::new()).with_json_body(body);
    /// let quota = info.governing().unwrap();
    /// assert_eq!((quota.limit, quota.remaining, quota.unit), (Some(1000), Some(954), QuotaUnit::Other));
    /// assert_eq!(quota.window, Some(Nanos::from_secs(20)));
    /// ```
    pub fn with_json_body(mut self, body: &[u8]) -> RateLimitInfo {
        let Ok((parsed, _)) = serde_json_core::from_slice::<Body>(body) else {
            return self;
        };
        if let Some(status) = parsed
            .extensions
            .and_then(|e| e.cost)
            .and_then(|c| c.throttle_status)
        {
            let limit = count(status.maximum_available);
            let remaining = count(status.currently_available);
            let rate = Some(status.restore_rate).filter(|r| r.is_finite() && *r > 0.0);
            match (limit, remaining, rate) {
                (Some(limit), Some(remaining), Some(rate)) => {
                    let mut quota = Quota::new(Format::ShopifyGraphQl, QuotaUnit::Other);
                    quota.limit = Some(limit);
                    quota.remaining = Some(remaining.min(limit));
                    quota.window = seconds(status.maximum_available / rate);
                    quota.reset_after =
                        seconds((status.maximum_available - status.currently_available).max(0.0) / rate);
                    self.add_quota(quota);
                }
                _ => self.warnings.push(u16::MAX, WarningKind::Malformed),
            }
        }
        if let Some(reset) = parsed.error.and_then(|e| e.rate_reset) {
            match seconds(reset) {
                Some(wait) if self.retry_after.is_none() => self.retry_after = Some(wait),
                Some(_) => {}
                None => self.warnings.push(u16::MAX, WarningKind::Malformed),
            }
        }
        self
    }

    /// Appends a quota and chooses the governing one again.
    fn add_quota(&mut self, quota: Quota) {
        match self.quotas.get_mut(usize::from(self.quota_count)) {
            Some(slot) => {
                *slot = quota;
                self.quota_count = self.quota_count.saturating_add(1);
            }
            None => self.warnings.push(u16::MAX, WarningKind::TooManyQuotas),
        }
        self.governing = super::families::governing(self.quotas());
    }
}
