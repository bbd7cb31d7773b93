//! Times of day and years (Table Schema `time` and `year`), and the clock part shared with
//! `datetime` (see [`super::coerce::parse_datetime`]).
//!
//! * time: `HH:MM:SS[.fraction][Z|±HH:MM|±HHMM|±HH]`, hours 00-23; normalized to
//!   `HH:MM:SS[.fraction]` (fraction without trailing zeros) plus `Z` when a zone was given
//!   (converted to UTC, wrapping around midnight).
//! * year: exactly four ASCII digits (`0000`-`9999`), stored as an integer.

use std::fmt::Write;

pub(crate) fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Wrapping: callers check the length (a year's four digits), so a longer run of digits is
    // refused whatever it sums to; plain `*`/`+` panicked on it in debug builds.
    Some(b.iter().fold(0u32, |a, &d| {
        a.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))
    }))
}

/// A parsed clock: seconds of the day, nanoseconds and the zone offset in seconds east of UTC
/// (None without a zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub secs: u32,
    pub nanos: u32,
    pub offset: Option<i32>,
}

pub(crate) const BAD_TIME: &str = "is not a time (HH:MM:SS, e.g. 12:30:00)";

/// Parse `HH:MM:SS[.fraction][zone]`; errors are `bad` or "is not a valid time of day".
pub(crate) fn parse_clock(b: &[u8], bad: &'static str) -> Result<Clock, &'static str> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return Err(bad);
    }
    let (Some(hh), Some(mm), Some(ss)) = (num(&b[0..2]), num(&b[3..5]), num(&b[6..8])) else {
        return Err(bad);
    };
    if hh > 23 || mm > 59 || ss > 59 {
        return Err("is not a valid time of day");
    }
    let mut rest = &b[8..];
    let mut nanos = 0u32;
    if let Some(b'.') = rest.first() {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return Err(bad);
        }
        let digits = num(&rest[1..=n]).ok_or(bad)?;
        nanos = digits * 10u32.pow(9 - n as u32);
        rest = &rest[1 + n..];
    }
    let offset = match rest {
        [] => None,
        [b'Z'] | [b'z'] => Some(0),
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (oh, om) = match tz {
                [a, b2] => (num(&[*a, *b2]), Some(0)),
                [a, b2, b':', c, d] | [a, b2, c, d] => (num(&[*a, *b2]), num(&[*c, *d])),
                _ => return Err(bad),
            };
            let (Some(oh), Some(om)) = (oh, om) else {
                return Err(bad);
            };
            if oh > 23 || om > 59 {
                return Err(bad);
            }
            let off = (oh * 3600 + om * 60) as i32;
            Some(if *sign == b'+' { off } else { -off })
        }
        _ => return Err(bad),
    };
    Ok(Clock {
        secs: hh * 3600 + mm * 60 + ss,
        nanos,
        offset,
    })
}

/// Write `HH:MM:SS[.fraction]` for seconds of the day and nanoseconds.
pub(crate) fn write_clock(out: &mut String, sod: i64, nanos: u32) {
    if (0..86_400).contains(&sod) {
        // hours 0-23: each part two digits, as `{:02}` writes them
        push_digits(out, (sod / 3600) as u32, 2);
        out.push(':');
        push_digits(out, ((sod / 60) % 60) as u32, 2);
        out.push(':');
        push_digits(out, (sod % 60) as u32, 2);
    } else {
        let _ = write!(
            out,
            "{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
    }
    if nanos != 0 {
        out.push('.');
        if nanos < 1_000_000_000 {
            // the nine digits of `{nanos:09}` without its trailing zeros
            let mut digits = [0u8; 9];
            let mut n = nanos;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
            for &d in &digits[..len] {
                out.push(char::from(d));
            }
        } else {
            let frac = format!("{nanos:09}");
            out.push_str(frac.trim_end_matches('0'));
        }
    }
}

/// Push `v` as exactly `width` decimal digits, zero-padded (`v < 10^width`: the caller checks).
#[inline]
pub(crate) fn push_digits(out: &mut String, v: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + ((v / div) % 10) as u8));
        div /= 10;
    }
}

/// Parse a Table Schema time; returns its normalized text (see the module docs).
pub fn parse_time(s: &str) -> Result<String, &'static str> {
    let c = parse_clock(s.as_bytes(), BAD_TIME)?;
    let mut out = String::with_capacity(16);
    let sod = (i64::from(c.secs) - i64::from(c.offset.unwrap_or(0))).rem_euclid(86_400);
    write_clock(&mut out, sod, c.nanos);
    if c.offset.is_some() {
        out.push('Z');
    }
    Ok(out)
}

/// Parse a Table Schema year (four digits).
pub fn parse_year(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    match num(b) {
        Some(y) if b.len() == 4 => Ok(i64::from(y)),
        _ => Err("is not a year (four digits, e.g. 2024)"),
    }
}

/// Parse a Table Schema yearmonth (`YYYY-MM`).
pub fn parse_yearmonth(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    match (
        b.len(),
        num(b.get(..4).unwrap_or(&[])),
        b.get(4),
        num(b.get(5..).unwrap_or(&[])),
    ) {
        (7, Some(_), Some(b'-'), Some(m)) if (1..=12).contains(&m) => Ok(()),
        _ => Err("is not a year and month (YYYY-MM)"),
    }
}

/// Check an ISO 8601 duration: `[-]P[nY][nM][nW][nD][T[nH][nM][nS]]`, at least one part,
/// decimals (`.` or `,`) allowed on the last one.
pub fn check_duration(s: &str) -> Result<(), &'static str> {
    const BAD: &str = "is not an ISO 8601 duration (e.g. P1DT2H)";
    let rest = s.strip_prefix('-').unwrap_or(s);
    let rest = rest.strip_prefix('P').ok_or(BAD)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(BAD),
        None => (rest, None),
    };
    let mut parts = 0;
    let mut fraction_seen = false;
    for (text, units) in [(date, "YMWD"), (time.unwrap_or(""), "HMS")] {
        let mut allowed = units;
        let mut num_start = 0;
        for (i, c) in text.char_indices() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                continue;
            }
            let digits = &text[num_start..i];
            let pos = allowed.find(c).ok_or(BAD)?;
            allowed = &allowed[pos + 1..];
            let frac = digits.contains(['.', ',']);
            let ok = !digits.is_empty()
                && digits
                    .split(['.', ','])
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && digits.matches(['.', ',']).count() <= 1;
            if !ok || fraction_seen {
                return Err(BAD);
            }
            fraction_seen = frac;
            parts += 1;
            num_start = i + 1;
        }
        if num_start != text.len() {
            return Err(BAD);
        }
    }
    if parts == 0 {
        return Err(BAD);
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// What `write_clock` wrote before it skipped the formatting machinery.
    fn clock_by_format(sod: i64, nanos: u32) -> String {
        let mut out = format!("{:02}:{:02}:{:02}", sod / 3600, (sod / 60) % 60, sod % 60);
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn clocks_are_written_as_format_wrote_them(
            sod in proptest::prop_oneof![0i64..86_400, -200_000i64..200_000],
            nanos in proptest::prop_oneof![
                proptest::strategy::Just(0u32), 0u32..1_000_000_000, 0u32..=u32::MAX,
                proptest::strategy::Strategy::prop_map(0u32..1000, |n| n * 1_000_000),
            ],
        ) {
            let mut out = String::new();
            write_clock(&mut out, sod, nanos);
            proptest::prop_assert_eq!(out, clock_by_format(sod, nanos));
        }
    }

    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("12:30:00").unwrap(), "12:30:00");
        assert_eq!(parse_time("00:00:00.500").unwrap(), "00:00:00.5");
        assert_eq!(parse_time("01:00:00+02:00").unwrap(), "23:00:00Z");
        assert_eq!(parse_time("23:30:00-0100").unwrap(), "00:30:00Z");
        assert_eq!(parse_time("10:00:00z").unwrap(), "10:00:00Z");
        for bad in [
            "24:00:00",
            "12:30",
            "12:60:00",
            "1:00:00",
            "12:00:00.",
            "12:00:00 ",
            "",
            "noon",
            "12:00:00+1",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn yearmonths_and_durations() {
        assert!(parse_yearmonth("2024-01").is_ok());
        for bad in ["2024-13", "2024-1", "202401", "2024-00", ""] {
            assert!(parse_yearmonth(bad).is_err(), "{bad}");
        }
        for good in ["P1Y", "P1Y2M3DT4H5M6S", "PT0.5S", "P2W", "-P1D", "PT1,5H"] {
            assert!(check_duration(good).is_ok(), "{good}");
        }
        for bad in [
            "P", "PT", "1Y", "P1S", "PT1D", "P1M1Y", "P1.5Y2M", "P1..5Y", "P.5Y", "",
        ] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn years() {
        assert_eq!(parse_year("2024"), Ok(2024));
        assert_eq!(parse_year("0001"), Ok(1));
        for bad in ["24", "20245", "-202", "+202", "２０２４", ""] {
            assert!(parse_year(bad).is_err(), "{bad}");
        }
    }
}
