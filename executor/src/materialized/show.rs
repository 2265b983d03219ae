//! `SHOW MATERIALIZED VIEWS`: what each view reads and how its maintenance is doing.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::physical_plan::memory::MemoryStream;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::session::Session;

/// `SHOW MATERIALIZED VIEWS`: each view with its source, how many source rows it has
/// yet to apply (lag) and when it last applied some (freshness).
pub fn show(session: &Session) -> Result<Output> {
    let streams = session.streams();
    let (mut schemas, mut names, mut sources, mut lags, mut applied, mut errors, mut definitions) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut watermarks, mut late, mut emits, mut held_rows) = (vec![], vec![], vec![], vec![]);
    for table in streams.tables() {
        let Some(mv) = &table.options().materialized else { continue };
        let maintainer = session.engine().maintainers().get(table.id());
        let named: Option<Vec<String>> =
            mv.sources().iter().map(|id| streams.table_by_id(*id).map(|s| format!("{}.{}", s.schema_name(), s.name()))).collect();
        schemas.push(table.schema_name().to_string());
        names.push(table.name().to_string());
        sources.push(named.map(|n| n.join(", ")));
        definitions.push(mv.definition.clone());
        let lag = maintainer.as_ref().filter(|m| m.recovered.load(Ordering::Acquire)).and_then(|m| {
            let highs = m.inputs.high_watermarks(streams).ok()?;
            Some(m.positions().iter().zip(highs).map(|(at, high)| (high - at).max(0)).sum::<i64>())
        });
        lags.push(lag);
        applied.push(maintainer.as_ref().map(|m| m.applied_at_ms.load(Ordering::Acquire)).filter(|ms| *ms > 0));
        errors.push(maintainer.as_ref().and_then(|m| m.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()));
        let event_time = maintainer.as_ref().and_then(|m| m.event_time());
        watermarks.push(event_time.as_ref().and_then(|t| t.watermark_us()));
        late.push(event_time.as_ref().map(|t| t.late_rows()));
        emits.push(if mv.emit_on_window_close { "on window close" } else { "on update" });
        held_rows.push(maintainer.as_ref().and_then(|m| m.held_rows()));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("schema", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, true),
        Field::new("lag_rows", DataType::Int64, true),
        Field::new("last_applied", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
        Field::new("last_error", DataType::Utf8, true),
        Field::new("definition", DataType::Utf8, false),
        Field::new("emit", DataType::Utf8, false),
        Field::new("watermark", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("late_rows", DataType::Int64, true),
        Field::new("held_rows", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(schemas)),
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(sources)),
            Arc::new(Int64Array::from(lags)),
            Arc::new(TimestampMillisecondArray::from(applied).with_timezone("UTC")),
            Arc::new(StringArray::from(errors)),
            Arc::new(StringArray::from(definitions)),
            Arc::new(StringArray::from(emits)),
            Arc::new(arrow::array::TimestampMicrosecondArray::from(watermarks).with_timezone("UTC")),
            Arc::new(Int64Array::from(late)),
            Arc::new(Int64Array::from(held_rows)),
        ],
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Output::Rows(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?)))
}
