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

/// Splits `text` on `separator` where it is not inside a quoted string,
/// yielding each part without surrounding blanks (empty parts included).
#[derive(Clone, Debug)]
pub(crate) struct SplitOutsideQuotes<'a> {
    rest: Option<&'a [u8]>,
    separator: u8,
}

impl<'a> SplitOutsideQuotes<'a> {
    pub(crate) fn new(text: &'a [u8], separator: u8) -> Self {
        SplitOutsideQuotes {
            rest: Some(text),
            separator,
        }
    }
}

impl<'a> Iterator for SplitOutsideQuotes<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let text = self.rest?;
        // The common case has no quoted string before the separator.
        match text.iter().position(|&b| b == self.separator || b == b'"') {
            None => {
                self.rest = None;
                return Some(text.trim_ascii());
            }
            Some(at) if text.get(at) == Some(&self.separator) => {
                self.rest = Some(text.get(at.saturating_add(1)..)?);
                return Some(text.get(..at)?.trim_ascii());
            }
            Some(_) => {}
        }
        let mut in_string = false;
        let mut escaped = false;
        for (at, &byte) in text.iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else if byte == b'"' {
                in_string = true;
            } else if byte == self.separator {
                let (part, rest) = (text.get(..at)?, text.get(at.saturating_add(1)..)?);
                self.rest = Some(rest);
                return Some(part.trim_ascii());
            }
        }
        self.rest = None;
        Some(text.trim_ascii())
    }
}

/// Splits `key=value` at the first `=`; a bare key has no value.
pub(crate) fn key_value(part: &[u8]) -> (&[u8], Option<&[u8]>) {
    match part.iter().position(|&b| b == b'=') {
        Some(at) => (
            part.get(..at).unwrap_or_default().trim_ascii(),
            part.get(at.saturating_add(1)..).map(<[u8]>::trim_ascii),
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
pub(crate) fn bare_item(text: &[u8]) -> BareItem<'_> {
    match text.first() {
        Some(b'"') => match text.get(1..).and_then(|inner| inner.strip_suffix(b"\"")) {
            Some(inner) => BareItem::Name(inner),
            None => BareItem::Other,
        },
        Some(b) if b.is_ascii_digit() || *b == b'-' => BareItem::Number(text),
        Some(b) if b.is_ascii_alphabetic() || *b == b'*' => BareItem::Name(text),
        _ => BareItem::Other,
    }
}

/// A parameter's value with any quotes removed: `qu="requests"` gives
/// `requests`.
pub(crate) fn unquoted(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|inner| inner.strip_suffix(b"\""))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes() {
        let parts: [&[u8]; 3] = [b"\"a,b\";r=1", b"c", b""];
        assert!(SplitOutsideQuotes::new(b" \"a,b\";r=1 , c,", b',').eq(parts));
        assert_eq!(key_value(b"limit = 5"), (&b"limit"[..], Some(&b"5"[..])));
        assert_eq!(bare_item(b"\"default\""), BareItem::Name(b"default"));
        assert_eq!(bare_item(b"100"), BareItem::Number(b"100"));
        assert_eq!(bare_item(b":AQ==:"), BareItem::Other);
    }
}
