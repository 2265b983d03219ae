//! `statement_timeout`: a statement that reads runs at most this long, then ends with
//! SQLSTATE 57014 "canceling statement due to statement timeout", as in PostgreSQL.
//!
//! The clock starts when the statement starts and covers both its planning and the rows it
//! streams afterwards (DataFusion computes most of a result while it is read). Statements
//! that write (INSERT, COPY FROM, DDL) are not interrupted once started: a write commits as
//! one WAL record or not at all, and stopping it from outside could report a timeout for a
//! write that landed. Endless results (SUBSCRIBE, FETCH from a subscription) are not bound
//! either: their waiting is the point.

use std::time::Duration;

use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::statement::Statement;

/// The setting's name, as `SET` and `SHOW` spell it.
pub const SETTING: &str = "statement_timeout";

/// The largest value PostgreSQL accepts (milliseconds in an `int4`).
const MAX_MILLIS: u64 = i32::MAX as u64;

/// Units PostgreSQL accepts for time settings, with their length in microseconds.
const UNITS: [(&str, u64); 6] = [("us", 1), ("ms", 1_000), ("s", 1_000_000), ("min", 60_000_000), ("h", 3_600_000_000), ("d", 86_400_000_000)];

/// The error a statement ends with when its time is up.
pub fn timed_out() -> Error {
    Error::TimedOut("canceling statement due to statement timeout".into())
}

/// Reads a value as `SET statement_timeout` takes it (`200`, `'200ms'`, `'1.5s'`, `'1min'`;
/// a bare number is milliseconds, 0 turns the limit off) and returns it the way `SHOW`
/// prints it: in the largest unit that holds it exactly (`2000` shows as `2s`).
pub fn normalize(value: &str) -> Result<String> {
    let millis = parse_millis(value)?;
    if millis == 0 {
        return Ok("0".into());
    }
    let (unit, size) = [("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)]
        .into_iter()
        .find(|(_, size)| millis % size == 0)
        .unwrap_or(("ms", 1));
    Ok(format!("{}{unit}", millis / size))
}

/// The limit a stored (normalized) value stands for; `None` when it is off.
pub fn limit(stored: &str) -> Option<Duration> {
    parse_millis(stored).ok().filter(|&ms| ms > 0).map(Duration::from_millis)
}

fn parse_millis(value: &str) -> Result<u64> {
    let text = value.trim();
    let invalid = || {
        Error::InvalidParameter(format!(
            "invalid value for parameter \"{SETTING}\": \"{value}\" \
             (valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\")"
        ))
    };
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+')).unwrap_or(text.len());
    let (number, unit) = (text[..split].trim(), text[split..].trim());
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let micros_per_unit = if unit.is_empty() {
        1_000
    } else {
        UNITS.iter().find(|(name, _)| *name == unit).map(|(_, micros)| *micros).ok_or_else(invalid)?
    };
    let millis = (number * micros_per_unit as f64 / 1_000.0).round();
    if !(0.0..=MAX_MILLIS as f64).contains(&millis) {
        return Err(Error::InvalidParameter(format!(
            "{value} ms is outside the valid range for parameter \"{SETTING}\" (0 .. {MAX_MILLIS})"
        )));
    }
    Ok(millis as u64)
}

/// Whether the statement only reads, so that stopping it half-way loses nothing.
pub fn applies_to(statement: &Statement) -> bool {
    match statement {
        Statement::Sql(sql) => matches!(
            sql,
            SqlStatement::Query(_) | SqlStatement::Explain { .. } | SqlStatement::ShowVariable { .. } | SqlStatement::ShowTables { .. }
        ),
        Statement::Ask(_) | Statement::ShowMaterializedViews => true,
        // INFER SCHEMA may create what it infers.
        Statement::InferSchema(_) | Statement::Subscribe(_) | Statement::Fetch(_) => false,
    }
}

/// Binds the rows an output streams to the same deadline: reading past it yields the
/// timeout error, and dropping the stream stops DataFusion's work.
pub fn bind_rows(output: Output, deadline: Instant) -> Output {
    match output {
        Output::Rows(rows) => Output::Rows(until(rows, deadline)),
        Output::CopyOut { rows, format } => Output::CopyOut { rows: until(rows, deadline), format },
        other => other,
    }
}

fn until(rows: SendableRecordBatchStream, deadline: Instant) -> SendableRecordBatchStream {
    let schema = rows.schema();
    let bounded = futures::stream::unfold((rows, false), move |(mut rows, done)| async move {
        if done {
            return None;
        }
        tokio::select! {
            biased;
            item = rows.next() => item.map(|batch| (batch, (rows, false))),
            () = tokio::time::sleep_until(deadline) => {
                Some((Err(datafusion::error::DataFusionError::External(Box::new(timed_out()))), (rows, true)))
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, bounded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_postgresql_reads_them() {
        assert_eq!(normalize("0").unwrap(), "0");
        assert_eq!(normalize("200").unwrap(), "200ms");
        assert_eq!(normalize("2000").unwrap(), "2s");
        assert_eq!(normalize("1.5s").unwrap(), "1500ms");
        assert_eq!(normalize("60s").unwrap(), "1min");
        assert_eq!(normalize("90 min").unwrap(), "90min");
        assert_eq!(normalize("2h").unwrap(), "2h");
        assert_eq!(normalize("1d").unwrap(), "1d");
        assert_eq!(normalize("1500us").unwrap(), "2ms");
        assert_eq!(limit("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(limit("0"), None);
    }

    #[test]
    fn bad_values_are_refused_with_22023() {
        for bad in ["abc", "10 parsecs", "-1", "5000000000", "", "1e"] {
            let err = normalize(bad).unwrap_err();
            assert_eq!(err.sqlstate(), "22023", "{bad}: {err}");
        }
    }
}
