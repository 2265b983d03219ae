//! SQL functions clients call to recognise the server: `version()` in PostgreSQL's format
//! (SQLAlchemy and JDBC parse it) and `to_regtype(name)` (psycopg's type lookup).

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int32Array};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;

use crate::settings::SERVER_VERSION;

pub fn register(ctx: &SessionContext) {
    let version = format!(
        "PostgreSQL {SERVER_VERSION} (StreamHouse {}) on {}-linux, compiled by rustc",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_args| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version.clone()))))),
    ));
    register_to_regtype(ctx);
    crate::streaming_functions::register(ctx);
    for name in ["pg_type_is_visible", "pg_function_is_visible"] {
        // One database, one search path: every catalog object is visible.
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|args| {
                Ok(match &args[0] {
                    ColumnarValue::Scalar(v) => ColumnarValue::Scalar(ScalarValue::Boolean((!v.is_null()).then_some(true))),
                    ColumnarValue::Array(a) => ColumnarValue::Array(Arc::new(
                        (0..a.len()).map(|i| a.is_valid(i).then_some(true)).collect::<arrow::array::BooleanArray>(),
                    )),
                })
            }),
        ));
    }
}

/// OIDs of the built-in types StreamHouse columns can have.
const TYPE_OIDS: [(&str, i32); 22] = [
    ("bool", 16), ("boolean", 16), ("bytea", 17), ("int8", 20), ("bigint", 20), ("int2", 21), ("smallint", 21),
    ("int4", 23), ("integer", 23), ("text", 25), ("json", 114), ("float4", 700), ("real", 700), ("float8", 701),
    ("double precision", 701), ("varchar", 1043), ("date", 1082), ("timestamp", 1114), ("timestamptz", 1184),
    ("interval", 1186), ("numeric", 1700), ("jsonb", 3802),
];

fn type_oid(name: &str) -> Option<i32> {
    let name = name.trim().trim_start_matches("pg_catalog.").to_lowercase();
    TYPE_OIDS.iter().find(|(n, _)| *n == name).map(|(_, oid)| *oid)
}

pub fn register_to_regtype(ctx: &SessionContext) {
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args| {
            Ok(match &args[0] {
                ColumnarValue::Scalar(v) => {
                    let name = match v {
                        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.as_str()),
                        _ => None,
                    };
                    ColumnarValue::Scalar(ScalarValue::Int32(name.and_then(type_oid)))
                }
                ColumnarValue::Array(a) => {
                    let names = arrow::compute::cast(a, &DataType::Utf8)?;
                    let names = names.as_string::<i32>();
                    let oids: Int32Array = (0..names.len())
                        .map(|i| if names.is_null(i) { None } else { type_oid(names.value(i)) })
                        .collect();
                    ColumnarValue::Array(Arc::new(oids))
                }
            })
        }),
    ));
}
