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
}

impl FieldType {
    /// Every supported type, in the order error messages list them.
    pub const ALL: [FieldType; 10] = [
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
        }
    }

    /// The names of every supported type, comma-separated (for error messages).
    pub fn supported() -> String {
        Self::ALL.map(FieldType::name).join(", ")
    }

    /// The SQLite column type: booleans are INTEGER 0/1, years INTEGER; dates, datetimes and
    /// times ISO 8601 TEXT; objects and arrays their JSON text.
    pub fn sqlite_type(self) -> &'static str {
        match self {
            FieldType::Integer | FieldType::Boolean | FieldType::Year => "INTEGER",
            FieldType::Number => "REAL",
            FieldType::String
            | FieldType::Date
            | FieldType::Datetime
            | FieldType::Time
            | FieldType::Object
            | FieldType::Array => "TEXT",
        }
    }
}
