//! Materialized views: `CREATE MATERIALIZED VIEW v AS query`, kept up to date by a
//! background maintainer as rows arrive, exactly once across crashes.
//!
//! The view's rows live in a stream table named like the view (so `SELECT` and
//! `SUBSCRIBE` read it as any table). Its maintainer follows each partition of each
//! source table ([`inputs`], [`Streams::read_partition`], bounded chunks), runs the
//! view's plan over each chunk (the source's scans swapped for the chunk), and appends
//! the result rows *together with* the chunk's end position, as a row of
//! [`PROGRESS_SCHEMA`].[`PROGRESS_TABLE`], in one append: one WAL record. After a crash
//! the view and its progress are both there or both not, and the maintainer resumes
//! from the progress it finds: no row is lost or applied twice. Creation backfills the
//! sources' existing rows before it returns.
//!
//! Maintained incrementally: filters and projections of stream tables, UNION ALL and
//! inner joins of them (here), and one aggregation of such rows, with or without GROUP BY
//! and HAVING ([`aggregate`]). Over a source with a watermark, late rows are dropped and
//! counted ([`event_time`]), `EMIT ON WINDOW CLOSE` holds each window's row until the
//! watermark passes its end, and an interval join lets go of the rows no admitted row can
//! match any more ([`interval`]). Window functions partitioned by key (SESSION windows)
//! are recomputed per touched key ([`keyed`]). A source may be another view whose rows change (a change
//! log, [`inputs::is_change_log`]): aggregations keep their groups' input rows, views of
//! rows become change logs themselves ([`rows`]); a query nesting aggregations is made
//! into such views ([`parts`]). Any other operator (outer joins, sorts, limits, window
//! functions…) is refused with 0A000 naming it; it is never recomputed behind the
//! user's back.

mod aggregate;
mod checkpoint;
mod event_time;
mod groups;
mod inputs;
mod interval;
mod keyed;
mod maintainable;
mod parts;
mod recovery;
mod registry;
mod result;
mod rows;
mod sessions;
mod show;
mod sources;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::{Int32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{CreateView, Ident, ObjectName};
use streamhouse_streams::{MaterializedView, StreamTable, Streams, TableOptions, TableWrite};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::output::{CommandTag, Output};
use crate::provider::StreamTableProvider;
use crate::session::{plan_statement, resolve_name, Engine, Session};

use aggregate::{AggregatePlan, AggregateResult, CHANGE_COLUMN, STATE_TABLE_PREFIX};
use event_time::{event_time_schema, EventTime, EVENT_TIME_TABLE};
use inputs::{is_change_log, over_chunk, Chunk, Inputs};
pub(crate) use registry::{Maintainers, ViewResults};
pub(crate) use result::CurrentRowsProvider;
use result::CurrentRows;
use interval::Retention;
use keyed::KeyedRows;
use sessions::SessionClosing;
pub use show::show;
use maintainable::{has_join, keyed_sources, maintainable, refuse_changing_functions};
use rows::{LatestByKey, Multiset, RowsResult, RowsStep};

/// Where maintainers record how far they have read their source.
pub const PROGRESS_SCHEMA: &str = "streamhouse";
pub const PROGRESS_TABLE: &str = "mv_progress";
/// Source rows per partition per maintenance step (one append).
const CHUNK_ROWS: usize = 65_536;
/// How long a maintainer waits after a failed step before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A change-log view's result columns (its change log's, without `_change`); `None`
/// for other tables.
pub(crate) fn result_columns(table: &StreamTable) -> Option<SchemaRef> {
    is_change_log_view(table).then(|| result::result_columns(table))
}

/// `SELECT` over an `EMIT ON WINDOW CLOSE` view: its change log holds each closed
/// window's final row once (inserts only), so the result is that log without `_change`
/// (read from storage: closed windows are no longer in memory).
pub(crate) fn emitted_rows(streams: &Arc<Streams>, table: &Arc<StreamTable>) -> Option<datafusion::error::Result<Arc<dyn datafusion::datasource::TableProvider>>> {
    if !table.options().materialized.as_ref().is_some_and(|m| m.emit_on_window_close) {
        return None;
    }
    let plan = || {
        let log = provider_as_source(Arc::new(StreamTableProvider::new(streams.clone(), table.clone())));
        let columns = result::result_columns(table).fields().iter().map(|f| datafusion::prelude::Expr::Column(datafusion::common::Column::new_unqualified(f.name()))).collect::<Vec<_>>();
        let plan = datafusion::logical_expr::LogicalPlanBuilder::scan(table.name(), log, None)?.project(columns)?.build()?;
        Ok(Arc::new(datafusion::catalog::view::ViewTable::new(plan, None)) as Arc<dyn datafusion::datasource::TableProvider>)
    };
    Some(plan())
}

/// Whether `table` holds an aggregating view's change log (and has a state table).
pub(crate) fn is_aggregating_view(table: &StreamTable) -> bool {
    table.options().materialized.as_ref().is_some_and(|m| m.state_table_id.is_some())
}

/// Whether `table` holds a view's change log, its current rows kept in memory for
/// `SELECT`: an aggregating view, or a view of rows over another change log.
pub(crate) fn is_change_log_view(table: &StreamTable) -> bool {
    is_aggregating_view(table) || table.options().materialized.as_ref().is_some_and(|m| m.change_log)
}

/// One view's maintenance state, shared with `SHOW MATERIALIZED VIEWS`.
struct Maintainer {
    view: Arc<StreamTable>,
    inputs: Inputs,
    /// Next source offset to apply, per input.
    positions: Mutex<Vec<i64>>,
    /// Set once the maintainer has recovered what it holds after a start: until then its
    /// lag is unknown (positions are read first, the rows held are rebuilt after).
    recovered: AtomicBool,
    /// Source rows per step: halved when a step's rows exceed one WAL record.
    chunk_rows: AtomicUsize,
    /// When the last step applied rows (ms since the epoch; 0: never).
    applied_at_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
    stop: AtomicBool,
    wake: tokio::sync::Notify,
    /// Set for aggregating views: their groups, and the table their states are logged in.
    aggregate: Option<(Arc<AggregateResult>, Arc<StreamTable>)>,
    /// State rows written since the last checkpoint of the groups ([`checkpoint`]).
    state_rows_written: AtomicUsize,
    /// Set when a source has a watermark: the event time applied so far.
    event_time: Option<Mutex<EventTime>>,
    /// `EMIT ON WINDOW CLOSE`: windows are held until the watermark passes their end.
    emit_on_window_close: bool,
    /// For a view with a join: per source, the rows applied so far (what each new chunk
    /// of another source joins with). Rebuilt from the sources at start.
    applied: Mutex<Option<Vec<Vec<RecordBatch>>>>,
    /// For a view with a join: per source that is a change log, its current rows (what
    /// `applied` then holds, as one batch).
    applied_current: Mutex<Vec<Option<Multiset>>>,
    /// For a join of two tables with watermarks: how long each side's applied rows may
    /// still be matched ([`interval`]); rows past that are let go after each step.
    retention: Mutex<Retention>,
    /// For a view with window functions partitioned by key: each key's source and result rows.
    keyed: Mutex<Option<KeyedRows>>,
    /// Set for views of rows over a change log: their current rows.
    rows: Option<Arc<RowsResult>>,
    /// Per input of a key-compacted table: its latest rows so far (what a row replaces).
    latest: Mutex<Vec<Option<LatestByKey>>>,
}

/// Starts the maintainers of every existing materialized view (server start), and drops
/// state tables no view refers to (left by a crash between creating a view's state
/// table and the view).
pub(crate) fn start_all(engine: &Arc<Engine>) {
    let tables = engine.streams().tables();
    let referenced: std::collections::HashSet<i64> =
        tables.iter().filter_map(|t| t.options().materialized.as_ref().and_then(|m| m.state_table_id)).collect();
    for orphan in tables.iter().filter(|t| is_state_table(t) && !referenced.contains(&t.id())) {
        let (streams, id) = (engine.streams().clone(), orphan.id());
        tokio::spawn(async move { drop_state_table(&streams, Some(id)).await });
    }
    for table in engine.streams().tables() {
        if let Some(mv) = table.options().materialized.clone() {
            if let Err(e) = start(engine, table.clone(), &mv) {
                warn!(view = table.name(), error = %e, "materialized view not maintained");
            }
        }
    }
}

/// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v AS query`.
pub async fn create(session: &Session, create: &CreateView) -> Result<Output> {
    let tag = || Output::Command(CommandTag::new("CREATE MATERIALIZED VIEW"));
    let streams = session.streams().clone();
    let (schema, name) = resolve_name(&create.name, &session.default_schema())
        .ok_or_else(|| Error::InvalidParameter(format!("bad view name {}", create.name)))?;
    if !streams.schema_exists(&schema) {
        return Err(Error::UndefinedSchema(schema));
    }
    if streams.table(&schema, &name).is_some() || streams.view(&schema, &name).is_some() {
        if create.if_not_exists {
            return Ok(tag());
        }
        return Err(Error::DuplicateTable(name));
    }
    if create.or_replace {
        return Err(Error::not_supported("CREATE OR REPLACE MATERIALIZED VIEW is not supported", "DROP MATERIALIZED VIEW, then CREATE it again"));
    }
    let columns: Vec<String> = create.columns.iter().map(|c| c.name.to_string()).collect();
    let definition = crate::views::definition_sql(&create.query, &columns);
    match create_planned(session, create, &schema, &name, &definition, Vec::new()).await {
        // Refused as it stands: with its aggregating subqueries made into views of their own?
        Err(refused @ Error::NotSupported { .. }) => {
            let Some((query, parts)) = parts::split(session, &schema, &name, &create.query).await? else { return Err(refused) };
            // Dropped again if the statement is cancelled before the view exists.
            let guard = parts::PartsGuard::new(session, &schema, parts.clone());
            let ids = parts.iter().filter_map(|p| streams.table(&schema, p).map(|t| t.id())).collect();
            let definition = crate::views::definition_sql(&query, &columns);
            let created = create_planned(session, create, &schema, &name, &definition, ids).await;
            if created.is_err() {
                parts::drop_parts(session, &schema, &parts).await;
            }
            guard.disarm();
            created
        }
        other => other,
    }
}

/// Creates the view of `definition` (the query as given, or reading its parts), refusing
/// what cannot be maintained.
async fn create_planned(session: &Session, create: &CreateView, schema: &str, name: &str, definition: &str, parts: Vec<i64>) -> Result<Output> {
    let tag = || Output::Command(CommandTag::new("CREATE MATERIALIZED VIEW"));
    let streams = session.streams().clone();
    let (schema, name, definition) = (schema.to_string(), name.to_string(), definition.to_string());
    let emit_on_window_close = emit_option(&create.options)?;
    let plan = plan_definition(session.engine(), &definition, &schema).await?;
    // Window functions (SESSION windows among them) are recomputed per key, as a whole plan.
    let windowed = keyed::has_window_functions(&plan);
    let aggregate = if windowed { None } else { aggregate::aggregate_node(&plan) };
    let sources = if windowed { keyed_sources(&plan)? } else { maintainable(aggregate.map(|a| a.inputs()[0]).unwrap_or(&plan))? };
    // A view of rows over a change log loses rows too: its table is a change log as well,
    // and so is a view whose rows a later row may change.
    let change_log = windowed || (aggregate.is_none() && sources.iter().any(|s| is_change_log(s)));
    if sources.iter().any(|s| is_change_log(s)) {
        refuse_changing_functions(aggregate.map(|a| a.inputs()[0]).unwrap_or(&plan))?;
        // Late rows are dropped as they arrive, but a change log's readers rebuild their
        // rows from the sources at start, where no row is late.
        if let Some(table) = sources.iter().find(|t| t.options().watermark.is_some()) {
            return Err(Error::not_supported(
                format!("materialized views cannot read {}, which has a watermark, together with a view whose rows change, yet", table.name()),
                "make the part over the watermarked table a materialized view of its own and read it",
            ));
        }
    }
    if emit_on_window_close {
        if windowed {
            // A window over rows never closes; sessions do, when they can be told apart.
            SessionClosing::of(&plan, &sources[0]).map_err(|why| {
                Error::not_supported(
                    format!("EMIT ON WINDOW CLOSE cannot tell when this view's windows close: {why}"),
                    "use SESSION windows over the watermark column, grouped by the key and window_start or window_end",
                )
            })?;
        } else if aggregate.is_none() {
            return Err(Error::InvalidObjectDefinition(
                "EMIT ON WINDOW CLOSE needs an aggregation per window (GROUP BY window_end over TUMBLE or HOP), or SESSION windows".into(),
            ));
        }
        if let Some(source) = sources.iter().find(|s| s.options().watermark.is_none()) {
            return Err(Error::InvalidObjectDefinition(format!(
                "EMIT ON WINDOW CLOSE needs a watermark on {}: add WATERMARK FOR ts AS ts - INTERVAL '…' to its CREATE TABLE",
                source.name()
            )));
        }
        // A window over another column could still get rows after the watermark passed
        // its end: it would not be final when emitted.
        let watermarked: Vec<String> = sources.iter().filter_map(|s| s.options().watermark.as_ref().map(|w| w.column.clone())).collect();
        let windows = crate::windows::window_time_columns(&crate::catalog::parse_view_definition(&definition)?);
        if windows.is_empty() || windows.iter().any(|c| !watermarked.contains(c)) {
            return Err(Error::InvalidObjectDefinition(format!(
                "EMIT ON WINDOW CLOSE needs TUMBLE, HOP or SESSION windows over the watermark column ({}), grouped by window_end (SESSION: by window_start or window_end)",
                watermarked.join(", ")
            )));
        }
    }
    let mut columns = crate::create_as::storable_columns(plan.schema().as_arrow())?;

    ensure_progress_table(&streams).await?;
    let mut state_table_id = None;
    if (aggregate.is_some() || change_log) && columns.field_with_name(CHANGE_COLUMN).is_ok() {
        return Err(Error::InvalidParameter(format!(
            "column name \"{CHANGE_COLUMN}\" is reserved for the view's change log; give it another name with AS"
        )));
    }
    if change_log {
        let mut fields: Vec<_> = columns.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(CHANGE_COLUMN, DataType::Utf8, false)));
        columns = Schema::new(fields);
    }
    if aggregate.is_some() {
        let planned = AggregatePlan::new(session.engine(), &plan, &sources, emit_on_window_close).await?;
        let mut fields: Vec<_> = columns.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(CHANGE_COLUMN, DataType::Utf8, false)));
        columns = Schema::new(fields);
        // Named uniquely (the view has no id yet); the view's options point at it.
        let state_name = format!("{STATE_TABLE_PREFIX}{}", SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        streams.create_table(PROGRESS_SCHEMA, &state_name, &planned.state_table_columns(), &TableOptions::default(), false).await?;
        state_table_id = streams.table(PROGRESS_SCHEMA, &state_name).map(|t| t.id());
    }
    let options = TableOptions {
        partitions: 1,
        materialized: Some(MaterializedView {
            definition,
            source_table_id: sources[0].id(),
            source_table_ids: sources.iter().map(|s| s.id()).collect(),
            state_table_id,
            emit_on_window_close,
            change_log,
            parts,
        }),
        ..Default::default()
    };
    if let Err(e) = streams.create_table(&schema, &name, &columns, &options, false).await {
        drop_state_table(&streams, state_table_id).await;
        return Err(e.into());
    }
    let view = streams.table(&schema, &name).ok_or_else(|| Error::Internal("the view's table vanished".into()))?;
    let mut maintainer = start(session.engine(), view.clone(), options.materialized.as_ref().expect("set above"))?;
    // Backfill: the rows the sources hold now are in the view before CREATE returns.
    let mut targets = maintainer.inputs.high_watermarks(&streams)?;
    // A failing step is retried by the maintainer (and shown by SHOW MATERIALIZED VIEWS);
    // the statement can be cancelled while it waits.
    loop {
        // A source that gained partitions meanwhile restarted maintenance: follow the successor.
        if let Some(current) = session.engine().maintainers().get(view.id()) {
            if !Arc::ptr_eq(&current, &maintainer) {
                targets = current.inputs.high_watermarks(&streams)?;
                maintainer = current;
            }
        }
        let caught_up = maintainer.positions().iter().zip(&targets).all(|(at, target)| at >= target);
        if caught_up {
            break;
        }
        if maintainer.stopped() {
            return Err(Error::UndefinedTable(format!("{name} (dropped while it was being created)")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    info!(view = name, sources = sources.len(), "materialized view created");
    Ok(tag())
}

/// `DROP MATERIALIZED VIEW [IF EXISTS] v, … [CASCADE]` (CASCADE drops the plain views
/// reading it; materialized views reading it must be dropped first).
pub async fn drop(session: &Session, names: &[ObjectName], if_exists: bool, cascade: bool) -> Result<Output> {
    for name in names {
        let (schema, view) = resolve_name(name, &session.default_schema()).ok_or_else(|| Error::UndefinedTable(name.to_string()))?;
        match session.streams().table(&schema, &view) {
            Some(table) if table.options().materialized.is_some() => {
                let readers = dependents(session.streams(), &table);
                if !readers.is_empty() {
                    return Err(Error::DependentObjects(format!(
                        "cannot drop materialized view {view} because materialized view {} depends on it",
                        readers.join(", ")
                    )));
                }
                check_parts_unread(session, &table, cascade)?;
                crate::views::drop_dependent_views(session, "materialized view", &schema, &view, cascade).await?;
                session.engine().maintainers().remove(table.id());
                session.streams().drop_table(&schema, &view).await?;
                let mv = table.options().materialized.as_ref();
                drop_state_table(session.streams(), mv.and_then(|m| m.state_table_id)).await;
                // Its parts, last made first (each reads the ones made before it).
                let parts = mv.map(|m| m.parts.clone()).unwrap_or_default();
                for part in parts.iter().rev().filter_map(|id| session.streams().table_by_id(*id)) {
                    let part = ObjectName::from(vec![Ident::with_quote('"', part.schema_name()), Ident::with_quote('"', part.name())]);
                    Box::pin(drop(session, &[part], true, cascade)).await?;
                }
            }
            Some(_) => return Err(Error::WrongObjectType(format!("\"{view}\" is not a materialized view"))),
            None if if_exists => {}
            None => return Err(Error::UndefinedTable(name.to_string())),
        }
    }
    Ok(Output::Command(CommandTag::new("DROP MATERIALIZED VIEW")))
}

/// Before a view with parts is dropped: nothing else reads its parts (checked first, so
/// the DROP does not stop half way, the view gone and its parts left).
fn check_parts_unread(session: &Session, table: &StreamTable, cascade: bool) -> Result<()> {
    let parts = table.options().materialized.as_ref().map(|m| m.parts.clone()).unwrap_or_default();
    let ours: Vec<String> = std::iter::once(table.name().to_string())
        .chain(parts.iter().filter_map(|id| session.streams().table_by_id(*id)).map(|t| t.name().to_string()))
        .collect();
    for part in parts.iter().filter_map(|id| session.streams().table_by_id(*id)) {
        let others: Vec<String> = dependents(session.streams(), &part).into_iter().filter(|r| !ours.contains(r)).collect();
        if !others.is_empty() {
            return Err(Error::DependentObjects(format!(
                "cannot drop materialized view {} because materialized view {} reads its part {}",
                table.name(),
                others.join(", "),
                part.name()
            )));
        }
        let views = crate::views::views_reading(session, part.schema_name(), part.name())?;
        if !cascade && !views.is_empty() {
            let listed = views.iter().map(|(s, v)| format!("view {s}.{v}")).collect::<Vec<_>>().join(", ");
            return Err(Error::DependentObjects(format!(
                "cannot drop materialized view {} because {listed} reads its part {} (DROP ... CASCADE drops them too)",
                table.name(),
                part.name()
            )));
        }
    }
    Ok(())
}

/// The definition's logical plan, over the real tables.
async fn plan_definition(engine: &Arc<Engine>, definition: &str, schema: &str) -> Result<LogicalPlan> {
    let statement = crate::catalog::parse_view_definition(definition)?;
    plan_statement(&engine.base_state(), engine.streams(), &statement, schema).await
}

/// Drops an aggregating view's state table (after the view, or after a failed CREATE).
async fn drop_state_table(streams: &Arc<Streams>, state_table_id: Option<i64>) {
    let Some(table) = state_table_id.and_then(|id| streams.table_by_id(id)) else { return };
    if let Err(e) = streams.drop_table(table.schema_name(), table.name()).await {
        warn!(table = table.name(), error = %e, "a materialized view's state table was not dropped");
    }
}

/// The progress table and the event-time table (see [`event_time`]).
async fn ensure_progress_table(streams: &Arc<Streams>) -> Result<()> {
    for (name, schema) in [(PROGRESS_TABLE, progress_schema()), (EVENT_TIME_TABLE, event_time_schema())] {
        if streams.table(PROGRESS_SCHEMA, name).is_none() {
            streams.create_schema(PROGRESS_SCHEMA, true).await?;
            streams.create_table(PROGRESS_SCHEMA, name, &schema, &TableOptions::default(), true).await?;
        }
    }
    Ok(())
}

/// A view's `WITH` options: `emit = 'on window close' | 'on update'` (what `EMIT ON
/// WINDOW CLOSE` becomes).
fn emit_option(options: &datafusion::sql::sqlparser::ast::CreateTableOptions) -> Result<bool> {
    use crate::streaming_clauses::{EMIT_ON_WINDOW_CLOSE, EMIT_OPTION};
    let mut emit_on_close = false;
    for option in crate::ddl::option_list(options) {
        let datafusion::sql::sqlparser::ast::SqlOption::KeyValue { key, value } = option else {
            return Err(Error::InvalidParameter(format!("unrecognized materialized view option {option} (known: emit)")));
        };
        if crate::hidden::normalize(key) != EMIT_OPTION {
            return Err(Error::InvalidParameter(format!("unrecognized materialized view option {option} (known: emit)")));
        }
        emit_on_close = match crate::ddl::string_value(value, EMIT_OPTION)?.to_lowercase().as_str() {
            EMIT_ON_WINDOW_CLOSE => true,
            "on update" => false,
            other => return Err(Error::InvalidParameter(format!("emit must be 'on window close' or 'on update', not '{other}'"))),
        };
    }
    Ok(emit_on_close)
}

fn progress_schema() -> Schema {
    Schema::new(vec![
        Field::new("view_id", DataType::Int64, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("next_offset", DataType::Int64, false),
    ])
}

/// Registers and spawns the maintainer of one view.
fn start(engine: &Arc<Engine>, view: Arc<StreamTable>, mv: &MaterializedView) -> Result<Arc<Maintainer>> {
    let maintainer = prepare(engine, view, mv)?;
    engine.maintainers().insert(maintainer.clone());
    spawn(engine, &maintainer, mv);
    Ok(maintainer)
}

fn spawn(engine: &Arc<Engine>, maintainer: &Arc<Maintainer>, mv: &MaterializedView) {
    let (engine, m, definition) = (engine.clone(), maintainer.clone(), mv.definition.clone());
    tokio::spawn(async move { m.run(&engine, &definition).await });
}

/// The maintainer of one view, not yet registered or running.
fn prepare(engine: &Arc<Engine>, view: Arc<StreamTable>, mv: &MaterializedView) -> Result<Arc<Maintainer>> {
    let streams = engine.streams();
    let sources = mv
        .sources()
        .iter()
        .map(|id| streams.table_by_id(*id).ok_or_else(|| Error::UndefinedTable(format!("source of materialized view {}", view.name()))))
        .collect::<Result<Vec<_>>>()?;
    let inputs = Inputs::new(sources);
    let aggregate = match mv.state_table_id {
        None => None,
        Some(id) => {
            let states = streams
                .table_by_id(id)
                .ok_or_else(|| Error::UndefinedTable(format!("state table of materialized view {}", view.name())))?;
            Some((AggregateResult::new(view.clone()), states))
        }
    };
    let event_time = EventTime::new((0..inputs.len()).map(|i| inputs.source(i).options().watermark.clone()).collect())
        .map(|t| t.of_sources((0..inputs.len()).map(|i| inputs.source_index(i)).collect()))
        .map(Mutex::new);
    // `EMIT ON WINDOW CLOSE` views append final rows only: `SELECT` reads them from storage.
    let rows = if mv.change_log && !mv.emit_on_window_close { Some(RowsResult::new(view.clone())?) } else { None };
    let maintainer = Arc::new(Maintainer {
        positions: Mutex::new(vec![0; inputs.len()]),
        recovered: AtomicBool::new(false),
        event_time,
        emit_on_window_close: mv.emit_on_window_close,
        applied: Mutex::new(None),
        applied_current: Mutex::new(Vec::new()),
        retention: Mutex::new(Retention::default()),
        keyed: Mutex::new(None),
        state_rows_written: AtomicUsize::new(0),
        rows,
        latest: Mutex::new(Vec::new()),
        chunk_rows: AtomicUsize::new(CHUNK_ROWS),
        view,
        inputs,
        applied_at_ms: AtomicI64::new(0),
        last_error: Mutex::new(None),
        stop: AtomicBool::new(false),
        wake: tokio::sync::Notify::new(),
        aggregate,
    });
    Ok(maintainer)
}

impl Maintainer {
    /// What `SELECT` reads of a view whose table is a change log.
    fn current_rows(&self) -> Option<Arc<dyn CurrentRows>> {
        match (&self.aggregate, &self.rows) {
            (Some((result, _)), _) => Some(result.clone()),
            (None, Some(rows)) => Some(rows.clone()),
            (None, None) => None,
        }
    }

    fn set_recovery(&self, outcome: std::result::Result<(), String>) {
        if let Some((result, _)) = &self.aggregate {
            result.set_recovery(outcome.clone());
        }
        if let Some(rows) = &self.rows {
            rows.set_recovery(outcome);
        }
    }

    fn positions(&self) -> Vec<i64> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn event_time(&self) -> Option<EventTime> {
        self.event_time.as_ref().map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.view.is_dropped() || self.inputs.any_dropped()
    }

    /// Recovers the progress (and an aggregating view's groups), then applies source rows
    /// as they come until dropped.
    async fn run(&self, engine: &Arc<Engine>, definition: &str) {
        let mut recovered = false;
        let mut plan = None;
        while !self.stopped() {
            if self.inputs.outdated() {
                // New partitions are new inputs: a fresh maintainer lists them and recovers
                // from what this one committed (its steps are whole appends).
                match self.restart(engine) {
                    Ok(()) => return,
                    Err(e) => {
                        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                        tokio::time::sleep(RETRY_AFTER).await;
                        continue;
                    }
                }
            }
            let step = async {
                if plan.is_none() {
                    plan = Some(self.plan(engine, definition).await?);
                }
                let plan = plan.as_ref().expect("planned");
                if !recovered {
                    self.recover_progress(engine).await?;
                    self.recover_latest(engine).await?;
                    self.recover_applied(engine).await?;
                    self.recover_groups(engine, plan).await?;
                    self.recover_rows(engine).await?;
                    self.recover_keyed(engine, plan).await?;
                    recovered = true;
                    self.recovered.store(true, Ordering::Release);
                }
                self.catch_up(engine, plan).await
            };
            // A panic in a step is a failed step (reported, retried), not a dead maintainer.
            let step = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(step))
                .await
                .unwrap_or_else(|panic| Err(Error::from_panic("maintenance", panic)));
            match step {
                Ok(()) => *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None,
                Err(_) if self.stopped() => return,
                Err(e) => {
                    warn!(view = self.view.name(), error = %e, "materialized view maintenance failed; retrying");
                    if !recovered {
                        self.set_recovery(Err(e.to_string()));
                    }
                    *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    /// Hands over to a successor that follows every partition (unless a DROP came first).
    fn restart(&self, engine: &Arc<Engine>) -> Result<()> {
        info!(view = self.view.name(), "a source gained partitions; restarting maintenance");
        let mv = self.view.options().materialized.clone().ok_or_else(|| Error::Internal("a view without its definition".into()))?;
        let successor = prepare(engine, self.view.clone(), &mv)?;
        if engine.maintainers().replace(self, successor.clone()) {
            spawn(engine, &successor, &mv);
        }
        Ok(())
    }

    async fn plan(&self, engine: &Arc<Engine>, definition: &str) -> Result<ViewPlan> {
        let plan = plan_definition(engine, definition, self.view.schema_name()).await?;
        if has_join(&plan) {
            *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(vec![Vec::new(); self.inputs.sources().len()]);
            let retention = Retention::of(&plan, self.inputs.sources());
            if retention.bounds_any() {
                info!(view = self.view.name(), ?retention, "the join's rows are let go as the watermark passes them");
            }
            *self.retention.lock().unwrap_or_else(|p| p.into_inner()) = retention;
        }
        if keyed::has_window_functions(&plan) {
            let keys = keyed::partition_keys(&plan)?;
            let types = keyed::key_types(&inputs::layout(self.inputs.source(0)), &keys)?;
            let closing = match SessionClosing::of(&plan, self.inputs.source(0)) {
                Ok(closing) => {
                    info!(view = self.view.name(), ?closing, "sessions' rows are let go as the watermark closes them");
                    Some(closing)
                }
                Err(why) if self.emit_on_window_close => return Err(Error::Internal(format!("sessions cannot close: {why}"))),
                Err(_) => None,
            };
            *self.keyed.lock().unwrap_or_else(|p| p.into_inner()) = Some(KeyedRows::new(keys, types, closing)?);
            return Ok(ViewPlan::Keyed(plan));
        }
        Ok(match self.aggregate {
            Some(_) => ViewPlan::Aggregate(Box::new(AggregatePlan::new(engine, &plan, self.inputs.sources(), self.emit_on_window_close).await?)),
            None => ViewPlan::Rows(plan),
        })
    }

    /// Applies everything the source holds now, then waits for more (returns to be re-entered).
    async fn catch_up(&self, engine: &Arc<Engine>, plan: &ViewPlan) -> Result<()> {
        let streams = engine.streams();
        let mut changes = streams.subscribe_changes();
        changes.mark_seen();
        let bookkeeping = |name: &str| {
            streams.table(PROGRESS_SCHEMA, name).ok_or_else(|| Error::Internal(format!("{PROGRESS_SCHEMA}.{name} is missing")))
        };
        let progress_table = bookkeeping(PROGRESS_TABLE)?;
        let mut applied_any = false;
        for input in 0..self.inputs.len() {
            let (source, partition) = (self.inputs.source(input), self.inputs.partition(input));
            let from = self.positions()[input];
            let chunk_rows = self.chunk_rows.load(Ordering::Acquire);
            let read = streams.read_partition(source, partition, from, chunk_rows).await?;
            if read.next_offset == from {
                continue;
            }
            let progress = RecordBatch::try_new(
                Arc::new(progress_schema()),
                vec![
                    Arc::new(Int64Array::from(vec![self.view.id()])),
                    Arc::new(Int32Array::from(vec![self.inputs.code(input)])),
                    Arc::new(Int64Array::from(vec![read.next_offset])),
                ],
            )?;
            // The view's changes and the position that produced them: one append, one WAL record.
            let mut writes = vec![TableWrite { table: progress_table.clone(), batches: vec![progress] }];
            let judged = match self.event_time() {
                Some(time) => {
                    let positions = self.positions();
                    let highs = self.inputs.high_watermarks(streams)?;
                    let judged = time.judge(source.name(), input, &read.batches, |i| highs[i] > positions[i])?;
                    let recorded = judged.after.record(self.view.id(), input, self.inputs.code(input))?;
                    writes.push(TableWrite { table: bookkeeping(EVENT_TIME_TABLE)?, batches: vec![recorded] });
                    Some(judged)
                }
                None => None,
            };
            let batches = judged.as_ref().map_or(&read.batches, |j| &j.batches);
            let applied = self.applied_for(self.inputs.source_index(input))?;
            let chunk = Chunk { sources: self.inputs.sources(), source: self.inputs.source_index(input), batches, applied: &applied };
            let close_windows_before = judged.as_ref().and_then(|j| j.after.watermark_us());
            let mut rows_step: Option<RowsStep> = None;
            let mut keyed_change = None;
            self.ensure_latest(input)?;
            let (added, removed, latest_change) = self.signed(input, batches)?;
            let applied_update = self.prepare_applied(input, &added, &removed)?;
            let step = match (plan, &self.aggregate) {
                (ViewPlan::Aggregate(planned), Some((result, _))) if planned.keeps_rows() => {
                    let step = result.step_signed(engine, planned, &Chunk { batches: &added, ..chunk }, &Chunk { batches: &removed, ..chunk }).await?;
                    writes.extend(self.step_writes(&step)?);
                    Some(step)
                }
                (ViewPlan::Aggregate(planned), Some((result, _))) => {
                    let step = result.step(engine, planned, &chunk, close_windows_before).await?;
                    writes.extend(self.step_writes(&step)?);
                    Some(step)
                }
                (ViewPlan::Keyed(plan), _) => {
                    let change = self.keyed(|k| k.prepare(&added))?;
                    let produced = self.produce(engine, plan, &Chunk { batches: &change.input, ..chunk }).await?;
                    let mut change = self.keyed(|k| k.with_results(change, &produced))?;
                    if let Some(watermark) = close_windows_before {
                        self.keyed(|k| k.close(&mut change, watermark))?;
                    }
                    if self.emit_on_window_close {
                        // Only closed sessions reach the table, once: the others are pending.
                        let inserts = sessions::as_inserts(&self.view, &change.closed)?;
                        if !inserts.is_empty() {
                            writes.push(TableWrite { table: self.view.clone(), batches: inserts });
                        }
                    } else {
                        let rows = self.rows.as_ref().ok_or_else(|| Error::Internal("a windowed view without its rows".into()))?;
                        let step = rows.step(&produced, &change.old_results)?;
                        writes.extend(step.changes.clone().map(|changes| TableWrite { table: self.view.clone(), batches: vec![changes] }));
                        rows_step = Some(step);
                    }
                    keyed_change = Some(change);
                    None
                }
                (ViewPlan::Rows(plan), _) if self.rows.is_some() => {
                    let added = self.produce(engine, plan, &Chunk { batches: &added, ..chunk }).await?;
                    let removed = self.produce(engine, plan, &Chunk { batches: &removed, ..chunk }).await?;
                    let step = self.rows.as_ref().expect("matched").step(&added, &removed)?;
                    writes.extend(step.changes.clone().map(|changes| TableWrite { table: self.view.clone(), batches: vec![changes] }));
                    rows_step = Some(step);
                    None
                }
                (ViewPlan::Rows(plan), _) => {
                    let rows = self.apply(engine, plan, &chunk).await?;
                    if !rows.is_empty() {
                        writes.push(TableWrite { table: self.view.clone(), batches: rows });
                    }
                    None
                }
                (ViewPlan::Aggregate(_), None) => return Err(Error::Internal("an aggregating view without its groups".into())),
            };
            if let Err(e) = streams.append(writes).await {
                if e.is_record_too_large() && chunk_rows > 1 {
                    // Wide rows: the same position again, in smaller steps.
                    self.chunk_rows.store(chunk_rows / 2, Ordering::Release);
                    return Ok(());
                }
                return Err(e.into());
            }
            // Committed: from here on nothing may fail (a retry would append the chunk again).
            if let (Some(step), Some((result, _))) = (step, &self.aggregate) {
                self.state_rows_written.fetch_add(step.states.num_rows(), Ordering::AcqRel);
                result.apply(step);
            }
            if let (Some(step), Some(rows)) = (rows_step, &self.rows) {
                rows.apply(step);
            }
            self.install_applied(input, applied_update);
            if let Some(change) = keyed_change {
                if let Some(keyed) = self.keyed.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    keyed.install(change);
                }
            }
            self.install_latest(input, latest_change);
            if let (Some(judged), Some(time)) = (judged, &self.event_time) {
                let watermark = judged.after.watermark_us();
                *time.lock().unwrap_or_else(|p| p.into_inner()) = judged.after;
                self.let_go(watermark);
            }
            self.positions.lock().unwrap_or_else(|p| p.into_inner())[input] = read.next_offset;
            // Back up to full chunks after a step that had to be smaller.
            if chunk_rows < CHUNK_ROWS {
                self.chunk_rows.store((chunk_rows * 2).min(CHUNK_ROWS), Ordering::Release);
            }
            self.applied_at_ms.store(now_ms(), Ordering::Release);
            applied_any = true;
            if let ViewPlan::Aggregate(planned) = plan {
                self.checkpoint_if_due(engine, planned).await?;
            }
        }
        if !applied_any {
            tokio::select! {
                _ = changes.changed() => {}
                _ = self.wake.notified() => {}
            }
        }
        Ok(())
    }

    /// An aggregating step's writes: the view's change log and the groups' new states.
    fn step_writes(&self, step: &aggregate::Step) -> Result<Vec<TableWrite>> {
        let Some((_, states)) = &self.aggregate else { return Ok(vec![]) };
        let columns: Vec<usize> = (0..step.states.num_columns()).collect();
        let mut writes = Vec::new();
        if step.states.num_rows() > 0 {
            writes.push(TableWrite { table: states.clone(), batches: crate::dml::widen_to_table(states, &columns, vec![step.states.clone()])? });
        }
        if let Some(changes) = &step.changes {
            writes.push(TableWrite { table: self.view.clone(), batches: vec![changes.clone()] });
        }
        Ok(writes)
    }

    /// The view's rows for one chunk of source rows (stored layout).
    async fn apply(&self, engine: &Arc<Engine>, plan: &LogicalPlan, chunk: &Chunk<'_>) -> Result<Vec<RecordBatch>> {
        let produced = self.produce(engine, plan, chunk).await?;
        let columns: Vec<usize> = (0..self.view.schema().fields().len()).collect();
        crate::dml::widen_to_table(&self.view, &columns, produced)
    }

    /// What the view's plan makes of one chunk of source rows (its result columns).
    async fn produce(&self, engine: &Arc<Engine>, plan: &LogicalPlan, chunk: &Chunk<'_>) -> Result<Vec<RecordBatch>> {
        if chunk.batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(Vec::new());
        }
        let over_chunk = over_chunk(plan, chunk)?;
        let state: SessionState = engine.base_state();
        let physical = state.create_physical_plan(&over_chunk).await?;
        let produced = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
        Ok(produced.into_iter().filter(|b| b.num_rows() > 0).collect())
    }

}

/// How a view's rows are made from source rows.
enum ViewPlan {
    /// Row by row: the view's plan runs over each chunk.
    Rows(LogicalPlan),
    Aggregate(Box<AggregatePlan>),
    /// Window functions partitioned by key: the plan runs over the touched keys' rows.
    Keyed(LogicalPlan),
}

/// Runs an internal query (bookkeeping tables) and collects its rows.
async fn query(engine: &Arc<Engine>, sql: &str) -> Result<Vec<RecordBatch>> {
    engine.session().query_batches(sql).await
}

/// `DROP TABLE` of a view's table, or of a table a view reads: refused, naming the view.
pub(crate) fn check_drop_table(streams: &Streams, table: &StreamTable) -> Result<()> {
    if table.options().materialized.is_some() {
        return Err(Error::WrongObjectType(format!(
            "\"{}\" is a materialized view: use DROP MATERIALIZED VIEW",
            table.name()
        )));
    }
    if is_bookkeeping_table(table) {
        return Err(Error::DependentObjects(format!(
            "{PROGRESS_SCHEMA}.{} holds the materialized views' progress or state",
            table.name()
        )));
    }
    let dependents = dependents(streams, table);
    if !dependents.is_empty() {
        return Err(Error::DependentObjects(format!(
            "cannot drop table {} because materialized view {} depends on it",
            table.name(),
            dependents.join(", ")
        )));
    }
    Ok(())
}

/// Writes by anyone but the maintainer are refused: the view equals its query (and the
/// progress table says how far it got).
pub(crate) fn check_writable(table: &StreamTable) -> Result<()> {
    if is_bookkeeping_table(table) {
        return Err(Error::WrongObjectType(format!("{PROGRESS_SCHEMA}.{} is written by materialized views only", table.name())));
    }
    match table.options().materialized {
        Some(_) => Err(Error::WrongObjectType(format!("cannot change materialized view \"{}\"", table.name()))),
        None => Ok(()),
    }
}

/// The progress and event-time tables and the aggregating views' state tables.
fn is_bookkeeping_table(table: &StreamTable) -> bool {
    table.schema_name() == PROGRESS_SCHEMA && (table.name() == PROGRESS_TABLE || table.name() == EVENT_TIME_TABLE || is_state_table(table))
}

fn is_state_table(table: &StreamTable) -> bool {
    table.schema_name() == PROGRESS_SCHEMA && table.name().starts_with(STATE_TABLE_PREFIX)
}

/// The materialized views that read `table`.
fn dependents(streams: &Streams, table: &StreamTable) -> Vec<String> {
    streams
        .tables()
        .iter()
        .filter(|t| t.options().materialized.as_ref().is_some_and(|m| m.sources().contains(&table.id())))
        .map(|t| t.name().to_string())
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
