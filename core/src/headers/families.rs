//! Which header names belong to which family, and how a family's fields
//! become [`Quota`]s. One pass over the headers keeps the recognised ones
//! (borrowed, not copied); a second pass over those resolves them.

use super::dates::{parse_http_date, parse_iso8601};
use super::numbers::{
    NumberError, looks_like_go_duration, mul_div, parse_decimal, parse_go_duration, widening_mul,
};
use super::structured::{
    BareItem, Part, Parts, bare_item, eq_lowercase, key_value, same_bytes, trim, unquoted,
};
use super::{
    Families, Format, MAX_COUNT, MAX_WAIT, ParseOptions, QUOTA_CAPACITY, Quota, QuotaUnit, RateLimitInfo,
    ResetUnit, UnixTime, WarningKind,
};
use crate::time::Nanos;

// Units a value is scaled by: 32 bits wide, as every unit read here is.
const NANOS_PER_SEC: u32 = 1_000_000_000;
const NANOS_PER_MILLI: u32 = 1_000_000;
const DAY: Nanos = Nanos::from_secs(86_400);

/// A family of fields that together state one quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Ietf,
    XRateLimit,
    XRateLimitDashed,
    GoHighLevelDaily,
    HubSpotDaily,
    HubSpotSecondly,
    HubSpotInterval,
    XApp24Hour,
    XUser24Hour,
    OpenAiRequests,
    OpenAiTokens,
    AnthropicRequests,
    AnthropicTokens,
    AnthropicInputTokens,
    AnthropicOutputTokens,
    Brevo,
}

/// The families whose fields are [`Group`]s.
const GROUPED_FAMILIES: u32 = Families::IETF_FIELDS
    | Families::X_RATELIMIT
    | Families::X_RATE_LIMIT
    | Families::GOHIGHLEVEL_DAILY
    | Families::HUBSPOT
    | Families::X_24HOUR
    | Families::OPENAI
    | Families::ANTHROPIC
    | Families::BREVO;

/// The families that can state policies (see [`Owner`]).
const POLICY_FAMILIES: u32 =
    Families::IETF | Families::IETF_FIELDS | Families::X_RATELIMIT | Families::X_RATE_LIMIT;

const GROUPS: [Group; 16] = [
    Group::Ietf,
    Group::XRateLimit,
    Group::XRateLimitDashed,
    Group::GoHighLevelDaily,
    Group::HubSpotDaily,
    Group::HubSpotSecondly,
    Group::HubSpotInterval,
    Group::XApp24Hour,
    Group::XUser24Hour,
    Group::OpenAiRequests,
    Group::OpenAiTokens,
    Group::AnthropicRequests,
    Group::AnthropicTokens,
    Group::AnthropicInputTokens,
    Group::AnthropicOutputTokens,
    Group::Brevo,
];

impl Group {
    const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The [`Families`] bit its names belong to.
    const fn family(self) -> u32 {
        match self {
            Group::Ietf => Families::IETF_FIELDS,
            Group::XRateLimit => Families::X_RATELIMIT,
            Group::XRateLimitDashed => Families::X_RATE_LIMIT,
            Group::GoHighLevelDaily => Families::GOHIGHLEVEL_DAILY,
            Group::HubSpotDaily | Group::HubSpotSecondly | Group::HubSpotInterval => Families::HUBSPOT,
            Group::XApp24Hour | Group::XUser24Hour => Families::X_24HOUR,
            Group::OpenAiRequests | Group::OpenAiTokens => Families::OPENAI,
            Group::AnthropicRequests
            | Group::AnthropicTokens
            | Group::AnthropicInputTokens
            | Group::AnthropicOutputTokens => Families::ANTHROPIC,
            Group::Brevo => Families::BREVO,
        }
    }

    const fn format(self) -> Format {
        match self {
            Group::Ietf => Format::IetfFields,
            Group::XRateLimit => Format::XRateLimit,
            Group::XRateLimitDashed => Format::XRateLimitDashed,
            Group::GoHighLevelDaily => Format::GoHighLevelDaily,
            Group::HubSpotDaily | Group::HubSpotSecondly | Group::HubSpotInterval => Format::HubSpot,
            Group::XApp24Hour | Group::XUser24Hour => Format::X24Hour,
            Group::OpenAiRequests | Group::OpenAiTokens => Format::OpenAi,
            Group::AnthropicRequests
            | Group::AnthropicTokens
            | Group::AnthropicInputTokens
            | Group::AnthropicOutputTokens => Format::Anthropic,
            Group::Brevo => Format::Brevo,
        }
    }

    const fn unit(self) -> QuotaUnit {
        match self {
            Group::OpenAiTokens
            | Group::AnthropicTokens
            | Group::AnthropicInputTokens
            | Group::AnthropicOutputTokens => QuotaUnit::Tokens,
            _ => QuotaUnit::Requests,
        }
    }

    /// The window the field names themselves state.
    const fn named_window(self) -> Option<Nanos> {
        match self {
            Group::GoHighLevelDaily | Group::HubSpotDaily | Group::XApp24Hour | Group::XUser24Hour => {
                Some(DAY)
            }
            Group::HubSpotSecondly => Some(Nanos::from_secs(1)),
            _ => None,
        }
    }

    /// Whether a bare number in this group's reset field follows the
    /// profile's unit (the generic `*-Reset` names) or is fixed by the
    /// vendor's documentation (seconds from now: Brevo, X's 24-hour fields
    /// are epoch seconds and caught by magnitude).
    const fn reset_follows_profile(self) -> bool {
        matches!(
            self,
            Group::Ietf | Group::XRateLimit | Group::XRateLimitDashed | Group::Brevo
        )
    }
}

/// A field's role within its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Limit,
    Remaining,
    Used,
    /// A reset time in any form (see the module docs).
    Reset,
    /// Seconds from now, possibly fractional (Discord).
    ResetAfter,
    /// An absolute time (GitLab's `-ResetTime`, Akamai's `-Next`).
    ResetTime,
    WindowSeconds,
    WindowMillis,
    FillRate,
}

const ROLE_COUNT: usize = 9;

/// The occurrences of one singleton field: the first, and the first that
/// differs from it.
#[derive(Clone, Copy, Debug)]
struct Occurrences<'a> {
    found: Option<(u16, &'a [u8])>,
    conflict: Option<u16>,
}

impl<'a> Occurrences<'a> {
    const NONE: Occurrences<'a> = Occurrences {
        found: None,
        conflict: None,
    };

    fn add<const F: u32>(&mut self, entry: Entry<'a>) {
        match self.found {
            None => self.found = Some((entry.header, entry.value)),
            Some((_, first)) if same::<F>(trim(first), trim(entry.value)) => {}
            Some(_) => {
                self.conflict.get_or_insert(entry.header);
            }
        }
    }
}

/// A recognised header name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Grouped(Group, Role),
    /// `RateLimit`: Close, draft-07 Dictionary, draft-08 List.
    RateLimit,
    /// `RateLimit-Policy`.
    RateLimitPolicy,
    /// A retry-after, by precedence (0 first; see [`Field::retry_unit`]).
    RetryAfter(u8),
    Date,
    Shopify,
    Salesforce,
    Zendesk,
}

impl Field {
    /// A bit per ungrouped field kind, for skipping absent ones.
    const fn bit(self) -> u16 {
        match self {
            Field::Grouped(..) => 0,
            Field::RateLimit => 1,
            Field::RateLimitPolicy => 1 << 1,
            Field::RetryAfter(..) => 1 << 2,
            Field::Date => 1 << 3,
            Field::Shopify => 1 << 4,
            Field::Salesforce | Field::Zendesk => 1 << 5,
        }
    }
}

impl Field {
    /// The [`Families`] bits that select it (a name read when any is).
    const fn families(self) -> u32 {
        match self {
            Field::Grouped(group, _) => group.family(),
            Field::RateLimit => Families::IETF,
            Field::RateLimitPolicy => Families::IETF | Families::IETF_FIELDS,
            Field::RetryAfter(0) => Families::RETRY_AFTER,
            Field::RetryAfter(_) => Families::VENDOR_RETRY_AFTER,
            Field::Date => Families::DATE,
            Field::Shopify => Families::SHOPIFY,
            Field::Salesforce => Families::SALESFORCE,
            Field::Zendesk => Families::ZENDESK,
        }
    }

    /// Nanoseconds per unit of a retry-after field: Oracle's
    /// `RequestLimit-Default-RetryAfter` (precedence 3) is in milliseconds,
    /// the others in seconds.
    const fn retry_unit(precedence: u8) -> u32 {
        if precedence == 3 {
            NANOS_PER_MILLI
        } else {
            NANOS_PER_SEC
        }
    }
}

const fn g(group: Group, role: Role) -> Field {
    Field::Grouped(group, role)
}

/// Every recognised name, lowercase, sorted by length and then bytes for
/// a binary search that compares bytes only among names of equal length.
const NAMES: [(&str, Field); 65] = [
    ("date", Field::Date),
    ("ratelimit", Field::RateLimit),
    ("retry-after", Field::RetryAfter(0)),
    ("x-rate-limit", g(Group::XRateLimitDashed, Role::Limit)),
    ("ratelimit-limit", g(Group::Ietf, Role::Limit)),
    ("ratelimit-reset", g(Group::Ietf, Role::Reset)),
    ("x-ratelimit-max", g(Group::XRateLimit, Role::Limit)),
    ("ratelimit-policy", Field::RateLimitPolicy),
    ("x-ratelimit-next", g(Group::XRateLimit, Role::ResetTime)),
    ("x-ratelimit-used", g(Group::XRateLimit, Role::Used)),
    ("sforce-limit-info", Field::Salesforce),
    ("x-ratelimit-limit", g(Group::XRateLimit, Role::Limit)),
    ("x-ratelimit-reset", g(Group::XRateLimit, Role::Reset)),
    ("x-ratelimit-retry", Field::RetryAfter(2)),
    ("ratelimit-observed", g(Group::Ietf, Role::Used)),
    ("x-rate-limit-limit", g(Group::XRateLimitDashed, Role::Limit)),
    ("x-rate-limit-reset", g(Group::XRateLimitDashed, Role::Reset)),
    ("ratelimit-remaining", g(Group::Ietf, Role::Remaining)),
    ("ratelimit-resettime", g(Group::Ietf, Role::ResetTime)),
    ("x-ratelimit-fillrate", g(Group::XRateLimit, Role::FillRate)),
    ("x-ratelimit-remaining", g(Group::XRateLimit, Role::Remaining)),
    ("x-sib-ratelimit-limit", g(Group::Brevo, Role::Limit)),
    ("x-sib-ratelimit-reset", g(Group::Brevo, Role::Reset)),
    (
        "x-rate-limit-remaining",
        g(Group::XRateLimitDashed, Role::Remaining),
    ),
    ("x-hubspot-ratelimit-max", g(Group::HubSpotInterval, Role::Limit)),
    ("x-ratelimit-limit-daily", g(Group::GoHighLevelDaily, Role::Limit)),
    ("x-ratelimit-reset-after", g(Group::XRateLimit, Role::ResetAfter)),
    ("x-ratelimit-retry-after", Field::RetryAfter(1)),
    ("x-app-limit-24hour-limit", g(Group::XApp24Hour, Role::Limit)),
    ("x-app-limit-24hour-reset", g(Group::XApp24Hour, Role::Reset)),
    ("x-ratelimit-limit-tokens", g(Group::OpenAiTokens, Role::Limit)),
    ("x-ratelimit-reset-tokens", g(Group::OpenAiTokens, Role::Reset)),
    ("x-hubspot-ratelimit-daily", g(Group::HubSpotDaily, Role::Limit)),
    ("x-sib-ratelimit-remaining", g(Group::Brevo, Role::Remaining)),
    ("x-user-limit-24hour-limit", g(Group::XUser24Hour, Role::Limit)),
    ("x-user-limit-24hour-reset", g(Group::XUser24Hour, Role::Reset)),
    (
        "x-ratelimit-limit-requests",
        g(Group::OpenAiRequests, Role::Limit),
    ),
    (
        "x-ratelimit-reset-requests",
        g(Group::OpenAiRequests, Role::Reset),
    ),
    (
        "x-ratelimit-daily-remaining",
        g(Group::GoHighLevelDaily, Role::Remaining),
    ),
    (
        "x-app-limit-24hour-remaining",
        g(Group::XApp24Hour, Role::Remaining),
    ),
    (
        "x-hubspot-ratelimit-secondly",
        g(Group::HubSpotSecondly, Role::Limit),
    ),
    (
        "x-ratelimit-interval-seconds",
        g(Group::XRateLimit, Role::WindowSeconds),
    ),
    (
        "x-ratelimit-remaining-tokens",
        g(Group::OpenAiTokens, Role::Remaining),
    ),
    (
        "x-hubspot-ratelimit-remaining",
        g(Group::HubSpotInterval, Role::Remaining),
    ),
    ("x-shopify-shop-api-call-limit", Field::Shopify),
    (
        "x-user-limit-24hour-remaining",
        g(Group::XUser24Hour, Role::Remaining),
    ),
    (
        "x-ratelimit-remaining-requests",
        g(Group::OpenAiRequests, Role::Remaining),
    ),
    ("requestlimit-default-retryafter", Field::RetryAfter(3)),
    ("zendesk-ratelimit-tickets-index", Field::Zendesk),
    (
        "anthropic-ratelimit-tokens-limit",
        g(Group::AnthropicTokens, Role::Limit),
    ),
    (
        "anthropic-ratelimit-tokens-reset",
        g(Group::AnthropicTokens, Role::Reset),
    ),
    (
        "x-ratelimit-interval-milliseconds",
        g(Group::XRateLimit, Role::WindowMillis),
    ),
    (
        "anthropic-ratelimit-requests-limit",
        g(Group::AnthropicRequests, Role::Limit),
    ),
    (
        "anthropic-ratelimit-requests-reset",
        g(Group::AnthropicRequests, Role::Reset),
    ),
    (
        "x-hubspot-ratelimit-daily-remaining",
        g(Group::HubSpotDaily, Role::Remaining),
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        g(Group::AnthropicTokens, Role::Remaining),
    ),
    (
        "anthropic-ratelimit-input-tokens-limit",
        g(Group::AnthropicInputTokens, Role::Limit),
    ),
    (
        "anthropic-ratelimit-input-tokens-reset",
        g(Group::AnthropicInputTokens, Role::Reset),
    ),
    (
        "anthropic-ratelimit-requests-remaining",
        g(Group::AnthropicRequests, Role::Remaining),
    ),
    (
        "x-hubspot-ratelimit-secondly-remaining",
        g(Group::HubSpotSecondly, Role::Remaining),
    ),
    (
        "anthropic-ratelimit-output-tokens-limit",
        g(Group::AnthropicOutputTokens, Role::Limit),
    ),
    (
        "anthropic-ratelimit-output-tokens-reset",
        g(Group::AnthropicOutputTokens, Role::Reset),
    ),
    (
        "x-hubspot-ratelimit-interval-milliseconds",
        g(Group::HubSpotInterval, Role::WindowMillis),
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        g(Group::AnthropicInputTokens, Role::Remaining),
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        g(Group::AnthropicOutputTokens, Role::Remaining),
    ),
];

/// The longest recognised name.
const LONGEST_NAME: usize = 43;

/// `NAME_RUNS[n]` is the index in [`NAMES`] of the first name at least `n`
/// bytes long, so the names of length `n` are `NAME_RUNS[n]..NAME_RUNS[n + 1]`.
// Evaluated at compile time, where a bad index or overflow fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const NAME_RUNS: [u8; LONGEST_NAME + 2] = {
    let mut runs = [0u8; LONGEST_NAME + 2];
    let mut len = 0;
    while len < runs.len() {
        let mut index = 0;
        while index < NAMES.len() && NAMES[index].0.len() < len {
            index += 1;
        }
        runs[len] = index as u8;
        len += 1;
    }
    runs
};

/// The total length of the recognised names.
const NAME_TEXT_LEN: usize = {
    let mut total = 0;
    let mut rest: &[(&str, Field)] = &NAMES;
    while let [(name, _), tail @ ..] = rest {
        total += name.len();
        rest = tail;
    }
    total
};

/// The recognised names back to back, in [`NAMES`] order, and their
/// fields: what [`classify`] reads (a slice per name would cost eight bytes
/// more each on a 32-bit target, sixteen on a 64-bit one).
// Evaluated at compile time, where a bad index or overflow fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const NAME_TABLE: ([u8; NAME_TEXT_LEN], [Field; NAMES.len()], [u16; LONGEST_NAME + 2]) = {
    let mut text = [0u8; NAME_TEXT_LEN];
    let mut fields = [Field::Date; NAMES.len()];
    // `starts[n]`: where in `text` the names `n` bytes long begin.
    let mut starts = [0u16; LONGEST_NAME + 2];
    let mut at = 0;
    let mut index = 0;
    while index < NAMES.len() {
        let name = NAMES[index].0.as_bytes();
        let mut byte = 0;
        while byte < name.len() {
            text[at + byte] = name[byte];
            byte += 1;
        }
        fields[index] = NAMES[index].1;
        at += name.len();
        index += 1;
    }
    let mut len = 0;
    let mut offset = 0;
    while len < starts.len() {
        starts[len] = offset as u16;
        if len + 1 < NAME_RUNS.len() {
            offset += len * (NAME_RUNS[len + 1] - NAME_RUNS[len]) as usize;
        }
        len += 1;
    }
    (text, fields, starts)
};

/// The field a header name is among every family's, matched without regard
/// to case. Only the few names of the same length are compared, each eight
/// bytes at a time from the end until the first difference, so most headers
/// of a response (content-type, server, etag, ...) cost a length lookup and
/// a word or two, and nothing is copied.
fn classify_any(name: &[u8]) -> Option<Field> {
    // Names come trimmed nearly always.
    let name = trim(name);
    let len = name.len();
    let (text, fields, starts) = &NAME_TABLE;
    let first = usize::from(*NAME_RUNS.get(len)?);
    let last = usize::from(*NAME_RUNS.get(len.wrapping_add(1))?);
    let mut start = usize::from(*starts.get(len)?);
    for index in first..last {
        let end = start.saturating_add(len);
        if same_name(text.get(start..end)?, name) {
            return fields.get(index).copied();
        }
        start = end;
    }
    None
}

/// How many names have families exactly `mask`, and the length of their
/// [`find`] table (each name and a byte for its length).
// Evaluated at compile time, where a bad index or overflow fails the build.
#[allow(clippy::arithmetic_side_effects)]
const fn names_of(mask: u32) -> (usize, usize) {
    let (mut count, mut table) = (0, 0);
    let mut rest: &[(&str, Field)] = &NAMES;
    while let [(name, field), tail @ ..] = rest {
        if field.families() == mask {
            count += 1;
            table += 1 + name.len();
        }
        rest = tail;
    }
    (count, table)
}

/// The names whose families are exactly `mask`, each after its length
/// (what [`find`] reads), and each one's field.
// Evaluated at compile time, where a bad index or overflow fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn names_table<const COUNT: usize, const TABLE: usize>(mask: u32) -> ([u8; TABLE], [Field; COUNT]) {
    let mut table = [0u8; TABLE];
    let mut fields = [Field::Date; COUNT];
    let (mut at, mut index) = (0, 0);
    let mut rest: &[(&str, Field)] = &NAMES;
    while let [(name, field), tail @ ..] = rest {
        if field.families() == mask {
            let name = name.as_bytes();
            table[at] = name.len() as u8;
            let mut byte = 0;
            while byte < name.len() {
                table[at + 1 + byte] = name[byte];
                byte += 1;
            }
            fields[index] = *field;
            at += 1 + name.len();
            index += 1;
        }
        rest = tail;
    }
    (table, fields)
}

/// Which of the words in `table` (lowercase, each after a byte of its
/// length) is `word` in any case: a family has a few names, and the
/// readers a few keys, compared in turn by this one loop. One slice for
/// the words and their lengths takes fewer arguments at every call.
#[inline(never)]
fn find(table: &[u8], word: &[u8]) -> Option<usize> {
    let mut rest = table;
    let mut index = 0usize;
    while let [len, tail @ ..] = rest {
        let (known, after) = tail.split_at_checked(usize::from(*len))?;
        if eq_lowercase(known, word) {
            return Some(index);
        }
        rest = after;
        // At most a word per byte of the table: never wraps.
        index = index.wrapping_add(1);
    }
    None
}

/// The field a header name is among the families `F` selects. Every family
/// selected: the one table of [`classify_any`]; fewer: a table per family
/// (built at compile time), so that a build links only the names it reads.
fn classify<const F: u32>(name: &[u8]) -> Option<Field> {
    if F & Families::ALL_FAMILIES == Families::ALL_FAMILIES {
        return classify_any(name);
    }
    let name = trim(name);
    macro_rules! look_in {
        ($($mask:expr),* $(,)?) => {$(
            if F & ($mask) != 0 {
                const SIZES: (usize, usize) = names_of($mask);
                static TABLE: ([u8; SIZES.1], [Field; SIZES.0]) = names_table($mask);
                if let Some(at) = find(&TABLE.0, name) {
                    return TABLE.1.get(at).copied();
                }
            }
        )*};
    }
    look_in!(
        Families::IETF,
        Families::IETF | Families::IETF_FIELDS,
        Families::IETF_FIELDS,
        Families::RETRY_AFTER,
        Families::X_RATELIMIT,
        Families::X_RATE_LIMIT,
        Families::GOHIGHLEVEL_DAILY,
        Families::HUBSPOT,
        Families::X_24HOUR,
        Families::OPENAI,
        Families::ANTHROPIC,
        Families::BREVO,
        Families::SHOPIFY,
        Families::SALESFORCE,
        Families::ZENDESK,
        Families::VENDOR_RETRY_AFTER,
        Families::DATE,
    );
    None
}

/// Whether `name` is `known` (lowercase, of the same length) in any case,
/// eight bytes at a time and from the end: names of one length mostly
/// share a prefix (`x-ratelimit-`) and differ in their last word.
fn same_name(known: &[u8], name: &[u8]) -> bool {
    let Some(mut at) = name.len().checked_sub(8) else {
        return known.iter().zip(name).all(|(&k, &n)| k == n.to_ascii_lowercase());
    };
    loop {
        if word(known, at) != ascii_lowercase(word(name, at)) {
            return false;
        }
        if at == 0 {
            return true;
        }
        at = at.saturating_sub(8);
    }
}

/// The eight bytes of `text` from `at`, as a little-endian word (zero past
/// the end).
fn word(text: &[u8], at: usize) -> u64 {
    text.get(at..at.saturating_add(8))
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Each byte of `word` ASCII-lowercased, all at once: a byte gets `0x20`
/// added exactly when it is in `A..=Z`.
const fn ascii_lowercase(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES << 7;
    // With each byte's high bit cleared, adding stays within the byte:
    // adding 0x80 − 0x41 sets the high bit from `A` (0x41) up, adding
    // 0x80 − 0x5B from just past `Z` (0x5A) up.
    let low7 = word & !HIGH;
    let from_a = low7.wrapping_add(ONES.wrapping_mul(0x3F));
    let past_z = low7.wrapping_add(ONES.wrapping_mul(0x25));
    let upper = from_a & !past_z & !word & HIGH;
    word | (upper >> 2)
}

/// A recognised field: what it is, where it was, its value.
#[derive(Clone, Copy, Debug)]
struct Entry<'a> {
    field: Field,
    header: u16,
    value: &'a [u8],
}

const ENTRY_CAPACITY: usize = 32;
const POLICY_CAPACITY: usize = 8;
const ITEM_CAPACITY: usize = 6;

/// Which limits a policy may be joined to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// `RateLimit-Policy`, or policies in `RateLimit-Limit`.
    Ietf,
    /// Policies in `X-RateLimit-Limit` (WHOOP).
    XRateLimit,
    /// Policies in `X-Rate-Limit-Limit`.
    XRateLimitDashed,
}

#[derive(Clone, Copy, Debug)]
struct Policy<'a> {
    owner: Owner,
    name: Option<&'a [u8]>,
    /// The quota value (`q`, or the bare Integer of drafts ≤ 07): every
    /// policy has one.
    quota: u64,
    window: Option<Nanos>,
    unit: QuotaUnit,
    header: u16,
    joined: bool,
    /// Set when another policy shares its join key with a different window.
    ambiguous: bool,
}

impl Policy<'_> {
    /// Whether the policy has the join key of `owner` and `name` (or, with
    /// no name, of `quota`): a limit with that key is joined to it.
    // In each of its two callers on a small target, where that is smaller.
    #[cfg_attr(target_pointer_width = "64", inline)]
    #[cfg_attr(not(target_pointer_width = "64"), inline(always))]
    fn keyed<const F: u32>(&self, owner: Owner, name: Option<&[u8]>, quota: u64) -> bool {
        same_owner::<F>(self.owner, owner)
            && match (self.name, name) {
                (Some(a), Some(b)) => same::<F>(a, b),
                (None, None) => self.quota == quota,
                _ => false,
            }
    }

    const NONE: Policy<'static> = Policy {
        owner: Owner::Ietf,
        name: None,
        quota: 0,
        window: None,
        unit: QuotaUnit::Requests,
        header: 0,
        joined: false,
        ambiguous: false,
    };
}

/// No policies: all zero bytes, so a build clears them at once rather
/// than policy by policy, as it does for an array built from one.
const NO_POLICIES: [Policy<'static>; POLICY_CAPACITY] = [Policy::NONE; POLICY_CAPACITY];

/// The reader's policies, and a spare slot past them where a policy that
/// does not fit is compared with those kept, as one that fits is.
const POLICY_SLOTS: [Policy<'static>; POLICY_CAPACITY + 1] = [Policy::NONE; POLICY_CAPACITY + 1];

#[derive(Clone, Copy, Debug)]
struct Item<'a> {
    /// Always a name: an item's bare item is one.
    name: Option<&'a [u8]>,
    /// `r`: every item has one.
    remaining: u64,
    reset_after: Option<Nanos>,
    header: u16,
}

impl Item<'_> {
    const NONE: Item<'static> = Item {
        name: None,
        remaining: 0,
        reset_after: None,
        header: 0,
    };
}

/// No items: all zero bytes, so a build clears them at once rather than
/// item by item, as it does for an array built from one.
const NO_ITEMS: [Item<'static>; ITEM_CAPACITY] = [Item::NONE; ITEM_CAPACITY];

/// Whether `a` and `b` are the same bytes: the standard comparison in the
/// full parser, which a host runs fastest, and one small loop in a
/// selection, which a small target links instead of a block compare.
fn same<const F: u32>(a: &[u8], b: &[u8]) -> bool {
    if full(F) { a == b } else { same_bytes(a, b) }
}

/// Whether policies of `X-RateLimit-Limit` or `X-Rate-Limit-Limit` can be
/// read (otherwise every policy is [`Owner::Ietf`]'s).
const fn x_owners(families: u32) -> bool {
    families & (Families::X_RATELIMIT | Families::X_RATE_LIMIT) != 0
}

/// Whether two owners are the same: always, when only
/// [`Owner::Ietf`] can own policies, which a selection need not compare.
fn same_owner<const F: u32>(a: Owner, b: Owner) -> bool {
    !x_owners(F) || a == b
}

/// Whether `families` selects everything: the full parser, tuned for a
/// host's speed. A selection is tuned for size (a firmware build's).
const fn full(families: u32) -> bool {
    families & Families::ALL == Families::ALL
}

/// A key the `RateLimit` and `RateLimit-Policy` readers know, in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Limit,
    Remaining,
    Reset,
    R,
    T,
    Q,
    W,
    Qu,
    /// `window` (polli-00, WHOOP): read as `w`.
    Window,
    Other,
}

impl Key {
    /// The keys, each after a byte of its length (read by [`find`], as
    /// names are), in the order of the variants they are.
    const TABLE: &'static [u8] = b"\x05limit\x09remaining\x05reset\x01r\x01t\x01q\x01w\x02qu\x06window";

    fn of(key: &[u8]) -> Key {
        // The position is the variant: no table of meanings.
        match find(Key::TABLE, key) {
            Some(0) => Key::Limit,
            Some(1) => Key::Remaining,
            Some(2) => Key::Reset,
            Some(3) => Key::R,
            Some(4) => Key::T,
            Some(5) => Key::Q,
            Some(6) => Key::W,
            Some(7) => Key::Qu,
            Some(8) => Key::Window,
            _ => Key::Other,
        }
    }

    /// A `key=value` part's key and value; [`Key::Other`] for a bare key,
    /// which every reader skips as it skips an unknown one. One step for
    /// every reader of a selection's keys. The value keeps its blanks: the
    /// number readers trim as they read, and only `qu` needs trimming
    /// first.
    #[inline(never)]
    fn of_part<'a>(part: &Part<'a>) -> (Key, &'a [u8]) {
        match part.key_and_raw_value() {
            Some((key, value)) => (Key::of(key), value),
            None => (Key::Other, &[]),
        }
    }
}

/// Everything gathered from one response before it is resolved.
struct Reader<'a, 'r, const F: u32> {
    /// The first `entry_count` are filled (and so for the other arrays).
    entries: &'r mut [Option<Entry<'a>>; ENTRY_CAPACITY],
    entry_count: usize,
    /// The first `policy_count` are kept; the last is the spare slot.
    policies: &'r mut [Policy<'a>; POLICY_CAPACITY + 1],
    policy_count: usize,
    /// How many of the kept policies [`Owner::Ietf`] owns that are named,
    /// and the last of them: what a lone draft-08 item is joined to when
    /// no name matches.
    named_policies: usize,
    last_named: usize,
    /// A selection's draft-08 items. `None` in the full parser, whose
    /// reader of `RateLimit` keeps its own, cleared only when the field is
    /// read: a host then clears none for most responses, and a small
    /// target reads them through the reader in fewer bytes.
    items: Option<&'r mut [Item<'a>; ITEM_CAPACITY]>,
    /// Bit `1 << group` for every group with a field present.
    groups_seen: u32,
    /// Bit [`Field::bit`] for every other field present.
    fields_seen: u16,
    reference: Option<UnixTime>,
    reset_unit: Option<ResetUnit>,
    close_profile: bool,
    info: &'r mut RateLimitInfo,
    /// Where a quota is built when every slot of `info` is taken, so that
    /// it is read, and warned about, as one that fits.
    spare: Quota,
}

/// What a free slot of [`RateLimitInfo`] holds.
pub(super) const EMPTY_QUOTA: Quota = Quota::new(Format::Close, QuotaUnit::Requests);

/// Reads `headers` into `info` (which starts empty), in place: the result
/// is large enough that building it elsewhere and moving it costs more than
/// the rest of a typical parse.
pub(super) fn parse<'a, const F: u32, I>(info: &mut RateLimitInfo, headers: I, options: &ParseOptions)
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    // The arrays live apart from the reader, which borrows them: built in
    // the reader, they were built elsewhere and moved in.
    let mut entries = [None; ENTRY_CAPACITY];
    let mut policies = POLICY_SLOTS;
    let mut items = NO_ITEMS;
    let mut reader = Reader::<F> {
        entries: &mut entries,
        entry_count: 0,
        policies: &mut policies,
        policy_count: 0,
        named_policies: 0,
        last_named: 0,
        items: if full(F) { None } else { Some(&mut items) },
        groups_seen: 0,
        fields_seen: 0,
        // Until a `Date` is read, if one is: see [`Reader::resolve`].
        reference: options.now,
        reset_unit: options.profile.reset_unit(),
        close_profile: same::<F>(options.profile.name().as_bytes(), b"close"),
        info,
        spare: EMPTY_QUOTA,
    };
    let mut too_many = false;
    for (position, (name, value)) in headers.into_iter().enumerate() {
        let Some(field) = classify::<F>(name) else {
            continue;
        };
        let header = u16::try_from(position).unwrap_or(u16::MAX);
        match reader.entries.get_mut(reader.entry_count) {
            Some(slot) => {
                *slot = Some(Entry { field, header, value });
                match field {
                    // A selection with no grouped family finds no such field.
                    Field::Grouped(group, _) if F & GROUPED_FAMILIES != 0 => {
                        reader.groups_seen |= group.bit()
                    }
                    Field::Grouped(..) => {}
                    other => reader.fields_seen |= other.bit(),
                }
                // Below the capacity, as a slot was found: never wraps.
                reader.entry_count = reader.entry_count.wrapping_add(1);
            }
            None if !too_many => {
                too_many = true;
                reader.warn(header, WarningKind::TooManyFields);
            }
            None => {}
        }
    }
    reader.resolve(options);
}

/// An HTTP-date or JavaScript date, in the forms `F` selects.
fn http_date<const F: u32>(text: &[u8]) -> Option<UnixTime> {
    if F & (Families::HTTP_DATE | Families::JS_DATE) == 0 {
        return None;
    }
    parse_http_date::<F>(text)
}

/// An ISO 8601 time, when `F` selects the form.
fn iso_8601<const F: u32>(text: &[u8]) -> Option<UnixTime> {
    if F & Families::ISO_8601 == 0 {
        return None;
    }
    parse_iso8601(text)
}

/// A Go duration, when `F` selects the form.
fn go_duration<const F: u32>(text: &[u8]) -> Option<Nanos> {
    if F & Families::GO_DURATION == 0 {
        return None;
    }
    parse_go_duration(text)
}

/// The outcome of reading one value: a value, or a reason to ignore it.
type Read<T> = Result<T, WarningKind>;

// `#[inline(never)]` here marks steps called from many places or needed by
// few responses: inlined into the one generic `parse`, they made the
// firmware build (opt-level "s") kilobytes larger and no faster.
impl<'a, const F: u32> Reader<'a, '_, F> {
    #[inline(never)]
    fn warn(&mut self, header: u16, kind: WarningKind) {
        self.info.warnings.push(header, kind);
    }

    fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        // A host runs `take` fastest; a small target walks the filled
        // entries as a slice in fewer bytes.
        #[cfg(target_pointer_width = "64")]
        let filled = self.entries.iter().take(self.entry_count);
        #[cfg(not(target_pointer_width = "64"))]
        let filled = self
            .entries
            .get(..self.entry_count)
            .unwrap_or_default()
            .iter()
            .take(ENTRY_CAPACITY);
        filled.flatten().copied()
    }

    /// The one value of a singleton field, or `None` (with a warning) when
    /// it came more than once with different values.
    fn singleton(&mut self, field: Field) -> Option<(u16, &'a [u8])> {
        let mut occurrences = Occurrences::NONE;
        for entry in self.entries() {
            if entry.field == field {
                occurrences.add::<F>(entry);
            }
        }
        self.single(occurrences)
    }

    /// The one value among `occurrences`, or `None` with a warning on a
    /// conflict.
    fn single(&mut self, occurrences: Occurrences<'a>) -> Option<(u16, &'a [u8])> {
        if let Some(header) = occurrences.conflict {
            self.warn(header, WarningKind::Conflicting);
            return None;
        }
        occurrences.found
    }

    /// Every role's occurrences in `group`, gathered in one pass into
    /// `roles` (empty), in place: returned, the array is copied.
    fn gather(&self, group: Group, roles: &mut [Occurrences<'a>; ROLE_COUNT]) {
        for entry in self.entries() {
            if let Field::Grouped(of, role) = entry.field
                && of == group
                && let Some(slot) = roles.get_mut(role as usize)
            {
                slot.add::<F>(entry);
            }
        }
    }

    /// Keeps a value or records why not.
    fn keep<T>(&mut self, header: u16, read: Read<T>) -> Option<T> {
        match read {
            Ok(value) => Some(value),
            Err(kind) => {
                self.warn(header, kind);
                None
            }
        }
    }

    /// A count whose failure the caller reports (clamping is reported here).
    fn strict_count(&mut self, header: u16, raw: &[u8]) -> Read<u64> {
        let (value, clamped) = read_count(raw)?;
        if clamped {
            self.warn(header, WarningKind::Clamped);
        }
        Ok(value)
    }

    fn count(&mut self, header: u16, raw: &[u8]) -> Option<u64> {
        if !full(F) {
            // The same warnings, with one reader less linked.
            let read = self.strict_count(header, raw);
            return self.keep(header, read);
        }
        let read = read_count(raw);
        match read {
            Ok((value, clamped)) => {
                if clamped {
                    self.warn(header, WarningKind::Clamped);
                }
                Some(value)
            }
            Err(kind) => {
                self.warn(header, kind);
                None
            }
        }
    }

    /// A span, clamped to [`MAX_WAIT`] with a warning.
    #[inline(never)]
    fn span(&mut self, header: u16, read: Read<Nanos>) -> Option<Nanos> {
        let span = self.keep(header, read)?;
        Some(self.clamped(header, span))
    }

    /// `span`, or [`MAX_WAIT`] with a warning when longer.
    fn clamped(&mut self, header: u16, span: Nanos) -> Nanos {
        if span > MAX_WAIT {
            self.warn(header, WarningKind::Clamped);
            return MAX_WAIT;
        }
        span
    }

    /// The span from the `reference` time until `at`.
    #[inline(never)]
    fn until(reference: Option<UnixTime>, at: UnixTime) -> Read<Nanos> {
        let reference = reference.ok_or(WarningKind::NoReferenceTime)?;
        match at.as_nanos().checked_sub(reference.as_nanos()) {
            Some(ahead) if Nanos::from_nanos(ahead) <= MAX_WAIT => Ok(Nanos::from_nanos(ahead)),
            Some(_) => Err(WarningKind::ImplausibleTime),
            None if reference.as_nanos().saturating_sub(at.as_nanos()) <= DAY.as_nanos() => Ok(Nanos::ZERO),
            None => Err(WarningKind::ImplausibleTime),
        }
    }

    /// A reset value in any form; `unit` for a bare number, `None` for the
    /// magnitude rule; an absolute time is read against `reference`.
    fn reset(reference: Option<UnixTime>, raw: &[u8], unit: Option<ResetUnit>) -> Read<Nanos> {
        // A number is trimmed as it is read: only the other forms' tests
        // need the text trimmed first.
        let text = if F & Families::ALL_FORMS != 0 {
            trim(raw)
        } else {
            raw
        };
        // A form not selected is not looked for: its text is then no number
        // either, and malformed as it would be with the form's reader.
        if F & (Families::HTTP_DATE | Families::JS_DATE) != 0
            && text.first().is_some_and(u8::is_ascii_alphabetic)
        {
            return Self::until(reference, http_date::<F>(text).ok_or(WarningKind::Malformed)?);
        }
        if F & Families::ISO_8601 != 0 && text.get(4) == Some(&b'-') {
            return Self::until(reference, iso_8601::<F>(text).ok_or(WarningKind::Malformed)?);
        }
        if F & Families::GO_DURATION != 0 && looks_like_go_duration(text) {
            return go_duration::<F>(text).ok_or(WarningKind::Malformed);
        }
        let number = parse_decimal(text).map_err(number_warning)?;
        if number.saturated {
            return Err(WarningKind::ImplausibleTime);
        }
        let unit = unit.unwrap_or(if number.at_least(1_000_000_000_000) {
            ResetUnit::EpochMillis
        } else if number.at_least(1_000_000_000) {
            ResetUnit::EpochSeconds
        } else {
            ResetUnit::DeltaSeconds
        });
        // One scaling for every unit: a span from now, or a time to read
        // against the reference.
        let (per_unit, epoch) = match unit {
            ResetUnit::DeltaSeconds => (NANOS_PER_SEC, false),
            ResetUnit::DeltaMillis => (NANOS_PER_MILLI, false),
            ResetUnit::EpochSeconds => (NANOS_PER_SEC, true),
            ResetUnit::EpochMillis => (NANOS_PER_MILLI, true),
        };
        let scaled = number.scaled_short(per_unit);
        if epoch {
            return Self::until(reference, UnixTime::from_nanos(scaled.as_nanos()));
        }
        Ok(scaled)
    }

    /// Seconds from now, possibly fractional.
    fn delta(raw: &[u8], unit: u32) -> Read<Nanos> {
        let number = parse_decimal(raw).map_err(number_warning)?;
        Ok(number.scaled_short(unit))
    }

    /// Appends a quota, clamping remaining to limit.
    fn push_quota(&mut self, mut quota: Quota, header: u16) {
        if full(F) {
            // The full parser copies it whole, as fast as a host can.
            if let (Some(limit), Some(remaining)) = (quota.limit, quota.remaining)
                && remaining > limit
            {
                self.warn(header, WarningKind::RemainingAboveLimit);
                quota.remaining = Some(limit);
            }
            match self.info.quotas.get_mut(usize::from(self.info.quota_count)) {
                Some(slot) => {
                    *slot = quota;
                    self.info.quota_count = self.info.quota_count.saturating_add(1);
                }
                None => self.warn(header, WarningKind::TooManyQuotas),
            }
            return;
        }
        // A selection copies field by field: whole, a quota is a block copy
        // routine's call on thumb, which it may need for nothing else.
        let slot = self.next_quota();
        slot.format = quota.format;
        slot.unit = quota.unit;
        slot.limit = quota.limit;
        slot.remaining = quota.remaining;
        slot.reset_after = quota.reset_after;
        slot.window = quota.window;
        self.commit_quota(header);
    }

    /// [`Reader::push_quota`], but a selection builds `quota` where it is
    /// kept, with no copy.
    #[inline(always)]
    fn keep_quota(&mut self, quota: Quota, header: u16) {
        if full(F) {
            self.push_quota(quota, header);
        } else {
            *self.next_quota() = quota;
            self.commit_quota(header);
        }
    }

    /// Where the next quota is built: the next free slot, or the spare
    /// when none is left. A quota built there is kept by
    /// [`Reader::commit_quota`].
    // Called from every reader that keeps a quota: once on a small target,
    // inline on a host.
    #[cfg_attr(target_pointer_width = "64", inline)]
    #[cfg_attr(not(target_pointer_width = "64"), inline(never))]
    fn next_quota(&mut self) -> &mut Quota {
        match self.info.quotas.get_mut(usize::from(self.info.quota_count)) {
            Some(slot) => slot,
            None => &mut self.spare,
        }
    }

    /// Keeps the quota built in [`Reader::next_quota`] (with `remaining`
    /// clamped to `limit`), or warns that there is no slot left for it.
    fn commit_quota(&mut self, header: u16) {
        let quota = self.next_quota();
        if let (Some(limit), Some(remaining)) = (quota.limit, &mut quota.remaining)
            && *remaining > limit
        {
            *remaining = limit;
            self.warn(header, WarningKind::RemainingAboveLimit);
        }
        let count = self.info.quota_count;
        if usize::from(count) >= QUOTA_CAPACITY {
            self.warn(header, WarningKind::TooManyQuotas);
            return;
        }
        if F & Families::ALL != Families::ALL {
            // The governing quota chosen as quotas come, as [`governing`]
            // chooses it over them all: the first of the most restrictive.
            let governs = match (
                self.info.quotas.get(usize::from(count)),
                self.info.governing_quota(),
            ) {
                (Some(quota), Some(current)) => more_restrictive(quota, current),
                _ => true,
            };
            if governs {
                self.info.governing = Some(count);
            }
        }
        // Below the capacity: never wraps.
        self.info.quota_count = count.wrapping_add(1);
    }

    #[inline(never)]
    fn resolve(&mut self, options: &ParseOptions) {
        // Each step is gated on `F` as well as on what was seen, so that the
        // steps of families not selected are not linked.
        let seen = |families: u32, field: Field| F & families != 0 && self.fields_seen & field.bit() != 0;
        let (date, retry, rate_limit, policy, shopify, others) = (
            seen(Families::DATE, Field::Date),
            seen(
                Families::RETRY_AFTER | Families::VENDOR_RETRY_AFTER,
                Field::RetryAfter(0),
            ),
            seen(Families::IETF, Field::RateLimit),
            seen(Families::IETF | Families::IETF_FIELDS, Field::RateLimitPolicy),
            seen(Families::SHOPIFY, Field::Shopify),
            seen(Families::SALESFORCE | Families::ZENDESK, Field::Salesforce),
        );
        if let Some((header, raw)) = date.then(|| self.singleton(Field::Date)).flatten() {
            let date = http_date::<F>(raw).ok_or(WarningKind::Malformed);
            self.info.date = self.keep(header, date);
        }
        // The reference is the given now (as the reader starts) unless a
        // `Date` is read and the given now does not override it.
        if F & Families::DATE != 0 && !options.now_overrides_date {
            self.reference = self.info.date.or(options.now);
        }
        if retry {
            self.resolve_retry_after();
        }
        if full(F) {
            if policy {
                self.collect_policies();
            }
            if rate_limit {
                self.resolve_rate_limit_field();
            }
        } else if policy || rate_limit {
            self.resolve_ietf(options, policy, rate_limit);
        }
        if F & GROUPED_FAMILIES != 0 {
            let mut groups = self.groups_seen;
            while groups != 0 {
                let index = groups.trailing_zeros();
                groups &= groups.wrapping_sub(1);
                if let Some(&group) = GROUPS.get(index as usize) {
                    self.resolve_group(group);
                }
            }
        }
        if shopify || others {
            self.resolve_ratios();
        }
        if F & POLICY_FAMILIES != 0 {
            self.resolve_unjoined_policies();
        }
        if full(F) {
            self.info.governing = governing(self.info.quotas());
        }
    }

    // Out of line on a host, where that runs fastest; left to the
    // compiler on a small target, which inlines it in its one caller
    // (smaller there).
    #[cfg_attr(target_pointer_width = "64", inline(never))]
    fn resolve_retry_after(&mut self) {
        // Precedence 0 is `Retry-After`, 1 to 3 the vendors' fields.
        let first = if F & Families::RETRY_AFTER != 0 { 0 } else { 1 };
        let end = if F & Families::VENDOR_RETRY_AFTER != 0 {
            4
        } else {
            1
        };
        for precedence in first..end {
            let unit = Field::retry_unit(precedence);
            // Absent, it is no singleton: nothing to read, nothing to warn.
            let Some((header, raw)) = self.singleton(Field::RetryAfter(precedence)) else {
                continue;
            };
            // A delay is trimmed as it is read: only the date test needs the
            // text trimmed first.
            let text = if F & (Families::HTTP_DATE | Families::JS_DATE) != 0 {
                trim(raw)
            } else {
                raw
            };
            // A date, in a form not selected, is malformed as a delay.
            let read = if F & (Families::HTTP_DATE | Families::JS_DATE) != 0
                && text.first().is_some_and(u8::is_ascii_alphabetic)
            {
                http_date::<F>(text)
                    .ok_or(WarningKind::Malformed)
                    .and_then(|at| Self::until(self.reference, at))
            } else {
                Self::delta(text, unit)
            };
            if let Some(span) = self.span(header, read) {
                self.info.retry_after = Some(span);
                return;
            }
        }
    }

    fn add_policy(&mut self, policy: Policy<'a>) {
        *self.policy_slot() = Policy {
            ambiguous: false,
            ..policy
        };
        self.keep_policy();
    }

    /// Where the next policy is built: the next free slot, or the spare
    /// past them when none is left. [`Reader::keep_policy`] keeps it.
    fn policy_slot(&mut self) -> &mut Policy<'a> {
        let [slots @ .., spare] = &mut *self.policies;
        slots.get_mut(self.policy_count).unwrap_or(spare)
    }

    /// Keeps the policy built in [`Reader::policy_slot`] (not yet
    /// ambiguous), comparing it there with those kept: nothing of it is
    /// held aside across the comparisons. It is warned about when there
    /// is no slot left for it.
    fn keep_policy(&mut self) {
        let count = self.policy_count.min(POLICY_CAPACITY);
        let Some((kept, [slot, ..])) = self.policies.split_at_mut_checked(count) else {
            return;
        };
        // A second policy with the same join key and a different window
        // makes both ambiguous (draft-06: `10;w=1, 10;w=60` is invalid),
        // even when the second is not kept.
        for existing in kept {
            if existing.keyed::<F>(slot.owner, slot.name, slot.quota) && existing.window != slot.window {
                existing.ambiguous = true;
                slot.ambiguous = true;
            }
        }
        let named = same_owner::<F>(slot.owner, Owner::Ietf) && slot.name.is_some();
        let header = slot.header;
        if count < POLICY_CAPACITY {
            if named {
                // At most the capacity: never wraps.
                self.named_policies = self.named_policies.wrapping_add(1);
                self.last_named = count;
            }
            // Below the capacity: never wraps.
            self.policy_count = count.wrapping_add(1);
        } else {
            self.warn(header, WarningKind::TooManyQuotas);
        }
    }

    /// Reads one List member: a policy (`policy`), `100;w=10` (drafts ≤ 07,
    /// `window=` in polli-00 and WHOOP) or `"burst";q=100;w=60` (drafts
    /// ≥ 08), into [`Reader::policy_slot`]; or a draft-08 item,
    /// `"name";r=..;t=..` (also `pk=:..:`, ignored), into the items after
    /// the first `item_count` (warning when there is no room). Whether it
    /// was put there. `first` is the member's first part; its parameters
    /// are read from `parts` (on an error, the caller's next member skips
    /// what is left). One reader for both, as the two differ only in their
    /// keys. A member not read is warned about here, where its error is
    /// found, so that the caller has no error to pass on.
    fn read_member(
        &mut self,
        policy: bool,
        first: Part<'a>,
        parts: &mut Parts<'a>,
        header: u16,
        item_count: usize,
    ) -> bool {
        let (mut name, mut span, mut unit) = (None, None, QuotaUnit::Requests);
        let mut count = None;
        match bare_item(first.text()) {
            BareItem::Number(n) if policy => match self.count(header, n) {
                Some(n) => count = Some(n),
                None => return false,
            },
            BareItem::Name(text) => name = Some(text),
            _ => {
                self.warn(header, WarningKind::Malformed);
                return false;
            }
        }
        while let Some(param) = parts.next_param() {
            let (key, value) = Key::of_part(&param);
            match (key, policy) {
                (Key::Q, true) | (Key::R, false) => match self.count(header, value) {
                    Some(n) => count = Some(n),
                    None => return false,
                },
                (Key::W | Key::Window, true) | (Key::T, false) => {
                    match self.span(header, Self::delta(value, NANOS_PER_SEC)) {
                        Some(read) => span = Some(read),
                        None => return false,
                    }
                }
                (Key::Qu, true) => {
                    unit = if same::<F>(unquoted(trim(value)), b"requests") {
                        QuotaUnit::Requests
                    } else {
                        QuotaUnit::Other
                    };
                }
                _ => {}
            }
        }
        // `q` and `r` are REQUIRED (draft-08); the bare Integer is `q`.
        let Some(count) = count else {
            self.warn(header, WarningKind::Malformed);
            return false;
        };
        if policy {
            *self.policy_slot() = Policy {
                owner: Owner::Ietf,
                name,
                quota: count,
                window: span,
                unit,
                header,
                joined: false,
                ambiguous: false,
            };
            return true;
        }
        match self.items.as_mut().and_then(|items| items.get_mut(item_count)) {
            Some(item) => {
                *item = Item {
                    name,
                    remaining: count,
                    reset_after: span,
                    header,
                };
                true
            }
            None => {
                self.warn(header, WarningKind::TooManyQuotas);
                false
            }
        }
    }

    /// Reads one policy member: `100;w=10` (drafts ≤ 07, `window=` in
    /// polli-00 and WHOOP) or `"burst";q=100;w=60` (drafts ≥ 08).
    /// `first` is the member's first part; its parameters are read from
    /// `parts` (on an error, the caller's next member skips what is left).
    fn read_policy(
        &mut self,
        owner: Owner,
        first: Part<'a>,
        parts: &mut Parts<'a>,
        header: u16,
    ) -> Read<Policy<'a>> {
        let mut policy = Policy {
            owner,
            header,
            ..Policy::NONE
        };
        let mut quota = None;
        match bare_item(first.text()) {
            BareItem::Number(n) => quota = Some(self.strict_count(header, n)?),
            BareItem::Name(name) => policy.name = Some(name),
            BareItem::Other => return Err(WarningKind::Malformed),
        }
        while let Some(param) = parts.next_param() {
            let (key, value) = param.key_value();
            let Some(value) = value else { continue };
            if key.eq_ignore_ascii_case(b"q") {
                quota = Some(self.strict_count(header, value)?);
            } else if key.eq_ignore_ascii_case(b"w") || key.eq_ignore_ascii_case(b"window") {
                let window = Self::delta(value, NANOS_PER_SEC)?;
                policy.window = Some(self.clamped(header, window));
            } else if key.eq_ignore_ascii_case(b"qu") {
                policy.unit = match unquoted(value) {
                    b"requests" => QuotaUnit::Requests,
                    _ => QuotaUnit::Other,
                };
            }
        }
        policy.quota = quota.ok_or(WarningKind::Malformed)?;
        Ok(policy)
    }

    fn collect_policies(&mut self) {
        for index in 0..self.entry_count {
            let Some(&Some(entry)) = self.entries.get(index) else {
                continue;
            };
            if entry.field != Field::RateLimitPolicy {
                continue;
            }
            let mut parts = Parts::new(entry.value);
            while let Some(first) = parts.next_member() {
                if first.is_empty_member() {
                    continue;
                }
                match self.read_policy(Owner::Ietf, first, &mut parts, entry.header) {
                    Ok(policy) => self.add_policy(policy),
                    Err(kind) => self.warn(entry.header, kind),
                }
            }
        }
    }

    /// Joins a limit to the policies of `owner` with its join key (see
    /// [`Policy::keyed`]), marking every one joined: the last of them. It
    /// is ambiguous when any is: then the last is too (two with one key
    /// and different windows are both marked, and a third differs from
    /// one of them).
    #[inline]
    fn join(&mut self, owner: Owner, name: Option<&[u8]>, quota: u64) -> Option<usize> {
        let mut joined = None;
        let kept = self.policies.get_mut(..self.policy_count).unwrap_or_default();
        for (at, policy) in kept.iter_mut().enumerate() {
            if policy.keyed::<F>(owner, name, quota) {
                policy.joined = true;
                joined = Some(at);
            }
        }
        joined
    }

    /// Joins an unnamed limit to the policy with the same quota value.
    fn join_by_quota(&mut self, owner: Owner, limit: Option<u64>, header: u16) -> Option<Nanos> {
        let at = self.join(owner, None, limit?)?;
        let policy = self.policies.get(at)?;
        if policy.ambiguous {
            self.warn(header, WarningKind::AmbiguousPolicy);
            return None;
        }
        policy.window
    }

    /// `RateLimit-Policy` (`policies`: its policies, every one first) and
    /// `RateLimit` (`rate_limit`: the Close / draft-07 dictionary keys, or
    /// draft-08 items), in one loop over the fields for both. The profile's
    /// rules are read from `options` where they apply, rather than from
    /// the reader: options a build fixes (a firmware's constant) then fold
    /// into the code.
    fn resolve_ietf(&mut self, options: &ParseOptions, policies: bool, rate_limit: bool) {
        // The Dictionary quota is read where it is kept: the first slot,
        // free and empty, as no quota is kept before these fields are read
        // ([`Reader::resolve`] reads them first of all quotas).
        let mut dictionary_header = None;
        let mut semicolons = false;
        let mut item_count = 0usize;
        // Pass 0 reads the policies, pass 1 `RateLimit`: bits of `wanted`.
        let wanted = u8::from(policies) | (u8::from(rate_limit) << 1);
        for pass in 0..2u8 {
            if (wanted >> pass) & 1 == 0 {
                continue;
            }
            let policy = pass == 0;
            let field = if policy {
                Field::RateLimitPolicy
            } else {
                Field::RateLimit
            };
            for index in 0..self.entry_count {
                let Some(&Some(entry)) = self.entries.get(index) else {
                    continue;
                };
                if entry.field != field {
                    continue;
                }
                let mut parts = Parts::new(entry.value);
                while let Some(first) = parts.next_member() {
                    if first.is_empty_member() {
                        continue;
                    }
                    if !policy && let (Key::Limit | Key::Remaining | Key::Reset, _) = Key::of_part(&first) {
                        dictionary_header.get_or_insert(entry.header);
                        let mut part = Some(first);
                        while let Some(current) = part {
                            self.read_key(options, current, entry.header);
                            part = parts.next_param();
                        }
                        // Close's `;` form puts every key in one member.
                        semicolons |= parts.member_has_semicolon();
                        continue;
                    }
                    // A policy is kept from its slot; an item is read into
                    // the next of the items, the count of which says so.
                    if self.read_member(policy, first, &mut parts, entry.header, item_count) {
                        if policy {
                            self.keep_policy();
                        } else {
                            // Below the capacity, as a slot was found.
                            item_count = item_count.wrapping_add(1);
                        }
                    }
                }
            }
        }
        self.finish_rate_limit(options, dictionary_header, semicolons, item_count);
    }

    /// [`Reader::read_dictionary_key`] with the key read by [`Key::of_part`].
    fn read_key(&mut self, options: &ParseOptions, part: Part<'_>, header: u16) {
        let (which, value) = Key::of_part(&part);
        // A value not read leaves the one read before.
        match which {
            Key::Limit | Key::Remaining => {
                if let Some(count) = self.count(header, value) {
                    let quota = self.next_quota();
                    let figure = if which == Key::Limit {
                        &mut quota.limit
                    } else {
                        &mut quota.remaining
                    };
                    *figure = Some(count);
                }
            }
            Key::Reset => {
                let unit = options.profile.reset_unit();
                // Without `Date` the reference is the given now: read from the
                // options, which a build may fix.
                let reference = if F & Families::DATE == 0 {
                    options.now
                } else {
                    self.reference
                };
                let read = Self::reset(reference, value, unit);
                if let Some(span) = self.span(header, read) {
                    self.next_quota().reset_after = Some(span);
                }
            }
            _ => {}
        }
    }

    /// `RateLimit`: the Close / draft-07 dictionary keys, or draft-08 items.
    fn resolve_rate_limit_field(&mut self) {
        let mut items = NO_ITEMS;
        let mut dictionary = Quota::new(Format::IetfDictionary, QuotaUnit::Requests);
        let mut dictionary_header = None;
        let mut semicolons = false;
        let mut item_count = 0usize;
        for index in 0..self.entry_count {
            let Some(&Some(entry)) = self.entries.get(index) else {
                continue;
            };
            if entry.field != Field::RateLimit {
                continue;
            }
            let mut parts = Parts::new(entry.value);
            while let Some(first) = parts.next_member() {
                if first.is_empty_member() {
                    continue;
                }
                let (key, value) = first.key_value();
                if value.is_some() && is_dictionary_key(key) {
                    dictionary_header.get_or_insert(entry.header);
                    let mut part = Some(first);
                    while let Some(current) = part {
                        self.read_dictionary_key(&mut dictionary, current, entry.header);
                        part = parts.next_param();
                    }
                    // Close's `;` form puts every key in one member.
                    semicolons |= parts.member_has_semicolon();
                    continue;
                }
                match self.read_item(first, &mut parts, entry.header) {
                    Ok(item) => match items.get_mut(item_count) {
                        Some(slot) => {
                            *slot = item;
                            item_count = item_count.saturating_add(1);
                        }
                        None => self.warn(entry.header, WarningKind::TooManyQuotas),
                    },
                    Err(kind) => self.warn(entry.header, kind),
                }
            }
        }
        if let Some(header) = dictionary_header
            && (dictionary.limit.is_some() || dictionary.remaining.is_some())
        {
            if semicolons || self.close_profile {
                dictionary.format = Format::Close;
            }
            dictionary.window = self.join_by_quota(Owner::Ietf, dictionary.limit, header);
            self.push_quota(dictionary, header);
        }
        self.resolve_items(Some(&items), item_count);
    }

    /// The end of the selections' reader of `RateLimit`: the Dictionary
    /// quota read from `dictionary_header` into [`Reader::next_quota`] (in
    /// the Close form when its members were `;`-separated or the host is
    /// Close's), joined with its policy and kept when it states a limit or
    /// what remains; then the first `item_count` List items, resolved.
    #[inline(always)]
    fn finish_rate_limit(
        &mut self,
        options: &ParseOptions,
        dictionary_header: Option<u16>,
        semicolons: bool,
        item_count: usize,
    ) {
        if let Some(header) = dictionary_header {
            let close = semicolons || same::<F>(options.profile.name().as_bytes(), b"close");
            let dictionary = self.next_quota();
            if dictionary.limit.is_some() || dictionary.remaining.is_some() {
                dictionary.format = if close {
                    Format::Close
                } else {
                    Format::IetfDictionary
                };
                let limit = dictionary.limit;
                let window = self.join_by_quota(Owner::Ietf, limit, header);
                self.next_quota().window = window;
                self.commit_quota(header);
            } else {
                // Not kept: its slot is left as a free one is.
                *dictionary = EMPTY_QUOTA;
            }
        }
        // Taken from the reader, so that they are read while it changes.
        let items = self.items.take();
        self.resolve_items(items.as_deref(), item_count);
    }

    fn read_dictionary_key(&mut self, quota: &mut Quota, part: Part<'_>, header: u16) {
        let (key, value) = part.key_value();
        let Some(value) = value else { return };
        // Parameters on values are ignored (draft-07), and so is a value
        // that is not a bare number.
        if key.eq_ignore_ascii_case(b"limit") {
            quota.limit = self.count(header, value).or(quota.limit);
        } else if key.eq_ignore_ascii_case(b"remaining") {
            quota.remaining = self.count(header, value).or(quota.remaining);
        } else if key.eq_ignore_ascii_case(b"reset") {
            let unit = self.reset_unit;
            let read = Self::reset(self.reference, value, unit);
            quota.reset_after = self.span(header, read).or(quota.reset_after);
        }
    }

    /// A draft-08 item: `"name";r=..;t=..` (also `pk=:..:`, ignored).
    fn read_item(&mut self, first: Part<'a>, parts: &mut Parts<'a>, header: u16) -> Read<Item<'a>> {
        let BareItem::Name(name) = bare_item(first.text()) else {
            return Err(WarningKind::Malformed);
        };
        let mut item = Item {
            name: Some(name),
            remaining: 0,
            reset_after: None,
            header,
        };
        let mut remaining = None;
        while let Some(param) = parts.next_param() {
            let (key, value) = param.key_value();
            let Some(value) = value else { continue };
            if key.eq_ignore_ascii_case(b"r") {
                remaining = Some(self.strict_count(header, value)?);
            } else if key.eq_ignore_ascii_case(b"t") {
                let reset = Self::delta(value, NANOS_PER_SEC)?;
                item.reset_after = Some(self.clamped(header, reset));
            }
        }
        // `r` is REQUIRED (draft-08).
        item.remaining = remaining.ok_or(WarningKind::Malformed)?;
        Ok(item)
    }

    fn resolve_items(&mut self, items: Option<&[Item<'a>; ITEM_CAPACITY]>, item_count: usize) {
        // How many named policies there are, and the last of them (the
        // only one when there is one).
        let (named_policies, only_named) = (self.named_policies, Some(self.last_named));
        for index in 0..item_count {
            // Read in place: a copy of the whole item costs more.
            let Some(item) = items.and_then(|items| items.get(index)) else {
                continue;
            };
            let (name, header, remaining, reset_after) =
                (item.name, item.header, item.remaining, item.reset_after);
            if !full(F) {
                // A selection builds the quota where it is kept, what the
                // item states first: nothing of it is held across the join.
                *self.next_quota() = Quota {
                    remaining: Some(remaining),
                    reset_after,
                    ..Quota::new(Format::IetfList, QuotaUnit::Requests)
                };
            }
            let (mut limit, mut window, mut unit) = (None, None, QuotaUnit::Requests);
            // The last policy of the item's name (marking every one joined):
            // an item always has a name, so no unnamed policy is joined.
            let mut joined = if full(F) {
                // The full parser compares names alone, faster on a host.
                let mut last = None;
                for (at, policy) in self.policies.iter_mut().take(self.policy_count).enumerate() {
                    if same_owner::<F>(policy.owner, Owner::Ietf)
                        && matches!((policy.name, name), (Some(a), Some(b)) if a == b)
                    {
                        policy.joined = true;
                        last = Some(at);
                    }
                }
                last
            } else {
                self.join(Owner::Ietf, name, 0)
            };
            if joined.is_none() && item_count == 1 && named_policies == 1 {
                joined = only_named;
                self.warn(header, WarningKind::PolicyNameMismatch);
            }
            if let Some(policy) = joined.and_then(|at| self.policies.get_mut(at)) {
                policy.joined = true;
                if policy.ambiguous {
                    let at = policy.header;
                    self.warn(at, WarningKind::AmbiguousPolicy);
                } else {
                    limit = Some(policy.quota);
                    window = policy.window;
                    unit = policy.unit;
                    if !full(F) {
                        let quota = self.next_quota();
                        quota.limit = limit;
                        quota.window = window;
                        quota.unit = unit;
                    }
                }
            }
            if !full(F) {
                self.commit_quota(header);
                continue;
            }
            // Built after the warnings of its join.
            let quota = Quota {
                format: Format::IetfList,
                unit,
                limit,
                remaining: Some(remaining),
                reset_after,
                window,
            };
            self.keep_quota(quota, header);
        }
    }

    #[inline(never)]
    fn resolve_group(&mut self, group: Group) {
        let mut roles = [Occurrences::NONE; ROLE_COUNT];
        self.gather(group, &mut roles);
        let role = |role: Role| roles.get(role as usize).copied().unwrap_or(Occurrences::NONE);
        let mut quota = Quota::new(group.format(), group.unit());
        let mut header = u16::MAX;
        if let Some((at, raw)) = self.single(role(Role::Limit)) {
            header = at;
            quota.limit = self.limit_field(group, raw, at);
        }
        let mut used = None;
        if let Some((at, raw)) = self.single(role(Role::Remaining)) {
            header = header.min(at);
            quota.remaining = self.count(at, raw);
        }
        if let Some((at, raw)) = self.single(role(Role::Used)) {
            used = self.count(at, raw);
        }
        match (quota.limit, quota.remaining, used) {
            (None, Some(remaining), Some(used)) => {
                quota.limit = Some(remaining.saturating_add(used).min(MAX_COUNT))
            }
            (Some(limit), None, Some(used)) => quota.remaining = Some(limit.saturating_sub(used)),
            _ => {}
        }
        let unit = if group.reset_follows_profile() {
            self.reset_unit
        } else {
            None
        };
        for (which, absolute_only) in [
            (Role::ResetAfter, false),
            (Role::Reset, false),
            (Role::ResetTime, true),
        ] {
            if quota.reset_after.is_some() {
                break;
            }
            let Some((at, raw)) = self.single(role(which)) else {
                continue;
            };
            let read = match which {
                Role::ResetAfter => Self::delta(raw, NANOS_PER_SEC),
                _ if absolute_only && trim(raw).first().is_some_and(u8::is_ascii_digit) => {
                    match iso_8601::<F>(raw) {
                        Some(at) => Self::until(self.reference, at),
                        None => Err(WarningKind::Malformed),
                    }
                }
                _ => Self::reset(self.reference, raw, unit),
            };
            quota.reset_after = self.span(at, read);
        }
        if quota.limit.is_none() && quota.remaining.is_none() && quota.reset_after.is_none() {
            return;
        }
        quota.window = group.named_window();
        if let Some((at, raw)) = self.single(role(Role::WindowMillis)) {
            quota.window = self.span(at, Self::delta(raw, NANOS_PER_MILLI)).or(quota.window);
        }
        if let Some((at, raw)) = self.single(role(Role::WindowSeconds)) {
            quota.window = self.span(at, Self::delta(raw, NANOS_PER_SEC)).or(quota.window);
        }
        if let Some((at, raw)) = self.single(role(Role::FillRate)) {
            let fill = self.count(at, raw);
            quota.window = match (quota.window, quota.limit, fill) {
                (Some(interval), Some(limit), Some(fill)) if fill > 0 => {
                    let refill = Nanos::from_nanos(mul_div(interval.as_nanos(), limit, fill));
                    self.span(at, Ok(refill))
                }
                _ => quota.window,
            };
        }
        if quota.window.is_none() {
            let owner = match group {
                Group::Ietf => Some(Owner::Ietf),
                Group::XRateLimit => Some(Owner::XRateLimit),
                Group::XRateLimitDashed => Some(Owner::XRateLimitDashed),
                _ => None,
            };
            if let Some(owner) = owner {
                quota.window = self.join_by_quota(owner, quota.limit, header);
            }
        }
        self.push_quota(quota, header);
    }

    /// A limit field: one count, or a draft-01 style list whose first
    /// member is the limit and whose others are quota policies
    /// (`100, 100;w=10`; WHOOP `100, 100;window=60, 10000;window=86400`).
    #[inline(never)]
    fn limit_field(&mut self, group: Group, raw: &'a [u8], header: u16) -> Option<u64> {
        if !raw.contains(&b',') && !raw.contains(&b';') {
            return self.count(header, raw);
        }
        let owner = match group {
            Group::Ietf => Owner::Ietf,
            Group::XRateLimit => Owner::XRateLimit,
            Group::XRateLimitDashed => Owner::XRateLimitDashed,
            // A list anywhere else is a repeated singleton folded into one
            // line (Reddit's `991, 98`).
            _ => {
                self.warn(header, WarningKind::Conflicting);
                return None;
            }
        };
        let mut parts = Parts::new(raw);
        let first = parts.next_member()?;
        let limit = self.count(header, first.text())?;
        let mut policies = NO_POLICIES;
        let mut policy_count = 0usize;
        // The limit itself may carry its window (`10;window=60`, polli-00).
        if let Ok(policy) = self.read_policy(owner, first, &mut parts, header)
            && policy.window.is_some()
        {
            self.add_policy(policy);
        }
        for slot in policies.iter_mut() {
            let Some(member) = parts.next_member() else {
                break;
            };
            match self.read_policy(owner, member, &mut parts, header) {
                Ok(policy) if policy.window.is_some() => {
                    *slot = policy;
                    policy_count = policy_count.saturating_add(1);
                }
                // A member without a window is not a policy: the field is a
                // folded repeat, not a list.
                Ok(_) | Err(_) => {
                    self.warn(header, WarningKind::Conflicting);
                    return None;
                }
            }
        }
        if parts.next_member().is_some() {
            self.warn(header, WarningKind::TooManyQuotas);
        }
        for policy in policies.into_iter().take(policy_count) {
            self.add_policy(policy);
        }
        Some(limit)
    }

    /// Shopify, Salesforce and Zendesk's own fields.
    #[inline(never)]
    fn resolve_ratios(&mut self) {
        if F & Families::SHOPIFY != 0
            && let Some((header, raw)) = self.singleton(Field::Shopify)
        {
            let read = read_ratio(raw);
            if let Some((used, limit)) = self.keep(header, read) {
                let mut quota = Quota::new(Format::Shopify, QuotaUnit::Requests);
                quota.limit = Some(limit);
                quota.remaining = Some(limit.saturating_sub(used));
                self.push_quota(quota, header);
            }
        }
        for index in 0..self.entry_count {
            let Some(&Some(entry)) = self.entries.get(index) else {
                continue;
            };
            match entry.field {
                Field::Salesforce if F & Families::SALESFORCE != 0 => {
                    for part in entry.value.split(|&b| b == b';' || b == b',') {
                        let (key, value) = key_value(trim(part));
                        let Some(value) = value else { continue };
                        if key.is_empty() {
                            continue;
                        }
                        let read = read_ratio(value);
                        if let Some((used, limit)) = self.keep(entry.header, read) {
                            let mut quota = Quota::new(Format::Salesforce, QuotaUnit::Requests);
                            quota.limit = Some(limit);
                            quota.remaining = Some(limit.saturating_sub(used));
                            self.push_quota(quota, entry.header);
                        }
                    }
                }
                Field::Zendesk if F & Families::ZENDESK != 0 => {
                    let mut quota = Quota::new(Format::Zendesk, QuotaUnit::Requests);
                    for part in entry.value.split(|&b| b == b';' || b == b',') {
                        let (key, value) = key_value(trim(part));
                        let Some(value) = value else { continue };
                        if eq_lowercase(b"total", key) {
                            quota.limit = self.count(entry.header, value);
                        } else if eq_lowercase(b"remaining", key) {
                            quota.remaining = self.count(entry.header, value);
                        } else if eq_lowercase(b"resets", key) {
                            quota.reset_after = self.span(entry.header, Self::delta(value, NANOS_PER_SEC));
                        }
                    }
                    if quota.limit.is_some() || quota.remaining.is_some() {
                        self.push_quota(quota, entry.header);
                    } else {
                        self.warn(entry.header, WarningKind::Malformed);
                    }
                }
                _ => {}
            }
        }
    }

    /// Policies no limit was joined to are quotas of their own: a limit
    /// and a window, with nothing known of what remains.
    // Out of line on a host, where that runs fastest; left to the
    // compiler on a small target, which inlines it in its one caller
    // (smaller there).
    #[cfg_attr(target_pointer_width = "64", inline(never))]
    fn resolve_unjoined_policies(&mut self) {
        // Policies fill their slots in order and are never removed.
        for index in 0..self.policy_count {
            // Read in place: a copy of the whole policy costs more.
            let Some(policy) = self.policies.get(index) else {
                break;
            };
            let header = policy.header;
            if policy.joined {
                continue;
            }
            if policy.ambiguous {
                self.warn(header, WarningKind::AmbiguousPolicy);
                continue;
            }
            let format = match (policy.owner, policy.name) {
                (_, Some(_)) if !x_owners(F) => Format::IetfList,
                (_, None) if !x_owners(F) => Format::IetfFields,
                (Owner::Ietf, Some(_)) => Format::IetfList,
                (Owner::Ietf, None) => Format::IetfFields,
                (Owner::XRateLimit, _) => Format::XRateLimit,
                (Owner::XRateLimitDashed, _) => Format::XRateLimitDashed,
            };
            let (unit, limit, window) = (policy.unit, policy.quota, policy.window);
            let quota = Quota {
                format,
                unit,
                limit: Some(limit),
                remaining: None,
                reset_after: None,
                window,
            };
            self.keep_quota(quota, header);
        }
    }
}

#[inline]
fn is_dictionary_key(key: &[u8]) -> bool {
    key.eq_ignore_ascii_case(b"limit")
        || key.eq_ignore_ascii_case(b"remaining")
        || key.eq_ignore_ascii_case(b"reset")
}

fn number_warning(error: NumberError) -> WarningKind {
    match error {
        NumberError::Invalid => WarningKind::Malformed,
        NumberError::Negative => WarningKind::Negative,
    }
}

/// A count, rounded down, clamped to [`MAX_COUNT`] (the flag says so).
#[inline]
fn read_count(raw: &[u8]) -> Read<(u64, bool)> {
    let number = parse_decimal(raw).map_err(number_warning)?;
    if number.whole > MAX_COUNT {
        return Ok((MAX_COUNT, true));
    }
    Ok((number.whole, false))
}

/// `used/limit`, with anything from `(` on dropped (`17/250(appName=x)`).
fn read_ratio(raw: &[u8]) -> Read<(u64, u64)> {
    let raw = match raw.iter().position(|&b| b == b'(') {
        Some(open) => raw.get(..open).unwrap_or_default(),
        None => raw,
    };
    let slash = raw
        .iter()
        .position(|&b| b == b'/')
        .ok_or(WarningKind::Malformed)?;
    let used = read_count(raw.get(..slash).unwrap_or_default())?.0;
    let limit = read_count(raw.get(slash.saturating_add(1)..).unwrap_or_default())?.0;
    Ok((used, limit))
}

/// The index of the quota closest to exhaustion (see the module docs).
#[inline]
pub(super) fn governing(quotas: &[Quota]) -> Option<u8> {
    let mut best: Option<(usize, &Quota)> = None;
    for (index, quota) in quotas.iter().enumerate() {
        best = match best {
            None => Some((index, quota)),
            Some((_, current)) if more_restrictive(quota, current) => Some((index, quota)),
            keep => keep,
        };
    }
    best.and_then(|(index, _)| u8::try_from(index).ok())
}

/// `remaining` times the other quota's limit (at least 1), as 128 bits,
/// into `share`: one side of the cross-multiplied comparison of two
/// shares. One step for both sides; each caller passes the limit alone,
/// as a quota passed whole is taken apart on the stack of a small target,
/// and has the product written where the comparison reads it, as one
/// returned is copied out of the return slot that the second side reuses.
#[cfg_attr(target_pointer_width = "64", inline)]
#[cfg_attr(not(target_pointer_width = "64"), inline(never))]
fn cross_share(remaining: u64, other_limit: u64, share: &mut (u64, u64)) {
    *share = widening_mul(remaining, other_limit.max(1));
}

/// Whether `a` should govern rather than `b`.
fn more_restrictive(a: &Quota, b: &Quota) -> bool {
    let requests = |q: &Quota| q.unit == QuotaUnit::Requests;
    if requests(a) != requests(b) {
        return requests(a);
    }
    match (a.remaining, b.remaining) {
        (Some(_), None) => true,
        (None, _) => false,
        (Some(ra), Some(rb)) => {
            // Compare ra/la with rb/lb by cross-multiplying; an unknown
            // limit counts as "all that is left", share 1.
            let (mut a_side, mut b_side) = ((0, 0), (0, 0));
            cross_share(ra, b.limit.unwrap_or(rb), &mut a_side);
            cross_share(rb, a.limit.unwrap_or(ra), &mut b_side);
            let ((a_high, a_low), (b_high, b_low)) = (a_side, b_side);
            // The smaller share governs, then the fewer remaining, then the
            // later reset: `b`'s reset goes on `a`'s side, so that a later
            // reset of `a` makes `a`'s side the smaller. One comparison of
            // tuples, where orderings compared in turn cost more code.
            (a_high, a_low, ra, b.reset_after.map_or(0, Nanos::as_nanos))
                < (b_high, b_low, rb, a.reset_after.map_or(0, Nanos::as_nanos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_lowercase_and_found() {
        assert!(
            NAMES
                .windows(2)
                .all(|pair| (pair[0].0.len(), pair[0].0) < (pair[1].0.len(), pair[1].0))
        );
        for (name, field) in NAMES {
            assert_eq!(name, name.to_ascii_lowercase());
            assert_eq!(classify_any(name.to_ascii_uppercase().as_bytes()), Some(field));
        }
        assert_eq!(classify_any(b"content-type"), None);
        for byte in 0..=u8::MAX {
            let word = u64::from_le_bytes([byte, b'A', b'z', 0xC1, byte, b'@', b'[', b'Z']);
            let lower = u64::from_le_bytes(
                [byte, b'A', b'z', 0xC1, byte, b'@', b'[', b'Z'].map(|b| b.to_ascii_lowercase()),
            );
            assert_eq!(ascii_lowercase(word), lower, "{byte}");
        }
        assert_eq!(classify_any(&[b'x'; 100]), None);
    }

    /// Every key a selection's readers know is found in its table, in any
    /// case, and nothing else is.
    #[test]
    fn keys_are_found_in_their_table() {
        for (text, key) in [
            ("limit", Key::Limit),
            ("Remaining", Key::Remaining),
            ("RESET", Key::Reset),
            ("r", Key::R),
            ("T", Key::T),
            ("q", Key::Q),
            ("w", Key::W),
            ("qu", Key::Qu),
            ("Window", Key::Window),
            ("", Key::Other),
            ("x", Key::Other),
            ("limits", Key::Other),
            ("windo", Key::Other),
            ("pk", Key::Other),
        ] {
            assert_eq!(Key::of(text.as_bytes()), key, "{text}");
        }
    }

    /// Each selection finds exactly the names of its families, in any case.
    #[test]
    fn a_selection_finds_its_families_names() {
        fn check<const F: u32>() {
            for (name, field) in NAMES {
                let expected = (field.families() & F != 0).then_some(field);
                assert_eq!(
                    classify::<F>(name.to_ascii_uppercase().as_bytes()),
                    expected,
                    "{name} {F:#x}"
                );
                let mut padded = [b' '; 48];
                padded[1..=name.len()].copy_from_slice(name.as_bytes());
                let padded = &padded[..name.len() + 2];
                assert_eq!(classify::<F>(padded), expected, "{name} {F:#x}");
            }
            assert_eq!(classify::<F>(b"content-type"), None);
            assert_eq!(classify::<F>(b""), None);
        }
        check::<{ Families::IETF }>();
        check::<{ Families::IETF_FIELDS }>();
        check::<{ Families::IETF | Families::RETRY_AFTER }>();
        check::<{ Families::ALL_FAMILIES & !Families::DATE }>();
        check::<{ Families::DATE | Families::VENDOR_RETRY_AFTER | Families::ANTHROPIC | Families::HUBSPOT }>(
        );
        check::<{ Families::X_RATELIMIT | Families::X_RATE_LIMIT | Families::OPENAI | Families::BREVO }>();
        check::<
            {
                Families::GOHIGHLEVEL_DAILY
                    | Families::X_24HOUR
                    | Families::SHOPIFY
                    | Families::SALESFORCE
                    | Families::ZENDESK
            },
        >();
        check::<{ Families::ALL }>();
    }

    /// The form [`more_restrictive`] had before its comparisons became one
    /// comparison of tuples: the model it is checked against.
    fn more_restrictive_in_turn(a: &Quota, b: &Quota) -> bool {
        use core::cmp::Ordering;
        let requests = |q: &Quota| q.unit == QuotaUnit::Requests;
        if requests(a) != requests(b) {
            return requests(a);
        }
        match (a.remaining, b.remaining) {
            (Some(_), None) => return true,
            (None, _) => return false,
            (Some(ra), Some(rb)) => {
                let la = a.limit.unwrap_or(ra).max(1);
                let lb = b.limit.unwrap_or(rb).max(1);
                let share = widening_mul(ra, lb).cmp(&widening_mul(rb, la));
                match share.then(ra.cmp(&rb)) {
                    Ordering::Less => return true,
                    Ordering::Greater => return false,
                    Ordering::Equal => {}
                }
            }
        }
        a.reset_after.unwrap_or(Nanos::ZERO) > b.reset_after.unwrap_or(Nanos::ZERO)
    }

    /// Small figures (so that shares and resets tie often) or any.
    fn figure() -> impl proptest::strategy::Strategy<Value = Option<u64>> {
        proptest::option::of(proptest::prop_oneof![0u64..=4, proptest::prelude::any::<u64>()])
    }

    fn quota() -> impl proptest::strategy::Strategy<Value = Quota> {
        use proptest::strategy::Strategy;
        (
            proptest::prop_oneof![
                proptest::strategy::Just(QuotaUnit::Requests),
                proptest::strategy::Just(QuotaUnit::Tokens),
                proptest::strategy::Just(QuotaUnit::Other),
            ],
            figure(),
            figure(),
            figure(),
        )
            .prop_map(|(unit, limit, remaining, reset)| Quota {
                limit,
                remaining,
                reset_after: reset.map(Nanos::from_nanos),
                ..Quota::new(Format::IetfList, unit)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// One comparison of tuples chooses as the comparisons in turn did.
        #[test]
        fn more_restrictive_matches_comparisons_in_turn(a in quota(), b in quota()) {
            proptest::prop_assert_eq!(more_restrictive(&a, &b), more_restrictive_in_turn(&a, &b));
            proptest::prop_assert_eq!(more_restrictive(&b, &a), more_restrictive_in_turn(&b, &a));
            proptest::prop_assert_eq!(more_restrictive(&a, &a), more_restrictive_in_turn(&a, &a));
        }
    }
}
