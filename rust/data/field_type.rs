//! Table Schema field types: their names and the SQLite column type each is stored as.

/// A Table Schema field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    Datetime,
    Time,
    Year,
    Object,
    Array,
    Yearmonth,
    Duration,
    Geopoint,
    Geojson,
    Any,
}

impl FieldType {
    /// Every supported type, in the order error messages list them.
    pub const ALL: [FieldType; 15] = [
        FieldType::String,
        FieldType::Integer,
        FieldType::Number,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Time,
        FieldType::Year,
        FieldType::Object,
        FieldType::Array,
        FieldType::Yearmonth,
        FieldType::Duration,
        FieldType::Geopoint,
        FieldType::Geojson,
        FieldType::Any,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Time => "time",
            FieldType::Year => "year",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::Yearmonth => "yearmonth",
            FieldType::Duration => "duration",
            FieldType::Geopoint => "geopoint",
            FieldType::Geojson => "geojson",
            FieldType::Any => "any",
        }
    }

    /// The names of every supported type, comma-separated (for error messages).
    pub fn supported() -> String {
        Self::ALL.map(FieldType::name).join(", ")
    }

    /// The SQLite column type: booleans are INTEGER 0/1, years INTEGER; dates, datetimes and
    /// times ISO 8601 TEXT; objects, arrays and GeoJSON their JSON text; year-months,
    /// durations, geopoints (`lon,lat`) and `any` values TEXT.
    pub fn sqlite_type(self) -> &'static str {
        match self {
            FieldType::Integer | FieldType::Boolean | FieldType::Year => "INTEGER",
            FieldType::Number => "REAL",
            FieldType::String
            | FieldType::Date
            | FieldType::Datetime
            | FieldType::Time
            | FieldType::Object
            | FieldType::Array
            | FieldType::Yearmonth
            | FieldType::Duration
            | FieldType::Geopoint
            | FieldType::Geojson
            | FieldType::Any => "TEXT",
        }
    }
}
