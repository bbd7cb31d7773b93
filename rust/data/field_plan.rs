//! A field's coercion of text cells (and of typed integer and number cells, as the JSONL reader
//! gives them), specialised once per batch (a child module of `field`, so
//! it sees the field's private parts).
//!
//! [`Field::coerce_for`] is generic: per cell it looks up the missing values, matches on the
//! field type and the cell's kind, builds a [`Typed`] and, for bounds, a comparable key. A
//! [`Plan`] settles all of that once per field: which parser, which bounds as plain numbers,
//! whether any text check applies. Its `accept` methods are **accept-only**: they return the
//! value when the cell is certainly valid and `None` otherwise, and every `None` goes back
//! through `coerce_for` -- so a rejected cell's rule and reason always come from the one
//! generic implementation, and a plan can only differ from it by accepting a cell the generic
//! path would reject or reading a different value (what the equality tests in `batch.rs`
//! check on generated cells and fields).

use super::super::batch::TextCol;
use super::super::coerce::{self, DateTime};
use super::{Field, FieldType, Key, Target, TimeFormat};

/// How a field reads a text column, decided once per batch.
pub(crate) enum Plan<'f> {
    /// Integer (not big, plain notation): `i64` with optional bounds.
    Int(Cells<'f>, Bounds<i64>),
    /// Number: `f64` by the field's number format, optional bounds, NaN if the target takes it.
    Num(Cells<'f>, Bounds<f64>, bool),
    /// Boolean by the field's true/false values.
    Bool(Cells<'f>),
    /// Datetime (ISO 8601, default format): optional bounds as (seconds, nanoseconds), the
    /// text checks; normalized text written by the caller.
    Datetime(Cells<'f>, Bounds<(i64, u32)>, bool),
    /// String or ISO date loaded as written (the source column is kept): enum, dates' bounds
    /// and the text checks.
    Pass(Cells<'f>, PassCheck<'f>),
    /// Anything else: `coerce_for` per cell.
    Generic,
}

/// Inclusive bounds (`minimum`, `maximum`) as plain values.
#[derive(Clone, Copy)]
pub(crate) struct Bounds<T> {
    min: Option<T>,
    max: Option<T>,
}

impl<T: PartialOrd + Copy> Bounds<T> {
    /// Whether `v` is within both bounds (false for NaN against any bound, as `Key::le`).
    #[inline]
    fn hold(&self, v: T) -> bool {
        self.min.map_or(true, |m| m <= v) && self.max.map_or(true, |m| v <= m)
    }
}

/// What a passed-through cell must satisfy.
pub(crate) struct PassCheck<'f> {
    /// A default-format date (else a string).
    date: bool,
    days: Bounds<i64>,
    /// A string's `enum`.
    members: Option<Vec<&'f str>>,
    /// `minLength`, `maxLength` or `pattern` is set.
    text: bool,
}

/// The missing values and `required` of a field, resolved.
pub(crate) struct Cells<'f> {
    field: &'f Field,
    /// The missing values are exactly `[""]` (the default).
    only_empty: bool,
    missing: &'f [String],
}

impl<'f> Cells<'f> {
    fn new(field: &'f Field, missing: &'f [String]) -> Self {
        let missing = field.missing.as_deref().unwrap_or(missing);
        Cells {
            field,
            only_empty: missing.len() == 1 && missing[0].is_empty(),
            missing,
        }
    }

    /// The text of a present cell; `Err(true)` for a NULL the field allows, `Err(false)` for
    /// a NULL it refuses (required: the generic path words the verdict).
    #[inline]
    fn present<'a>(&self, cell: Option<&'a str>) -> Result<&'a str, bool> {
        let missing = match cell {
            None => true,
            Some(s) if self.only_empty => s.is_empty(),
            Some(s) => self.missing.iter().any(|m| m == s),
        };
        match cell {
            Some(s) if !missing => Ok(s),
            _ => Err(!self.field.required),
        }
    }
}

/// The result of a plan on one cell: the value (`None` is NULL), or `Err(())` when the generic
/// path must decide.
pub(crate) type Accepted<T> = Result<Option<T>, ()>;

#[inline]
fn null_or_generic<T>(allowed: bool) -> Accepted<T> {
    if allowed {
        Ok(None)
    } else {
        Err(())
    }
}

impl<'f> Plan<'f> {
    /// The plan of `field` for a text column (`missing`: the schema's missing values).
    pub(crate) fn of(field: &'f Field, missing: &'f [String], target: Target) -> Plan<'f> {
        let f = field;
        let text = f.min_length.is_some() || f.max_length.is_some() || f.pattern.is_some();
        let cells = Cells::new(f, missing);
        match f.ftype {
            FieldType::Integer if !f.big && f.number.is_default() && !text => {
                match (
                    f.enum_values.is_none(),
                    int_bound(&f.minimum),
                    int_bound(&f.maximum),
                ) {
                    (true, Ok(min), Ok(max)) => Plan::Int(cells, Bounds { min, max }),
                    _ => Plan::Generic,
                }
            }
            FieldType::Number if !text => {
                match (
                    f.enum_values.is_none(),
                    num_bound(&f.minimum),
                    num_bound(&f.maximum),
                ) {
                    (true, Ok(min), Ok(max)) => Plan::Num(cells, Bounds { min, max }, target.nan),
                    _ => Plan::Generic,
                }
            }
            FieldType::Boolean if f.enum_values.is_none() && !text => Plan::Bool(cells),
            FieldType::Datetime if f.format == TimeFormat::Default && f.enum_values.is_none() => {
                match (time_bound(&f.minimum), time_bound(&f.maximum)) {
                    (Ok(min), Ok(max)) => Plan::Datetime(cells, Bounds { min, max }, text),
                    _ => Plan::Generic,
                }
            }
            FieldType::String => {
                let members = match &f.enum_values {
                    None => None,
                    Some(keys) => {
                        let texts: Option<Vec<&str>> = keys
                            .iter()
                            .map(|k| match k {
                                Key::Text(t) => Some(t.as_str()),
                                _ => None,
                            })
                            .collect();
                        match texts {
                            Some(t) => Some(t),
                            None => return Plan::Generic,
                        }
                    }
                };
                let none = Bounds {
                    min: None,
                    max: None,
                };
                Plan::Pass(
                    cells,
                    PassCheck {
                        date: false,
                        days: none,
                        members,
                        text,
                    },
                )
            }
            FieldType::Date if f.format == TimeFormat::Default && f.enum_values.is_none() => {
                match (day_bound(&f.minimum), day_bound(&f.maximum)) {
                    (Ok(min), Ok(max)) => Plan::Pass(
                        cells,
                        PassCheck {
                            date: true,
                            days: Bounds { min, max },
                            members: None,
                            text,
                        },
                    ),
                    _ => Plan::Generic,
                }
            }
            _ => Plan::Generic,
        }
    }
}

fn int_bound(b: &Option<(Key, String)>) -> Result<Option<i64>, ()> {
    match b {
        None => Ok(None),
        Some((Key::Int(i), _)) => Ok(Some(*i)),
        Some(_) => Err(()),
    }
}

fn num_bound(b: &Option<(Key, String)>) -> Result<Option<f64>, ()> {
    match b {
        None => Ok(None),
        Some((Key::Num(v), _)) => Ok(Some(*v)),
        Some(_) => Err(()),
    }
}

fn time_bound(b: &Option<(Key, String)>) -> Result<Option<(i64, u32)>, ()> {
    match b {
        None => Ok(None),
        Some((Key::Time(secs, nanos), _)) => Ok(Some((*secs, *nanos))),
        Some(_) => Err(()),
    }
}

fn day_bound(b: &Option<(Key, String)>) -> Result<Option<i64>, ()> {
    match b {
        None => Ok(None),
        Some((Key::Day(d), _)) => Ok(Some(*d)),
        Some(_) => Err(()),
    }
}

impl Cells<'_> {
    #[inline]
    pub(crate) fn int(&self, bounds: Bounds<i64>, cell: Option<&str>) -> Accepted<i64> {
        let s = match self.present(cell) {
            Ok(s) => s,
            Err(allowed) => return null_or_generic(allowed),
        };
        match coerce::parse_int(s) {
            Ok(v) if bounds.hold(v) => Ok(Some(v)),
            _ => Err(()),
        }
    }

    #[inline]
    pub(crate) fn num(&self, bounds: Bounds<f64>, nan: bool, cell: Option<&str>) -> Accepted<f64> {
        let s = match self.present(cell) {
            Ok(s) => s,
            Err(allowed) => return null_or_generic(allowed),
        };
        match self.field.parse_number_text(s) {
            Ok(v) if (nan || !v.is_nan()) && bounds.hold(v) => Ok(Some(v)),
            _ => Err(()),
        }
    }

    #[inline]
    pub(crate) fn boolean(&self, cell: Option<&str>) -> Accepted<bool> {
        let s = match self.present(cell) {
            Ok(s) => s,
            Err(allowed) => return null_or_generic(allowed),
        };
        if self.field.true_values.iter().any(|t| t == s) {
            Ok(Some(true))
        } else if self.field.false_values.iter().any(|t| t == s) {
            Ok(Some(false))
        } else {
            Err(())
        }
    }

    #[inline]
    pub(crate) fn datetime(
        &self,
        bounds: Bounds<(i64, u32)>,
        text: bool,
        cell: Option<&str>,
    ) -> Accepted<DateTime> {
        let s = match self.present(cell) {
            Ok(s) => s,
            Err(allowed) => return null_or_generic(allowed),
        };
        match coerce::parse_datetime(s) {
            Ok(t) if bounds.hold((t.secs, t.nanos)) => {
                if text && self.field.check_text(s).is_err() {
                    return Err(());
                }
                Ok(Some(t))
            }
            _ => Err(()),
        }
    }

    /// A cell of a typed integer column (a JSON integer): the field's bounds, nothing to parse.
    #[inline]
    pub(crate) fn int_value(&self, bounds: Bounds<i64>, cell: Option<i64>) -> Accepted<i64> {
        match cell {
            None => null_or_generic(!self.field.required),
            Some(v) if bounds.hold(v) => Ok(Some(v)),
            Some(_) => Err(()),
        }
    }

    /// A cell of a typed number column (a JSON float, or integer as the generic path converts
    /// it: `i as f64`): NaN if the target takes it, the field's bounds.
    #[inline]
    pub(crate) fn real_value(
        &self,
        bounds: Bounds<f64>,
        nan: bool,
        cell: Option<f64>,
    ) -> Accepted<f64> {
        match cell {
            None => null_or_generic(!self.field.required),
            Some(v) if (nan || !v.is_nan()) && bounds.hold(v) => Ok(Some(v)),
            Some(_) => Err(()),
        }
    }

    /// A passed-through cell: `Ok(Some(()))` valid as written, `Ok(None)` NULL.
    #[inline]
    pub(crate) fn pass(&self, check: &PassCheck<'_>, cell: Option<&str>) -> Accepted<()> {
        let s = match self.present(cell) {
            Ok(s) => s,
            Err(allowed) => return null_or_generic(allowed),
        };
        if check.date {
            let valid = match check.days {
                Bounds {
                    min: None,
                    max: None,
                } => coerce::parse_date_parts(s).is_ok(),
                days => coerce::parse_date(s).is_ok_and(|d| days.hold(d)),
            };
            if !valid {
                return Err(());
            }
        }
        if let Some(members) = &check.members {
            if !members.contains(&s) {
                return Err(());
            }
        }
        if check.text && self.field.check_text(s).is_err() {
            return Err(());
        }
        Ok(Some(()))
    }
}

/// Run `accept` over the text column `col` (one cell a row of `rejected`: the caller checks
/// the lengths): the rows already rejected are NULL, the cells it
/// cannot decide go to `fallback` (the generic path: it may reject the row), and each row's
/// value is handed to `put` in row order.
#[inline]
pub(crate) fn run<'c, T>(
    col: &'c TextCol,
    rejected: &mut [bool],
    mut accept: impl FnMut(Option<&'c str>) -> Accepted<T>,
    mut fallback: impl FnMut(usize, Option<&'c str>, &mut bool) -> Option<T>,
    mut put: impl FnMut(usize, Option<T>),
) {
    debug_assert_eq!(col.len(), rejected.len());
    for ((row, is_rejected), cell) in rejected.iter_mut().enumerate().zip(col.cells()) {
        if *is_rejected {
            put(row, None);
            continue;
        }
        let v = match accept(cell) {
            Ok(v) => v,
            Err(()) => fallback(row, cell, is_rejected),
        };
        put(row, v);
    }
}

/// [`run`] over a typed column (`Column::Int` / `Column::Real` cells, `None` NULL).
#[inline]
pub(crate) fn run_values<S: Copy, T>(
    col: &[Option<S>],
    rejected: &mut [bool],
    mut accept: impl FnMut(Option<S>) -> Accepted<T>,
    mut fallback: impl FnMut(usize, Option<S>, &mut bool) -> Option<T>,
    mut put: impl FnMut(Option<T>),
) {
    debug_assert_eq!(col.len(), rejected.len());
    for ((row, is_rejected), &cell) in rejected.iter_mut().enumerate().zip(col) {
        if *is_rejected {
            put(None);
            continue;
        }
        let v = match accept(cell) {
            Ok(v) => v,
            Err(()) => fallback(row, cell, is_rejected),
        };
        put(v);
    }
}

impl Field {
    /// This field's [`Plan`] for a text column.
    pub(crate) fn plan<'f>(&'f self, missing: &'f [String], target: Target) -> Plan<'f> {
        Plan::of(self, missing, target)
    }
}
