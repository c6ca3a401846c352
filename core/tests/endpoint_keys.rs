//! Endpoint keys of real URLs from the APIs ratekeeper is built for, and of
//! malformed and hostile ones.

use ratekeeper_core::{EndpointKey, EndpointKeyError, EndpointRule, EndpointRules};

fn key(url: &str) -> String {
    match EndpointKey::from_url(url) {
        Ok(key) => key.as_str().to_owned(),
        Err(error) => panic!("{url:?}: {error}"),
    }
}

fn error(url: impl AsRef<[u8]>) -> EndpointKeyError {
    match EndpointKey::from_url(url.as_ref()) {
        Ok(key) => panic!("{:?} gave {key:?}", String::from_utf8_lossy(url.as_ref())),
        Err(error) => error,
    }
}

/// Every byte in the key alphabet; braces only as `{id}`; `%` followed by
/// two uppercase hex digits.
fn assert_safe(key: &EndpointKey) {
    let bytes = key.as_bytes();
    assert!(
        !bytes.is_empty() && bytes.len() <= EndpointKey::CAPACITY,
        "{key:?}"
    );
    let mut rest = bytes;
    while let [first, tail @ ..] = rest {
        rest = match first {
            b'{' => tail
                .strip_prefix(b"id}")
                .unwrap_or_else(|| panic!("stray brace in {key:?}")),
            b'%' => match tail {
                [high, low, after @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    assert!(!high.is_ascii_lowercase() && !low.is_ascii_lowercase(), "{key:?}");
                    after
                }
                _ => panic!("bare % in {key:?}"),
            },
            b if b.is_ascii_alphanumeric() || b"-._~/#@+".contains(b) => tail,
            b => panic!("byte {b:#x} in {key:?}"),
        };
    }
}

// Close. The endpoint-key examples and the observed endpoints
// (`/api/v1/me/`, `/api/v1/data/search/`) are from the Close rate-limiter
// plan of whiteboard-geeks/MailerAutomation (plan.md @599cea1); the id
// prefixes are Close's (`lead_`, `cont_`, `acti_`, `oppo_`, ...).

#[test]
fn close_lead_ids_become_placeholders() {
    assert_eq!(
        key("https://api.close.com/api/v1/lead/lead_123/?x=1"),
        "api.close.com/api/v1/lead/{id}/"
    );
    assert_eq!(
        key("https://api.close.com/api/v1/lead/lead_123/"),
        "api.close.com/api/v1/lead/{id}/"
    );
    assert_eq!(
        key("https://api.close.com/api/v1/lead/lead_xZ4vNFe2kUHCcC3qZ6Vlb3D2uDW8V7tz7ROVlKp4ZZ4/"),
        "api.close.com/api/v1/lead/{id}/"
    );
    assert_eq!(
        key("https://api.close.com/api/v1/task/task_456/"),
        "api.close.com/api/v1/task/{id}/"
    );
}

#[test]
fn close_static_endpoints_are_kept() {
    for path in [
        "/api/v1/me/",
        "/api/v1/data/search/",
        "/api/v1/lead/",
        "/api/v1/custom_field/lead/",
    ] {
        assert_eq!(
            key(&format!("https://api.close.com{path}")),
            format!("api.close.com{path}")
        );
    }
    assert_ne!(
        key("https://api.close.com/api/v1/lead/"),
        key("https://api.close.com/api/v1/data/search/")
    );
}

#[test]
fn close_every_object_prefix() {
    for (collection, id) in [
        ("contact", "cont_MvDqXkRbNq1BCq6iUqD4Hr8Xa7Wj1f0b0nsQFqQOVN7"),
        (
            "activity/email",
            "acti_9gLhZf4p0dkL8fPZvD2W5sL4Ks3ZhH3Zc6oJq0OZmHy",
        ),
        ("opportunity", "oppo_2YbY4Nc4tI0PqmmlxL7bQm4tvvZ6BXJ6gxt0Z1hWj0t"),
        ("organization", "orga_1Jw0Jf5v0W3r4EUfQ6p0pC0X9v1cJm0wG4KnGZ8Wsw2"),
        ("user", "user_bM0kUjf9bWn3uHfiB0P2Zz0P0l8X4xR5vQkQ8nYt6Kd"),
    ] {
        assert_eq!(
            key(&format!("https://api.close.com/api/v1/{collection}/{id}/")),
            format!("api.close.com/api/v1/{collection}/{{id}}/")
        );
    }
}

#[test]
fn close_search_bucket_rule() {
    const RULES: EndpointRules<'static> = EndpointRules::new(&[
        EndpointRule::bucket("api.close.com/api/v1/data/search/", "search"),
        // Close limits per endpoint group: lead and contact reads share one.
        EndpointRule::bucket("api.close.com/api/v1/lead", "objects"),
        EndpointRule::bucket("api.close.com/api/v1/contact", "objects"),
    ]);
    let search = RULES
        .key("https://api.close.com/api/v1/data/search/?_limit=10")
        .unwrap();
    assert_eq!(search, "api.close.com@search");
    assert_eq!(
        RULES.key("https://API.close.com/api/v1/data/search").unwrap(),
        search
    );
    let lead = RULES.key("https://api.close.com/api/v1/lead/lead_123/").unwrap();
    let contact = RULES
        .key("https://api.close.com/api/v1/contact/cont_456/")
        .unwrap();
    assert_eq!(lead, "api.close.com@objects");
    assert_eq!(lead, contact);
    // Another host is not matched by a host-qualified rule.
    assert_eq!(
        RULES.key("https://example.com/api/v1/data/search/").unwrap(),
        "example.com/api/v1/data/search/"
    );
    // Nor a path that only starts with the same letters.
    assert_eq!(
        RULES.key("https://api.close.com/api/v1/leads").unwrap(),
        "api.close.com/api/v1/leads"
    );
}

// GoHighLevel. `https://rest.gohighlevel.com/v1` with `/contacts` and
// `/opportunities/${opportunityId}` is the client of the GoHighLevel
// rate-limit plan; `services.leadconnectorhq.com` is the v2 API host;
// location and contact ids are 20-character base62 tokens.

#[test]
fn gohighlevel_ids_and_locations() {
    assert_eq!(
        key("https://rest.gohighlevel.com/v1/contacts?startAfter=1700000000"),
        "rest.gohighlevel.com/v1/contacts"
    );
    assert_eq!(
        key("https://rest.gohighlevel.com/v1/opportunities/ve9EPM428h8vShlRW1KT"),
        "rest.gohighlevel.com/v1/opportunities/{id}"
    );
    assert_eq!(
        key("https://services.leadconnectorhq.com/locations/ve9EPM428h8vShlRW1KT/customFields"),
        "services.leadconnectorhq.com/locations/{id}/customFields"
    );
    assert_eq!(
        key("https://services.leadconnectorhq.com/contacts/search/duplicate?locationId=ve9EPM428h8vShlRW1KT"),
        "services.leadconnectorhq.com/contacts/search/duplicate"
    );
    // A token with no digit is still an id by its mix of cases.
    assert_eq!(
        key("https://services.leadconnectorhq.com/contacts/vePMhvShlRWKTqLxZbNa"),
        "services.leadconnectorhq.com/contacts/{id}"
    );
    // camelCase words are not.
    assert_eq!(
        key("https://services.leadconnectorhq.com/contacts/getContactsByBusinessId"),
        "services.leadconnectorhq.com/contacts/getContactsByBusinessId"
    );
}

#[test]
fn gohighlevel_limits_per_location_as_tenant() {
    let rules = EndpointRules::NONE;
    let url = "https://services.leadconnectorhq.com/contacts/Pw3Nx81KdLq0sTy7Vbe2";
    let a = rules.key_for_tenant(url, "ve9EPM428h8vShlRW1KT").unwrap();
    let b = rules.key_for_tenant(url, "Zz0EPM428h8vShlRW1KT").unwrap();
    assert_eq!(
        a,
        "services.leadconnectorhq.com#ve9EPM428h8vShlRW1KT/contacts/{id}"
    );
    assert_ne!(a, b);
    // No tenant, or an empty one, is the same key.
    assert_eq!(rules.key_for_tenant(url, "").unwrap(), rules.key(url).unwrap());
    // A tenant cannot inject anything: every unsafe byte is escaped.
    let hostile = rules.key_for_tenant(url, "a/b#c@d{e}*:f g\n").unwrap();
    assert_eq!(
        hostile,
        "services.leadconnectorhq.com#a%2Fb%23c%40d%7Be%7D%2A%3Af%20g%0A/contacts/{id}"
    );
    assert_safe(&hostile);
}

// Instantly: API v1 and v2 share one workspace limit (developer.instantly.ai
// rate-limit page); v2 ids are UUIDs.

#[test]
fn instantly_uuids_and_workspace_bucket() {
    assert_eq!(
        key("https://api.instantly.ai/api/v2/leads/0190f3c1-8d5e-7c3a-9b1e-2f4a6c8e0d12"),
        "api.instantly.ai/api/v2/leads/{id}"
    );
    assert_eq!(
        key("https://api.instantly.ai/api/v2/campaigns/0190F3C1-8D5E-7C3A-9B1E-2F4A6C8E0D12/activate"),
        "api.instantly.ai/api/v2/campaigns/{id}/activate"
    );
    assert_eq!(
        key("https://api.instantly.ai/api/v1/lead/add"),
        "api.instantly.ai/api/v1/lead/add"
    );
    const RULES: EndpointRules<'static> =
        EndpointRules::new(&[EndpointRule::bucket("api.instantly.ai", "workspace")]);
    for url in [
        "https://api.instantly.ai/api/v1/lead/add",
        "https://api.instantly.ai/api/v2/leads/list",
        "https://api.instantly.ai",
    ] {
        assert_eq!(RULES.key(url).unwrap(), "api.instantly.ai@workspace");
    }
    assert_eq!(
        RULES
            .key_for_tenant("https://api.instantly.ai/api/v2/leads", "ws_1")
            .unwrap(),
        "api.instantly.ai#ws_1@workspace"
    );
}

// Supabase: PostgREST, Auth, Storage and Edge Functions under the project's
// host; the Management API names projects by a 20-letter ref.

#[test]
fn supabase_paths() {
    assert_eq!(
        key("https://xyzcompany.supabase.co/rest/v1/contacts?select=*&id=eq.42"),
        "xyzcompany.supabase.co/rest/v1/contacts"
    );
    assert_eq!(
        key("https://xyzcompany.supabase.co/rest/v1/rpc/get_segments"),
        "xyzcompany.supabase.co/rest/v1/rpc/get_segments"
    );
    assert_eq!(
        key("https://xyzcompany.supabase.co/auth/v1/token?grant_type=password"),
        "xyzcompany.supabase.co/auth/v1/token"
    );
    assert_eq!(
        key("https://xyzcompany.supabase.co/auth/v1/admin/users/6f1a0a2e-6f4b-4f53-8d0c-3d5b0b1c2e4f"),
        "xyzcompany.supabase.co/auth/v1/admin/users/{id}"
    );
    assert_eq!(
        key("https://xyzcompany.supabase.co/functions/v1/hello-world"),
        "xyzcompany.supabase.co/functions/v1/hello-world"
    );
    assert_eq!(
        key("https://api.supabase.com/v1/projects/abcdefghijklmnopqrst/database/query"),
        "api.supabase.com/v1/projects/{id}/database/query"
    );
}

#[test]
fn supabase_storage_by_rule() {
    const RULES: EndpointRules<'static> = EndpointRules::new(&[EndpointRule::template(
        "*.supabase.co/storage/v1/object/public/*/*",
    )]);
    let a = RULES
        .key("https://xyzcompany.supabase.co/storage/v1/object/public/avatars/user-123.png")
        .unwrap();
    assert_eq!(a, "xyzcompany.supabase.co/storage/v1/object/public/{id}/{id}");
    // The suffix rule needs a real subdomain.
    assert_eq!(
        RULES
            .key("https://supabase.co/storage/v1/object/public/avatars/a.png")
            .unwrap(),
        "supabase.co/storage/v1/object/public/avatars/a.png"
    );
    assert_eq!(
        RULES
            .key("https://evilsupabase.co/storage/v1/object/public/avatars/a.png")
            .unwrap(),
        "evilsupabase.co/storage/v1/object/public/avatars/a.png"
    );
}

// Other APIs named in the rate-limit header reference.

#[test]
fn github_stripe_shopify() {
    assert_eq!(
        key("https://api.github.com/repos/rust-lang/rust/issues/12345/comments?per_page=100"),
        "api.github.com/repos/rust-lang/rust/issues/{id}/comments"
    );
    assert_eq!(
        key("https://api.stripe.com/v1/customers/cus_NffrFeUfNV2Hib"),
        "api.stripe.com/v1/customers/{id}"
    );
    assert_eq!(
        key("https://api.stripe.com/v1/checkout/sessions/cs_test_a1b2c3d4e5f6g7h8"),
        "api.stripe.com/v1/checkout/sessions/{id}"
    );
    assert_eq!(
        key("https://shop.myshopify.com/admin/api/2024-01/products/632910392.json"),
        "shop.myshopify.com/admin/api/2024-01/products/{id}.json"
    );
    assert_eq!(
        key("https://shop.myshopify.com/admin/api/2024-01/products.json"),
        "shop.myshopify.com/admin/api/2024-01/products.json"
    );
}

#[test]
fn other_id_shapes() {
    let cases = [
        (
            "https://h.example/users/507f1f77bcf86cd799439011",
            "h.example/users/{id}",
        ),
        (
            "https://h.example/users/jane.doe+crm@example.com/",
            "h.example/users/{id}/",
        ),
        (
            "https://h.example/users/jane.doe%40example.com",
            "h.example/users/{id}",
        ),
        (
            "https://h.example/events/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "h.example/events/{id}",
        ),
        (
            "https://h.example/items/V1StGXR8_Z5jdHi6B-myT",
            "h.example/items/{id}",
        ),
        (
            "https://h.example/blobs/0123456789abcdef0123",
            "h.example/blobs/{id}",
        ),
        ("https://h.example/users/%7Bid%7D", "h.example/users/{id}"),
        // Words stay words.
        (
            "https://h.example/api/v2/oauth2/token",
            "h.example/api/v2/oauth2/token",
        ),
        (
            "https://h.example/custom_fields/phone_number",
            "h.example/custom_fields/phone_number",
        ),
        (
            "https://h.example/reports/2024-01-15",
            "h.example/reports/2024-01-15",
        ),
        (
            "https://h.example/OAuthTokenExchangeV2",
            "h.example/OAuthTokenExchangeV2",
        ),
        ("https://h.example/a@b", "h.example/a%40b"),
    ];
    for (url, expected) in cases {
        assert_eq!(key(url), expected, "{url}");
    }
}

#[test]
fn scheme_userinfo_port_host_normalized() {
    let expected = "api.close.com/api/v1/me/";
    for url in [
        "https://api.close.com/api/v1/me/",
        "http://api.close.com/api/v1/me/",
        "HTTPS://API.CLOSE.COM/api/v1/me/",
        "https://api.close.com:443/api/v1/me/",
        "https://api.close.com:/api/v1/me/",
        "http://api.close.com:80/api/v1/me/",
        "wss://api.close.com:0443/api/v1/me/",
        "https://user:secret@api.close.com/api/v1/me/",
        "https://api.close.com./api/v1/me/",
        "https://%61pi.close.com/api/v1/me/",
        "api.close.com/api/v1/me/",
        "//api.close.com/api/v1/me/",
        "  https://api.close.com/api/v1/me/\r\n",
        "https:api.close.com/api/v1/me/",
        "https:\\\\api.close.com\\api\\v1\\me\\",
        "https://api.close.com/api/v1/me/?a=1#frag",
        "https://api.close.com/api/v1/me/#?",
    ] {
        assert_eq!(key(url), expected, "{url}");
    }
    assert_eq!(
        key("https://api.close.com:8443/api/v1/me/"),
        "api.close.com%3A8443/api/v1/me/"
    );
    assert_eq!(key("http://api.close.com:443/"), "api.close.com%3A443/");
    assert_eq!(key("localhost:8080/v1/items"), "localhost%3A8080/v1/items");
    assert_eq!(key("http://127.0.0.1:3000/x"), "127.0.0.1%3A3000/x");
    assert_eq!(key("http://[::1]:8080/x"), "%5B%3A%3A1%5D%3A8080/x");
    assert_eq!(key("https://[2001:DB8::1]/x"), "%5B2001%3Adb8%3A%3A1%5D/x");
}

#[test]
fn paths_normalized() {
    let cases = [
        ("https://h.example", "h.example/"),
        ("https://h.example/", "h.example/"),
        ("https://h.example?x", "h.example/"),
        ("https://h.example//a///b//", "h.example/a/b/"),
        ("https://h.example/a/./b/../c", "h.example/a/c"),
        ("https://h.example/a/b/..", "h.example/a/"),
        ("https://h.example/a/.", "h.example/a/"),
        ("https://h.example/../../../etc/passwd", "h.example/etc/passwd"),
        ("https://h.example/a/%2e%2E/b/%2E", "h.example/b/"),
        ("https://h.example/a/..%2f/b", "h.example/a/..%2F/b"),
        ("https://h.example/%61%62c/%7e", "h.example/abc/~"),
        ("https://h.example/a%2Fb", "h.example/a%2Fb"),
        ("https://h.example/%zz/%4", "h.example/%25zz/%254"),
        ("https://h.example/Caps/Path", "h.example/Caps/Path"),
        ("https://h.example/a b/c\td", "h.example/a%20b/c%09d"),
        ("https://h.example/ünï", "h.example/%C3%BCn%C3%AF"),
    ];
    for (url, expected) in cases {
        assert_eq!(key(url), expected, "{url}");
    }
}

#[test]
fn errors_are_clear() {
    assert_eq!(error(""), EndpointKeyError::Empty);
    assert_eq!(error(" \t\r\n"), EndpointKeyError::Empty);
    for url in [
        "/api/v1/me/",
        "\\x",
        "?x=1",
        "#top",
        "https://",
        "https://?x",
        "file:///etc/passwd",
        "mailto:a@b.example",
        "urn:isbn:0451450523",
        "https://user@/x",
        "https://.../x",
    ] {
        assert_eq!(error(url), EndpointKeyError::NoHost, "{url}");
    }
    for url in [
        "https://a b.example/",
        "https://exa\0mple.com/",
        "https://[::1/",
        "https://[zz]/",
        "https://[::1]x/",
        "https://[]/",
    ] {
        assert_eq!(error(url), EndpointKeyError::InvalidHost, "{url}");
    }
    for url in [
        "https://h.example:99999/",
        "https://h.example:65536/",
        "https://h.example:8o/",
        "https://h.example:-1/",
        "https://a:b:c/",
    ] {
        assert_eq!(error(url), EndpointKeyError::InvalidPort, "{url}");
    }
    let deep = format!("https://h.example{}", "/a".repeat(EndpointKey::MAX_DEPTH + 1));
    assert_eq!(error(&deep), EndpointKeyError::PathTooDeep);
    let resolved = format!(
        "https://h.example{}{}",
        "/a".repeat(EndpointKey::MAX_DEPTH),
        "/..".repeat(10)
    );
    assert!(EndpointKey::from_url(&resolved).is_ok());
    assert_eq!(
        EndpointKeyError::PathTooDeep.to_string(),
        "the URL's path is more than 32 segments deep"
    );
}

#[test]
fn hostile_inputs_stay_inside_the_key() {
    let cases: [&[u8]; 9] = [
        b"https://good.example@evil.example/",
        b"https://evil.example\\@good.example/",
        b"https://h.example/x*?[]{}:\r\nFLUSHALL",
        b"https://h.example/%7B%7D%2A%3F%5B%5D%3A%0D%0A",
        b"https://h.example/{id}}{/{{id}}",
        b"https://h.example/\xff\xfe\x00/\x7f",
        b"https://h.example/a+b/+/%2B",
        b"https://h.example/#tenant/@bucket",
        b"https://h%23t.example%2Fp%40b/",
    ];
    for url in cases {
        let key = EndpointKey::from_url(url).unwrap();
        assert_safe(&key);
        assert!(!key.is_truncated(), "{key:?}");
    }
    assert_eq!(key("https://good.example@evil.example/"), "evil.example/");
    assert_eq!(
        key("https://evil.example\\@good.example/"),
        "evil.example/%40good.example/"
    );
    assert_eq!(key("https://h.example/x*?[]{}"), "h.example/x%2A");
    assert_eq!(
        key("https://h.example/{id}}{/{{id}}"),
        "h.example/%7Bid%7D%7D%7B/%7B%7Bid%7D%7D"
    );
    assert_eq!(key("https://h%23t.example%2Fp%40b/"), "h%23t.example%2Fp%40b/");
}

#[test]
fn long_paths_are_cut_with_a_stable_hash() {
    let base = format!("https://h.example/{}", "segment".repeat(40));
    let a = EndpointKey::from_url(format!("{base}/one")).unwrap();
    let b = EndpointKey::from_url(format!("{base}/two")).unwrap();
    let a_again = EndpointKey::from_url(format!("{base}/one?page=2")).unwrap();
    for key in [&a, &b] {
        assert_safe(key);
        assert!(key.is_truncated());
        assert_eq!(key.as_str().len(), EndpointKey::CAPACITY);
    }
    assert_ne!(a, b);
    assert_eq!(a, a_again);
    // Fixed forever: a cut key is the same in every process and version
    // (FNV-1a 64 of the cut bytes, checked against an independent
    // implementation).
    assert_eq!(
        a.as_str(),
        "h.example/segmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentsegmentseg+5b326e9bf34c68f9"
    );
    // A cut never splits an escape or a placeholder.
    let escapes = EndpointKey::from_url(format!("https://h.example/{}", "%20".repeat(60))).unwrap();
    assert_safe(&escapes);
    let ids = EndpointKey::from_url(format!("https://h.example{}", "/1".repeat(30))).unwrap();
    assert_safe(&ids);
    // A key of exactly the capacity is whole.
    let exact = format!(
        "h.example/{}",
        "a".repeat(EndpointKey::CAPACITY - "h.example/".len())
    );
    let whole = EndpointKey::from_url(&exact).unwrap();
    assert!(!whole.is_truncated());
    assert_eq!(whole.as_str(), exact);
    let huge_host = format!("https://{}.example/x", "h".repeat(10_000));
    assert_safe(&EndpointKey::from_url(huge_host).unwrap());
}

#[test]
fn rules_apply_in_order_and_override_the_guess() {
    const RULES: EndpointRules<'static> = EndpointRules::new(&[
        EndpointRule::template("api.example.com/v1/items/*"),
        EndpointRule::bucket("/v1/items", "items"),
        EndpointRule::template("/api/v1/report_2024/{id}/"),
        EndpointRule::template("/files/%7Bx%7D"),
        EndpointRule::template("H.EXAMPLE:8080/exact"),
    ]);
    assert_eq!(
        RULES
            .key("https://api.example.com/v1/items/widget/parts/7")
            .unwrap(),
        "api.example.com/v1/items/{id}/parts/{id}"
    );
    assert_eq!(
        RULES.key("https://other.example/v1/items/widget").unwrap(),
        "other.example@items"
    );
    assert_eq!(
        RULES.key("https://api.example.com/v1/items").unwrap(),
        "api.example.com@items"
    );
    assert_eq!(
        RULES
            .key("https://h.example/api/v1/report_2024/anything")
            .unwrap(),
        "h.example/api/v1/report_2024/{id}"
    );
    // A pattern longer than the path does not match.
    assert_eq!(
        RULES.key("https://h.example/api/v1/report_2024").unwrap(),
        "h.example/api/v1/{id}"
    );
    assert_eq!(
        RULES.key("https://h.example/files/{x}/1").unwrap(),
        "h.example/files/%7Bx%7D/{id}"
    );
    assert_eq!(
        RULES.key("https://h.example/exact/123").unwrap(),
        "h.example/exact/{id}"
    );
    assert_eq!(RULES.rules().len(), 5);
    assert_eq!(RULES.rules()[1].bucket_name(), Some("items"));
    assert_eq!(RULES.rules()[0].pattern(), "api.example.com/v1/items/*");
}

#[test]
fn bucket_names_are_escaped_and_never_look_like_paths() {
    const RULES: EndpointRules<'static> = EndpointRules::new(&[
        EndpointRule::bucket("/search", "search {all}:*"),
        EndpointRule::bucket("/lists", "/lists"),
    ]);
    let search = RULES.key("https://h.example/search").unwrap();
    assert_eq!(search, "h.example@search%20%7Ball%7D%3A%2A");
    assert_safe(&search);
    assert_ne!(
        RULES.key("https://h.example/lists").unwrap(),
        EndpointKey::from_url("https://h.example/lists").unwrap()
    );
}

#[test]
fn keys_work_as_map_keys_and_text() {
    use std::collections::HashMap;
    let key = EndpointKey::from_url("https://api.close.com/api/v1/me/").unwrap();
    let mut limits = HashMap::new();
    limits.insert(key.clone(), 160);
    assert_eq!(limits.get("api.close.com/api/v1/me/"), Some(&160));
    assert_eq!(key.to_string(), "api.close.com/api/v1/me/");
    assert_eq!(format!("{key:?}"), "EndpointKey(\"api.close.com/api/v1/me/\")");
    let other = EndpointKey::from_url("https://api.close.com/api/v1/lead/").unwrap();
    assert!(other < key);
}
