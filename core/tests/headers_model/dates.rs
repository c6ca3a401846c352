//! Absolute times as servers write them: the three HTTP-date forms of
//! RFC 9110 §5.6.7, ISO 8601 / RFC 3339, and JavaScript's
//! `Date.prototype.toString()`.
//!
//! Leniency, and why: weekday names are read but not checked against the
//! date (a wrong weekday does not make the time ambiguous); month and
//! weekday names are matched without regard to case; `GMT`, `UTC` and `Z`
//! all mean UTC. A two-digit RFC 850 year is taken as 19xx from 70 up and
//! 20xx below (a fixed pivot: RFC 9110's "more than 50 years in the
//! future" rule needs a clock this function does not have). An ISO 8601
//! time without an offset is taken as UTC, since every provider that sends
//! one (Jira Cloud, Akamai, Anthropic) means UTC. Times before 1970 and
//! after 9999 are not read.

use super::{Families, UnixTime};

const SECS_PER_DAY: u64 = 86_400;

// Calendar fields are `u32` (nine digits fit): 64-bit arithmetic costs
// twice the code on 32-bit targets.
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Days from 1970-01-01 to `year-month-day`, for a valid date from 1970 on
/// (after Howard Hinnant's `days_from_civil`, in unsigned arithmetic).
fn days_from_civil(year: u32, month: u32, day: u32) -> u32 {
    let year = if month <= 2 { year.saturating_sub(1) } else { year };
    let era = year / 400;
    let year_of_era = year.saturating_sub(era.saturating_mul(400));
    let shifted_month = if month > 2 {
        month.saturating_sub(3)
    } else {
        month.saturating_add(9)
    };
    let day_of_year = shifted_month
        .saturating_mul(153)
        .saturating_add(2)
        .checked_div(5)
        .unwrap_or(0)
        .saturating_add(day)
        .saturating_sub(1);
    let day_of_era = year_of_era
        .saturating_mul(365)
        .saturating_add(year_of_era / 4)
        .saturating_sub(year_of_era / 100)
        .saturating_add(day_of_year);
    era.saturating_mul(146_097)
        .saturating_add(day_of_era)
        .saturating_sub(719_468)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A calendar time in UTC, validated.
#[derive(Clone, Copy, Debug, Default)]
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    billionths: u32,
}

impl Civil {
    /// Seconds since the epoch shifted by `offset_secs` east of UTC, or
    /// `None` for an impossible date or one before 1970.
    fn to_unix(self, offset_secs: i32) -> Option<UnixTime> {
        let valid = (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60;
        if !valid {
            return None;
        }
        // Valid fields: the day of the time is under 86,401 seconds.
        let of_day = self
            .hour
            .saturating_mul(3600)
            .saturating_add(self.minute.saturating_mul(60))
            .saturating_add(self.second);
        let local = u64::from(days_from_civil(self.year, self.month, self.day))
            .saturating_mul(SECS_PER_DAY)
            .saturating_add(u64::from(of_day));
        let utc = i64::try_from(local).ok()?.checked_sub(i64::from(offset_secs))?;
        let secs = u64::try_from(utc).ok()?;
        let nanos = secs
            .checked_mul(NANOS_PER_SEC)?
            .checked_add(u64::from(self.billionths))?;
        Some(UnixTime::from_nanos(nanos))
    }
}

fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 9 {
        return None;
    }
    let mut value = 0u32;
    for &byte in text {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        // At most nine digits: no overflow.
        value = value.wrapping_mul(10).wrapping_add(u32::from(digit));
    }
    Some(value)
}

fn fixed_digits(text: &[u8], len: usize) -> Option<u32> {
    if text.len() == len { digits(text) } else { None }
}

fn month(name: &[u8]) -> Option<u32> {
    const MONTHS: &[u8; 36] = b"janfebmaraprmayjunjulaugsepoctnovdec";
    let &[a, b, c] = name else {
        return None;
    };
    // Setting bit 5 lowercases exactly the ASCII capitals, and makes no
    // other byte a lowercase letter: one comparison per month.
    let key = u32::from_le_bytes([a, b, c, 0]) | 0x0020_2020;
    let mut number = 0u32;
    for known in MONTHS.chunks_exact(3) {
        number = number.saturating_add(1);
        if let &[x, y, z] = known
            && u32::from_le_bytes([x, y, z, 0]) == key
        {
            return Some(number);
        }
    }
    None
}

/// Two ASCII digits' value.
fn two_digits(tens: u8, ones: u8) -> Option<u32> {
    let (tens, ones) = (tens.wrapping_sub(b'0'), ones.wrapping_sub(b'0'));
    if tens > 9 || ones > 9 {
        return None;
    }
    Some(u32::from(tens).saturating_mul(10).saturating_add(u32::from(ones)))
}

fn is_weekday(name: &[u8]) -> bool {
    const DAYS: [&[u8]; 7] = [
        b"monday",
        b"tuesday",
        b"wednesday",
        b"thursday",
        b"friday",
        b"saturday",
        b"sunday",
    ];
    DAYS.iter().any(|day| {
        day.eq_ignore_ascii_case(name)
            || (name.len() == 3 && day.get(..3).is_some_and(|short| short.eq_ignore_ascii_case(name)))
    })
}

/// `hh:mm:ss` into (hour, minute, second).
fn clock_time(text: &[u8]) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(|&b| b == b':');
    let hour = fixed_digits(parts.next()?, 2)?;
    let minute = fixed_digits(parts.next()?, 2)?;
    let second = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() {
        return None;
    }
    Some((hour, minute, second))
}

/// `GMT`, `UTC`, `Z`, `GMT+0100`, `UTC-05:30`, `+0000`: seconds east of UTC.
fn zone(text: &[u8]) -> Option<i32> {
    let lower_is =
        |s: &[u8]| text.len() >= s.len() && text.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s));
    let offset = if lower_is(b"GMT") || lower_is(b"UTC") {
        text.get(3..)?
    } else if text.eq_ignore_ascii_case(b"Z") {
        return Some(0);
    } else {
        text
    };
    if offset.is_empty() {
        return Some(0);
    }
    numeric_offset(offset)
}

/// `+hh`, `+hhmm`, `+hh:mm` (or `-`): seconds east of UTC.
fn numeric_offset(text: &[u8]) -> Option<i32> {
    let (sign, rest) = match text.split_first()? {
        (b'+', rest) => (1i32, rest),
        (b'-', rest) => (-1i32, rest),
        _ => return None,
    };
    let (hours, minutes) = match rest.len() {
        2 => (fixed_digits(rest, 2)?, 0),
        4 => (fixed_digits(rest.get(..2)?, 2)?, fixed_digits(rest.get(2..)?, 2)?),
        5 if rest.get(2) == Some(&b':') => {
            (fixed_digits(rest.get(..2)?, 2)?, fixed_digits(rest.get(3..)?, 2)?)
        }
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    let secs = i32::try_from(hours.checked_mul(3600)?.checked_add(minutes.checked_mul(60)?)?).ok()?;
    sign.checked_mul(secs)
}

/// Up to eight words of `text`, split on blanks and commas.
fn words(text: &[u8]) -> ([&[u8]; 8], usize) {
    let mut out: [&[u8]; 8] = [&[]; 8];
    let mut count = 0usize;
    for word in text
        .split(|&b| b == b' ' || b == b',' || b == b'\t')
        .filter(|w| !w.is_empty())
    {
        match out.get_mut(count) {
            Some(slot) => *slot = word,
            None => return (out, usize::MAX),
        }
        count = count.saturating_add(1);
    }
    (out, count)
}

/// An HTTP-date in any of RFC 9110's three forms, or a JavaScript
/// `Date.toString()`:
///
/// - IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`;
/// - RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`;
/// - asctime `Sun Nov  6 08:49:37 1994`;
/// - JavaScript `Mon Jan 01 2024 12:00:00 GMT+0100 (Central European Standard Time)`.
///
/// Only the forms `FORMS` selects ([`Families::HTTP_DATE`] for RFC 9110's
/// three, [`Families::JS_DATE`] for JavaScript's) are read; the others are
/// `None`, as any text that is no date.
pub(crate) fn parse_http_date<const FORMS: u32>(raw: &[u8]) -> Option<UnixTime> {
    let http = FORMS & Families::HTTP_DATE != 0;
    let js = FORMS & Families::JS_DATE != 0;
    let text = raw.trim_ascii();
    if http && let Some(time) = imf_fixdate_exact(text) {
        return Some(time);
    }
    // A JavaScript date ends in a parenthesised zone name: drop it.
    let text = match text.iter().position(|&b| b == b'(') {
        Some(open) if js => text.get(..open)?.trim_ascii(),
        _ => text,
    };
    let (w, count) = words(text);
    let w = w.get(..count)?;
    let w = match w.split_first() {
        Some((first, rest)) if is_weekday(first) => rest,
        _ => w,
    };
    let mut civil = Civil::default();
    let offset;
    match w {
        // IMF-fixdate: 06 Nov 1994 08:49:37 GMT
        [day, mon, year, time, tz] if http && day.first().is_some_and(u8::is_ascii_digit) => {
            civil.day = digits(day)?;
            civil.month = month(mon)?;
            civil.year = fixed_digits(year, 4)?;
            (civil.hour, civil.minute, civil.second) = clock_time(time)?;
            offset = zone(tz)?;
        }
        // RFC 850: 06-Nov-94 08:49:37 GMT
        [date, time, tz] if http => {
            let mut parts = date.split(|&b| b == b'-');
            civil.day = fixed_digits(parts.next()?, 2)?;
            civil.month = month(parts.next()?)?;
            let year = parts.next()?;
            if parts.next().is_some() {
                return None;
            }
            civil.year = match year.len() {
                2 => {
                    let yy = digits(year)?;
                    if yy >= 70 {
                        yy.checked_add(1900)?
                    } else {
                        yy.checked_add(2000)?
                    }
                }
                4 => digits(year)?,
                _ => return None,
            };
            (civil.hour, civil.minute, civil.second) = clock_time(time)?;
            offset = zone(tz)?;
        }
        // asctime: Nov  6 08:49:37 1994
        [mon, day, time, year] if http && time.contains(&b':') => {
            civil.month = month(mon)?;
            civil.day = digits(day)?;
            (civil.hour, civil.minute, civil.second) = clock_time(time)?;
            civil.year = fixed_digits(year, 4)?;
            offset = 0;
        }
        // JavaScript: Jan 01 2024 12:00:00 GMT+0100
        [mon, day, year, time, tz] if js => {
            civil.month = month(mon)?;
            civil.day = digits(day)?;
            civil.year = fixed_digits(year, 4)?;
            (civil.hour, civil.minute, civil.second) = clock_time(time)?;
            offset = zone(tz)?;
        }
        [mon, day, year, time] if js && mon.first().is_some_and(u8::is_ascii_alphabetic) => {
            civil.month = month(mon)?;
            civil.day = digits(day)?;
            civil.year = fixed_digits(year, 4)?;
            (civil.hour, civil.minute, civil.second) = clock_time(time)?;
            offset = 0;
        }
        _ => return None,
    }
    if civil.day > 31 {
        return None;
    }
    civil.to_unix(offset)
}

/// The fast path for the form nearly every `Date` header has: exactly
/// `Sun, 06 Nov 1994 08:49:37 GMT`, read by position.
#[inline]
fn imf_fixdate_exact(text: &[u8]) -> Option<UnixTime> {
    let [
        _,
        _,
        _,
        b',',
        b' ',
        d1,
        d2,
        b' ',
        m1,
        m2,
        m3,
        b' ',
        y1,
        y2,
        y3,
        y4,
        b' ',
        h1,
        h2,
        b':',
        n1,
        n2,
        b':',
        s1,
        s2,
        b' ',
        b'G',
        b'M',
        b'T',
    ] = *text
    else {
        return None;
    };
    let civil = Civil {
        day: two_digits(d1, d2)?,
        month: month(&[m1, m2, m3])?,
        year: two_digits(y1, y2)?
            .saturating_mul(100)
            .saturating_add(two_digits(y3, y4)?),
        hour: two_digits(h1, h2)?,
        minute: two_digits(n1, n2)?,
        second: two_digits(s1, s2)?,
        billionths: 0,
    };
    civil.to_unix(0)
}

/// ISO 8601 / RFC 3339 as rate-limit headers use it: `YYYY-MM-DD`, then
/// optionally `T` (or `t` or a blank) and `hh:mm`, `:ss`, `.fraction`, and
/// a zone (`Z`, `+hh:mm`, `+hhmm`, `+hh`; none means UTC). Jira Cloud
/// sends minute precision (`2024-01-01T12:00Z`).
pub(crate) fn parse_iso8601(raw: &[u8]) -> Option<UnixTime> {
    let text = raw.trim_ascii();
    let mut civil = Civil {
        year: fixed_digits(text.get(..4)?, 4)?,
        month: fixed_digits(text.get(5..7)?, 2)?,
        day: fixed_digits(text.get(8..10)?, 2)?,
        ..Civil::default()
    };
    if text.get(4) != Some(&b'-') || text.get(7) != Some(&b'-') {
        return None;
    }
    let rest = text.get(10..)?;
    let Some((&separator, time)) = rest.split_first() else {
        return civil.to_unix(0);
    };
    if !matches!(separator, b'T' | b't' | b' ') {
        return None;
    }
    civil.hour = fixed_digits(time.get(..2)?, 2)?;
    if time.get(2) != Some(&b':') {
        return None;
    }
    civil.minute = fixed_digits(time.get(3..5)?, 2)?;
    let mut rest = time.get(5..)?;
    if let Some(after) = rest.strip_prefix(b":") {
        civil.second = fixed_digits(after.get(..2)?, 2)?;
        rest = after.get(2..)?;
        if let Some(after) = rest.strip_prefix(b".").or_else(|| rest.strip_prefix(b",")) {
            let len = after
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(after.len());
            let fraction = after.get(..len)?;
            if fraction.is_empty() {
                return None;
            }
            let mut scale = 100_000_000u32;
            for &d in fraction.iter().take(9) {
                civil.billionths = civil
                    .billionths
                    .saturating_add(u32::from(d.wrapping_sub(b'0')).saturating_mul(scale));
                scale /= 10;
            }
            rest = after.get(len..)?;
        }
    }
    let offset = match rest {
        [] => 0,
        [b'Z' | b'z'] => 0,
        zone => numeric_offset(zone)?,
    };
    civil.to_unix(offset)
}
