//! Converting written values to a column's type as PostgreSQL does on assignment:
//! strictly (a bad value is an error, never a NULL), floats rounded (not truncated) to
//! integers, and with bytea's own text forms.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
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
    // Floats become integers rounded to the nearest (ties to even, like PostgreSQL's
    // rint-based float-to-int casts), not truncated as Arrow's cast does.
    let rounded;
    let source = if target.is_integer() && source.data_type().is_floating() {
        let as_f64 = cast_with_options(source, &DataType::Float64, &CastOptions::default())?;
        let floats = as_f64.as_any().downcast_ref::<Float64Array>().expect("cast to Float64 yields Float64Array");
        rounded = Arc::new(floats.unary::<_, arrow::datatypes::Float64Type>(f64::round_ties_even)) as ArrayRef;
        &rounded
    } else {
        source
    };
    let strict = CastOptions { safe: false, ..Default::default() };
    cast_with_options(source, target, &strict).map_err(|e| {
        Error::InvalidValue(format!("invalid input for column \"{}\" of type {}: {e}", field.name(), crate::settings::sql_type_name(target)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int32Array};

    #[test]
    fn floats_round_to_integers_and_overflow_is_an_error() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![Some(2.5), Some(3.5), Some(-1.7), None, Some(100.4)]));
        let field = Field::new("n", DataType::Int32, true);
        let ints = to_column_type(&floats, &field).unwrap();
        let ints = ints.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(ints.iter().collect::<Vec<_>>(), vec![Some(2), Some(4), Some(-2), None, Some(100)]);
        let huge: ArrayRef = Arc::new(Float64Array::from(vec![1e12]));
        assert!(to_column_type(&huge, &field).is_err());
    }
}
