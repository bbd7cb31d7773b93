//! The options of a field that change how its text is read: `format` of dates, times and
//! datetimes (`default`, `any`, strptime patterns) and `decimalChar`/`groupChar`/`bareNumber`
//! of numbers (a child module of `field`, so it sees the field's private parts).

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use super::super::coerce::{self, DateTime};
use super::super::error::DataError;
use super::super::number;
use super::super::strptime::{Parts, Pattern};
use super::super::temporal;
use super::{schema_err, Field, FieldType};

/// How a date, time or datetime field's values are written (`format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// ISO 8601 (`default`, or no format).
    Default,
    /// ISO 8601 or one of a fixed list of common patterns (`any`).
    Any,
    /// A `strptime` pattern.
    Pattern(Pattern),
}

pub(super) const ANY_DATE: [&str; 6] = [
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d %b %Y",
    "%b %d %Y",
    "%B %d, %Y",
    "%Y%m%d",
];
pub(super) const ANY_TIME: [&str; 3] = ["%H:%M", "%I:%M %p", "%I:%M:%S %p"];
pub(super) const ANY_DATETIME: [&str; 4] = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
];

impl Field {
    pub(super) fn number_options(&mut self, obj: &Map<String, Json>) -> Result<(), DataError> {
        let numeric = matches!(self.ftype, FieldType::Integer | FieldType::Number);
        for key in ["decimalChar", "groupChar", "bareNumber"] {
            let Some(v) = obj.get(key) else { continue };
            if !numeric || (key == "decimalChar" && self.ftype == FieldType::Integer) {
                return Err(schema_err(
                    &self.name,
                    format!("{key} does not apply to {} fields", self.ftype.name()),
                ));
            }
            match (key, v) {
                ("bareNumber", Json::Bool(b)) => self.number.bare_number = *b,
                ("decimalChar", Json::String(c)) if !c.is_empty() => {
                    self.number.decimal_char = c.clone()
                }
                ("groupChar", Json::String(c)) => self.number.group_char = c.clone(),
                _ => {
                    return Err(schema_err(
                        &self.name,
                        format!(
                            "{key} must be a {}",
                            if key == "bareNumber" {
                                "boolean"
                            } else {
                                "non-empty string"
                            }
                        ),
                    ))
                }
            }
        }
        if self.number.decimal_char == self.number.group_char {
            return Err(schema_err(
                &self.name,
                "decimalChar and groupChar must differ",
            ));
        }
        Ok(())
    }

    /// Whether a text value loads as it is written (no normalization): strings, and dates in
    /// the default format.
    pub fn text_passthrough(&self) -> bool {
        self.ftype == FieldType::String
            || (self.ftype == FieldType::Date && self.format == TimeFormat::Default)
    }

    pub(super) fn parse_number_text(&self, s: &str) -> Result<f64, &'static str> {
        if self.number.is_default() {
            return coerce::parse_number(s);
        }
        // `bareNumber: false` strips every non-digit around the number first, so `INF` and
        // `NaN` are left empty, as frictionless-py finds them (not a number)
        if self.number.bare_number {
            if let Some(v) = number::special(s) {
                return Ok(v);
            }
        }
        let plain = self.number.plain(s).ok_or("is not a number")?;
        coerce::parse_number(&plain)
    }

    pub(super) fn parse_int_text(&self, s: &str) -> Result<i64, &'static str> {
        if self.number.is_default() {
            return coerce::parse_int(s);
        }
        let plain = self.number.plain(s).ok_or("is not an integer")?;
        coerce::parse_int(&plain)
    }

    /// [`Self::parse_int_text`] for a big field (up to 128 bits).
    pub(super) fn parse_big_int_text(&self, s: &str) -> Result<i128, &'static str> {
        if self.number.is_default() {
            return coerce::parse_big_int(s);
        }
        let plain = self.number.plain(s).ok_or("is not an integer")?;
        coerce::parse_big_int(&plain)
    }

    /// A date, time or datetime by the field's pattern(s): (days, seconds of day, nanos, zone).
    pub(super) fn by_pattern(&self, s: &str) -> Option<Parts> {
        match &self.format {
            TimeFormat::Pattern(p) => p.parse(s),
            TimeFormat::Any => self.any_patterns.iter().find_map(|p| p.parse(s)),
            TimeFormat::Default => None,
        }
    }

    pub(super) fn date_text<'a>(&self, s: &'a str) -> Result<Cow<'a, str>, &'static str> {
        match (&self.format, coerce::parse_date(s)) {
            (TimeFormat::Default, r) => return r.map(|_| Cow::Borrowed(s)),
            (TimeFormat::Any, Ok(_)) => return Ok(Cow::Borrowed(s)),
            _ => {}
        }
        let parts = self
            .by_pattern(s)
            .ok_or("is not a date in the field's format")?;
        let (y, m, d) = coerce::civil_from_days(parts.days);
        Ok(Cow::Owned(format!("{y:04}-{m:02}-{d:02}")))
    }

    pub(super) fn time_text(&self, s: &str) -> Result<String, &'static str> {
        match (&self.format, temporal::parse_time(s)) {
            (TimeFormat::Default, r) => return r,
            (TimeFormat::Any, Ok(t)) => return Ok(t),
            _ => {}
        }
        let p = self
            .by_pattern(s)
            .ok_or("is not a time in the field's format")?;
        let sod = (i64::from(p.secs) - i64::from(p.offset.unwrap_or(0))).rem_euclid(86_400);
        let mut out = String::with_capacity(16);
        temporal::write_clock(&mut out, sod, p.nanos);
        if p.offset.is_some() {
            out.push('Z');
        }
        Ok(out)
    }

    pub(super) fn datetime_value(&self, s: &str) -> Result<DateTime, &'static str> {
        match (&self.format, coerce::parse_datetime(s)) {
            (TimeFormat::Default, r) => return r,
            (TimeFormat::Any, Ok(t)) => return Ok(t),
            _ => {}
        }
        let p = self
            .by_pattern(s)
            .ok_or("is not a datetime in the field's format")?;
        Ok(DateTime {
            secs: p.days * 86_400 + i64::from(p.secs) - i64::from(p.offset.unwrap_or(0)),
            nanos: p.nanos,
            aware: p.offset.is_some(),
        })
    }
}
