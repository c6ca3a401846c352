//! Just enough of RFC 8941 structured fields (Lists, Dictionaries, Items
//! with parameters) to read rate-limit fields, plus the non-standard
//! `key=value; key=value` form that Close, Zendesk and Salesforce send.
//!
//! This is a tolerant reader, not a validator: members are split on `,`
//! and parameters on `;` outside double-quoted strings, blanks around them
//! are dropped, and what is not understood is skipped by the caller. That
//! tolerance is deliberate: the same field name carries an SF Dictionary
//! (draft-07), a List of Items (draft-08 and later), and a `;`-separated
//! dictionary that is not valid SF at all (Close), so a strict RFC 8941
//! parser would reject real servers.

/// The parts of a field value, in one pass: a List or Dictionary's
/// members are split on `,` and each member's parameters on `;`, both only
/// where they are not inside a quoted string. A member's first part is its
/// bare item (or, in a Dictionary, its first `key=value`); the parts after
/// it are its parameters.
#[derive(Clone, Debug)]
pub(crate) struct Parts<'a> {
    rest: &'a [u8],
    /// Whether the end of the value has been passed.
    done: bool,
    /// Whether the last part returned did not end its member.
    in_member: bool,
    /// Whether the current member has a `;` anywhere (quoted or not).
    semicolon: bool,
}

/// One part of a field value (see [`Parts`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Part<'a> {
    raw: &'a [u8],
    /// Where the first `=` is in `raw`, quoted or not.
    equals: Option<usize>,
    /// Whether it is its member's last part.
    pub(crate) ends_member: bool,
}

impl<'a> Part<'a> {
    /// The part without surrounding blanks.
    #[inline]
    pub(crate) fn text(&self) -> &'a [u8] {
        trim(self.raw)
    }

    /// The part split at its first `=`, both sides without blanks; a bare
    /// key has no value.
    #[inline(always)]
    pub(crate) fn key_value(&self) -> (&'a [u8], Option<&'a [u8]>) {
        match self.equals {
            Some(at) => (
                trim(self.raw.get(..at).unwrap_or_default()),
                self.raw.get(at.saturating_add(1)..).map(trim),
            ),
            None => (self.text(), None),
        }
    }

    /// The part's key without blanks and its value as written (blanks
    /// kept, for a reader that trims as it reads); `None` for a bare key.
    pub(crate) fn key_and_raw_value(&self) -> Option<(&'a [u8], &'a [u8])> {
        let at = self.equals?;
        // `at` is a byte of `raw`: the one past it never wraps.
        Some((
            trim(self.raw.get(..at).unwrap_or_default()),
            self.raw.get(at.wrapping_add(1)..)?,
        ))
    }

    /// Whether it is a member with nothing in it.
    pub(crate) fn is_empty_member(&self) -> bool {
        self.ends_member && self.text().is_empty()
    }
}

impl<'a> Parts<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Self {
        Parts {
            rest: text,
            done: false,
            in_member: false,
            semicolon: false,
        }
    }

    /// The first part of the next member, past whatever is left of the
    /// current one.
    #[inline]
    pub(crate) fn next_member(&mut self) -> Option<Part<'a>> {
        while self.in_member {
            self.scan()?;
        }
        self.scan()
    }

    /// The current member's next parameter.
    #[inline]
    pub(crate) fn next_param(&mut self) -> Option<Part<'a>> {
        if self.in_member { self.scan() } else { None }
    }

    /// Whether the member last read from has a `;` anywhere in it (once
    /// its last part has been read).
    pub(crate) fn member_has_semicolon(&self) -> bool {
        self.semicolon
    }

    fn scan(&mut self) -> Option<Part<'a>> {
        if self.done {
            return None;
        }
        if !self.in_member {
            self.semicolon = false;
        }
        let text = self.rest;
        let mut equals = None;
        let mut at = 0usize;
        while let Some(&byte) = text.get(at) {
            match byte {
                b',' | b';' => {
                    let ends_member = byte == b',';
                    self.semicolon |= !ends_member;
                    self.in_member = !ends_member;
                    self.rest = text.get(at.saturating_add(1)..).unwrap_or_default();
                    return Some(Part {
                        raw: text.get(..at).unwrap_or_default(),
                        equals,
                        ends_member,
                    });
                }
                b'=' if equals.is_none() => equals = Some(at),
                b'"' => {
                    // A quoted string, to its closing quote. `=` and `;`
                    // count for `key_value` and `member_has_semicolon`
                    // inside quotes too: they look at bytes, not syntax.
                    let mut escaped = false;
                    at = at.saturating_add(1);
                    while let Some(&byte) = text.get(at) {
                        match byte {
                            b'"' if !escaped => break,
                            b'\\' if !escaped => {
                                escaped = true;
                                at = at.saturating_add(1);
                                continue;
                            }
                            b'=' if equals.is_none() => equals = Some(at),
                            b';' => self.semicolon = true,
                            _ => {}
                        }
                        escaped = false;
                        at = at.saturating_add(1);
                    }
                }
                _ => {}
            }
            // At most `text.len()` here (a quoted string may end the text):
            // one more never wraps.
            at = at.wrapping_add(1);
        }
        self.done = true;
        self.in_member = false;
        Some(Part {
            raw: text,
            equals,
            ends_member: true,
        })
    }
}

/// `text` without ASCII blanks around it (those of
/// [`u8::is_ascii_whitespace`]); cheap when there are none, as nearly
/// always.
#[inline]
pub(crate) fn trim(text: &[u8]) -> &[u8] {
    // A 64-bit host runs the standard library's trim fastest; a small
    // target links one loop per end rather than it.
    #[cfg(target_pointer_width = "64")]
    match (text.first(), text.last()) {
        (Some(first), Some(last)) if first.is_ascii_whitespace() || last.is_ascii_whitespace() => {
            text.trim_ascii()
        }
        _ => text,
    }
    #[cfg(not(target_pointer_width = "64"))]
    trim_loops(text)
}

/// [`trim`] in one loop per end.
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
pub(crate) fn trim_loops(text: &[u8]) -> &[u8] {
    let mut text = text;
    while let [first, rest @ ..] = text
        && first.is_ascii_whitespace()
    {
        text = rest;
    }
    while let [rest @ .., last] = text
        && last.is_ascii_whitespace()
    {
        text = rest;
    }
    text
}

/// Whether `text` is `known` (lowercase letters, digits and punctuation)
/// in any case, as [`<[u8]>::eq_ignore_ascii_case`] says but in one tight
/// loop, which is all a short key or name needs.
pub(crate) fn eq_lowercase(known: &[u8], text: &[u8]) -> bool {
    known.len() == text.len()
        && known
            .iter()
            .zip(text)
            .all(|(&known, &byte)| known == byte.to_ascii_lowercase())
}

/// Whether `a` and `b` are the same bytes, in one tight loop (short names
/// and values: no block-compare routine is worth linking for them).
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Splits `key=value` at the first `=`; a bare key has no value.
pub(crate) fn key_value(part: &[u8]) -> (&[u8], Option<&[u8]>) {
    match part.iter().position(|&b| b == b'=') {
        Some(at) => (
            trim(part.get(..at).unwrap_or_default()),
            part.get(at.saturating_add(1)..).map(trim),
        ),
        None => (part, None),
    }
}

/// The bare item at the start of a List member (the part before its first
/// parameter), classified as far as rate-limit fields need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BareItem<'a> {
    /// Digits (possibly with a sign or fraction): parsed by the caller.
    Number(&'a [u8]),
    /// A quoted string's contents (escapes left as written) or a token.
    Name(&'a [u8]),
    /// Something else (a byte sequence, a boolean, garbage).
    Other,
}

/// Classifies `text` as a bare item.
#[inline]
pub(crate) fn bare_item(text: &[u8]) -> BareItem<'_> {
    match text.first() {
        Some(b'"') => match text {
            [b'"', inner @ .., b'"'] => BareItem::Name(inner),
            _ => BareItem::Other,
        },
        Some(b) if b.is_ascii_digit() || *b == b'-' => BareItem::Number(text),
        Some(b) if b.is_ascii_alphabetic() || *b == b'*' => BareItem::Name(text),
        _ => BareItem::Other,
    }
}

/// A parameter's value with any quotes removed: `qu="requests"` gives
/// `requests`.
pub(crate) fn unquoted(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(parts: &mut Parts<'a>) -> ([&'a [u8]; 4], usize) {
        let mut out: [&[u8]; 4] = [b""; 4];
        let mut count = 0;
        if let Some(first) = parts.next_member() {
            out[0] = first.text();
            count = 1;
            while let Some(param) = parts.next_param() {
                out[count] = param.text();
                count += 1;
            }
        }
        (out, count)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Both trims, the one a host runs and the one a small target
        /// runs, trim as the standard library does.
        #[test]
        fn trims_as_the_standard_library(
            text in proptest::collection::vec(proptest::sample::select(&b" \t\n\r\x0b\x0ca\"=;"[..]), 0..12),
        ) {
            proptest::prop_assert_eq!(trim(&text), text.trim_ascii());
            proptest::prop_assert_eq!(trim_loops(&text), text.trim_ascii());
        }
    }

    #[test]
    fn splits_outside_quotes() {
        let mut parts = Parts::new(b" \"a,b;c\";r = 1 ; t=\"x=\\\"\" , c,");
        assert_eq!(
            texts(&mut parts),
            ([&b"\"a,b;c\""[..], b"r = 1", b"t=\"x=\\\"\"", b""], 3)
        );
        assert!(parts.member_has_semicolon());
        assert_eq!(texts(&mut parts), ([&b"c"[..], b"", b"", b""], 1));
        assert!(!parts.member_has_semicolon());
        let mut parts = Parts::new(b"a=1;b, =x");
        let first = parts.next_member().unwrap();
        assert_eq!(first.key_value(), (&b"a"[..], Some(&b"1"[..])));
        assert_eq!(
            parts.next_member().unwrap().key_value(),
            (&b""[..], Some(&b"x"[..]))
        );
        assert!(parts.next_member().is_none());
        let mut parts = Parts::new(b"x,");
        assert!(!parts.next_member().unwrap().is_empty_member());
        assert!(parts.next_member().unwrap().is_empty_member());
        assert!(parts.next_member().is_none());
        assert_eq!(key_value(b"limit = 5"), (&b"limit"[..], Some(&b"5"[..])));
        assert_eq!(bare_item(b"\"default\""), BareItem::Name(b"default"));
        assert_eq!(bare_item(b"100"), BareItem::Number(b"100"));
        assert_eq!(bare_item(b":AQ==:"), BareItem::Other);
    }
}
