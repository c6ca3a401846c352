//! Numbers and spans of time as servers write them: integers, decimals
//! (`599.0`, `64.57`), and Go-style duration strings (`12ms`, `6m0s`).
//!
//! Everything here is strict about syntax (a field that is not a number is
//! not read as one: no `NaN`, no `Infinity`, no exponents, no hex, no
//! trailing garbage) and saturating about size (a number too large for a
//! `u64` is read as `u64::MAX` and flagged, so the caller can clamp it and
//! say so).

use crate::time::Nanos;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A non-negative decimal number as written: the whole part and the first
/// nine digits of the fraction, as nanoseconds of one unit.
///
/// The flag comes first (`repr(C)`): a [`NumberError`] beside it in a
/// `Result` then shares no byte with the whole part, which a 32-bit target
/// would otherwise take apart and put together again at every use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Decimal {
    /// Whether the whole part overflowed `u64` and was saturated.
    pub(crate) saturated: bool,
    /// The fraction in billionths; digits past the ninth are dropped.
    pub(crate) billionths: u32,
    /// The whole part, `u64::MAX` when it did not fit (see `saturated`).
    pub(crate) whole: u64,
}

/// Why a field is not a number. In the order of the warnings they become
/// (`Malformed`, then `Negative`), so that a small target turns one into
/// the other with no code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a decimal number at all.
    Invalid,
    /// A well-formed number with a minus sign: rate-limit values are never
    /// negative, and `-1` usually means "unknown" (Azure OpenAI, rack).
    Negative,
}

impl Decimal {
    /// The value scaled by `unit` nanoseconds (`1_000_000_000` for
    /// seconds), saturating at [`Nanos::MAX`], rounding the fraction down.
    ///
    /// `unit` divides a second or is whole seconds, as every unit read is
    /// (ns, µs, ms, s, min, h): the fraction then scales exactly with
    /// small numbers alone, with no wide product.
    #[inline(never)]
    pub(crate) fn scaled(self, unit: u64) -> Nanos {
        let whole = self.whole.saturating_mul(unit);
        let fraction = self.fraction_scaled(unit);
        Nanos::from_nanos(whole.saturating_add(fraction))
    }

    /// [`Decimal::scaled`] for a unit that fits 32 bits, as every unit
    /// but a Go duration's minutes and hours does.
    #[cfg_attr(target_pointer_width = "64", inline)]
    #[cfg_attr(not(target_pointer_width = "64"), inline(never))]
    pub(crate) fn scaled_short(self, unit: u32) -> Nanos {
        #[cfg(target_pointer_width = "64")]
        return self.scaled(u64::from(unit));
        #[cfg(not(target_pointer_width = "64"))]
        self.scaled_in_halves(unit)
    }

    /// [`Decimal::scaled`] with the whole part multiplied by its 32-bit
    /// halves, each product exact in 64 bits: on a 32-bit target, two
    /// multiplications and a carry rather than a full 64-bit product and
    /// its overflow test.
    #[cfg_attr(target_pointer_width = "64", allow(dead_code))]
    #[inline(always)]
    fn scaled_in_halves(self, unit: u32) -> Nanos {
        const LOW: u64 = 0xFFFF_FFFF;
        let unit = u64::from(unit);
        // Each half times a 32-bit unit is below 2⁶⁴.
        let low = (self.whole & LOW).wrapping_mul(unit);
        let high = (self.whole >> 32).wrapping_mul(unit);
        let whole = if high > LOW {
            u64::MAX
        } else {
            (high << 32).saturating_add(low)
        };
        let fraction = self.fraction_scaled(unit);
        Nanos::from_nanos(whole.saturating_add(fraction))
    }

    /// The fraction scaled by `unit` nanoseconds, rounded down: one small
    /// multiplication for whole seconds, two small divisions for a unit
    /// that divides a second.
    #[inline(always)]
    fn fraction_scaled(self, unit: u64) -> u64 {
        let billionths = u64::from(self.billionths);
        if billionths == 0 {
            0
        } else if unit >= NANOS_PER_SEC {
            billionths.saturating_mul(unit / NANOS_PER_SEC)
        } else {
            NANOS_PER_SEC
                .checked_div(unit)
                .and_then(|per_unit| billionths.checked_div(per_unit))
                .unwrap_or(0)
        }
    }

    /// Whether the number is at least `bound` (fraction included).
    pub(crate) fn at_least(self, bound: u64) -> bool {
        self.whole >= bound
    }
}

/// `a × b` as a 128-bit number: (high word, low word). In 32-bit halves,
/// because `u128` arithmetic costs kilobytes of code on 32-bit targets.
pub(crate) fn widening_mul(a: u64, b: u64) -> (u64, u64) {
    // Counts are nearly always small: one multiplication then, on a 64-bit
    // target. A 32-bit one multiplies in halves anyway, and its overflow
    // test would cost as much code as the partial products below.
    #[cfg(target_pointer_width = "64")]
    if let Some(product) = a.checked_mul(b) {
        return (0, product);
    }
    widening_mul_in_halves(a, b)
}

/// [`widening_mul`] without its shortcut: the product of four partial
/// products of 32-bit halves, for every `a` and `b`.
#[inline]
fn widening_mul_in_halves(a: u64, b: u64) -> (u64, u64) {
    const LOW: u64 = 0xFFFF_FFFF;
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
#[inline]
pub(crate) fn parse_decimal(raw: &[u8]) -> Result<Decimal, NumberError> {
    #[cfg(target_pointer_width = "64")]
    return parse_decimal_two_loops(raw);
    #[cfg(not(target_pointer_width = "64"))]
    parse_decimal_one_loop(raw)
}

/// The sign of a decimal and what follows it, blanks trimmed: the start
/// shared by both readers of [`parse_decimal`].
#[inline(always)]
fn sign_and_digits(raw: &[u8]) -> (bool, &[u8]) {
    let text = super::structured::trim(raw);
    match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    }
}

/// The end shared by both readers of [`parse_decimal`]: `decimal` holds
/// the whole part read from `unsigned`, and `rest` is what follows it
/// (`.` and the fraction, or nothing); a sign of `-` is refused last, so
/// that a malformed number reads as invalid whatever its sign.
#[inline(always)]
fn finish_decimal(
    mut decimal: Decimal,
    rest: &[u8],
    unsigned: &[u8],
    negative: bool,
) -> Result<Decimal, NumberError> {
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
            // At most 9 × 10⁸ added to at most 10⁹ − 1 − 9 × 10⁸ (the
            // digits before, each worth ten times less): never wraps.
            decimal.billionths = decimal
                .billionths
                .wrapping_add(u32::from(digit).wrapping_mul(scale));
            scale /= 10;
        }
    }
    if negative {
        return Err(NumberError::Negative);
    }
    Ok(decimal)
}

/// Reads the digits at the start of `rest` into `decimal.whole`, on from
/// what it holds, saturating (and saying so) past `u64::MAX`; returns what
/// follows them. The checked loop shared by both readers of
/// [`parse_decimal`].
#[inline(always)]
fn checked_digits<'a>(decimal: &mut Decimal, mut rest: &'a [u8]) -> &'a [u8] {
    while let Some((&byte, after)) = rest.split_first() {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        decimal.whole = match decimal
            .whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(u64::from(digit)))
        {
            Some(w) => w,
            None => {
                decimal.saturated = true;
                u64::MAX
            }
        };
        rest = after;
    }
    rest
}

/// [`parse_decimal`] with one checked loop over the digits: the smallest
/// on a 32-bit target.
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
pub(crate) fn parse_decimal_one_loop(raw: &[u8]) -> Result<Decimal, NumberError> {
    let (negative, unsigned) = sign_and_digits(raw);
    let mut decimal = Decimal {
        whole: 0,
        billionths: 0,
        saturated: false,
    };
    let rest = checked_digits(&mut decimal, unsigned);
    finish_decimal(decimal, rest, unsigned, negative)
}

/// [`parse_decimal`] with an unchecked loop for up to nineteen digits and
/// a checked one past them: the fastest on a 64-bit host.
#[cfg_attr(not(target_pointer_width = "64"), allow(dead_code))]
pub(crate) fn parse_decimal_two_loops(raw: &[u8]) -> Result<Decimal, NumberError> {
    let (negative, unsigned) = sign_and_digits(raw);
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
    let rest = checked_digits(&mut decimal, rest);
    finish_decimal(decimal, rest, unsigned, negative)
}

/// A Go `time.Duration` string as OpenAI sends it (`12ms`, `1s`, `6m0s`,
/// `2m30.5s`, `1h2m`): one or more decimal numbers, each followed by one of
/// the units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`. `None` when the
/// text is not exactly that. Saturates at [`Nanos::MAX`].
pub(crate) fn parse_go_duration(raw: &[u8]) -> Option<Nanos> {
    let mut rest = super::structured::trim(raw);
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
    let text = super::structured::trim(text);
    matches!(text.first(), Some(b) if b.is_ascii_digit())
        && matches!(text.last(), Some(b's' | b'm' | b'h'))
        && !text.contains(&b'-')
        && !text.contains(&b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        let d = parse_decimal(b" 599.0 ").unwrap();
        assert_eq!((d.whole, d.billionths), (599, 0));
        let d = parse_decimal(b"1470173023.123").unwrap();
        assert_eq!((d.whole, d.billionths), (1_470_173_023, 123_000_000));
        assert_eq!(parse_decimal(b"-1"), Err(NumberError::Negative));
        for bad in [
            &b""[..],
            b"NaN",
            b"Infinity",
            b"1e3",
            b"0x10",
            b"1.",
            b".5",
            b"12a",
            b"991, 98",
        ] {
            assert_eq!(parse_decimal(bad), Err(NumberError::Invalid), "{bad:?}");
        }
        assert!(parse_decimal(b"99999999999999999999999").unwrap().saturated);
        for (text, whole) in [(&b"1199"[..], 1199), (b"9999", 9999), (b"0", 0), (b"+7", 7)] {
            assert_eq!(parse_decimal(text).map(|d| d.whole), Ok(whole));
        }
    }

    #[test]
    fn wide_arithmetic_matches_u128() {
        let samples = [
            0,
            1,
            2,
            3,
            999,
            1 << 31,
            1 << 32,
            (1 << 32) + 7,
            1_000_000_000,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        for a in samples {
            for b in samples {
                let product = u128::from(a) * u128::from(b);
                assert_eq!(widening_mul(a, b), ((product >> 64) as u64, product as u64));
                // What a 32-bit target computes, small products included.
                assert_eq!(widening_mul_in_halves(a, b), widening_mul(a, b));
                for divisor in samples {
                    let expected = match product.checked_div(u128::from(divisor)) {
                        Some(q) => u64::try_from(q).unwrap_or(u64::MAX),
                        None => u64::MAX,
                    };
                    assert_eq!(mul_div(a, b, divisor), expected, "{a} {b} {divisor}");
                }
            }
        }
    }

    /// `Decimal::scaled` as it was: the fraction by a wide multiply-divide.
    fn scaled_by_mul_div(decimal: Decimal, unit: u64) -> Nanos {
        let whole = decimal.whole.saturating_mul(unit);
        let fraction = if decimal.billionths == 0 {
            0
        } else {
            mul_div(u64::from(decimal.billionths), unit, NANOS_PER_SEC)
        };
        Nanos::from_nanos(whole.saturating_add(fraction))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Every unit read scales as the wide multiply-divide did.
        #[test]
        fn scaling_matches_the_wide_form(
            whole in proptest::prop_oneof![0u64..=1_000_000, proptest::prelude::any::<u64>()],
            billionths in proptest::prop_oneof![0u32..1_000_000_000, proptest::prelude::Just(999_999_999u32)],
            saturated: bool,
            unit in proptest::sample::select(&[
                1,
                1_000,
                1_000_000,
                NANOS_PER_SEC,
                60 * NANOS_PER_SEC,
                3_600 * NANOS_PER_SEC,
            ][..]),
        ) {
            let decimal = Decimal { whole, billionths, saturated };
            proptest::prop_assert_eq!(decimal.scaled(unit), scaled_by_mul_div(decimal, unit));
        }

        /// A unit of 32 bits scales, by halves, as the 64-bit form scales it.
        #[test]
        fn scaling_by_halves_matches_the_64_bit_form(
            whole in proptest::prop_oneof![
                0u64..=1_000_000,
                (1u64 << 32) - 2..=(1u64 << 32) + 2,
                proptest::prelude::any::<u64>(),
            ],
            billionths in proptest::prop_oneof![0u32..1_000_000_000, proptest::prelude::Just(999_999_999u32)],
            saturated: bool,
            unit in proptest::prop_oneof![
                proptest::sample::select(&[1u32, 1_000, 1_000_000, 1_000_000_000, u32::MAX][..]),
                1u32..,
            ],
        ) {
            let decimal = Decimal { whole, billionths, saturated };
            let expected = decimal.scaled(u64::from(unit));
            proptest::prop_assert_eq!(decimal.scaled_in_halves(unit), expected);
            proptest::prop_assert_eq!(decimal.scaled_short(unit), expected);
        }
    }

    /// A fraction's billionths as they were read before the sum wrapped:
    /// with saturating arithmetic, the model the reader is checked against.
    fn billionths_saturating(fraction: &[u8]) -> u32 {
        let mut billionths = 0u32;
        let mut scale = 100_000_000u32;
        for &byte in fraction {
            billionths = billionths.saturating_add(u32::from(byte - b'0').saturating_mul(scale));
            scale /= 10;
        }
        billionths
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// A fraction of any length reads as the saturating sum read it.
        #[test]
        fn fractions_read_as_the_saturating_sum(
            whole in proptest::collection::vec(proptest::sample::select(&b"0123456789"[..]), 1..5),
            fraction in proptest::collection::vec(
                proptest::prop_oneof![proptest::sample::select(&b"0123456789"[..]), proptest::prelude::Just(b'9')],
                1..24,
            ),
        ) {
            let text = [&whole[..], b".", &fraction].concat();
            let read = parse_decimal(&text).unwrap();
            proptest::prop_assert_eq!(read.billionths, billionths_saturating(&fraction));
            proptest::prop_assert_eq!(parse_decimal_one_loop(&text), Ok(read));
        }

        /// Decimals read as the two-loop form read them, whatever the bytes.
        #[test]
        fn decimals_read_as_the_two_loop_form(
            text in proptest::prop_oneof![
                proptest::collection::vec(proptest::sample::select(&b"0123456789.-+ \t9"[..]), 0..32),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            ],
        ) {
            proptest::prop_assert_eq!(parse_decimal_one_loop(&text), parse_decimal_two_loops(&text));
        }

        /// The product in halves (a 32-bit target's only form) is the
        /// exact 128-bit product, small or large.
        #[test]
        fn products_in_halves_are_exact(
            a in proptest::prop_oneof![0u64..=1_000_000_000_000, proptest::prelude::any::<u64>()],
            b in proptest::prop_oneof![0u64..=1_000_000_000_000, proptest::prelude::any::<u64>()],
        ) {
            let product = u128::from(a) * u128::from(b);
            let expected = ((product >> 64) as u64, product as u64);
            proptest::prop_assert_eq!(widening_mul_in_halves(a, b), expected);
            proptest::prop_assert_eq!(widening_mul(a, b), expected);
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration(b"12ms"), Some(Nanos::from_millis(12)));
        assert_eq!(parse_go_duration(b"6m0s"), Some(Nanos::from_secs(360)));
        assert_eq!(parse_go_duration(b"2m30.5s"), Some(Nanos::from_millis(150_500)));
        assert_eq!(parse_go_duration("7µs".as_bytes()), Some(Nanos::from_micros(7)));
        assert_eq!(parse_go_duration(b"1h"), Some(Nanos::from_secs(3600)));
        for bad in [&b""[..], b"s", b"12", b"12x", b"1.s", b"-1s", b"1s2"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }
}
