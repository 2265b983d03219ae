//! SQL functions clients call to recognise the server: `version()` in PostgreSQL's format
//! (SQLAlchemy and JDBC parse it) and `to_regtype(name)` (psycopg's type lookup); and
//! `pg_sleep(seconds)`, which scripts and tests call.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int32Array};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
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
    ctx.register_udf(AsyncScalarUDF::new(Arc::new(PgSleep::new())).into_scalar_udf());
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

/// `pg_sleep(seconds)`: waits that long for each row, without holding a thread (a
/// cancel or the statement timeout ends it). Returns NULL, as PostgreSQL's `void`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgSleep {
    signature: Signature,
}

impl PgSleep {
    fn new() -> Self {
        PgSleep { signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Volatile) }
    }
}

impl ScalarUDFImpl for PgSleep {
    fn name(&self) -> &str {
        "pg_sleep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        datafusion::common::internal_err!("pg_sleep is evaluated asynchronously")
    }
}

#[async_trait::async_trait]
impl AsyncScalarUDFImpl for PgSleep {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let seconds = args.args[0].to_array(args.number_rows)?;
        let seconds = arrow::compute::cast(&seconds, &DataType::Float64)?;
        let total: f64 = seconds.as_primitive::<arrow::datatypes::Float64Type>().iter().flatten().filter(|s| *s > 0.0).sum();
        if !total.is_finite() {
            return datafusion::common::plan_err!("pg_sleep: {total} is not a number of seconds");
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(total)).await;
        Ok(ColumnarValue::Array(arrow::array::new_null_array(&DataType::Utf8, args.number_rows)))
    }
}
