//! The data path's error type; the bindings map each kind to a `tallyclerk.errors` class.

/// An error of the data path.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DataError {
    /// A source file cannot be read as a whole (`SourceError`): the message names the file, the
    /// line (when known) and the reason.
    #[error("{message}")]
    Source {
        message: String,
        path: String,
        line: Option<u64>,
    },
    /// A Table Schema document is invalid (`SchemaError`).
    #[error("{0}")]
    Schema(String),
    /// The target database refused an operation (`SinkError`); `transient` when retrying the
    /// transaction may succeed (SQLITE_BUSY, SQLITE_LOCKED).
    #[error("{message}")]
    Sink { message: String, transient: bool },
    /// An option or identifier is invalid (`ConfigError`).
    #[error("{0}")]
    Config(String),
    /// A caller passed a bad argument (`ValueError`).
    #[error("{0}")]
    Value(String),
    /// A row index is out of range (`IndexError`).
    #[error("{0}")]
    Index(String),
}

impl DataError {
    /// A source error: "`path`: line `line`: `reason`".
    pub fn source(path: &str, line: Option<u64>, reason: impl std::fmt::Display) -> Self {
        let message = match line {
            Some(l) => format!("{path}: line {l}: {reason}"),
            None => format!("{path}: {reason}"),
        };
        DataError::Source {
            message,
            path: path.to_string(),
            line,
        }
    }

    pub fn sink(message: impl Into<String>, transient: bool) -> Self {
        DataError::Sink {
            message: message.into(),
            transient,
        }
    }
}

/// Shorten a value for an error message (fields can be megabytes long).
pub fn preview(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}... ({} chars)", s.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_message_names_path_and_line() {
        let e = DataError::source("a.csv", Some(3), "bad");
        assert_eq!(e.to_string(), "a.csv: line 3: bad");
        let e = DataError::source("a.csv", None, "missing");
        assert_eq!(e.to_string(), "a.csv: missing");
    }

    #[test]
    fn preview_truncates() {
        assert_eq!(preview("ab"), "\"ab\"");
        let long = "x".repeat(100);
        assert!(preview(&long).ends_with("(100 chars)"));
    }
}
