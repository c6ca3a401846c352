//! Numbers and spans of time as servers write them: integers, decimals
//! (`599.0`, `64.57`), and Go-style duration strings (`12ms`, `6m0s`).
//!
//! Everything here is strict about syntax (a field that is not a number is
//! not read as one: no `NaN`, no `Infinity`, no exponents, no hex, no
//! trailing garbage) and saturating about size (a number too large for a
//! `u64` is read as `u64::MAX` and flagged, so the caller can clamp it and
//! say so).

use ratekeeper_core::Nanos;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A non-negative decimal number as written: the whole part and the first
/// nine digits of the fraction, as nanoseconds of one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    /// The whole part, `u64::MAX` when it did not fit (see `saturated`).
    pub(crate) whole: u64,
    /// The fraction in billionths; digits past the ninth are dropped.
    pub(crate) billionths: u32,
    /// Whether the whole part overflowed `u64` and was saturated.
    pub(crate) saturated: bool,
}

/// Why a field is not a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// A well-formed number with a minus sign: rate-limit values are never
    /// negative, and `-1` usually means "unknown" (Azure OpenAI, rack).
    Negative,
    /// Not a decimal number at all.
    Invalid,
}

impl Decimal {
    /// The value scaled by `unit` nanoseconds (`1_000_000_000` for
    /// seconds), saturating at [`Nanos::MAX`], rounding the fraction down.
    #[inline(never)]
    pub(crate) fn scaled(self, unit: u64) -> Nanos {
        let whole = self.whole.saturating_mul(unit);
        let fraction = if self.billionths == 0 {
            0
        } else {
            mul_div(u64::from(self.billionths), unit, NANOS_PER_SEC)
        };
        Nanos::from_nanos(whole.saturating_add(fraction))
    }

    /// Whether the number is at least `bound` (fraction included).
    pub(crate) fn at_least(self, bound: u64) -> bool {
        self.whole >= bound
    }
}

/// `a × b` as a 128-bit number: (high word, low word). In 32-bit halves,
/// because `u128` arithmetic costs kilobytes of code on 32-bit targets.
pub(crate) fn widening_mul(a: u64, b: u64) -> (u64, u64) {
    const LOW: u64 = 0xFFFF_FFFF;
    // Counts are nearly always small: one multiplication then.
    if let Some(product) = a.checked_mul(b) {
        return (0, product);
    }
    let (a_high, a_low) = (a >> 32, a & LOW);
    let (b_high, b_low) = (b >> 32, b & LOW);
    // Each partial product of two 32-bit halves fits a u64, and so does
    // each sum below (at most (2³² − 1)² + 2 × (2³² − 1) = 2⁶⁴ − 1).
    let low_low = a_low.wrapping_mul(b_low);
    let high_low = a_high.wrapping_mul(b_low);
    let low_high = a_low.wrapping_mul(b_high);
    let high_high = a_high.wrapping_mul(b_high);
    let middle = (low_low >> 32)
        .wrapping_add(high_low & LOW)
        .wrapping_add(low_high & LOW);
    let low = (middle << 32) | (low_low & LOW);
    let high = high_high
        .wrapping_add(high_low >> 32)
        .wrapping_add(low_high >> 32)
        .wrapping_add(middle >> 32);
    (high, low)
}

/// `⌊a × b / divisor⌋`, exact, saturating at `u64::MAX` (and that for a
/// zero divisor).
pub(crate) fn mul_div(a: u64, b: u64, divisor: u64) -> u64 {
    if let Some(product) = a.checked_mul(b) {
        return product.checked_div(divisor).unwrap_or(u64::MAX);
    }
    let (high, low) = widening_mul(a, b);
    if high >= divisor {
        return u64::MAX;
    }
    // Long division of high:low, one bit at a time; `high < divisor`
    // keeps the quotient within 64 bits.
    let mut remainder = high;
    let mut quotient = 0u64;
    for bit in (0..64).rev() {
        let carry = remainder >> 63;
        remainder = (remainder << 1) | ((low >> bit) & 1);
        quotient <<= 1;
        if carry != 0 || remainder >= divisor {
            remainder = remainder.wrapping_sub(divisor);
            quotient |= 1;
        }
    }
    quotient
}

/// Parses `[-+]?DIGITS(.DIGITS)?` surrounded by optional blanks, in one
/// pass.
pub(crate) fn parse_decimal(raw: &[u8]) -> Result<Decimal, NumberError> {
    let text = super::structured::trim(raw);
    let (negative, unsigned) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let mut decimal = Decimal {
        whole: 0,
        billionths: 0,
        saturated: false,
    };
    let mut rest = unsigned;
    // Nineteen digits cannot overflow a u64: no checks needed (the usual case).
    if unsigned.len() <= 19 {
        while let Some((&byte, after)) = rest.split_first() {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            decimal.whole = decimal.whole.wrapping_mul(10).wrapping_add(u64::from(digit));
            rest = after;
        }
    }
    while let Some((&byte, after)) = rest.split_first() {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        match decimal
            .whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(u64::from(digit)))
        {
            Some(w) => decimal.whole = w,
            None => {
                decimal.whole = u64::MAX;
                decimal.saturated = true;
            }
        }
        rest = after;
    }
    if rest.len() == unsigned.len() {
        return Err(NumberError::Invalid);
    }
    if let Some((&byte, fraction)) = rest.split_first() {
        if byte != b'.' || fraction.is_empty() {
            return Err(NumberError::Invalid);
        }
        let mut scale = 100_000_000u32;
        for &byte in fraction {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                return Err(NumberError::Invalid);
            }
            decimal.billionths = decimal
                .billionths
                .saturating_add(u32::from(digit).saturating_mul(scale));
            scale /= 10;
        }
    }
    if negative {
        return Err(NumberError::Negative);
    }
    Ok(decimal)
}

/// A Go `time.Duration` string as OpenAI sends it (`12ms`, `1s`, `6m0s`,
/// `2m30.5s`, `1h2m`): one or more decimal numbers, each followed by one of
/// the units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`. `None` when the
/// text is not exactly that. Saturates at [`Nanos::MAX`].
pub(crate) fn parse_go_duration(raw: &[u8]) -> Option<Nanos> {
    let mut rest = raw.trim_ascii();
    if rest.is_empty() {
        return None;
    }
    let mut total = Nanos::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .iter()
            .position(|&b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at_checked(number_len)?;
        if number.is_empty() {
            return None;
        }
        let amount = parse_decimal(number).ok()?;
        let (unit, after_unit) = duration_unit(after)?;
        total = total.saturating_add(amount.scaled(unit));
        rest = after_unit;
    }
    Some(total)
}

/// The unit at the start of `text` (nanoseconds per unit) and what follows.
fn duration_unit(text: &[u8]) -> Option<(u64, &[u8])> {
    const UNITS: [(&[u8], u64); 8] = [
        (b"ns", 1),
        (b"us", 1_000),
        ("µs".as_bytes(), 1_000),
        ("μs".as_bytes(), 1_000),
        (b"ms", 1_000_000),
        (b"s", NANOS_PER_SEC),
        (b"m", 60 * NANOS_PER_SEC),
        (b"h", 3_600 * NANOS_PER_SEC),
    ];
    // Longest match first: "ms" before "m", "ns"/"us" before "s".
    UNITS
        .iter()
        .find_map(|&(name, unit)| text.strip_prefix(name).map(|rest| (unit, rest)))
}

/// Whether `text` looks like a Go duration string rather than a plain
/// number: it starts with a digit and ends with a unit letter.
pub(crate) fn looks_like_go_duration(text: &[u8]) -> bool {
    let text = text.trim_ascii();
    matches!(text.first(), Some(b) if b.is_ascii_digit())
        && matches!(text.last(), Some(b's' | b'm' | b'h'))
        && !text.contains(&b'-')
        && !text.contains(&b':')
}
