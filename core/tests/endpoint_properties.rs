//! Endpoint keys over arbitrary input: never a panic, only the key
//! alphabet, never past the capacity; keys read back as URLs give
//! themselves; ids do not change a key; different paths do not share one.

use proptest::prelude::*;
use ratekeeper_core::{EndpointKey, EndpointRule, EndpointRules};

const CASES: u32 = 10_000;

const RULES: EndpointRules<'static> = EndpointRules::new(&[
    EndpointRule::bucket("api.close.com/api/v1/data/search/", "search"),
    EndpointRule::template("/v1/items/*"),
    EndpointRule::template("*.example/literal/{id}/"),
]);

/// Every byte in the key alphabet; braces only as `{id}`; `%` followed by
/// two uppercase hex digits.
fn is_safe(key: &EndpointKey) -> bool {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > EndpointKey::CAPACITY {
        return false;
    }
    let mut rest = bytes;
    while let [first, tail @ ..] = rest {
        rest = match first {
            b'{' => match tail.strip_prefix(b"id}") {
                Some(after) => after,
                None => return false,
            },
            b'%' => match tail {
                [high, low, after @ ..]
                    if [high, low]
                        .iter()
                        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)) =>
                {
                    after
                }
                _ => return false,
            },
            b if b.is_ascii_alphanumeric() || b"-._~/#@+".contains(b) => tail,
            _ => return false,
        };
    }
    true
}

/// Text made of the bytes URLs are made of, weighted towards the ones with
/// a meaning, so that the structure is exercised and not only rejected.
fn url_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9]{1,6}",
        2 => Just("/".to_owned()),
        1 => Just("//".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("%2e".to_owned()),
        1 => Just("%2F".to_owned()),
        1 => Just(":".to_owned()),
        1 => Just("@".to_owned()),
        1 => Just("?".to_owned()),
        1 => Just("#".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("[".to_owned()),
        1 => Just("]".to_owned()),
        1 => Just("{id}".to_owned()),
        1 => Just("_".to_owned()),
        1 => Just("-".to_owned()),
        1 => "%[0-9a-fA-F]{2}",
        1 => "%[0-9a-zA-Z]{0,2}",
        1 => "[ \t\r\n{}*?\"'<>|^`+=;,!$&()~]",
        1 => "\\PC",
    ];
    let prefix = prop_oneof![
        3 => Just(""),
        3 => Just("https://"),
        1 => Just("http://"),
        1 => Just("//"),
        1 => Just("wss:"),
        1 => Just("ftp://"),
        1 => Just("x-y+z.1://"),
    ];
    (prefix, prop::collection::vec(piece, 0..40))
        .prop_map(|(prefix, pieces)| format!("{prefix}{}", pieces.concat()))
}

/// A key that came from the URL alone (no tenant, no bucket, not cut)
/// must give itself when read back, bare and with a scheme.
fn check_fixed_point(rules: &EndpointRules<'_>, key: &EndpointKey) -> Result<(), TestCaseError> {
    if key.is_truncated() || key.as_str().contains('@') {
        return Ok(());
    }
    let bare = rules.key(key.as_str());
    prop_assert_eq!(bare.as_ref(), Ok(key));
    let with_scheme = rules.key(format!("https://{key}"));
    prop_assert_eq!(with_scheme.as_ref(), Ok(key));
    Ok(())
}

/// Path words that are never ids: short, letters only.
fn word() -> impl Strategy<Value = String> {
    "[a-z][a-zA-Z_-]{0,11}"
}

/// Ids of every shape the guess knows, as real APIs issue them.
fn id() -> impl Strategy<Value = String> {
    let base62 = |len: usize| prop::collection::vec(prop::sample::select(BASE62.to_vec()), len);
    prop_oneof![
        // Numbers.
        any::<u64>().prop_map(|n| n.to_string()),
        // UUIDs, either case.
        (any::<u128>(), any::<bool>()).prop_map(|(n, upper)| {
            let hex = format!("{n:032x}");
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            );
            if upper { uuid.to_uppercase() } else { uuid }
        }),
        // Close: `lead_` and 40 base62 characters, one a digit at least.
        (
            prop::sample::select(vec!["lead", "cont", "acti", "oppo", "orga", "user", "task"]),
            base62(39),
            0u8..10
        )
            .prop_map(|(prefix, tail, digit)| format!(
                "{prefix}_{}{digit}",
                String::from_utf8(tail).unwrap()
            )),
        // Stripe-like `cus_` with a short tail.
        ("[a-z]{2,4}", 0u32..1_000_000).prop_map(|(prefix, n)| format!("{prefix}_{n}")),
        // MongoDB ObjectIds.
        any::<[u8; 12]>().prop_map(|bytes| format!(
            "{}1",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )),
        // GoHighLevel: 20 base62 characters, two of them digits.
        (base62(18), 0u8..10, 0u8..10, 0usize..18).prop_map(|(mut token, a, b, at)| {
            token.insert(at, b'0' + a);
            token.insert(at / 2, b'0' + b);
            String::from_utf8(token).unwrap()
        }),
        // Emails.
        ("[a-z0-9._+]{1,12}", "[a-z]{1,10}", "[a-z]{2,6}")
            .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}")),
        // The placeholder itself, raw or encoded.
        Just("{id}".to_owned()),
        Just("%7Bid%7D".to_owned()),
    ]
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// One path segment of a template: a word, or a slot for an id.
#[derive(Clone, Debug)]
enum Slot {
    Word(String),
    Id,
}

fn template() -> impl Strategy<Value = (String, Vec<Slot>, bool)> {
    let slot = prop_oneof![2 => word().prop_map(Slot::Word), 1 => Just(Slot::Id)];
    (
        "[a-z]{1,10}\\.(com|io|example)",
        prop::collection::vec(slot, 0..8),
        any::<bool>(),
    )
}

/// The URL of `template` with its id slots filled from `ids`, and some
/// decoration that must not matter.
fn fill(host: &str, slots: &[Slot], trailing: bool, ids: &[String], decoration: u8) -> String {
    let mut ids = ids.iter().cycle();
    let mut path = String::new();
    for slot in slots {
        path.push('/');
        match slot {
            Slot::Word(word) => path.push_str(word),
            Slot::Id => path.push_str(ids.next().unwrap()),
        }
    }
    if trailing {
        path.push('/');
    }
    match decoration % 6 {
        0 => format!("https://{host}{path}"),
        1 => format!("https://user:pw@{}:443{path}?page=2&q=x", host.to_uppercase()),
        2 => format!("http://{host}:80{path}#section"),
        3 => format!("{host}{path}"),
        4 => format!("https://{host}.{path}?"),
        _ => format!("https://{host}/./{}", path.trim_start_matches('/')),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_safe(url in prop::collection::vec(any::<u8>(), 0..300), tenant in prop::collection::vec(any::<u8>(), 0..40)) {
        for rules in [EndpointRules::NONE, RULES] {
            match (rules.key(&url), rules.key_for_tenant(&url, &tenant)) {
                (Ok(plain), Ok(with_tenant)) => {
                    prop_assert!(is_safe(&plain), "{:?}", plain);
                    prop_assert!(is_safe(&with_tenant), "{:?}", with_tenant);
                    check_fixed_point(&rules, &plain)?;
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
            }
        }
    }

    #[test]
    fn url_like_text_stays_safe_and_keys_are_fixed_points(url in url_soup(), tenant in "\\PC{0,12}") {
        for rules in [EndpointRules::NONE, RULES] {
            if let Ok(key) = rules.key(&url) {
                prop_assert!(is_safe(&key), "{:?} from {:?}", key, url);
                check_fixed_point(&rules, &key)?;
                let with_tenant = rules.key_for_tenant(&url, &tenant).unwrap();
                prop_assert!(is_safe(&with_tenant), "{:?}", with_tenant);
            }
        }
    }

    #[test]
    fn urls_differing_only_in_ids_share_a_key(
        (host, slots, trailing) in template(),
        first in prop::collection::vec(id(), 1..4),
        second in prop::collection::vec(id(), 1..4),
        decorations in (any::<u8>(), any::<u8>()),
    ) {
        let a = fill(&host, &slots, trailing, &first, decorations.0);
        let b = fill(&host, &slots, trailing, &second, decorations.1);
        let key_a = EndpointKey::from_url(&a).unwrap();
        let key_b = EndpointKey::from_url(&b).unwrap();
        prop_assert_eq!(&key_a, &key_b, "{} vs {}", a, b);
        // And the key is the template itself.
        let placeholders = vec!["{id}".to_owned()];
        let mut template = fill(&host, &slots, trailing, &placeholders, 3);
        if slots.is_empty() && !trailing {
            template.push('/');
        }
        if template.len() <= EndpointKey::CAPACITY {
            prop_assert_eq!(key_a.as_str(), template);
        }
        check_fixed_point(&EndpointRules::NONE, &key_a)?;
    }

    #[test]
    fn different_paths_get_different_keys(
        host in "[a-z]{1,10}\\.example",
        a in (prop::collection::vec(word(), 0..8), any::<bool>()),
        b in (prop::collection::vec(word(), 0..8), any::<bool>()),
        long in prop::option::of("[a-z]{130,300}"),
    ) {
        let path = |(words, trailing): &(Vec<String>, bool)| {
            let mut path: String = words.iter().map(|word| format!("/{word}")).collect();
            if let Some(long) = &long {
                // Long enough to be cut: the difference must survive in the hash.
                path = format!("/{long}{path}");
            }
            if *trailing || path.is_empty() {
                path.push('/');
            }
            path
        };
        let (path_a, path_b) = (path(&a), path(&b));
        let key_a = EndpointKey::from_url(format!("https://{host}{path_a}")).unwrap();
        let key_b = EndpointKey::from_url(format!("https://{host}{path_b}")).unwrap();
        prop_assert_eq!(path_a == path_b, key_a == key_b, "{:?} {:?}", key_a, key_b);
        prop_assert_eq!(key_a.is_truncated(), long.is_some());
    }

    #[test]
    fn different_hosts_ports_and_tenants_get_different_keys(
        hosts in ("[a-z]{1,10}\\.example", "[a-z]{1,10}\\.example"),
        ports in (prop::option::of(1u16..), prop::option::of(1u16..)),
        tenants in ("[a-zA-Z0-9_#/@{}: ]{0,8}", "[a-zA-Z0-9_#/@{}: ]{0,8}"),
        path in "(/[a-z]{1,8}){0,3}",
    ) {
        let url = |host: &str, port: Option<u16>| match port {
            Some(port) => format!("http://{host}:{port}{path}"),
            None => format!("http://{host}{path}"),
        };
        let rules = EndpointRules::NONE;
        let a = rules.key_for_tenant(url(&hosts.0, ports.0), &tenants.0).unwrap();
        let b = rules.key_for_tenant(url(&hosts.1, ports.1), &tenants.1).unwrap();
        let port = |port: Option<u16>| port.filter(|&port| port != 80);
        let same = hosts.0 == hosts.1 && port(ports.0) == port(ports.1) && tenants.0 == tenants.1;
        prop_assert_eq!(same, a == b, "{:?} {:?}", a, b);
    }

    #[test]
    fn percent_encoding_and_host_case_do_not_matter(
        host in "[a-z]{1,10}\\.example",
        segments in prop::collection::vec("[a-zA-Z0-9._~-]{1,12}", 0..6),
        encode in prop::collection::vec(any::<bool>(), 64),
    ) {
        let plain: String = segments.iter().map(|segment| format!("/{segment}")).collect();
        let mut flags = encode.iter().cycle();
        let encoded: String = plain
            .chars()
            .map(|c| if c != '/' && *flags.next().unwrap() { format!("%{:02X}", c as u32) } else { c.to_string() })
            .collect();
        let a = EndpointKey::from_url(format!("https://{host}{plain}"));
        let b = EndpointKey::from_url(format!("https://{}{encoded}", host.to_uppercase()));
        prop_assert_eq!(a, b);
    }
}
