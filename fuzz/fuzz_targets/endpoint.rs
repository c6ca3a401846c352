//! Endpoint keys from arbitrary bytes: never a panic, never a byte outside
//! the key alphabet, never longer than the capacity, and a key read back as
//! a URL gives itself.
//!
//! The input is the URL, optionally followed by a 0xFF byte and a tenant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratekeeper_core::{EndpointKey, EndpointRule, EndpointRules};

const RULES: EndpointRules<'static> = EndpointRules::new(&[
    EndpointRule::bucket("api.close.com/api/v1/data/search/", "search"),
    EndpointRule::bucket("*.instantly.ai", "work space{}"),
    EndpointRule::template("/v1/items/*/%7Bid%7D"),
    EndpointRule::template("/api/v1/report_2024"),
]);

/// Every byte in the key alphabet; braces only in `{id}`; `%` always
/// followed by two uppercase hex digits.
fn assert_alphabet(key: &EndpointKey) {
    let bytes = key.as_bytes();
    assert!(!bytes.is_empty() && bytes.len() <= EndpointKey::CAPACITY, "{key:?}");
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                assert_eq!(bytes.get(i..i + 4), Some(&b"{id}"[..]), "{key:?}");
                i += 4;
                continue;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).expect("two digits after %");
                assert!(hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')), "{key:?}");
                i += 3;
                continue;
            }
            b => assert!(
                b.is_ascii_alphanumeric() || b"-._~/#@+".contains(&b),
                "byte {b:#x} in {key:?}"
            ),
        }
        i += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let (url, tenant) = match data.iter().position(|&b| b == 0xff) {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (data, &[][..]),
    };
    for rules in [EndpointRules::NONE, RULES] {
        let plain = rules.key(url);
        let with_tenant = rules.key_for_tenant(url, tenant);
        match (&plain, &with_tenant) {
            (Ok(plain), Ok(with_tenant)) => {
                assert_alphabet(plain);
                assert_alphabet(with_tenant);
                // Only a bucket rule writes an `@` unencoded.
                let from_bucket = plain.as_str().contains('@');
                if !plain.is_truncated() && !from_bucket {
                    assert_eq!(rules.key(plain.as_bytes()).as_ref(), Ok(plain), "{url:?}");
                    let https = format!("https://{plain}");
                    assert_eq!(rules.key(&https).as_ref(), Ok(plain), "{url:?}");
                }
            }
            // The tenant changes the key, never whether there is one.
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("{plain:?} vs {with_tenant:?}"),
        }
    }
});
