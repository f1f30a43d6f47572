//! Helpers every part of the SQL store shares: times as text, enum words,
//! positional arguments, unique violations as duplicates.

use crate::{Error, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Arguments;
use sqlx::any::AnyArguments;
use std::str::FromStr;

pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn now_text() -> String {
    time_text(Utc::now())
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("time '{s}': {e}")))
}

pub(crate) fn parse_word<T: FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| Error::Corrupt(e.to_string()))
}

/// Positional arguments with `$n` placeholders, for queries built at run time.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) args: AnyArguments<'static>,
    n: usize,
}

impl Args {
    pub(crate) fn text(&mut self, v: impl Into<String>) -> String {
        self.args.add(v.into()).expect("string argument");
        self.n += 1;
        format!("${}", self.n)
    }
    pub(crate) fn int(&mut self, v: i64) -> String {
        self.args.add(v).expect("integer argument");
        self.n += 1;
        format!("${}", self.n)
    }
    pub(crate) fn list<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> String {
        values
            .into_iter()
            .map(|v| self.text(v))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
/// A concurrent writer may win the race between our check and our insert.
pub(crate) fn unique_to_duplicate(e: sqlx::Error, what: &'static str, key: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Duplicate {
            what,
            key: key.to_string(),
        },
        _ => Error::Database(e),
    }
}
