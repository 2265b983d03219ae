//! `ASK 'question'` and `ASK SQL 'question'`: questions in English, answered with SQL.
//!
//! The executor owns what every translator must obey; a [`Translator`] (the offline one
//! lives in `extensions/nl`) only turns a question and a description of the catalog
//! into SQL text, or refuses. Here:
//! - the catalog a translator sees ([`AskCatalog`]): relations, columns, types, comments
//!   (`COMMENT ON`), the stored values of low-cardinality text and integer columns
//!   (sampled) and the time span of time columns, cached for [`VALUE_CACHE_TTL`], and the
//!   names the question spells with capitals ("orders by Elena Muller") when a text
//!   column holds them ([`probe_names`]);
//! - the rules its SQL must pass: exactly one read-only `SELECT` (no `INTO`), row count
//!   capped at [`MAX_ASK_ROWS`], planned by DataFusion before it is run or shown (a
//!   translator that can use the error gets one retry: [`Translator::retry`]), and run
//!   under [`ASK_TIME_LIMIT`];
//! - how the answer leaves: `ASK` returns the rows and sends the SQL (and the
//!   translator's notes on how it read the question) as notices; `ASK SQL` returns the
//!   SQL as one row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::sql::sqlparser::ast::{self, Expr, LimitClause, SetExpr, Statement as SqlStatement, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::session::Session;
use crate::statement::Statement;

/// The most rows an answer returns (a larger or missing LIMIT is lowered to this).
pub const MAX_ASK_ROWS: u64 = 1000;
/// How long an answer's query may run.
pub const ASK_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Text columns with at most this many distinct values (in the sample) have their values
/// shown to translators, so "Germany" or "EU" link to the stored spelling.
pub const LOW_CARDINALITY_VALUES: usize = 50;
/// How many rows of a table are read to find a column's distinct values.
pub const VALUE_SAMPLE_ROWS: usize = 100_000;
/// Values longer than this are never shown (they are not names of things).
pub const MAX_VALUE_CHARS: usize = 100;
/// The longest question ASK reads (characters); reading is not interruptible.
pub const MAX_QUESTION_CHARS: usize = 1000;
/// At most this many lookups of capitalized names per question (each reads a column).
pub const MAX_NAME_PROBES: usize = 24;
/// How long sampled values are reused before they are read again.
pub const VALUE_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long reading one column's facts (values, time span) may take; a read that takes
/// longer is given up and remembered as unknown for [`VALUE_CACHE_TTL`], so a huge table
/// does not make every ASK wait for it.
pub const FACT_READ_TIME_LIMIT: Duration = Duration::from_secs(3);
/// How long all the name lookups of one question may take together.
pub const NAME_PROBE_TIME_BUDGET: Duration = Duration::from_secs(3);

/// Turns questions into SQL. Implementations must not run anything; they see only the
/// catalog description they are given.
pub trait Translator: Send + Sync {
    /// One `SELECT` answering `question` over `catalog`, or a refusal saying what could
    /// not be understood.
    fn translate(&self, question: &str, catalog: &AskCatalog) -> std::result::Result<Translation, Refusal>;

    /// A second attempt after the SQL of `first` broke ASK's rules or did not plan, told
    /// the `error`. `None`: this translator does not retry, and the error stands.
    fn retry(
        &self,
        _question: &str,
        _catalog: &AskCatalog,
        _first: &Translation,
        _error: &str,
    ) -> Option<std::result::Result<Translation, Refusal>> {
        None
    }
}

/// What a translator may know about the catalog.
#[derive(Debug, Clone, Default)]
pub struct AskCatalog {
    pub relations: Vec<AskRelation>,
    /// The schema unqualified names resolve in (the session's `search_path`).
    pub default_schema: String,
}

#[derive(Debug, Clone)]
pub struct AskRelation {
    pub schema: String,
    pub name: String,
    pub comment: Option<String>,
    pub columns: Vec<AskColumn>,
}

#[derive(Debug, Clone)]
pub struct AskColumn {
    pub name: String,
    pub data_type: DataType,
    pub comment: Option<String>,
    /// The distinct stored values of a low-cardinality text or integer (not key) column,
    /// or the names of the question found in a text column; `None` for other columns.
    pub values: Option<Vec<String>>,
    /// The earliest and latest value of a time column of a table, in microseconds since
    /// the Unix epoch (UTC); `None` for other columns, views and empty tables. Lets a
    /// translator prefer the table that holds rows in the asked-for time range.
    pub time_span: Option<(i64, i64)>,
}

/// A translator's answer: the SQL, and notes on how the question was read (assumptions,
/// ambiguities resolved, what was linked to what), sent to the user as notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub sql: String,
    pub notes: Vec<String>,
}

/// Why a question cannot be answered, naming what could not be linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// `ASK [SQL] 'question'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub question: String,
    /// `ASK SQL`: return the SQL instead of running it.
    pub sql_only: bool,
}

/// Recognizes `ASK [SQL] 'question'` (any string literal form Postgres accepts:
/// `'…'`, `E'…'`, `$$…$$`); `None` when the text is not an ASK statement.
pub fn parse(sql: &str) -> Option<Result<Statement>> {
    let trimmed = sql.trim_start();
    if !trimmed.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("ask")) || trimmed[3..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let tokens = match Tokenizer::new(&PostgreSqlDialect {}, trimmed).tokenize() {
        Ok(tokens) => tokens,
        Err(e) => return Some(Err(Error::Syntax { message: e.to_string(), position: None })),
    };
    let mut words = tokens.into_iter().filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon));
    words.next(); // ASK
    let syntax = |message: &str| Some(Err(Error::Syntax { message: message.to_string(), position: None }));
    let (sql_only, literal) = match words.next() {
        Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("sql") && w.quote_style.is_none() => (true, words.next()),
        other => (false, other),
    };
    let question = match literal {
        Some(Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) | Token::NationalStringLiteral(s)) => s,
        Some(Token::DollarQuotedString(s)) => s.value,
        _ => return syntax("ASK takes a question as a string literal: ASK [SQL] 'question'"),
    };
    if words.next().is_some() {
        return syntax("ASK takes one string literal; nothing may follow it");
    }
    if question.trim().is_empty() {
        return syntax("ASK needs a question");
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Some(Err(Error::InvalidParameter(format!("ASK questions are limited to {MAX_QUESTION_CHARS} characters"))));
    }
    Some(Ok(Statement::Ask(Ask { question, sql_only })))
}

/// (table id, column): a table dropped and created again under its name has a new id.
type ColumnKey = (i64, String);

/// What was read of a column: its low-cardinality values or its time span.
#[derive(Debug, Clone, Default)]
struct ColumnFacts {
    values: Option<Vec<String>>,
    time_span: Option<(i64, i64)>,
}

/// A column's facts and when they were read.
type Sampled = (Instant, ColumnFacts);

/// A name looked up in a column: (table id, column, name).
type ProbeKey = (i64, String, String);

/// Facts read per column, and the answers of name lookups.
#[derive(Default)]
pub(crate) struct ValueCache {
    entries: Mutex<HashMap<ColumnKey, Sampled>>,
    probes: Mutex<HashMap<ProbeKey, (Instant, bool)>>,
}

impl ValueCache {
    fn get(&self, key: &ColumnKey) -> Option<ColumnFacts> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < VALUE_CACHE_TTL).map(|(_, v)| v.clone())
    }

    fn put(&self, key: ColumnKey, values: ColumnFacts) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() < VALUE_CACHE_TTL);
        entries.insert(key, (Instant::now(), values));
    }

    fn probed(&self, key: &ProbeKey) -> Option<bool> {
        let probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.get(key).filter(|(at, _)| at.elapsed() < VALUE_CACHE_TTL).map(|(_, found)| *found)
    }

    fn put_probe(&self, key: ProbeKey, found: bool) {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        probes.retain(|_, (at, _)| at.elapsed() < VALUE_CACHE_TTL);
        probes.insert(key, (Instant::now(), found));
    }
}

/// The result schema of `ASK SQL`.
pub fn sql_only_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("sql", DataType::Utf8, false)]))
}

impl Session {
    /// Runs `ASK`: translate, check, plan, run under the limits; or `ASK SQL`: translate.
    pub(crate) async fn ask(&mut self, ask: &Ask) -> Result<Output> {
        let translation = self.translate_in_time(&ask.question).await?;
        for note in &translation.notes {
            self.notice(note.clone());
        }
        if ask.sql_only {
            let batch = RecordBatch::try_new(sql_only_schema(), vec![Arc::new(StringArray::from(vec![translation.sql]))])?;
            return Ok(Output::Rows(Box::pin(MemoryStream::try_new(vec![batch], sql_only_schema(), None)?)));
        }
        let query = checked_query(self, &translation.sql)?;
        // The SQL as it runs (with the row cap), so it can be run again as shown.
        self.notice(format!("SQL: {query}"));
        let plan = self.logical_plan(&query).await?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let df = self.ctx.execute_logical_plan(plan).await?;
        let run = async { df.execute_stream().await?.try_collect::<Vec<_>>().await };
        let batches = tokio::time::timeout(ASK_TIME_LIMIT, run)
            .await
            .map_err(|_| Error::TimedOut(format!("the answer's query ran longer than ASK's limit of {} s", ASK_TIME_LIMIT.as_secs())))??;
        Ok(Output::Rows(Box::pin(MemoryStream::try_new(batches, schema, None)?)))
    }

    /// The columns `ASK` / `ASK SQL` will return (the extended protocol's Describe).
    pub(crate) async fn describe_ask(&mut self, ask: &Ask) -> Result<Arc<Schema>> {
        if ask.sql_only {
            return Ok(sql_only_schema());
        }
        let translation = self.translate_in_time(&ask.question).await?;
        let plan = self.logical_plan(&checked_query(self, &translation.sql)?).await?;
        self.last_translation = Some((ask.question.clone(), translation));
        Ok(Arc::new(plan.schema().as_arrow().clone()))
    }

    /// [`Session::translate`] under [`ASK_TIME_LIMIT`] (sampling values reads tables).
    async fn translate_in_time(&mut self, question: &str) -> Result<Translation> {
        tokio::time::timeout(ASK_TIME_LIMIT, self.translate(question))
            .await
            .map_err(|_| Error::TimedOut(format!("reading the question took longer than ASK's limit of {} s", ASK_TIME_LIMIT.as_secs())))?
    }

    /// Translates with the engine's translator. Describe keeps its translation for the
    /// Execute that follows it (one translation per statement); anything else uses it up,
    /// so a later ASK reads the catalog as it is then.
    async fn translate(&mut self, question: &str) -> Result<Translation> {
        if let Some((asked, translation)) = self.last_translation.take() {
            if asked == question {
                return Ok(translation);
            }
        }
        let translator = self.engine().translator().ok_or_else(|| {
            Error::not_supported("ASK is not available in this server", "the server was built without a question translator")
        })?;
        let mut catalog = ask_catalog(self).await?;
        probe_names(self, question, &mut catalog).await;
        let catalog = Arc::new(catalog);
        let asked = Arc::new(question.to_string());
        let first = {
            let (asked, catalog) = (asked.clone(), catalog.clone());
            run_translator(translator.clone(), move |t| Some(t.translate(&asked, &catalog))).await?
        };
        let Some(first) = first else { return Err(Error::Internal("ASK translator gave no answer".into())) };
        let error = match self.check_and_plan(&first.sql).await {
            Ok(()) => return Ok(first),
            Err(error) => error,
        };
        let told = error.to_string();
        let failed = first.clone();
        let retried = run_translator(translator, move |t| t.retry(&asked, &catalog, &failed, &told)).await?;
        let Some(mut retried) = retried else { return Err(error) };
        match self.check_and_plan(&retried.sql).await {
            Ok(()) => {
                retried.notes.push(format!("the first SQL failed ({error}); this is the translator's second attempt, told that error"));
                Ok(retried)
            }
            Err(again) => Err(Error::CannotAnswer(format!(
                "the SQL written for this question failed twice: first {error}; then, told that error, {again} (SQL: {})",
                retried.sql
            ))),
        }
    }

    /// Whether `sql` passes ASK's rules and plans.
    async fn check_and_plan(&self, sql: &str) -> Result<()> {
        let query = checked_query(self, sql)?;
        self.logical_plan(&query).await?;
        Ok(())
    }
}

/// Runs a translator call on a blocking thread (translators compute, some for seconds); a
/// refusal becomes [`Error::CannotAnswer`].
async fn run_translator(
    translator: Arc<dyn Translator>,
    call: impl FnOnce(&dyn Translator) -> Option<std::result::Result<Translation, Refusal>> + Send + 'static,
) -> Result<Option<Translation>> {
    let answer = tokio::task::spawn_blocking(move || call(translator.as_ref()))
        .await
        .map_err(|e| Error::Internal(format!("ASK translator failed: {e}")))?;
    answer.transpose().map_err(|Refusal(why)| Error::CannotAnswer(why))
}

/// The translator's SQL as one read-only query with its row count capped, or an error
/// saying which rule it broke.
fn checked_query(session: &Session, sql: &str) -> Result<SqlStatement> {
    let broken = |rule: &str| Error::Internal(format!("ASK's translator produced SQL that breaks a rule ({rule}): {sql}"));
    let mut statements = session.parse(sql)?;
    if statements.len() != 1 {
        return Err(broken("exactly one statement"));
    }
    let Statement::Sql(SqlStatement::Query(mut query)) = statements.remove(0) else {
        return Err(broken("only SELECT"));
    };
    if !read_only(&query.body) {
        return Err(broken("only SELECT"));
    }
    cap_rows(&mut query);
    Ok(SqlStatement::Query(query))
}

fn read_only(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => select.into.is_none(),
        SetExpr::Query(query) => read_only(&query.body),
        SetExpr::SetOperation { left, right, .. } => read_only(left) && read_only(right),
        SetExpr::Values(_) => true,
        _ => false,
    }
}

/// Lowers a missing or larger LIMIT to [`MAX_ASK_ROWS`].
fn cap_rows(query: &mut ast::Query) {
    let cap = Expr::value(Value::Number(MAX_ASK_ROWS.to_string(), false));
    let within = |limit: &Option<Expr>| match limit {
        Some(Expr::Value(v)) => matches!(&v.value, Value::Number(n, _) if n.parse::<u64>().is_ok_and(|n| n <= MAX_ASK_ROWS)),
        _ => false,
    };
    match &mut query.limit_clause {
        Some(LimitClause::LimitOffset { limit, .. }) => {
            if !within(limit) {
                *limit = Some(cap);
            }
        }
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => {
            if !within(&Some(limit.clone())) {
                *limit = cap;
            }
        }
        None => query.limit_clause = Some(LimitClause::LimitOffset { limit: Some(cap), offset: None, limit_by: Vec::new() }),
    }
}

/// What the translator sees: every user relation (tables, views, materialized views) of
/// every schema but the system one, with comments and low-cardinality values.
async fn ask_catalog(session: &Session) -> Result<AskCatalog> {
    let streams = session.streams();
    let mut comments: HashMap<(String, String, Option<String>), String> = HashMap::new();
    for c in streams.catalog().list_comments().await.map_err(|e| Error::Storage(e.into()))? {
        comments.insert((c.schema, c.relation, c.column), c.comment);
    }
    let mut relations = Vec::new();
    for schema in streams.schema_names() {
        if schema == crate::system_tables::SYSTEM_SCHEMA {
            continue;
        }
        // (name, columns, table id): views have no id, and their values are not sampled
        // (sampling a view computes it, which may cost anything).
        let mut named: Vec<(String, Arc<Schema>, Option<i64>)> =
            streams.tables_in(&schema).iter().map(|t| (t.name().to_string(), t.schema(), Some(t.id()))).collect();
        for view in streams.views_in(&schema) {
            let reference = datafusion::common::TableReference::partial(schema.as_str(), view.name.as_str());
            // A view that no longer plans (a table it read was dropped) is left out.
            if let Ok(df) = session.ctx.table(reference).await {
                named.push((view.name.clone(), Arc::new(df.schema().as_arrow().clone()), None));
            }
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, arrow_schema, table_id) in named {
            let mut columns = Vec::new();
            for field in arrow_schema.fields() {
                let facts = match table_id {
                    Some(id) => column_facts(session, id, &schema, &name, field).await,
                    None => ColumnFacts::default(),
                };
                columns.push(AskColumn {
                    name: field.name().clone(),
                    data_type: field.data_type().clone(),
                    comment: comments.get(&(schema.clone(), name.clone(), Some(field.name().clone()))).cloned(),
                    values: facts.values,
                    time_span: facts.time_span,
                });
            }
            let comment = comments.get(&(schema.clone(), name.clone(), None)).cloned();
            relations.push(AskRelation { schema: schema.clone(), name, comment, columns });
        }
    }
    Ok(AskCatalog { relations, default_schema: session.default_schema() })
}

/// What a translator may know of a column of table `table_id`: the distinct values of a
/// text column when there are few of them (in a sample of the table), the time span of a
/// time column; cached for [`VALUE_CACHE_TTL`]. A read that fails gives no facts: they
/// help linking, they are not a condition of answering.
async fn column_facts(session: &Session, table_id: i64, schema: &str, relation: &str, field: &Field) -> ColumnFacts {
    let column = field.name();
    // Integer codes ("status 304") are values; ids are not (there are too many to list).
    let is_key = column == "id" || column.ends_with("_id");
    let text = matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) || (field.data_type().is_integer() && !is_key);
    let time = matches!(field.data_type(), DataType::Timestamp(..) | DataType::Date32 | DataType::Date64);
    if !text && !time {
        return ColumnFacts::default();
    }
    let key = (table_id, column.to_string());
    if let Some(facts) = session.engine().ask_values().get(&key) {
        return facts;
    }
    let read = async {
        if text {
            sample_values(session, schema, relation, column).await.map(|values| ColumnFacts { values, time_span: None })
        } else {
            time_span(session, schema, relation, column).await.map(|time_span| ColumnFacts { values: None, time_span })
        }
    };
    let read = tokio::time::timeout(FACT_READ_TIME_LIMIT, read).await.unwrap_or_else(|_| {
        Err(Error::TimedOut(format!("reading the column took longer than {} s", FACT_READ_TIME_LIMIT.as_secs())))
    });
    let facts = read.unwrap_or_else(|e| {
        tracing::debug!(%schema, %relation, %column, error = %e, "ASK could not read a column's facts");
        ColumnFacts::default()
    });
    session.engine().ask_values().put(key, facts.clone());
    facts
}

/// Names the question writes with capitals ("Elena Muller", two or three words) that a
/// table's text column holds although it has too many values to list: added to that
/// column's values, so the translator links them like any stored value.
async fn probe_names(session: &Session, question: &str, catalog: &mut AskCatalog) {
    let names = capitalized_names(question);
    if names.is_empty() {
        return;
    }
    let started = Instant::now();
    let mut probes = 0;
    for relation in &mut catalog.relations {
        // Tables only: looking into a view computes it.
        let Some(table) = session.streams().tables_in(&relation.schema).into_iter().find(|t| t.name() == relation.name) else {
            continue;
        };
        for column in &mut relation.columns {
            let text = matches!(column.data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
            if !text || column.values.is_some() || column.time_span.is_some() {
                continue;
            }
            for name in &names {
                let key = (table.id(), column.name.clone(), name.clone());
                let found = match session.engine().ask_values().probed(&key) {
                    Some(found) => found,
                    None => {
                        let left = NAME_PROBE_TIME_BUDGET.saturating_sub(started.elapsed());
                        if probes == MAX_NAME_PROBES || left.is_zero() {
                            return;
                        }
                        probes += 1;
                        match tokio::time::timeout(left, holds(session, &relation.schema, &relation.name, &column.name, name)).await {
                            Ok(Ok(found)) => {
                                session.engine().ask_values().put_probe(key, found);
                                found
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(relation = %relation.name, column = %column.name, error = %e, "ASK could not look up a name");
                                false
                            }
                            Err(_) => {
                                tracing::debug!(relation = %relation.name, column = %column.name, "ASK's name lookups ran out of time");
                                return;
                            }
                        }
                    }
                };
                if found {
                    column.values.get_or_insert_with(Vec::new).push(name.clone());
                }
            }
        }
    }
}

/// The runs of two or three capitalized words a question writes ("Did Elena Muller order?"
/// gives "Did Elena Muller", "Did Elena" and "Elena Muller"), without a sentence's final
/// stop or a possessive "'s".
fn capitalized_names(question: &str) -> Vec<String> {
    let words: Vec<&str> = question
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '?' | '!' | ';' | ':' | '(' | ')' | '"'))
        .map(|w| w.trim_end_matches('.'))
        .map(|w| w.strip_suffix("'s").or_else(|| w.strip_suffix("\u{2019}s")).unwrap_or(w))
        .filter(|w| !w.is_empty())
        .collect();
    let capitalized = |w: &str| w.chars().next().is_some_and(char::is_uppercase) && w.chars().skip(1).all(|c| c.is_lowercase() || c == '-' || c == '\'');
    let mut names: Vec<String> = Vec::new();
    for len in [3, 2] {
        for run in words.windows(len) {
            let name = run.join(" ");
            if run.iter().all(|w| capitalized(w)) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// A context reading only committed rows: what column facts and name lookups read (they
/// are cached for every session, so one session's uncommitted rows must not reach them).
fn committed_rows(session: &Session) -> datafusion::prelude::SessionContext {
    datafusion::prelude::SessionContext::new_with_state(session.engine().base_state())
}

/// Whether `column` of the relation holds `value` exactly.
async fn holds(session: &Session, schema: &str, relation: &str, column: &str, value: &str) -> Result<bool> {
    use datafusion::prelude::{col, lit};
    let table = committed_rows(session).table(datafusion::common::TableReference::full(crate::DATABASE_NAME, schema, relation)).await?;
    let found = table.filter(col(datafusion::common::Column::new_unqualified(column)).eq(lit(value)))?.limit(0, Some(1))?.count().await?;
    Ok(found > 0)
}

/// `min` and `max` of a time column as UTC microseconds; `None` when it holds no value.
async fn time_span(session: &Session, schema: &str, relation: &str, column: &str) -> Result<Option<(i64, i64)>> {
    use datafusion::functions_aggregate::expr_fn::{max, min};
    use datafusion::prelude::{cast, col};
    let table = committed_rows(session).table(datafusion::common::TableReference::full(crate::DATABASE_NAME, schema, relation)).await?;
    let micros = |e| cast(cast(e, DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None)), DataType::Int64);
    let column = col(datafusion::common::Column::new_unqualified(column));
    let span = table.aggregate(vec![], vec![min(micros(column.clone())).alias("lo"), max(micros(column)).alias("hi")])?;
    let batches = span.collect().await?;
    let value = |i: usize| {
        batches.first().and_then(|b| b.column(i).as_any().downcast_ref::<arrow::array::Int64Array>().filter(|a| a.is_valid(0)).map(|a| a.value(0)))
    };
    Ok(value(0).zip(value(1)))
}

async fn sample_values(session: &Session, schema: &str, relation: &str, column: &str) -> Result<Option<Vec<String>>> {
    use datafusion::prelude::{col, ident};
    let table = committed_rows(session).table(datafusion::common::TableReference::full(crate::DATABASE_NAME, schema, relation)).await?;
    let sampled = table
        .select(vec![ident(column)])?
        .limit(0, Some(VALUE_SAMPLE_ROWS))?
        .filter(col(datafusion::common::Column::new_unqualified(column)).is_not_null())?
        .distinct()?
        .limit(0, Some(LOW_CARDINALITY_VALUES + 1))?;
    let mut values = Vec::new();
    for batch in &sampled.collect().await? {
        let column = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let strings = column.as_any().downcast_ref::<StringArray>().ok_or_else(|| Error::Internal("cast to Utf8".into()))?;
        values.extend((0..strings.len()).filter(|i| strings.is_valid(*i)).map(|i| strings.value(i).to_string()));
    }
    Ok((values.len() <= LOW_CARDINALITY_VALUES && values.iter().all(|v| v.chars().count() <= MAX_VALUE_CHARS)).then(|| {
        values.sort();
        values
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(sql: &str) -> Ask {
        match parse(sql) {
            Some(Ok(Statement::Ask(ask))) => ask,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn ask_statements_parse_in_every_literal_form() {
        assert_eq!(ask("ASK 'how many orders'"), Ask { question: "how many orders".into(), sql_only: false });
        assert_eq!(ask("  ask sql 'it''s late';"), Ask { question: "it's late".into(), sql_only: true });
        assert_eq!(ask("ASK $$average 'latency'$$").question, "average 'latency'");
        assert_eq!(ask("ASK E'a\\tb'").question, "a\tb");
    }

    #[test]
    fn capitalized_names_are_found_at_a_sentence_start_and_before_stops_and_possessives() {
        assert_eq!(capitalized_names("Did Elena Muller order?"), ["Did Elena Muller", "Did Elena", "Elena Muller"]);
        assert_eq!(capitalized_names("orders by Elena Muller."), ["Elena Muller"]);
        assert_eq!(capitalized_names("what is Elena Muller's biggest order"), ["Elena Muller"]);
        assert!(capitalized_names("how many orders in Germany").is_empty(), "one word is not a name");
    }

    #[test]
    fn long_questions_are_refused() {
        let long = format!("ASK '{}'", "country ".repeat(200));
        assert!(matches!(parse(&long), Some(Err(Error::InvalidParameter(_)))));
    }

    #[test]
    fn other_statements_and_malformed_asks() {
        assert!(parse("SELECT 1").is_none());
        assert!(parse("asking").is_none());
        assert!(parse("ask_table").is_none());
        for bad in ["ASK", "ASK orders", "ASK SQL", "ASK 'a' 'b'", "ASK ''", "ASK SQL 'q' LIMIT 3"] {
            assert!(matches!(parse(bad), Some(Err(Error::Syntax { .. }))), "{bad}");
        }
    }
}
