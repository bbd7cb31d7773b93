//! Number options of Table Schema fields: `decimalChar`, `groupChar` and `bareNumber`, and the
//! special values `NaN`, `INF`, `-INF` (any letter case).
//!
//! * `bareNumber: false` strips what precedes the number (anything but a digit or `-`) and what
//!   follows it (anything but a digit), as frictionless-py does: `$1,200`, `95%`, `EUR 12`;
//! * `groupChar` (number only) is removed wherever it appears (`1.234.567,89` with `groupChar`
//!   `.` and `decimalChar` `,`);
//! * `decimalChar` replaces `.`; a `.` in the text is then not a number (unless it is the group
//!   character).

use std::borrow::Cow;

/// How a field's numbers are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormat {
    pub decimal_char: String,
    pub group_char: String,
    pub bare_number: bool,
}

impl Default for NumberFormat {
    fn default() -> Self {
        NumberFormat {
            decimal_char: ".".into(),
            group_char: String::new(),
            bare_number: true,
        }
    }
}

/// The special numbers, any letter case: `NaN`, `INF`, `+INF`, `-INF`.
pub fn special(s: &str) -> Option<f64> {
    if s.len() > 4 || s.len() < 3 {
        return None;
    }
    // compared in place (no lowercased copy: this runs for every short number cell)
    let is = |word: &str| s.eq_ignore_ascii_case(word);
    if is("nan") {
        Some(f64::NAN)
    } else if is("inf") || is("+inf") {
        Some(f64::INFINITY)
    } else if is("-inf") {
        Some(f64::NEG_INFINITY)
    } else {
        None
    }
}

impl NumberFormat {
    /// Whether this is the plain notation (`.`, no group character, bare numbers); compared
    /// field by field (building a default would allocate, once per number cell).
    pub fn is_default(&self) -> bool {
        self.decimal_char == "." && self.group_char.is_empty() && self.bare_number
    }

    /// Strip currency signs and units around the number (`bareNumber: false`).
    pub fn strip<'a>(&self, s: &'a str) -> &'a str {
        if self.bare_number {
            return s;
        }
        let start = s
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '-')
            .map_or(s.len(), |(i, _)| i);
        let s = &s[start..];
        let end = s
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_ascii_digit())
            .map_or(0, |(i, c)| i + c.len_utf8());
        &s[..end]
    }

    /// The text of a number in the plain notation `parse_number` reads, or None when a `.`
    /// appears although the decimal character is another one.
    pub fn plain<'a>(&self, s: &'a str) -> Option<Cow<'a, str>> {
        let s = self.strip(s);
        let mut out = Cow::Borrowed(s);
        if !self.group_char.is_empty() && s.contains(self.group_char.as_str()) {
            out = Cow::Owned(s.replace(self.group_char.as_str(), ""));
        }
        if self.decimal_char != "." {
            if out.contains('.') {
                return None;
            }
            if out.contains(self.decimal_char.as_str()) {
                out = Cow::Owned(out.replace(self.decimal_char.as_str(), "."));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(decimal: &str, group: &str, bare: bool) -> NumberFormat {
        NumberFormat {
            decimal_char: decimal.into(),
            group_char: group.into(),
            bare_number: bare,
        }
    }

    #[test]
    fn plain_text() {
        let eu = fmt(",", ".", true);
        assert_eq!(eu.plain("1.234.567,89").unwrap(), "1234567.89");
        assert_eq!(eu.plain("12,50").unwrap(), "12.50");
        assert!(fmt(",", "", true).plain("1.5").is_none());
        let money = fmt(".", ",", false);
        assert_eq!(money.plain("$1,200").unwrap(), "1200");
        assert_eq!(money.plain("95%").unwrap(), "95");
        assert_eq!(money.plain("EUR -12.5 net").unwrap(), "-12.5");
        assert_eq!(money.plain("€").unwrap(), "");
        assert_eq!(NumberFormat::default().plain("$1").unwrap(), "$1");
    }

    #[test]
    fn default_is_the_plain_notation() {
        assert!(NumberFormat::default().is_default());
        assert!(!fmt(",", "", true).is_default());
        assert!(!fmt(".", ",", true).is_default());
        assert!(!fmt(".", "", false).is_default());
    }

    #[test]
    fn specials() {
        assert!(special("nan").unwrap().is_nan());
        assert!(special("NaN").unwrap().is_nan());
        assert_eq!(special("Inf"), Some(f64::INFINITY));
        assert_eq!(special("-INF"), Some(f64::NEG_INFINITY));
        assert_eq!(special("+inf"), Some(f64::INFINITY));
        assert_eq!(special("infinity"), None);
        assert_eq!(special("-NaN"), None);
        assert_eq!(special("+nan"), None);
        assert_eq!(special("-iNf"), Some(f64::NEG_INFINITY));
        assert_eq!(special("nana"), None);
        assert_eq!(special("1"), None);
    }
}
