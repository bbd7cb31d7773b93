//! Text -> typed value parsers for Table Schema types (strict, allocation-free).
//!
//! * integer: optional sign and ASCII digits only; "1.0", " 1", "1e3" are not integers; values
//!   beyond the signed 64-bit range are refused.
//! * number: decimal or exponent notation (`-1.5`, `.5`, `2e-3`); the special values are spelled
//!   `NaN`, `INF`, `-INF` in any letter case (Frictionless); `infinity` is refused.
//! * date: `YYYY-MM-DD`, a real calendar date (leap years checked; years 0001-9999, as Python).
//! * datetime: `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM|±HH]` (`T` or a space); normalized
//!   to `YYYY-MM-DDTHH:MM:SS[.fraction]` plus `Z` when a zone was given (converted to UTC), the
//!   fraction without trailing zeros.

use super::temporal::{num, parse_clock, push_digits, write_clock};

/// Parse a Table Schema integer.
pub fn parse_int(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err("is not an integer");
    }
    let mut v: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        v = v
            .checked_mul(10)
            .and_then(|v| {
                if neg {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or("is out of the 64-bit integer range")?;
    }
    Ok(v)
}

/// Parse an integer of a field declared big (a bound beyond 64 bits): up to 128 bits, what
/// PostgreSQL's `numeric` and DuckDB's `HUGEINT` columns hold.
pub fn parse_big_int(s: &str) -> Result<i128, &'static str> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err("is not an integer");
    }
    let mut v: i128 = 0;
    for &d in digits {
        let d = i128::from(d - b'0');
        v = v
            .checked_mul(10)
            .and_then(|v| {
                if neg {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or("is out of the 128-bit integer range")?;
    }
    Ok(v)
}

/// Powers of ten a `f64` holds exactly.
pub(crate) const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Whether the 8 bytes of `w` (little-endian) are all ASCII digits (simdjson's test: a byte
/// outside `0x30..=0x39` shows a high nibble other than 3 in `w` or in `w + 6`).
#[inline]
fn eight_digits(w: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    ((w & HIGH) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4)) == 0x3333_3333_3333_3333
}

/// The value of 8 ASCII digits, the first in the lowest byte (simdjson's SWAR reduction:
/// pairs, then quads, then the eight).
#[inline]
pub(crate) fn eight_digits_value(w: u64) -> u64 {
    let w = ((w & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561)) >> 8;
    let w = ((w & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601)) >> 16;
    ((w & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001)) >> 32
}

/// Read the run of ASCII digits at the start of `b` into `m` (wrapping: the caller bounds the
/// digit count); returns how many there were.
#[inline]
fn digits_into(b: &[u8], m: &mut u64) -> usize {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        if !eight_digits(w) {
            break;
        }
        *m = m
            .wrapping_mul(100_000_000)
            .wrapping_add(eight_digits_value(w));
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    i
}

/// The common number, `[+-]digits[.digits]` with at most 19 digits, read without the general
/// parser when Clinger's fast path is exact: the digits as an integer `m <= 2^53` and `k <= 22`
/// fraction digits make `m` and `10^k` exact doubles, so `m / 10^k` is one correctly rounded
/// IEEE division -- the very value the correctly rounding `str::parse` returns. `None` for
/// anything else (the caller parses it in full).
#[inline]
pub fn parse_plain_decimal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (neg, rest) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    // at most 19 digits and a point: m < 10^19 fits a u64, no wrapping happens
    if rest.len() > 20 {
        return None;
    }
    let mut m = 0u64;
    let int = digits_into(rest, &mut m);
    let frac = match rest.get(int) {
        None => 0,
        Some(b'.') => {
            let f = digits_into(&rest[int + 1..], &mut m);
            if int + 1 + f != rest.len() || f == 0 {
                return None;
            }
            f
        }
        Some(_) => return None,
    };
    if int == 0 || int + frac > 19 || m > (1u64 << 53) {
        return None;
    }
    let v = m as f64 / EXACT_POW10[frac];
    Some(if neg { -v } else { v })
}

/// Parse a Table Schema number.
pub fn parse_number(s: &str) -> Result<f64, &'static str> {
    if let Some(v) = parse_plain_decimal(s) {
        return Ok(v);
    }
    if let Some(v) = super::number::special(s) {
        return Ok(v);
    }
    let b = s.as_bytes();
    // Rust's parser also takes "inf", "infinity", "nan" in any case: refuse those spellings.
    if b.is_empty()
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return Err("is not a number");
    }
    let v: f64 = s.parse().map_err(|_| "is not a number")?;
    if v.is_infinite() {
        return Err("is out of the 64-bit floating point range");
    }
    Ok(v)
}

/// Whether year-month-day is a real calendar date (years 1-9999).
pub fn is_valid_date(y: i64, m: u32, d: u32) -> bool {
    (1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parse `YYYY-MM-DD`; returns the day number (days since 1970-01-01).
pub fn parse_date(s: &str) -> Result<i64, &'static str> {
    let (y, m, d) = parse_date_parts(s)?;
    Ok(days_from_civil(y, m, d))
}

/// Parse `YYYY-MM-DD` into year, month and day (a real calendar date), without the day number.
pub fn parse_date_parts(s: &str) -> Result<(i64, u32, u32), &'static str> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("is not a date (YYYY-MM-DD)");
    }
    let (Some(y), Some(m), Some(d)) = (num(&b[0..4]), num(&b[5..7]), num(&b[8..10])) else {
        return Err("is not a date (YYYY-MM-DD)");
    };
    let y = i64::from(y);
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err("is not a valid calendar date");
    }
    Ok((y, m, d))
}

/// A parsed datetime: seconds since the epoch (UTC when `aware`, wall time otherwise) and
/// nanoseconds, plus the fraction digits as written (for the normalized text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub secs: i64,
    pub nanos: u32,
    pub aware: bool,
}

impl DateTime {
    /// Normalized ISO 8601 text: `YYYY-MM-DDTHH:MM:SS[.f]` + `Z` when aware.
    pub fn write_iso(&self, out: &mut String) {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        // digits pushed directly (no formatting machinery: this runs for every datetime cell)
        match u32::try_from(y) {
            Ok(y) if y <= 9999 => {
                push_digits(out, y, 4);
                out.push('-');
                push_digits(out, m, 2);
                out.push('-');
                push_digits(out, d, 2);
                out.push('T');
            }
            _ => out.push_str(&format!("{y:04}-{m:02}-{d:02}T")),
        }
        write_clock(out, sod, self.nanos);
        if self.aware {
            out.push('Z');
        }
    }

    pub fn to_iso(&self) -> String {
        let mut s = String::with_capacity(32);
        self.write_iso(&mut s);
        s
    }
}

/// Parse an ISO 8601 datetime (see the module docs).
pub fn parse_datetime(s: &str) -> Result<DateTime, &'static str> {
    const BAD: &str = "is not a datetime (ISO 8601, e.g. 2024-01-31T12:00:00Z)";
    let b = s.as_bytes();
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return Err(BAD);
    }
    let days = match std::str::from_utf8(&b[..10]).map(parse_date) {
        Ok(Ok(d)) => d,
        Ok(Err(e)) if e.contains("calendar") => return Err(e),
        _ => return Err(BAD),
    };
    let clock = parse_clock(&b[11..], BAD)?;
    let secs = days * 86_400 + i64::from(clock.secs) - i64::from(clock.offset.unwrap_or(0));
    let nanos = clock.nanos;
    let aware = clock.offset.is_some();
    if aware && !(-62_135_596_800..253_402_300_800).contains(&secs) {
        return Err("is out of the supported datetime range (years 1-9999)");
    }
    Ok(DateTime { secs, nanos, aware })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("-7"), Ok(-7));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_int("9223372036854775808").is_err());
        for bad in ["1.0", "", "-", " 1", "1 ", "1e3", "0x10", "١"] {
            assert!(parse_int(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1.5"), Ok(1.5));
        assert_eq!(parse_number("-2e3"), Ok(-2000.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("INF"), Ok(f64::INFINITY));
        assert_eq!(parse_number("-INF"), Ok(f64::NEG_INFINITY));
        assert!(parse_number("NaN").unwrap().is_nan());
        for bad in ["infinity", "1,5", "", " 1", "1e999", "abc", "--1"] {
            assert!(parse_number(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20000))]

        /// The fast path reads exactly what the general parser reads (bit for bit, -0.0 too).
        #[test]
        fn plain_decimals_equal_the_general_parser(
            s in "[-+]?[0-9]{0,20}(\\.[0-9]{0,22})?|[-+.0-9]{1,6}|[0-9]{1,17}\\.[0-9]{1,17}",
        ) {
            if let Some(v) = parse_plain_decimal(&s) {
                let full: f64 = s.parse().expect("the general parser reads it");
                proptest::prop_assert_eq!(v.to_bits(), full.to_bits(), "{}", s);
            }
        }

        #[test]
        fn large_mantissas_near_the_fast_path_edge(m in (1u64 << 52)..(1u64 << 54), k in 0usize..24) {
            let digits = m.to_string();
            let s = if k == 0 || k >= digits.len() { digits } else {
                format!("{}.{}", &digits[..digits.len() - k], &digits[digits.len() - k..])
            };
            if let Some(v) = parse_plain_decimal(&s) {
                proptest::prop_assert_eq!(v.to_bits(), s.parse::<f64>().unwrap().to_bits(), "{}", s);
            }
        }
    }

    proptest::proptest! {
        /// Normalized datetimes are written as the formatting machinery wrote them.
        #[test]
        fn iso_text_as_format_wrote_it(
            secs in -62_135_596_800i64..253_402_300_800,
            nanos in proptest::prop_oneof![proptest::strategy::Just(0u32), 0u32..1_000_000_000],
            aware: bool,
        ) {
            let t = DateTime { secs, nanos, aware };
            let days = secs.div_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            let mut want = format!("{y:04}-{m:02}-{d:02}T");
            let sod = secs.rem_euclid(86_400);
            want.push_str(&format!("{:02}:{:02}:{:02}", sod / 3600, (sod / 60) % 60, sod % 60));
            if nanos != 0 {
                want.push('.');
                want.push_str(format!("{nanos:09}").trim_end_matches('0'));
            }
            if aware {
                want.push('Z');
            }
            proptest::prop_assert_eq!(t.to_iso(), want);
        }
    }

    #[test]
    fn eight_digit_words() {
        let w = |b: &[u8; 8]| u64::from_le_bytes(*b);
        assert!(eight_digits(w(b"01234567")));
        assert_eq!(eight_digits_value(w(b"01234567")), 1_234_567);
        assert_eq!(eight_digits_value(w(b"99999999")), 99_999_999);
        for bad in [
            b"0123456/",
            b"0123456:",
            b"\xff1234567",
            b"0123 567",
            b"\x001234567",
        ] {
            assert!(!eight_digits(w(bad)), "{bad:?}");
        }
        for b in 0..=255u8 {
            let mut word = *b"12345678";
            word[3] = b;
            assert_eq!(eight_digits(w(&word)), b.is_ascii_digit(), "{b}");
        }
    }

    #[test]
    fn plain_decimals() {
        assert_eq!(parse_plain_decimal("1234.56"), Some(1234.56));
        assert_eq!(
            parse_plain_decimal("0.8444218515250481"),
            Some(0.8444218515250481)
        );
        assert_eq!(
            parse_plain_decimal("-0.0").map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(parse_plain_decimal("+7"), Some(7.0));
        for other in [
            "",
            "-",
            ".5",
            "5.",
            "1e3",
            "1.2.3",
            "nan",
            "0.12345678901234567",
            "1,5",
        ] {
            assert_eq!(parse_plain_decimal(other), None, "{other}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2024-02-29"), Ok(19_782));
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2000-02-29").is_ok());
        assert!(parse_date("1900-02-29").is_err());
        assert!(parse_date("2024-13-01").is_err());
        assert!(parse_date("2024-04-31").is_err());
        assert!(
            parse_date("0000-01-01").is_err(),
            "year 0 does not exist (as in Python)"
        );
        assert!(parse_date("0001-01-01").is_ok());
        assert!(parse_date("2024-1-01").is_err());
        assert!(parse_date("24-01-01xx").is_err());
        for d in [-800_000, -1, 0, 1, 19_782, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn datetimes() {
        let t = parse_datetime("2024-01-31T12:00:00Z").unwrap();
        assert_eq!(t.to_iso(), "2024-01-31T12:00:00Z");
        let t = parse_datetime("2024-01-31T12:00:00+02:00").unwrap();
        assert_eq!(t.to_iso(), "2024-01-31T10:00:00Z");
        let t = parse_datetime("2024-01-01T01:00:00.250-0130").unwrap();
        assert_eq!(t.to_iso(), "2024-01-01T02:30:00.25Z");
        let t = parse_datetime("2024-03-01 00:00:00+01").unwrap();
        assert_eq!(t.to_iso(), "2024-02-29T23:00:00Z");
        let t = parse_datetime("2024-01-31T12:00:00.123456789").unwrap();
        assert_eq!(t.to_iso(), "2024-01-31T12:00:00.123456789");
        assert!(!t.aware);
        for bad in [
            "2024-01-31",
            "2024-01-31T25:00:00",
            "2024-01-31T12:00",
            "2024-02-30T00:00:00",
            "2024-01-31T12:00:00.",
            "2024-01-31T12:00:00.1234567890",
            "2024-01-31T12:00:00+2",
            "2024-01-31T12:00:00 Z",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }
}
