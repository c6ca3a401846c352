//! Endpoint keys: which bucket a request belongs to.
//!
//! APIs limit per endpoint, not per URL: every `GET /api/v1/lead/<id>/` of
//! Close draws on the same budget whatever the lead. An [`EndpointKey`] names
//! that budget: the host, an optional tenant, and the path with its ids
//! replaced by `{id}`.
//!
//! ```
//! use ratekeeper_core::EndpointKey;
//!
//! let key = EndpointKey::from_url("https://api.close.com/api/v1/lead/lead_123/?x=1").unwrap();
//! assert_eq!(key.as_str(), "api.close.com/api/v1/lead/{id}/");
//! ```
//!
//! # The key
//!
//! ```text
//! key      = host [ "%3A" port ] [ "#" tenant ] ( path / "@" bucket ) [ "+" hash ]
//! path     = "/" / 1*( "/" segment ) [ "/" ]
//! segment  = "{id}" [ "." extension ] / 1*( unreserved / pct )
//! ```
//!
//! - **host**: percent-decoded, ASCII-lowercased, trailing dots removed, then
//!   written back with every byte outside `[a-z0-9-._~]` percent-encoded. An
//!   IPv6 literal keeps its brackets (encoded: `[::1]` is `%5B%3A%3A1%5D`);
//!   it is not otherwise normalized. Internationalized names should be given
//!   in their ASCII (punycode) form, as HTTP clients send them; raw UTF-8
//!   still makes a stable key, byte by byte.
//! - **port**: only when it is not the scheme's default (80 for `http` and
//!   `ws`, 443 for `https` and `wss`, 21 for `ftp`; a URL without a scheme is
//!   read as `https`). The `:` is written `%3A` so that a key never holds a
//!   `:`, the usual separator of Redis key parts.
//! - **tenant**: what the caller passes to [`EndpointRules::key_for_tenant`]
//!   (GoHighLevel limits per location, so its location id), after a `#`:
//!   `services.leadconnectorhq.com#ve9EPM428h8vShlRW1KT/contacts/{id}`. A
//!   `#` can appear nowhere else in a key.
//! - **path**: split on `/` (and `\`, as browsers and the `url` crate do for
//!   `http`), empty segments dropped (`//` is `/`), `.` and `..` resolved,
//!   also when percent-encoded (`%2e`), never above the root. A trailing
//!   slash is kept, since servers may route on it. Every segment is
//!   percent-decoded, then either replaced by `{id}` or written back with
//!   every byte outside the unreserved set (`[A-Za-z0-9-._~]`) encoded as
//!   `%XX`; so `%41` and `A` give the same key, and an encoded `/` (`%2F`)
//!   stays part of its segment. Case is kept: paths are case-sensitive.
//! - **bucket**: a name given by an [`EndpointRule::bucket`] replaces the
//!   whole path, after an `@`, so it can never equal a path.
//! - The scheme, the userinfo, the query and the fragment are dropped.
//!
//! # Which segments are ids
//!
//! A segment becomes `{id}` when its decoded bytes are:
//!
//! - `{id}` itself, so that a key read back as a URL gives itself;
//! - a number: ASCII digits only (`12345`);
//! - a UUID: `8-4-4-4-12` hex digits, either case;
//! - long hex: 16 or more hex digits with at least one decimal digit
//!   (MongoDB ObjectIds, hashes, UUIDs without dashes);
//! - a prefixed id: lowercase words joined by `_`, then `_` and an
//!   alphanumeric tail with a digit that is all digits or 4 or more
//!   characters long (Close `lead_abc123`, `cont_…`, `acti_…`; Stripe
//!   `cus_NffrFeUfNV2Hib`, `cs_test_a1b2c3d4`). `custom_field` is not one:
//!   its tail has no digit;
//! - a random token: 16 or more characters of `[A-Za-z0-9]` with at least
//!   two digits, or with no digit but lowercase letters and at least 30 %
//!   of its letters uppercase (GoHighLevel `ve9EPM428h8vShlRW1KT`, ULIDs,
//!   KSUIDs); with `-` or `_` inside, it needs both cases and a digit
//!   (nanoid `V1StGXR8_Z5jdHi6B-myT`); or 20 to 32 lowercase letters
//!   (Supabase project refs), longer than words and shorter than slugs. camelCase words (`getContactsByBusinessId`) have
//!   too few capitals to count;
//! - an email address: one `@` with text before it and a dotted domain after.
//!
//! A segment that is not an id but is an id, a dot and an extension of 1 to
//! 5 alphanumerics starting with a letter keeps its extension:
//! `632910392.json` (Shopify) becomes `{id}.json`.
//!
//! The guess errs towards keeping words: a word taken for an id merges two
//! endpoints into one bucket (too slow, never 429), an id taken for a word
//! splits a bucket per id (too fast). What the guess gets wrong, rules fix.
//!
//! # Rules
//!
//! [`EndpointRules`] is a table of [`EndpointRule`]s, built in a `const`
//! with no allocation, tried in order before the guess; the first that
//! matches wins. A rule's pattern is an optional host, then path segments:
//!
//! - `api.close.com/api/v1/data/search/` applies to that host only (ASCII
//!   case-insensitive, port ignored); `*.supabase.co/rest/v1` to any
//!   subdomain of `supabase.co`; `/v1/items` to every host;
//! - it matches a path that *starts with* its segments (a trailing slash in
//!   the pattern makes no difference), comparing percent-decoded bytes;
//! - a segment `*` or `{id}` matches any one segment.
//!
//! A [`EndpointRule::template`] makes the matched segments `{id}` where the
//! pattern has a wildcard and keeps them as they are where it has a literal
//! (even if they look like ids); the rest of the path is guessed as usual.
//! A [`EndpointRule::bucket`] puts every matching path into one named bucket.
//!
//! ```
//! use ratekeeper_core::{EndpointRule, EndpointRules};
//!
//! const RULES: EndpointRules<'static> = EndpointRules::new(&[
//!     // Instantly limits a whole workspace, whatever the endpoint.
//!     EndpointRule::bucket("api.instantly.ai/", "workspace"),
//!     // `widget` is an id here, although it does not look like one.
//!     EndpointRule::template("/v1/items/*"),
//! ]);
//! let key = RULES.key("https://api.instantly.ai/api/v2/leads/list").unwrap();
//! assert_eq!(key.as_str(), "api.instantly.ai@workspace");
//! let key = RULES.key("https://shop.example/v1/items/widget/stock").unwrap();
//! assert_eq!(key.as_str(), "shop.example/v1/items/{id}/stock");
//! ```
//!
//! # Bounded and safe in a Redis key
//!
//! A key is at most [`EndpointKey::CAPACITY`] (128) bytes, kept inline. A
//! longer one keeps its first bytes (up to 111, never cutting a `%XX` or
//! `{id}` in two) and ends in `+` and 16 hex digits of a 64-bit FNV-1a hash
//! of the rest: stable across processes, machines and versions of
//! ratekeeper, and different long paths share a bucket only by a hash
//! collision. A `+` appears nowhere else, so a cut key never equals a whole
//! one.
//!
//! Every byte of a key is in `A-Z a-z 0-9 - . _ ~ / % # @ +`, or in the
//! four bytes of an `{id}`: no space, no control byte, no `:`, no glob
//! character (`*?[]\`), no quote, and no brace outside `{id}`. A store can
//! put it after its own prefix with nothing in the key able to reach back.
//! Redis Cluster hashes only the first `{…}` of a key, which in a bare key
//! would be `{id}` and put every templated bucket in one slot: the Redis
//! store therefore writes its own hash tag before the key.
//!
//! A key read back as a URL gives itself (`key(key) == key`), unless it was
//! cut, or carries a tenant or a bucket name, which come from the caller and
//! the rules rather than the URL.
//!
//! # Never panics
//!
//! Any bytes in, a key or an [`EndpointKeyError`] out, in time linear in
//! the input, with no allocation and about 1 KiB of stack.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{Hash, Hasher};

/// The most bytes a key holds.
const CAPACITY: usize = 128;
/// `+` and 16 hex digits.
const HASH_SUFFIX_LEN: usize = 17;
/// Where a cut key's kept bytes end at the latest.
const PREFIX_MAX: usize = CAPACITY - HASH_SUFFIX_LEN;
/// The deepest path (in segments, after `.` and `..`) that makes a key.
const MAX_DEPTH: usize = 32;
/// What an id-like segment becomes.
const PLACEHOLDER: &[u8] = b"{id}";
/// A rule pattern segment that matches any one segment (as `{id}` does).
const WILDCARD: &[u8] = b"*";

/// Why a URL gave no key.
///
/// ```
/// use ratekeeper_core::{EndpointKey, EndpointKeyError};
///
/// assert_eq!(EndpointKey::from_url("/api/v1/me/"), Err(EndpointKeyError::NoHost));
/// assert_eq!(EndpointKey::from_url("https://api.close.com:99999/"), Err(EndpointKeyError::InvalidPort));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EndpointKeyError {
    /// The input was empty or only whitespace.
    Empty,
    /// The URL names no host: a path alone (`/api/v1/me/`), an empty
    /// authority (`https:///x`, `file:///x`), or a URL without one
    /// (`mailto:…`, `urn:…`).
    NoHost,
    /// The host holds a space or a control byte, or is a malformed IPv6
    /// literal.
    InvalidHost,
    /// The port is not a number from 0 to 65535.
    InvalidPort,
    /// The path is more than [`EndpointKey::MAX_DEPTH`] segments deep at
    /// some point; no API routes on such paths.
    PathTooDeep,
}

impl fmt::Display for EndpointKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointKeyError::Empty => "the URL is empty",
            EndpointKeyError::NoHost => "the URL has no host",
            EndpointKeyError::InvalidHost => "the URL's host is not valid",
            EndpointKeyError::InvalidPort => "the URL's port is not a number from 0 to 65535",
            EndpointKeyError::PathTooDeep => "the URL's path is more than 32 segments deep",
        })
    }
}

impl core::error::Error for EndpointKeyError {}

/// The bucket of a request: host, tenant and endpoint template, at most
/// [`EndpointKey::CAPACITY`] bytes of Redis-safe ASCII, kept inline.
///
/// See the [module documentation](self) for the format and what counts as
/// an id.
///
/// ```
/// use ratekeeper_core::EndpointKey;
///
/// let a = EndpointKey::from_url("https://services.leadconnectorhq.com/contacts/ve9EPM428h8vShlRW1KT").unwrap();
/// let b = EndpointKey::from_url("https://services.leadconnectorhq.com/contacts/Pw3Nx81KdLq0sTy7Vbe2").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a, "services.leadconnectorhq.com/contacts/{id}");
/// ```
#[derive(Clone)]
pub struct EndpointKey {
    bytes: [u8; CAPACITY],
    len: u8,
}

impl EndpointKey {
    /// The most bytes a key holds.
    pub const CAPACITY: usize = CAPACITY;
    /// The deepest path, in segments after resolving `.` and `..`, that
    /// makes a key; a deeper one is [`EndpointKeyError::PathTooDeep`].
    pub const MAX_DEPTH: usize = MAX_DEPTH;

    /// The key of `url` by the built-in guess alone, with no rules and no
    /// tenant: [`EndpointRules::NONE`]`.key(url)`.
    ///
    /// `url` may be a `&str` or raw bytes; it may lack a scheme
    /// (`api.close.com/api/v1/me/`), in which case it is read as `https`.
    ///
    /// ```
    /// use ratekeeper_core::EndpointKey;
    ///
    /// let key = EndpointKey::from_url("HTTPS://user:pw@API.Close.com:443//api/v1/./lead/../me/#top").unwrap();
    /// assert_eq!(key.as_str(), "api.close.com/api/v1/me/");
    /// ```
    pub fn from_url(url: impl AsRef<[u8]>) -> Result<EndpointKey, EndpointKeyError> {
        EndpointRules::NONE.key(url)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written, so this never takes the fallback.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The key as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Whether the key was too long and ends in the hash of what was cut.
    ///
    /// ```
    /// use ratekeeper_core::EndpointKey;
    ///
    /// let long = format!("https://example.com/{}", "segment/".repeat(20));
    /// let key = EndpointKey::from_url(&long).unwrap();
    /// assert!(key.is_truncated());
    /// assert_eq!(key.as_str().len(), EndpointKey::CAPACITY);
    /// ```
    pub fn is_truncated(&self) -> bool {
        self.as_bytes().contains(&b'+')
    }
}

impl fmt::Debug for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EndpointKey").field(&self.as_str()).finish()
    }
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for EndpointKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
    }
}

impl PartialEq for EndpointKey {
    fn eq(&self, other: &EndpointKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for EndpointKey {}

impl PartialEq<str> for EndpointKey {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EndpointKey {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for EndpointKey {
    fn partial_cmp(&self, other: &EndpointKey) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EndpointKey {
    fn cmp(&self, other: &EndpointKey) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for EndpointKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that maps keyed by `EndpointKey` can be
        // searched with a `&str` (`Borrow<str>`).
        self.as_str().hash(state);
    }
}

impl AsRef<str> for EndpointKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for EndpointKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// One user rule that overrides the guess for the paths it matches.
///
/// See the [module documentation](self#rules) for the pattern syntax.
///
/// ```
/// use ratekeeper_core::{EndpointRule, EndpointRules};
///
/// // Close counts every search against one limit.
/// const RULES: EndpointRules<'static> =
///     EndpointRules::new(&[EndpointRule::bucket("api.close.com/api/v1/data/search/", "search")]);
/// let key = RULES.key("https://api.close.com/api/v1/data/search/?q=x").unwrap();
/// assert_eq!(key.as_str(), "api.close.com@search");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EndpointRule<'r> {
    pattern: &'r str,
    bucket: Option<&'r str>,
}

impl<'r> EndpointRule<'r> {
    /// Every path matching `pattern` goes to the bucket `name`: the key is
    /// `host[#tenant]@name`. Several rules may name the same bucket, to
    /// share one limit between endpoints (Close's "endpoint groups").
    /// Bytes of `name` outside `[A-Za-z0-9-._~]` are percent-encoded.
    pub const fn bucket(pattern: &'r str, name: &'r str) -> EndpointRule<'r> {
        EndpointRule {
            pattern,
            bucket: Some(name),
        }
    }

    /// Paths matching `pattern` take `{id}` where it has `*` (or `{id}`)
    /// and keep their segment where it has a literal; the rest of the path
    /// is guessed.
    ///
    /// ```
    /// use ratekeeper_core::{EndpointRule, EndpointRules};
    ///
    /// // `report_2024` looks like a prefixed id; keep it.
    /// const RULES: EndpointRules<'static> = EndpointRules::new(&[EndpointRule::template("/api/v1/report_2024")]);
    /// let key = RULES.key("https://example.com/api/v1/report_2024/user_77").unwrap();
    /// assert_eq!(key.as_str(), "example.com/api/v1/report_2024/{id}");
    /// ```
    pub const fn template(pattern: &'r str) -> EndpointRule<'r> {
        EndpointRule {
            pattern,
            bucket: None,
        }
    }

    /// The rule's pattern, as given.
    pub const fn pattern(&self) -> &'r str {
        self.pattern
    }

    /// The bucket name of a [`bucket`](EndpointRule::bucket) rule.
    pub const fn bucket_name(&self) -> Option<&'r str> {
        self.bucket
    }

    /// The pattern's host (if any) and path.
    fn host_and_path(&self) -> (Option<&'r [u8]>, &'r [u8]) {
        let pattern = self.pattern.as_bytes();
        if pattern.first().is_none_or(|&b| is_slash(b)) {
            return (None, pattern);
        }
        match pattern.iter().position(|&b| is_slash(b)) {
            Some(slash) => match pattern.split_at_checked(slash) {
                Some((host, path)) => (Some(host), path),
                None => (Some(pattern), &[]),
            },
            None => (Some(pattern), &[]),
        }
    }

    /// Whether the rule applies to `path` on `host` (raw).
    fn matches(&self, host: &[u8], path: &Segments<'_>) -> bool {
        let (rule_host, rule_path) = self.host_and_path();
        if rule_host.is_some_and(|rule_host| !host_matches(rule_host, host)) {
            return false;
        }
        let mut segments = path.iter();
        path_segments(rule_path).all(|pattern| {
            segments.next().is_some_and(|segment| {
                is_wildcard(pattern) || Decoded::new(pattern).eq(Decoded::new(segment))
            })
        })
    }
}

/// A fixed table of [`EndpointRule`]s, tried in order, then the built-in
/// guess; what turns URLs into [`EndpointKey`]s.
///
/// Built in a `const` from a borrowed slice: no allocation, no capacity to
/// choose, and nothing to validate, since every pattern and name has a
/// meaning and every name is escaped on output.
///
/// ```
/// use ratekeeper_core::{EndpointRule, EndpointRules};
///
/// const RULES: EndpointRules<'static> = EndpointRules::new(&[EndpointRule::template("/v1/items/*")]);
/// let key = RULES.key_for_tenant("https://api.example.com/v1/items/abc?page=2", "org_42").unwrap();
/// assert_eq!(key.as_str(), "api.example.com#org_42/v1/items/{id}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EndpointRules<'r> {
    rules: &'r [EndpointRule<'r>],
}

impl<'r> EndpointRules<'r> {
    /// No rules: the built-in guess alone.
    pub const NONE: EndpointRules<'static> = EndpointRules { rules: &[] };

    /// A table of `rules`, tried in order: the first that matches wins.
    pub const fn new(rules: &'r [EndpointRule<'r>]) -> EndpointRules<'r> {
        EndpointRules { rules }
    }

    /// The rules, in order.
    pub const fn rules(&self) -> &'r [EndpointRule<'r>] {
        self.rules
    }

    /// The key of `url` (a `&str` or bytes).
    ///
    /// ```
    /// use ratekeeper_core::EndpointRules;
    ///
    /// let key = EndpointRules::NONE.key("https://api.close.com/api/v1/me/").unwrap();
    /// assert_eq!(key, "api.close.com/api/v1/me/");
    /// ```
    pub fn key(&self, url: impl AsRef<[u8]>) -> Result<EndpointKey, EndpointKeyError> {
        self.make_key(url.as_ref(), &[])
    }

    /// The key of `url` within `tenant`, for APIs that limit per tenant
    /// (GoHighLevel per location). The tenant follows the host after a
    /// `#`; an empty tenant is no tenant. Bytes of the tenant outside
    /// `[A-Za-z0-9-._~]` are percent-encoded.
    ///
    /// ```
    /// use ratekeeper_core::EndpointRules;
    ///
    /// let url = "https://services.leadconnectorhq.com/contacts/ve9EPM428h8vShlRW1KT";
    /// let key = EndpointRules::NONE.key_for_tenant(url, "loc_123").unwrap();
    /// assert_eq!(key.as_str(), "services.leadconnectorhq.com#loc_123/contacts/{id}");
    /// ```
    pub fn key_for_tenant(
        &self,
        url: impl AsRef<[u8]>,
        tenant: impl AsRef<[u8]>,
    ) -> Result<EndpointKey, EndpointKeyError> {
        self.make_key(url.as_ref(), tenant.as_ref())
    }

    fn make_key(&self, url: &[u8], tenant: &[u8]) -> Result<EndpointKey, EndpointKeyError> {
        let url = Url::parse(url)?;
        let path = Segments::resolve(url.path)?;
        let mut key = KeyWriter::new();
        key.encoded(HostBytes::new(url.host));
        if let Some(port) = url.port {
            key.token(b"%3A");
            key.number(port);
        }
        if !tenant.is_empty() {
            key.token(b"#");
            key.encoded(tenant.iter().copied());
        }
        match self.rules.iter().find(|rule| rule.matches(url.host, &path)) {
            Some(rule) => match rule.bucket {
                Some(name) => {
                    key.token(b"@");
                    key.encoded(name.bytes());
                }
                None => key.path(&path, path_segments(rule.host_and_path().1)),
            },
            None => key.path(&path, path_segments(&[])),
        }
        Ok(key.finish())
    }
}

/// The parts of a URL a key is made of.
struct Url<'a> {
    /// Raw, possibly percent-encoded; never empty.
    host: &'a [u8],
    /// `None` when absent or the scheme's default.
    port: Option<u16>,
    /// Raw, without query or fragment.
    path: &'a [u8],
}

impl<'a> Url<'a> {
    fn parse(input: &'a [u8]) -> Result<Url<'a>, EndpointKeyError> {
        // As browsers do: leading and trailing spaces and controls are not
        // part of a URL.
        let start = input.iter().position(|&b| b > b' ').unwrap_or(input.len());
        let end = input
            .iter()
            .rposition(|&b| b > b' ')
            .map_or(0, |last| last.saturating_add(1));
        let input = input.get(start..end).unwrap_or_default();
        if input.is_empty() {
            return Err(EndpointKeyError::Empty);
        }

        let (default_port, after_scheme) = match split_scheme(input) {
            Some((scheme, rest)) => {
                if let Some(port) = default_port(scheme) {
                    // `http:host`, `https:/host` and `https:\\host` all name
                    // the host for special schemes, in browsers and the
                    // `url` crate alike.
                    (Some(port), trim_slashes(rest))
                } else if let Some(rest) = rest.strip_prefix(b"//") {
                    (None, rest)
                } else if is_port(rest) {
                    // `localhost:8080/x`: a host and port with no scheme.
                    (Some(443), input)
                } else {
                    return Err(EndpointKeyError::NoHost);
                }
            }
            None => match input {
                [a, b, rest @ ..] if is_slash(*a) && is_slash(*b) => (Some(443), rest),
                [first, ..] if is_slash(*first) || *first == b'?' || *first == b'#' => {
                    return Err(EndpointKeyError::NoHost);
                }
                _ => (Some(443), input),
            },
        };

        let authority_end = after_scheme
            .iter()
            .position(|&b| is_slash(b) || b == b'?' || b == b'#')
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme
            .split_at_checked(authority_end)
            .unwrap_or((after_scheme, &[]));
        let path_end = rest
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(rest.len());
        let path = rest.get(..path_end).unwrap_or_default();

        // The last `@` ends the userinfo, as in browsers: in
        // `https://a@b@evil.example/` the request goes to evil.example.
        let host_port = match authority.iter().rposition(|&b| b == b'@') {
            Some(at) => authority.get(at.saturating_add(1)..).unwrap_or_default(),
            None => authority,
        };
        let (host, port) = split_host_port(host_port)?;
        if host.is_empty() {
            return Err(EndpointKeyError::NoHost);
        }
        if host.iter().any(|&b| b <= b' ' || b == 0x7f) {
            return Err(EndpointKeyError::InvalidHost);
        }
        if HostBytes::new(host).next().is_none() {
            // Only dots: no name left.
            return Err(EndpointKeyError::NoHost);
        }
        let port = parse_port(port)?.filter(|&port| Some(port) != default_port);
        Ok(Url { host, port, path })
    }
}

/// `scheme ":" rest`, when `input` starts with a syntactically valid scheme.
fn split_scheme(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = input
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    if input.get(colon) != Some(&b':') || !input.first()?.is_ascii_alphabetic() {
        return None;
    }
    let scheme = input.get(..colon)?;
    let rest = input.get(colon.saturating_add(1)..)?;
    Some((scheme, rest))
}

/// The default port of a special scheme; `None` for any other scheme.
fn default_port(scheme: &[u8]) -> Option<u16> {
    if scheme.eq_ignore_ascii_case(b"https") || scheme.eq_ignore_ascii_case(b"wss") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"ws") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case(b"ftp") {
        Some(21)
    } else {
        None
    }
}

/// Whether `rest` (after `name:`) starts with a port: digits up to the end
/// of the authority.
fn is_port(rest: &[u8]) -> bool {
    let end = rest
        .iter()
        .position(|&b| is_slash(b) || b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    let digits = rest.get(..end).unwrap_or_default();
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn trim_slashes(mut input: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = input
        && is_slash(*first)
    {
        input = rest;
    }
    input
}

fn is_slash(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Splits `host[:port]` or `[v6][:port]`.
fn split_host_port(host_port: &[u8]) -> Result<(&[u8], &[u8]), EndpointKeyError> {
    if host_port.first() == Some(&b'[') {
        let close = host_port
            .iter()
            .position(|&b| b == b']')
            .ok_or(EndpointKeyError::InvalidHost)?;
        let (host, after) = host_port
            .split_at_checked(close.saturating_add(1))
            .ok_or(EndpointKeyError::InvalidHost)?;
        let inner = host.get(1..close).unwrap_or_default();
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(EndpointKeyError::InvalidHost);
        }
        return match after {
            [] => Ok((host, &[])),
            [b':', port @ ..] => Ok((host, port)),
            _ => Err(EndpointKeyError::InvalidHost),
        };
    }
    match host_port.iter().position(|&b| b == b':') {
        Some(colon) => Ok((
            host_port.get(..colon).unwrap_or_default(),
            host_port.get(colon.saturating_add(1)..).unwrap_or_default(),
        )),
        None => Ok((host_port, &[])),
    }
}

/// An empty port is no port, as RFC 3986 says.
fn parse_port(digits: &[u8]) -> Result<Option<u16>, EndpointKeyError> {
    if digits.is_empty() {
        return Ok(None);
    }
    let mut value: u16 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(EndpointKeyError::InvalidPort);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u16::from(b.wrapping_sub(b'0'))))
            .ok_or(EndpointKeyError::InvalidPort)?;
    }
    Ok(Some(value))
}

/// The bytes of a host as it goes into a key: percent-decoded, lowercased,
/// without trailing dots (`api.close.com.` is `api.close.com`).
#[derive(Clone)]
struct HostBytes<'a> {
    decoded: Decoded<'a>,
    left: usize,
}

impl<'a> HostBytes<'a> {
    fn new(raw: &'a [u8]) -> HostBytes<'a> {
        let decoded = Decoded::new(raw);
        let mut left = 0usize;
        let mut total = 0usize;
        for b in decoded.clone() {
            total = total.saturating_add(1);
            if b != b'.' {
                left = total;
            }
        }
        HostBytes { decoded, left }
    }
}

impl Iterator for HostBytes<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        self.left = self.left.checked_sub(1)?;
        self.decoded.next().map(|b| b.to_ascii_lowercase())
    }
}

fn host_matches(rule_host: &[u8], host: &[u8]) -> bool {
    // A port in the rule is ignored, like the URL's.
    let rule_host = match rule_host.iter().position(|&b| b == b':') {
        Some(colon) => rule_host.get(..colon).unwrap_or_default(),
        None => rule_host,
    };
    let host = HostBytes::new(host);
    match rule_host.strip_prefix(b"*.") {
        Some(suffix) => {
            let len = host.left;
            let Some(skip) = len.checked_sub(suffix.len()) else {
                return false;
            };
            // A proper subdomain: something, a dot, then the suffix.
            let Some(dot) = skip.checked_sub(1).filter(|&dot| dot > 0) else {
                return false;
            };
            let mut tail = host.skip(dot);
            tail.next() == Some(b'.') && tail.eq(suffix.iter().map(u8::to_ascii_lowercase))
        }
        None => host.eq(rule_host.iter().map(u8::to_ascii_lowercase)),
    }
}

/// The segments of a pattern's path; empty ones (from `//` or a trailing
/// slash) are nothing.
fn path_segments(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| is_slash(b)).filter(|segment| !segment.is_empty())
}

fn is_wildcard(pattern_segment: &[u8]) -> bool {
    let decoded = Decoded::new(pattern_segment);
    decoded.clone().eq(WILDCARD.iter().copied()) || decoded.eq(PLACEHOLDER.iter().copied())
}

/// A path with `.`, `..` and empty segments resolved.
struct Segments<'a> {
    items: [&'a [u8]; MAX_DEPTH],
    depth: usize,
    trailing_slash: bool,
}

impl<'a> Segments<'a> {
    fn resolve(path: &'a [u8]) -> Result<Segments<'a>, EndpointKeyError> {
        let mut resolved = Segments {
            items: [&[]; MAX_DEPTH],
            depth: 0,
            trailing_slash: false,
        };
        for segment in path.split(|&b| is_slash(b)) {
            let mut decoded = Decoded::new(segment);
            let dots = match (decoded.next(), decoded.next(), decoded.next()) {
                (None, _, _) => 0,
                (Some(b'.'), None, _) => 1,
                (Some(b'.'), Some(b'.'), None) => 2,
                _ => {
                    let slot = resolved
                        .items
                        .get_mut(resolved.depth)
                        .ok_or(EndpointKeyError::PathTooDeep)?;
                    *slot = segment;
                    resolved.depth = resolved.depth.saturating_add(1);
                    resolved.trailing_slash = false;
                    continue;
                }
            };
            if dots == 2 {
                resolved.depth = resolved.depth.saturating_sub(1);
            }
            // `a/`, `a/.` and `b/..` all end in a directory.
            resolved.trailing_slash = true;
        }
        Ok(resolved)
    }

    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.items.iter().take(self.depth).copied()
    }
}

/// Percent-decoding, byte by byte; a `%` not followed by two hex digits is
/// itself.
#[derive(Clone)]
struct Decoded<'a> {
    rest: &'a [u8],
}

impl<'a> Decoded<'a> {
    fn new(raw: &'a [u8]) -> Decoded<'a> {
        Decoded { rest: raw }
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        if first == b'%'
            && let [high, low, more @ ..] = tail
            && let (Some(high), Some(low)) = (hex_value(*high), hex_value(*low))
        {
            self.rest = more;
            return Some(high.wrapping_mul(16) | low);
        }
        self.rest = tail;
        Some(first)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(b.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(b.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

fn hex_digit(nibble: u8) -> u8 {
    b"0123456789ABCDEF"
        .get(usize::from(nibble & 0xf))
        .copied()
        .unwrap_or(b'0')
}

/// RFC 3986 unreserved: the only bytes written as themselves in a host,
/// a segment, a tenant or a bucket name.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What a segment is made of, counted in one pass over its decoded bytes.
#[derive(Default)]
struct Counts {
    len: usize,
    digits: usize,
    upper: usize,
    lower: usize,
    hex: usize,
    dashes: usize,
    underscores: usize,
    ats: usize,
    controls: usize,
}

impl Counts {
    fn of(bytes: impl Iterator<Item = u8>) -> Counts {
        let mut counts = Counts::default();
        for b in bytes {
            counts.len = counts.len.saturating_add(1);
            if b.is_ascii_hexdigit() {
                counts.hex = counts.hex.saturating_add(1);
            }
            let class = match b {
                b'0'..=b'9' => &mut counts.digits,
                b'A'..=b'Z' => &mut counts.upper,
                b'a'..=b'z' => &mut counts.lower,
                b'-' => &mut counts.dashes,
                b'_' => &mut counts.underscores,
                b'@' => &mut counts.ats,
                0..=b' ' | 0x7f => &mut counts.controls,
                _ => continue,
            };
            *class = class.saturating_add(1);
        }
        counts
    }

    fn alphanumeric(&self) -> usize {
        self.digits.saturating_add(self.upper).saturating_add(self.lower)
    }
}

/// What a path segment becomes in a key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// Itself.
    Word,
    /// `{id}`.
    Id,
    /// `{id}` and the segment's extension (`632910392.json` is `{id}.json`,
    /// as Shopify's REST paths end), of this many bytes after the dot.
    IdWithExtension(usize),
}

/// The shape of a raw path segment; see the module documentation.
fn shape(raw: &[u8]) -> Shape {
    let bytes = Decoded::new(raw);
    if looks_like_id(bytes.clone()) {
        return Shape::Id;
    }
    let mut len = 0usize;
    let mut last_dot = None;
    for b in bytes.clone() {
        if b == b'.' {
            last_dot = Some(len);
        }
        len = len.saturating_add(1);
    }
    let Some(dot) = last_dot.filter(|&dot| dot > 0) else {
        return Shape::Word;
    };
    let mut extension = bytes.clone().skip(dot.saturating_add(1));
    let extension_len = len.saturating_sub(dot).saturating_sub(1);
    let extension_ok = (1..=5).contains(&extension_len)
        && extension.next().is_some_and(|b| b.is_ascii_alphabetic())
        && extension.all(|b| b.is_ascii_alphanumeric());
    if extension_ok && looks_like_id(bytes.take(dot)) {
        Shape::IdWithExtension(extension_len)
    } else {
        Shape::Word
    }
}

/// Whether the decoded bytes of a segment are an id.
fn looks_like_id(bytes: impl Iterator<Item = u8> + Clone) -> bool {
    if bytes.clone().eq(PLACEHOLDER.iter().copied()) {
        return true;
    }
    let counts = Counts::of(bytes.clone());
    if counts.len == 0 {
        return false;
    }
    counts.digits == counts.len
        || is_uuid(bytes.clone(), &counts)
        || (counts.len >= 16 && counts.hex == counts.len && counts.digits > 0)
        || is_random_token(&counts)
        || is_prefixed_id(bytes.clone(), &counts)
        || is_email(bytes, &counts)
}

fn is_uuid(bytes: impl Iterator<Item = u8>, counts: &Counts) -> bool {
    counts.len == 36
        && counts.dashes == 4
        && bytes.enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

fn is_random_token(counts: &Counts) -> bool {
    if counts.len < 16 {
        return false;
    }
    let alphanumeric = counts.alphanumeric();
    let separators = counts.dashes.saturating_add(counts.underscores);
    if alphanumeric.saturating_add(separators) != counts.len {
        return false;
    }
    if separators > 0 {
        return counts.upper > 0 && counts.lower > 0 && counts.digits > 0;
    }
    let letters = counts.upper.saturating_add(counts.lower);
    counts.digits >= 2
        || (counts.lower > 0 && counts.upper.saturating_mul(10) >= letters.saturating_mul(3))
        || ((20..=32).contains(&counts.len) && counts.lower == counts.len)
}

fn is_prefixed_id(bytes: impl Iterator<Item = u8>, counts: &Counts) -> bool {
    if counts.underscores == 0 {
        return false;
    }
    let mut underscores_seen = 0usize;
    // At the start a `_` would begin with an empty word, as after a `_`.
    let mut after_underscore = true;
    let mut tail_len = 0usize;
    let mut tail_digits = 0usize;
    for b in bytes {
        if underscores_seen < counts.underscores {
            if b == b'_' {
                if after_underscore {
                    return false;
                }
                underscores_seen = underscores_seen.saturating_add(1);
                after_underscore = true;
            } else if b.is_ascii_lowercase() {
                after_underscore = false;
            } else {
                return false;
            }
        } else if b.is_ascii_alphanumeric() {
            tail_len = tail_len.saturating_add(1);
            if b.is_ascii_digit() {
                tail_digits = tail_digits.saturating_add(1);
            }
        } else {
            return false;
        }
    }
    tail_digits > 0 && (tail_digits == tail_len || tail_len >= 4)
}

fn is_email(bytes: impl Iterator<Item = u8>, counts: &Counts) -> bool {
    if counts.ats != 1 || counts.controls > 0 {
        return false;
    }
    let mut local = 0usize;
    let mut domain = 0usize;
    let mut in_domain = false;
    let mut inner_dot = false;
    let mut last = 0u8;
    for b in bytes {
        if b == b'@' {
            in_domain = true;
            continue;
        }
        if in_domain {
            inner_dot |= b == b'.' && domain > 0;
            domain = domain.saturating_add(1);
        } else {
            local = local.saturating_add(1);
        }
        last = b;
    }
    local > 0 && inner_dot && last != b'.'
}

/// 64-bit FNV-1a: tiny, dependency-free, and fixed forever by its
/// definition, so cut keys agree across processes and versions.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Fnv1a::PRIME);
        }
    }
}

/// Writes a key token by token (a byte, a `%XX`, an `{id}`), so that a cut
/// never splits one; past the capacity, hashes instead.
struct KeyWriter {
    bytes: [u8; CAPACITY],
    len: usize,
    /// Where the key would be cut: the start of the last token that began
    /// at or before `PREFIX_MAX`.
    cut: usize,
    overflow: Option<Fnv1a>,
}

impl KeyWriter {
    fn new() -> KeyWriter {
        KeyWriter {
            bytes: [0; CAPACITY],
            len: 0,
            cut: 0,
            overflow: None,
        }
    }

    fn token(&mut self, token: &[u8]) {
        if let Some(hash) = &mut self.overflow {
            hash.write(token);
            return;
        }
        if self.len <= PREFIX_MAX {
            self.cut = self.len;
        }
        let end = self.len.saturating_add(token.len());
        match self.bytes.get_mut(self.len..end) {
            Some(room) => {
                room.iter_mut().zip(token).for_each(|(to, &from)| *to = from);
                self.len = end;
            }
            None => {
                let mut hash = Fnv1a(Fnv1a::OFFSET);
                hash.write(self.bytes.get(self.cut..self.len).unwrap_or_default());
                hash.write(token);
                self.overflow = Some(hash);
            }
        }
    }

    fn encoded(&mut self, bytes: impl Iterator<Item = u8>) {
        for b in bytes {
            if is_unreserved(b) {
                self.token(&[b]);
            } else {
                self.token(&[b'%', hex_digit(b >> 4), hex_digit(b)]);
            }
        }
    }

    fn number(&mut self, mut value: u16) {
        let mut digits = [0u8; 5];
        let mut start = digits.len();
        loop {
            start = start.saturating_sub(1);
            if let Some(digit) = digits.get_mut(start) {
                *digit = b'0'.wrapping_add((value % 10) as u8);
            }
            value /= 10;
            if value == 0 || start == 0 {
                break;
            }
        }
        self.token(digits.get(start..).unwrap_or_default());
    }

    fn path<'p>(&mut self, path: &Segments<'_>, mut pattern: impl Iterator<Item = &'p [u8]>) {
        if path.depth == 0 {
            self.token(b"/");
            return;
        }
        for segment in path.iter() {
            self.token(b"/");
            let shape = match pattern.next() {
                Some(pattern) if is_wildcard(pattern) => Shape::Id,
                Some(_) => Shape::Word,
                None => shape(segment),
            };
            match shape {
                Shape::Word => self.encoded(Decoded::new(segment)),
                Shape::Id => self.token(PLACEHOLDER),
                Shape::IdWithExtension(len) => {
                    self.token(PLACEHOLDER);
                    self.token(b".");
                    let decoded = Decoded::new(segment);
                    let skip = decoded.clone().count().saturating_sub(len);
                    self.encoded(decoded.skip(skip));
                }
            }
        }
        if path.trailing_slash {
            self.token(b"/");
        }
    }

    fn finish(mut self) -> EndpointKey {
        if let Some(hash) = self.overflow.take() {
            self.len = self.cut;
            let mut suffix = [b'+'; HASH_SUFFIX_LEN];
            for (i, digit) in suffix.iter_mut().skip(1).enumerate() {
                let shift = 60u32.saturating_sub(u32::try_from(i).unwrap_or(0).saturating_mul(4));
                *digit = hex_digit((hash.0.checked_shr(shift).unwrap_or(0) & 0xf) as u8).to_ascii_lowercase();
            }
            self.token(&suffix);
        }
        EndpointKey {
            bytes: self.bytes,
            len: u8::try_from(self.len).unwrap_or(0),
        }
    }
}
