//! Parsing `SUBSCRIBE` (alone, as `COPY (SUBSCRIBE …) TO STDOUT`, and as a cursor's query)
//! and `FETCH … WITH (timeout = …)`, which sqlparser does not know. The grammar is read
//! with sqlparser's own parser, so the queries, names and literals inside are parsed
//! exactly as everywhere else.

use std::time::Duration;

use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use crate::error::{Error, Result};
use crate::hidden::normalize;
use crate::statement::{Delivery, Fetch, StartAt, Statement, Subscribe, SubscribeSource, SubscribeStatement};

/// `Some` when `sql` is one of the statements parsed here (then it must be the only
/// statement of the text); `None` leaves the text to the SQL parser.
pub fn parse(sql: &str) -> Option<Result<Statement>> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql).ok()?;
    let word = |t: &Token| match t {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    let first = word(&parser.peek_token().token);
    let statement = match first.as_str() {
        "SUBSCRIBE" => subscribe(&mut parser, sql, Delivery::Rows),
        "FETCH" => fetch(&mut parser).map(Statement::Fetch),
        "SHOW" if word(&parser.peek_nth_token(1).token) == "MATERIALIZED" && word(&parser.peek_nth_token(2).token) == "VIEWS" => {
            for _ in 0..3 {
                parser.next_token();
            }
            Ok(Statement::ShowMaterializedViews)
        }
        "COPY" if parser.peek_nth_token(1).token == Token::LParen && word(&parser.peek_nth_token(2).token) == "SUBSCRIBE" => {
            copy_subscribe(&mut parser, sql)
        }
        "DECLARE" => match declare_header(&mut parser) {
            Ok(Some((name, hold))) => subscribe(&mut parser, sql, Delivery::Cursor { name, hold }),
            Ok(None) => return None,
            Err(e) => Err(e),
        },
        _ => return None,
    };
    Some(statement.and_then(|s| {
        end_of_statement(&mut parser, sql)?;
        Ok(s)
    }))
}

/// `SUBSCRIBE [TO] relation | (query) [FROM …] [WITH (…)]`, the word SUBSCRIBE next.
fn subscribe(parser: &mut Parser, sql: &str, delivery: Delivery) -> Result<Statement> {
    parser.next_token(); // SUBSCRIBE
    let syntax = |e: ParserError| syntax_error(sql, e);
    let _ = parser.parse_keyword(Keyword::TO);
    let source = if parser.consume_token(&Token::LParen) {
        let query = parser.parse_query().map_err(syntax)?;
        parser.expect_token(&Token::RParen).map_err(syntax)?;
        SubscribeSource::Query(query)
    } else {
        SubscribeSource::Relation(parser.parse_object_name(false).map_err(syntax)?)
    };
    let mut start = None;
    if parser.parse_keyword(Keyword::FROM) {
        start = Some(start_at(parser, sql)?);
    }
    if parser.parse_keyword(Keyword::WITH) {
        parser.expect_token(&Token::LParen).map_err(syntax)?;
        loop {
            let name = normalize(&parser.parse_identifier().map_err(syntax)?);
            parser.expect_token(&Token::Eq).map_err(syntax)?;
            let value = parser.parse_value().map_err(syntax)?.value.to_string().trim_matches('\'').to_lowercase();
            match name.as_str() {
                // Materialize's spelling of "without the history": WITH (snapshot = false).
                "snapshot" => {
                    let snapshot = parse_bool(&value)
                        .ok_or_else(|| Error::InvalidParameter(format!("snapshot must be true or false, not {value}")))?;
                    if !snapshot {
                        if start.is_some() {
                            return Err(Error::InvalidParameter("WITH (snapshot = false) and FROM … contradict each other".into()));
                        }
                        start = Some(StartAt::Latest);
                    }
                }
                other => return Err(Error::InvalidParameter(format!("unrecognized SUBSCRIBE option \"{other}\""))),
            }
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen).map_err(syntax)?;
    }
    let subscribe = Subscribe { source, start: start.unwrap_or(StartAt::Earliest) };
    Ok(Statement::Subscribe(SubscribeStatement { subscribe, delivery }))
}

/// `EARLIEST | LATEST | OFFSET n | OFFSET 'p:o,…' | TIMESTAMP '…'`.
fn start_at(parser: &mut Parser, sql: &str) -> Result<StartAt> {
    let token = parser.next_token();
    let word = match &token.token {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    match word.as_str() {
        "EARLIEST" => Ok(StartAt::Earliest),
        "LATEST" => Ok(StartAt::Latest),
        "OFFSET" => match parser.next_token().token {
            Token::Number(n, _) => n
                .parse::<i64>()
                .map(StartAt::Offset)
                .map_err(|_| Error::InvalidParameter(format!("OFFSET must be a whole number, not {n}"))),
            Token::SingleQuotedString(spec) => partition_offsets(&spec).map(StartAt::Offsets),
            other => Err(Error::Syntax { message: format!("Expected: an offset after OFFSET, found: {other}"), position: None }),
        },
        "TIMESTAMP" => match parser.next_token().token {
            Token::SingleQuotedString(text) => Ok(StartAt::Timestamp(text)),
            other => Err(Error::Syntax { message: format!("Expected: a quoted time after TIMESTAMP, found: {other}"), position: None }),
        },
        _ => Err(Error::Syntax {
            message: format!("Expected: EARLIEST, LATEST, OFFSET or TIMESTAMP after FROM, found: {}", token.token),
            position: Some(byte_offset(sql, token.span.start) + 1),
        }),
    }
}

/// `'0:15,1:20'` → [(0, 15), (1, 20)].
fn partition_offsets(spec: &str) -> Result<Vec<(u32, i64)>> {
    let bad = || Error::InvalidParameter(format!("OFFSET '{spec}' is not a list of partition:offset pairs such as '0:15,1:20'"));
    spec.split(',')
        .map(|pair| {
            let (p, o) = pair.trim().split_once(':').ok_or_else(bad)?;
            Ok((p.trim().parse().map_err(|_| bad())?, o.trim().parse().map_err(|_| bad())?))
        })
        .collect()
}

/// `COPY (SUBSCRIBE …) TO STDOUT [options]`: the options are parsed by sqlparser's COPY
/// grammar on a stand-in statement, so they mean what they mean for any COPY.
fn copy_subscribe(parser: &mut Parser, sql: &str) -> Result<Statement> {
    let syntax = |e: ParserError| syntax_error(sql, e);
    parser.next_token(); // COPY
    parser.next_token(); // (
    let Statement::Subscribe(inner) = subscribe(parser, sql, Delivery::Rows)? else { unreachable!("subscribe parses SUBSCRIBE") };
    parser.expect_token(&Token::RParen).map_err(syntax)?;
    parser.expect_keyword_is(Keyword::TO).map_err(syntax)?;
    parser.expect_keyword_is(Keyword::STDOUT).map_err(syntax)?;
    let rest_at = byte_offset(sql, parser.peek_token().span.start);
    let rest = if parser.peek_token().token == Token::EOF { "" } else { &sql[rest_at..] };
    let mut copy = Parser::parse_sql(&PostgreSqlDialect {}, &format!("COPY (SELECT 1) TO STDOUT {rest}"))
        .map_err(|e| Error::Syntax { message: e.to_string(), position: None })?;
    // The options were the rest of the text: nothing is left for this parser.
    while parser.peek_token().token != Token::EOF {
        parser.next_token();
    }
    match (copy.pop(), copy.is_empty()) {
        (Some(statement @ SqlStatement::Copy { .. }), true) => Ok(Statement::Subscribe(SubscribeStatement {
            subscribe: inner.subscribe,
            delivery: Delivery::Copy(Box::new(statement)),
        })),
        _ => Err(Error::Syntax { message: "COPY (SUBSCRIBE …) TO STDOUT must be the only statement".into(), position: None }),
    }
}

/// `DECLARE name [BINARY] [[NO] SCROLL] CURSOR [WITH | WITHOUT HOLD] FOR`, when SUBSCRIBE
/// follows: the cursor name and whether it is held past the transaction. `None` for
/// any other query (sqlparser parses those).
fn declare_header(parser: &mut Parser) -> Result<Option<(String, bool)>> {
    parser.next_token(); // DECLARE
    let Ok(name) = parser.parse_identifier() else { return Ok(None) };
    let binary = parser.parse_keyword(Keyword::BINARY);
    let _ = parser.parse_one_of_keywords(&[Keyword::ASENSITIVE, Keyword::INSENSITIVE]);
    let scroll = parser.parse_keyword(Keyword::SCROLL);
    let _ = parser.parse_keywords(&[Keyword::NO, Keyword::SCROLL]);
    if !parser.parse_keyword(Keyword::CURSOR) {
        return Ok(None);
    }
    let hold = if parser.parse_keyword(Keyword::WITH) {
        parser.parse_keyword(Keyword::HOLD)
    } else {
        let _ = parser.parse_keywords(&[Keyword::WITHOUT, Keyword::HOLD]);
        false
    };
    if !parser.parse_keyword(Keyword::FOR) {
        return Ok(None);
    }
    if !matches!(&parser.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("SUBSCRIBE")) {
        return Ok(None);
    }
    if binary || scroll {
        return Err(Error::not_supported(
            "a SUBSCRIBE cursor is a forward-only text cursor",
            "declare it without BINARY and SCROLL",
        ));
    }
    Ok(Some((normalize(&name), hold)))
}

/// `FETCH [FORWARD] [n | ALL | NEXT] [FROM | IN] cursor [WITH (timeout = '…')]`.
fn fetch(parser: &mut Parser) -> Result<Fetch> {
    let syntax = |e: ParserError| Error::Syntax { message: e.to_string(), position: None };
    parser.next_token(); // FETCH
    let backward = [Keyword::BACKWARD, Keyword::PRIOR, Keyword::FIRST, Keyword::LAST, Keyword::ABSOLUTE, Keyword::RELATIVE];
    if parser.parse_one_of_keywords(&backward).is_some() {
        return Err(Error::ObjectNotInPrerequisiteState("cursor can only scan forward".into()));
    }
    let forward = parser.parse_keyword(Keyword::FORWARD);
    let count = if parser.parse_keyword(Keyword::ALL) {
        None
    } else if parser.parse_keyword(Keyword::NEXT) {
        Some(1)
    } else if let Token::Number(n, _) = parser.peek_token().token {
        parser.next_token();
        Some(n.parse::<u64>().map_err(|_| Error::InvalidParameter(format!("FETCH count must be a whole number, not {n}")))?)
    } else {
        let _ = forward;
        Some(1)
    };
    let _ = parser.parse_one_of_keywords(&[Keyword::FROM, Keyword::IN]);
    let cursor = normalize(&parser.parse_identifier().map_err(syntax)?);
    let mut timeout = None;
    if parser.parse_keyword(Keyword::WITH) {
        parser.expect_token(&Token::LParen).map_err(syntax)?;
        let option = normalize(&parser.parse_identifier().map_err(syntax)?);
        if option != "timeout" {
            return Err(Error::InvalidParameter(format!("unrecognized FETCH option \"{option}\"")));
        }
        parser.expect_token(&Token::Eq).map_err(syntax)?;
        let value = parser.parse_value().map_err(syntax)?.value.to_string();
        timeout = Some(parse_duration(value.trim_matches('\''))?);
        parser.expect_token(&Token::RParen).map_err(syntax)?;
    }
    Ok(Fetch { cursor, count, timeout })
}

/// `'1s'`, `'250ms'`, `'2 minutes'`, `'1.5'` (seconds, as a bare interval means).
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || Error::InvalidParameter(format!("invalid timeout \"{text}\": use a duration such as '1s' or '250ms'"));
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => number,
        "ms" | "millisecond" | "milliseconds" => number / 1000.0,
        "us" | "microsecond" | "microseconds" => number / 1e6,
        "min" | "mins" | "minute" | "minutes" => number * 60.0,
        "h" | "hour" | "hours" => number * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Only an optional `;` may follow.
fn end_of_statement(parser: &mut Parser, sql: &str) -> Result<()> {
    while parser.consume_token(&Token::SemiColon) {}
    let next = parser.peek_token();
    if next.token == Token::EOF {
        return Ok(());
    }
    Err(Error::Syntax {
        message: format!("Expected: end of statement, found: {} (send this statement on its own)", next.token),
        position: Some(byte_offset(sql, next.span.start) + 1),
    })
}

fn syntax_error(sql: &str, e: ParserError) -> Error {
    let message = e.to_string();
    let position = crate::session::syntax_error_position(sql, &message);
    Error::Syntax { message, position }
}

/// The byte index of a token location (1-based line and character column).
pub(crate) fn byte_offset(sql: &str, at: Location) -> usize {
    let (mut line, mut column) = (1u64, 1u64);
    for (i, c) in sql.char_indices() {
        if line == at.line && column == at.column {
            return i;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    sql.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe_of(sql: &str) -> SubscribeStatement {
        match parse(sql) {
            Some(Ok(Statement::Subscribe(s))) => s,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn subscribe_forms() {
        let s = subscribe_of("SUBSCRIBE TO events");
        assert!(matches!(s.subscribe.source, SubscribeSource::Relation(ref n) if n.to_string() == "events"));
        assert_eq!(s.subscribe.start, StartAt::Earliest);
        assert!(matches!(s.delivery, Delivery::Rows));

        let s = subscribe_of("subscribe (SELECT a FROM s.t WHERE a > 1) FROM OFFSET 5;");
        assert!(matches!(s.subscribe.source, SubscribeSource::Query(_)));
        assert_eq!(s.subscribe.start, StartAt::Offset(5));

        assert_eq!(subscribe_of("SUBSCRIBE t FROM LATEST").subscribe.start, StartAt::Latest);
        assert_eq!(subscribe_of("SUBSCRIBE t WITH (snapshot = false)").subscribe.start, StartAt::Latest);
        assert_eq!(
            subscribe_of("SUBSCRIBE t FROM OFFSET '0:15, 1:20'").subscribe.start,
            StartAt::Offsets(vec![(0, 15), (1, 20)])
        );
        assert_eq!(
            subscribe_of("SUBSCRIBE t FROM TIMESTAMP '2026-01-01 00:00:00+00'").subscribe.start,
            StartAt::Timestamp("2026-01-01 00:00:00+00".into())
        );
    }

    #[test]
    fn copy_and_cursor_deliveries() {
        let s = subscribe_of("COPY (SUBSCRIBE t FROM LATEST) TO STDOUT WITH (FORMAT csv)");
        assert!(matches!(s.delivery, Delivery::Copy(ref c) if c.to_string().contains("csv") || c.to_string().contains("CSV")));
        let s = subscribe_of("COPY (SUBSCRIBE t) TO STDOUT");
        assert!(matches!(s.delivery, Delivery::Copy(_)));
        let s = subscribe_of("DECLARE \"C\" CURSOR WITH HOLD FOR SUBSCRIBE t");
        assert!(matches!(s.delivery, Delivery::Cursor { ref name, hold: true } if name == "C"));
        // Other cursors and COPYs are sqlparser's.
        assert!(parse("DECLARE c CURSOR FOR SELECT 1").is_none());
        assert!(parse("COPY (SELECT 1) TO STDOUT").is_none());
        assert!(parse("SELECT 1").is_none());
    }

    #[test]
    fn fetch_forms() {
        let f = |sql: &str| match parse(sql) {
            Some(Ok(Statement::Fetch(f))) => f,
            other => panic!("{sql}: {other:?}"),
        };
        assert_eq!(f("FETCH 10 c"), Fetch { cursor: "c".into(), count: Some(10), timeout: None });
        assert_eq!(f("FETCH FORWARD 5 FROM \"Cur\"").cursor, "Cur");
        assert_eq!(f("FETCH ALL IN c").count, None);
        assert_eq!(f("FETCH FORWARD ALL FROM c").count, None);
        assert_eq!(f("FETCH c").count, Some(1));
        assert_eq!(f("FETCH NEXT FROM c").count, Some(1));
        assert_eq!(f("FETCH 3 c WITH (timeout = '250ms')").timeout, Some(Duration::from_millis(250)));
        assert_eq!(f("FETCH 3 c WITH (timeout = '2s')").timeout, Some(Duration::from_secs(2)));
        assert!(matches!(parse("FETCH BACKWARD 1 FROM c"), Some(Err(Error::ObjectNotInPrerequisiteState(_)))));
        assert!(matches!(parse("FETCH 1 c WITH (wait = '1s')"), Some(Err(Error::InvalidParameter(_)))));
    }

    #[test]
    fn bad_subscribes_are_syntax_errors() {
        for sql in ["SUBSCRIBE", "SUBSCRIBE t FROM NOWHERE", "SUBSCRIBE t; SELECT 1", "SUBSCRIBE (SELECT FROM", "SUBSCRIBE t FROM OFFSET x"] {
            assert!(matches!(parse(sql), Some(Err(Error::Syntax { .. }))), "{sql}");
        }
        assert!(matches!(parse("SUBSCRIBE t WITH (colour = 'red')"), Some(Err(Error::InvalidParameter(_)))));
        assert!(matches!(parse("SUBSCRIBE t FROM OFFSET 'x'"), Some(Err(Error::InvalidParameter(_)))));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2 minutes").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
