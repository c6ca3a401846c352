//! A quota the parser reads but does not keep leaves no trace in the
//! result: a free slot of [`RateLimitInfo`] is the same after any parse,
//! so that results compare and hash equal whenever what they state is.

use ratekeeper_core::headers::{Families, ParseOptions, RateLimitInfo, WarningKind};

const FIRMWARE: u32 = Families::IETF | Families::RETRY_AFTER;

fn both(headers: &[(&[u8], &[u8])]) -> [RateLimitInfo; 2] {
    let options = ParseOptions::new();
    [
        RateLimitInfo::parse(Some(200), headers.iter().copied(), &options),
        RateLimitInfo::parse_families::<FIRMWARE>(Some(200), headers.iter().copied(), &options),
    ]
}

#[test]
fn a_dictionary_without_limit_or_remaining_leaves_its_slot_free() {
    let [nothing, _] = both(&[]);
    for reset_only in both(&[(b"ratelimit", b"reset=5")]) {
        assert!(reset_only.quotas().is_empty());
        assert_eq!(reset_only, nothing);
    }
    for kept_then_not in both(&[(b"ratelimit", b"reset=5"), (b"x-unrelated", b"1")]) {
        assert_eq!(kept_then_not, nothing);
    }
}

#[test]
fn quotas_past_the_last_slot_are_warned_about_in_order() {
    let headers: [(&[u8], &[u8]); 2] = [
        (
            b"ratelimit-policy",
            b"\"a\";q=1, \"b\";q=2, \"c\";q=3, \"d\";q=4, \"e\";q=5, \"f\";q=6, \"g\";q=7",
        ),
        (b"ratelimit", b"\"g\";r=9, \"a\";r=0"),
    ];
    let [full, selection] = both(&headers);
    assert_eq!(full, selection);
    assert_eq!(full.quotas().len(), ratekeeper_core::headers::QUOTA_CAPACITY);
    let kinds: Vec<WarningKind> = full.warnings().iter().map(|warning| warning.kind).collect();
    assert!(kinds.contains(&WarningKind::TooManyQuotas), "{kinds:?}");
    assert!(kinds.contains(&WarningKind::RemainingAboveLimit), "{kinds:?}");
}

#[test]
fn a_policy_past_the_last_slot_still_makes_a_kept_one_ambiguous() {
    let policies: &[u8] = b"100;w=10, 200;w=20, 300;w=30, 400;w=40, 500;w=50, 600;w=60, 700;w=70, 800;w=80";
    for alone in both(&[(b"ratelimit-policy", policies)]) {
        assert_eq!(alone.quotas().first().and_then(|quota| quota.limit), Some(100));
        assert!(
            alone
                .warnings()
                .iter()
                .all(|w| w.kind != WarningKind::AmbiguousPolicy)
        );
    }
    // A ninth policy, dropped, with the first one's quota and no window:
    // the first is ambiguous all the same, and is not read as a quota.
    let [full, selection] = both(&[(b"ratelimit-policy", policies), (b"ratelimit-policy", b"100")]);
    assert_eq!(full, selection);
    let limits: Vec<Option<u64>> = full.quotas().iter().map(|quota| quota.limit).collect();
    assert_eq!(limits, [200, 300, 400, 500, 600, 700].map(Some));
    let kinds: Vec<WarningKind> = full.warnings().iter().map(|warning| warning.kind).collect();
    assert_eq!(
        kinds,
        [
            WarningKind::TooManyQuotas,
            WarningKind::AmbiguousPolicy,
            WarningKind::TooManyQuotas,
        ],
    );
}
