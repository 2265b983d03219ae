//! Converting written values to a column's type as PostgreSQL does on assignment:
//! strictly (a bad value is an error, never a NULL), and with bytea's own text forms.

use arrow::array::{ArrayRef, StringArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field};

use crate::error::{Error, Result};

/// Casts strictly; text to bytea reads PostgreSQL's bytea text forms.
pub fn to_column_type(source: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    let target = field.data_type();
    if source.data_type() == target {
        return Ok(source.clone());
    }
    if target == &DataType::Binary {
        if let Some(text) = source.as_any().downcast_ref::<StringArray>() {
            return crate::bytea::decode_array(text);
        }
    }
    let strict = CastOptions { safe: false, ..Default::default() };
    cast_with_options(source, target, &strict).map_err(|e| {
        Error::InvalidValue(format!("invalid input for column \"{}\" of type {}: {e}", field.name(), crate::settings::sql_type_name(target)))
    })
}
