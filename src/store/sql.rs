//! What the two SQL dialects share and where they differ, so that every query is written once.
//!
//! Statements are written with `?` placeholders and times as milliseconds since the Unix
//! epoch; [`Dialect`] turns them into what each engine reads: `$1, $2...` and `TIMESTAMPTZ`
//! on PostgreSQL, as they are on SQLite (whose time columns are integer milliseconds).

/// The SQL an engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: times are INTEGER milliseconds.
    Sqlite,
    /// PostgreSQL: times are TIMESTAMPTZ.
    Postgres,
}

impl Dialect {
    /// A time column (or expression) as integer milliseconds since the Unix epoch.
    pub fn ms(self, time: &str) -> String {
        match self {
            Dialect::Sqlite => time.to_owned(),
            Dialect::Postgres => format!("(EXTRACT(EPOCH FROM {time}) * 1000)::BIGINT"),
        }
    }

    /// A placeholder for a time bound as integer milliseconds, usable where a time column is.
    pub fn at(self) -> &'static str {
        match self {
            Dialect::Sqlite => "?",
            Dialect::Postgres => "to_timestamp(?::BIGINT / 1000.0)",
        }
    }

    /// A numeric expression as a double (PostgreSQL's SUM of integers is NUMERIC, and REAL
    /// columns are 4 bytes; answers want one type).
    pub fn float(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({expr} AS REAL)"),
            Dialect::Postgres => format!("({expr})::FLOAT8"),
        }
    }

    /// An integer expression as a 64-bit integer.
    pub fn int(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({expr} AS INTEGER)"),
            Dialect::Postgres => format!("({expr})::BIGINT"),
        }
    }

    /// A text field of a JSON column.
    pub fn json_text(self, column: &str, field: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.{field}')"),
            Dialect::Postgres => format!("({column} ->> '{field}')"),
        }
    }

    /// A BLOB or BYTEA column as hexadecimal text (answers carry numbers and text only).
    pub fn hex(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("hex({column})"),
            Dialect::Postgres => format!("encode({column}, 'hex')"),
        }
    }

    /// A JSON column as text.
    pub fn json(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!("{column}::TEXT"),
        }
    }

    /// `sql` with its `?` placeholders in this dialect's form.
    pub fn placeholders(self, sql: &str) -> String {
        match self {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An integer (and times, in milliseconds).
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes (a BLOB or BYTEA).
    Bytes(Vec<u8>),
    /// SQL NULL.
    Null,
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<f64> for Param {
    fn from(value: f64) -> Self {
        Param::Float(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(value.to_owned())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}

/// A statement and what it binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The text, with `?` placeholders.
    pub sql: String,
    /// One value per placeholder, in order.
    pub params: Vec<Param>,
}

impl Statement {
    /// `sql` binding `params`.
    pub fn new(sql: impl Into<String>, params: Vec<Param>) -> Self {
        Self { sql: sql.into(), params }
    }
}

/// One cell of an answer, as the engine returned it.
pub type Cell = serde_json::Value;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_its_placeholders() {
        assert_eq!(Dialect::Postgres.placeholders("a = ? AND b < ?"), "a = $1 AND b < $2");
        assert_eq!(Dialect::Sqlite.placeholders("a = ?"), "a = ?");
    }
}
