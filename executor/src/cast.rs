//! Converting written values to a column's type as PostgreSQL does on assignment:
//! strictly (a bad value is an error, never a NULL), floats rounded (not truncated) to
//! integers, with bytea's own text forms, and timestamps written without seconds
//! (`'2025-01-01 10:00'`, which Arrow's parser refuses) completed — on assignment and
//! wherever a query casts text to a timestamp ([`CompleteTimestampText`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Cast, Expr, LogicalPlan, TryCast};
use datafusion::optimizer::AnalyzerRule;

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
    let completed;
    let source = match (target, source.as_any().downcast_ref::<StringArray>()) {
        (DataType::Timestamp(..), Some(text)) if text.iter().flatten().any(|t| with_seconds(t).is_some()) => {
            let full: StringArray = text.iter().map(|t| t.map(|t| with_seconds(t).unwrap_or_else(|| t.to_string()))).collect();
            completed = Arc::new(full) as ArrayRef;
            &completed
        }
        _ => source,
    };
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

/// `text` with `:00` seconds added when it is a date and a time of hours and minutes
/// only (`2025-01-01 10:00`, `2025-01-01T10:00+02`), which PostgreSQL reads as a
/// timestamp; `None` for anything else.
pub(crate) fn with_seconds(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let shape = digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10) && (at(10, b' ') || at(10, b'T'))
        && digits(11..13) && at(13, b':') && digits(14..16);
    (shape && matches!(b.get(16), None | Some(b'+' | b'-' | b'Z' | b' '))).then(|| format!("{}:00{}", &text[..16], &text[16..]))
}

/// Completes timestamp text without seconds wherever the plan casts a text constant to
/// a timestamp: `TIMESTAMP '…'`, `'…'::timestamptz`, and the casts type coercion adds
/// (`WHERE ts >= '2025-01-01 10:00'`). Runs after type coercion, before constant folding
/// would read the text.
#[derive(Debug)]
pub struct CompleteTimestampText;

impl AnalyzerRule for CompleteTimestampText {
    fn name(&self) -> &str {
        "complete_timestamp_text"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> datafusion::error::Result<LogicalPlan> {
        let completed = plan.transform_up_with_subqueries(|node| {
            // A projected column keeps the name the text gave it.
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(|e| {
                    let (inner, to) = match &e {
                        Expr::Cast(cast) => (cast.expr.as_ref(), cast.field.data_type()),
                        Expr::TryCast(cast) => (cast.expr.as_ref(), cast.field.data_type()),
                        _ => return Ok(Transformed::no(e)),
                    };
                    let text = match inner {
                        Expr::Literal(ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t)) | ScalarValue::LargeUtf8(Some(t)), _) => t,
                        _ => return Ok(Transformed::no(e)),
                    };
                    if !matches!(to, DataType::Timestamp(..)) {
                        return Ok(Transformed::no(e));
                    }
                    match with_seconds(text.as_str()) {
                        Some(full) => {
                            let literal = Box::new(Expr::Literal(ScalarValue::Utf8(Some(full)), None));
                            Ok(Transformed::yes(match e {
                                Expr::Cast(cast) => Expr::Cast(Cast { expr: literal, ..cast }),
                                Expr::TryCast(cast) => Expr::TryCast(TryCast { expr: literal, ..cast }),
                                other => other,
                            }))
                        }
                        None => Ok(Transformed::no(e)),
                    }
                })
                .map(|rewritten| rewritten.update_data(|e| name.restore(e)))
            })
        })?;
        Ok(completed.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;

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

    #[test]
    fn timestamps_without_seconds_get_them() {
        assert_eq!(with_seconds("2025-01-01 10:00").as_deref(), Some("2025-01-01 10:00:00"));
        assert_eq!(with_seconds("2025-01-01T10:00+02").as_deref(), Some("2025-01-01T10:00:00+02"));
        assert_eq!(with_seconds("2025-01-01 10:00:30"), None);
        assert_eq!(with_seconds("2025-01-01"), None);
        assert_eq!(with_seconds("10:00"), None);
        assert_eq!(with_seconds("2025-01-01 10:0"), None);
        for short in ["", "1000", "2025-", "2025-01-01 1"] {
            assert_eq!(with_seconds(short), None);
        }
    }
}
