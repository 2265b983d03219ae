//! The two clauses of streaming DDL that sqlparser does not know:
//! `WATERMARK FOR ts AS ts - INTERVAL '…'` among the columns of `CREATE TABLE`, and
//! `EMIT ON WINDOW CLOSE` at the end of `CREATE MATERIALIZED VIEW`.
//!
//! Each is cut out of the text before sqlparser reads it and put back into the parsed
//! statement as a `WITH` option (`watermark = ts - INTERVAL '…'`, `emit = 'on window
//! close'`), so the rest of the engine sees one way to say each (which users may also
//! write directly). Tokens, not text search, find the clauses: a column or a string that
//! happens to contain the words is left alone.

use datafusion::sql::sqlparser::ast::{BinaryOperator, CreateTableOptions, Expr, Ident, Interval, SqlOption, Statement, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};
use crate::hidden::normalize;
use crate::subscribe::byte_offset;

/// The table option a `WATERMARK FOR` clause becomes.
pub const WATERMARK_OPTION: &str = "watermark";
/// The view option `EMIT ON WINDOW CLOSE` becomes, and its value.
pub const EMIT_OPTION: &str = "emit";
pub const EMIT_ON_WINDOW_CLOSE: &str = "on window close";

/// What was cut out of one statement of the text.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Clauses {
    /// `WATERMARK FOR c AS expr`: the expression (over `c`).
    pub watermark: Option<Expr>,
    pub emit_on_window_close: bool,
}

/// The text without the clauses, and each statement's clauses (in statement order);
/// `None` when the text has neither (the common case, decided without tokenizing).
pub fn extract(sql: &str) -> Option<Result<(String, Vec<Clauses>)>> {
    if !contains_word(sql, "watermark") && !contains_word(sql, "emit") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location().ok()?;
    let significant: Vec<&TokenWithSpan> = tokens.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut clauses = Vec::new();
    for statement in significant.split(|t| t.token == Token::SemiColon) {
        if statement.is_empty() {
            continue;
        }
        let mut found = Clauses::default();
        if starts_with(statement, &["CREATE"]) && statement.iter().take_while(|t| t.token != Token::LParen).any(|t| is_word(t, "TABLE")) {
            if let Some((cut, expr)) = watermark_clause(sql, statement) {
                match expr {
                    Ok(expr) => found.watermark = Some(expr),
                    Err(e) => return Some(Err(e)),
                }
                cuts.push(cut);
            }
        }
        if starts_with(statement, &["CREATE", "MATERIALIZED", "VIEW"]) || starts_with(statement, &["CREATE", "OR", "REPLACE", "MATERIALIZED", "VIEW"]) {
            if let [.., emit, on, window, close] = statement {
                if is_word(emit, "EMIT") && is_word(on, "ON") && is_word(window, "WINDOW") && is_word(close, "CLOSE") {
                    found.emit_on_window_close = true;
                    cuts.push((byte_offset(sql, emit.span.start), byte_offset(sql, close.span.end)));
                }
            }
        }
        clauses.push(found);
    }
    if cuts.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(sql.len());
    let mut at = 0;
    for (start, end) in cuts {
        text.push_str(&sql[at..start]);
        at = end;
    }
    text.push_str(&sql[at..]);
    Some(Ok((text, clauses)))
}

/// Puts one statement's clauses back into it, as options.
pub fn apply(statement: &mut Statement, clauses: Clauses) -> Result<()> {
    if let Some(expr) = clauses.watermark {
        let Statement::CreateTable(create) = statement else {
            return Err(Error::Syntax { message: "WATERMARK FOR belongs in CREATE TABLE".into(), position: None });
        };
        push_option(&mut create.table_options, WATERMARK_OPTION, expr);
    }
    if clauses.emit_on_window_close {
        match statement {
            Statement::CreateView(create) if create.materialized => {
                let value = Expr::value(Value::SingleQuotedString(EMIT_ON_WINDOW_CLOSE.into()));
                push_option(&mut create.options, EMIT_OPTION, value);
            }
            _ => return Err(Error::Syntax { message: "EMIT ON WINDOW CLOSE belongs in CREATE MATERIALIZED VIEW".into(), position: None }),
        }
    }
    Ok(())
}

fn push_option(options: &mut CreateTableOptions, key: &str, value: Expr) {
    let option = SqlOption::KeyValue { key: Ident::new(key), value };
    match options {
        CreateTableOptions::None => *options = CreateTableOptions::With(vec![option]),
        CreateTableOptions::With(list)
        | CreateTableOptions::Options(list)
        | CreateTableOptions::Plain(list)
        | CreateTableOptions::TableProperties(list) => list.push(option),
    }
}

/// `WATERMARK FOR c AS expr` among a CREATE TABLE's columns (parenthesis depth 1): the
/// byte range to cut (with the comma that separates it) and the expression.
fn watermark_clause(sql: &str, statement: &[&TokenWithSpan]) -> Option<((usize, usize), Result<Expr>)> {
    let mut depth = 0;
    let mut start = None;
    for (i, token) in statement.iter().enumerate() {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth == 1 && is_word(token, "WATERMARK") && statement.get(i + 1).is_some_and(|t| is_word(t, "FOR")) {
            start = Some(i);
            break;
        }
    }
    let start = start?;
    // The clause runs to the next comma at this depth or to the closing parenthesis.
    let mut depth = 1;
    let mut end = start;
    while let Some(token) = statement.get(end + 1) {
        match token.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 1 => break,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 1 => break,
            _ => {}
        }
        end += 1;
    }
    let clause_end = byte_offset(sql, statement[end].span.end);
    let (body, expr) = match statement.get(start + 2) {
        Some(first) if end >= start + 2 => {
            let body = (byte_offset(sql, first.span.start), clause_end);
            (body, watermark_expr(&sql[body.0..body.1]))
        }
        _ => {
            let empty = Error::Syntax { message: "WATERMARK FOR needs a column: WATERMARK FOR ts AS ts - INTERVAL '…'".into(), position: None };
            ((clause_end, clause_end), Err(empty))
        }
    };
    // Cut the separating comma too: the one before the clause, or else the one after it.
    let cut = if statement[start - 1].token == Token::Comma {
        (byte_offset(sql, statement[start - 1].span.start), body.1)
    } else if statement.get(end + 1).is_some_and(|t| t.token == Token::Comma) {
        (byte_offset(sql, statement[start].span.start), byte_offset(sql, statement[end + 1].span.end))
    } else {
        (byte_offset(sql, statement[start].span.start), body.1)
    };
    Some((cut, expr))
}

/// `c AS expr`: the expression, which must read column `c`.
fn watermark_expr(text: &str) -> Result<Expr> {
    let syntax = |message: String| Error::Syntax { message, position: None };
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(|e| syntax(e.to_string()))?;
    let column = parser.parse_identifier().map_err(|e| syntax(format!("WATERMARK FOR needs a column name: {e}")))?;
    parser.expect_keyword(Keyword::AS).map_err(|e| syntax(format!("WATERMARK FOR {column} needs AS {column} - INTERVAL '…': {e}")))?;
    let expr = parser.parse_expr().map_err(|e| syntax(e.to_string()))?;
    if parser.peek_token().token != Token::EOF {
        return Err(syntax(format!("unexpected {} after the WATERMARK expression", parser.peek_token().token)));
    }
    match watermark_parts(&expr) {
        Some((read, _)) if read == normalize(&column) => Ok(expr),
        _ => Err(Error::InvalidObjectDefinition(format!(
            "WATERMARK FOR {column} must be {column} or {column} - INTERVAL '…', not {expr}"
        ))),
    }
}

/// The column a watermark expression reads and the interval it subtracts: `c` (no
/// delay) or `c - interval`, parenthesized or not.
pub fn watermark_parts(expr: &Expr) -> Option<(String, Option<&Interval>)> {
    match expr {
        Expr::Identifier(column) => Some((normalize(column), None)),
        Expr::Nested(inner) => watermark_parts(inner),
        Expr::BinaryOp { left, op: BinaryOperator::Minus, right } => match (&**left, &**right) {
            (Expr::Identifier(column), Expr::Interval(interval)) => Some((normalize(column), Some(interval))),
            _ => None,
        },
        _ => None,
    }
}

fn is_word(token: &TokenWithSpan, word: &str) -> bool {
    matches!(&token.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn starts_with(statement: &[&TokenWithSpan], words: &[&str]) -> bool {
    statement.len() >= words.len() && statement.iter().zip(words).all(|(t, w)| is_word(t, w))
}

fn contains_word(sql: &str, word: &str) -> bool {
    sql.as_bytes().windows(word.len()).any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(sql: &str) -> (String, Vec<Clauses>) {
        extract(sql).expect("has a clause").expect("parses")
    }

    #[test]
    fn the_watermark_clause_is_cut_with_its_comma() {
        let (text, clauses) = cut("CREATE TABLE t (a int, ts timestamp, WATERMARK FOR ts AS ts - INTERVAL '5 seconds') WITH (partitions = 2)");
        assert_eq!(text, "CREATE TABLE t (a int, ts timestamp) WITH (partitions = 2)");
        assert_eq!(clauses[0].watermark.as_ref().map(|e| e.to_string()).as_deref(), Some("ts - INTERVAL '5 seconds'"));
        let (text, _) = cut("create table t (watermark for ts as ts, ts timestamp)");
        assert_eq!(text, "create table t ( ts timestamp)");
        let (text, clauses) = cut("CREATE TABLE t (ts TIMESTAMP,\n  WATERMARK FOR \"ts\" AS (ts - INTERVAL '1' MINUTE)\n)");
        assert_eq!(text, "CREATE TABLE t (ts TIMESTAMP\n)");
        assert!(clauses[0].watermark.is_some());
    }

    #[test]
    fn emit_on_window_close_is_cut_from_the_end_of_a_materialized_view() {
        let sql = "CREATE MATERIALIZED VIEW v AS SELECT window_end, count(*) FROM TUMBLE(t, ts, INTERVAL '1 minute') GROUP BY window_end EMIT ON WINDOW CLOSE;";
        let (text, clauses) = cut(sql);
        assert_eq!(text, "CREATE MATERIALIZED VIEW v AS SELECT window_end, count(*) FROM TUMBLE(t, ts, INTERVAL '1 minute') GROUP BY window_end ;");
        assert!(clauses[0].emit_on_window_close);
    }

    #[test]
    fn words_in_names_and_strings_are_left_alone() {
        assert!(extract("INSERT INTO t VALUES ('watermark for x as y', 'emit on window close')").is_none());
        assert!(extract("CREATE TABLE watermark (emit int)").is_none());
        assert!(extract("SELECT 1").is_none());
    }

    #[test]
    fn a_watermark_over_another_column_is_refused() {
        let refused = extract("CREATE TABLE t (a timestamp, b timestamp, WATERMARK FOR a AS b - INTERVAL '1 second')").unwrap();
        assert!(matches!(refused, Err(Error::InvalidObjectDefinition(_))), "{refused:?}");
        let refused = extract("CREATE TABLE t (a timestamp, WATERMARK FOR a AS a + INTERVAL '1 second')").unwrap();
        assert!(matches!(refused, Err(Error::InvalidObjectDefinition(_))), "{refused:?}");
        let refused = extract("CREATE TABLE t (a timestamp, WATERMARK FOR a)").unwrap();
        assert!(matches!(refused, Err(Error::Syntax { .. })), "{refused:?}");
        for cut_short in ["CREATE TABLE t (a timestamp, WATERMARK FOR )", "CREATE TABLE t (a timestamp, WATERMARK FOR , b int)", "CREATE TABLE t (a timestamp, WATERMARK FOR"] {
            let refused = extract(cut_short).unwrap();
            assert!(matches!(refused, Err(Error::Syntax { .. })), "{cut_short}: {refused:?}");
        }
    }

    #[test]
    fn each_statement_of_a_text_gets_its_own_clauses() {
        let (text, clauses) = cut("CREATE TABLE a (x int); CREATE TABLE b (ts timestamp, WATERMARK FOR ts AS ts)");
        assert_eq!(text, "CREATE TABLE a (x int); CREATE TABLE b (ts timestamp)");
        assert_eq!(clauses.len(), 2);
        assert!(clauses[0].watermark.is_none() && clauses[1].watermark.is_some());
    }
}
