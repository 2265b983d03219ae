//! Schema inference for raw topics: Kafka producers write JSON into a raw topic (key,
//! value, headers, timestamp) before anyone has declared columns; these statements look at
//! the values and propose the typed table.
//!
//! - `INFER SCHEMA FROM TOPIC raw [LIMIT n]` samples the values of the latest `n` records
//!   (default [`DEFAULT_SAMPLE`]) and returns one row per proposed column: name, type, JSON
//!   path, whether some records lack it, how many have it, an example. Nested objects are
//!   flattened (`{"device": {"id": 7}}` gives `device_id`). Nothing is created; a notice
//!   shows the `SELECT` that extracts the columns, to reuse as it is.
//! - `CREATE TABLE t FROM TOPIC raw INFER SCHEMA [LIMIT n]` creates `t` with those columns
//!   and copies the topic's records into it, decoded.
//! - `CREATE MATERIALIZED VIEW v FROM TOPIC raw INFER SCHEMA [LIMIT n]` keeps the decoded
//!   records up to date as they arrive instead (records that do not decode give NULLs).
//!
//! Types are the narrowest that fit every sampled value of a path: BOOLEAN, BIGINT, DOUBLE
//! PRECISION (integers and decimals mixed), TIMESTAMPTZ (strings that all parse as
//! RFC 3339 times), TEXT, and JSON for arrays and paths whose values disagree in kind.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::sql::sqlparser::ast::{Ident, ObjectName};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use jiter::{JsonObject, JsonValue};

use crate::error::{Error, Result};
use crate::output::{CommandTag, Output};
use crate::session::Session;
use crate::statement::Statement;

/// Records sampled when the statement does not say.
pub const DEFAULT_SAMPLE: usize = 1000;
/// Most records one statement samples.
pub const MAX_SAMPLE: usize = 100_000;
/// Objects nested deeper than this are kept whole, as one JSON column.
const MAX_DEPTH: usize = 8;
/// Most columns proposed; wider values are refused rather than half-described.
const MAX_COLUMNS: usize = 1000;
/// Most distinct paths looked at (values keyed by ids would otherwise grow without bound).
const MAX_PATHS: usize = 4 * MAX_COLUMNS;
/// Most value bytes one statement looks at; the rest of the sample is left out.
const MAX_SAMPLE_BYTES: usize = 64 * 1024 * 1024;
/// Postgres' identifier length limit.
const MAX_NAME_CHARS: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferSchema {
    /// The topic (a raw table).
    pub topic: ObjectName,
    pub sample: usize,
    /// What to create from the proposal (`None`: only show it).
    pub create: Option<Create>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub materialized_view: bool,
    pub if_not_exists: bool,
    /// The new relation's name.
    pub name: ObjectName,
}

/// Recognizes the three statements; `None` for any other text.
pub fn parse(sql: &str) -> Option<Result<Statement>> {
    let head = sql.trim_start().get(..6)?;
    if !head.eq_ignore_ascii_case("infer ") && !head.eq_ignore_ascii_case("create") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let tokens: Vec<Token> = tokens.into_iter().filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon)).collect();
    let mut at = 0;
    let keyword = |at: &mut usize, word: &str| match tokens.get(*at) {
        Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word) => {
            *at += 1;
            true
        }
        _ => false,
    };
    let create = if keyword(&mut at, "infer") {
        if !keyword(&mut at, "schema") {
            return None;
        }
        None
    } else {
        keyword(&mut at, "create");
        let materialized_view = if keyword(&mut at, "table") {
            false
        } else if keyword(&mut at, "materialized") && keyword(&mut at, "view") {
            true
        } else {
            return None;
        };
        let if_not_exists = keyword(&mut at, "if") && keyword(&mut at, "not") && keyword(&mut at, "exists");
        let name = object_name(&tokens, &mut at)?;
        // Anything else is an ordinary CREATE for sqlparser.
        if !(matches!(tokens.get(at), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("from"))
            && matches!(tokens.get(at + 1), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("topic")))
        {
            return None;
        }
        Some(Create { materialized_view, if_not_exists, name })
    };
    let syntax = |message: &str| Some(Err(Error::Syntax { message: message.to_string(), position: None }));
    if !(keyword(&mut at, "from") && keyword(&mut at, "topic")) {
        return syntax("expected INFER SCHEMA FROM TOPIC name [LIMIT n]");
    }
    let Some(topic) = object_name(&tokens, &mut at) else { return syntax("FROM TOPIC needs a topic name") };
    if create.is_some() && !(keyword(&mut at, "infer") && keyword(&mut at, "schema")) {
        return syntax("expected CREATE … FROM TOPIC name INFER SCHEMA [LIMIT n]");
    }
    let mut sample = DEFAULT_SAMPLE;
    if keyword(&mut at, "limit") {
        let Some(Token::Number(n, _)) = tokens.get(at) else { return syntax("LIMIT takes a number of records") };
        at += 1;
        sample = match n.parse::<usize>() {
            Ok(n) if (1..=MAX_SAMPLE).contains(&n) => n,
            _ => return Some(Err(Error::InvalidParameter(format!("INFER SCHEMA samples between 1 and {MAX_SAMPLE} records")))),
        };
    }
    if at != tokens.len() {
        return syntax(&format!("unexpected {} after the topic", tokens[at]));
    }
    Some(Ok(Statement::InferSchema(InferSchema { topic, sample, create })))
}

/// `a`, `"A"`, `s.t`: words joined by dots (quoting kept; printed back escaped).
fn object_name(tokens: &[Token], at: &mut usize) -> Option<ObjectName> {
    let mut parts = Vec::new();
    loop {
        let Some(Token::Word(w)) = tokens.get(*at) else { return None };
        parts.push(match w.quote_style {
            Some(quote) => Ident::with_quote(quote, w.value.clone()),
            None => Ident::new(w.value.clone()),
        });
        *at += 1;
        if tokens.get(*at) != Some(&Token::Period) {
            return Some(ObjectName::from(parts));
        }
        *at += 1;
    }
}

/// A proposed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// Keys from the top of the value down to this field.
    pub path: Vec<String>,
    /// Records (of those that were JSON objects) that have a non-null value here.
    pub seen: usize,
    pub example: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    Integer,
    Float,
    Timestamp,
    Text,
    Json,
}

impl Kind {
    fn sql_type(self) -> &'static str {
        match self {
            Kind::Boolean => "BOOLEAN",
            Kind::Integer => "BIGINT",
            Kind::Float => "DOUBLE PRECISION",
            Kind::Timestamp => "TIMESTAMPTZ",
            Kind::Text => "TEXT",
            Kind::Json => "JSON",
        }
    }

    /// The expression that extracts a value of this kind from the text `json` at `path`.
    fn extract(self, json: &str, path: &[String]) -> String {
        let keys: String = path.iter().map(|k| format!(", '{}'", k.replace('\'', "''"))).collect();
        match self {
            Kind::Boolean => format!("json_get_bool({json}{keys})"),
            Kind::Integer => format!("json_get_int({json}{keys})"),
            Kind::Float => format!("json_get_float({json}{keys})"),
            // TRY_CAST: a later value that is no time gives NULL, not a stopped view.
            Kind::Timestamp => format!("TRY_CAST(json_get_str({json}{keys}) AS TIMESTAMPTZ)"),
            Kind::Text => format!("json_get_str({json}{keys})"),
            Kind::Json => format!("json_get_json({json}{keys})"),
        }
    }
}

/// What the sampled values of one path were.
#[derive(Default)]
struct Seen {
    order: usize,
    object: bool,
    boolean: bool,
    integer: bool,
    float: bool,
    time_string: bool,
    other_string: bool,
    array: bool,
    count: usize,
    example: Option<String>,
}

/// Proposes columns for the sampled values; `Err` when none of them is a JSON object.
pub fn infer(values: &[Option<&[u8]>]) -> Result<(Vec<Column>, usize)> {
    let mut paths: HashMap<Vec<String>, Seen> = HashMap::new();
    let mut objects = 0;
    for value in values.iter().flatten() {
        let Ok(JsonValue::Object(object)) = JsonValue::parse(value, false) else { continue };
        objects += 1;
        walk(&object, &mut Vec::new(), &mut paths);
        if paths.len() > MAX_PATHS {
            return Err(Error::InvalidParameter(format!(
                "the sampled values have more than {MAX_PATHS} distinct fields; INFER SCHEMA proposes at most {MAX_COLUMNS} columns"
            )));
        }
    }
    if objects == 0 {
        return Err(Error::InvalidValue(format!("none of the {} sampled values is a JSON object", values.len())));
    }
    let mut ordered: Vec<(Vec<String>, Seen)> = paths.into_iter().collect();
    ordered.sort_by_key(|(_, seen)| seen.order);
    let parents: std::collections::HashSet<&[String]> = ordered.iter().flat_map(|(p, _)| (1..p.len()).map(|n| &p[..n])).collect();
    let mut columns = Vec::new();
    let mut whole: Vec<Vec<String>> = Vec::new(); // paths kept as one JSON column
    for (path, seen) in &ordered {
        if whole.iter().any(|w| path.starts_with(w)) {
            continue;
        }
        let scalar = seen.boolean || seen.integer || seen.float || seen.time_string || seen.other_string || seen.array;
        let has_children = parents.contains(path.as_slice());
        let kind = if seen.object && has_children && !scalar {
            continue; // its fields are the columns
        } else if seen.object || seen.array {
            whole.push(path.clone());
            Kind::Json
        } else {
            let families = [seen.boolean, seen.integer || seen.float, seen.time_string || seen.other_string].iter().filter(|f| **f).count();
            match () {
                _ if families > 1 => Kind::Json,
                _ if seen.boolean => Kind::Boolean,
                _ if seen.float => Kind::Float,
                _ if seen.integer => Kind::Integer,
                _ if seen.time_string && !seen.other_string => Kind::Timestamp,
                _ => Kind::Text,
            }
        };
        columns.push(Column { name: String::new(), kind, path: path.clone(), seen: seen.count, example: seen.example.clone().unwrap_or_default() });
    }
    if columns.len() > MAX_COLUMNS {
        return Err(Error::InvalidParameter(format!("the values have {} fields; INFER SCHEMA proposes at most {MAX_COLUMNS} columns", columns.len())));
    }
    name_columns(&mut columns);
    Ok((columns, objects))
}

fn walk(object: &JsonObject, prefix: &mut Vec<String>, paths: &mut HashMap<Vec<String>, Seen>) {
    for (key, value) in object.iter() {
        prefix.push(key.to_string());
        let next = paths.len();
        let seen = paths.entry(prefix.clone()).or_insert_with(|| Seen { order: next, ..Seen::default() });
        if !matches!(value, JsonValue::Null) {
            seen.count += 1;
            if seen.example.is_none() {
                seen.example = Some(match value {
                    JsonValue::Str(s) => s.to_string(),
                    JsonValue::Bool(b) => b.to_string(),
                    JsonValue::Int(i) => i.to_string(),
                    JsonValue::Float(f) => f.to_string(),
                    JsonValue::Array(items) => format!("[{} items]", items.len()),
                    JsonValue::Object(fields) => format!("{{{} fields}}", fields.len()),
                    other => format!("{other:?}"),
                });
            }
        }
        match value {
            JsonValue::Null => {}
            JsonValue::Bool(_) => seen.boolean = true,
            JsonValue::Int(_) => seen.integer = true,
            JsonValue::Float(_) | JsonValue::BigInt(_) => seen.float = true,
            JsonValue::Str(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => seen.time_string = true,
            JsonValue::Str(_) => seen.other_string = true,
            JsonValue::Array(_) => seen.array = true,
            JsonValue::Object(inner) if prefix.len() < MAX_DEPTH => {
                seen.object = true;
                walk(inner, prefix, paths);
            }
            JsonValue::Object(_) => seen.array = true, // too deep: kept whole, like an array
        }
        prefix.pop();
    }
}

/// SQL names from paths: lower case, `_` between levels and for anything not a letter or
/// digit, no leading `_` (so never a system column's name), unique, at most 63 characters.
fn name_columns(columns: &mut [Column]) {
    let mut taken: Vec<String> = Vec::new();
    for column in columns.iter_mut() {
        let joined = column.path.join("_").to_lowercase();
        let mut base: String = joined.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        base = base.trim_matches('_').to_string();
        while base.contains("__") {
            base = base.replace("__", "_");
        }
        // Trimmed of leading `_`, a name never collides with a system column (`_offset`).
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("field_{base}");
        }
        base.truncate(MAX_NAME_CHARS - 4);
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        taken.push(name.clone());
        column.name = name;
    }
}

/// The columns of `INFER SCHEMA`'s result.
fn proposal_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, false),
        Field::new("data_type", DataType::Utf8, false),
        Field::new("json_path", DataType::Utf8, false),
        Field::new("nullable", DataType::Boolean, false),
        Field::new("records_with_value", DataType::Int64, false),
        Field::new("example", DataType::Utf8, false),
    ]))
}

/// `"name"`, quoted for SQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Session {
    pub(crate) async fn infer_schema(&mut self, statement: &InferSchema) -> Result<Output> {
        let topic = self.resolve_table(&statement.topic)?;
        let qualified = format!("{}.{}", quoted(topic.schema_name()), quoted(topic.name()));
        let value_type = topic.schema().field_with_name("value").map(|f| f.data_type().clone()).ok();
        if !matches!(value_type, Some(DataType::Binary | DataType::LargeBinary | DataType::Utf8 | DataType::LargeUtf8)) {
            return Err(Error::DatatypeMismatch(format!(
                "{} has no bytes or text column \"value\": INFER SCHEMA reads raw topics (key, value, headers, timestamp)",
                statement.topic
            )));
        }
        // The latest records: a topic's values change shape over time.
        let sample_sql = format!("SELECT CAST(value AS BYTEA) FROM {qualified} ORDER BY _timestamp DESC LIMIT {}", statement.sample);
        let batches = self.query_batches(&sample_sql).await?;
        // Parsing up to 100,000 values is CPU work: off the async workers.
        let inferred = tokio::task::spawn_blocking(move || {
            let mut budget = MAX_SAMPLE_BYTES;
            let values: Vec<Option<&[u8]>> = batches
                .iter()
                .flat_map(|b| {
                    let column = b.column(0).as_binary::<i32>();
                    (0..column.len()).map(move |i| column.is_valid(i).then(|| column.value(i)))
                })
                .take_while(|v| {
                    let len = v.map_or(0, <[u8]>::len);
                    budget = budget.saturating_sub(len);
                    budget > 0
                })
                .collect();
            if values.is_empty() {
                return Ok(None);
            }
            infer(&values).map(|(columns, objects)| Some((columns, objects, values.len())))
        })
        .await
        .map_err(|e| Error::Internal(format!("schema inference failed: {e}")))??;
        let Some((columns, objects, sampled)) = inferred else {
            return Err(Error::ObjectNotInPrerequisiteState(format!("{} has no records to infer a schema from", statement.topic)));
        };
        let select = format!(
            "SELECT {} FROM {qualified}",
            columns.iter().map(|c| format!("{} AS {}", c.kind.extract("TRY_CAST(value AS TEXT)", &c.path), quoted(&c.name))).collect::<Vec<_>>().join(", ")
        );
        let note_sampled = format!("inferred from {objects} JSON objects among the latest {sampled} records of {}", statement.topic);
        let Some(create) = &statement.create else {
            self.notice(note_sampled);
            self.notice(format!("to decode the records: {select}"));
            return proposal(&columns, objects);
        };
        if create.materialized_view {
            let if_not_exists = if create.if_not_exists { "IF NOT EXISTS " } else { "" };
            self.notice(note_sampled);
            self.run_sql(&format!("CREATE MATERIALIZED VIEW {if_not_exists}{} AS {select}", create.name)).await?;
            return Ok(Output::Command(CommandTag::new("CREATE MATERIALIZED VIEW")));
        }
        if self.resolve_table(&create.name).is_ok() && create.if_not_exists {
            self.notice(format!("relation {} already exists, skipping", create.name));
            return Ok(Output::Command(CommandTag::new("CREATE TABLE")));
        }
        // Without IF NOT EXISTS: a table someone created meanwhile makes this fail rather
        // than receive the copy (or be dropped if the copy failed).
        let ddl = format!(
            "CREATE TABLE {} ({})",
            create.name,
            columns.iter().map(|c| format!("{} {}", quoted(&c.name), c.kind.sql_type())).collect::<Vec<_>>().join(", ")
        );
        self.notice(note_sampled);
        self.run_sql(&ddl).await?;
        let copied = match self.run_sql(&format!("INSERT INTO {} {select}", create.name)).await {
            Ok(Output::Command(tag)) => tag.rows.unwrap_or(0),
            Ok(_) => 0,
            Err(e) => {
                // Nothing half done: the table goes with the copy that failed.
                let _ = self.run_sql(&format!("DROP TABLE {}", create.name)).await;
                return Err(e);
            }
        };
        self.notice(format!("{ddl}; copied {copied} records"));
        Ok(Output::Command(CommandTag::new("CREATE TABLE")))
    }

    /// The result columns of an `INFER SCHEMA` (the extended protocol's Describe).
    pub(crate) fn describe_infer_schema(statement: &InferSchema) -> Option<SchemaRef> {
        statement.create.is_none().then(proposal_schema)
    }

    /// Runs generated SQL, which must be exactly one statement.
    async fn run_sql(&mut self, sql: &str) -> Result<Output> {
        let statements = self.parse(sql)?;
        let [statement] = statements.as_slice() else {
            return Err(Error::Internal(format!("generated SQL is {} statements, not one: {sql}", statements.len())));
        };
        self.execute(statement, None).await
    }
}

fn proposal(columns: &[Column], objects: usize) -> Result<Output> {
    let batch = RecordBatch::try_new(
        proposal_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| c.name.clone()))),
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| c.kind.sql_type()))),
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| format!("$.{}", c.path.join("."))))),
            Arc::new(BooleanArray::from_iter(columns.iter().map(|c| Some(c.seen < objects)))),
            Arc::new(Int64Array::from_iter_values(columns.iter().map(|c| c.seen as i64))),
            Arc::new(StringArray::from_iter_values(columns.iter().map(|c| c.example.chars().take(100).collect::<String>()))),
        ],
    )?;
    Ok(Output::Rows(Box::pin(MemoryStream::try_new(vec![batch], proposal_schema(), None)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str) -> InferSchema {
        match parse(sql) {
            Some(Ok(Statement::InferSchema(s))) => s,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn the_three_statements_parse_and_others_are_left_alone() {
        let plain = statement("INFER SCHEMA FROM TOPIC raw");
        assert_eq!((plain.topic.to_string(), plain.sample, plain.create), ("raw".to_string(), DEFAULT_SAMPLE, None));
        assert_eq!(statement("infer schema from topic public.\"Raw\" limit 50;").topic.to_string(), "public.\"Raw\"");
        // A quote inside a quoted name stays inside it when the name is printed into SQL.
        let tricky = statement(r#"CREATE TABLE "x"" (a int); DROP TABLE victim; --" FROM TOPIC "r""aw" INFER SCHEMA"#);
        assert_eq!(tricky.create.unwrap().name.to_string(), r#""x"" (a int); DROP TABLE victim; --""#);
        assert_eq!(tricky.topic.to_string(), r#""r""aw""#);
        assert_eq!(statement("infer schema from topic raw limit 50").sample, 50);
        let table = statement("CREATE TABLE IF NOT EXISTS t FROM TOPIC raw INFER SCHEMA");
        assert_eq!(table.create, Some(Create { materialized_view: false, if_not_exists: true, name: ObjectName::from(vec![Ident::new("t")]) }));
        let view = statement("create materialized view v from topic raw infer schema limit 10");
        assert_eq!(view.create, Some(Create { materialized_view: true, if_not_exists: false, name: ObjectName::from(vec![Ident::new("v")]) }));
        for other in ["CREATE TABLE t (a int)", "CREATE MATERIALIZED VIEW v AS SELECT 1", "SELECT 1", "CREATE TABLE t AS SELECT 1", "inferno"] {
            assert!(parse(other).is_none(), "{other}");
        }
        for bad in ["INFER SCHEMA raw", "INFER SCHEMA FROM TOPIC", "INFER SCHEMA FROM TOPIC raw LIMIT x", "CREATE TABLE t FROM TOPIC raw", "INFER SCHEMA FROM TOPIC raw extra"] {
            assert!(matches!(parse(bad), Some(Err(Error::Syntax { .. }))), "{bad}");
        }
        assert!(matches!(parse("INFER SCHEMA FROM TOPIC raw LIMIT 0"), Some(Err(Error::InvalidParameter(_)))));
    }

    fn infer_json(values: &[&str]) -> Vec<(String, Kind, usize)> {
        let bytes: Vec<Option<&[u8]>> = values.iter().map(|v| Some(v.as_bytes())).collect();
        infer(&bytes).unwrap().0.into_iter().map(|c| (c.name, c.kind, c.seen)).collect()
    }

    #[test]
    fn types_are_the_narrowest_that_fit_every_value() {
        let got = infer_json(&[
            r#"{"id": 1, "price": 2, "ok": true, "at": "2026-11-28T10:00:00Z", "note": "x", "tags": ["a"], "mixed": 1}"#,
            r#"{"id": 2, "price": 2.5, "ok": false, "at": "2026-11-28T10:00:01+01:00", "note": null, "tags": [], "mixed": "one"}"#,
            "not json",
            "[1, 2]",
        ]);
        assert_eq!(
            got,
            [
                ("id".to_string(), Kind::Integer, 2),
                ("price".to_string(), Kind::Float, 2),
                ("ok".to_string(), Kind::Boolean, 2),
                ("at".to_string(), Kind::Timestamp, 2),
                ("note".to_string(), Kind::Text, 1),
                ("tags".to_string(), Kind::Json, 2),
                ("mixed".to_string(), Kind::Json, 2),
            ]
        );
    }

    #[test]
    fn nested_objects_are_flattened_and_names_made_safe() {
        let got = infer_json(&[r#"{"Device": {"id": 7, "geo": {"lat": 1.5}}, "device_id": "dup", "_offset": 1, "9lives": 1, "a-b": 1, "meta": {}}"#]);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["device_id", "device_geo_lat", "device_id_2", "offset", "field_9lives", "a_b", "meta"]);
        assert_eq!(got[6].1, Kind::Json, "an empty object is kept whole");
        // A path that is an object in one record and a scalar in another: one JSON column.
        let got = infer_json(&[r#"{"p": {"x": 1}}"#, r#"{"p": 5}"#]);
        assert_eq!(got, [("p".to_string(), Kind::Json, 2)]);
    }

    #[test]
    fn values_with_no_object_are_refused() {
        assert!(matches!(infer(&[Some(b"1".as_slice()), None, Some(b"{".as_slice())]), Err(Error::InvalidValue(_))));
    }
}
