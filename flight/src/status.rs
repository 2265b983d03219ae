//! Errors as gRPC statuses. The class comes from the error's SQLSTATE (the same
//! classification the Postgres front end reports), so a user mistake is never reported
//! as INTERNAL; the message keeps the SQLSTATE for clients that want the exact code.

use streamhouse_executor::Error;
use tonic::{Code, Status};

/// The gRPC status for an error of the SQL layer.
pub fn from_sql(error: &Error) -> Status {
    let sqlstate = error.sqlstate();
    let mut message = format!("{error} (SQLSTATE {sqlstate})");
    if let Some(hint) = error.hint() {
        message.push_str("\nHINT: ");
        message.push_str(hint);
    }
    Status::new(code_for(sqlstate), message)
}

pub fn from_datafusion(error: datafusion::error::DataFusionError) -> Status {
    from_sql(&Error::from(error))
}

pub fn from_arrow(error: arrow::error::ArrowError) -> Status {
    from_sql(&Error::from(error))
}

/// SQLSTATE (Postgres appendix A) → gRPC code.
fn code_for(sqlstate: &str) -> Code {
    match sqlstate {
        "42P01" | "3F000" | "42883" | "42704" | "26000" => Code::NotFound,
        "42P06" | "42P07" | "42710" => Code::AlreadyExists,
        "57014" => Code::Cancelled,
        _ => match &sqlstate[..2] {
            "0A" => Code::Unimplemented,
            "53" | "54" => Code::ResourceExhausted,
            "25" | "2B" | "55" => Code::FailedPrecondition,
            "08" | "57" | "58" => Code::Unavailable,
            "XX" => Code::Internal,
            _ => Code::InvalidArgument,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_mistakes_are_not_internal() {
        assert_eq!(from_sql(&Error::UndefinedTable("t".into())).code(), Code::NotFound);
        assert_eq!(from_sql(&Error::DuplicateTable("t".into())).code(), Code::AlreadyExists);
        let syntax = Error::Syntax { message: "expected SELECT".into(), position: None };
        assert_eq!(from_sql(&syntax).code(), Code::InvalidArgument);
        assert_eq!(from_sql(&Error::not_supported("UPDATE", "append only")).code(), Code::Unimplemented);
        assert_eq!(from_sql(&Error::Internal("boom".into())).code(), Code::Internal);
    }

    #[test]
    fn message_carries_sqlstate_and_hint() {
        let status = from_sql(&Error::not_supported("UPDATE is not supported", "tables are append-only"));
        assert!(status.message().contains("SQLSTATE 0A000"), "{}", status.message());
        assert!(status.message().contains("HINT: tables are append-only"), "{}", status.message());
    }
}
