//! The cost of an endpoint key, made once per outbound request.
//!
//! `cargo bench -p ratekeeper-bench --bench endpoint`; criterion reports the
//! median among its estimates.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ratekeeper_core::{EndpointKey, EndpointRule, EndpointRules};

/// A typical Close call: a lead by id, with a query.
const CLOSE_LEAD: &str = "https://api.close.com/api/v1/lead/lead_xZ4vNFe2kUHCcC3qZ6Vlb3D2uDW8V7tz7ROVlKp4ZZ4/?_fields=id,display_name";
/// A GoHighLevel call under a location, keyed per location.
const GHL_CONTACT: &str = "https://services.leadconnectorhq.com/contacts/Pw3Nx81KdLq0sTy7Vbe2";

const RULES: EndpointRules<'static> = EndpointRules::new(&[
    EndpointRule::bucket("api.close.com/api/v1/data/search/", "search"),
    EndpointRule::template("api.close.com/api/v1/report/*"),
    EndpointRule::bucket("api.instantly.ai", "workspace"),
]);

fn endpoint_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint_key");
    group.bench_function("close_lead", |b| {
        b.iter(|| EndpointKey::from_url(black_box(CLOSE_LEAD)))
    });
    group.bench_function("close_lead_with_3_rules", |b| {
        b.iter(|| RULES.key(black_box(CLOSE_LEAD)))
    });
    group.bench_function("gohighlevel_contact_with_tenant", |b| {
        b.iter(|| {
            EndpointRules::NONE.key_for_tenant(black_box(GHL_CONTACT), black_box("ve9EPM428h8vShlRW1KT"))
        })
    });
    group.finish();
}

criterion_group!(benches, endpoint_keys);
criterion_main!(benches);
