//! [`Engine`] and [`Session`]: the small API every front end (Postgres wire, Flight, …)
//! uses. A session parses SQL, executes statements and returns [`Output`]s; it owns the
//! connection's transaction and settings. Storage is reached only through [`Streams`].

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use datafusion::common::ParamValues;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{CloseCursor, Declare, ObjectName, ObjectType, Statement as SqlStatement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::setup_pg_catalog;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use streamhouse_streams::{StreamTable, Streams, TableWrite};

use crate::catalog::{StreamCatalog, DATABASE_NAME, DEFAULT_SCHEMA};
use crate::error::{Error, Result};
use crate::hidden::{hide_system_columns, normalize};
use crate::cursor::Cursors;
use crate::output::{CommandTag, CopyIn, Output, TransactionEffect, TransactionStatus};
use crate::statement_timeout;
use crate::ask::Translator;
use crate::statement::{Delivery, Fetch, Statement, SubscribeStatement};
use crate::provider::{PendingRows, SEGMENT_STORE_URL};
use crate::transaction::{Ending, Transaction};
use crate::values_insert::ValuesInsert;
use arrow::datatypes::{DataType, SchemaRef};

/// Shared by all sessions: the storage engine and a prepared DataFusion state.
pub struct Engine {
    streams: Arc<Streams>,
    base_state: SessionState,
    parser: PostgresCompatibilityParser,
    maintainers: crate::materialized::Maintainers,
    /// Answers `ASK`; set once by the server (`set_translator`).
    translator: OnceLock<Arc<dyn Translator>>,
    /// Low-cardinality column values shown to the translator.
    ask_values: crate::ask::ValueCache,
}

impl Engine {
    /// The engine over `streams`; `functions` are extra SQL functions (from extensions
    /// such as `embed`) every session, view and materialized view can call.
    pub fn new(streams: Arc<Streams>, functions: Vec<datafusion::logical_expr::ScalarUDF>) -> Result<Arc<Engine>> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(DATABASE_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // timestamptz columns carry a zone (UTC), as `_timestamp` does.
            .set_str("datafusion.execution.time_zone", "UTC");
        let ctx = SessionContext::new_with_config(config);
        let maintainers = crate::materialized::Maintainers::default();
        let catalog = Arc::new(StreamCatalog::new(streams.clone(), maintainers.results()));
        ctx.register_catalog(DATABASE_NAME, catalog.clone());
        let url = url::Url::parse(SEGMENT_STORE_URL).map_err(|e| Error::Internal(e.to_string()))?;
        ctx.runtime_env().register_object_store(&url, streams.object_store());
        setup_pg_catalog(&ctx, DATABASE_NAME, EmptyContextProvider).map_err(|e| Error::Query(*e))?;
        crate::functions::register(&ctx);
        ctx.add_analyzer_rule(Arc::new(crate::cast::CompleteTimestampText));
        crate::information_schema::register(&ctx);
        for function in crate::vectors::functions().into_iter().chain(functions) {
            ctx.register_udf(function);
        }
        // json_get & co. and the `->` / `->>` operators over json text columns.
        let mut json_functions = ctx.state();
        datafusion_functions_json::register_all(&mut json_functions).map_err(Error::Query)?;
        let ctx = SessionContext::new_with_state(json_functions);
        catalog.set_planner(ctx.state());
        let engine = Arc::new(Engine {
            streams,
            base_state: ctx.state(),
            parser: PostgresCompatibilityParser::new(),
            maintainers,
            translator: OnceLock::new(),
            ask_values: Default::default(),
        });
        crate::materialized::start_all(&engine);
        Ok(engine)
    }

    /// The session state every session starts from (background work plans with it).
    pub(crate) fn base_state(&self) -> SessionState {
        self.base_state.clone()
    }

    /// Gives the engine the translator `ASK` uses; only the first call has effect.
    pub fn set_translator(&self, translator: Arc<dyn Translator>) {
        let _ = self.translator.set(translator);
    }

    pub(crate) fn translator(&self) -> Option<Arc<dyn Translator>> {
        self.translator.get().cloned()
    }

    pub(crate) fn ask_values(&self) -> &crate::ask::ValueCache {
        &self.ask_values
    }

    pub(crate) fn maintainers(&self) -> &crate::materialized::Maintainers {
        &self.maintainers
    }

    pub fn streams(&self) -> &Arc<Streams> {
        &self.streams
    }

    /// Appends rows outside any session transaction (ingest front ends such as gRPC):
    /// like [`Session::ingest`], the batches' columns go to the table columns at
    /// `columns`, cast to their types, missing ones null; all or nothing. Returns where
    /// the rows went once they are durable.
    pub async fn append_rows(
        &self,
        table: &Arc<StreamTable>,
        columns: &[usize],
        batches: Vec<arrow::record_batch::RecordBatch>,
    ) -> Result<Vec<streamhouse_streams::WrittenRange>> {
        crate::materialized::check_writable(table)?;
        let batches = crate::dml::widen_to_table(table, columns, batches)?;
        Ok(self.streams.append_reporting_offsets(vec![TableWrite { table: table.clone(), batches }]).await?.1)
    }

    pub fn session(self: &Arc<Self>) -> Session {
        Session {
            engine: self.clone(),
            ctx: SessionContext::new_with_state(self.base_state.clone()),
            txn: Transaction::default(),
            settings: crate::settings::defaults(),
            cursors: Cursors::default(),
            notices: Vec::new(),
            last_translation: None,
        }
    }

    /// The DataFusion options every new session starts with (`RESET`).
    pub(crate) fn base_options(&self) -> datafusion::config::ConfigOptions {
        self.base_state.config().options().as_ref().clone()
    }

    /// Parses SQL text into statements (Postgres dialect, with pg-compat rewrites), and
    /// StreamHouse's own statements (SUBSCRIBE, FETCH with a timeout).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        if let Some(ask) = crate::ask::parse(sql) {
            return Ok(vec![ask?]);
        }
        if let Some(infer) = crate::infer_schema::parse(sql) {
            return Ok(vec![infer?]);
        }
        if let Some(ours) = crate::subscribe::parse(sql) {
            return Ok(vec![ours?]);
        }
        if let Some(insert) = crate::values_insert::parse_constant_insert(sql) {
            return Ok(vec![insert.into()]);
        }
        // WATERMARK FOR and EMIT ON WINDOW CLOSE: cut out here, put back as options.
        let (text, clauses) = match crate::streaming_clauses::extract(sql) {
            Some(extracted) => {
                let (text, clauses) = extracted?;
                (std::borrow::Cow::Owned(text), clauses)
            }
            None => (std::borrow::Cow::Borrowed(sql), Vec::new()),
        };
        let sql = text.as_ref();
        let mut statements = self.parser.parse(sql).map_err(|e| {
            // The compatibility parser works on tokens without locations; plain sqlparser
            // on the same text says where it failed.
            let located = Parser::parse_sql(&PostgreSqlDialect {}, sql).err().map(|e| e.to_string());
            // A position in the text with a clause cut out would point at the wrong place.
            let position = located.and_then(|m| syntax_error_position(sql, &m)).filter(|_| clauses.is_empty());
            Error::Syntax { message: e.to_string(), position }
        })?;
        if !clauses.is_empty() {
            if clauses.len() != statements.len() {
                return Err(Error::Syntax { message: "could not tell which statement WATERMARK FOR or EMIT ON WINDOW CLOSE belongs to".into(), position: None });
            }
            for (statement, clauses) in statements.iter_mut().zip(clauses) {
                crate::streaming_clauses::apply(statement, clauses)?;
            }
        }
        Ok(statements.into_iter().map(Statement::Sql).collect())
    }
}

/// One client connection's state.
pub struct Session {
    engine: Arc<Engine>,
    pub(crate) ctx: SessionContext,
    txn: Transaction,
    pub(crate) settings: BTreeMap<String, String>,
    cursors: Cursors,
    /// Notices for the client, sent before the statement's result (`take_notices`).
    notices: Vec<String>,
    /// The last `ASK` question and its translation (Describe, then Execute).
    pub(crate) last_translation: Option<(String, crate::ask::Translation)>,
}

impl Session {
    /// Queues a notice for the client.
    pub(crate) fn notice(&mut self, message: String) {
        self.notices.push(message);
    }

    /// The notices the last statements queued, for the front end to send.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn streams(&self) -> &Arc<Streams> {
        &self.engine.streams
    }

    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        self.engine.parse(sql)
    }

    pub fn transaction_status(&self) -> TransactionStatus {
        self.txn.status()
    }

    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.settings.insert(name.to_lowercase(), value.to_string());
    }

    /// A failed COPY inside a transaction block fails the block, as any failed statement.
    pub fn abort_transaction(&mut self) {
        self.txn.fail();
    }

    /// The session's `TimeZone`, in which timestamptz values are shown.
    pub fn time_zone(&self) -> arrow::array::timezone::Tz {
        let utc = || "UTC".parse().expect("UTC is a time zone");
        self.setting("timezone").and_then(|z| z.parse().ok()).unwrap_or_else(utc)
    }

    /// A setting's current value (`SHOW x`, ParameterStatus).
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// Executes one statement. `params` are the bound values of the `$n` parameters.
    pub async fn execute(&mut self, statement: &Statement, params: Option<&ParamValues>) -> Result<Output> {
        let ends_transaction = matches!(statement, Statement::Sql(SqlStatement::Rollback { .. } | SqlStatement::Commit { .. }));
        self.txn.note_read_failures();
        if self.txn.is_failed() && !ends_transaction {
            return Err(Error::TransactionAborted);
        }
        if !matches!(statement, Statement::Ask(_)) {
            // A translation kept for an ASK's Execute is stale after anything else.
            self.last_translation = None;
        }
        // Every path that plans (INSERT … SELECT, COPY, cursors, ASK) sees the block's
        // writes as they are now, and none after COMMIT or ROLLBACK.
        self.share_pending_writes();
        let limit = self.setting(statement_timeout::SETTING).and_then(statement_timeout::limit);
        let run = async {
            match limit.filter(|_| statement_timeout::applies_to(statement)) {
                Some(limit) => {
                    let deadline = tokio::time::Instant::now() + limit;
                    match tokio::time::timeout_at(deadline, self.dispatch(statement, params)).await {
                        Ok(result) => result.map(|output| statement_timeout::bind_rows(output, deadline)),
                        Err(_) => Err(statement_timeout::timed_out()),
                    }
                }
                None => self.dispatch(statement, params).await,
            }
        };
        // A bug that panics while a statement is planned or run is that statement's
        // internal error (XX000); the connection and its session go on.
        let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run))
            .await
            .unwrap_or_else(|panic| Err(Error::from_panic("the statement", panic)));
        match result {
            Ok(output) => Ok(self.txn.watch(output)),
            Err(e) => {
                self.txn.fail();
                Err(e)
            }
        }
    }

    async fn dispatch(&mut self, statement: &Statement, params: Option<&ParamValues>) -> Result<Output> {
        match statement {
            Statement::Sql(sql) => self.dispatch_sql(sql, params).await,
            Statement::Subscribe(subscribe) => Box::pin(self.subscribe(subscribe)).await,
            Statement::Fetch(fetch) => Box::pin(self.fetch(fetch)).await,
            Statement::ShowMaterializedViews => crate::materialized::show(self),
            Statement::Ask(ask) => Box::pin(self.ask(ask)).await,
            Statement::InferSchema(infer) => Box::pin(self.infer_schema(infer)).await,
        }
    }

    /// Heavy arms are boxed so this future, which every statement (the one-row INSERT
    /// too) builds and moves, stays small.
    async fn dispatch_sql(&mut self, statement: &SqlStatement, params: Option<&ParamValues>) -> Result<Output> {
        use SqlStatement as Statement;
        match statement {
            Statement::StartTransaction { .. } => Ok(self.begin()),
            Statement::Commit { .. } => Box::pin(self.commit()).await,
            Statement::Rollback { savepoint: None, .. } => Ok(self.rollback()),
            Statement::Rollback { savepoint: Some(name), .. } => {
                self.txn.rollback_to(&normalize(name))?;
                Ok(Output::Command(CommandTag::new("ROLLBACK")))
            }
            Statement::Savepoint { name } => {
                self.txn.savepoint(&normalize(name))?;
                Ok(Output::Command(CommandTag::new("SAVEPOINT")))
            }
            Statement::ReleaseSavepoint { name } => {
                self.txn.release(&normalize(name))?;
                Ok(Output::Command(CommandTag::new("RELEASE")))
            }
            Statement::CreateTable(create) => match &create.query {
                Some(query) => Box::pin(crate::create_as::create_table_as(self, create, query)).await,
                None => Box::pin(crate::ddl::create_table(self, create)).await,
            },
            Statement::CreateView(create) => Box::pin(crate::views::create_view(self, create)).await,
            Statement::Drop { object_type: ObjectType::MaterializedView, if_exists, names, cascade, .. } => {
                Box::pin(crate::materialized::drop(self, names, *if_exists, *cascade)).await
            }
            Statement::Drop { object_type: ObjectType::View, if_exists, names, cascade, .. } => {
                Box::pin(crate::views::drop_views(self, names, *if_exists, *cascade)).await
            }
            Statement::Comment { object_type, object_name, comment, if_exists } => {
                crate::comments::comment_on(self, object_type, object_name, comment.as_deref(), *if_exists).await
            }
            Statement::CreateSchema { schema_name, if_not_exists, .. } => {
                Box::pin(crate::ddl::create_schema(self, schema_name, *if_not_exists)).await
            }
            Statement::Drop { object_type, if_exists, names, cascade, .. } => {
                Box::pin(crate::ddl::drop(self, object_type, *if_exists, names, *cascade)).await
            }
            Statement::Insert(insert) => {
                let writes = match ValuesInsert::plan(self, insert)? {
                    Some(values) => values.execute(params)?,
                    None => Box::pin(crate::dml::insert(self, insert, params)).await?,
                };
                let rows: u64 = writes.batches.iter().map(|b| b.num_rows() as u64).sum();
                self.write(vec![writes]).await?;
                Ok(Output::Command(CommandTag::with_rows("INSERT", rows)))
            }
            Statement::Update(_) => Err(Error::not_supported(
                "UPDATE is not supported on stream tables",
                "stream tables are append-only: INSERT a new row instead; a table with cleanup = 'compact' keeps the last row per key",
            )),
            Statement::Delete(_) => Err(Error::not_supported(
                "DELETE is not supported on stream tables",
                "stream tables are append-only: rows leave by retention (WITH (retention = '7 days')) or DROP TABLE",
            )),
            Statement::Copy { source, to, target, options, legacy_options, .. } => {
                Box::pin(crate::dml::copy(self, source, *to, target, options, legacy_options, params)).await
            }
            Statement::Set(set) => crate::settings::set(self, set),
            Statement::Reset(reset) => crate::settings::reset(self, reset),
            Statement::ShowVariable { variable } => Box::pin(crate::settings::show(self, variable)).await,
            Statement::ShowTables { .. } => Box::pin(crate::settings::show_tables(self)).await,
            Statement::ExplainTable { table_name, .. } => Box::pin(crate::settings::describe(self, table_name)).await,
            Statement::Declare { stmts } => Box::pin(self.declare(stmts, params)).await,
            Statement::Close { cursor } => {
                let (name, tag) = match cursor {
                    CloseCursor::All => (None, "CLOSE CURSOR ALL"),
                    CloseCursor::Specific { name } => (Some(normalize(name)), "CLOSE CURSOR"),
                };
                self.cursors.close(name.as_deref())?;
                Ok(Output::Command(CommandTag::new(tag)))
            }
            Statement::Discard { .. } | Statement::Deallocate { .. } => Ok(Output::Command(CommandTag::new(
                statement.to_string().split_whitespace().next().unwrap_or("DISCARD").to_uppercase(),
            ))),
            _ => match crate::create_as::select_into_as_create(statement) {
                Some((create, query)) => Box::pin(crate::create_as::create_table_as(self, &create, &query)).await,
                None => Box::pin(self.query(statement, params)).await,
            },
        }
    }

    /// What the extended protocol's Describe reports: the parameter types (`$1`, `$2`…)
    /// and, for statements that return rows, their columns.
    pub async fn describe(&mut self, statement: &Statement) -> Result<Description> {
        if self.txn.is_failed() && matches!(statement, Statement::Ask(_)) {
            return Err(Error::TransactionAborted);
        }
        self.share_pending_writes();
        match statement {
            Statement::Sql(sql) => self.describe_sql(sql).await,
            Statement::Subscribe(SubscribeStatement { subscribe, delivery: Delivery::Rows }) => {
                let (_, plan) = crate::subscribe::plan(self, subscribe).await?;
                Ok(Description { parameters: Vec::new(), columns: Some(Arc::new(plan.schema().as_arrow().clone())) })
            }
            Statement::Subscribe(_) => Ok(Description::default()),
            Statement::Fetch(fetch) => Ok(Description { parameters: Vec::new(), columns: Some(self.cursors.schema(&fetch.cursor)?) }),
            Statement::ShowMaterializedViews => match crate::materialized::show(self)? {
                Output::Rows(rows) => Ok(Description { parameters: Vec::new(), columns: Some(rows.schema()) }),
                _ => Ok(Description::default()),
            },
            Statement::Ask(ask) => Ok(Description { parameters: Vec::new(), columns: Some(self.describe_ask(ask).await?) }),
            Statement::InferSchema(infer) => Ok(Description { parameters: Vec::new(), columns: Session::describe_infer_schema(infer) }),
        }
    }

    async fn describe_sql(&mut self, statement: &SqlStatement) -> Result<Description> {
        use SqlStatement as Statement;
        let from_plan = |plan: &LogicalPlan, rows: bool| -> Result<Description> {
            Ok(Description {
                parameters: ordered_parameter_types(plan)?,
                columns: rows.then(|| Arc::new(plan.schema().as_arrow().clone())),
            })
        };
        match statement {
            // SELECT … INTO creates a table and returns no rows (a command).
            Statement::Query(_) if crate::create_as::select_into_as_create(statement).is_some() => Ok(Description::default()),
            Statement::Query(_) | Statement::Explain { .. } => from_plan(&self.logical_plan(statement).await?, true),
            Statement::Insert(insert) => match ValuesInsert::plan(self, insert)? {
                Some(values) => Ok(Description { parameters: values.parameter_types(), columns: None }),
                None => from_plan(&crate::dml::insert_plan(self, insert).await?, false),
            },
            // No side effects: running them is the honest way to know their columns.
            Statement::ShowVariable { .. } | Statement::ShowTables { .. } | Statement::ExplainTable { .. } => {
                match self.dispatch_sql(statement, None).await? {
                    Output::Rows(stream) => Ok(Description { parameters: Vec::new(), columns: Some(stream.schema()) }),
                    _ => Ok(Description::default()),
                }
            }
            _ => Ok(Description::default()),
        }
    }

    /// Runs a query through DataFusion and streams its rows.
    async fn query(&mut self, statement: &SqlStatement, params: Option<&ParamValues>) -> Result<Output> {
        let mut plan = self.logical_plan(statement).await?;
        if let Some(params) = params {
            plan = plan.with_param_values(params.clone())?;
        }
        let df = self.ctx.execute_logical_plan(plan).await?;
        Ok(Output::Rows(df.execute_stream().await?))
    }

    /// Runs one query written by the server itself (bookkeeping reads, samples) to completion.
    pub(crate) async fn query_batches(&mut self, sql: &str) -> Result<Vec<arrow::record_batch::RecordBatch>> {
        let statement = match self.parse(sql)?.as_slice() {
            [Statement::Sql(statement)] => statement.clone(),
            _ => return Err(Error::Internal(format!("not one query: {sql}"))),
        };
        let plan = self.logical_plan(&statement).await?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        Ok(futures::TryStreamExt::try_collect(df.execute_stream().await?).await?)
    }

    /// Plans a statement after hiding system columns from wildcards. The scans it plans see
    /// this session's uncommitted writes (shared at the start of `execute` and `describe`).
    pub(crate) async fn logical_plan(&self, statement: &SqlStatement) -> Result<LogicalPlan> {
        plan_statement(&self.ctx.state(), &self.engine.streams, statement, &self.default_schema()).await
    }

    /// Puts the transaction block's pending writes where this session's scans look for them.
    fn share_pending_writes(&self) {
        let pending = PendingRows::of(self.txn.pending_writes());
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let config = state.config_mut();
        if !pending.is_empty() || config.get_extension::<PendingRows>().is_some_and(|p| !p.is_empty()) {
            config.set_extension(Arc::new(pending));
        }
    }

    pub(crate) fn default_schema(&self) -> String {
        self.settings
            .get("search_path")
            .and_then(|p| p.split(',').map(|s| s.trim().trim_matches('"')).find(|s| !s.is_empty() && *s != "\"$user\"" && *s != "$user"))
            .filter(|s| self.engine.streams.schema_exists(s))
            .unwrap_or(DEFAULT_SCHEMA)
            .to_string()
    }

    /// Looks up a stream table by SQL name.
    pub fn resolve_table(&self, name: &ObjectName) -> Result<Arc<StreamTable>> {
        let (schema, table) =
            resolve_name(name, &self.default_schema()).ok_or_else(|| Error::UndefinedTable(name.to_string()))?;
        self.engine.streams.table(&schema, &table).ok_or_else(|| Error::UndefinedTable(name.to_string()))
    }

    /// Appends now, or holds the rows until COMMIT inside a transaction block.
    pub async fn write(&mut self, writes: Vec<TableWrite>) -> Result<()> {
        for w in &writes {
            crate::materialized::check_writable(&w.table)?;
        }
        if let Some(now) = self.txn.hold(writes)? {
            self.engine.streams.append(now).await?;
        }
        Ok(())
    }

    /// `COPY FROM STDIN` data has been decoded: append it like an INSERT.
    pub async fn copy_in(&mut self, target: &CopyIn, batches: Vec<arrow::record_batch::RecordBatch>) -> Result<u64> {
        self.ingest(&target.table, &target.columns, batches).await
    }

    /// Appends decoded batches (COPY, Flight bulk ingest) like one INSERT: each batch's
    /// columns go to the table columns at `columns`, cast to their types; missing columns
    /// are null. All or nothing; returns the row count.
    pub async fn ingest(
        &mut self,
        table: &Arc<StreamTable>,
        columns: &[usize],
        batches: Vec<arrow::record_batch::RecordBatch>,
    ) -> Result<u64> {
        let batches = crate::dml::widen_to_table(table, columns, batches)?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let result = self.write(vec![TableWrite { table: table.clone(), batches }]).await;
        if result.is_err() {
            self.txn.fail();
        }
        result.map(|_| rows)
    }

    /// `SUBSCRIBE`, `COPY (SUBSCRIBE …) TO STDOUT`, `DECLARE … CURSOR FOR SUBSCRIBE`.
    async fn subscribe(&mut self, statement: &SubscribeStatement) -> Result<Output> {
        match &statement.delivery {
            Delivery::Rows => Ok(Output::Feed { rows: crate::subscribe::execute(self, &statement.subscribe).await?, copy: None }),
            Delivery::Copy(copy) => {
                let SqlStatement::Copy { options, legacy_options, .. } = copy.as_ref() else {
                    return Err(Error::Internal("COPY delivery without a COPY statement".into()));
                };
                let format = crate::copy::CopyFormat::from_options(options, legacy_options)?;
                let rows = crate::subscribe::execute(self, &statement.subscribe).await?;
                Ok(Output::Feed { rows, copy: Some(format) })
            }
            Delivery::Cursor { name, hold } => {
                self.require_block_for_cursor(*hold)?;
                let rows = crate::subscribe::execute(self, &statement.subscribe).await?;
                self.cursors.declare(name, rows, *hold, true, self.txn.status() != TransactionStatus::Idle)?;
                Ok(Output::Command(CommandTag::new("DECLARE CURSOR")))
            }
        }
    }

    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    async fn declare(&mut self, declarations: &[Declare], params: Option<&ParamValues>) -> Result<Output> {
        for declare in declarations {
            let (Some(query), [name]) = (&declare.for_query, declare.names.as_slice()) else {
                return Err(Error::not_supported("DECLARE declares cursors only", "DECLARE name CURSOR FOR query"));
            };
            if declare.binary == Some(true) || declare.scroll == Some(true) {
                return Err(Error::not_supported("cursors are forward-only text cursors", "declare it without BINARY and SCROLL"));
            }
            let hold = declare.hold == Some(true);
            self.require_block_for_cursor(hold)?;
            let Output::Rows(rows) = self.query(&SqlStatement::Query(query.clone()), params).await? else {
                return Err(Error::Internal("a query gave no rows".into()));
            };
            self.cursors.declare(&normalize(name), rows, hold, false, self.txn.status() != TransactionStatus::Idle)?;
        }
        Ok(Output::Command(CommandTag::new("DECLARE CURSOR")))
    }

    /// As in PostgreSQL, a cursor without HOLD belongs to a transaction block.
    fn require_block_for_cursor(&self, hold: bool) -> Result<()> {
        if hold || self.txn.status() == TransactionStatus::InBlock {
            return Ok(());
        }
        Err(Error::NoActiveTransaction("DECLARE CURSOR can only be used in transaction blocks".into()))
    }

    /// The columns of an open cursor (a driver describing it as a portal).
    pub fn cursor_schema(&mut self, name: &str) -> Result<SchemaRef> {
        self.cursors.schema(name)
    }

    async fn fetch(&mut self, fetch: &Fetch) -> Result<Output> {
        let schema = self.cursors.schema(&fetch.cursor)?;
        let batches = self.cursors.fetch(fetch).await?;
        let rows = datafusion::physical_plan::memory::MemoryStream::try_new(batches, schema, None)?;
        Ok(Output::Rows(Box::pin(rows)))
    }

    fn begin(&mut self) -> Output {
        self.txn.begin();
        Output::Command(CommandTag { tag: "BEGIN".into(), rows: None, transaction: TransactionEffect::Begin })
    }

    async fn commit(&mut self) -> Result<Output> {
        let end = |tag: &str| Output::Command(CommandTag { tag: tag.into(), rows: None, transaction: TransactionEffect::End });
        match self.txn.commit() {
            Ending::RolledBack => {
                self.cursors.end_transaction(false);
                Ok(end("ROLLBACK"))
            }
            Ending::Commit(writes) => {
                self.cursors.end_transaction(true);
                self.engine.streams.append(writes).await?;
                Ok(end("COMMIT"))
            }
        }
    }

    fn rollback(&mut self) -> Output {
        self.txn.rollback();
        self.cursors.end_transaction(false);
        Output::Command(CommandTag { tag: "ROLLBACK".into(), rows: None, transaction: TransactionEffect::End })
    }
}

/// Parameter and result types of a statement, for the extended protocol's Describe.
#[derive(Debug, Default, Clone)]
pub struct Description {
    pub parameters: Vec<Option<DataType>>,
    pub columns: Option<SchemaRef>,
}

/// `$1, $2, …` in order, with the types DataFusion inferred.
fn ordered_parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>> {
    let mut entries: Vec<(usize, Option<DataType>)> = plan
        .get_parameter_types()?
        .into_iter()
        .filter_map(|(id, t)| id.trim_start_matches('$').parse::<usize>().ok().map(|n| (n, t)))
        .collect();
    entries.sort_by_key(|(n, _)| *n);
    let mut out = vec![None; entries.last().map(|(n, _)| *n).unwrap_or(0)];
    for (n, t) in entries {
        if n >= 1 {
            out[n - 1] = t;
        }
    }
    Ok(out)
}

/// Plans a statement the way every query is planned: window table functions (TUMBLE,
/// HOP, SESSION) become SQL, missing relations are 42P01, system columns are hidden from
/// wildcards, result columns get PostgreSQL's names. Unqualified names resolve in
/// `default_schema`.
pub(crate) async fn plan_statement(
    state: &SessionState,
    streams: &Arc<Streams>,
    statement: &SqlStatement,
    default_schema: &str,
) -> Result<LogicalPlan> {
    let mut statement = statement.clone();
    crate::windows::rewrite_windows(&mut statement)?;
    crate::information_schema::rewrite(&mut statement);
    crate::relations::check_relations(&statement, &|name| {
        // Only names that land in one of our schemas can be judged here; the rest
        // (pg_catalog, information_schema) are DataFusion's to resolve.
        resolve_name(name, default_schema).is_some_and(|(s, t)| {
            streams.schema_exists(&s) && streams.table(&s, &t).is_none() && streams.view(&s, &t).is_none() && !builtin_relation(&t)
        })
    })?;
    hide_system_columns(&mut statement, &|name| {
        // A change-log view's result has no system columns (its change log does).
        resolve_name(name, default_schema)
            .is_some_and(|(s, t)| streams.table(&s, &t).is_some_and(|t| !crate::materialized::is_change_log_view(&t)))
    });
    crate::naming::postgres_column_names(&mut statement);
    crate::naming::alias_names_function_column(&mut statement);
    Ok(state.statement_to_plan(DfStatement::Statement(Box::new(statement))).await?)
}

/// sqlparser reports `... at Line: L, Column: C`; PostgreSQL reports a 1-based character
/// position in the statement text, which psql turns into a caret under the error.
pub(crate) fn syntax_error_position(sql: &str, message: &str) -> Option<usize> {
    let at = message.rfind("at Line: ")?;
    let (line, column) = message[at + "at Line: ".len()..].split_once(", Column: ")?;
    let line: usize = line.trim().parse().ok()?;
    let column: usize = column.trim().trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()?;
    let preceding: usize = sql.split('\n').take(line.checked_sub(1)?).map(|l| l.chars().count() + 1).sum();
    Some(preceding + column)
}

fn builtin_relation(table: &str) -> bool {
    table.starts_with("pg_") || matches!(table, "tables" | "columns" | "views" | "schemata" | "df_settings")
}

/// `[db.][schema.]table` → (schema, table), folding unquoted identifiers.
pub fn resolve_name(name: &ObjectName, default_schema: &str) -> Option<(String, String)> {
    let parts: Vec<String> = name.0.iter().map(|p| p.as_ident().map(normalize)).collect::<Option<_>>()?;
    match parts.as_slice() {
        [t] => Some((default_schema.to_string(), t.clone())),
        [s, t] => Some((s.clone(), t.clone())),
        [_db, s, t] => Some((s.clone(), t.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::syntax_error_position;

    #[test]
    fn line_and_column_become_a_character_position() {
        let sql = "SELECT 1\nFRM t";
        let found = "sql parser error: Expected: end of statement, found: FRM at Line: 2, Column: 1";
        assert_eq!(syntax_error_position(sql, found), Some(10));
        let found = "Expected: an SQL statement, found: SELEC at Line: 1, Column: 1";
        assert_eq!(syntax_error_position("SELEC 1", found), Some(1));
        assert_eq!(syntax_error_position("x", "no position here"), None);
    }
}
