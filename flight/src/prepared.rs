//! Prepared statements: created by an action, given parameter values by DoPut, run by
//! DoGet (queries) or DoPut (updates), closed by an action. Handles are server-wide
//! because Flight calls carry no connection; the registry is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use tonic::Status;

use crate::status;

/// Prepared statements open at once across all clients.
pub const MAX_PREPARED_STATEMENTS: usize = 16_384;

#[derive(Clone)]
pub struct Prepared {
    pub sql: String,
    /// The types DataFusion inferred for `$1, $2, …` (None: unknown, taken as sent).
    pub parameter_types: Vec<Option<DataType>>,
    /// Result columns (None for statements that return no rows).
    pub columns: Option<SchemaRef>,
    /// Parameter values bound by the last DoPut: one row per execution.
    pub bound: Option<RecordBatch>,
}

#[derive(Default)]
pub struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<Vec<u8>, Prepared>>,
}

impl Registry {
    pub fn insert(&self, prepared: Prepared) -> Result<Vec<u8>, Status> {
        let mut open = self.open.lock().expect("prepared lock");
        if open.len() >= MAX_PREPARED_STATEMENTS {
            return Err(Status::resource_exhausted(format!(
                "{MAX_PREPARED_STATEMENTS} prepared statements are open; close some (ClosePreparedStatement)"
            )));
        }
        let handle = format!("ps-{}", self.next.fetch_add(1, Ordering::Relaxed)).into_bytes();
        open.insert(handle.clone(), prepared);
        Ok(handle)
    }

    pub fn get(&self, handle: &[u8]) -> Result<Prepared, Status> {
        self.open.lock().expect("prepared lock").get(handle).cloned().ok_or_else(|| unknown(handle))
    }

    pub fn bind(&self, handle: &[u8], values: RecordBatch) -> Result<(), Status> {
        let mut open = self.open.lock().expect("prepared lock");
        let prepared = open.get_mut(handle).ok_or_else(|| unknown(handle))?;
        prepared.bound = Some(values);
        Ok(())
    }

    pub fn close(&self, handle: &[u8]) -> Result<(), Status> {
        self.open.lock().expect("prepared lock").remove(handle).map(|_| ()).ok_or_else(|| unknown(handle))
    }
}

fn unknown(handle: &[u8]) -> Status {
    Status::not_found(format!("prepared statement \"{}\" does not exist", String::from_utf8_lossy(handle)))
}

/// Parameter values for each execution: one per bound row (or one empty set when the
/// statement takes none), cast to the types the statement expects.
pub fn parameter_sets(prepared: &Prepared, bound: Option<&RecordBatch>) -> Result<Vec<Option<ParamValues>>, Status> {
    let expected = prepared.parameter_types.len();
    let Some(batch) = bound.filter(|b| b.num_columns() > 0) else {
        if expected > 0 {
            return Err(Status::invalid_argument(format!(
                "the statement takes {expected} parameter(s) and none were bound"
            )));
        }
        return Ok(vec![None]);
    };
    if batch.num_columns() != expected {
        return Err(Status::invalid_argument(format!(
            "the statement takes {expected} parameter(s), {} were bound",
            batch.num_columns()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(&prepared.parameter_types)
        .map(|(column, wanted)| match wanted {
            Some(t) if t != column.data_type() && !column.data_type().is_null() => {
                arrow::compute::cast(column, t).map_err(status::from_arrow)
            }
            _ => Ok(column.clone()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    (0..batch.num_rows())
        .map(|row| {
            let values = columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c.as_ref() as &dyn Array, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(status::from_datafusion)?;
            Ok(Some(ParamValues::List(values.into_iter().map(Into::into).collect())))
        })
        .collect()
}
