//! `format` patterns of date, time and datetime fields: a strict subset of Python's `strptime`
//! (what frictionless-py runs), compiled once per field.
//!
//! Directives: `%Y` (4 digits), `%y` (2 digits: 69-99 -> 19xx, 00-68 -> 20xx, as Python),
//! `%m`, `%d`, `%H`, `%I`, `%M`, `%S` (1 or 2 digits), `%p` (AM/PM, any case), `%f` (1-6
//! digits), `%z` (`Z`, `+HH`, `+HHMM`, `+HH:MM`), `%b`/`%B` (English month names, any case),
//! `%%`. A space in the pattern matches one or more spaces; any other character matches itself.
//! Missing parts default as in Python (year 1900, month 1, day 1, midnight). Another directive
//! is a schema error.

use super::coerce::{days_from_civil, is_valid_date};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Space,
    Dir(char),
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    toks: Vec<Tok>,
}

/// What a pattern read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Days since 1970-01-01.
    pub days: i64,
    pub secs: u32,
    pub nanos: u32,
    /// Seconds east of UTC, when `%z` was read.
    pub offset: Option<i32>,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl Pattern {
    pub fn compile(text: &str) -> Result<Self, String> {
        let mut toks = Vec::new();
        let mut it = text.chars();
        while let Some(c) = it.next() {
            match c {
                '%' => match it.next() {
                    Some('%') => toks.push(Tok::Lit('%')),
                    Some(
                        d @ ('Y' | 'y' | 'm' | 'd' | 'H' | 'I' | 'M' | 'S' | 'p' | 'f' | 'z' | 'b'
                        | 'B'),
                    ) => toks.push(Tok::Dir(d)),
                    Some(d) => return Err(format!("directive %{d} is not supported")),
                    None => return Err("ends with a lone %".into()),
                },
                ' ' => toks.push(Tok::Space),
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern {
            text: text.to_string(),
            toks,
        })
    }

    /// Whether the pattern reads a time zone (`%z`).
    pub fn has_zone(&self) -> bool {
        self.toks.contains(&Tok::Dir('z'))
    }

    pub fn parse(&self, s: &str) -> Option<Parts> {
        let b = s.as_bytes();
        let mut i = 0usize;
        let (mut y, mut mo, mut d) = (1900i64, 1u32, 1u32);
        let (mut h, mut mi, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        let mut pm: Option<bool> = None;
        let mut offset = None;
        let digits = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
            let n = b[*i..]
                .iter()
                .take(max)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n < min {
                return None;
            }
            let v = b[*i..*i + n]
                .iter()
                .fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
            *i += n;
            Some(v)
        };
        for tok in &self.toks {
            match tok {
                Tok::Lit(c) => {
                    let mut buf = [0u8; 4];
                    let enc = c.encode_utf8(&mut buf).as_bytes();
                    if !b[i..].starts_with(enc) {
                        return None;
                    }
                    i += enc.len();
                }
                Tok::Space => {
                    let n = b[i..].iter().take_while(|c| **c == b' ').count();
                    if n == 0 {
                        return None;
                    }
                    i += n;
                }
                Tok::Dir('Y') => y = i64::from(digits(&mut i, 4, 4)?),
                Tok::Dir('y') => {
                    let v = i64::from(digits(&mut i, 2, 2)?);
                    y = if v >= 69 { 1900 + v } else { 2000 + v };
                }
                Tok::Dir('m') => mo = digits(&mut i, 1, 2)?,
                Tok::Dir('d') => d = digits(&mut i, 1, 2)?,
                Tok::Dir('H') => h = digits(&mut i, 1, 2)?,
                Tok::Dir('I') => {
                    h = digits(&mut i, 1, 2)?;
                    if !(1..=12).contains(&h) {
                        return None;
                    }
                }
                Tok::Dir('M') => mi = digits(&mut i, 1, 2)?,
                Tok::Dir('S') => sec = digits(&mut i, 1, 2)?,
                Tok::Dir('f') => {
                    let start = i;
                    let v = digits(&mut i, 1, 6)?;
                    nanos = v * 10u32.pow(9 - (i - start) as u32);
                }
                Tok::Dir('p') => {
                    let word = s.get(i..i + 2)?.to_ascii_lowercase();
                    pm = Some(match word.as_str() {
                        "am" => false,
                        "pm" => true,
                        _ => return None,
                    });
                    i += 2;
                }
                Tok::Dir('b' | 'B') => {
                    let rest = s.get(i..)?.to_ascii_lowercase();
                    let (k, len) = MONTHS.iter().enumerate().find_map(|(k, name)| {
                        if rest.starts_with(name) {
                            Some((k, name.len()))
                        } else if rest.starts_with(&name[..3]) {
                            Some((k, 3))
                        } else {
                            None
                        }
                    })?;
                    mo = k as u32 + 1;
                    i += len;
                }
                Tok::Dir('z') => {
                    let rest = &b[i..];
                    if rest.first().is_some_and(|c| *c == b'Z' || *c == b'z') {
                        offset = Some(0);
                        i += 1;
                        continue;
                    }
                    let sign = match rest.first()? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    i += 1;
                    let oh = digits(&mut i, 2, 2)?;
                    if b.get(i) == Some(&b':') {
                        i += 1;
                    }
                    let om = if b.get(i).is_some_and(u8::is_ascii_digit) {
                        digits(&mut i, 2, 2)?
                    } else {
                        0
                    };
                    if oh > 23 || om > 59 {
                        return None;
                    }
                    offset = Some(sign * (oh * 3600 + om * 60) as i32);
                }
                Tok::Dir(_) => return None,
            }
        }
        if i != b.len() {
            return None;
        }
        if let Some(pm) = pm {
            h = (h % 12) + if pm { 12 } else { 0 };
        }
        if h > 23 || mi > 59 || sec > 59 || y == 0 || !is_valid_date(y, mo, d) {
            return None;
        }
        Some(Parts {
            days: days_from_civil(y, mo, d),
            secs: h * 3600 + mi * 60 + sec,
            nanos,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pat: &str, s: &str) -> Option<Parts> {
        Pattern::compile(pat).unwrap().parse(s)
    }

    #[test]
    fn dates() {
        assert_eq!(p("%d/%m/%Y", "31/01/2024").unwrap().days, 19_753);
        assert_eq!(p("%d/%m/%Y", "1/2/2024").unwrap().days, 19_754);
        assert!(p("%d/%m/%Y", "30/02/2024").is_none());
        assert!(p("%d/%m/%Y", "31/01/24").is_none());
        assert_eq!(p("%d %b %Y", "31 jan 2024").unwrap().days, 19_753);
        assert_eq!(p("%B %d, %Y", "January 31, 2024").unwrap().days, 19_753);
        assert_eq!(p("%y%m%d", "700101").unwrap().days, 0);
        assert!(p("%Y-%m-%d", "2024-01-31 ").is_none());
    }

    #[test]
    fn times_and_zones() {
        let t = p("%I:%M %p", "12:30 am").unwrap();
        assert_eq!(t.secs, 30 * 60);
        let t = p("%H:%M:%S.%f%z", "10:00:00.5+0130").unwrap();
        assert_eq!(
            (t.secs, t.nanos, t.offset),
            (36_000, 500_000_000, Some(5400))
        );
        assert!(p("%H:%M", "24:00").is_none());
        assert!(Pattern::compile("%Q").is_err());
        assert!(Pattern::compile("%").is_err());
    }
}
